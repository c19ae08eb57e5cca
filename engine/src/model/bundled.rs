// SPDX-License-Identifier: MPL-2.0
//! Where the bundled English model is found when the user names none: hama's phoneme CTC
//! model with its pronunciation lexicon (`models/MODEL_CARD.md`). The QuartzNet 5x5 trained
//! here ships beside it under its own name ([`QUARTZNET_FILE_NAME`]) for NeMo's path.
//!
//! The repository ships it in `models/`; `meson install` copies that folder to
//! `<datadir>/quartznetstt/models` and tells the build where (`QUARTZNETSTT_MODELS_DIR`).
//! An installed plugin looks there, then under the prefix it was itself loaded from (an
//! installed tree that was moved, or a plugin copied into a system's plugin folder), then in
//! the user's data folder. Only a plain cargo build (no meson) also looks in the source tree
//! it was built from, and says so: an installed plugin never depends on a source tree.

use std::path::{Path, PathBuf};

use super::locate;
use crate::error::{Error, Result};

/// File name of the bundled default model (its description is the `.json` beside it).
pub const FILE_NAME: &str = "hama-en.onnx";
/// File name of the bundled NeMo QuartzNet 5x5, in the same folder.
pub const QUARTZNET_FILE_NAME: &str = "quartznet-en.onnx";
/// Variable naming a default model explicitly (takes precedence).
pub const VARIABLE: &str = "QUARTZNETSTT_MODEL";

/// Why a folder is searched for the bundled model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The folder `meson install` copies `models/` to, fixed when meson configured the build.
    MesonInstall,
    /// `<prefix>/share/quartznetstt/models` for the prefix the plugin file was loaded from.
    BesidePlugin,
    /// `$XDG_DATA_HOME/quartznetstt/models` (default `~/.local/share/...`).
    User,
    /// `models/` of the source tree a plain cargo build was made from.
    SourceTree,
}

impl Origin {
    fn describe(self) -> &'static str {
        match self {
            Origin::MesonInstall => "meson install folder",
            Origin::BesidePlugin => "under the plugin's install prefix",
            Origin::User => "per-user",
            Origin::SourceTree => "source tree of this cargo build",
        }
    }
}

/// The places searched, in order, when the variable is not set.
pub fn candidates() -> Vec<(PathBuf, Origin)> {
    let mut paths = Vec::new();
    let meson_dir = option_env!("QUARTZNETSTT_MODELS_DIR");
    if let Some(dir) = meson_dir {
        paths.push((PathBuf::from(dir).join(FILE_NAME), Origin::MesonInstall));
    }
    if let Some(prefix) = locate::plugin_dir().and_then(locate::install_prefix) {
        let path = prefix.join("share/quartznetstt/models").join(FILE_NAME);
        // The same folder as meson's when the install was not moved: listed once.
        if !paths.iter().any(|(p, _)| *p == path) {
            paths.push((path, Origin::BesidePlugin));
        }
    }
    if let Some(dir) = locate::user_data_dir() {
        paths.push((dir.join("models").join(FILE_NAME), Origin::User));
    }
    // The source tree (this crate sits one folder below the repository root), for plain
    // cargo builds only: a meson build is meant to be installed.
    if meson_dir.is_none()
        && let Some(root) = Path::new(env!("CARGO_MANIFEST_DIR")).parent()
    {
        paths.push((root.join("models").join(FILE_NAME), Origin::SourceTree));
    }
    paths
}

/// The default model: the variable, else the first candidate that exists, else an error
/// listing where it looked, in order, and what to set.
pub fn find() -> Result<PathBuf> {
    if let Some(named) = locate::from_variables("the bundled model", FILE_NAME, &[VARIABLE]) {
        return named;
    }
    let candidates = candidates();
    candidates
        .iter()
        .map(|(path, _)| path)
        .find(|path| path.is_file())
        .cloned()
        .ok_or_else(|| Error::NotFound {
            what: "the bundled model",
            path: PathBuf::from(FILE_NAME),
            detail: format!(
                "not found (searched {}); set {VARIABLE} to a model file, or name one \
                 (the element's model-path property, quartznet-transcribe --model)",
                searched(&candidates)
            ),
        })
}

/// How `path`, a result of [`find`], was chosen, for a log line: the variable, or the
/// places searched in order. A model from the source tree says that only a cargo build
/// looks there.
pub fn explain(path: &Path) -> String {
    if std::env::var_os(VARIABLE).is_some_and(|v| !v.is_empty()) {
        return format!("default model {} (from {VARIABLE})", path.display());
    }
    let candidates = candidates();
    let origin = candidates.iter().find(|(p, _)| p == path).map(|(_, o)| *o);
    match origin {
        None => format!("default model {}", path.display()),
        Some(Origin::SourceTree) => format!(
            "default model {} from the source tree: a cargo build outside meson looks there \
             last (searched {}); an installed plugin does not, so install the model with \
             meson or set {VARIABLE} (or model-path)",
            path.display(),
            searched(&candidates)
        ),
        Some(origin) => format!(
            "default model {} ({}; searched {})",
            path.display(),
            origin.describe(),
            searched(&candidates)
        ),
    }
}

fn searched(candidates: &[(PathBuf, Origin)]) -> String {
    let shown: Vec<String> = candidates
        .iter()
        .map(|(path, origin)| format!("{} ({})", path.display(), origin.describe()))
        .collect();
    shown.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cargo build looks in its source tree, last; the explanation says so.
    #[test]
    fn cargo_build_searches_the_source_tree_last() {
        let candidates = candidates();
        let (last, origin) = candidates.last().unwrap();
        if option_env!("QUARTZNETSTT_MODELS_DIR").is_some() {
            assert_ne!(*origin, Origin::SourceTree, "{candidates:?}");
            return;
        }
        assert_eq!(*origin, Origin::SourceTree);
        assert!(last.ends_with("models/hama-en.onnx"), "{last:?}");
        let text = explain(last);
        assert!(
            text.contains("source tree") && text.contains(VARIABLE),
            "{text}"
        );
    }
}

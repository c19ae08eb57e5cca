// SPDX-License-Identifier: MPL-2.0
//! Where the bundled English model is found when the user names none.
//!
//! The repository ships it in `models/`; `meson install` copies that folder to
//! `<datadir>/quartznetstt/models` and tells the build where (`QUARTZNETSTT_MODELS_DIR`), so
//! an installed plugin finds its model, and a plugin built in the source tree finds the one
//! beside its sources.

use std::path::PathBuf;

/// File name of the bundled model (its description is the `.json` beside it).
pub const FILE_NAME: &str = "quartznet-en.onnx";
/// Variable naming a default model explicitly (takes precedence).
pub const VARIABLE: &str = "QUARTZNETSTT_MODEL";

/// The places searched, in order.
pub fn candidates() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(value) = std::env::var_os(VARIABLE).filter(|v| !v.is_empty()) {
        paths.push(PathBuf::from(value));
    }
    if let Some(dir) = option_env!("QUARTZNETSTT_MODELS_DIR") {
        paths.push(PathBuf::from(dir).join(FILE_NAME));
    }
    if let Some(dir) =
        crate::runtime::user_install_dir().and_then(|d| d.parent().map(|p| p.join("models")))
    {
        paths.push(dir.join(FILE_NAME));
    }
    paths.push(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("models")
            .join(FILE_NAME),
    );
    paths
}

/// The default model: the first candidate that exists, or an error listing where it looked.
pub fn find() -> Result<PathBuf, String> {
    let candidates = candidates();
    if let Some(explicit) = std::env::var_os(VARIABLE).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(explicit);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{VARIABLE}={} does not name a file",
                path.display()
            ))
        };
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            let searched: Vec<String> =
                candidates.iter().map(|p| p.display().to_string()).collect();
            format!(
                "the bundled model {FILE_NAME} was not found (searched {})",
                searched.join(", ")
            )
        })
}

// SPDX-License-Identifier: MPL-2.0
//! Finding a file the user may name with a variable or leave to a list of usual places (the
//! ONNX Runtime library, the bundled model). A leaf: the runtime and the bundled-model
//! lookup both use it, and it uses neither.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// The folder the GStreamer plugin file was loaded from (set by `plugin_init`).
static PLUGIN_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Records the folder of the loaded plugin file (the first call wins).
pub fn set_plugin_dir(dir: PathBuf) {
    let _ = PLUGIN_DIR.set(dir);
}

/// The folder the plugin file was loaded from, when the engine runs inside the plugin.
pub fn plugin_dir() -> Option<&'static Path> {
    PLUGIN_DIR.get().map(PathBuf::as_path)
}

/// The installation prefix of a plugin folder laid out as installs do:
/// `<prefix>/lib*/gstreamer-1.0` or, with a multiarch folder, `<prefix>/lib*/<triplet>/gstreamer-1.0`
/// (`/usr/lib/x86_64-linux-gnu/gstreamer-1.0` gives `/usr`). Anything else (cargo's
/// `target/release`) has none, so nothing is looked for relative to it.
pub fn install_prefix(plugin_dir: &Path) -> Option<&Path> {
    if plugin_dir.file_name()? != "gstreamer-1.0" {
        return None;
    }
    let is_libdir = |dir: &Path| {
        dir.file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with("lib"))
    };
    let parent = plugin_dir.parent()?;
    let libdir = if is_libdir(parent) {
        parent
    } else {
        parent.parent().filter(|dir| is_libdir(dir))?
    };
    libdir.parent()
}

/// `$XDG_DATA_HOME/quartznetstt` (default `~/.local/share/quartznetstt`): where
/// `tools/setup.sh` installs the runtime and a user may keep models.
pub fn user_data_dir() -> Option<PathBuf> {
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share"))
        })?;
    Some(data_home.join("quartznetstt"))
}

/// The file named by the first set variable of `variables`: `None` when none is set, an
/// error ([`Error::NotFound`]) when it names no file. A set variable is final: the usual
/// places are not searched behind the user's back.
pub fn from_variables(
    what: &'static str,
    name: &str,
    variables: &[&str],
) -> Option<Result<PathBuf>> {
    let (variable, value) = variables.iter().find_map(|variable| {
        std::env::var_os(variable)
            .filter(|v| !v.is_empty())
            .map(|value| (variable, PathBuf::from(value)))
    })?;
    Some(if value.is_file() {
        Ok(value)
    } else {
        Err(Error::NotFound {
            what,
            path: PathBuf::from(name),
            detail: format!("{variable}={} does not name a file", value.display()),
        })
    })
}

/// `paths` as a message lists them: comma-separated, in order.
pub fn list(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_prefix_of_usual_plugin_folders() {
        let prefix = |dir: &str| install_prefix(Path::new(dir)).map(Path::to_path_buf);
        assert_eq!(prefix("/usr/lib/gstreamer-1.0"), Some("/usr".into()));
        assert_eq!(prefix("/usr/lib64/gstreamer-1.0"), Some("/usr".into()));
        assert_eq!(
            prefix("/opt/q/lib/x86_64-linux-gnu/gstreamer-1.0"),
            Some("/opt/q".into())
        );
        assert_eq!(prefix("/work/repo/target/release"), None);
        assert_eq!(prefix("/work/repo/target/gstreamer-1.0"), None);
        assert_eq!(prefix("gstreamer-1.0"), None);
    }
}

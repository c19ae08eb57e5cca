// SPDX-License-Identifier: MPL-2.0
//! Where the engine's per-user caches live (compiled language models, G2P spellings): one
//! rule for all of them, a leaf module.

use std::ffi::OsString;
use std::path::PathBuf;

/// The cache folder `sub` of this user: `$variable` if set (`off`, `0` or empty: no cache),
/// else `$XDG_CACHE_HOME/quartznetstt/<sub>` (default `~/.cache/quartznetstt/<sub>`); `None`
/// when none of these variables is set. `var` reads the environment (a map in tests).
pub(crate) fn user_cache_dir(
    var: impl Fn(&str) -> Option<OsString>,
    variable: &str,
    sub: &str,
) -> Option<PathBuf> {
    match var(variable) {
        Some(value) if value.is_empty() || value == "off" || value == "0" => None,
        Some(value) => Some(PathBuf::from(value)),
        None => Some(
            var("XDG_CACHE_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| var("HOME").map(|home| PathBuf::from(home).join(".cache")))?
                .join("quartznetstt")
                .join(sub),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_then_xdg_then_home() {
        let dir_with = |pairs: &[(&str, &str)]| {
            user_cache_dir(
                |name| {
                    pairs
                        .iter()
                        .find(|(k, _)| *k == name)
                        .map(|(_, v)| OsString::from(v))
                },
                "VAR",
                "sub",
            )
        };
        let home = ("HOME", "/home/u");
        assert_eq!(
            dir_with(&[home]),
            Some(PathBuf::from("/home/u/.cache/quartznetstt/sub"))
        );
        assert_eq!(
            dir_with(&[home, ("XDG_CACHE_HOME", "/c")]),
            Some(PathBuf::from("/c/quartznetstt/sub"))
        );
        assert_eq!(
            dir_with(&[home, ("XDG_CACHE_HOME", "")]),
            Some(PathBuf::from("/home/u/.cache/quartznetstt/sub"))
        );
        assert_eq!(
            dir_with(&[home, ("VAR", "/fast")]),
            Some(PathBuf::from("/fast"))
        );
        for off in ["off", "0", ""] {
            assert_eq!(dir_with(&[home, ("VAR", off)]), None, "{off:?}");
        }
        assert_eq!(dir_with(&[]), None);
    }
}

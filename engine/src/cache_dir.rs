// SPDX-License-Identifier: MPL-2.0
//! Where the engine's per-user caches live (compiled language models, G2P spellings): one
//! rule for all of them, and the reader their binary files share; a leaf module.

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

/// Reads a cache file front to back; every read checks the bytes are there (`None`: the file
/// is short, damaged or not ours). The LM and G2P caches add their own record readers.
pub(crate) struct Cursor<'a> {
    pub(crate) bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.bytes.len() {
            return None;
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Some(head)
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    /// A string written as its length (u32) and UTF-8 bytes.
    pub(crate) fn string(&mut self) -> Option<String> {
        let len = self.u32()? as usize;
        std::str::from_utf8(self.take(len)?).ok().map(str::to_owned)
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

// SPDX-License-Identifier: MPL-2.0
//! Finding a file the user may name with a variable or leave to a list of usual places (the
//! ONNX Runtime library, the bundled model). A leaf: the runtime and the bundled-model
//! lookup both use it, and it uses neither.

use std::path::PathBuf;

use crate::error::{Error, Result};

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

/// The file named by the first set variable of `variables` (an error if it names no file),
/// else the first of `candidates` that exists. The error ([`Error::NotFound`], `what` and
/// `name` saying what was looked for) lists what was searched, so the caller only adds what
/// to do about it.
pub fn find_file(
    what: &'static str,
    name: &str,
    variables: &[&str],
    candidates: &[PathBuf],
) -> Result<PathBuf> {
    let not_found = |detail: String| Error::NotFound {
        what,
        path: PathBuf::from(name),
        detail,
    };
    for variable in variables {
        if let Some(value) = std::env::var_os(variable).filter(|v| !v.is_empty()) {
            let path = PathBuf::from(value);
            return if path.is_file() {
                Ok(path)
            } else {
                Err(not_found(format!(
                    "{variable}={} does not name a file",
                    path.display()
                )))
            };
        }
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            let searched: Vec<String> =
                candidates.iter().map(|p| p.display().to_string()).collect();
            not_found(format!("not found (searched {})", searched.join(", ")))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_existing_candidate_wins() {
        let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let found = find_file(
            "file",
            "x",
            &[],
            &[
                here.join("no-such-file"),
                here.join("Cargo.toml"),
                here.join("src/lib.rs"),
            ],
        );
        assert_eq!(found.unwrap(), here.join("Cargo.toml"));
        let error = find_file("file", "x", &[], &[here.join("no-such-file")]).unwrap_err();
        let Error::NotFound { detail, .. } = error else {
            panic!("{error:?}");
        };
        assert!(
            detail.starts_with("not found (searched ") && detail.contains("no-such-file"),
            "{detail}"
        );
    }
}

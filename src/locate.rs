// SPDX-License-Identifier: MPL-2.0
//! Finding a file the user may name with a variable or leave to a list of usual places (the
//! ONNX Runtime library, the default model).

use std::path::PathBuf;

/// The file named by the first set variable of `variables` (an error if it names no file),
/// else the first of `candidates` that exists. The error lists what was searched, so the
/// caller only adds what to do about it.
pub fn find_file(variables: &[&str], candidates: &[PathBuf]) -> Result<PathBuf, String> {
    for variable in variables {
        if let Some(value) = std::env::var_os(variable).filter(|v| !v.is_empty()) {
            let path = PathBuf::from(value);
            return if path.is_file() {
                Ok(path)
            } else {
                Err(format!(
                    "{variable}={} does not name a file",
                    path.display()
                ))
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
            format!("not found (searched {})", searched.join(", "))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_existing_candidate_wins() {
        let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let found = find_file(
            &[],
            &[
                here.join("no-such-file"),
                here.join("Cargo.toml"),
                here.join("build.rs"),
            ],
        );
        assert_eq!(found.unwrap(), here.join("Cargo.toml"));
        let error = find_file(&[], &[here.join("no-such-file")]).unwrap_err();
        assert!(
            error.starts_with("not found (searched ") && error.contains("no-such-file"),
            "{error}"
        );
    }
}

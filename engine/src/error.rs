// SPDX-License-Identifier: MPL-2.0
//! The engine's one error type. Each variant is a kind of failure a caller reacts to
//! differently (a GStreamer element maps each to its own error domain); the message names
//! the file or setting and what is wrong with it.

use std::path::{Path, PathBuf};

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The ONNX Runtime library cannot be found, loaded or initialised.
    #[error("{0}")]
    Runtime(String),
    /// A file (model, description, language model) does not exist.
    #[error("cannot read {what} {}: {detail}", path.display())]
    NotFound {
        /// What the file is, e.g. "model file".
        what: &'static str,
        /// The file, or the name searched for.
        path: PathBuf,
        /// Why it was not found (the system's message, or where it was searched).
        detail: String,
    },
    /// A file exists but cannot be read.
    #[error("cannot read {what} {}: {source}", path.display())]
    Read {
        /// What the file is, e.g. "language model".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// A file was read but is not what it should be: not a NeMo CTC model, a malformed model
    /// description or alphabet, a malformed ARPA language model.
    #[error("{name}: {reason}")]
    Invalid {
        /// What the file is, e.g. "model file".
        what: &'static str,
        /// How messages name the file (or the place in it, e.g. its ONNX metadata).
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Settings that are out of range or do not fit the model (window sizes, a beam search
    /// without a language model, a frontend the engine cannot compute).
    #[error("{0}")]
    Settings(String),
    /// Running the model failed, or it returned something other than it promised.
    #[error("{0}")]
    Inference(String),
    /// The execution provider asked for (a GPU) is not in the ONNX Runtime library or cannot
    /// start: a library it needs is missing, or there is no GPU. Never a silent fall back to
    /// the CPU (`model::provider`).
    #[error("execution provider {provider}: {detail}")]
    ExecutionProvider {
        /// The provider's name as users write it (`cuda`, `tensorrt`, `auto`).
        provider: &'static str,
        /// What is missing and what to do.
        detail: String,
    },
    /// The inference server that runs the model cannot be reached, or did not answer within
    /// its deadline (after the retries asked for): a live stream drops what it cannot
    /// recognise and tries again; anything else fails. The message names the server.
    #[error("{0}")]
    Unavailable(String),
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error on `path`, as [`Error::NotFound`] when the file does not exist.
    pub fn io(what: &'static str, path: &Path, error: std::io::Error) -> Self {
        if error.kind() == std::io::ErrorKind::NotFound {
            Self::NotFound {
                what,
                path: path.to_path_buf(),
                detail: error.to_string(),
            }
        } else {
            Self::Read {
                what,
                path: path.to_path_buf(),
                source: error,
            }
        }
    }

    /// Invalid content of the file `path`, named "`what` `path`" in the message.
    pub fn invalid(what: &'static str, path: &Path, reason: impl Into<String>) -> Self {
        Self::Invalid {
            what,
            name: format!("{what} {}", path.display()),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_split_missing_from_unreadable() {
        let path = Path::new("/nowhere/m.onnx");
        let missing = Error::io(
            "model file",
            path,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        );
        assert!(matches!(missing, Error::NotFound { .. }), "{missing:?}");
        assert!(
            missing
                .to_string()
                .starts_with("cannot read model file /nowhere/m.onnx: ")
        );
        let denied = Error::io(
            "model file",
            path,
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        assert!(matches!(denied, Error::Read { .. }), "{denied:?}");
    }
}

// SPDX-License-Identifier: MPL-2.0
//! Where the bundled English model is found when the user names none.
//!
//! The repository ships it in `models/`; `meson install` copies that folder to
//! `<datadir>/quartznetstt/models` and tells the build where (`QUARTZNETSTT_MODELS_DIR`), so
//! an installed plugin finds its model, and a plugin built in the source tree finds the one
//! beside its sources.

use std::path::{Path, PathBuf};

use super::locate;
use crate::error::Result;

/// File name of the bundled model (its description is the `.json` beside it).
pub const FILE_NAME: &str = "quartznet-en.onnx";
/// Variable naming a default model explicitly (takes precedence).
pub const VARIABLE: &str = "QUARTZNETSTT_MODEL";

/// The places searched, in order, when the variable is not set.
pub fn candidates() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(dir) = option_env!("QUARTZNETSTT_MODELS_DIR") {
        paths.push(PathBuf::from(dir).join(FILE_NAME));
    }
    if let Some(dir) = locate::user_data_dir() {
        paths.push(dir.join("models").join(FILE_NAME));
    }
    // The source tree: this crate sits one folder below the repository root.
    if let Some(root) = Path::new(env!("CARGO_MANIFEST_DIR")).parent() {
        paths.push(root.join("models").join(FILE_NAME));
    }
    paths
}

/// The default model: the variable, else the first candidate that exists, else an error
/// listing where it looked.
pub fn find() -> Result<PathBuf> {
    locate::find_file("the bundled model", FILE_NAME, &[VARIABLE], &candidates())
}

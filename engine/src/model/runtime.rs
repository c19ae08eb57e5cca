// SPDX-License-Identifier: MPL-2.0
//! The process-wide ONNX Runtime environment.
//!
//! `ort` is built with `load-dynamic`: the runtime library is a file found at run time, and
//! ONNX Runtime allows one environment per process, so every element instance (and the
//! command-line client) shares the one created here.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use super::locate;
use crate::error::{Error, Result};

/// Variable naming the ONNX Runtime library explicitly (takes precedence over everything).
pub const LIBRARY_VARIABLE: &str = "QUARTZNETSTT_ONNXRUNTIME";
/// `ort`'s own conventional variable, honoured second.
pub const ORT_VARIABLE: &str = "ORT_DYLIB_PATH";
/// The ONNX Runtime release the setup script installs (PyPI `onnxruntime` wheel).
pub const PINNED_VERSION: &str = "1.32.0";

static ENVIRONMENT: OnceLock<(ort::environment::Environment, PathBuf)> = OnceLock::new();
static INIT_LOCK: Mutex<()> = Mutex::new(());
/// Directories the plugin itself was loaded from (set by `plugin_init`), searched for the runtime.
static PLUGIN_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Records the directory of the loaded plugin file so a runtime installed beside it is found.
pub fn set_plugin_dir(dir: PathBuf) {
    let _ = PLUGIN_DIR.set(dir);
}

/// Where `tools/setup.sh` installs the runtime for the current user:
/// `$XDG_DATA_HOME/quartznetstt/onnxruntime` (default `~/.local/share/...`).
pub fn user_install_dir() -> Option<PathBuf> {
    locate::user_data_dir().map(|dir| dir.join("onnxruntime"))
}

/// The places searched, in order, for the runtime library when no variable names it.
pub fn candidate_paths() -> Vec<PathBuf> {
    let file = format!("libonnxruntime.so.{PINNED_VERSION}");
    let mut dirs: Vec<PathBuf> = Vec::new();
    // Only documented places: beside an arbitrary executable (gst-launch-1.0's /usr/bin, an
    // application's folder) or in GStreamer's plugin folder itself a stray library would be
    // loaded instead of the one installed for us.
    if let Some(dir) = PLUGIN_DIR.get() {
        dirs.push(dir.join("quartznetstt"));
    }
    if let Some(dir) = option_env!("QUARTZNETSTT_ONNXRUNTIME_DIR") {
        dirs.push(PathBuf::from(dir));
    }
    dirs.extend(user_install_dir());
    dirs.push(PathBuf::from("/usr/local/lib/quartznetstt"));
    let mut paths: Vec<PathBuf> = Vec::new();
    for dir in dirs {
        paths.push(dir.join(&file));
        paths.push(dir.join("libonnxruntime.so"));
    }
    paths
}

/// Finds the runtime library: the variables first, then [`candidate_paths`].
pub fn find_library() -> Result<PathBuf> {
    let variables = [LIBRARY_VARIABLE, ORT_VARIABLE];
    locate::find_file("ONNX Runtime library", "libonnxruntime.so", &variables, &candidate_paths())
        .map_err(|e| {
            let detail = match e {
                Error::NotFound { detail, .. } => detail,
                other => other.to_string(),
            };
            Error::Runtime(format!(
                "ONNX Runtime library {detail}. Run tools/setup.sh to install onnxruntime {PINNED_VERSION}, \
                 or set {LIBRARY_VARIABLE} to libonnxruntime.so"
            ))
        })
}

/// The shared environment, created on first use. A failure is not cached: a later call (for
/// example after the user installed the runtime) tries again.
pub fn environment() -> Result<&'static ort::environment::Environment> {
    if let Some((env, _)) = ENVIRONMENT.get() {
        return Ok(env);
    }
    let _guard = INIT_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((env, _)) = ENVIRONMENT.get() {
        return Ok(env);
    }
    let path = find_library()?;
    keep_telemetry_off_disk();
    let env = ort::init_from(&path)
        .map_err(|e| {
            Error::Runtime(format!(
                "cannot load ONNX Runtime from {}: {e}",
                path.display()
            ))
        })?
        .with_name("quartznetstt")
        // Microsoft's builds (PyPI's wheel) send usage events unless told not to; the engine
        // runs inside other people's programs and phones nobody.
        .with_telemetry(false)
        // Sessions that leave the thread count to ONNX Runtime share one pool of a thread per
        // core, so N element instances in one process use the cores once, not N times over
        // (N pools of one thread per core contend and run slower than one after another).
        .with_global_thread_pool(shared_pool().map_err(|e| {
            Error::Runtime(format!("cannot configure ONNX Runtime's thread pool: {e}"))
        })?)
        .build()
        .map_err(|e| {
            Error::Runtime(format!(
                "cannot create the ONNX Runtime environment ({}): {e}",
                path.display()
            ))
        })?;
    let _ = ENVIRONMENT.set((env, path));
    Ok(&ENVIRONMENT.get().expect("environment was just set").0)
}

/// ONNX Runtime's Linux builds store a telemetry device id and event database under
/// `~/.cache/Microsoft/DeveloperTools/.onnxruntime` when the library loads, unless this is set;
/// the API's telemetry switch comes too late to stop it.
pub const TELEMETRY_VARIABLE: &str = "ORT_DISABLE_TELEMETRY";

/// Sets [`TELEMETRY_VARIABLE`] before ONNX Runtime loads, unless the user set it.
fn keep_telemetry_off_disk() {
    if std::env::var_os(TELEMETRY_VARIABLE).is_none() {
        // SAFETY: setenv may race a getenv in another thread of the host program. This runs
        // once per process, under INIT_LOCK, when the first model loads (before ONNX Runtime
        // exists); programs that start threads earlier can set the variable themselves, and
        // then it is left alone (README "Security and limits").
        unsafe { std::env::set_var(TELEMETRY_VARIABLE, "1") };
    }
}

/// One intra-op thread per core, one inter-op thread, no spinning while idle (instances run
/// in bursts, one window per chunk).
fn shared_pool() -> ort::Result<ort::environment::GlobalThreadPoolOptions> {
    ort::environment::GlobalThreadPoolOptions::default()
        .with_intra_threads(0)?
        .with_inter_threads(1)?
        .with_spin_control(false)
}

/// The library the shared environment was loaded from, once it exists.
pub fn loaded_library() -> Option<&'static Path> {
    ENVIRONMENT.get().map(|(_, path)| path.as_path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_is_searched_only_where_documented() {
        let exe_dir = std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf();
        let candidates = candidate_paths();
        assert!(
            candidates
                .iter()
                .all(|p| p.parent() != Some(exe_dir.as_path())),
            "{candidates:?}"
        );
        assert!(
            candidates
                .iter()
                .any(|p| p.starts_with("/usr/local/lib/quartznetstt")),
            "{candidates:?}"
        );
    }
}

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

/// Where `tools/setup.sh` installs the runtime for the current user:
/// `$XDG_DATA_HOME/quartznetstt/onnxruntime` (default `~/.local/share/...`).
pub fn user_install_dir() -> Option<PathBuf> {
    locate::user_data_dir().map(|dir| dir.join("onnxruntime"))
}

/// The files searched, in order, for the runtime library when no variable names it, before
/// the dynamic linker is asked ([`linker_names`]).
pub fn candidate_paths() -> Vec<PathBuf> {
    let file = format!("libonnxruntime.so.{PINNED_VERSION}");
    let mut dirs: Vec<PathBuf> = Vec::new();
    // Only documented places: beside an arbitrary executable (gst-launch-1.0's /usr/bin, an
    // application's folder) or in GStreamer's plugin folder itself a stray library would be
    // loaded instead of the one installed for us.
    if let Some(dir) = locate::plugin_dir() {
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

/// The names the dynamic linker is asked for, in order, when no candidate file exists: the
/// pinned release's file name (a copy dropped into an `LD_LIBRARY_PATH` folder has only
/// that), the soname of every 1.x release (what ldconfig links and distributions ship) and
/// the development link.
pub fn linker_names() -> [String; 3] {
    [
        format!("libonnxruntime.so.{PINNED_VERSION}"),
        "libonnxruntime.so.1".to_string(),
        "libonnxruntime.so".to_string(),
    ]
}

/// Finds the runtime library: the variables first, then [`candidate_paths`], then the
/// dynamic linker's search for [`linker_names`]. Always an absolute path (see
/// [`linker_lookup`]). The linker's answer stays loaded in the process (the runtime is
/// about to be loaded from it anyway).
pub fn find_library() -> Result<PathBuf> {
    let variables = [LIBRARY_VARIABLE, ORT_VARIABLE];
    let what = "ONNX Runtime library";
    let name = "libonnxruntime.so";
    let found = match locate::from_variables(what, name, &variables) {
        Some(named) => named.map_err(|e| runtime_error(&e.to_string())),
        None => {
            let candidates = candidate_paths();
            candidates
                .iter()
                .find(|p| p.is_file())
                .cloned()
                .or_else(|| linker_names().iter().find_map(|name| linker_lookup(name)))
                .ok_or_else(|| {
                    runtime_error(&format!(
                        "ONNX Runtime library not found (searched {}, then the dynamic \
                         linker's path for {}: {})",
                        locate::list(&candidates),
                        linker_names().join(", "),
                        linker_path()
                    ))
                })
        }
    }?;
    // A relative name from a variable would be resolved by `ort` against the executable's
    // folder first: never beside the running program.
    std::path::absolute(&found).map_err(|e| runtime_error(&format!("{}: {e}", found.display())))
}

/// The not-found error with what to do about it.
fn runtime_error(detail: &str) -> Error {
    Error::Runtime(format!(
        "{detail}. Run tools/setup.sh to install onnxruntime {PINNED_VERSION}, set \
         {LIBRARY_VARIABLE} to libonnxruntime.so, or install it where the dynamic linker finds it"
    ))
}

/// How the dynamic linker searches, as the not-found message shows it.
fn linker_path() -> String {
    let variable = match std::env::var_os("LD_LIBRARY_PATH").filter(|v| !v.is_empty()) {
        Some(value) => format!("LD_LIBRARY_PATH={}", value.to_string_lossy()),
        None => "LD_LIBRARY_PATH (unset)".to_string(),
    };
    format!("{variable}, /etc/ld.so.cache, the system library folders (/lib, /usr/lib)")
}

/// What `dlopen(name)` finds (`LD_LIBRARY_PATH`, `/etc/ld.so.cache`, the system library
/// folders), as an absolute path, if it is an ONNX Runtime. `ort` is given that path rather
/// than the bare name: with a bare name it would try the executable's folder first.
pub fn linker_lookup(name: &str) -> Option<PathBuf> {
    use libloading::os::unix::{Library, RTLD_LAZY, RTLD_LOCAL};
    use std::ffi::{CStr, OsStr};
    use std::os::unix::ffi::OsStrExt;

    // SAFETY: loading a shared library runs its initialisers; a library named like ONNX
    // Runtime on the linker's path is what the user installed for us (as for any candidate).
    // The flags are the ones `ort` loads it with.
    let library = unsafe { Library::open(Some(name), RTLD_LAZY | RTLD_LOCAL) }.ok()?;
    // SAFETY: the symbol is only used as an address, never called.
    let entry = unsafe { library.get::<unsafe extern "C" fn()>(b"OrtGetApiBase\0") }.ok()?;
    let address = *entry as *const std::ffi::c_void;
    // SAFETY: dladdr fills `info` for an address inside a loaded object; the file name it
    // points to lives as long as the object, which stays loaded (forgotten below).
    let file = unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        if libc::dladdr(address, &mut info) == 0 || info.dli_fname.is_null() {
            return None;
        }
        PathBuf::from(OsStr::from_bytes(CStr::from_ptr(info.dli_fname).to_bytes()))
    };
    // Kept loaded: `ort` opens the same file next, and unloading ONNX Runtime is not safe.
    std::mem::forget(library);
    // A relative LD_LIBRARY_PATH entry is relative to the working folder, as the loader took it.
    std::path::absolute(file).ok()
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
    // Before the search: the dynamic linker's answer is loaded while searching.
    keep_telemetry_off_disk();
    let path = find_library()?;
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

    /// The dynamic linker's answer counts only if it is an ONNX Runtime.
    #[test]
    fn the_linker_answer_must_be_onnx_runtime() {
        assert_eq!(linker_lookup("libquartznetstt-no-such-library.so"), None);
        // Loads (the C library's maths), but has no OrtGetApiBase.
        assert_eq!(linker_lookup("libm.so.6"), None);
    }
}

// SPDX-License-Identifier: MPL-2.0
//! Where the ONNX Runtime library is found, checked in child processes (the dynamic loader
//! reads `LD_LIBRARY_PATH` when a process starts, and a process loads one runtime): this
//! test executable runs itself with a clean environment, its `child` test loads the runtime
//! and prints what happened.

use std::path::{Path, PathBuf};
use std::process::Command;

use quartznet_engine::model::runtime;

/// Set in the child's environment: the `child` test then does its work.
const CHILD: &str = "QUARTZNETSTT_RUNTIME_SEARCH_CHILD";

/// In a child: loads the runtime and prints `LOADED <path>` or `ERROR <message>`. Does
/// nothing in a normal test run.
#[test]
fn child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    // On a line of its own: libtest has written "test child ... " before.
    match runtime::environment() {
        Ok(_) => println!("\nLOADED {}", runtime::loaded_library().unwrap().display()),
        Err(e) => println!("\nERROR {e}"),
    }
}

/// Runs the `child` test in a new process with no variable naming the runtime, an empty
/// home (no per-user runtime) and `ld_library_path`, from `cwd`; returns its report line.
fn run_child(ld_library_path: &str, home: &Path, cwd: &Path) -> String {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .current_dir(cwd)
        .env(CHILD, "1")
        .env("HOME", home)
        .env("LD_LIBRARY_PATH", ld_library_path)
        .env_remove("XDG_DATA_HOME")
        .env_remove(runtime::LIBRARY_VARIABLE)
        .env_remove(runtime::ORT_VARIABLE)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .find(|line| line.starts_with("LOADED ") || line.starts_with("ERROR "))
        .unwrap_or_else(|| panic!("no report from the child:\n{stdout}"))
        .to_string()
}

/// The runtime this machine has (tools/setup.sh's per-user copy, or a variable's).
fn installed_runtime() -> PathBuf {
    std::fs::canonicalize(runtime::find_library().expect("ONNX Runtime installed (tools/setup.sh)"))
        .unwrap()
}

/// A runtime only the dynamic linker can find (under its soname, in an `LD_LIBRARY_PATH`
/// folder) is loaded, from its absolute path, also when the folder is given relative to
/// the working folder.
#[test]
fn the_dynamic_linker_path_is_searched() {
    let library = installed_runtime();
    let home = tempfile::tempdir().unwrap();
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("lib");
    std::fs::create_dir(&dir).unwrap();
    let link = dir.join("libonnxruntime.so.1");
    std::os::unix::fs::symlink(&library, &link).unwrap();

    let report = run_child(dir.to_str().unwrap(), home.path(), home.path());
    assert_eq!(report, format!("LOADED {}", link.display()));
    // Relative: resolved against the working folder, as the loader did.
    let report = run_child("lib", home.path(), base.path());
    assert_eq!(report, format!("LOADED {}", link.display()));
}

/// With no runtime anywhere, the error lists every place, the dynamic linker's path last.
#[test]
fn not_found_names_the_linker_path() {
    let home = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let report = run_child(empty.path().to_str().unwrap(), home.path(), home.path());
    if report.starts_with("LOADED ") {
        eprintln!("skipped: this system's dynamic linker finds a runtime ({report})");
        return;
    }
    let user_dir = home.path().join(".local/share/quartznetstt/onnxruntime");
    for part in [
        user_dir.to_str().unwrap(),
        "/usr/local/lib/quartznetstt",
        "dynamic linker",
        "libonnxruntime.so.1,",
        &format!("LD_LIBRARY_PATH={}", empty.path().display()),
        "/etc/ld.so.cache",
        "tools/setup.sh",
    ] {
        assert!(report.contains(part), "{part:?} not in {report}");
    }
}

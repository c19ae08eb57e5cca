// SPDX-License-Identifier: MPL-2.0
//! Many models in one process share ONNX Runtime's threads: eight sessions that leave the
//! thread count to ONNX Runtime add one pool of a thread per core, not eight. (Its own test
//! binary: the count of the process's threads must not see other tests' threads.)

#[path = "../../tests/common/mod.rs"]
mod common;

use quartznet_engine::model::{LoadOptions, OnnxModel};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn instances_share_one_thread_pool() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The first load creates the shared environment and its pool.
    let first = OnnxModel::load(&common::model_path(), &LoadOptions { threads: 0 }).unwrap();
    let before = threads();
    let more: Vec<OnnxModel> = (0..7)
        .map(|_| OnnxModel::load(&common::model_path(), &LoadOptions { threads: 0 }).unwrap())
        .collect();
    assert_eq!(threads(), before, "7 more sessions added threads");
    assert!(
        before <= cores + 4,
        "{before} threads for one session on {cores} cores"
    );
    // A session that asks for its own threads gets its own pool.
    let own = OnnxModel::load(&common::model_path(), &LoadOptions { threads: 2 }).unwrap();
    assert!(threads() > before);
    drop((first, more, own));
}

// SPDX-License-Identifier: MPL-2.0
//! Models loaded from one file share their ONNX Runtime sessions: a pool that grows to as many
//! sessions as runs overlap, never beyond what the cores serve, and gives every run the same
//! result as a model of its own would.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::sync::Arc;

use quartznet_engine::frontend::Features;
use quartznet_engine::model::{AcousticModel, LoadOptions, OnnxModel};

fn load(threads: usize) -> OnnxModel {
    OnnxModel::load(&common::model_path(), &LoadOptions { threads }).unwrap()
}

/// Features that differ from one instance to the next, so a run answered with another
/// instance's input would show.
fn features(seed: usize, frames: usize) -> Features {
    let n_mels = 64;
    let data = (0..n_mels * frames)
        .map(|i| (((i * 7919 + seed * 104_729) % 2000) as f32 / 1000.0) - 1.0)
        .collect();
    Features {
        n_mels,
        frames,
        data,
    }
}

fn infer(model: &mut OnnxModel, features: &Features) -> Vec<f32> {
    let mut out = Vec::new();
    model.infer(features, &mut out).unwrap();
    out
}

#[test]
fn models_of_one_file_share_sessions_and_runs_stay_their_own() {
    let first = load(1);
    let others: Vec<OnnxModel> = (0..7).map(|_| load(1)).collect();
    for other in &others {
        assert!(Arc::ptr_eq(
            first.sessions().unwrap(),
            other.sessions().unwrap()
        ));
    }
    assert!(!Arc::ptr_eq(
        first.sessions().unwrap(),
        load(2).sessions().unwrap()
    ));

    // Each instance's expected output, one run at a time.
    let inputs: Vec<Features> = (0..8).map(|i| features(i, 150 + 10 * i)).collect();
    let mut reference = load(1);
    let expected: Vec<Vec<f32>> = inputs.iter().map(|f| infer(&mut reference, f)).collect();

    // Eight instances at once, several runs each.
    let mut models = others;
    models.push(first);
    let results: Vec<Vec<Vec<f32>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = models
            .iter_mut()
            .zip(&inputs)
            .map(|(model, input)| {
                scope.spawn(move || (0..5).map(|_| infer(model, input)).collect())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, runs) in results.iter().enumerate() {
        for run in runs {
            assert!(run == &expected[i], "instance {i} got another result");
        }
    }
    let pool = models[0].sessions().unwrap();
    assert!(pool.sessions() >= 1 && pool.sessions() <= pool.limit());
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    assert_eq!(pool.limit(), cores.max(1));
    // Sessions on the process's shared thread pool use every core each: one is enough.
    assert_eq!(load(0).sessions().unwrap().limit(), 1);
}

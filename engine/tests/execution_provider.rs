// SPDX-License-Identifier: MPL-2.0
//! Choosing where ONNX Runtime runs a model: the CPU by default, a GPU provider only when the
//! loaded library has it and it starts (else an error naming what is missing), and `auto`
//! falling back to the CPU with its reason. Runs with whatever library the tests load: the
//! CPU-only build `tools/setup.sh` installs checks the errors; a GPU build on a machine
//! without a GPU checks the failure to start.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::sync::Arc;

use quartznet_engine::Error;
use quartznet_engine::model::provider::available_providers;
use quartznet_engine::model::{ExecutionProvider, LoadOptions, OnnxModel};

fn load(provider: ExecutionProvider) -> quartznet_engine::Result<OnnxModel> {
    OnnxModel::load_on(&common::model_path(), &LoadOptions { threads: 1 }, provider)
}

fn has(provider: &str) -> bool {
    available_providers()
        .unwrap()
        .iter()
        .any(|name| name == provider)
}

#[test]
fn the_cpu_is_the_default_and_always_runs() {
    let model = OnnxModel::load(&common::model_path(), &LoadOptions { threads: 1 }).unwrap();
    assert_eq!(model.sessions().unwrap().provider(), ExecutionProvider::Cpu);
    assert_eq!(model.sessions().unwrap().fallback(), None);
    assert!(has("CPUExecutionProvider"));
}

/// A GPU provider that cannot run is an error at load naming the provider and what is
/// missing, never a model that quietly runs on the CPU.
#[test]
fn a_gpu_provider_that_cannot_start_is_an_error() {
    for (provider, name) in [
        (ExecutionProvider::Cuda, "CUDAExecutionProvider"),
        (ExecutionProvider::TensorRt, "TensorrtExecutionProvider"),
    ] {
        let error = match load(provider) {
            // A GPU build on a machine with a GPU (and its libraries): it runs there.
            Ok(model) => {
                assert_eq!(model.sessions().unwrap().provider(), provider);
                continue;
            }
            Err(e) => e,
        };
        assert!(
            matches!(&error, Error::ExecutionProvider { provider: p, .. } if *p == provider.name()),
            "{error:?}"
        );
        let text = error.to_string();
        assert!(
            text.starts_with(&format!("execution provider {provider}: ")),
            "{text}"
        );
        assert!(text.contains("tools/setup.sh --gpu"), "{text}");
        if !has(name) {
            // The CPU-only build: the library and what it lacks are named.
            assert!(text.contains(&format!("is built without {name}")), "{text}");
            assert!(text.contains("CPUExecutionProvider"), "{text}");
        } else {
            // The GPU build without a GPU or CUDA: ONNX Runtime's reason is kept.
            assert!(text.contains("ONNX Runtime could not start it: "), "{text}");
        }
    }
}

/// `auto` runs where CUDA starts and otherwise on the CPU, saying why; its pool is not the
/// CPU one (a pool is per file, threads and provider).
#[test]
fn auto_falls_back_to_the_cpu_with_its_reason() {
    let auto = load(ExecutionProvider::Auto).unwrap();
    let cpu = load(ExecutionProvider::Cpu).unwrap();
    assert!(!Arc::ptr_eq(
        auto.sessions().unwrap(),
        cpu.sessions().unwrap()
    ));
    match auto.sessions().unwrap().provider() {
        ExecutionProvider::Cuda => assert_eq!(auto.sessions().unwrap().fallback(), None),
        ExecutionProvider::Cpu => {
            let reason = auto
                .sessions()
                .unwrap()
                .fallback()
                .expect("a reason for the CPU");
            assert!(reason.starts_with("execution provider cuda: "), "{reason}");
        }
        other => panic!("auto ran on {other}"),
    }
    // Loaded twice, the same sessions: the fallback is decided once.
    let again = load(ExecutionProvider::Auto).unwrap();
    assert!(Arc::ptr_eq(
        auto.sessions().unwrap(),
        again.sessions().unwrap()
    ));
}

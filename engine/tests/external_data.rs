// SPDX-License-Identifier: MPL-2.0
//! Models whose weights are in ONNX external data files: what `torch.onnx.export` writes for
//! a model over 2 GB (NeMo's export of Parakeet-CTC 0.6B and 1.1B) and what
//! `onnx.save(..., save_as_external_data=True)` writes. The engine hands ONNX Runtime the
//! model's path (never its bytes), so the runtime finds the data beside it.
//!
//! Fixture: `tests/fixtures/models/external-data/energy-letters.onnx` (the graph, 403 bytes)
//! and `energy-letters.onnx.data` (its weights), the same model as
//! `tests/fixtures/models/energy-letters.onnx` (`tools/make_test_models.py`). The model
//! names its data file as the 24 bytes `energy-letters.onnx.data`; the refusal tests rewrite
//! them in place to other names of that length, which keeps the protobuf valid.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};

use common::*;
use quartznet_engine::frontend::{FeatureExtractor, Features};
use quartznet_engine::model::{AcousticModel, LoadOptions, OnnxModel};

const DATA_NAME: &[u8] = b"energy-letters.onnx.data";

fn single_file() -> PathBuf {
    fixtures().join("models/energy-letters.onnx")
}

fn external() -> PathBuf {
    fixtures().join("models/external-data/energy-letters.onnx")
}

fn load(path: &Path) -> quartznet_engine::Result<OnnxModel> {
    OnnxModel::load(path, &LoadOptions { threads: 1 })
}

/// The model's features for a clip of speech.
fn features(model: &OnnxModel) -> Features {
    let samples = read_wav(&fixtures().join("audio/espeak_fox.wav"));
    let mut features = Features::default();
    FeatureExtractor::new(model.description().frontend.clone())
        .unwrap()
        .compute(&samples, &mut features);
    features
}

/// The external-data model's graph, its data file's name replaced by `name` (24 bytes), in
/// `dir`.
fn graph_naming(dir: &Path, name: &[u8]) -> PathBuf {
    assert_eq!(name.len(), DATA_NAME.len(), "the name must keep its length");
    let mut bytes = std::fs::read(external()).unwrap();
    let mut replaced = 0;
    let mut i = 0;
    while i + DATA_NAME.len() <= bytes.len() {
        if &bytes[i..i + DATA_NAME.len()] == DATA_NAME {
            bytes[i..i + DATA_NAME.len()].copy_from_slice(name);
            replaced += 1;
            i += DATA_NAME.len();
        } else {
            i += 1;
        }
    }
    assert!(replaced > 0, "the fixture does not name {DATA_NAME:?}");
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("energy-letters.onnx");
    std::fs::write(&path, bytes).unwrap();
    path
}

fn data() -> PathBuf {
    fixtures().join("models/external-data/energy-letters.onnx.data")
}

fn load_error(path: &Path) -> String {
    match load(path) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_model_with_external_data_loads_from_its_path_and_computes_the_same_log_probs() {
    // The weights really are elsewhere: the graph alone is a few hundred bytes.
    let graph_bytes = std::fs::metadata(external()).unwrap().len();
    let data_bytes = std::fs::metadata(data()).unwrap().len();
    assert!(
        graph_bytes < 1024 && data_bytes > 7000,
        "{graph_bytes} / {data_bytes}"
    );

    let mut single = load(&single_file()).unwrap();
    let mut split = load(&external()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(split.vocab_size(), single.vocab_size());
    let features = features(&single);
    let (mut expected, mut got) = (Vec::new(), Vec::new());
    let frames = single.infer(&features, &mut expected).unwrap();
    assert_eq!(split.infer(&features, &mut got).unwrap(), frames);
    assert!(frames > 10);
    assert_eq!(got, expected, "the same weights give the same log-probs");
    // Not a constant output: the weights were read, not zeros.
    let vocab = single.vocab_size();
    let best = |t: usize| {
        let row = &got[t * vocab..(t + 1) * vocab];
        (0..vocab).fold(0, |b, i| if row[i] > row[b] { i } else { b })
    };
    let distinct: std::collections::BTreeSet<usize> = (0..frames).map(best).collect();
    assert!(distinct.len() > 2, "{distinct:?}");
}

#[test]
fn a_missing_external_data_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("energy-letters.onnx");
    std::fs::copy(external(), &path).unwrap();
    let message = load_error(&path);
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("external data"), "{message}");
    assert!(message.contains("energy-letters.onnx.data"), "{message}");
    assert!(message.contains("does not exist"), "{message}");
}

#[test]
fn a_truncated_external_data_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("energy-letters.onnx");
    std::fs::copy(external(), &path).unwrap();
    let bytes = std::fs::read(data()).unwrap();
    std::fs::write(dir.path().join("energy-letters.onnx.data"), &bytes[..100]).unwrap();
    let message = load_error(&path);
    assert!(message.contains("external data"), "{message}");
}

/// ONNX Runtime (1.32, the release the engine is set up with) reads external data only from
/// regular files inside the model's folder: a model cannot make the engine read any other
/// file (README, *Security and limits*).
#[test]
fn external_data_outside_the_model_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("energy-letters.o.data");
    std::fs::copy(data(), &outside).unwrap();

    // A relative name leading out of the folder.
    let path = graph_naming(&dir.path().join("parent"), b"../energy-letters.o.data");
    let message = load_error(&path);
    assert!(message.contains("escapes model directory"), "{message}");

    // An absolute name.
    let path = graph_naming(&dir.path().join("absolute"), b"/tmp/energy-letters.data");
    let message = load_error(&path);
    assert!(message.contains("Absolute path not allowed"), "{message}");

    // A link in the folder to a file outside it.
    let path = graph_naming(&dir.path().join("link"), DATA_NAME);
    std::os::unix::fs::symlink(&outside, dir.path().join("link/energy-letters.onnx.data")).unwrap();
    let message = load_error(&path);
    assert!(message.contains("escapes model directory"), "{message}");

    // A FIFO in the folder: refused, not waited on.
    let path = graph_naming(&dir.path().join("fifo"), DATA_NAME);
    let fifo = dir.path().join("fifo/energy-letters.onnx.data");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let message = load_error(&path);
    assert!(message.contains("regular file"), "{message}");

    // The control: the same rewriting with a name inside the folder loads.
    let path = graph_naming(&dir.path().join("inside"), b"energy-letters.o.data.in");
    std::fs::copy(data(), dir.path().join("inside/energy-letters.o.data.in")).unwrap();
    load(&path).unwrap_or_else(|e| panic!("{e}"));
}

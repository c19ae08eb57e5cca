// SPDX-License-Identifier: MPL-2.0
//! Fixture access shared by the integration tests: the NeMo golden fixtures written by
//! `tools/nemo_parity.py` (see tests/fixtures/manifest.json).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use gstquartznetstt::description::ModelDescription;
use gstquartznetstt::frontend::PaddingMode;
use gstquartznetstt::model::{LoadOptions, OnnxModel};
use serde::Deserialize;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[derive(Deserialize)]
pub struct Manifest {
    pub model: String,
    /// Output frames on each side that influence an output frame.
    pub receptive_field_frames: usize,
    pub versions: Vec<Version>,
    pub clips: Vec<Clip>,
}

#[derive(Deserialize)]
pub struct Version {
    pub nemo_version: String,
    pub dir: String,
    pub pad_mode: String,
}

impl Version {
    pub fn padding(&self) -> PaddingMode {
        match self.pad_mode.as_str() {
            "reflect" => PaddingMode::Reflect,
            "zeros" => PaddingMode::Zeros,
            other => panic!("unknown pad mode {other}"),
        }
    }
}

#[derive(Deserialize)]
pub struct Clip {
    pub name: String,
    pub audio: String,
    pub samples: usize,
    pub transcripts: std::collections::BTreeMap<String, String>,
}

pub fn manifest() -> Manifest {
    let text = std::fs::read_to_string(fixtures().join("manifest.json")).expect("fixture manifest");
    serde_json::from_str(&text).expect("valid fixture manifest")
}

pub fn model_path() -> PathBuf {
    fixtures().join(manifest().model)
}

pub fn load_model() -> OnnxModel {
    OnnxModel::load(&model_path(), &LoadOptions { threads: 1 }).expect("fixture model loads")
}

/// The fixture model's description with the padding of one NeMo version.
pub fn description_for(version: &Version) -> ModelDescription {
    let mut description = ModelDescription::load_sidecar(&model_path())
        .unwrap()
        .expect("sidecar exists");
    description.frontend.padding = version.padding();
    description
}

/// 16-bit mono WAV samples as f32 (int16 / 32768, as NeMo reads them).
pub fn read_wav(path: &Path) -> Vec<f32> {
    let mut reader =
        hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.bits_per_sample),
        (1, 16),
        "{}",
        path.display()
    );
    reader
        .samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect()
}

pub fn clip_samples(clip: &Clip) -> Vec<f32> {
    let samples = read_wav(&fixtures().join(&clip.audio));
    assert_eq!(samples.len(), clip.samples, "{}", clip.name);
    samples
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

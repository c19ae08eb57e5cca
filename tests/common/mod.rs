// SPDX-License-Identifier: MPL-2.0
//! Fixture access shared by the integration tests of the plugin (`tests/`) and of the engine
//! (`engine/tests/`, which include this file by path): the NeMo golden fixtures written by
//! `tools/nemo_parity.py` (see tests/fixtures/manifest.json).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use quartznet_engine::frontend::PaddingMode;
use quartznet_engine::model::{LoadOptions, ModelDescription, OnnxModel};
use serde::Deserialize;

/// The repository root, from the plugin (the root package) or the engine (one folder down).
pub fn repository() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    if manifest.join("tests/fixtures").is_dir() {
        manifest.to_path_buf()
    } else {
        manifest
            .parent()
            .expect("engine/ has a parent")
            .to_path_buf()
    }
}

pub fn fixtures() -> PathBuf {
    repository().join("tests/fixtures")
}

/// A float32 `.npy` array (NeMo's fixtures are C-ordered float32).
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

pub fn read_npy(path: &Path) -> Result<NpyArray, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let npy = npyz::NpyFile::new(&bytes[..]).map_err(|e| e.to_string())?;
    if npy.order() != npyz::Order::C {
        return Err("Fortran-ordered array".to_string());
    }
    let shape = npy.shape().iter().map(|&d| d as usize).collect();
    let data = npy.into_vec::<f32>().map_err(|e| e.to_string())?;
    Ok(NpyArray { shape, data })
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

/// Absolute error of a single-precision log-mel value as NeMo computes it: against an
/// exact (f64) evaluation of the same formula, NeMo's torch.stft path is off by up to
/// 4.1e-5 (tools/spec_frontend.py). Normalisation divides it by the band's spread, so a band
/// with almost no variation (audio band-limited below 8 kHz) magnifies NeMo's own rounding.
pub const LOG_MEL_RESOLUTION: f32 = 1e-4;
/// Bands spread less than this (in log units) magnify that rounding past 1e-3 after
/// normalisation: ill-conditioned.
pub const WELL_CONDITIONED_SPREAD: f32 = 0.1;

/// Per-band standard deviation of the raw log-mel features of `samples` (what per-feature
/// normalisation divides by) under `version`'s frontend.
pub fn band_spreads(version: &Version, samples: &[f32]) -> Vec<f32> {
    band_spreads_for(&description_for(version).frontend, samples)
}

/// [`band_spreads`] under any frontend.
pub fn band_spreads_for(
    frontend: &quartznet_engine::frontend::FrontendConfig,
    samples: &[f32],
) -> Vec<f32> {
    use quartznet_engine::frontend::{FeatureExtractor, Features};
    let mut extractor = FeatureExtractor::new(frontend.clone()).unwrap();
    let mut raw = Features::default();
    extractor.compute_unnormalized(samples, &mut raw);
    (0..raw.n_mels)
        .map(|m| {
            let row = raw.row(m);
            let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / row.len() as f64;
            let var = row
                .iter()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>()
                / (row.len().max(2) - 1) as f64;
            var.sqrt() as f32
        })
        .collect()
}

/// The frames at which greedy CTC emits each token of the frame `labels` (blank = `blank`):
/// a label that is not blank and differs from the frame before, or follows a blank.
pub fn ctc_emissions(labels: &[usize], blank: usize) -> Vec<u64> {
    let mut previous = blank;
    let mut out = Vec::new();
    for (t, &label) in labels.iter().enumerate() {
        if label != blank && (label != previous || previous == blank) {
            out.push(t as u64);
        }
        previous = label;
    }
    out
}

/// Whether every band varies enough for 1e-3 comparisons after normalisation.
pub fn well_conditioned(spreads: &[f32]) -> bool {
    spreads.iter().all(|&s| s >= WELL_CONDITIONED_SPREAD)
}

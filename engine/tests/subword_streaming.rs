// SPDX-License-Identifier: MPL-2.0
//! Buffered streaming of the sub-word models against NeMo's own buffered CTC inference
//! (`FrameBatchASR`, `docs/STREAMING.md`): the tiny Citrinet, Conformer-CTC, FastConformer-CTC
//! and hybrid (CTC head) exports of `tests/fixtures/subword-models/`, on clips of 25 and 68 s
//! joined from the fixture audio (`long_clips.json`, built here from the same recipe as
//! `tools/subword_models.py` builds them), at the element's default windows and at latency
//! 2000 as the engine rounds them to the model's 40 or 80 ms output frames. The recogniser in
//! NeMo-parity mode (`StreamEdges::NemoFrameBatch`) must write NeMo's text byte for byte, emit
//! NeMo's greedy tokens on NeMo's frames and keep log-probs within 1e-3 of the rows NeMo's
//! fixtures hold. Also: windows longer than a Conformer's position table are refused, file
//! windows are fitted to it, and offline recognition of a longer utterance is refused.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::*;
use quartznet_engine::Error;
use quartznet_engine::config::{
    DEFAULT_CHUNK_MS, DEFAULT_LEFT_CONTEXT_MS, DEFAULT_RIGHT_CONTEXT_MS, DEFAULT_WORD_GAP_MS,
    DecoderKind, DecoderSettings, LatencyPlan, RecognizerConfig, decoder_config,
};
use quartznet_engine::decode::{DecoderConfig, transcript};
use quartznet_engine::model::{AcousticModel, LoadOptions, ModelDescription, OnnxModel};
use quartznet_engine::streaming::{
    ChunkResult, StreamEdges, StreamingRecognizer, WindowConfig, recognize_offline,
};
use serde::Deserialize;

const FAMILIES: [&str; 4] = ["citrinet", "conformer", "fastconformer", "hybrid"];
const LOGPROB_TOLERANCE: f32 = 1e-3;

#[derive(Deserialize)]
struct LongClips {
    sample_rate: u32,
    clips: Vec<LongClip>,
}

#[derive(Deserialize)]
struct LongClip {
    name: String,
    parts: Vec<Part>,
    samples: usize,
    sum: i64,
    weighted_sum: i64,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Part {
    Clip { clip: String },
    Silence { silence: usize },
}

#[derive(Deserialize)]
struct StreamingFixture {
    frame_ms: usize,
    settings: Vec<Setting>,
    /// Clip -> setting -> NeMo's result.
    clips: BTreeMap<String, BTreeMap<String, Case>>,
}

#[derive(Deserialize)]
struct Setting {
    name: String,
    /// The engine's windows before rounding: left context, chunk, right context.
    asked_ms: [u32; 3],
    left_ms: usize,
    chunk_ms: usize,
    right_ms: usize,
}

#[derive(Deserialize)]
struct Case {
    buffers: usize,
    buffer_frames: usize,
    /// Kept frames of every buffer but NeMo's last (whose features it fills with 0.0).
    kept_frames: usize,
    /// NeMo's CTC decoding (what `transcribe()` writes) of those frames.
    text_full_buffers: String,
    /// `FrameBatchASR.greedy_merge` of the same frames.
    merge_text_full_buffers: String,
    tokens: Vec<usize>,
    token_frames: Vec<u64>,
    /// Kept frames whose log-probs `streaming.logprobs.npy` holds, from row `row_offset`.
    rows: Vec<usize>,
    row_offset: usize,
}

fn family_dir(name: &str) -> PathBuf {
    fixtures().join("subword-models").join(name)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &std::path::Path) -> T {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load(name: &str) -> OnnxModel {
    let path = family_dir(name).join("model.onnx");
    OnnxModel::load(&path, &LoadOptions { threads: 1 })
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The long clips, built from their recipe exactly as `tools/subword_models.py` builds them
/// (int16 samples / 32768, silences of digital zeros) and checked against its checksums.
fn long_clips() -> Vec<(String, Vec<f32>)> {
    let clips: LongClips = read_json(&fixtures().join("subword-models/long_clips.json"));
    assert_eq!(clips.sample_rate, 16_000);
    clips
        .clips
        .into_iter()
        .map(|clip| {
            let mut samples = Vec::new();
            for part in &clip.parts {
                match part {
                    Part::Clip { clip } => samples.extend(read_wav(
                        &fixtures().join("audio").join(format!("{clip}.wav")),
                    )),
                    Part::Silence { silence } => samples.extend(std::iter::repeat_n(0.0, *silence)),
                }
            }
            let ints: Vec<i64> = samples.iter().map(|&s| (s * 32768.0) as i64).collect();
            assert_eq!(ints.len(), clip.samples, "{}", clip.name);
            assert_eq!(ints.iter().sum::<i64>(), clip.sum, "{}", clip.name);
            let weighted: i64 = ints.iter().enumerate().map(|(i, &s)| i as i64 * s).sum();
            assert_eq!(weighted, clip.weighted_sum, "{}", clip.name);
            let seconds = samples.len() as f64 / 16_000.0;
            assert!(
                (20.0..=70.0).contains(&seconds),
                "{}: {seconds} s",
                clip.name
            );
            (clip.name, samples)
        })
        .collect()
}

/// The greedy (argmax) label of every frame.
fn argmax(logprobs: &[f32], vocab: usize) -> Vec<usize> {
    logprobs
        .chunks_exact(vocab)
        .map(|row| (0..vocab).fold(0, |best, c| if row[c] > row[best] { c } else { best }))
        .collect()
}

/// The window the engine makes of `setting`'s asked windows for `description`'s model.
fn engine_window(setting: &Setting, description: &ModelDescription) -> WindowConfig {
    let [left, chunk, right] = setting.asked_ms;
    let config = RecognizerConfig {
        left_context_ms: left,
        chunk_ms: chunk,
        right_context_ms: right,
        ..RecognizerConfig::default()
    };
    WindowConfig::for_model(&config, description).0
}

/// The recogniser in NeMo-parity mode over `samples` in uneven pieces: (kept log-probs, text).
fn stream(model: OnnxModel, geometry: WindowConfig, samples: &[f32]) -> (Vec<f32>, String) {
    let description = model.description().clone();
    let decoder = decoder_config(&description, DEFAULT_WORD_GAP_MS);
    let mut recognizer = StreamingRecognizer::new(
        model,
        &description,
        description.frontend.clone(),
        geometry,
        decoder,
    )
    .unwrap();
    recognizer.set_edges(StreamEdges::NemoFrameBatch);
    let (mut logprobs, mut words, mut trailing) = (Vec::new(), Vec::new(), 0);
    let mut take = |r: ChunkResult| {
        logprobs.extend(r.logprobs);
        words.extend(r.words);
        trailing = r.trailing_spaces;
    };
    for part in samples.chunks(4321) {
        recognizer.push(part);
        while let Some(r) = recognizer.next_result().unwrap() {
            take(r);
        }
    }
    for r in recognizer.finish().unwrap() {
        take(r);
    }
    (
        logprobs,
        transcript(&words) + &" ".repeat(trailing as usize),
    )
}

/// NeMo's settings are the engine's windows as it rounds them for each model: the element's
/// default windows and latency 2000's plan, in whole 40 ms (Conformer) or 80 ms output frames.
#[test]
fn nemo_settings_are_the_engines_rounded_windows() {
    let latency = LatencyPlan::for_latency(2000);
    for name in FAMILIES {
        let fixture: StreamingFixture = read_json(&family_dir(name).join("streaming.json"));
        let description = load(name).description().clone();
        let frame = description.samples_per_output_frame();
        assert_eq!(fixture.frame_ms * 16, frame, "{name}");
        let asked: Vec<(&str, [u32; 3])> = fixture
            .settings
            .iter()
            .map(|s| (s.name.as_str(), s.asked_ms))
            .collect();
        assert_eq!(
            asked,
            [
                (
                    "default",
                    [
                        DEFAULT_LEFT_CONTEXT_MS,
                        DEFAULT_CHUNK_MS,
                        DEFAULT_RIGHT_CONTEXT_MS
                    ]
                ),
                (
                    "latency-2000",
                    [
                        latency.left_context_ms,
                        latency.chunk_ms,
                        latency.right_context_ms
                    ]
                ),
            ],
            "{name}: the engine's windows changed; rerun tools/subword_models.py"
        );
        for setting in &fixture.settings {
            let window = engine_window(setting, &description);
            let ms = |samples: usize| samples / 16;
            assert_eq!(
                (ms(window.left), ms(window.chunk), ms(window.right)),
                (setting.left_ms, setting.chunk_ms, setting.right_ms),
                "{name} {}",
                setting.name
            );
            assert_eq!(window.window() % frame, 0);
        }
    }
}

#[test]
fn streaming_matches_nemo_frame_batch() {
    let clips = long_clips();
    let mut failures = Vec::new();
    let mut compared = 0;
    for name in FAMILIES {
        let dir = family_dir(name);
        let fixture: StreamingFixture = read_json(&dir.join("streaming.json"));
        let rows = read_npy(&dir.join("streaming.logprobs.npy")).unwrap();
        let model = load(name);
        let description = model.description().clone();
        let vocab = model.vocab_size();
        assert_eq!(rows.shape[1], vocab, "{name}");
        let blank = vocab - 1;
        drop(model);
        for (clip, samples) in &clips {
            for setting in &fixture.settings {
                let nemo = &fixture.clips[clip][&setting.name];
                let label = format!("{name} {clip} {}", setting.name);
                let geometry = engine_window(setting, &description);
                let frames = geometry.window() / description.samples_per_output_frame();
                assert_eq!(frames, nemo.buffer_frames, "{label}");
                let (logprobs, text) = stream(load(name), geometry, samples);
                compared += 1;
                let kept = logprobs.len() / vocab;
                if kept != nemo.kept_frames {
                    failures.push(format!(
                        "{label}: {kept} kept frames, NeMo's {} full buffers keep {}",
                        nemo.buffers - 1,
                        nemo.kept_frames
                    ));
                    continue;
                }
                let mut worst = 0.0f32;
                for (k, &frame) in nemo.rows.iter().enumerate() {
                    let row = nemo.row_offset + k;
                    let expected = &rows.data[row * vocab..(row + 1) * vocab];
                    let ours = &logprobs[frame * vocab..(frame + 1) * vocab];
                    worst = worst.max(max_abs_diff(ours, expected));
                }
                let labels = argmax(&logprobs, vocab);
                let emitted = ctc_emissions(&labels, blank);
                let tokens: Vec<usize> = emitted.iter().map(|&t| labels[t as usize]).collect();
                eprintln!(
                    "{label}: {} buffers of {} frames, {kept} kept frames, {} tokens, log-probs max |diff| {worst:.2e} over {} rows",
                    nemo.buffers - 1,
                    nemo.buffer_frames,
                    tokens.len(),
                    nemo.rows.len()
                );
                if worst > LOGPROB_TOLERANCE {
                    failures.push(format!("{label}: log-probs differ by {worst}"));
                }
                if tokens != nemo.tokens || emitted != nemo.token_frames {
                    let first = tokens
                        .iter()
                        .zip(&emitted)
                        .zip(nemo.tokens.iter().zip(&nemo.token_frames))
                        .position(|(a, b)| a.0 != b.0 || a.1 != b.1)
                        .unwrap_or(tokens.len().min(nemo.tokens.len()));
                    failures.push(format!(
                        "{label}: greedy tokens differ from the {first}-th on ({} ours, {} NeMo's)",
                        tokens.len(),
                        nemo.tokens.len()
                    ));
                }
                // NeMo's CTC decoding and FrameBatchASR's own greedy_merge write the same text
                // here (they differ only where NeMo's decoding drops a space before
                // punctuation); ours is the decoding's.
                for (what, expected) in [
                    ("NeMo's decoding", &nemo.text_full_buffers),
                    (
                        "FrameBatchASR's greedy_merge",
                        &nemo.merge_text_full_buffers,
                    ),
                ] {
                    if text != *expected {
                        failures.push(format!(
                            "{label}: text differs from {what}\n  ours {text:?}\n  nemo {expected:?}"
                        ));
                    }
                }
            }
        }
    }
    assert_eq!(compared, FAMILIES.len() * 2 * 2);
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A copy of the tiny Conformer-CTC export whose description says its position table holds
/// `frames` output frames (the export's own holds 512, 20.48 s at 40 ms).
fn conformer_with_table(dir: &std::path::Path, frames: usize) -> OnnxModel {
    let source = family_dir("conformer");
    std::fs::copy(source.join("model.onnx"), dir.join("model.onnx")).unwrap();
    let mut json: serde_json::Value = read_json(&source.join("model.json"));
    json["pos_emb_max_len"] = frames.into();
    std::fs::write(dir.join("model.json"), json.to_string()).unwrap();
    OnnxModel::load(&dir.join("model.onnx"), &LoadOptions { threads: 1 }).unwrap()
}

fn greedy(config: RecognizerConfig) -> RecognizerConfig {
    RecognizerConfig {
        decoding: DecoderSettings {
            decoder: Some(DecoderKind::Greedy),
            ..DecoderSettings::default()
        },
        ..config
    }
}

/// With a position table of 50 frames (2 s at 40 ms): a longer window is refused when the
/// recogniser is configured, with an error that names the window and the limit; a window of
/// exactly 50 frames runs; the file windows are fitted to the table; offline recognition of
/// a longer utterance is refused, of a shorter one runs.
#[test]
fn windows_longer_than_the_position_table_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let model = conformer_with_table(tmp.path(), 50);
    let description = model.description().clone();
    assert_eq!(description.max_output_frames, Some(50));
    let refused = |config: RecognizerConfig, window_ms: u32| {
        let model =
            OnnxModel::load(&tmp.path().join("model.onnx"), &LoadOptions { threads: 1 }).unwrap();
        let Err(e) = StreamingRecognizer::from_config(model, &greedy(config)) else {
            panic!("a window of {window_ms} ms runs");
        };
        let message = e.to_string();
        assert!(matches!(e, Error::Settings(_)), "{message}");
        for part in [
            format!("a window of {window_ms} ms"),
            "50 frames = 2000 ms".to_string(),
            "pos_emb_max_len".to_string(),
        ] {
            assert!(message.contains(&part), "{message}");
        }
    };
    // The element's default windows: 1200 + 1000 + 600 ms = 70 frames.
    refused(RecognizerConfig::default(), 2800);
    let window = |left, chunk, right| RecognizerConfig {
        left_context_ms: left,
        chunk_ms: chunk,
        right_context_ms: right,
        ..RecognizerConfig::default()
    };
    // One frame too many (1000 + 640 + 400 ms = 51 frames).
    refused(window(1000, 640, 400), 2040);
    let fits = StreamingRecognizer::from_config(model, &greedy(window(1000, 600, 400))).unwrap();
    assert_eq!(fits.geometry().window(), 50 * 640);

    let clip = |name: &str| read_wav(&fixtures().join("audio").join(format!("{name}.wav")));
    // File windows (60 s chunks with 2.5 s of context) are the engine's choice: fitted.
    let model =
        OnnxModel::load(&tmp.path().join("model.onnx"), &LoadOptions { threads: 1 }).unwrap();
    let mut files =
        StreamingRecognizer::from_config(model, &greedy(RecognizerConfig::for_files())).unwrap();
    assert!(files.geometry().window() <= 50 * 640);
    files.push(&clip("espeak_fox"));
    assert!(files.finish().unwrap().last().unwrap().last);

    // Offline: espeak_fox is 2.78 s (70 frames), short_yes 0.37 s.
    let mut model =
        OnnxModel::load(&tmp.path().join("model.onnx"), &LoadOptions { threads: 1 }).unwrap();
    let offline = |model: &mut OnnxModel, samples: &[f32]| {
        recognize_offline(
            model,
            &description,
            description.frontend.clone(),
            DecoderConfig::default(),
            samples,
        )
    };
    let e = offline(&mut model, &clip("espeak_fox")).err().unwrap();
    let message = e.to_string();
    assert!(
        matches!(e, Error::Settings(_))
            && message.contains("an utterance of 2.8 s")
            && message.contains("50 frames = 2000 ms")
            && message.contains("recognise it in windows"),
        "{message}"
    );
    assert!(offline(&mut model, &clip("short_yes")).is_ok());
}

/// The exports' own table (512 frames: 20.48 s at 40 ms, 40.96 s at 80 ms) takes every
/// window the element's settings and the file windows make, but not a 25 s utterance on the
/// 4x Conformer, which the file windows recognise in chunks.
#[test]
fn the_exported_tables_take_the_element_windows() {
    let joined = long_clips().into_iter().next().unwrap().1;
    for name in ["conformer", "fastconformer", "hybrid"] {
        let model = load(name);
        let description = model.description().clone();
        let fits = |config: &RecognizerConfig| {
            let (window, _) = WindowConfig::for_model(config, &description);
            window.check_position_table(&description)
        };
        fits(&RecognizerConfig::default()).unwrap();
        fits(&RecognizerConfig::for_files()).unwrap();
        if name == "conformer" {
            let mut model = model;
            let e = recognize_offline(
                &mut model,
                &description,
                description.frontend.clone(),
                DecoderConfig::default(),
                &joined,
            )
            .err()
            .unwrap();
            assert!(e.to_string().contains("512 frames = 20480 ms"), "{e}");
            let mut files =
                StreamingRecognizer::from_config(model, &greedy(RecognizerConfig::for_files()))
                    .unwrap();
            assert!(files.geometry().window() <= 512 * 640);
            files.push(&joined);
            let results = files.finish().unwrap();
            assert!(results.len() >= 2, "{} results", results.len());
        }
    }
}

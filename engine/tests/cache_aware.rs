// SPDX-License-Identifier: MPL-2.0
//! Cache-aware streaming against NeMo's own (`docs/CACHE_AWARE.md`): the tiny FastConformer
//! CTC and hybrid (CTC head) models of `tests/fixtures/cache-aware/`, stepped by
//! [`CacheAwareRecognizer`] over the 25 and 68 s clips (built from
//! `subword-models/long_clips.json`) at the look-aheads NeMo's runs were recorded at, must
//! give NeMo's step widths and output frames per step, the argmax of every frame, every
//! frame's largest log-prob within 1e-3, the stored whole rows within 1e-3 and NeMo's text
//! byte for byte. The stream's features are checked frame by frame first, and the
//! description's `streaming` section is checked for clear errors.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};

use common::*;
use quartznet_engine::Error;
use quartznet_engine::config::{DEFAULT_WORD_GAP_MS, decoder_config};
use quartznet_engine::decode::{DecodingOptions, transcript};
use quartznet_engine::frontend::{FeatureExtractor, FeatureStream};
use quartznet_engine::model::{CacheAwareModel, LoadOptions, ModelDescription, OnnxModel};
use quartznet_engine::streaming::{CacheAwareRecognizer, CacheAwareStep};
use serde::Deserialize;

const FAMILIES: [&str; 2] = ["ctc", "hybrid"];
const LOGPROB_TOLERANCE: f32 = 1e-3;

#[derive(Deserialize)]
struct LongClips {
    clips: Vec<LongClip>,
}

#[derive(Deserialize)]
struct LongClip {
    name: String,
    parts: Vec<Part>,
    samples: usize,
    sum: i64,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Part {
    Clip { clip: String },
    Silence { silence: usize },
}

#[derive(Deserialize)]
struct StreamClips {
    clips: Vec<StreamClip>,
}

#[derive(Deserialize)]
struct StreamClip {
    name: String,
    samples: usize,
    stream_frames: usize,
    valid_frames: usize,
    sums_offset: usize,
}

#[derive(Deserialize)]
struct Manifest {
    blank_id: usize,
    runs: Vec<Run>,
}

#[derive(Deserialize)]
struct Run {
    clip: String,
    look_ahead_ms: u32,
    att_context_size: [u32; 2],
    stream_frames: usize,
    steps: usize,
    step_widths: Vec<usize>,
    step_output_frames: Vec<usize>,
    frames: usize,
    frames_offset: usize,
    argmax: Vec<usize>,
    text: String,
    row_steps: Vec<usize>,
    rows_offset: usize,
    rows: usize,
}

fn dir() -> PathBuf {
    fixtures().join("cache-aware")
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> T {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The long clips, built from their recipe as `tools/subword_models.py` builds them.
fn long_clips() -> Vec<(String, Vec<f32>)> {
    let clips: LongClips = read_json(&fixtures().join("subword-models/long_clips.json"));
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
            let sum: i64 = samples.iter().map(|&s| (s * 32768.0) as i64).sum();
            assert_eq!(
                (samples.len(), sum),
                (clip.samples, clip.sum),
                "{}",
                clip.name
            );
            (clip.name, samples)
        })
        .collect()
}

fn load(family: &str) -> CacheAwareModel {
    let path = dir().join(family).join("model.onnx");
    CacheAwareModel::load(&path, &LoadOptions { threads: 1 })
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every step of `samples` pushed in uneven pieces, the last with the final words.
fn stream(model: CacheAwareModel, look_ahead: usize, samples: &[f32]) -> Vec<CacheAwareStep> {
    let description = model.description().clone();
    let options = DecodingOptions::from(decoder_config(&description, DEFAULT_WORD_GAP_MS));
    let mut recognizer = CacheAwareRecognizer::new(model, look_ahead, options).unwrap();
    let mut steps = Vec::new();
    for part in samples.chunks(4321) {
        recognizer.push(part);
        while let Some(step) = recognizer.next_result().unwrap() {
            steps.push(step);
        }
    }
    steps.extend(recognizer.finish().unwrap());
    steps
}

fn argmax(row: &[f32]) -> usize {
    (0..row.len()).fold(0, |best, c| if row[c] > row[best] { c } else { best })
}

/// The stream's features (every STFT column, the last 0.0) have NeMo's per-frame sums.
#[test]
fn stream_features_are_nemos() {
    let clips: StreamClips = read_json(&dir().join("clips.json"));
    let sums = read_npy(&dir().join("feature_sums.npy")).unwrap();
    let description = load("ctc").description().clone();
    for ((name, samples), clip) in long_clips().iter().zip(&clips.clips) {
        assert_eq!((name, samples.len()), (&clip.name, clip.samples));
        let extractor = FeatureExtractor::new(description.frontend.clone()).unwrap();
        let mut stream = FeatureStream::new(extractor);
        let mut frames = Vec::new();
        for part in samples.chunks(1000) {
            stream.push(part, &mut frames);
        }
        stream.finish(&mut frames);
        let n_mels = description.frontend.n_mels;
        assert_eq!(frames.len() / n_mels, clip.valid_frames, "{name}");
        assert_eq!(clip.stream_frames, 1 + samples.len() / 160, "{name}");
        assert_eq!(sums.data[clip.sums_offset + clip.valid_frames], 0.0);
        for (t, frame) in frames.chunks_exact(n_mels).enumerate() {
            let ours: f32 = frame.iter().sum();
            let nemo = sums.data[clip.sums_offset + t];
            assert!(
                (ours - nemo).abs() <= 1e-3 * nemo.abs().max(1.0),
                "{name} frame {t}: {ours} vs NeMo's {nemo}"
            );
        }
    }
}

#[test]
fn steps_match_nemos_cache_aware_streaming() {
    let clips = long_clips();
    let mut runs = 0;
    for family in FAMILIES {
        let manifest: Manifest = read_json(&dir().join(family).join("manifest.json"));
        let frames = read_npy(&dir().join(family).join("frames.npy")).unwrap();
        let rows = read_npy(&dir().join(family).join("rows.npy")).unwrap();
        for run in &manifest.runs {
            let what = format!("{family} {} {:?}", run.clip, run.att_context_size);
            let model = load(family);
            let vocab = model.description().vocab_size();
            assert_eq!(manifest.blank_id, vocab - 1, "{what}");
            let index = model
                .streaming()
                .look_ahead_for_ms(run.look_ahead_ms)
                .unwrap();
            assert_eq!(
                model.streaming().look_aheads[index].att_context_size,
                run.att_context_size
            );
            let samples = &clips.iter().find(|(n, _)| *n == run.clip).unwrap().1;
            assert_eq!(run.stream_frames, 1 + samples.len() / 160, "{what}");
            let steps = stream(model, index, samples);
            check_run(&what, run, &steps, vocab, &frames.data, &rows.data);
            runs += 1;
        }
    }
    assert_eq!(runs, 8);
}

/// One run against NeMo's: steps, frames, log-probs, text.
fn check_run(
    what: &str,
    run: &Run,
    steps: &[CacheAwareStep],
    vocab: usize,
    frames: &[f32],
    rows: &[f32],
) {
    let words: Vec<_> = steps.iter().flat_map(|s| s.words.clone()).collect();
    let last = steps.last().unwrap();
    assert!(last.last);
    // The last result is no step when the stream ended without one to run.
    let steps: Vec<&CacheAwareStep> = steps.iter().filter(|s| s.input_frames > 0).collect();
    let widths: Vec<usize> = steps.iter().map(|s| s.input_frames).collect();
    let outputs: Vec<usize> = steps.iter().map(|s| s.frames).collect();
    assert_eq!(steps.len(), run.steps, "{what}: steps");
    assert_eq!(widths, run.step_widths, "{what}: step widths");
    assert_eq!(outputs, run.step_output_frames, "{what}: output frames");
    let logprobs: Vec<f32> = steps.iter().flat_map(|s| s.logprobs.clone()).collect();
    assert_eq!(logprobs.len(), run.frames * vocab, "{what}");
    let mut worst = 0f32;
    for (j, row) in logprobs.chunks_exact(vocab).enumerate() {
        assert_eq!(argmax(row), run.argmax[j], "{what}: frame {j}'s argmax");
        let nemo = &frames[(run.frames_offset + j) * 3..][..3];
        let ours = [row[argmax(row)], row[vocab - 1]];
        worst = worst
            .max((ours[0] - nemo[0]).abs())
            .max((ours[1] - nemo[2]).abs());
    }
    assert!(
        worst <= LOGPROB_TOLERANCE,
        "{what}: max log-prob off by {worst}"
    );
    eprintln!(
        "{what}: {} steps, {} frames, largest log-prob off by {worst:.1e}",
        steps.len(),
        run.frames
    );
    let mut offset = run.rows_offset;
    for &k in &run.row_steps {
        let ours = &steps[k].logprobs;
        let nemo = &rows[offset * vocab..][..ours.len()];
        let diff = max_abs_diff(ours, nemo);
        assert!(
            diff <= LOGPROB_TOLERANCE,
            "{what}: step {k}'s rows off by {diff}"
        );
        offset += steps[k].frames;
    }
    assert_eq!(offset, run.rows_offset + run.rows, "{what}");
    let text = transcript(&words) + &" ".repeat(last.trailing_spaces as usize);
    assert_eq!(text, run.text, "{what}: text");
}

/// The whole-utterance loader refuses a cache-aware graph; the stepped loader refuses an
/// ordinary model.
#[test]
fn each_loader_refuses_the_other_kind() {
    let path = dir().join("ctc/model.onnx");
    let error = OnnxModel::load(&path, &LoadOptions { threads: 1 })
        .err()
        .expect("a cache-aware graph loaded as a whole-utterance model");
    assert!(matches!(error, Error::Invalid { .. }), "{error}");
    assert!(error.to_string().contains("cache-aware"), "{error}");
    let ordinary = fixtures().join("subword-models/fastconformer/model.onnx");
    let error = CacheAwareModel::load(&ordinary, &LoadOptions { threads: 1 })
        .err()
        .expect("an ordinary model loaded as cache-aware");
    assert!(
        error.to_string().contains("no streaming section"),
        "{error}"
    );
}

/// The fixture description with `edit` applied to its `streaming` section (or, when the
/// key is `""`, to the whole description).
fn edited(edit: impl FnOnce(&mut serde_json::Value)) -> Result<ModelDescription, Error> {
    let text = std::fs::read_to_string(dir().join("ctc/model.json")).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    edit(&mut json);
    ModelDescription::from_json(&json.to_string(), "test.json")
}

#[test]
fn the_streaming_section_is_read_and_checked() {
    let description = edited(|_| {}).unwrap();
    let streaming = description.streaming.as_ref().unwrap();
    assert_eq!(streaming.pre_encode_cache_frames, 9);
    assert_eq!(streaming.min_chunk_frames, 8);
    assert_eq!(streaming.default_look_ahead, 0);
    assert_eq!(streaming.caches.len(), 3);
    assert_eq!(streaming.caches[0].shape, [1, 2, 70, 16]);
    let chunks: Vec<usize> = streaming
        .look_aheads
        .iter()
        .map(|l| l.chunk_frames)
        .collect();
    assert_eq!(chunks, [112, 56, 16, 8]);
    assert_eq!(streaming.look_ahead_for_ms(80).unwrap(), 2);
    let missing = streaming.look_ahead_for_ms(100).unwrap_err().to_string();
    assert!(
        missing.contains("1040 ms, 480 ms, 80 ms, 0 ms"),
        "{missing}"
    );
    assert!(streaming.look_ahead(4).is_err());

    fn s(json: &mut serde_json::Value) -> &mut serde_json::Value {
        &mut json["streaming"]
    }
    type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|j| s(j)["strategy"] = "buffered".into()),
            "strategy 'buffered'",
        ),
        (
            Box::new(|j| s(j)["first_step"] = "nemo".into()),
            "first_step 'nemo'",
        ),
        (
            Box::new(|j| s(j)["bogus"] = 1.into()),
            "unknown field `bogus`",
        ),
        (
            Box::new(|j| s(j)["min_chunk_frames"] = 0.into()),
            "min_chunk_frames 0",
        ),
        (
            Box::new(|j| s(j)["look_aheads"][1]["shift_frames"] = 28.into()),
            "shift_frames 28 differs",
        ),
        (
            Box::new(|j| s(j)["look_aheads"][3]["chunk_frames"] = 4.into()),
            "chunk_frames 4 is not between",
        ),
        (
            Box::new(|j| s(j)["look_aheads"][0]["output_frames"] = 13.into()),
            "output_frames 13",
        ),
        (
            Box::new(|j| s(j)["look_aheads"] = serde_json::json!([])),
            "look_aheads is empty",
        ),
        (
            Box::new(|j| s(j)["default_att_context_size"] = serde_json::json!([70, 2])),
            "default_att_context_size [70, 2]",
        ),
        (
            Box::new(|j| s(j)["caches"][1]["input"] = "cache_last_channel".into()),
            "'cache_last_channel' is used twice",
        ),
        (
            Box::new(|j| s(j)["caches"][0]["dtype"] = "float16".into()),
            "dtype 'float16'",
        ),
        (
            Box::new(|j| s(j)["caches"][0]["shape"] = serde_json::json!([1, 0, 70, 16])),
            "shape [1, 0, 70, 16]",
        ),
        (
            Box::new(|j| s(j)["caches"][2]["initial"] = 0.5.into()),
            "initial value 0.5",
        ),
        (
            Box::new(|j| j["pos_emb_max_len"] = 80.into()),
            "pos_emb_max_len 80",
        ),
        (
            Box::new(|j| j["frontend"]["normalize"] = "per_feature".into()),
            "normalize 'none'",
        ),
        (
            Box::new(|j| j["format"] = "quartznetstt-model/1".into()),
            "streaming need format",
        ),
    ];
    for (edit, expected) in cases {
        let error = edited(edit).unwrap_err();
        assert!(matches!(error, Error::Invalid { .. }), "{error}");
        assert!(error.to_string().contains(expected), "{expected}: {error}");
    }
}

/// One recogniser, several streams: each starts afresh (features, caches, decoder), and an
/// empty or very short stream ends cleanly.
#[test]
fn streams_start_afresh_and_short_ones_end_cleanly() {
    let clips = long_clips();
    let samples = &clips[0].1[..16_000 * 5];
    let model = load("ctc");
    let index = model.streaming().look_ahead_for_ms(1040).unwrap();
    let description = model.description().clone();
    let options = DecodingOptions::from(decoder_config(&description, DEFAULT_WORD_GAP_MS));
    let mut recognizer = CacheAwareRecognizer::new(model, index, options).unwrap();
    let mut run = |samples: &[f32]| {
        recognizer.push(samples);
        let mut steps = Vec::new();
        while let Some(step) = recognizer.next_result().unwrap() {
            steps.push(step);
        }
        steps.extend(recognizer.finish().unwrap());
        steps
    };
    let first = run(samples);
    assert_eq!(
        first.len(),
        5,
        "4 full chunks of 112 frames and the last 53"
    );
    assert_eq!(run(samples), first);
    let empty = run(&[]);
    assert_eq!(empty.len(), 1);
    assert!(empty[0].last && empty[0].words.is_empty() && empty[0].input_frames == 0);
    // 50 ms: 5 frames and the 0.0 one, one short first step.
    let short = run(&samples[..800]);
    assert_eq!(short.len(), 1);
    assert_eq!((short[0].input_frames, short[0].frames), (9 + 6, 1));
    assert!(short[0].last);
    assert_eq!(run(samples), first);
}

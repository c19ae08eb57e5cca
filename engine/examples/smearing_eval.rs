// SPDX-License-Identifier: MPL-2.0
//! Word error rate of the beam search with and without LM smearing (max-unigram look-ahead)
//! for the bundled character model, on a tuning set (NeMo manifest: JSON lines with
//! `audio_filepath` and `text`):
//!
//!     cargo run --release -p quartznet-engine --example smearing_eval -- MANIFEST [WIDTH...]
//!
//! Each utterance's log-probs are computed once (the whole utterance, as NeMo's
//! `transcribe()`), then decoded at each width (default 32 128) with the default LM weight,
//! word bonus and unknown-word penalty, smearing off and on. Texts are compared lower-case,
//! letters and apostrophes only (as tools/evaluate.py does). Needs ONNX Runtime and the
//! bundled model and LM; run from the repository root.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use quartznet_engine::config::{
    DEFAULT_LM_WEIGHT, DEFAULT_UNK_PENALTY, DEFAULT_WORD_BONUS, DEFAULT_WORD_GAP_MS,
    RecognizerConfig,
};
use quartznet_engine::decode::{
    BeamConfig, CtcDecoder, DecoderConfig, DecodingOptions, Smearing, transcript,
};
use quartznet_engine::lm;
use quartznet_engine::metrics::edit_distance;
use quartznet_engine::model::{LoadOptions, OnnxModel, bundled};
use quartznet_engine::streaming::recognize_offline;

fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .map(String::from)
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let manifest = args
        .next()
        .ok_or("usage: smearing_eval MANIFEST [WIDTH...]")?;
    let mut widths: Vec<usize> = args.map(|a| a.parse()).collect::<Result<_, _>>()?;
    if widths.is_empty() {
        widths = vec![32, 128];
    }
    let config = RecognizerConfig::default();
    let mut model = OnnxModel::load(&bundled::find()?, &LoadOptions { threads: 0 })?;
    let description = model.description().clone();
    let frontend = config.frontend_for(&description);
    let lm = lm::load_shared(Path::new("models/quartznet-en.arpa.gz"))?;
    let vocab = description.labels.len() + 1;

    let mut utterances = Vec::new();
    let start = Instant::now();
    for line in std::fs::read_to_string(&manifest)?.lines() {
        let entry: serde_json::Value = serde_json::from_str(line)?;
        let (Some(audio), Some(text)) = (entry["audio_filepath"].as_str(), entry["text"].as_str())
        else {
            continue;
        };
        let mut reader = hound::WavReader::open(audio)?;
        let samples: Vec<f32> = reader
            .samples::<i16>()
            .map(|s| s.map(|v| f32::from(v) / 32768.0))
            .collect::<Result<_, _>>()?;
        let result = recognize_offline(
            &mut model,
            &description,
            frontend.clone(),
            DecoderConfig::default(),
            &samples,
        )?;
        utterances.push((words(text), result.logprobs));
    }
    eprintln!(
        "{} utterances, log-probs in {:.1} s",
        utterances.len(),
        start.elapsed().as_secs_f64()
    );
    for &width in &widths {
        for smearing in [Smearing::Off, Smearing::MaxUnigram, Smearing::MaxAfterStart] {
            let options = DecodingOptions {
                ctc: DecoderConfig {
                    word_gap_frames: DEFAULT_WORD_GAP_MS / 20,
                    ..DecoderConfig::default()
                },
                beam: Some(BeamConfig {
                    lm: Arc::clone(&lm),
                    beam_width: width,
                    lm_weight: DEFAULT_LM_WEIGHT,
                    word_bonus: DEFAULT_WORD_BONUS,
                    unk_penalty: Some(DEFAULT_UNK_PENALTY),
                    commit_delay_frames: 50,
                    lexicon: None,
                    smearing,
                    hotwords: None,
                }),
            };
            let mut decoder = CtcDecoder::new(description.labels.clone(), options)?;
            let (mut errors, mut total) = (0, 0);
            let start = Instant::now();
            for (reference, logprobs) in &utterances {
                let mut out = decoder.push(logprobs, logprobs.len() / vocab);
                out.extend(decoder.finish());
                errors += edit_distance(reference, &words(&transcript(&out)));
                total += reference.len();
            }
            println!(
                "width {width:4}, smearing {smearing:?}: WER {:.2} % ({errors}/{total}), decoding {:.2} s",
                100.0 * errors as f64 / total as f64,
                start.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

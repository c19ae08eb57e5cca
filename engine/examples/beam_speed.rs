// SPDX-License-Identifier: MPL-2.0
//! How long the beam search takes per second of audio, on real log-probs of the bundled
//! character model (NeMo's, the parity fixtures) with the bundled language model:
//!
//!     cargo run --release -p quartznet-engine --example beam_speed -- [WIDTH] [REPEATS]
//!
//! Run from the repository root. Every fixture's whole-utterance log-probs are decoded
//! `REPEATS` times (default 5) at beam width `WIDTH` (default 128, the bundled default) with the
//! default LM weight, word bonus and unknown-word penalty, pushing 50 frames (one second) at a
//! time as a stream would. Prints milliseconds of decoding per second of audio (20 ms frames)
//! and a checksum of the words, so two builds can be compared for speed and sameness.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use quartznet_engine::config::{
    DEFAULT_LM_WEIGHT, DEFAULT_UNK_PENALTY, DEFAULT_WORD_BONUS, DEFAULT_WORD_GAP_MS,
};
use quartznet_engine::decode::{
    BeamConfig, BeamSearchDecoder, DecoderConfig, Smearing, transcript,
};
use quartznet_engine::lm::{self, NgramModel};
use quartznet_engine::model::english_labels;

const FIXTURES: &str = "tests/fixtures/nemo-2.4.1";
const FRAME_SECONDS: f64 = 0.02;
const PUSH_FRAMES: usize = 50;

/// The fixtures' whole-utterance log-probs (not the streaming ones), flattened rows of
/// `vocab` values.
fn fixtures(vocab: usize) -> Vec<(String, Vec<f32>)> {
    let mut found: Vec<_> = std::fs::read_dir(FIXTURES)
        .unwrap_or_else(|e| panic!("{FIXTURES}: {e} (run from the repository root)"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with(".logprobs.npy") && !name.contains(".stream-")
        })
        .collect();
    found.sort();
    found
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).expect("a readable fixture");
            let npy = npyz::NpyFile::new(&bytes[..]).expect("an npy file");
            let data: Vec<f32> = npy.into_vec().expect("f32 log-probs");
            assert_eq!(data.len() % vocab, 0, "{}", path.display());
            (path.display().to_string(), data)
        })
        .collect()
}

fn decode(decoder: &mut BeamSearchDecoder, logprobs: &[f32]) -> String {
    let vocab = decoder.vocab_size();
    let mut words = Vec::new();
    for chunk in logprobs.chunks(PUSH_FRAMES * vocab) {
        words.extend(decoder.push(chunk, chunk.len() / vocab));
    }
    words.extend(decoder.finish());
    transcript(&words)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let width: usize = args
        .next()
        .map_or(128, |a| a.parse().expect("a beam width"));
    let repeats: usize = args
        .next()
        .map_or(5, |a| a.parse().expect("a repeat count"));
    let labels = english_labels();
    let vocab = labels.len() + 1;
    let clips = fixtures(vocab);
    let lm: Arc<NgramModel> =
        lm::load_shared(Path::new("models/quartznet-en.arpa.gz")).expect("the bundled LM");
    let decoder = DecoderConfig {
        word_gap_frames: DEFAULT_WORD_GAP_MS / 20,
        ..DecoderConfig::default()
    };
    let beam = BeamConfig {
        lm,
        beam_width: width,
        lm_weight: DEFAULT_LM_WEIGHT,
        word_bonus: DEFAULT_WORD_BONUS,
        unk_penalty: Some(DEFAULT_UNK_PENALTY),
        commit_delay_frames: 50,
        lexicon: None,
        smearing: Smearing::Off,
        hotwords: None,
    };
    let mut d = BeamSearchDecoder::new(labels, decoder, beam).expect("a decoder");
    let frames: usize = clips.iter().map(|(_, lp)| lp.len() / vocab).sum();
    let mut texts = Vec::new();
    let start = Instant::now();
    for _ in 0..repeats {
        texts.clear();
        for (_, logprobs) in &clips {
            texts.push(decode(&mut d, logprobs));
            d.reset(0);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let audio = frames as f64 * FRAME_SECONDS * repeats as f64;
    for ((name, _), text) in clips.iter().zip(&texts) {
        println!("{name}: {text}");
    }
    let checksum = texts
        .iter()
        .flat_map(|t| t.bytes())
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    println!(
        "width {width}: {:.2} ms per audio second ({:.1} s of audio, {repeats} passes, {:.3} s); words checksum {checksum:016x}",
        elapsed * 1000.0 / audio,
        audio / repeats as f64,
        elapsed
    );
}

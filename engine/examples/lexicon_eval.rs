// SPDX-License-Identifier: MPL-2.0
//! Word error rate and speed of the lexicon beam search on saved phoneme log-probs, scored as
//! tools/phoneme/flashlight_reference.py scores flashlight's decoder (its mode 2), so the two
//! can be compared on the same files:
//!
//!     cargo run --release -p quartznet-engine --example lexicon_eval -- \
//!         LOGPROB_DIR LEXICON VOCAB_JSON [--lm ARPA] [--width N] [--lm-weight X] \
//!         [--word-bonus X] [--smearing auto|off|max|max-after-start] [--out HYPS.tsv]
//!
//! `LOGPROB_DIR` holds `manifest.tsv` (`file<TAB>reference<TAB>...`) and one `STEM.npy` of
//! log-probs `[T, 191]` per clip; `VOCAB_JSON` is hama's `g2p_vocab.json` (its `decoder`
//! tokens are the labels, then `<wb>`, then blank). Defaults: the bundled LM, width 50, LM
//! weight 0.434 (flashlight's 1.0 on log10), word bonus 1.0, smearing auto (on). Whole clips,
//! no word gap. WER: lower-cased reference words against the output words.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use quartznet_engine::decode::{BeamConfig, BeamSearchDecoder, DecoderConfig, Smearing};
use quartznet_engine::lexicon;
use quartznet_engine::lm;
use quartznet_engine::metrics::edit_distance;

const BOUNDARY: &str = "<wb>";
const FRAME_SECONDS: f64 = 0.02;

struct Options {
    dir: PathBuf,
    lexicon: PathBuf,
    vocab: PathBuf,
    lm: PathBuf,
    width: usize,
    lm_weight: f32,
    word_bonus: f32,
    smearing: Smearing,
    out: Option<PathBuf>,
}

fn options() -> Result<Options, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut positional = Vec::new();
    let mut o = Options {
        dir: PathBuf::new(),
        lexicon: PathBuf::new(),
        vocab: PathBuf::new(),
        lm: PathBuf::from("models/quartznet-en.arpa.gz"),
        width: 50,
        lm_weight: 0.434,
        word_bonus: 1.0,
        smearing: Smearing::Auto,
        out: None,
    };
    let mut i = 0;
    while i < args.len() {
        let value = || {
            args.get(i + 1)
                .cloned()
                .ok_or(format!("{} needs a value", args[i]))
        };
        let number = |v: String| v.parse::<f32>().map_err(|e| format!("{v}: {e}"));
        match args[i].as_str() {
            "--lm" => o.lm = PathBuf::from(value()?),
            "--width" => o.width = value()?.parse().map_err(|e| format!("--width: {e}"))?,
            "--lm-weight" => o.lm_weight = number(value()?)?,
            "--word-bonus" => o.word_bonus = number(value()?)?,
            "--out" => o.out = Some(PathBuf::from(value()?)),
            "--smearing" => {
                o.smearing = match value()?.as_str() {
                    "auto" => Smearing::Auto,
                    "off" => Smearing::Off,
                    "max" => Smearing::MaxUnigram,
                    "max-after-start" => Smearing::MaxAfterStart,
                    other => {
                        return Err(format!(
                            "--smearing {other}: auto, off, max or max-after-start"
                        ));
                    }
                }
            }
            _ => {
                positional.push(args[i].clone());
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    let [dir, lexicon, vocab] = <[String; 3]>::try_from(positional)
        .map_err(|_| "usage: lexicon_eval LOGPROB_DIR LEXICON VOCAB_JSON [options]")?;
    (o.dir, o.lexicon, o.vocab) = (dir.into(), lexicon.into(), vocab.into());
    Ok(o)
}

fn labels(vocab: &Path) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(vocab)?)?;
    let mut labels: Vec<String> = json["decoder"]
        .as_array()
        .ok_or("no decoder tokens")?
        .iter()
        .map(|t| {
            t.as_str()
                .map(String::from)
                .ok_or("a token that is no string")
        })
        .collect::<Result<_, _>>()?;
    labels.push(BOUNDARY.into());
    Ok(labels)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = options()?;
    let labels = labels(&o.vocab)?;
    let vocab = labels.len() + 1;
    let start = Instant::now();
    let lexicon = lexicon::load_shared(&o.lexicon, &labels, BOUNDARY)?;
    let lexicon_s = start.elapsed().as_secs_f64();
    let lm = lm::load_shared(&o.lm)?;
    let beam = BeamConfig {
        lm,
        beam_width: o.width,
        lm_weight: o.lm_weight,
        word_bonus: o.word_bonus,
        unk_penalty: None,
        commit_delay_frames: 0,
        lexicon: Some(Arc::clone(&lexicon)),
        smearing: o.smearing,
        hotwords: None,
    };
    let start = Instant::now();
    let mut decoder = BeamSearchDecoder::new(labels, DecoderConfig::default(), beam)?;
    let build_s = start.elapsed().as_secs_f64();
    let manifest = std::fs::read_to_string(o.dir.join("manifest.tsv"))?;
    let (mut errors, mut reference_words, mut frames) = (0, 0, 0);
    let mut decode_s = 0.0;
    let mut out = String::from("# clip\thypothesis\tword errors\treference words\n");
    for line in manifest.lines().filter(|l| !l.trim().is_empty()) {
        let mut fields = line.split('\t');
        let (Some(file), Some(reference)) = (fields.next(), fields.next()) else {
            return Err(format!("manifest line without a reference: {line:?}").into());
        };
        let stem = Path::new(file).file_stem().ok_or("a file name")?;
        let bytes = std::fs::read(o.dir.join(stem).with_extension("npy"))?;
        let logprobs: Vec<f32> = npyz::NpyFile::new(&bytes[..])?.into_vec()?;
        if !logprobs.len().is_multiple_of(vocab) {
            return Err(format!("{file}: log-probs are not rows of {vocab}").into());
        }
        let n = logprobs.len() / vocab;
        let start = Instant::now();
        let mut words = decoder.push(&logprobs, n);
        words.extend(decoder.finish());
        decode_s += start.elapsed().as_secs_f64();
        decoder.reset(0);
        let hypothesis: Vec<String> = words.into_iter().map(|w| w.text).collect();
        let reference: Vec<String> = reference
            .to_lowercase()
            .split_whitespace()
            .map(String::from)
            .collect();
        let e = edit_distance(&reference, &hypothesis);
        out.push_str(&format!(
            "{}\t{}\t{e}\t{}\n",
            stem.to_string_lossy(),
            hypothesis.join(" "),
            reference.len()
        ));
        errors += e;
        reference_words += reference.len();
        frames += n;
    }
    if let Some(path) = &o.out {
        std::fs::write(path, out)?;
    }
    let audio_s = frames as f64 * FRAME_SECONDS;
    println!(
        "WER {:.2} % ({errors}/{reference_words}), decode {:.3} s for {audio_s:.1} s audio = {:.2} ms/s (width {}, lm-weight {}, word-bonus {}, smearing {:?}); lexicon {} words loaded in {:.0} ms, decoder built in {:.0} ms",
        100.0 * errors as f64 / reference_words.max(1) as f64,
        decode_s,
        1000.0 * decode_s / audio_s,
        o.width,
        o.lm_weight,
        o.word_bonus,
        o.smearing,
        lexicon.len(),
        lexicon_s * 1000.0,
        build_s * 1000.0,
    );
    Ok(())
}

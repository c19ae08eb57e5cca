// SPDX-License-Identifier: MPL-2.0
//! What a hotword list costs the beam search, on real log-probs:
//!
//!     cargo run --release -p quartznet-engine --example hotword_speed -- \
//!         MODEL.onnx LIST [REPEATS] WAV...
//!
//! Run from the repository root. The model's log-probs of each WAV (16-bit mono at its rate)
//! are computed once; then the model's own decoder settings (its description's LM, lexicon and
//! weights, decoder=auto) decode them all `REPEATS` times (default 5) without a list and with
//! `LIST`, alternating, pushing one second of frames at a time as a stream would. Prints the
//! best time per audio second of each and their ratio, and how many words differ. The list is
//! compiled once per decoder built (its cost is printed apart: the lexicon words a phoneme
//! model's G2P spells are cached per user after the first run).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use quartznet_engine::config::DecoderSettings;
use quartznet_engine::decode::hotwords::HotwordList;
use quartznet_engine::decode::{CtcDecoder, DecodingOptions, transcript};
use quartznet_engine::model::{AcousticModel, LoadOptions, OnnxModel};
use quartznet_engine::streaming::recognize_offline;

type Failure = Box<dyn std::error::Error>;

fn read_wav(path: &PathBuf, rate: u32) -> Result<Vec<f32>, Failure> {
    let mut reader = hound::WavReader::open(path)?;
    let spec = reader.spec();
    if spec.channels != 1 || spec.bits_per_sample != 16 || spec.sample_rate != rate {
        return Err(format!("{}: need 16-bit mono WAV at {rate} Hz", path.display()).into());
    }
    Ok(reader
        .samples::<i16>()
        .map(|s| s.map(|v| f32::from(v) / 32768.0))
        .collect::<Result<_, _>>()?)
}

/// Decodes every clip's log-probs once; returns the seconds taken and the transcripts.
fn decode_all(
    make: &dyn Fn() -> CtcDecoder,
    clips: &[(Vec<f32>, usize)],
    frames_per_second: usize,
) -> (f64, Vec<String>) {
    let mut decoders: Vec<CtcDecoder> = clips.iter().map(|_| make()).collect();
    let started = Instant::now();
    let mut texts = Vec::with_capacity(clips.len());
    for ((logprobs, vocab), decoder) in clips.iter().zip(&mut decoders) {
        let mut words = Vec::new();
        for chunk in logprobs.chunks(frames_per_second * vocab) {
            words.extend(decoder.push(chunk, chunk.len() / vocab));
        }
        words.extend(decoder.finish());
        texts.push(transcript(&words));
    }
    (started.elapsed().as_secs_f64(), texts)
}

fn main() -> Result<(), Failure> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: hotword_speed MODEL.onnx LIST [REPEATS] WAV...";
    let model_path = PathBuf::from(args.next().ok_or(usage)?);
    let list = Arc::new(HotwordList::load(&PathBuf::from(
        args.next().ok_or(usage)?,
    ))?);
    let mut rest: Vec<String> = args.collect();
    let repeats = match rest.first().and_then(|r| r.parse::<usize>().ok()) {
        Some(n) => {
            rest.remove(0);
            n.max(1)
        }
        None => 5,
    };
    if rest.is_empty() {
        return Err(usage.into());
    }
    let mut model = OnnxModel::load(&model_path, &LoadOptions { threads: 1 })?;
    let description = model.description().clone();
    let rate = description.sample_rate;
    let frame_seconds = description.samples_per_output_frame() as f64 / f64::from(rate);
    let frames_per_second = (1.0 / frame_seconds).round() as usize;

    let plain = DecoderSettings::default().decoding_options(&description)?;
    let started = Instant::now();
    let hot: DecodingOptions = DecoderSettings {
        hotwords: Some(Arc::clone(&list)),
        ..DecoderSettings::default()
    }
    .decoding_options(&description)?;
    let settings_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    CtcDecoder::for_model(&description, hot.clone())?;
    let build_seconds = started.elapsed().as_secs_f64();

    let frontend = quartznet_engine::config::RecognizerConfig::default().frontend_for(&description);
    let mut clips = Vec::new();
    let mut audio_seconds = 0.0;
    for wav in &rest {
        let samples = read_wav(&PathBuf::from(wav), rate)?;
        audio_seconds += samples.len() as f64 / f64::from(rate);
        let result = recognize_offline(
            &mut model,
            &description,
            frontend.clone(),
            plain.clone(),
            &samples,
        )?;
        clips.push((result.logprobs, model.vocab_size()));
    }

    let make_plain = || CtcDecoder::for_model(&description, plain.clone()).expect("decoder");
    let make_hot = || CtcDecoder::for_model(&description, hot.clone()).expect("decoder");
    let (mut best_plain, mut best_hot) = (f64::INFINITY, f64::INFINITY);
    let (mut texts_plain, mut texts_hot) = (Vec::new(), Vec::new());
    for _ in 0..repeats {
        let (t, texts) = decode_all(&make_plain, &clips, frames_per_second);
        best_plain = best_plain.min(t);
        texts_plain = texts;
        let (t, texts) = decode_all(&make_hot, &clips, frames_per_second);
        best_hot = best_hot.min(t);
        texts_hot = texts;
    }
    let changed = texts_plain
        .iter()
        .zip(&texts_hot)
        .filter(|(a, b)| a != b)
        .count();
    println!(
        "{} phrases ({}), {} clips, {audio_seconds:.1} s of audio, best of {repeats}:",
        list.len(),
        list.source(),
        clips.len()
    );
    println!(
        "  no list:   {:.2} ms per audio second",
        1000.0 * best_plain / audio_seconds
    );
    println!(
        "  with list: {:.2} ms per audio second ({:+.1} %); {changed} of {} transcripts differ",
        1000.0 * best_hot / audio_seconds,
        100.0 * (best_hot / best_plain - 1.0),
        clips.len()
    );
    println!(
        "  settings with the list (G2P spellings of a phoneme model's new words) {:.0} ms, decoder built {:.0} ms",
        1000.0 * settings_seconds,
        1000.0 * build_seconds
    );
    Ok(())
}

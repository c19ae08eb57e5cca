// SPDX-License-Identifier: MPL-2.0
//! The NeMo-parity options: the engine run directly on the decoded samples, for what the
//! element does not do (one-utterance recognition as NeMo's `transcribe()`, feature and
//! log-prob dumps in NeMo's shapes, NeMo's FrameBatchASR stream start, several confidence
//! measures at once). The audio still comes through GStreamer, so any input works.

use std::error::Error;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::{Arc, Mutex};

use gst::prelude::*;
use npyz::WriterBuilder;
use quartznet_engine::config::{DecoderKind, DecoderSettings, NormalizationKind, RecognizerConfig};
use quartznet_engine::decode::{ConfidenceConfig, CtcDecoder, DecodingOptions, Word};
use quartznet_engine::frontend::{FeatureExtractor, Features, PaddingMode};
use quartznet_engine::model::{
    AcousticModel, LatencyShares, ModelDescription, ModelInput, OnnxModel,
};
use quartznet_engine::streaming::{StreamEdges, StreamingRecognizer, recognize_offline};

use crate::args::{Args, Decoder, Normalization, Padding};
use crate::output::{TimedWord, round_ms};
use crate::pipeline;
use crate::progress::Progress;

/// The engine's settings for `args` (the element's defaults, streaming as live input), with
/// QuartzNet's latency plan (for checking options before a model is loaded).
pub fn config(args: &Args) -> RecognizerConfig {
    config_for(args, &LatencyShares::DEFAULT)
}

/// [`config`] with a model's latency plan (its description's `latency_shares`), as the
/// element plans windows once it has loaded the model. Streaming here is NeMo's
/// FrameBatchASR, over live windows whatever the input.
pub fn config_for(args: &Args, shares: &LatencyShares) -> RecognizerConfig {
    let windows = RecognizerConfig::for_input(&args.window_overrides(), shares, true);
    RecognizerConfig {
        threads: args.threads,
        normalization: match args.normalization {
            Normalization::Auto => None,
            Normalization::PerWindow => Some(NormalizationKind::PerWindow),
            Normalization::Fixed => Some(NormalizationKind::Fixed),
        },
        padding: match args.padding {
            Padding::Auto => None,
            Padding::Reflect => Some(PaddingMode::Reflect),
            Padding::Zeros => Some(PaddingMode::Zeros),
        },
        edges: if args.nemo_frame_batch {
            StreamEdges::NemoFrameBatch
        } else {
            windows.edges
        },
        decoding: DecoderSettings {
            decoder: match args.decoder {
                Decoder::Auto => None,
                Decoder::Greedy => Some(DecoderKind::Greedy),
                Decoder::Beam => Some(DecoderKind::Beam),
            },
            lm_path: args.lm.clone(),
            vocabulary_path: args.vocabulary.clone(),
            beam_width: args.beam_width,
            lm_weight: args.lm_weight,
            word_bonus: args.word_bonus,
            unk_penalty: args.unk_penalty,
            confidence: args.confidences()[0],
            ..windows.decoding
        },
        ..windows
    }
}

/// The input's audio as the engine takes it: mono f32 at `rate`, int16 / 32768 scale
/// (a 16-bit WAV at the model's rate gives exactly the samples NeMo reads).
pub fn decode_audio(
    input: &str,
    rate: u32,
    audio_stream: usize,
    progress: &mut Progress,
) -> Result<Vec<f32>, String> {
    let uri = pipeline::uri_of(input)?;
    let pipe = gst::Pipeline::new();
    let caps = gst_audio::AudioCapsBuilder::new_interleaved()
        .format(gst_audio::AudioFormat::F32le)
        .channels(1)
        .rate(rate as i32)
        .build();
    let sink = gst_app::AppSink::builder().caps(&caps).sync(false).build();
    pipe.add(&sink).map_err(|e| e.to_string())?;
    let decoding = pipeline::decoder(&pipe, &uri, audio_stream, sink.upcast_ref())?;
    let samples = Arc::new(Mutex::new(Vec::<f32>::new()));
    let store = samples.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                let mut store = store.lock().unwrap();
                store.extend(
                    map.chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                );
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    pipeline::run(&pipe, &decoding, input, progress, |_| Ok(()))?;
    let samples = std::mem::take(&mut *samples.lock().unwrap());
    Ok(samples)
}

/// Recognises `samples` with the engine and writes the dumps asked for; the model is handed
/// back so the next input does not reload it.
pub fn recognise(
    args: &Args,
    config: &RecognizerConfig,
    decoding: &DecodingOptions,
    model: OnnxModel,
    samples: &[f32],
) -> Result<(Vec<TimedWord>, OnnxModel), Box<dyn Error>> {
    let description = model.description().clone();
    if let Some(path) = &args.dump_features {
        // The whole utterance's features even when streaming: that is what NeMo's
        // preprocessor outputs, and so what the dump is compared with. A waveform model's
        // input is the samples themselves, [1, S].
        match description.input {
            ModelInput::LogMel => {
                let mut features = Features::default();
                FeatureExtractor::new(config.frontend_for(&description))?
                    .compute(samples, &mut features);
                write_npy(path, &[1, features.n_mels, features.frames], &features.data)?;
            }
            ModelInput::Waveform => write_npy(path, &[1, samples.len()], samples)?,
        }
    }
    let offline = args.offline.then_some(decoding);
    let (transcript, model) = transcribe(model, config, offline, samples)?;
    if let Some(path) = &args.dump_logprobs {
        write_npy(
            path,
            &[1, transcript.frames, model.vocab_size()],
            &transcript.logprobs,
        )?;
    }
    let confidences = args.confidences();
    let others = if confidences.len() > 1 {
        other_confidences(&description, decoding, &transcript, &confidences)?
    } else {
        Vec::new()
    };
    Ok((timed_words(&transcript, &description, &others), model))
}

struct Transcript {
    words: Vec<Word>,
    /// Streaming only: for each word, the samples pushed when it came out.
    emitted: Vec<u64>,
    logprobs: Vec<f32>,
    frames: usize,
}

fn transcribe(
    model: OnnxModel,
    config: &RecognizerConfig,
    offline: Option<&DecodingOptions>,
    samples: &[f32],
) -> Result<(Transcript, OnnxModel), Box<dyn Error>> {
    if let Some(decoding) = offline {
        let mut model = model;
        let description = model.description().clone();
        let frontend = config.frontend_for(&description);
        let result = recognize_offline(
            &mut model,
            &description,
            frontend,
            decoding.clone(),
            samples,
        )?;
        let transcript = Transcript {
            words: result.words,
            emitted: Vec::new(),
            logprobs: result.logprobs,
            frames: result.frames,
        };
        return Ok((transcript, model));
    }
    let piece = (model.description().sample_rate / 10) as usize;
    let mut recognizer = StreamingRecognizer::from_config(model, config)?;
    let mut results = Vec::new();
    // Fed in 100 ms pieces, as a live source would.
    for part in samples.chunks(piece.max(1)) {
        recognizer.push(part);
        while let Some(result) = recognizer.next_result()? {
            results.push((result, recognizer.samples_pushed()));
        }
    }
    let total = recognizer.samples_pushed();
    results.extend(recognizer.finish()?.into_iter().map(|r| (r, total)));
    let mut transcript = Transcript {
        words: Vec::new(),
        emitted: Vec::new(),
        logprobs: Vec::new(),
        frames: 0,
    };
    let vocab = recognizer.model().vocab_size();
    for (result, pushed) in results {
        transcript
            .emitted
            .extend(std::iter::repeat_n(pushed, result.words.len()));
        transcript.words.extend(result.words);
        // The kept log-probs of every buffer (NeMo's FrameBatchASR keeps the same frames).
        transcript.frames += result.logprobs.len() / vocab;
        transcript.logprobs.extend(result.logprobs);
    }
    Ok((transcript, recognizer.into_model()))
}

/// Word confidences under other settings: (`MEASURE:ALPHA AGGREGATION`, one per word).
type OtherConfidences = Vec<(String, Vec<f32>)>;

/// Every word's confidence under each of `confidences`: the decoder's log-probs decoded
/// again (the words do not depend on the confidence).
fn other_confidences(
    description: &ModelDescription,
    decoding: &DecodingOptions,
    transcript: &Transcript,
    confidences: &[ConfidenceConfig],
) -> Result<OtherConfidences, Box<dyn Error>> {
    let mut out = Vec::new();
    for &confidence in confidences {
        let mut options = decoding.clone();
        options.ctc.confidence = confidence;
        let mut decoder = CtcDecoder::for_model(description, options)?;
        let mut words = decoder.push(&transcript.logprobs, transcript.frames);
        words.extend(decoder.finish());
        let same = words.len() == transcript.words.len()
            && words
                .iter()
                .zip(&transcript.words)
                .all(|(a, b)| a.text == b.text);
        if !same {
            return Err(format!(
                "internal error: decoding the log-probs again with confidence {confidence} gave other words"
            )
            .into());
        }
        out.push((
            confidence.to_string(),
            words.iter().map(|w| w.confidence).collect(),
        ));
    }
    Ok(out)
}

fn timed_words(
    transcript: &Transcript,
    description: &ModelDescription,
    others: &OtherConfidences,
) -> Vec<TimedWord> {
    let rate = f64::from(description.sample_rate);
    let frame = description.samples_per_output_frame() as f64 / rate;
    transcript
        .words
        .iter()
        .enumerate()
        .map(|(i, w)| TimedWord {
            text: w.text.clone(),
            separator: " ".repeat(w.spaces_before as usize),
            start: round_ms(w.start_frame as f64 * frame),
            end: round_ms(w.end_frame as f64 * frame),
            confidence: f64::from(w.confidence),
            confidences: others
                .iter()
                .map(|(name, values)| (name.clone(), f64::from(values[i])))
                .collect(),
            emitted: transcript.emitted.get(i).map(|&n| n as f64 / rate),
        })
        .collect()
}

/// Writes `data` as NumPy does for a C-ordered little-endian float32 array of `shape`,
/// whatever this machine's byte order, since the files are meant to be diffed against
/// NeMo's on other machines.
fn write_npy(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    let dtype = npyz::DType::new_scalar("<f4".parse().expect("'<f4' is a valid type string"));
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut writer = npyz::WriteOptions::<f32>::new()
        .dtype(dtype)
        .shape(&shape)
        .writer(BufWriter::new(File::create(path).map_err(fail)?))
        .begin_nd()
        .map_err(fail)?;
    writer.extend(data.iter().copied()).map_err(fail)?;
    // `finish` checks the element count against the shape and flushes; dropping the writer
    // would swallow both errors.
    writer.finish().map_err(fail)
}

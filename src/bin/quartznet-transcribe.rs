// SPDX-License-Identifier: MPL-2.0
//! `quartznet-transcribe`: transcribes WAV files with the same engine as the `quartznetstt`
//! element (in the spirit of DeepSpeech's `deepspeech` client), and dumps features and
//! log-probs in NeMo's shapes so anyone can diff against NeMo.

use std::path::PathBuf;
use std::process::ExitCode;

use gstquartznetstt::ctc::Word;
use gstquartznetstt::decoder::DecodingOptions;
use gstquartznetstt::description::ModelDescription;
use gstquartznetstt::frontend::{FeatureExtractor, Features};
use gstquartznetstt::model::{AcousticModel, LoadOptions, OnnxModel};
use gstquartznetstt::npy;
use gstquartznetstt::options::{
    self, DecoderChoice, DecoderChoices, NormalizationChoice, PaddingChoice,
};
use gstquartznetstt::streaming::{
    StreamingRecognizer, WindowConfig, join_words, recognize_offline,
};

const USAGE: &str = "\
usage: quartznet-transcribe [--model MODEL.onnx] [options] FILE.wav...

Transcribes 16-bit PCM WAV files (mono, or downmixed) at the model's sample rate.

options:
  --model PATH             ONNX model exported from NeMo (description from MODEL.json beside it);
                           default: the bundled English model (models/quartznet-en.onnx)
  --json                   one JSON object per file: text and words with times and confidences
  --offline                recognise each file as one utterance (default: the element's windows)
  --left-context-ms N      streaming left context (default 2500)
  --chunk-ms N             streaming chunk (default 2000)
  --right-context-ms N     streaming right context (default 2500)
  --padding MODE           auto | reflect (NeMo <= 2.4) | zeros (NeMo >= 2.5); default auto
  --normalization MODE     auto | per-window | fixed; default auto
  --word-gap-ms N          silence that completes a word (default 600; 0 = spaces only)
  --decoder MODE           auto (beam search if there is a language model) | greedy | beam
  --lm PATH                word language model (ARPA, may be gzipped); default: the one the
                           model's description names (the bundled model has one)
  --beam-width N           beam-search hypotheses (default 64)
  --lm-weight X            weight of the language model (default 0.5)
  --word-bonus X           score added per word (default 1.0)
  --threads N              ONNX Runtime threads (default 0 = one per core)
  --dump-features F.npy    whole-utterance features, [1, n_mels, T] as NeMo's preprocessor
  --dump-logprobs F.npy    log-probs the decoder saw, [1, T', V] as NeMo's model output
  -h, --help               this text";

struct Args {
    model: PathBuf,
    files: Vec<PathBuf>,
    json: bool,
    offline: bool,
    left_ms: u32,
    chunk_ms: u32,
    right_ms: u32,
    padding: PaddingChoice,
    normalization: NormalizationChoice,
    decoding: DecoderChoices,
    threads: usize,
    dump_features: Option<PathBuf>,
    dump_logprobs: Option<PathBuf>,
}

fn parse_args(mut raw: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut model = None;
    let mut args = Args {
        model: PathBuf::new(),
        files: Vec::new(),
        json: false,
        offline: false,
        left_ms: 2500,
        chunk_ms: 2000,
        right_ms: 2500,
        padding: PaddingChoice::Auto,
        normalization: NormalizationChoice::Auto,
        decoding: DecoderChoices::default(),
        threads: 0,
        dump_features: None,
        dump_logprobs: None,
    };
    while let Some(arg) = raw.next() {
        let mut value = |name: &str| raw.next().ok_or_else(|| format!("{name} needs a value"));
        let number = |name: &str, v: String| {
            v.parse::<u32>()
                .map_err(|_| format!("{name}: '{v}' is not a number"))
        };
        let real = |name: &str, v: String| {
            v.parse::<f32>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| format!("{name}: '{v}' is not a number"))
        };
        match arg.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--model" => model = Some(PathBuf::from(value("--model")?)),
            "--json" => args.json = true,
            "--offline" => args.offline = true,
            "--left-context-ms" => args.left_ms = number(&arg, value(&arg)?)?,
            "--chunk-ms" => args.chunk_ms = number(&arg, value(&arg)?)?,
            "--right-context-ms" => args.right_ms = number(&arg, value(&arg)?)?,
            "--word-gap-ms" => args.decoding.word_gap_ms = number(&arg, value(&arg)?)?,
            "--lm" => args.decoding.lm_path = Some(PathBuf::from(value(&arg)?)),
            "--beam-width" => args.decoding.beam_width = number(&arg, value(&arg)?)?,
            "--lm-weight" => args.decoding.lm_weight = real(&arg, value(&arg)?)?,
            "--word-bonus" => args.decoding.word_bonus = real(&arg, value(&arg)?)?,
            "--decoder" => {
                args.decoding.decoder = match value(&arg)?.as_str() {
                    "auto" => DecoderChoice::Auto,
                    "greedy" => DecoderChoice::Greedy,
                    "beam" => DecoderChoice::Beam,
                    other => {
                        return Err(format!("--decoder: '{other}' is not auto, greedy or beam"));
                    }
                }
            }
            "--threads" => args.threads = number(&arg, value(&arg)?)? as usize,
            "--padding" => {
                args.padding = match value(&arg)?.as_str() {
                    "auto" => PaddingChoice::Auto,
                    "reflect" => PaddingChoice::Reflect,
                    "zeros" => PaddingChoice::Zeros,
                    other => {
                        return Err(format!(
                            "--padding: '{other}' is not auto, reflect or zeros"
                        ));
                    }
                }
            }
            "--normalization" => {
                args.normalization = match value(&arg)?.as_str() {
                    "auto" => NormalizationChoice::Auto,
                    "per-window" => NormalizationChoice::PerWindow,
                    "fixed" => NormalizationChoice::Fixed,
                    other => {
                        return Err(format!(
                            "--normalization: '{other}' is not auto, per-window or fixed"
                        ));
                    }
                }
            }
            "--dump-features" => args.dump_features = Some(PathBuf::from(value(&arg)?)),
            "--dump-logprobs" => args.dump_logprobs = Some(PathBuf::from(value(&arg)?)),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            file => args.files.push(PathBuf::from(file)),
        }
    }
    args.model = match model {
        Some(model) => model,
        None => gstquartznetstt::default_model::find()
            .map_err(|e| format!("no --model given, and {e}"))?,
    };
    if args.files.is_empty() {
        return Err("no WAV file given".to_string());
    }
    if args.files.len() > 1 && (args.dump_features.is_some() || args.dump_logprobs.is_some()) {
        return Err("--dump-features/--dump-logprobs take a single WAV file".to_string());
    }
    Ok(args)
}

/// Reads a PCM WAV as f32 in NeMo's scale (int16 / 32768), downmixing channels.
fn read_wav(path: &PathBuf, rate: u32) -> Result<Vec<f32>, String> {
    let name = path.display();
    let mut reader = hound::WavReader::open(path).map_err(|e| format!("{name}: {e}"))?;
    let spec = reader.spec();
    if spec.sample_rate != rate {
        return Err(format!(
            "{name}: {} Hz, the model takes {rate} Hz (resample first, e.g. sox in.wav -r {rate} out.wav)",
            spec.sample_rate
        ));
    }
    let channels = usize::from(spec.channels.max(1));
    let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, 16) => reader
            .samples::<i16>()
            .map(|s| s.map(|v| f32::from(v) / 32768.0))
            .collect::<Result<_, _>>(),
        (hound::SampleFormat::Float, 32) => reader.samples::<f32>().collect::<Result<_, _>>(),
        (format, bits) => {
            return Err(format!(
                "{name}: {bits}-bit {format:?} WAV is not supported (16-bit PCM or 32-bit float)"
            ));
        }
    }
    .map_err(|e| format!("{name}: {e}"))?;
    Ok(interleaved
        .chunks(channels)
        .map(|frame| frame.iter().sum::<f32>() / channels as f32)
        .collect())
}

struct Transcript {
    words: Vec<Word>,
    logprobs: Vec<f32>,
    frames: usize,
}

fn transcribe(
    model: OnnxModel,
    description: &ModelDescription,
    args: &Args,
    decoder: &DecodingOptions,
    samples: &[f32],
) -> Result<(Transcript, OnnxModel), String> {
    let frontend = options::frontend_for(description, args.normalization, args.padding);
    let decoder = decoder.clone();
    if args.offline {
        let mut model = model;
        let result = recognize_offline(&mut model, description, frontend, decoder, samples)?;
        let transcript = Transcript {
            words: result.words,
            logprobs: result.logprobs,
            frames: result.frames,
        };
        return Ok((transcript, model));
    }
    let (geometry, _) = WindowConfig::from_millis(
        args.left_ms,
        args.chunk_ms,
        args.right_ms,
        description.sample_rate,
        description.samples_per_output_frame(),
    );
    let mut recognizer = StreamingRecognizer::new(model, description, frontend, geometry, decoder)?;
    let mut transcript = Transcript {
        words: Vec::new(),
        logprobs: Vec::new(),
        frames: 0,
    };
    // Feed in 100 ms pieces, as a live source would.
    let piece = (description.sample_rate / 10) as usize;
    let mut results = Vec::new();
    for part in samples.chunks(piece) {
        recognizer.push(part);
        while let Some(result) = recognizer.next_result()? {
            results.push(result);
        }
    }
    results.extend(recognizer.finish()?);
    for result in results {
        transcript.words.extend(result.words);
        transcript.logprobs.extend(result.logprobs);
        transcript.frames += result.frames as usize;
    }
    Ok((transcript, recognizer.into_model()))
}

fn run(args: Args) -> Result<(), String> {
    let mut model = OnnxModel::load(
        &args.model,
        &LoadOptions {
            threads: args.threads,
        },
    )?;
    let description = model.description().clone();
    let decoder = options::decoding_options(&description, &args.decoding)?;
    let seconds_per_frame =
        description.samples_per_output_frame() as f64 / f64::from(description.sample_rate);
    for file in &args.files {
        let samples = read_wav(file, description.sample_rate)?;
        if let Some(path) = &args.dump_features {
            let frontend = options::frontend_for(&description, args.normalization, args.padding);
            let mut features = Features::default();
            FeatureExtractor::new(frontend)?.compute(&samples, &mut features);
            npy::write_f32(path, &[1, features.n_mels, features.frames], &features.data)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        let (transcript, returned) = transcribe(model, &description, &args, &decoder, &samples)?;
        model = returned;
        if let Some(path) = &args.dump_logprobs {
            npy::write_f32(
                path,
                &[1, transcript.frames, model.vocab_size()],
                &transcript.logprobs,
            )
            .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        let text = join_words(&transcript.words);
        if args.json {
            let words: Vec<serde_json::Value> = transcript
                .words
                .iter()
                .map(|w| {
                    serde_json::json!({
                        "word": w.text,
                        "start": w.start_frame as f64 * seconds_per_frame,
                        "end": w.end_frame as f64 * seconds_per_frame,
                        "confidence": w.confidence,
                    })
                })
                .collect();
            let line = serde_json::json!({"file": file.display().to_string(), "text": text, "words": words});
            println!("{line}");
        } else if args.files.len() > 1 {
            println!("{}: {text}", file.display());
        } else {
            println!("{text}");
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match parse_args(std::env::args().skip(1)) {
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("quartznet-transcribe: {message}\n\n{USAGE}");
            ExitCode::from(2)
        }
        Ok(args) => match run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("quartznet-transcribe: {message}");
                ExitCode::FAILURE
            }
        },
    }
}

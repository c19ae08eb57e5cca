// SPDX-License-Identifier: MPL-2.0
//! `quartznet-transcribe`: transcribes WAV files with the same engine as the `quartznetstt`
//! element (in the spirit of DeepSpeech's `deepspeech` client), and dumps features and
//! log-probs in NeMo's shapes so anyone can diff against NeMo.
//!
//! By default each file is fed in 100 ms pieces through the element's buffered windows, so
//! the transcript is the one the element would produce; `--offline` recognises each file as
//! one utterance instead, which is what NeMo's `transcribe()` computes.

use std::error::Error;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, ValueEnum};
use npyz::WriterBuilder;
use quartznet_engine::config::{
    DEFAULT_BEAM_WIDTH, DEFAULT_LATENCY_MS, DEFAULT_LM_WEIGHT, DEFAULT_THREADS, DEFAULT_WORD_BONUS,
    DecoderKind, DecoderSettings, LatencyPlan, MAX_LATENCY_MS, MIN_LATENCY_MS, NormalizationKind,
    RecognizerConfig,
};
use quartznet_engine::decode::{
    ConfidenceAggregation, ConfidenceConfig, ConfidenceMeasure, CtcDecoder, DecodingOptions, Word,
};
use quartznet_engine::frontend::{FeatureExtractor, Features, PaddingMode};
use quartznet_engine::model::{AcousticModel, LoadOptions, ModelDescription, OnnxModel, bundled};
use quartznet_engine::streaming::{
    StreamEdges, StreamingRecognizer, WindowConfig, recognize_offline,
};

const NAME: &str = "quartznet-transcribe";

/// Transcribes 16-bit PCM (or 32-bit float) WAV files at the model's sample rate, mono or
/// downmixed.
///
/// Prints the text of each file (prefixed with the file name when there are several), or
/// with --json one JSON object per file: its text and its words with start and end times
/// in seconds and confidences. Each file is recognised in the element's streaming windows
/// unless --offline is given; the model is loaded once for all files.
#[derive(Debug, Parser)]
#[command(name = NAME)]
struct Args {
    /// ONNX model exported from NeMo (its description from MODEL.json beside it); default:
    /// the bundled English model (models/quartznet-en.onnx, or $QUARTZNETSTT_MODEL)
    #[arg(long, value_name = "MODEL.onnx")]
    model: Option<PathBuf>,

    /// One JSON object per file: text and words with times and confidences
    #[arg(long)]
    json: bool,

    /// Recognise each file as one utterance (default: the element's streaming windows)
    #[arg(long)]
    offline: bool,

    /// Recognise each file as the element recognises input that is not live (a file
    /// pipeline): chunks of a minute with 2.5 s of context each side, trimmed at the file's
    /// edges (a file up to a minute long is recognised exactly as with --offline); the
    /// window options still override its windows
    #[arg(long, conflicts_with_all = ["offline", "nemo_frame_batch", "latency_ms"])]
    non_live: bool,

    /// Streaming latency: text at most this long after its first word starts; the windows,
    /// word gap and beam-search commit delay derive from it (the element's `latency`)
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_LATENCY_MS,
          value_parser = clap::value_parser!(u32).range(i64::from(MIN_LATENCY_MS)..=i64::from(MAX_LATENCY_MS)))]
    latency_ms: u32,

    /// Streaming left context: audio before each chunk given to the model (rounded to whole
    /// output frames) [default: derived from --latency-ms]
    #[arg(long, value_name = "MS")]
    left_context_ms: Option<u32>,

    /// Streaming chunk: audio recognised per window (rounded to whole output frames)
    /// [default: derived from --latency-ms]
    #[arg(long, value_name = "MS")]
    chunk_ms: Option<u32>,

    /// Streaming right context: audio after each chunk given to the model (rounded to whole
    /// output frames) [default: derived from --latency-ms]
    #[arg(long, value_name = "MS")]
    right_context_ms: Option<u32>,

    /// Frontend edge padding: reflect (NeMo <= 2.4) or zeros (NeMo >= 2.5); auto: as the
    /// model's description says
    #[arg(long, value_name = "MODE", value_enum, default_value_t = Padding::Auto)]
    padding: Padding,

    /// Where feature statistics come from: per-window, or the model's fixed statistics; auto:
    /// as the model's description says
    #[arg(long, value_name = "MODE", value_enum, default_value_t = Normalization::Auto)]
    normalization: Normalization,

    /// Silence that completes a word (0 = spaces only) [default: derived from
    /// --latency-ms]
    #[arg(long, value_name = "MS")]
    word_gap_ms: Option<u32>,

    /// CTC decoder; auto: beam search if there is a language model, else greedy
    #[arg(long, value_name = "MODE", value_enum, default_value_t = Decoder::Auto)]
    decoder: Decoder,

    /// Word language model (ARPA, may be gzipped); default: the one the model's description
    /// names (the bundled model has one)
    #[arg(long, value_name = "PATH")]
    lm: Option<PathBuf>,

    /// Beam-search hypotheses kept per frame
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BEAM_WIDTH)]
    beam_width: u32,

    /// Weight of the language model
    #[arg(
        long,
        value_name = "X",
        default_value_t = DEFAULT_LM_WEIGHT,
        value_parser = finite,
        allow_negative_numbers = true
    )]
    lm_weight: f32,

    /// Score added per word (negative: a penalty)
    #[arg(
        long,
        value_name = "X",
        default_value_t = DEFAULT_WORD_BONUS,
        value_parser = finite,
        allow_negative_numbers = true
    )]
    word_bonus: f32,

    /// Word confidence measure, NeMo's ConfidenceMethodConfig: max-prob or
    /// <gibbs|tsallis|renyi>-<lin|exp>, each optionally :ALPHA (NeMo's alpha, > 0; without
    /// it NeMo's default 0.33), e.g. tsallis-exp:0.33 (NeMo's default measure) or
    /// gibbs-exp:1. Several, comma-separated: --json words also get "confidences", one per
    /// measure and aggregation given, keyed "MEASURE:ALPHA AGGREGATION"; "confidence" is the
    /// first of each. docs/CONFIDENCE.md says what the default means
    #[arg(
        long,
        value_name = "MEASURE",
        value_delimiter = ',',
        value_parser = parse_measure,
        default_values_t = [ConfidenceConfig::DEFAULT.measure]
    )]
    confidence: Vec<ConfidenceMeasure>,

    /// How frame confidences make a token's and token confidences a word's (NeMo's
    /// aggregation): mean, min (NeMo's default), max or prod; several, comma-separated, as
    /// for --confidence
    #[arg(
        long,
        value_name = "AGG",
        value_delimiter = ',',
        value_parser = parse_aggregation,
        default_values_t = [ConfidenceConfig::DEFAULT.aggregation]
    )]
    confidence_aggregation: Vec<ConfidenceAggregation>,

    /// ONNX Runtime threads (0 = one per core)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_THREADS)]
    threads: usize,

    /// Write the whole-utterance features, [1, n_mels, T] as NeMo's preprocessor
    #[arg(long, value_name = "F.npy")]
    dump_features: Option<PathBuf>,

    /// Write the log-probs the decoder saw, [1, T', V] as NeMo's model output (streaming:
    /// the kept frames of every buffer, as NeMo's FrameBatchASR keeps them)
    #[arg(long, value_name = "F.npy")]
    dump_logprobs: Option<PathBuf>,

    /// Streaming: start the stream as NeMo's FrameBatchASR does for QuartzNet (its buffer
    /// filled with 0.0, a loud level, counted in the statistics) instead of with silence and
    /// the stream's own statistics; for comparing with NeMo (it costs accuracy)
    #[arg(long)]
    nemo_frame_batch: bool,

    /// WAV files to transcribe
    #[arg(value_name = "FILE.wav", required = true)]
    files: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Decoder {
    /// Beam search if there is a language model (--lm, or the model description's), else
    /// greedy
    Auto,
    /// NeMo's greedy decoding (exactly NeMo's transcript), even if a language model exists
    Greedy,
    /// CTC prefix beam search with the language model (an error without one)
    Beam,
}

impl From<Decoder> for Option<DecoderKind> {
    fn from(choice: Decoder) -> Self {
        match choice {
            Decoder::Auto => None,
            Decoder::Greedy => Some(DecoderKind::Greedy),
            Decoder::Beam => Some(DecoderKind::Beam),
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Padding {
    /// As the model's description says
    Auto,
    /// Reflect the signal at its edges (NeMo <= 2.4)
    Reflect,
    /// Pad with silence (NeMo >= 2.5)
    Zeros,
}

impl From<Padding> for Option<PaddingMode> {
    fn from(choice: Padding) -> Self {
        match choice {
            Padding::Auto => None,
            Padding::Reflect => Some(PaddingMode::Reflect),
            Padding::Zeros => Some(PaddingMode::Zeros),
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Normalization {
    /// As the model's description says (per-feature models get per-window statistics)
    Auto,
    /// Per-feature statistics over each window (over the utterance with --offline)
    PerWindow,
    /// The model's fixed statistics, else NeMo's streaming demo constants
    Fixed,
}

impl From<Normalization> for Option<NormalizationKind> {
    fn from(choice: Normalization) -> Self {
        match choice {
            Normalization::Auto => None,
            Normalization::PerWindow => Some(NormalizationKind::PerWindow),
            Normalization::Fixed => Some(NormalizationKind::Fixed),
        }
    }
}

fn parse_measure(text: &str) -> Result<ConfidenceMeasure, String> {
    text.parse()
}

fn parse_aggregation(text: &str) -> Result<ConfidenceAggregation, String> {
    text.parse()
}

/// A NaN or infinite weight would silently poison every beam-search score, so refuse it
/// while parsing rather than leave it to the engine's range check.
fn finite(text: &str) -> Result<f32, String> {
    text.parse::<f32>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or_else(|| format!("'{text}' is not a finite number"))
}

impl Args {
    /// Every confidence asked for, measure by measure; the first is the words' own.
    fn confidences(&self) -> Vec<ConfidenceConfig> {
        let measures = if self.confidence.is_empty() {
            vec![ConfidenceConfig::DEFAULT.measure]
        } else {
            self.confidence.clone()
        };
        let aggregations = if self.confidence_aggregation.is_empty() {
            vec![ConfidenceConfig::DEFAULT.aggregation]
        } else {
            self.confidence_aggregation.clone()
        };
        let mut all = Vec::new();
        for &measure in &measures {
            for &aggregation in &aggregations {
                let c = ConfidenceConfig {
                    measure,
                    aggregation,
                };
                if !all.contains(&c) {
                    all.push(c);
                }
            }
        }
        all
    }

    fn config(&self) -> RecognizerConfig {
        let plan = LatencyPlan::for_latency(self.latency_ms);
        let (windows, edges) = match (self.non_live, self.nemo_frame_batch) {
            (true, _) => (RecognizerConfig::for_files(), StreamEdges::Trimmed),
            (false, true) => (RecognizerConfig::planned(plan), StreamEdges::NemoFrameBatch),
            (false, false) => (RecognizerConfig::planned(plan), StreamEdges::Silence),
        };
        RecognizerConfig {
            threads: self.threads,
            left_context_ms: self.left_context_ms.unwrap_or(windows.left_context_ms),
            chunk_ms: self.chunk_ms.unwrap_or(windows.chunk_ms),
            right_context_ms: self.right_context_ms.unwrap_or(windows.right_context_ms),
            normalization: self.normalization.into(),
            padding: self.padding.into(),
            edges,
            decoding: DecoderSettings {
                decoder: self.decoder.into(),
                lm_path: self.lm.clone(),
                beam_width: self.beam_width,
                lm_weight: self.lm_weight,
                word_bonus: self.word_bonus,
                word_gap_ms: self.word_gap_ms.unwrap_or(plan.word_gap_ms),
                commit_delay_ms: plan.commit_delay_ms,
                confidence: self.confidences()[0],
            },
        }
    }
}

/// Reads a PCM WAV as f32 in NeMo's scale (int16 / 32768), downmixing channels.
fn read_wav(path: &Path, rate: u32) -> Result<Vec<f32>, String> {
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

struct Transcript {
    words: Vec<Word>,
    /// Streaming only: for each word, the samples pushed when it came out (the audio the
    /// element must have received before it can output the word).
    emitted: Vec<u64>,
    logprobs: Vec<f32>,
    frames: usize,
    /// Spaces the model emitted after the last word (the end of its text).
    trailing_spaces: u32,
}

/// Recognises one file; the model is handed back so the next file does not reload it.
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
            trailing_spaces: result.trailing_spaces,
        };
        return Ok((transcript, model));
    }
    let piece = (model.description().sample_rate / 10) as usize;
    let mut recognizer = StreamingRecognizer::from_config(model, config)?;
    let mut results = Vec::new();
    // Feed in 100 ms pieces, as a live source would, so the transcript is the element's.
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
        trailing_spaces: 0,
    };
    let vocab = recognizer.model().vocab_size();
    for (result, pushed) in results {
        transcript
            .emitted
            .extend(std::iter::repeat_n(pushed, result.words.len()));
        transcript.words.extend(result.words);
        transcript.trailing_spaces = result.trailing_spaces;
        // The kept log-probs of every buffer (NeMo's FrameBatchASR keeps the same frames,
        // the first buffer's from before the stream start included).
        transcript.frames += result.logprobs.len() / vocab;
        transcript.logprobs.extend(result.logprobs);
    }
    Ok((transcript, recognizer.into_model()))
}

/// Word confidences under other settings: (`MEASURE:ALPHA AGGREGATION`, one per word).
type OtherConfidences = Vec<(String, Vec<f32>)>;

/// Every word's confidence under each of `confidences`: the decoder's log-probs decoded
/// again (the words do not depend on the confidence; decoding is the same whatever pieces
/// the frames came in, so one push gives the stream's words).
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
        let mut decoder = CtcDecoder::new(description.labels.clone(), options)?;
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

fn print_transcript(
    file: &Path,
    transcript: &Transcript,
    description: &ModelDescription,
    args: &Args,
    confidences: &[(String, Vec<f32>)],
) {
    // The model's text: the words with their separators and the spaces after the last.
    let mut text = quartznet_engine::decode::transcript(&transcript.words);
    text.extend(std::iter::repeat_n(
        ' ',
        transcript.trailing_spaces as usize,
    ));
    if args.json {
        let seconds_per_frame =
            description.samples_per_output_frame() as f64 / f64::from(description.sample_rate);
        let rate = f64::from(description.sample_rate);
        let words: Vec<serde_json::Value> = transcript
            .words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let mut word = serde_json::json!({
                    "word": w.text,
                    "separator": " ".repeat(w.spaces_before as usize),
                    "start": w.start_frame as f64 * seconds_per_frame,
                    "end": w.end_frame as f64 * seconds_per_frame,
                    "confidence": w.confidence,
                });
                if let Some(&pushed) = transcript.emitted.get(i) {
                    word["emitted"] = serde_json::json!(pushed as f64 / rate);
                }
                if !confidences.is_empty() {
                    let all: serde_json::Map<String, serde_json::Value> = confidences
                        .iter()
                        .map(|(name, values)| (name.clone(), serde_json::json!(values[i])))
                        .collect();
                    word["confidences"] = all.into();
                }
                word
            })
            .collect();
        let line = serde_json::json!({
            "file": file.display().to_string(),
            "text": text,
            "words": words,
        });
        println!("{line}");
    } else if args.files.len() > 1 {
        println!("{}: {text}", file.display());
    } else {
        println!("{text}");
    }
}

fn run(args: &Args, model_path: &Path, config: &RecognizerConfig) -> Result<(), Box<dyn Error>> {
    // The language model loads while the acoustic model does (held until the decoder is built).
    let language_model = config.decoding.preload_language_model(model_path);
    let mut model = OnnxModel::load(
        model_path,
        &LoadOptions {
            threads: config.threads,
        },
    )?;
    let description = model.description().clone();
    // Built before any file is read so a missing or malformed language model fails at once,
    // not after the first file's audio has been recognised.
    let _language_model = language_model.map(|loading| loading.wait());
    let decoding = config.decoding.decoding_options(&description)?;
    if !args.offline {
        let (window, rounded) = WindowConfig::for_model(config, &description);
        if rounded {
            let ms = |samples: usize| samples as f64 * 1000.0 / f64::from(description.sample_rate);
            eprintln!(
                "{NAME}: note: window rounded to whole output frames: left context {} ms, chunk {} ms, right context {} ms",
                ms(window.left),
                ms(window.chunk),
                ms(window.right)
            );
        }
    }
    for file in &args.files {
        let samples = read_wav(file, description.sample_rate)?;
        if let Some(path) = &args.dump_features {
            // The whole utterance's features even when streaming: that is what NeMo's
            // preprocessor outputs, and so what the dump is compared with.
            let mut features = Features::default();
            FeatureExtractor::new(config.frontend_for(&description))?
                .compute(&samples, &mut features);
            write_npy(path, &[1, features.n_mels, features.frames], &features.data)?;
        }
        let offline = args.offline.then_some(&decoding);
        let (transcript, returned) = transcribe(model, config, offline, &samples)?;
        model = returned;
        if let Some(path) = &args.dump_logprobs {
            write_npy(
                path,
                &[1, transcript.frames, model.vocab_size()],
                &transcript.logprobs,
            )?;
        }
        let confidences = args.confidences();
        let others = if confidences.len() > 1 && args.json {
            other_confidences(&description, &decoding, &transcript, &confidences)?
        } else {
            Vec::new()
        };
        print_transcript(file, &transcript, &description, args, &others);
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let usage_error =
        |kind: ErrorKind, message: String| Args::command().error(kind, message).exit();
    if args.files.len() > 1 && (args.dump_features.is_some() || args.dump_logprobs.is_some()) {
        usage_error(
            ErrorKind::ArgumentConflict,
            "--dump-features/--dump-logprobs take a single WAV file".to_string(),
        );
    }
    let config = args.config();
    if let Err(e) = config.validate() {
        usage_error(ErrorKind::ValueValidation, e.to_string());
    }
    let model_path = match &args.model {
        Some(path) => path.clone(),
        None => match bundled::find() {
            Ok(path) => path,
            Err(e) => {
                eprintln!("{NAME}: no --model given, and {e}");
                return ExitCode::from(2);
            }
        },
    };
    // A panic (a bug, or input no check foresaw) is reported like any error, naming the
    // model, rather than as a raw backtrace.
    let outcome = std::panic::catch_unwind(|| run(&args, &model_path, &config));
    match outcome {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("{NAME}: {e}");
            ExitCode::FAILURE
        }
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            eprintln!(
                "{NAME}: internal error while recognising with {}: {message}",
                model_path.display()
            );
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_is_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn defaults_are_the_engine_defaults() {
        let args = Args::try_parse_from([NAME, "a.wav"]).unwrap();
        assert_eq!(args.config(), RecognizerConfig::default());
    }

    #[test]
    fn choices_map_onto_the_engine() {
        let args = Args::try_parse_from([
            NAME,
            "--decoder",
            "beam",
            "--padding",
            "zeros",
            "--normalization",
            "per-window",
            "--word-bonus",
            "-2.5",
            "--lm",
            "words.arpa",
            "a.wav",
        ])
        .unwrap();
        let config = args.config();
        assert_eq!(config.decoding.decoder, Some(DecoderKind::Beam));
        assert_eq!(config.padding, Some(PaddingMode::Zeros));
        assert_eq!(config.normalization, Some(NormalizationKind::PerWindow));
        assert_eq!(config.decoding.word_bonus, -2.5);
        assert_eq!(config.decoding.lm_path, Some(PathBuf::from("words.arpa")));
        let greedy = Args::try_parse_from([NAME, "--decoder", "greedy", "a.wav"]).unwrap();
        assert_eq!(greedy.config().decoding.decoder, Some(DecoderKind::Greedy));
    }

    #[test]
    fn confidence_choices() {
        let args = Args::try_parse_from([
            NAME,
            "--confidence",
            "max-prob:1,tsallis-exp",
            "--confidence-aggregation",
            "min,mean",
            "a.wav",
        ])
        .unwrap();
        let all = args.confidences();
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].measure, ConfidenceMeasure::MaxProb { alpha: 1.0 });
        assert_eq!(all[0].aggregation, ConfidenceAggregation::Min);
        assert_eq!(all[3].measure, ConfidenceMeasure::NEMO_DEFAULT);
        assert_eq!(args.config().decoding.confidence, all[0]);
        let default = Args::try_parse_from([NAME, "a.wav"]).unwrap();
        assert_eq!(default.confidences(), [ConfidenceConfig::DEFAULT]);
        for bad in ["entropy", "max-prob:0", "gibbs-lin:nan"] {
            let parsed = Args::try_parse_from([NAME, "--confidence", bad, "a.wav"]);
            assert_eq!(
                parsed.unwrap_err().kind(),
                ErrorKind::ValueValidation,
                "{bad}"
            );
        }
        let parsed = Args::try_parse_from([NAME, "--confidence-aggregation", "median", "a.wav"]);
        assert!(parsed.is_err());
    }

    #[test]
    fn weights_must_be_finite() {
        for value in ["nan", "inf", "1e39", "x"] {
            let parsed = Args::try_parse_from([NAME, "--lm-weight", value, "a.wav"]);
            assert_eq!(
                parsed.unwrap_err().kind(),
                ErrorKind::ValueValidation,
                "{value}"
            );
        }
        // Only numbers may start with a hyphen, so "-inf" is taken for an option: refused
        // all the same.
        assert!(Args::try_parse_from([NAME, "--word-bonus", "-inf", "a.wav"]).is_err());
    }
}

// SPDX-License-Identifier: MPL-2.0
//! The command line: what each option means and which element property or engine setting
//! it becomes.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, ValueEnum};
use quartznet_engine::config::{
    DEFAULT_THREADS, DEFAULT_UNK_PENALTY, LOWEST_LATENCY_MS, MAX_LATENCY_MS, WindowOverrides,
};
use quartznet_engine::decode::hotwords::HotwordList;
use quartznet_engine::decode::{ConfidenceAggregation, ConfidenceConfig, ConfidenceMeasure};

pub const NAME: &str = "quartznet-transcribe";

/// Transcribes speech in any audio or video file GStreamer can play (WAV, FLAC, MP3, Ogg,
/// Opus, M4A, a video's sound track; any rate and channel count), a URI, or standard input
/// (`-`), with the quartznetstt element.
///
/// Text is written as it is recognised: by default one phrase per line (prefixed with the
/// input's name when there are several), or with --format json one JSON object per input,
/// or SRT / WebVTT subtitles. Inputs are recognised one after the other with the model
/// loaded once; an input that fails is reported and the others still run (the exit status
/// is then 1). Files are recognised as the element recognises input that is not live
/// (chunks of a minute); --latency-ms or a window option recognises them as live input.
#[derive(Debug, Parser)]
#[command(name = NAME, version)]
pub struct Args {
    /// ONNX model exported from NeMo (its description from model.json beside it); default:
    /// the bundled English model (models/hama-en.onnx, or $QUARTZNETSTT_MODEL)
    #[arg(long, value_name = "MODEL.onnx")]
    pub model: Option<PathBuf>,

    /// Output: txt (a line per phrase), json (an object per input: text and timed words,
    /// the fields of the element's bus message), srt or vtt (subtitles)
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Txt)]
    pub format: Format,

    /// Same as --format json (kept for scripts)
    #[arg(long, conflicts_with = "format")]
    pub json: bool,

    /// Write the output to this file instead of standard output (one input only)
    #[arg(long, short = 'o', value_name = "FILE", conflicts_with = "output_dir")]
    pub output: Option<PathBuf>,

    /// Write each input's output to DIR/<input name>.<format>
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// No progress bar (it is shown on a terminal for inputs longer than 30 s)
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Recognise as live input with this latency: text at most this long after its first
    /// word starts (the element's `latency`); default: as input that is not live
    #[arg(long, value_name = "MS",
          value_parser = clap::value_parser!(u32).range(i64::from(LOWEST_LATENCY_MS)..=i64::from(MAX_LATENCY_MS)))]
    pub latency_ms: Option<u32>,

    /// Left context: audio before each chunk given to the model (live windows)
    #[arg(long, value_name = "MS")]
    pub left_context_ms: Option<u32>,

    /// Chunk: audio recognised per window (live windows)
    #[arg(long, value_name = "MS")]
    pub chunk_ms: Option<u32>,

    /// Right context: audio after each chunk given to the model (live windows)
    #[arg(long, value_name = "MS")]
    pub right_context_ms: Option<u32>,

    /// Silence that completes a word (0 = spaces only) [default: derived from the latency]
    #[arg(long, value_name = "MS")]
    pub word_gap_ms: Option<u32>,

    /// Which audio stream of an input to transcribe, numbered from 0 in the input's order
    /// (an input with several gets a note on standard error saying which is transcribed)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub audio_stream: usize,

    /// Frontend edge padding: reflect (NeMo <= 2.4) or zeros (NeMo >= 2.5); auto: as the
    /// model's description says
    #[arg(long, value_name = "MODE", value_enum, default_value_t = Padding::Auto)]
    pub padding: Padding,

    /// Where feature statistics come from: per-window, or the model's fixed statistics; auto:
    /// as the model's description says
    #[arg(long, value_name = "MODE", value_enum, default_value_t = Normalization::Auto)]
    pub normalization: Normalization,

    /// CTC decoder; auto: beam search if there is a language model, else greedy
    #[arg(long, value_name = "MODE", value_enum, default_value_t = Decoder::Auto)]
    pub decoder: Decoder,

    /// Word language model (ARPA, may be gzipped); default: the one the model's description
    /// names (the bundled model has one)
    #[arg(long, value_name = "PATH")]
    pub lm: Option<PathBuf>,

    /// Words to add to the model's pronunciation lexicon, one per line (models that write
    /// words from a lexicon, such as the bundled one), spelled by its G2P and cached
    #[arg(long, value_name = "FILE")]
    pub vocabulary: Option<PathBuf>,

    /// Phrases the beam search favours (names, terms), one per line: words separated by
    /// spaces, optionally followed by ` :BOOST` (added per word of the matched phrase,
    /// natural log; default 5), `#` comments. Without a language model the search is an
    /// open-vocabulary one that only the hotwords bias (--decoder greedy refuses them); a
    /// phoneme model spells the words its lexicon lacks with its G2P
    #[arg(long, value_name = "FILE")]
    pub hotwords: Option<PathBuf>,

    /// A hotword phrase, as a line of --hotwords (`PHRASE` or `PHRASE :BOOST`); may be
    /// repeated, and adds to --hotwords
    #[arg(long, value_name = "PHRASE")]
    pub hotword: Vec<String>,

    /// Beam-search hypotheses kept per frame [default: the value tuned for the
    /// model (its description's), else the engine's]
    #[arg(long, value_name = "N")]
    pub beam_width: Option<u32>,

    /// Weight of the language model [default: the value tuned for the
    /// model (its description's), else the engine's]
    #[arg(long, value_name = "X", value_parser = finite, allow_negative_numbers = true)]
    pub lm_weight: Option<f32>,

    /// Score added per word, negative: a penalty [default: the value tuned for the
    /// model (its description's), else the engine's]
    #[arg(long, value_name = "X", value_parser = finite, allow_negative_numbers = true)]
    pub word_bonus: Option<f32>,

    /// Score subtracted for a word outside the language model's vocabulary (0..=100; 100:
    /// such words are never output)
    #[arg(long, value_name = "X", default_value_t = DEFAULT_UNK_PENALTY, value_parser = finite)]
    pub unk_penalty: f32,

    /// Word confidence measure, NeMo's ConfidenceMethodConfig: max-prob or
    /// <gibbs|tsallis|renyi>-<lin|exp>, each optionally :ALPHA (NeMo's alpha, > 0; without
    /// it NeMo's default 0.33), e.g. tsallis-exp:0.33 (NeMo's default measure) or
    /// gibbs-exp:1. NeMo parity: several, comma-separated, give --format json words
    /// "confidences", one per measure and aggregation, keyed "MEASURE:ALPHA AGGREGATION"
    /// (the engine runs without the element then). docs/CONFIDENCE.md says what the default
    /// means
    #[arg(long, value_name = "MEASURE", value_delimiter = ',', value_parser = parse_measure,
          default_values_t = [ConfidenceConfig::DEFAULT.measure])]
    pub confidence: Vec<ConfidenceMeasure>,

    /// How frame confidences make a token's and token confidences a word's (NeMo's
    /// aggregation): mean, min (NeMo's default), max or prod; several, comma-separated, as
    /// for --confidence
    #[arg(long, value_name = "AGG", value_delimiter = ',', value_parser = parse_aggregation,
          default_values_t = [ConfidenceConfig::DEFAULT.aggregation])]
    pub confidence_aggregation: Vec<ConfidenceAggregation>,

    /// ONNX Runtime threads (0 = one per core)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_THREADS)]
    pub threads: usize,

    /// Where ONNX Runtime runs the model: an NVIDIA GPU (cuda, tensorrt) needs the GPU build
    /// of ONNX Runtime (tools/setup.sh --gpu, then QUARTZNETSTT_ONNXRUNTIME as it prints) and
    /// is an error naming what is missing if it cannot start; auto falls back to the CPU with
    /// a warning
    #[arg(long, value_name = "EP", value_enum, default_value_t = ExecutionProvider::Cpu)]
    pub execution_provider: ExecutionProvider,

    #[command(flatten)]
    pub server: crate::served::ServerArgs,

    /// NeMo parity: recognise each input as one utterance, as NeMo's transcribe() (the
    /// engine runs without the element)
    #[arg(long, help_heading = "NeMo parity (the engine without the element)")]
    pub offline: bool,

    /// NeMo parity: write the whole-utterance features, [1, n_mels, T] as NeMo's
    /// preprocessor (one input)
    #[arg(
        long,
        value_name = "F.npy",
        help_heading = "NeMo parity (the engine without the element)"
    )]
    pub dump_features: Option<PathBuf>,

    /// NeMo parity: write the log-probs the decoder saw, [1, T', V] as NeMo's model output
    /// (streaming: the kept frames of every buffer, as NeMo's FrameBatchASR keeps them; one
    /// input)
    #[arg(
        long,
        value_name = "F.npy",
        help_heading = "NeMo parity (the engine without the element)"
    )]
    pub dump_logprobs: Option<PathBuf>,

    /// NeMo parity: stream as NeMo's FrameBatchASR does for QuartzNet (its buffer filled
    /// with 0.0, a loud level, counted in the statistics) instead of with silence; it costs
    /// accuracy
    #[arg(long, help_heading = "NeMo parity (the engine without the element)")]
    pub nemo_frame_batch: bool,

    /// Audio or video files, URIs (file://, http://, ...) or - for standard input
    #[arg(value_name = "INPUT", required = true)]
    pub inputs: Vec<String>,
}

/// What is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One phrase per line, as it is recognised
    Txt,
    /// One JSON object per input
    Json,
    /// SubRip subtitles
    Srt,
    /// WebVTT subtitles
    Vtt,
}

impl Format {
    /// The file name extension of an output in this format.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Txt => "txt",
            Format::Json => "json",
            Format::Srt => "srt",
            Format::Vtt => "vtt",
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Decoder {
    /// Beam search if there is a language model (--lm, or the model description's), else
    /// greedy
    Auto,
    /// NeMo's greedy decoding (exactly NeMo's transcript), even if a language model exists
    Greedy,
    /// CTC prefix beam search with the language model (an error without one)
    Beam,
}

/// `--execution-provider`: the element's `execution-provider` nicks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExecutionProvider {
    /// ONNX Runtime's CPU kernels
    Cpu,
    /// An NVIDIA GPU through CUDA (CUDA 13, cuDNN 9)
    Cuda,
    /// An NVIDIA GPU through TensorRT 10, CUDA for the nodes it does not take
    #[value(name = "tensorrt")]
    TensorRt,
    /// CUDA where it starts, else the CPU (with a warning)
    Auto,
}

impl From<ExecutionProvider> for quartznet_engine::model::ExecutionProvider {
    fn from(value: ExecutionProvider) -> Self {
        match value {
            ExecutionProvider::Cpu => Self::Cpu,
            ExecutionProvider::Cuda => Self::Cuda,
            ExecutionProvider::TensorRt => Self::TensorRt,
            ExecutionProvider::Auto => Self::Auto,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Padding {
    /// As the model's description says
    Auto,
    /// Reflect the signal at its edges (NeMo <= 2.4)
    Reflect,
    /// Pad with silence (NeMo >= 2.5)
    Zeros,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Normalization {
    /// As the model's description says (per-feature models get per-window statistics)
    Auto,
    /// Per-feature statistics over each window (over the utterance with --offline)
    PerWindow,
    /// The model's fixed statistics, else NeMo's streaming demo constants
    Fixed,
}

/// The nick of a clap value: the element's enum properties use the same names.
pub fn nick<T: ValueEnum>(value: &T) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
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
    /// The output format (`--json` is `--format json`).
    pub fn format(&self) -> Format {
        if self.json { Format::Json } else { self.format }
    }

    /// Every confidence asked for, measure by measure; the first is the words' own.
    pub fn confidences(&self) -> Vec<ConfidenceConfig> {
        let mut all = Vec::new();
        for &measure in &self.confidence {
            for &aggregation in &self.confidence_aggregation {
                let c = ConfidenceConfig {
                    measure,
                    aggregation,
                };
                if !all.contains(&c) {
                    all.push(c);
                }
            }
        }
        if all.is_empty() {
            all.push(ConfidenceConfig::DEFAULT);
        }
        all
    }

    /// The latency and window options, as the engine takes them (the element's properties
    /// of the same names map onto the same).
    pub fn window_overrides(&self) -> WindowOverrides {
        WindowOverrides {
            latency_ms: self.latency_ms,
            left_context_ms: self.left_context_ms,
            chunk_ms: self.chunk_ms,
            right_context_ms: self.right_context_ms,
            word_gap_ms: self.word_gap_ms,
        }
    }

    /// The hotword list of `--hotword` and `--hotwords` (the file read now), merged; `None`
    /// when it has no phrase. A malformed line is an error naming it.
    pub fn hotword_list(&self) -> quartznet_engine::Result<Option<Arc<HotwordList>>> {
        let mut list = HotwordList::default();
        for phrase in &self.hotword {
            list = list.merged(HotwordList::parse(phrase, "--hotword")?);
        }
        if let Some(path) = &self.hotwords {
            list = list.merged(HotwordList::load(path)?);
        }
        Ok((!list.is_empty()).then(|| Arc::new(list)))
    }

    /// Whether an option only the engine offers was given: the engine then runs without
    /// the element (see `parity`).
    pub fn wants_parity(&self) -> bool {
        self.offline
            || self.nemo_frame_batch
            || self.dump_features.is_some()
            || self.dump_logprobs.is_some()
            || self.confidences().len() > 1
    }
}

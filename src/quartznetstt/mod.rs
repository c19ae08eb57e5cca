// SPDX-License-Identifier: MPL-2.0
//! The `quartznetstt` element: its public type, the enums of its properties, and
//! registration. `imp.rs` holds the GStreamer vfuncs and the locks, with one room per job
//! beside it: `settings` (properties), `loading` (model, recogniser, warm-up), `flow` (the
//! streaming job), `hotwords` (hotword lists changed while running), `messages` (what is
//! posted), `input` (bytes to samples); `timeline` turns recognised chunks into the
//! timestamped text, gaps and reports that go downstream, and `pacing` keeps up with live
//! input.

use gst::glib;
use gst::prelude::*;
use quartznet_engine::config::{DecoderKind, NormalizationKind};
use quartznet_engine::decode::{
    ConfidenceAggregation, ConfidenceMeasure, EntropyKind, EntropyNorm,
};
use quartznet_engine::frontend::PaddingMode;

mod flow;
mod hotwords;
mod imp;
mod input;
mod loading;
mod messages;
mod pacing;
mod served;
mod settings;
mod timeline;

glib::wrapper! {
    /// The speech-to-text element (a `GstBaseTransform`): S16LE mono audio in, UTF-8 text out.
    pub struct QuartzNetStt(ObjectSubclass<imp::QuartzNetStt>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

/// What one text buffer holds (`granularity` property).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstQuartzNetSttGranularity")]
pub enum Granularity {
    /// One buffer per phrase: the words completed in a chunk, cut as captions are (at most
    /// two lines of 42 characters and 7 s, a new phrase after a pause).
    #[default]
    #[enum_value(
        name = "Phrase: one buffer per phrase of a chunk's words, cut as captions (2 lines of 42 characters, 7 s, pauses)",
        nick = "phrase"
    )]
    Phrase,
    /// One buffer per word; a word the decoder cut only for timing (its continuation has no
    /// space before it) is one buffer too, as in phrases.
    #[enum_value(name = "Word: one buffer per word, timed to the word", nick = "word")]
    Word,
}

/// What ends each text buffer (`separator` property).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstQuartzNetSttSeparator")]
pub enum Separator {
    /// A space after each buffer's words: concatenated buffers read as prose, and nothing
    /// shows in overlays or subtitle cues.
    #[default]
    #[enum_value(
        name = "Space: each buffer is its words and a space (prose when concatenated; invisible in overlays and subtitles)",
        nick = "space"
    )]
    Space,
    /// A line break after each buffer's words: one phrase per line.
    #[enum_value(
        name = "Newline: each buffer is its words and a line break (one phrase per line: files, terminals)",
        nick = "newline"
    )]
    Newline,
    /// The model's own spaces before each word, the first one's too: buffers concatenate
    /// into the model's exact text (NeMo's transcript with `decoder=greedy`).
    #[enum_value(
        name = "Model: the model's spaces before each word; buffers concatenate into its exact text",
        nick = "model"
    )]
    Model,
}

/// Feature normalisation (`normalization` property).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstQuartzNetSttNormalize")]
pub enum Normalize {
    /// As the model description says.
    #[default]
    #[enum_value(
        name = "Auto: as the model description says (per-feature models: statistics of each window)",
        nick = "auto"
    )]
    Auto,
    /// Per-feature statistics over each window.
    #[enum_value(
        name = "Per window: per-feature statistics over each window",
        nick = "per-window"
    )]
    PerWindow,
    /// The model's fixed statistics, else NeMo's streaming demo constants.
    #[enum_value(
        name = "Fixed: the model's fixed statistics, else NeMo's streaming demo constants",
        nick = "fixed"
    )]
    Fixed,
}

/// Frontend edge padding (`padding` property).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstQuartzNetSttPadding")]
pub enum Padding {
    /// As the model description says.
    #[default]
    #[enum_value(name = "Auto: as the model description says", nick = "auto")]
    Auto,
    /// NeMo 2.4 and earlier.
    #[enum_value(
        name = "Reflect: NeMo 2.4 and earlier (all published QuartzNet models)",
        nick = "reflect"
    )]
    Reflect,
    /// NeMo 2.5 and later.
    #[enum_value(name = "Zeros: NeMo 2.5 and later", nick = "zeros")]
    Zeros,
}

/// Where ONNX Runtime runs the model (`execution-provider` property): the engine's
/// [`quartznet_engine::model::ExecutionProvider`].
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstQuartzNetSttExecutionProvider")]
pub enum ExecutionProviderKind {
    /// ONNX Runtime's CPU kernels.
    #[default]
    #[enum_value(name = "CPU: ONNX Runtime's CPU kernels", nick = "cpu")]
    Cpu,
    /// An NVIDIA GPU through CUDA.
    #[enum_value(
        name = "CUDA: an NVIDIA GPU (the GPU build of ONNX Runtime, CUDA 13 and cuDNN 9); an error if it cannot start",
        nick = "cuda"
    )]
    Cuda,
    /// An NVIDIA GPU through TensorRT, CUDA for the rest.
    #[enum_value(
        name = "TensorRT: an NVIDIA GPU through TensorRT 10, CUDA for the nodes it does not take; an error if it cannot start",
        nick = "tensorrt"
    )]
    TensorRt,
    /// CUDA where it starts, else the CPU (with a warning saying why).
    #[enum_value(
        name = "Auto: CUDA where it starts, else the CPU (a warning says why)",
        nick = "auto"
    )]
    Auto,
}

impl From<ExecutionProviderKind> for quartznet_engine::model::ExecutionProvider {
    fn from(value: ExecutionProviderKind) -> Self {
        match value {
            ExecutionProviderKind::Cpu => Self::Cpu,
            ExecutionProviderKind::Cuda => Self::Cuda,
            ExecutionProviderKind::TensorRt => Self::TensorRt,
            ExecutionProviderKind::Auto => Self::Auto,
        }
    }
}

/// CTC decoding (`decoder` property).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstQuartzNetSttDecoder")]
pub enum Decoder {
    /// Beam search if there is a language model, else greedy.
    #[default]
    #[enum_value(
        name = "Auto: beam search with a language model if lm-path is set or the model names one, else greedy",
        nick = "auto"
    )]
    Auto,
    /// NeMo's greedy decoding.
    #[enum_value(
        name = "Greedy: NeMo's greedy CTC decoding, exactly NeMo's transcript",
        nick = "greedy"
    )]
    Greedy,
    /// Beam search with a word language model.
    #[enum_value(
        name = "Beam: CTC prefix beam search with a word language model",
        nick = "beam"
    )]
    Beam,
}

/// The word confidence measure (`confidence-method` property; its alpha is
/// `confidence-alpha`): NeMo's `ConfidenceMethodConfig`. No `Default`: the element's default
/// is the engine's ([`quartznet_engine::decode::ConfidenceConfig::DEFAULT`]).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstQuartzNetSttConfidenceMethod")]
pub enum ConfidenceMethod {
    /// NeMo's `max_prob`.
    #[enum_value(
        name = "Max prob: the frame's normalised maximum probability (NeMo's max_prob)",
        nick = "max-prob"
    )]
    MaxProb,
    /// Gibbs entropy, linear norm.
    #[enum_value(
        name = "Gibbs lin: 1 - Gibbs entropy / its maximum (alpha 1: Shannon)",
        nick = "gibbs-lin"
    )]
    GibbsLin,
    /// Gibbs entropy, exponential norm.
    #[enum_value(
        name = "Gibbs exp: Gibbs entropy, exponential norm (alpha 1: (V exp(-H) - 1) / (V - 1))",
        nick = "gibbs-exp"
    )]
    GibbsExp,
    /// Tsallis entropy, linear norm.
    #[enum_value(
        name = "Tsallis lin: Tsallis entropy, linear norm",
        nick = "tsallis-lin"
    )]
    TsallisLin,
    /// Tsallis entropy, exponential norm (NeMo's default with alpha 0.33).
    #[enum_value(
        name = "Tsallis exp: Tsallis entropy, exponential norm (NeMo's default)",
        nick = "tsallis-exp"
    )]
    TsallisExp,
    /// Rényi entropy, linear norm.
    #[enum_value(name = "Renyi lin: Renyi entropy, linear norm", nick = "renyi-lin")]
    RenyiLin,
    /// Rényi entropy, exponential norm.
    #[enum_value(
        name = "Renyi exp: Renyi entropy, exponential norm",
        nick = "renyi-exp"
    )]
    RenyiExp,
}

/// How frame confidences make a token's and token confidences a word's
/// (`confidence-aggregation` property): NeMo's `aggregation`.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstQuartzNetSttConfidenceAggregation")]
pub enum ConfidenceAggregationKind {
    /// Arithmetic mean.
    #[enum_value(name = "Mean", nick = "mean")]
    Mean,
    /// Minimum.
    #[enum_value(name = "Min: the least confident token (NeMo's default)", nick = "min")]
    Min,
    /// Maximum.
    #[enum_value(name = "Max", nick = "max")]
    Max,
    /// Product.
    #[enum_value(name = "Prod: product", nick = "prod")]
    Prod,
}

// "Auto" is the engine's `None`: each property enum maps onto the engine's type here, once.

impl From<ConfidenceMeasure> for ConfidenceMethod {
    fn from(measure: ConfidenceMeasure) -> Self {
        use EntropyKind::*;
        use EntropyNorm::*;
        match measure {
            ConfidenceMeasure::MaxProb { .. } => Self::MaxProb,
            ConfidenceMeasure::Entropy { kind, norm, .. } => match (kind, norm) {
                (Gibbs, Lin) => Self::GibbsLin,
                (Gibbs, Exp) => Self::GibbsExp,
                (Tsallis, Lin) => Self::TsallisLin,
                (Tsallis, Exp) => Self::TsallisExp,
                (Renyi, Lin) => Self::RenyiLin,
                (Renyi, Exp) => Self::RenyiExp,
            },
        }
    }
}

impl ConfidenceMethod {
    /// The engine's measure with `alpha`.
    pub fn measure(self, alpha: f32) -> ConfidenceMeasure {
        use EntropyKind::*;
        use EntropyNorm::*;
        let entropy = |kind, norm| ConfidenceMeasure::Entropy { kind, norm, alpha };
        match self {
            Self::MaxProb => ConfidenceMeasure::MaxProb { alpha },
            Self::GibbsLin => entropy(Gibbs, Lin),
            Self::GibbsExp => entropy(Gibbs, Exp),
            Self::TsallisLin => entropy(Tsallis, Lin),
            Self::TsallisExp => entropy(Tsallis, Exp),
            Self::RenyiLin => entropy(Renyi, Lin),
            Self::RenyiExp => entropy(Renyi, Exp),
        }
    }
}

impl From<ConfidenceAggregation> for ConfidenceAggregationKind {
    fn from(value: ConfidenceAggregation) -> Self {
        match value {
            ConfidenceAggregation::Mean => Self::Mean,
            ConfidenceAggregation::Min => Self::Min,
            ConfidenceAggregation::Max => Self::Max,
            ConfidenceAggregation::Prod => Self::Prod,
        }
    }
}

impl From<ConfidenceAggregationKind> for ConfidenceAggregation {
    fn from(value: ConfidenceAggregationKind) -> Self {
        match value {
            ConfidenceAggregationKind::Mean => Self::Mean,
            ConfidenceAggregationKind::Min => Self::Min,
            ConfidenceAggregationKind::Max => Self::Max,
            ConfidenceAggregationKind::Prod => Self::Prod,
        }
    }
}

impl From<Decoder> for Option<DecoderKind> {
    fn from(value: Decoder) -> Self {
        match value {
            Decoder::Auto => None,
            Decoder::Greedy => Some(DecoderKind::Greedy),
            Decoder::Beam => Some(DecoderKind::Beam),
        }
    }
}

impl From<Normalize> for Option<NormalizationKind> {
    fn from(value: Normalize) -> Self {
        match value {
            Normalize::Auto => None,
            Normalize::PerWindow => Some(NormalizationKind::PerWindow),
            Normalize::Fixed => Some(NormalizationKind::Fixed),
        }
    }
}

impl From<Padding> for Option<PaddingMode> {
    fn from(value: Padding) -> Self {
        match value {
            Padding::Auto => None,
            Padding::Reflect => Some(PaddingMode::Reflect),
            Padding::Zeros => Some(PaddingMode::Zeros),
        }
    }
}

/// Registers `quartznetstt` with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // Lets gst-inspect and the documentation tools describe the enum properties.
    for enum_type in [
        Granularity::static_type(),
        Separator::static_type(),
        Normalize::static_type(),
        Padding::static_type(),
        Decoder::static_type(),
        ConfidenceMethod::static_type(),
        ConfidenceAggregationKind::static_type(),
    ] {
        enum_type.mark_as_plugin_api(gst::PluginAPIFlags::empty());
    }
    gst::Element::register(
        Some(plugin),
        "quartznetstt",
        gst::Rank::NONE,
        QuartzNetStt::static_type(),
    )
}

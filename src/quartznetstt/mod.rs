// SPDX-License-Identifier: MPL-2.0
//! The `quartznetstt` element: its public type, the enums of its properties, and
//! registration. `imp.rs` is the GStreamer glue; `timeline.rs` turns recognised chunks into
//! the timestamped text, gaps and reports that go downstream.

use gst::glib;
use gst::prelude::*;
use quartznet_engine::config::{DecoderKind, NormalizationKind};
use quartznet_engine::frontend::PaddingMode;

mod imp;
mod pacing;
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
    /// One buffer per chunk with the words completed in it.
    #[default]
    #[enum_value(
        name = "Phrase: one buffer per chunk with the words completed in it",
        nick = "phrase"
    )]
    Phrase,
    /// One buffer per word.
    #[enum_value(name = "Word: one buffer per word, timed to the word", nick = "word")]
    Word,
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

// "Auto" is the engine's `None`: each property enum maps onto the engine's type here, once.

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
        Normalize::static_type(),
        Padding::static_type(),
        Decoder::static_type(),
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

// SPDX-License-Identifier: MPL-2.0

/**
 * SECTION:element-quartznetstt
 *
 * Transcribes speech with an NVIDIA NeMo QuartzNet (or any NeMo character CTC) model
 * exported to ONNX. Raw S16LE mono audio at the model's rate goes in; timestamped UTF-8 text
 * buffers come out, and an element message named `quartznetstt` is posted on the bus for
 * every recognised chunk (final words and the word still being spoken).
 *
 * The audio is recognised in windows of left context + chunk + right context (NeMo's
 * buffered streaming), so the text of a chunk is known `chunk-ms + right-context-ms` after its
 * start. A word that began before the chunk comes out with it, so the latency the element
 * reports adds the time decoding may hold a word back (1 s + `word-gap-ms`, plus 1 s with
 * beam search) and one window's processing time; text held longer is timestamped no earlier
 * than that latency allows, so a live sink never receives it late.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 -q filesrc location=tests/fixtures/audio/LJ001-0001.wav ! wavparse ! audioconvert ! audioresample ! quartznetstt model-path=tests/fixtures/models/quartznet-tiny.onnx append-newline=true ! fdsink fd=1
 * ]|
 */
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};
use std::time::Instant;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_transform::GenerateOutputSuccess;
use gst_base::subclass::prelude::*;

use crate::ctc::Word;
use crate::model::{LoadOptions, OnnxModel};
use crate::options::{self, DecoderChoice, DecoderChoices, NormalizationChoice, PaddingChoice};
use crate::streaming::{ChunkResult, StreamingRecognizer, WindowConfig};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "quartznetstt",
        gst::DebugColorFlags::empty(),
        Some("QuartzNet speech-to-text"),
    )
});

const DEFAULT_MODEL_PATH: Option<&str> = None;
const DEFAULT_THREADS: u32 = 0;
const DEFAULT_LEFT_CONTEXT_MS: u32 = 2500;
const DEFAULT_CHUNK_MS: u32 = 2000;
const DEFAULT_RIGHT_CONTEXT_MS: u32 = 2500;
const DEFAULT_WORD_GAP_MS: u32 = 600;
const DEFAULT_APPEND_NEWLINE: bool = false;
const DEFAULT_POST_MESSAGES: bool = true;
const DEFAULT_LM_PATH: Option<&str> = None;

#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstQuartzNetSttGranularity")]
pub enum Granularity {
    #[default]
    #[enum_value(
        name = "Phrase: one buffer per chunk with the words completed in it",
        nick = "phrase"
    )]
    Phrase,
    #[enum_value(name = "Word: one buffer per word, timed to the word", nick = "word")]
    Word,
}

#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstQuartzNetSttNormalize")]
pub enum Normalize {
    #[default]
    #[enum_value(
        name = "Auto: as the model description says (per-feature models: statistics of each window)",
        nick = "auto"
    )]
    Auto,
    #[enum_value(
        name = "Per window: per-feature statistics over each window",
        nick = "per-window"
    )]
    PerWindow,
    #[enum_value(
        name = "Fixed: the model's fixed statistics, else NeMo's streaming demo constants",
        nick = "fixed"
    )]
    Fixed,
}

#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstQuartzNetSttPadding")]
pub enum Padding {
    #[default]
    #[enum_value(name = "Auto: as the model description says", nick = "auto")]
    Auto,
    #[enum_value(
        name = "Reflect: NeMo 2.4 and earlier (all published QuartzNet models)",
        nick = "reflect"
    )]
    Reflect,
    #[enum_value(name = "Zeros: NeMo 2.5 and later", nick = "zeros")]
    Zeros,
}

#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstQuartzNetSttDecoder")]
pub enum Decoder {
    #[default]
    #[enum_value(
        name = "Auto: beam search with a language model if lm-path is set or the model names one, else greedy",
        nick = "auto"
    )]
    Auto,
    #[enum_value(
        name = "Greedy: NeMo's greedy CTC decoding, exactly NeMo's transcript",
        nick = "greedy"
    )]
    Greedy,
    #[enum_value(
        name = "Beam: CTC prefix beam search with a word language model",
        nick = "beam"
    )]
    Beam,
}

impl From<Decoder> for DecoderChoice {
    fn from(value: Decoder) -> Self {
        match value {
            Decoder::Auto => Self::Auto,
            Decoder::Greedy => Self::Greedy,
            Decoder::Beam => Self::Beam,
        }
    }
}

impl From<Normalize> for NormalizationChoice {
    fn from(value: Normalize) -> Self {
        match value {
            Normalize::Auto => Self::Auto,
            Normalize::PerWindow => Self::PerWindow,
            Normalize::Fixed => Self::Fixed,
        }
    }
}

impl From<Padding> for PaddingChoice {
    fn from(value: Padding) -> Self {
        match value {
            Padding::Auto => Self::Auto,
            Padding::Reflect => Self::Reflect,
            Padding::Zeros => Self::Zeros,
        }
    }
}

#[derive(Debug, Clone)]
struct Settings {
    model_path: Option<String>,
    threads: u32,
    left_context_ms: u32,
    chunk_ms: u32,
    right_context_ms: u32,
    word_gap_ms: u32,
    decoder: Decoder,
    lm_path: Option<String>,
    beam_width: u32,
    lm_weight: f32,
    word_bonus: f32,
    normalize: Normalize,
    padding: Padding,
    granularity: Granularity,
    append_newline: bool,
    post_messages: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            model_path: DEFAULT_MODEL_PATH.map(String::from),
            threads: DEFAULT_THREADS,
            left_context_ms: DEFAULT_LEFT_CONTEXT_MS,
            chunk_ms: DEFAULT_CHUNK_MS,
            right_context_ms: DEFAULT_RIGHT_CONTEXT_MS,
            word_gap_ms: DEFAULT_WORD_GAP_MS,
            decoder: Decoder::default(),
            lm_path: DEFAULT_LM_PATH.map(String::from),
            beam_width: options::DEFAULT_BEAM_WIDTH,
            lm_weight: options::DEFAULT_LM_WEIGHT,
            word_bonus: options::DEFAULT_WORD_BONUS,
            normalize: Normalize::default(),
            padding: Padding::default(),
            granularity: Granularity::default(),
            append_newline: DEFAULT_APPEND_NEWLINE,
            post_messages: DEFAULT_POST_MESSAGES,
        }
    }
}

/// What `generate_output` hands downstream, in stream order.
enum Output {
    Text {
        buffer: gst::Buffer,
    },
    Gap {
        start: gst::ClockTime,
        duration: gst::ClockTime,
    },
}

/// Per-stream data, created in `start()` (where the model is loaded) and dropped in `stop()`.
struct State {
    recognizer: StreamingRecognizer<OnnxModel>,
    sample_rate: u32,
    /// Timestamp of stream sample 0 of the recogniser's current stream.
    base_pts: Option<gst::ClockTime>,
    /// A byte left over from an odd-sized buffer, joined with the next one.
    odd_byte: Option<u8>,
    /// Reused conversion buffer, so buffers allocate nothing once warmed up.
    samples: Vec<f32>,
    /// Everything up to here has been covered downstream by text or a gap.
    emitted_until: Option<gst::ClockTime>,
    pending: VecDeque<Output>,
    messages: Vec<gst::Message>,
    granularity: Granularity,
    append_newline: bool,
    post_messages: bool,
    /// Estimated time to recognise one window, measured at start, for LATENCY answers.
    processing: gst::ClockTime,
    /// How long decoding may hold a word back after it starts (`options::text_hold_ms`).
    text_hold: gst::ClockTime,
    /// The caps we last refused, so the hint is posted once per caps.
    refused_caps: Option<gst::Caps>,
}

#[derive(Default)]
pub struct QuartzNetStt {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
}

#[glib::object_subclass]
impl ObjectSubclass for QuartzNetStt {
    const NAME: &'static str = "GstQuartzNetStt";
    type Type = super::QuartzNetStt;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for QuartzNetStt {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let ready = glib::ParamFlags::READWRITE | gst::PARAM_FLAG_MUTABLE_READY;
            let ms = |name: &str, nick: &str, blurb: &str, default: u32, max: u32| {
                glib::ParamSpecUInt::builder(name)
                    .nick(nick)
                    .blurb(blurb)
                    .maximum(max)
                    .default_value(default)
                    .flags(ready)
                    .build()
            };
            vec![
                glib::ParamSpecString::builder("model-path")
                    .nick("Model Path")
                    .blurb(
                        "ONNX model exported from NeMo (unset: the bundled English model); its description is \
                         read from model.json beside it, the ONNX metadata, or QuartzNet English defaults \
                         (alphabet.txt beside it sets the labels)",
                    )
                    .default_value(DEFAULT_MODEL_PATH)
                    .flags(ready)
                    .build(),
                glib::ParamSpecUInt::builder("threads")
                    .nick("Threads")
                    .blurb("ONNX Runtime intra-op threads (0 = one per core)")
                    .maximum(256)
                    .default_value(DEFAULT_THREADS)
                    .flags(ready)
                    .build(),
                ms(
                    "left-context-ms",
                    "Left Context",
                    "Audio before each chunk given to the model, in ms (rounded to whole 20 ms output frames)",
                    DEFAULT_LEFT_CONTEXT_MS,
                    60_000,
                ),
                ms(
                    "chunk-ms",
                    "Chunk",
                    "Audio recognised per window, in ms (rounded to whole output frames, at least one)",
                    DEFAULT_CHUNK_MS,
                    60_000,
                ),
                ms(
                    "right-context-ms",
                    "Right Context",
                    "Audio after each chunk given to the model, in ms; adds to the latency",
                    DEFAULT_RIGHT_CONTEXT_MS,
                    60_000,
                ),
                ms(
                    "word-gap-ms",
                    "Word Gap",
                    "Silence after a word that completes it even without a following space, in ms (0 = only a space does)",
                    DEFAULT_WORD_GAP_MS,
                    60_000,
                ),
                glib::ParamSpecEnum::builder_with_default("decoder", Decoder::default())
                    .nick("Decoder")
                    .blurb("CTC decoding: greedy (NeMo's) or beam search with a word language model")
                    .flags(ready)
                    .build(),
                glib::ParamSpecString::builder("lm-path")
                    .nick("Language Model Path")
                    .blurb(
                        "Word n-gram language model in ARPA format (may be gzipped) for beam search \
                         (unset: the one the model description names; the bundled model has one)",
                    )
                    .default_value(DEFAULT_LM_PATH)
                    .flags(ready)
                    .build(),
                glib::ParamSpecUInt::builder("beam-width")
                    .nick("Beam Width")
                    .blurb("Hypotheses kept by the beam search")
                    .minimum(1)
                    .maximum(4096)
                    .default_value(options::DEFAULT_BEAM_WIDTH)
                    .flags(ready)
                    .build(),
                glib::ParamSpecFloat::builder("lm-weight")
                    .nick("LM Weight")
                    .blurb("Weight of the language model's log-probability in the beam search")
                    .minimum(0.0)
                    .maximum(10.0)
                    .default_value(options::DEFAULT_LM_WEIGHT)
                    .flags(ready)
                    .build(),
                glib::ParamSpecFloat::builder("word-bonus")
                    .nick("Word Bonus")
                    .blurb("Score added per word in the beam search (higher: more, shorter words)")
                    .minimum(-100.0)
                    .maximum(100.0)
                    .default_value(options::DEFAULT_WORD_BONUS)
                    .flags(ready)
                    .build(),
                glib::ParamSpecEnum::builder_with_default("normalization", Normalize::default())
                    .nick("Normalization")
                    .blurb("How features are normalised before the model")
                    .flags(ready)
                    .build(),
                glib::ParamSpecEnum::builder_with_default("padding", Padding::default())
                    .nick("Padding")
                    .blurb("Frontend edge padding, overriding the model description (must match the NeMo version that trained the model)")
                    .flags(ready)
                    .build(),
                glib::ParamSpecEnum::builder_with_default("granularity", Granularity::default())
                    .nick("Granularity")
                    .blurb("Whether text buffers hold a phrase (all words completed in a chunk) or one word")
                    .flags(glib::ParamFlags::READWRITE | gst::PARAM_FLAG_MUTABLE_PLAYING)
                    .build(),
                glib::ParamSpecBoolean::builder("append-newline")
                    .nick("Append Newline")
                    .blurb("End each text buffer with a newline (for files and terminals; leave off for textoverlay)")
                    .default_value(DEFAULT_APPEND_NEWLINE)
                    .flags(glib::ParamFlags::READWRITE | gst::PARAM_FLAG_MUTABLE_PLAYING)
                    .build(),
                glib::ParamSpecBoolean::builder("post-messages")
                    .nick("Post Messages")
                    .blurb("Post a 'quartznetstt' element message on the bus for each recognised chunk")
                    .default_value(DEFAULT_POST_MESSAGES)
                    .flags(glib::ParamFlags::READWRITE | gst::PARAM_FLAG_MUTABLE_PLAYING)
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        // The model, threads, window and frontend are fixed while a stream runs (they are
        // read in start()); refuse rather than silently ignore a change.
        if !pspec.flags().contains(gst::PARAM_FLAG_MUTABLE_PLAYING)
            && self.state.lock().unwrap().is_some()
        {
            gst::warning!(
                CAT,
                imp = self,
                "property '{}' can only be changed in the NULL or READY state; ignored",
                pspec.name()
            );
            return;
        }
        let mut settings = self.settings.lock().unwrap();
        match pspec.name() {
            "model-path" => settings.model_path = value.get().expect("type checked upstream"),
            "threads" => settings.threads = value.get().expect("type checked upstream"),
            "left-context-ms" => {
                settings.left_context_ms = value.get().expect("type checked upstream")
            }
            "chunk-ms" => settings.chunk_ms = value.get().expect("type checked upstream"),
            "right-context-ms" => {
                settings.right_context_ms = value.get().expect("type checked upstream")
            }
            "word-gap-ms" => settings.word_gap_ms = value.get().expect("type checked upstream"),
            "decoder" => settings.decoder = value.get().expect("type checked upstream"),
            "lm-path" => settings.lm_path = value.get().expect("type checked upstream"),
            "beam-width" => settings.beam_width = value.get().expect("type checked upstream"),
            "lm-weight" => settings.lm_weight = value.get().expect("type checked upstream"),
            "word-bonus" => settings.word_bonus = value.get().expect("type checked upstream"),
            "normalization" => settings.normalize = value.get().expect("type checked upstream"),
            "padding" => settings.padding = value.get().expect("type checked upstream"),
            "granularity" | "append-newline" | "post-messages" => {
                match pspec.name() {
                    "granularity" => {
                        settings.granularity = value.get().expect("type checked upstream")
                    }
                    "append-newline" => {
                        settings.append_newline = value.get().expect("type checked upstream")
                    }
                    _ => settings.post_messages = value.get().expect("type checked upstream"),
                }
                // These only shape the output, so they may change while streaming.
                if let Some(state) = self.state.lock().unwrap().as_mut() {
                    state.granularity = settings.granularity;
                    state.append_newline = settings.append_newline;
                    state.post_messages = settings.post_messages;
                }
            }
            other => unreachable!("unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = self.settings.lock().unwrap();
        match pspec.name() {
            "model-path" => settings.model_path.to_value(),
            "threads" => settings.threads.to_value(),
            "left-context-ms" => settings.left_context_ms.to_value(),
            "chunk-ms" => settings.chunk_ms.to_value(),
            "right-context-ms" => settings.right_context_ms.to_value(),
            "word-gap-ms" => settings.word_gap_ms.to_value(),
            "decoder" => settings.decoder.to_value(),
            "lm-path" => settings.lm_path.to_value(),
            "beam-width" => settings.beam_width.to_value(),
            "lm-weight" => settings.lm_weight.to_value(),
            "word-bonus" => settings.word_bonus.to_value(),
            "normalization" => settings.normalize.to_value(),
            "padding" => settings.padding.to_value(),
            "granularity" => settings.granularity.to_value(),
            "append-newline" => settings.append_newline.to_value(),
            "post-messages" => settings.post_messages.to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }
}

impl GstObjectImpl for QuartzNetStt {}

impl ElementImpl for QuartzNetStt {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "QuartzNet speech-to-text",
                "Audio/Text/Converter",
                "Transcribes speech with NeMo QuartzNet CTC models run by ONNX Runtime",
                "The quartznetstt developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            // The sink template admits any rate and channel count so that wrong caps reach
            // accept_caps, which explains the fix; the CAPS query answers the model's exact caps.
            let sink_caps = gst_audio::AudioCapsBuilder::new_interleaved()
                .format(gst_audio::AudioFormat::S16le)
                .build();
            let src_caps = text_caps();
            vec![
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &sink_caps,
                )
                .unwrap(),
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &src_caps,
                )
                .unwrap(),
            ]
        });
        PAD_TEMPLATES.as_ref()
    }
}

fn text_caps() -> gst::Caps {
    gst::Caps::builder("text/x-raw")
        .field("format", "utf8")
        .build()
}

fn audio_caps(rate: u32) -> gst::Caps {
    gst_audio::AudioCapsBuilder::new_interleaved()
        .format(gst_audio::AudioFormat::S16le)
        .rate(rate as i32)
        .channels(1)
        .build()
}

impl BaseTransformImpl for QuartzNetStt {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::NeverInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let state = self.build_state(&settings)?;
        gst::info!(
            CAT,
            imp = self,
            "loaded {} ({}); window {:?}; ONNX Runtime {:?}",
            state.recognizer.model().path().display(),
            state.recognizer.model().description().source,
            state.recognizer.geometry(),
            crate::runtime::loaded_library()
        );
        *self.state.lock().unwrap() = Some(state);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *self.state.lock().unwrap() = None;
        Ok(())
    }

    fn transform_caps(
        &self,
        direction: gst::PadDirection,
        _caps: &gst::Caps,
        filter: Option<&gst::Caps>,
    ) -> Option<gst::Caps> {
        let caps = match direction {
            gst::PadDirection::Src => audio_caps(self.model_rate()),
            _ => text_caps(),
        };
        Some(match filter {
            Some(filter) => filter.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
            None => caps,
        })
    }

    fn accept_caps(&self, direction: gst::PadDirection, caps: &gst::Caps) -> bool {
        if direction != gst::PadDirection::Sink {
            return self.parent_accept_caps(direction, caps);
        }
        let rate = self.model_rate();
        if caps.can_intersect(&audio_caps(rate)) {
            return true;
        }
        // Wrong rate, channels or format: say what to add, once per caps.
        let mut state = self.state.lock().unwrap();
        let first_time = state.as_mut().is_none_or(|s| {
            let new = s.refused_caps.as_ref() != Some(caps);
            s.refused_caps = Some(caps.clone());
            new
        });
        drop(state);
        if first_time {
            gst::element_imp_warning!(
                self,
                gst::CoreError::Negotiation,
                ("quartznetstt takes S16LE mono audio at {rate} Hz: add 'audioconvert ! audioresample' before it"),
                details: gst::Structure::builder("details").field("refused-caps", caps).build()
            );
        }
        false
    }

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_audio::AudioInfo::from_caps(incaps)
            .map_err(|_| gst::loggable_error!(CAT, "cannot parse input caps {}", incaps))?;
        let rate = self.model_rate();
        if info.rate() != rate
            || info.channels() != 1
            || info.format() != gst_audio::AudioFormat::S16le
        {
            return Err(gst::loggable_error!(
                CAT,
                "caps {} are not S16LE mono at {} Hz",
                incaps,
                rate
            ));
        }
        Ok(())
    }

    fn query(&self, direction: gst::PadDirection, query: &mut gst::QueryRef) -> bool {
        if direction == gst::PadDirection::Src
            && let gst::QueryViewMut::Latency(q) = query.view_mut()
        {
            let mut upstream = gst::query::Latency::new();
            if !self.obj().sink_pad().peer_query(&mut upstream) {
                return false;
            }
            let (live, min, max) = upstream.result();
            let ours = self.latency();
            gst::debug!(
                CAT,
                imp = self,
                "latency: upstream {min} - {max:?}, ours {ours}"
            );
            q.set(live, min + ours, max.map(|m| m + ours));
            return true;
        }
        BaseTransformImplExt::parent_query(self, direction, query)
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        match event.view() {
            gst::EventView::Eos(_) => {
                // The tail (audio shorter than a window) is recognised before EOS goes on.
                if let Err(err) = self.drain() {
                    gst::warning!(CAT, imp = self, "drain at EOS failed: {err:?}");
                }
            }
            gst::EventView::Segment(_) => {
                // Text of the old segment must go out before the new segment event.
                if let Err(err) = self.drain() {
                    gst::warning!(CAT, imp = self, "drain at new segment failed: {err:?}");
                }
            }
            gst::EventView::FlushStop(_) => self.reset(),
            _ => {}
        }
        self.parent_sink_event(event)
    }

    fn generate_output(&self) -> Result<GenerateOutputSuccess, gst::FlowError> {
        if let Some(buffer) = self.take_queued_buffer() {
            self.process_buffer(&buffer)?;
        }
        // Gaps are events, so push them here and hand the next text buffer to the base class.
        loop {
            let (output, messages) = {
                let mut state = self.state.lock().unwrap();
                let Some(state) = state.as_mut() else {
                    return Err(gst::FlowError::Flushing);
                };
                (
                    state.pending.pop_front(),
                    std::mem::take(&mut state.messages),
                )
            };
            self.post_messages(messages);
            match output {
                None => return Ok(GenerateOutputSuccess::NoOutput),
                Some(Output::Text { buffer }) => return Ok(GenerateOutputSuccess::Buffer(buffer)),
                Some(Output::Gap { start, duration }) => {
                    let gap = gst::event::Gap::builder(start).duration(duration).build();
                    self.obj().src_pad().push_event(gap);
                }
            }
        }
    }
}

impl QuartzNetStt {
    fn model_rate(&self) -> u32 {
        self.state
            .lock()
            .unwrap()
            .as_ref()
            .map_or(16_000, |s| s.sample_rate)
    }

    /// Loads the model and builds the recogniser; every failure is an error message naming
    /// the file and the problem, so the state change fails cleanly.
    fn build_state(&self, settings: &Settings) -> Result<State, gst::ErrorMessage> {
        let path = match settings.model_path.as_deref().filter(|p| !p.is_empty()) {
            Some(path) => PathBuf::from(path),
            None => crate::default_model::find().map_err(|e| {
                gst::error_msg!(
                    gst::ResourceError::NotFound,
                    ("no model: set the model-path property to an ONNX model exported from NeMo ({e})")
                )
            })?,
        };
        let options = LoadOptions {
            threads: settings.threads as usize,
        };
        let model = OnnxModel::load(&path, &options).map_err(|e| {
            let kind = if path.exists() {
                gst::ResourceError::OpenRead
            } else {
                gst::ResourceError::NotFound
            };
            gst::error_msg!(kind, ("{e}"))
        })?;
        let description = model.description().clone();
        let frontend = options::frontend_for(
            &description,
            settings.normalize.into(),
            settings.padding.into(),
        );
        let frame_samples = frontend.hop_length * description.subsampling_factor as usize;
        let (geometry, rounded) = WindowConfig::from_millis(
            settings.left_context_ms,
            settings.chunk_ms,
            settings.right_context_ms,
            description.sample_rate,
            frame_samples,
        );
        if rounded {
            gst::warning!(
                CAT,
                imp = self,
                "window durations rounded to whole output frames: {geometry:?} samples"
            );
        }
        let choices = DecoderChoices {
            decoder: settings.decoder.into(),
            lm_path: settings
                .lm_path
                .as_deref()
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
            beam_width: settings.beam_width,
            lm_weight: settings.lm_weight,
            word_bonus: settings.word_bonus,
            word_gap_ms: settings.word_gap_ms,
        };
        let decoder = options::decoding_options(&description, &choices)
            .map_err(|e| gst::error_msg!(gst::ResourceError::OpenRead, ("{e}")))?;
        let text_hold = gst::ClockTime::from_mseconds(u64::from(options::text_hold_ms(
            settings.word_gap_ms,
            decoder.beam.is_some(),
        )));
        if let Some(beam) = &decoder.beam {
            gst::info!(
                CAT,
                imp = self,
                "beam search: width {}, LM order {} with {} words, weight {}, word bonus {}",
                beam.beam_width,
                beam.lm.order(),
                beam.lm.vocabulary_size(),
                beam.lm_weight,
                beam.word_bonus
            );
        }
        let mut recognizer =
            StreamingRecognizer::new(model, &description, frontend, geometry, decoder).map_err(
                |e| gst::error_msg!(gst::LibraryError::Settings, ("{}: {e}", path.display())),
            )?;

        // One window of silence warms ONNX Runtime up (the first run is the slowest) and
        // measures the processing latency reported in LATENCY queries.
        let started = Instant::now();
        recognizer.push(&vec![0.0; geometry.chunk + geometry.right]);
        let warm_up = recognizer.next_result();
        let elapsed = started.elapsed();
        recognizer.reset();
        warm_up
            .map_err(|e| gst::error_msg!(gst::LibraryError::Failed, ("{}: {e}", path.display())))?;

        Ok(State {
            recognizer,
            sample_rate: description.sample_rate,
            base_pts: None,
            odd_byte: None,
            samples: Vec::new(),
            emitted_until: None,
            pending: VecDeque::new(),
            messages: Vec::new(),
            granularity: settings.granularity,
            append_newline: settings.append_newline,
            post_messages: settings.post_messages,
            processing: gst::ClockTime::from_nseconds(elapsed.as_nanos() as u64 * 2),
            text_hold,
            refused_caps: None,
        })
    }

    /// Chunk + right context (audio that must arrive before a chunk is recognised), plus how
    /// long decoding may hold a word back after it starts (a word that began before the chunk
    /// comes out with it), plus the time recognition takes.
    fn latency(&self) -> gst::ClockTime {
        let state = self.state.lock().unwrap();
        let Some(state) = state.as_ref() else {
            let s = self.settings.lock().unwrap();
            let beam = !matches!(s.decoder, Decoder::Greedy);
            let hold = options::text_hold_ms(s.word_gap_ms, beam);
            return gst::ClockTime::from_mseconds(u64::from(
                s.chunk_ms + s.right_context_ms + hold,
            ));
        };
        let g = state.recognizer.geometry();
        samples_to_time((g.chunk + g.right) as u64, state.sample_rate)
            + state.text_hold
            + state.processing
    }

    fn process_buffer(&self, buffer: &gst::Buffer) -> Result<(), gst::FlowError> {
        let map = buffer.map_readable().map_err(|_| {
            gst::element_imp_error!(self, gst::StreamError::Decode, ("cannot map input buffer"));
            gst::FlowError::Error
        })?;
        let mut state_guard = self.state.lock().unwrap();
        let state = state_guard.as_mut().ok_or(gst::FlowError::Flushing)?;

        let mut bytes: &[u8] = &map;
        state.samples.clear();
        if let Some(first) = state.odd_byte.take()
            && let Some((&second, rest)) = bytes.split_first()
        {
            state
                .samples
                .push(f32::from(i16::from_le_bytes([first, second])) / 32768.0);
            bytes = rest;
        }
        let pairs = bytes.chunks_exact(2);
        state.odd_byte = pairs.remainder().first().copied();
        state
            .samples
            .extend(pairs.map(|p| f32::from(i16::from_le_bytes([p[0], p[1]])) / 32768.0));
        drop(map);

        if let Some(pts) = buffer.pts() {
            self.handle_timestamp(
                state,
                pts,
                buffer.flags().contains(gst::BufferFlags::DISCONT),
            )?;
        } else if state.base_pts.is_none() {
            let segment = self.obj().segment();
            let start = segment
                .downcast_ref::<gst::ClockTime>()
                .and_then(|s| s.start());
            self.start_stream(state, start.unwrap_or(gst::ClockTime::ZERO));
        }

        let samples = std::mem::take(&mut state.samples);
        state.recognizer.push(&samples);
        state.samples = samples;
        loop {
            match state.recognizer.next_result() {
                Ok(Some(result)) => self.queue_result(state, result, None),
                Ok(None) => break,
                Err(e) => {
                    drop(state_guard);
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::Failed,
                        ("recognition failed: {e}")
                    );
                    return Err(gst::FlowError::Error);
                }
            }
        }
        Ok(())
    }

    /// Keeps the recogniser's sample clock in step with buffer timestamps. Small jitter is
    /// ignored; a hole shorter than a chunk is filled with silence (the model hears a pause);
    /// a longer hole or a step back ends the current stream as at EOS and starts a new one at
    /// the new timestamp, so no audio is dropped and no text is mistimed.
    fn handle_timestamp(
        &self,
        state: &mut State,
        pts: gst::ClockTime,
        discont: bool,
    ) -> Result<(), gst::FlowError> {
        let Some(base) = state.base_pts else {
            self.start_stream(state, pts);
            return Ok(());
        };
        let pushed = state.recognizer.samples_pushed();
        let expected = base + samples_to_time(pushed, state.sample_rate);
        // Half an output frame: less than that cannot move any text.
        let tolerance = samples_to_time(
            state.recognizer.frame_samples() as u64 / 2,
            state.sample_rate,
        );
        let diff = pts.nseconds() as i128 - expected.nseconds() as i128;
        if diff.unsigned_abs() <= u128::from(tolerance.nseconds()) {
            return Ok(());
        }
        let chunk = samples_to_time(state.recognizer.geometry().chunk as u64, state.sample_rate);
        if diff > 0 && diff <= i128::from(chunk.nseconds()) {
            let missing = time_to_samples(
                gst::ClockTime::from_nseconds(diff as u64),
                state.sample_rate,
            );
            gst::debug!(
                CAT,
                imp = self,
                "filling a {} gap with {missing} samples of silence",
                gst::ClockTime::from_nseconds(diff as u64)
            );
            state.recognizer.push(&vec![0.0; missing as usize]);
            return Ok(());
        }
        gst::debug!(
            CAT,
            imp = self,
            "timestamp jump from {expected} to {pts} (discont {discont}): restarting"
        );
        let end = self.stream_end(state);
        let results = state.recognizer.finish().map_err(|e| {
            gst::element_imp_error!(self, gst::StreamError::Failed, ("recognition failed: {e}"));
            gst::FlowError::Error
        })?;
        for result in results {
            self.queue_result(state, result, Some(end));
        }
        self.start_stream(state, pts);
        Ok(())
    }

    /// Starts the output timeline of a new stream at `base` (it may even lie before the old
    /// one). An empty gap tells downstream at once where the text stream stands, so sinks
    /// preroll and live pipelines settle their latency before the first chunk is recognised.
    fn start_stream(&self, state: &mut State, base: gst::ClockTime) {
        state.base_pts = Some(base);
        state.emitted_until = Some(base);
        state.pending.push_back(Output::Gap {
            start: base,
            duration: gst::ClockTime::ZERO,
        });
    }

    /// The time just after the last sample pushed into the current stream.
    fn stream_end(&self, state: &State) -> gst::ClockTime {
        state.base_pts.unwrap_or(gst::ClockTime::ZERO)
            + samples_to_time(state.recognizer.samples_pushed(), state.sample_rate)
    }

    /// Turns a recogniser result into text buffers, gap events and a bus message. `end` is
    /// the end of the stream once it is known: the last output frame is centred on the last
    /// sample, so frame times are clamped to it rather than run half a frame past the audio.
    fn queue_result(&self, state: &mut State, result: ChunkResult, end: Option<gst::ClockTime>) {
        let base = state.base_pts.unwrap_or(gst::ClockTime::ZERO);
        let frame_samples = state.recognizer.frame_samples() as u64;
        let rate = state.sample_rate;
        let time = |frame: u64| {
            let t = base + samples_to_time(frame * frame_samples, rate);
            end.map_or(t, |end| t.min(end))
        };

        let groups: Vec<&[Word]> = match state.granularity {
            _ if result.words.is_empty() => Vec::new(),
            Granularity::Phrase => vec![&result.words[..]],
            Granularity::Word => result.words.chunks(1).collect(),
        };
        // This result goes downstream once the chunk's right context has arrived; text that
        // starts more than the reported hold before the chunk would reach a live sink after
        // its timestamp + latency, so its timestamp moves forward to the earliest on-time one
        // (only for words held unusually long; the bus message keeps the true times).
        let on_time_from = time(result.first_frame).saturating_sub(state.text_hold);
        for words in groups {
            let (first, last) = (&words[0], &words[words.len() - 1]);
            let spoken = time(first.start_frame);
            if spoken < on_time_from {
                gst::debug!(
                    CAT,
                    imp = self,
                    "text {:?} held beyond the reported latency: timestamp {spoken} moved to {on_time_from}",
                    first.text
                );
            }
            let start = spoken
                .max(on_time_from)
                .max(state.emitted_until.unwrap_or(gst::ClockTime::ZERO));
            self.queue_gap(state, start);
            let end = time(last.end_frame).max(start);
            let mut text = crate::streaming::join_words(words);
            if state.append_newline {
                text.push('\n');
            }
            let mut buffer = gst::Buffer::from_mut_slice(text.into_bytes());
            {
                let buffer = buffer.get_mut().expect("new buffer is writable");
                buffer.set_pts(start);
                buffer.set_duration(end - start);
            }
            state.pending.push_back(Output::Text { buffer });
            state.emitted_until = Some(end);
        }
        // Downstream may advance to where text that is not final yet may start (the word
        // still being spoken; with beam search, any hypothesis's), else to the chunk's end.
        let covered = match result.unsettled_from {
            Some(frame) => time(frame),
            None => time(result.first_frame + result.frames),
        };
        self.queue_gap(state, covered);

        if state.post_messages {
            let chunk_start = time(result.first_frame);
            let chunk_end = time(result.first_frame + result.frames);
            if !result.words.is_empty() || result.last {
                let message =
                    self.result_message(&result.words, true, chunk_start, chunk_end, &time);
                state.messages.push(message);
            }
            if let Some(partial) = &result.partial {
                let message = self.result_message(
                    std::slice::from_ref(partial),
                    false,
                    chunk_start,
                    chunk_end,
                    &time,
                );
                state.messages.push(message);
            }
        }
    }

    fn queue_gap(&self, state: &mut State, until: gst::ClockTime) {
        let from = state
            .emitted_until
            .unwrap_or(state.base_pts.unwrap_or(gst::ClockTime::ZERO));
        if until > from {
            state.pending.push_back(Output::Gap {
                start: from,
                duration: until - from,
            });
            state.emitted_until = Some(until);
        } else if state.emitted_until.is_none() {
            state.emitted_until = Some(from);
        }
    }

    /// The `quartznetstt` element message: text, per-word times and confidences, the time
    /// span (stream timestamps and running time) and whether the words are final.
    fn result_message(
        &self,
        words: &[Word],
        is_final: bool,
        chunk_start: gst::ClockTime,
        chunk_end: gst::ClockTime,
        time: &dyn Fn(u64) -> gst::ClockTime,
    ) -> gst::Message {
        let (start, end) = match (words.first(), words.last()) {
            (Some(first), Some(last)) => (time(first.start_frame), time(last.end_frame)),
            _ => (chunk_start, chunk_end),
        };
        let segment = self.obj().segment();
        let segment = segment.downcast_ref::<gst::ClockTime>();
        let running_time = segment.and_then(|s| s.to_running_time(start));
        let stream_time = segment.and_then(|s| s.to_stream_time(start));
        let word_list: Vec<gst::Structure> = words
            .iter()
            .map(|w| {
                let (ws, we) = (time(w.start_frame), time(w.end_frame));
                gst::Structure::builder("word")
                    .field("text", &w.text)
                    .field("start", ws)
                    .field("duration", we.saturating_sub(ws))
                    .field("confidence", f64::from(w.confidence))
                    .build()
            })
            .collect();
        let structure = gst::Structure::builder("quartznetstt")
            .field("text", crate::streaming::join_words(words))
            .field("final", is_final)
            .field("timestamp", start)
            .field("duration", end.saturating_sub(start))
            .field("running-time", running_time)
            .field("stream-time", stream_time)
            .field("words", gst::List::new(word_list))
            .build();
        gst::message::Element::builder(structure)
            .src(&*self.obj())
            .build()
    }

    fn post_messages(&self, messages: Vec<gst::Message>) {
        for message in messages {
            let _ = self.obj().post_message(message);
        }
    }

    /// Recognises all buffered audio and pushes the results downstream (EOS, new segment).
    fn drain(&self) -> Result<(), gst::FlowError> {
        let outputs = {
            let mut state_guard = self.state.lock().unwrap();
            let Some(state) = state_guard.as_mut() else {
                return Ok(());
            };
            if state.base_pts.is_none() && state.recognizer.samples_pushed() == 0 {
                return Ok(());
            }
            let end = self.stream_end(state);
            match state.recognizer.finish() {
                Ok(results) => {
                    for result in results {
                        self.queue_result(state, result, Some(end));
                    }
                }
                Err(e) => {
                    drop(state_guard);
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::Failed,
                        ("recognition failed: {e}")
                    );
                    return Err(gst::FlowError::Error);
                }
            }
            state.base_pts = None;
            state.odd_byte = None;
            state.emitted_until = None;
            (
                std::mem::take(&mut state.pending),
                std::mem::take(&mut state.messages),
            )
        };
        let (pending, messages) = outputs;
        self.post_messages(messages);
        let src = self.obj().src_pad().clone();
        for output in pending {
            match output {
                Output::Text { buffer } => {
                    src.push(buffer)?;
                }
                Output::Gap { start, duration } => {
                    src.push_event(gst::event::Gap::builder(start).duration(duration).build());
                }
            }
        }
        Ok(())
    }

    /// Forgets all audio and pending output (FLUSH_STOP).
    fn reset(&self) {
        if let Some(state) = self.state.lock().unwrap().as_mut() {
            state.recognizer.reset();
            state.base_pts = None;
            state.odd_byte = None;
            state.emitted_until = None;
            state.pending.clear();
            state.messages.clear();
        }
    }
}

fn samples_to_time(samples: u64, rate: u32) -> gst::ClockTime {
    gst::ClockTime::from_nseconds(
        samples
            .mul_div_floor(gst::ClockTime::SECOND.nseconds(), u64::from(rate))
            .unwrap_or(u64::MAX),
    )
}

fn time_to_samples(time: gst::ClockTime, rate: u32) -> u64 {
    time.nseconds()
        .mul_div_round(u64::from(rate), gst::ClockTime::SECOND.nseconds())
        .unwrap_or(0)
}

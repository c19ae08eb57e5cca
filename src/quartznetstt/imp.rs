// SPDX-License-Identifier: MPL-2.0

/**
 * SECTION:element-quartznetstt
 *
 * Transcribes speech with a CTC model run by ONNX Runtime: by default the bundled English
 * phoneme model (words from its pronunciation lexicon and language model; add words with
 * `vocabulary-path`), or any NVIDIA NeMo character CTC model (QuartzNet, Jasper) exported to
 * ONNX, exactly as NeMo computes it. Raw S16LE mono audio at the model's rate goes in; timestamped UTF-8 text
 * buffers come out, and an element message named `quartznetstt` is posted on the bus for
 * every recognised chunk (final words and the word still being spoken).
 *
 * The audio is recognised in windows of left context + chunk + right context (NeMo's
 * buffered streaming), so the text of a chunk is known `chunk-ms + right-context-ms` after its
 * start. The `latency` property (default 4 s) sets the windows and word rules and is the
 * latency the element reports (more only if the windows and the time to recognise one need
 * it); text of a word that started so long before its chunk that it would be late is
 * timestamped no earlier than that latency allows, so a live sink never receives it late.
 * Live input that recognition slower than real time cannot keep up with is dropped with QoS
 * messages and a warning. `latency`, `lateness`, `language-code` and the
 * `rstranscribe/final-transcript` event make it usable as the transcriber of gst-plugins-rs's
 * `transcriberbin`.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 -q filesrc location=samples/LJ001-0001.wav ! wavparse ! audioconvert ! audioresample ! quartznetstt separator=newline ! fdsink fd=1
 * ]|
 */
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};
use std::time::Instant;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_transform::GenerateOutputSuccess;
use gst_base::subclass::prelude::*;
use quartznet_engine::config::{self, DecoderSettings, LatencyPlan, RecognizerConfig};
use quartznet_engine::model::{
    LatencyShares, LoadOptions, ModelDescription, OnnxModel, bundled, runtime,
};
use quartznet_engine::streaming::{ChunkResult, StreamEdges, StreamingRecognizer, WindowConfig};

use super::pacing::{Episode, Pace, Pacer};
use super::timeline::{Clock, Output, Report, Style, Sync, Timeline, Tolerance};
use super::{
    ConfidenceAggregationKind, ConfidenceMethod, Decoder, Granularity, Normalize, Padding,
    Separator,
};
use quartznet_engine::decode::ConfidenceConfig;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "quartznetstt",
        gst::DebugColorFlags::empty(),
        Some("QuartzNet speech-to-text"),
    )
});

// Recognition defaults live in the engine (`quartznet_engine::config`); these are the
// element's own.
const DEFAULT_MODEL_PATH: Option<&str> = None;
/// QuartzNet's rate: what the CAPS query answers when no model description says otherwise.
const DEFAULT_SAMPLE_RATE: u32 = 16_000;
const DEFAULT_LM_PATH: Option<&str> = None;
const DEFAULT_POST_MESSAGES: bool = true;
/// Only final words go downstream (what caption encoders expect).
const DEFAULT_PARTIAL_RESULTS: bool = false;
/// No lateness: text keeps its timestamps (the gst-plugins-rs transcribers' default).
const DEFAULT_LATENESS_MS: u32 = 0;
/// The custom downstream event gst-plugins-rs transcribers send when an utterance ends.
const FINAL_TRANSCRIPT_EVENT: &str = "rstranscribe/final-transcript";
/// No language asked for: the model's.
const DEFAULT_LANGUAGE_CODE: Option<&str> = None;
/// Timestamp jitter ignored: `audiobasesink`'s default alignment threshold, above what
/// capture devices and network sources produce.
const DEFAULT_TOLERANCE: u64 = 40 * gst::ClockTime::MSECOND.nseconds();
/// How long timestamps must stay beyond the tolerance before the clock follows them
/// (`audiobasesink`'s default `discont-wait`).
const DEFAULT_DISCONT_WAIT: u64 = gst::ClockTime::SECOND.nseconds();

/// Property values, as set; read when the element starts.
#[derive(Debug, Clone)]
struct Settings {
    model_path: Option<String>,
    threads: u32,
    latency_ms: u32,
    /// Whether `latency` was set: then input that is not live keeps its windows too.
    latency_set: bool,
    lateness_ms: u32,
    language_code: Option<String>,
    /// The windows and word gap: `None` derives them from the latency.
    left_context_ms: Option<u32>,
    chunk_ms: Option<u32>,
    right_context_ms: Option<u32>,
    word_gap_ms: Option<u32>,
    decoder: Decoder,
    lm_path: Option<String>,
    vocabulary_path: Option<String>,
    /// How the loaded model splits a latency into windows (its description's; QuartzNet's
    /// until a model is loaded).
    shares: LatencyShares,
    /// `None`: the model's tuned value (its description's), else the engine's default.
    beam_width: Option<u32>,
    lm_weight: Option<f32>,
    word_bonus: Option<f32>,
    unk_penalty: f32,
    normalize: Normalize,
    padding: Padding,
    confidence_method: ConfidenceMethod,
    confidence_alpha: f32,
    confidence_aggregation: ConfidenceAggregationKind,
    granularity: Granularity,
    separator: Separator,
    post_messages: bool,
    partial_results: bool,
    tolerance: u64,
    discont_wait: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            model_path: DEFAULT_MODEL_PATH.map(String::from),
            threads: config::DEFAULT_THREADS as u32,
            latency_ms: config::DEFAULT_LATENCY_MS,
            latency_set: false,
            lateness_ms: DEFAULT_LATENESS_MS,
            language_code: DEFAULT_LANGUAGE_CODE.map(String::from),
            left_context_ms: None,
            chunk_ms: None,
            right_context_ms: None,
            word_gap_ms: None,
            decoder: Decoder::default(),
            lm_path: DEFAULT_LM_PATH.map(String::from),
            vocabulary_path: None,
            shares: LatencyShares::DEFAULT,
            beam_width: None,
            lm_weight: None,
            word_bonus: None,
            unk_penalty: config::DEFAULT_UNK_PENALTY,
            normalize: Normalize::default(),
            padding: Padding::default(),
            confidence_method: ConfidenceConfig::DEFAULT.measure.into(),
            confidence_alpha: ConfidenceConfig::DEFAULT.measure.alpha(),
            confidence_aggregation: ConfidenceConfig::DEFAULT.aggregation.into(),
            granularity: Granularity::default(),
            separator: Separator::default(),
            post_messages: DEFAULT_POST_MESSAGES,
            partial_results: DEFAULT_PARTIAL_RESULTS,
            tolerance: DEFAULT_TOLERANCE,
            discont_wait: DEFAULT_DISCONT_WAIT,
        }
    }
}

impl Settings {
    /// The windows and word rules of the latency, where the expert properties do not
    /// override them.
    fn plan(&self) -> LatencyPlan {
        let plan = LatencyPlan::for_model(self.latency_ms, &self.shares);
        LatencyPlan {
            left_context_ms: self.left_context_ms.unwrap_or(plan.left_context_ms),
            chunk_ms: self.chunk_ms.unwrap_or(plan.chunk_ms),
            right_context_ms: self.right_context_ms.unwrap_or(plan.right_context_ms),
            word_gap_ms: self.word_gap_ms.unwrap_or(plan.word_gap_ms),
            commit_delay_ms: plan.commit_delay_ms,
        }
    }

    /// Whether the windows are left to the element (no latency or window property set).
    fn windows_automatic(&self) -> bool {
        !self.latency_set
            && self.left_context_ms.is_none()
            && self.chunk_ms.is_none()
            && self.right_context_ms.is_none()
    }

    /// The windows and word rules for input that is `live` or not (see `recognizer_config`).
    fn plan_for(&self, live: bool) -> LatencyPlan {
        let mut plan = self.plan();
        if !live {
            let files = RecognizerConfig::for_files();
            plan.left_context_ms = files.left_context_ms;
            plan.chunk_ms = files.chunk_ms;
            plan.right_context_ms = files.right_context_ms;
        }
        plan
    }

    /// The engine's view of these settings, for input that is `live` or not. Input that is
    /// not live gets the engine's file windows, trimmed at the stream's edges
    /// ([`RecognizerConfig::for_files`]); the caller passes `live` for it too when a latency
    /// or window property was set, so a file is recognised as live input with those windows
    /// would be.
    fn recognizer_config(&self, live: bool) -> RecognizerConfig {
        let plan = self.plan_for(live);
        RecognizerConfig {
            threads: self.threads as usize,
            left_context_ms: plan.left_context_ms,
            chunk_ms: plan.chunk_ms,
            right_context_ms: plan.right_context_ms,
            normalization: self.normalize.into(),
            padding: self.padding.into(),
            edges: if live {
                StreamEdges::Silence
            } else {
                StreamEdges::Trimmed
            },
            decoding: DecoderSettings {
                decoder: self.decoder.into(),
                lm_path: non_empty(&self.lm_path).map(PathBuf::from),
                vocabulary_path: non_empty(&self.vocabulary_path).map(PathBuf::from),
                beam_width: self.beam_width,
                lm_weight: self.lm_weight,
                word_bonus: self.word_bonus,
                unk_penalty: self.unk_penalty,
                word_gap_ms: plan.word_gap_ms,
                commit_delay_ms: plan.commit_delay_ms,
                confidence: ConfidenceConfig {
                    measure: self.confidence_method.measure(self.confidence_alpha),
                    aggregation: self.confidence_aggregation.into(),
                },
            },
        }
    }

    fn style(&self) -> Style {
        Style {
            per_word: self.granularity == Granularity::Word,
            separator: self.separator,
            reports: self.post_messages,
            partials: self.partial_results,
        }
    }
}

fn non_empty(path: &Option<String>) -> Option<&str> {
    path.as_deref().filter(|p| !p.is_empty())
}

/// The recogniser and the input it is fed, owned by the streaming thread while a stream
/// runs. Its lock is held while the model runs; nothing a query needs lives here.
struct Stream {
    recognizer: StreamingRecognizer<OnnxModel>,
    /// A byte left over from an odd-sized buffer, joined with the next one.
    odd_byte: Option<u8>,
    /// Reused conversion buffer, so buffers allocate nothing once warmed up.
    samples: Vec<f32>,
}

/// What queries and the output side need, created in `start()` and dropped in `stop()`.
/// Its lock is only ever held briefly, never while the model runs.
struct State {
    sample_rate: u32,
    timeline: Timeline,
    /// The latency reported to the pipeline: the `latency` property, or more when the
    /// windows and the time to recognise one cannot deliver text within it.
    latency: gst::ClockTime,
    /// The caps we last refused, so the hint is posted once per caps.
    refused_caps: Option<gst::Caps>,
    /// Whether drifting timestamps were reported (once per start).
    drift_warned: bool,
    /// `latency` changed after start but before any audio: rebuild at the first buffer.
    replan: bool,
    /// Whether the recogniser was built for live input (until the first buffer shows
    /// otherwise, it is).
    live: bool,
    /// How far behind real time live input may arrive and its text still be on time.
    allowed_lag: gst::ClockTime,
    /// Drops live input that recognition cannot keep up with.
    pacer: Pacer,
    /// Upstream's liveness and minimum latency, asked once per stream.
    upstream: Option<(bool, gst::ClockTime)>,
}

/// The element. Lock order (see docs/ARCHITECTURE.md): `stream`, then `settings`, then
/// `state`; a thread holding a later one never takes an earlier one. Only the streaming
/// thread takes `stream`, and it holds it while the model runs; queries (caps, latency,
/// properties) take only `settings` or `state`, so they never wait for inference.
#[derive(Default)]
pub struct QuartzNetStt {
    settings: Mutex<Settings>,
    stream: Mutex<Option<Stream>>,
    state: Mutex<Option<State>>,
}

/// Maps an engine error onto the GStreamer error domain for its kind.
fn error_message(error: &quartznet_engine::Error) -> gst::ErrorMessage {
    use quartznet_engine::Error;
    match error {
        Error::Runtime(_) => gst::error_msg!(gst::LibraryError::Init, ("{error}")),
        Error::NotFound { .. } => gst::error_msg!(gst::ResourceError::NotFound, ("{error}")),
        Error::Read { .. } => gst::error_msg!(gst::ResourceError::OpenRead, ("{error}")),
        Error::Invalid { .. } => gst::error_msg!(gst::ResourceError::Read, ("{error}")),
        Error::Settings(_) => gst::error_msg!(gst::LibraryError::Settings, ("{error}")),
        Error::Inference(_) => gst::error_msg!(gst::StreamError::Failed, ("{error}")),
        _ => gst::error_msg!(gst::LibraryError::Failed, ("{error}")),
    }
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
                // A chunk must hold audio; contexts may be empty.
                let min = u32::from(name == "chunk-ms");
                glib::ParamSpecUInt::builder(name)
                    .nick(nick)
                    .blurb(blurb)
                    .minimum(min)
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
                    .maximum(config::MAX_THREADS as u32)
                    .default_value(config::DEFAULT_THREADS as u32)
                    .flags(ready)
                    .build(),
                glib::ParamSpecUInt::builder("latency")
                    .nick("Latency")
                    .blurb(
                        "Milliseconds from the start of a word to its text leaving the element (the \
                         latency reported to the pipeline); the windows, word gap and beam-search \
                         commit delay derive from it unless set themselves",
                    )
                    .minimum(config::MIN_LATENCY_MS)
                    .maximum(config::MAX_LATENCY_MS)
                    .default_value(config::DEFAULT_LATENCY_MS)
                    .flags(ready)
                    .build(),
                glib::ParamSpecUInt::builder("lateness")
                    .nick("Lateness")
                    .blurb(
                        "Milliseconds added to the running time of the output (its segment base), \
                         for text that may arrive later than the latency (the gst-plugins-rs \
                         transcribers' property)",
                    )
                    .maximum(config::MAX_LATENCY_MS)
                    .default_value(DEFAULT_LATENESS_MS)
                    .flags(ready)
                    .build(),
                glib::ParamSpecString::builder("language-code")
                    .nick("Language Code")
                    .blurb(
                        "Language of the speech as a BCP 47 tag (e.g. en-US); it must be the \
                         model's (its description's 'language'; the bundled model is 'en'); \
                         unset: the model's",
                    )
                    .default_value(DEFAULT_LANGUAGE_CODE)
                    .flags(ready)
                    .build(),
                ms(
                    "left-context-ms",
                    "Left Context",
                    "Audio before each chunk given to the model, in ms (rounded to whole 20 ms output frames; default: from latency)",
                    config::DEFAULT_LEFT_CONTEXT_MS,
                    config::MAX_WINDOW_PART_MS,
                ),
                ms(
                    "chunk-ms",
                    "Chunk",
                    "Audio recognised per window, in ms (rounded up to whole output frames, 20 ms for QuartzNet; default: from latency)",
                    config::DEFAULT_CHUNK_MS,
                    config::MAX_WINDOW_PART_MS,
                ),
                ms(
                    "right-context-ms",
                    "Right Context",
                    "Audio after each chunk given to the model, in ms (default: from latency)",
                    config::DEFAULT_RIGHT_CONTEXT_MS,
                    config::MAX_WINDOW_PART_MS,
                ),
                ms(
                    "word-gap-ms",
                    "Word Gap",
                    "Silence after a word that completes it even without a following space, in ms (0 = only a space does; default: from latency)",
                    config::DEFAULT_WORD_GAP_MS,
                    config::MAX_WINDOW_PART_MS,
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
                glib::ParamSpecString::builder("vocabulary-path")
                    .nick("Vocabulary Path")
                    .blurb(
                        "Words to add to the model's pronunciation lexicon, one per line (UTF-8, # \
                         comments), spelled at start by the model's grapheme-to-phoneme model and \
                         cached; only for models that write words from a lexicon (the bundled one)",
                    )
                    .flags(ready)
                    .build(),
                glib::ParamSpecUInt::builder("beam-width")
                    .nick("Beam Width")
                    .blurb("Hypotheses kept by the beam search (unset: the model's tuned value; the bundled model's is shown)")
                    .minimum(1)
                    .maximum(config::MAX_BEAM_WIDTH)
                    .default_value(config::BUNDLED_BEAM_WIDTH)
                    .flags(ready)
                    .build(),
                glib::ParamSpecFloat::builder("lm-weight")
                    .nick("LM Weight")
                    .blurb("Weight of the language model's log-probability in the beam search (unset: the model's tuned value; the bundled model's is shown)")
                    .minimum(0.0)
                    .maximum(config::MAX_LM_WEIGHT)
                    .default_value(config::BUNDLED_LM_WEIGHT)
                    .flags(ready)
                    .build(),
                glib::ParamSpecFloat::builder("word-bonus")
                    .nick("Word Bonus")
                    .blurb("Score added per word in the beam search, higher: more, shorter words (unset: the model's tuned value; the bundled model's is shown)")
                    .minimum(-config::MAX_WORD_BONUS)
                    .maximum(config::MAX_WORD_BONUS)
                    .default_value(config::BUNDLED_WORD_BONUS)
                    .flags(ready)
                    .build(),
                glib::ParamSpecFloat::builder("unk-penalty")
                    .nick("Unknown-Word Penalty")
                    .blurb("Score subtracted in the beam search for a word outside the language model's vocabulary (the maximum: such words are never output)")
                    .minimum(0.0)
                    .maximum(config::MAX_UNK_PENALTY)
                    .default_value(config::DEFAULT_UNK_PENALTY)
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
                glib::ParamSpecEnum::builder_with_default(
                    "confidence-method",
                    ConfidenceMethod::from(ConfidenceConfig::DEFAULT.measure),
                )
                .nick("Confidence Method")
                .blurb(
                    "How a word's confidence (0..1, in bus messages and the words' structures) \
                     is measured from each frame's output distribution: one of NeMo's measures \
                     (docs/CONFIDENCE.md: what the default means, how well each separates right \
                     from wrong words)",
                )
                .flags(ready)
                .build(),
                glib::ParamSpecFloat::builder("confidence-alpha")
                    .nick("Confidence Alpha")
                    .blurb(
                        "NeMo's alpha of the confidence method (the entropy index; at 1 every \
                         entropy is Shannon's and max-prob is unscaled; NeMo's default 0.33)",
                    )
                    .minimum(0.001)
                    .maximum(100.0)
                    .default_value(ConfidenceConfig::DEFAULT.measure.alpha())
                    .flags(ready)
                    .build(),
                glib::ParamSpecEnum::builder_with_default(
                    "confidence-aggregation",
                    ConfidenceAggregationKind::from(ConfidenceConfig::DEFAULT.aggregation),
                )
                .nick("Confidence Aggregation")
                .blurb(
                    "How frame confidences make a letter's and letter confidences a word's \
                     (NeMo's aggregation)",
                )
                .flags(ready)
                .build(),
                glib::ParamSpecEnum::builder_with_default("granularity", Granularity::default())
                    .nick("Granularity")
                    .blurb(
                        "Whether a text buffer holds a phrase (a chunk's words, cut as captions \
                         are: at most 2 lines of 42 characters and 7 s, a new one after a pause \
                         of 0.5 s) or one word",
                    )
                    .flags(glib::ParamFlags::READWRITE | gst::PARAM_FLAG_MUTABLE_PLAYING)
                    .build(),
                glib::ParamSpecEnum::builder_with_default("separator", Separator::default())
                    .nick("Separator")
                    .blurb(
                        "What ends each text buffer: a space (concatenated buffers read as prose; \
                         invisible in textoverlay and subtitle cues), a newline (one phrase per \
                         line), or the model's own spaces before each word (buffers concatenate \
                         into its exact text)",
                    )
                    .flags(glib::ParamFlags::READWRITE | gst::PARAM_FLAG_MUTABLE_PLAYING)
                    .build(),
                glib::ParamSpecBoolean::builder("append-newline")
                    .nick("Append Newline")
                    .blurb("Deprecated: true is separator=newline, false separator=space")
                    .default_value(false)
                    .flags(
                        glib::ParamFlags::READWRITE
                            | glib::ParamFlags::DEPRECATED
                            | gst::PARAM_FLAG_MUTABLE_PLAYING,
                    )
                    .build(),
                glib::ParamSpecUInt64::builder("tolerance")
                    .nick("Tolerance")
                    .blurb(
                        "Timestamp jitter ignored, in ns: within it the sample count is the clock; \
                         beyond it (for discont-wait, or at once for a jump of twice as much) the \
                         element resynchronises and posts a warning",
                    )
                    .maximum(gst::ClockTime::SECOND.nseconds() * 10)
                    .default_value(DEFAULT_TOLERANCE)
                    .flags(ready)
                    .build(),
                glib::ParamSpecUInt64::builder("discont-wait")
                    .nick("Discont Wait")
                    .blurb(
                        "How long timestamps must stay beyond the tolerance, in ns, before the \
                         clock follows them (clock drift; the audio is untouched)",
                    )
                    .maximum(gst::ClockTime::SECOND.nseconds() * 60)
                    .default_value(DEFAULT_DISCONT_WAIT)
                    .flags(ready)
                    .build(),
                glib::ParamSpecBoolean::builder("partial-results")
                    .nick("Partial Results")
                    .blurb(
                        "Also send the words not final yet downstream as soon as they are heard, \
                         as text buffers marked partial (custom meta QuartzNetSttPartialMeta and \
                         the DROPPABLE flag); the final words follow",
                    )
                    .default_value(DEFAULT_PARTIAL_RESULTS)
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
        // read in start()); refuse rather than silently ignore a change. `latency` is still
        // taken until the first buffer (transcriberbin may set it after the element started).
        let replan = pspec.name() == "latency" && self.before_audio();
        if !pspec.flags().contains(gst::PARAM_FLAG_MUTABLE_PLAYING) && self.is_started() && !replan
        {
            // An application must learn that its change did nothing.
            gst::element_imp_warning!(
                self,
                gst::LibraryError::Settings,
                (
                    "property '{}' can only be changed in the NULL or READY state: the change is ignored",
                    pspec.name()
                )
            );
            return;
        }
        let mut settings = self.settings.lock().unwrap();
        let typed = "type checked upstream";
        match pspec.name() {
            "model-path" => settings.model_path = value.get().expect(typed),
            "threads" => settings.threads = value.get().expect(typed),
            "latency" => {
                settings.latency_ms = value.get().expect(typed);
                settings.latency_set = true;
            }
            "lateness" => settings.lateness_ms = value.get().expect(typed),
            "language-code" => settings.language_code = value.get().expect(typed),
            "left-context-ms" => settings.left_context_ms = Some(value.get().expect(typed)),
            "chunk-ms" => settings.chunk_ms = Some(value.get().expect(typed)),
            "right-context-ms" => settings.right_context_ms = Some(value.get().expect(typed)),
            "word-gap-ms" => settings.word_gap_ms = Some(value.get().expect(typed)),
            "decoder" => settings.decoder = value.get().expect(typed),
            "lm-path" => settings.lm_path = value.get().expect(typed),
            "vocabulary-path" => settings.vocabulary_path = value.get().expect(typed),
            "beam-width" => settings.beam_width = Some(value.get().expect(typed)),
            "lm-weight" => settings.lm_weight = Some(value.get().expect(typed)),
            "word-bonus" => settings.word_bonus = Some(value.get().expect(typed)),
            "unk-penalty" => settings.unk_penalty = value.get().expect(typed),
            "normalization" => settings.normalize = value.get().expect(typed),
            "padding" => settings.padding = value.get().expect(typed),
            "confidence-method" => settings.confidence_method = value.get().expect(typed),
            "confidence-alpha" => settings.confidence_alpha = value.get().expect(typed),
            "confidence-aggregation" => settings.confidence_aggregation = value.get().expect(typed),
            "granularity" => settings.granularity = value.get().expect(typed),
            "separator" => settings.separator = value.get().expect(typed),
            "append-newline" => {
                settings.separator = if value.get().expect(typed) {
                    Separator::Newline
                } else {
                    Separator::Space
                }
            }
            "post-messages" => settings.post_messages = value.get().expect(typed),
            "partial-results" => settings.partial_results = value.get().expect(typed),
            "tolerance" => settings.tolerance = value.get().expect(typed),
            "discont-wait" => settings.discont_wait = value.get().expect(typed),
            other => unreachable!("unknown property {other}"),
        }
        // The output style may change while streaming (settings, then state: the lock order).
        if let Some(state) = self.state.lock().unwrap().as_mut() {
            state.timeline.set_style(settings.style());
            state.replan |= replan;
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = self.settings.lock().unwrap();
        match pspec.name() {
            "model-path" => settings.model_path.to_value(),
            "threads" => settings.threads.to_value(),
            "latency" => settings.latency_ms.to_value(),
            "lateness" => settings.lateness_ms.to_value(),
            "language-code" => settings.language_code.to_value(),
            "left-context-ms" => settings.plan().left_context_ms.to_value(),
            "chunk-ms" => settings.plan().chunk_ms.to_value(),
            "right-context-ms" => settings.plan().right_context_ms.to_value(),
            "word-gap-ms" => settings.plan().word_gap_ms.to_value(),
            "decoder" => settings.decoder.to_value(),
            "lm-path" => settings.lm_path.to_value(),
            "vocabulary-path" => settings.vocabulary_path.to_value(),
            "beam-width" => settings
                .beam_width
                .unwrap_or(config::BUNDLED_BEAM_WIDTH)
                .to_value(),
            "lm-weight" => settings
                .lm_weight
                .unwrap_or(config::BUNDLED_LM_WEIGHT)
                .to_value(),
            "word-bonus" => settings
                .word_bonus
                .unwrap_or(config::BUNDLED_WORD_BONUS)
                .to_value(),
            "unk-penalty" => settings.unk_penalty.to_value(),
            "normalization" => settings.normalize.to_value(),
            "padding" => settings.padding.to_value(),
            "confidence-method" => settings.confidence_method.to_value(),
            "confidence-alpha" => settings.confidence_alpha.to_value(),
            "confidence-aggregation" => settings.confidence_aggregation.to_value(),
            "granularity" => settings.granularity.to_value(),
            "separator" => settings.separator.to_value(),
            "append-newline" => (settings.separator == Separator::Newline).to_value(),
            "post-messages" => settings.post_messages.to_value(),
            "partial-results" => settings.partial_results.to_value(),
            "tolerance" => settings.tolerance.to_value(),
            "discont-wait" => settings.discont_wait.to_value(),
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
                "Audio/Text/Filter",
                "Transcribes speech with CTC models run by ONNX Runtime (a bundled English phoneme model, NeMo QuartzNet and other character models)",
                "The quartznetstt developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            // Mono S16LE at any rate: the model's rate is only known once it is chosen, so the
            // CAPS query answers it (from the model's description before it is loaded), and
            // accept_caps explains a wrong rate.
            let sink_caps = gst_audio::AudioCapsBuilder::new_interleaved()
                .format(gst_audio::AudioFormat::S16le)
                .channels(1)
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
        let (stream, state) = catch_panic(|| self.open(&settings)).map_err(|panic| {
            gst::error_msg!(
                gst::LibraryError::Failed,
                (
                    "internal error while loading model {}: {panic}",
                    non_empty(&settings.model_path).unwrap_or("(bundled)")
                )
            )
        })??;
        gst::info!(
            CAT,
            imp = self,
            "loaded {} ({}); window {:?}; ONNX Runtime {:?}",
            stream.recognizer.model().path().display(),
            stream.recognizer.model().description().source,
            stream.recognizer.geometry(),
            runtime::loaded_library()
        );
        *self.stream.lock().unwrap() = Some(stream);
        *self.state.lock().unwrap() = Some(state);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *self.stream.lock().unwrap() = None;
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
        let first_time = self.state.lock().unwrap().as_mut().is_none_or(|s| {
            let new = s.refused_caps.as_ref() != Some(caps);
            s.refused_caps = Some(caps.clone());
            new
        });
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
                if let Err(err) = self.guard("recognising the end of the stream", || self.drain()) {
                    gst::warning!(CAT, imp = self, "drain at EOS failed: {err:?}");
                }
            }
            gst::EventView::Segment(segment) => {
                // Text of the old segment must go out before the new segment event.
                if let Err(err) = self.guard("recognising the end of a segment", || self.drain()) {
                    gst::warning!(CAT, imp = self, "drain at new segment failed: {err:?}");
                }
                if let Some(late) = self.with_lateness(segment.segment(), event.seqnum()) {
                    return self.parent_sink_event(late);
                }
            }
            gst::EventView::Gap(gap) => {
                let (start, duration) = gap.get();
                match self.guard("recognising a gap", || self.fill_gap(start, duration)) {
                    Ok(true) => return true,
                    Ok(false) => {}
                    Err(err) => gst::warning!(CAT, imp = self, "upstream gap failed: {err:?}"),
                }
            }
            gst::EventView::FlushStop(_) => self.reset(),
            _ => {}
        }
        self.parent_sink_event(event)
    }

    fn generate_output(&self) -> Result<GenerateOutputSuccess, gst::FlowError> {
        if let Some(buffer) = self.take_queued_buffer() {
            self.guard("recognising", || self.process_buffer(&buffer))?;
        }
        // Gaps are events, so push them here and hand the next text buffer to the base class.
        loop {
            let (output, reports) = {
                let mut state = self.state.lock().unwrap();
                let state = state.as_mut().ok_or(gst::FlowError::Flushing)?;
                (state.timeline.next_output(), state.timeline.take_reports())
            };
            self.post_reports(reports);
            match output {
                None => return Ok(GenerateOutputSuccess::NoOutput),
                Some(Output::Text(buffer)) => return Ok(GenerateOutputSuccess::Buffer(buffer)),
                Some(event) => {
                    self.obj().src_pad().push_event(output_event(event));
                }
            }
        }
    }
}

impl QuartzNetStt {
    /// The segment event with `lateness` added to its base, so the text's running time is
    /// that much later (as the gst-plugins-rs transcribers do); `None` without lateness.
    fn with_lateness(&self, segment: &gst::Segment, seqnum: gst::Seqnum) -> Option<gst::Event> {
        let lateness = self.settings.lock().unwrap().lateness_ms;
        let mut segment = segment.downcast_ref::<gst::ClockTime>()?.clone();
        if lateness == 0 {
            return None;
        }
        let base = segment.base().unwrap_or(gst::ClockTime::ZERO);
        segment.set_base(base + gst::ClockTime::from_mseconds(u64::from(lateness)));
        Some(
            gst::event::Segment::builder(&segment)
                .seqnum(seqnum)
                .build(),
        )
    }

    /// Runs `f` for `stage`: a panic in it (a bug, or input no check foresaw) becomes an
    /// error message naming the stage and the model instead of unwinding into GStreamer, and
    /// the recogniser, whose state it may have left half-changed, is dropped.
    fn guard<T>(
        &self,
        stage: &str,
        f: impl FnOnce() -> Result<T, gst::FlowError>,
    ) -> Result<T, gst::FlowError> {
        let panic = match catch_panic(f) {
            Ok(result) => return result,
            Err(panic) => panic,
        };
        self.stream.clear_poison();
        self.state.clear_poison();
        let model = self
            .stream
            .lock()
            .unwrap()
            .take()
            .map(|s| s.recognizer.model().path().display().to_string())
            .unwrap_or_default();
        gst::element_imp_error!(
            self,
            gst::StreamError::Failed,
            ("internal error while {stage} with model {model}: {panic}")
        );
        Err(gst::FlowError::Error)
    }

    /// Started, and no audio has arrived yet.
    fn before_audio(&self) -> bool {
        self.state
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|s| !s.timeline.is_started() && s.pacer.processed == 0)
    }

    /// Rebuilds the recogniser around the loaded model before the first audio is
    /// recognised when the plan changed since start: `latency` was set, or upstream turned
    /// out not to be live (a file gets the file windows). The pipeline is told to ask for the
    /// latency again.
    fn replan(&self, stream: &mut Option<Stream>) -> Result<(), gst::FlowError> {
        let fresh = stream
            .as_ref()
            .is_some_and(|s| s.recognizer.samples_pushed() == 0);
        if !fresh || !self.before_audio() {
            return Ok(());
        }
        // A latency or window set by the user: recognised as live input would be.
        let live = self.upstream().0 || !self.settings.lock().unwrap().windows_automatic();
        let pending = self
            .state
            .lock()
            .unwrap()
            .as_mut()
            .is_some_and(|s| std::mem::take(&mut s.replan) || s.live != live);
        let Some(current) = stream.take_if(|_| pending) else {
            return Ok(());
        };
        let settings = self.settings.lock().unwrap().clone();
        // The process keeps a loaded language model only while a decoder holds it: hold it
        // across the rebuild, or dropping the old recogniser would mean reading it again.
        let description = current.recognizer.model().description().clone();
        let _language_model = settings
            .recognizer_config(live)
            .decoding
            .decoding_options(&description)
            .ok();
        let (new_stream, new_state) = self
            .build(current.recognizer.into_model(), &settings, live)
            .map_err(|e| {
                self.post_error_message(e);
                gst::FlowError::Error
            })?;
        gst::info!(CAT, imp = self, "latency now {}", new_state.latency);
        *stream = Some(new_stream);
        *self.state.lock().unwrap() = Some(new_state);
        let _ = self
            .obj()
            .post_message(gst::message::Latency::builder().src(&*self.obj()).build());
        Ok(())
    }

    fn is_started(&self) -> bool {
        self.state.lock().unwrap().is_some()
    }

    /// The loaded model's rate; before it is loaded, the rate its description beside it
    /// (`model.json`) gives, else QuartzNet's 16 kHz.
    fn model_rate(&self) -> u32 {
        if let Some(state) = self.state.lock().unwrap().as_ref() {
            return state.sample_rate;
        }
        let configured = non_empty(&self.settings.lock().unwrap().model_path).map(PathBuf::from);
        configured
            .or_else(|| bundled::find().ok())
            .and_then(|path| ModelDescription::load_sidecar(&path).ok().flatten())
            .map_or(DEFAULT_SAMPLE_RATE, |d| d.sample_rate)
    }

    /// Loads the model and builds the recogniser and the output timeline; every failure is
    /// an error message in the domain of its kind, naming the file and the problem, so the
    /// state change fails cleanly.
    fn open(&self, settings: &Settings) -> Result<(Stream, State), gst::ErrorMessage> {
        let path = match non_empty(&settings.model_path) {
            Some(path) => PathBuf::from(path),
            None => {
                let path = bundled::find().map_err(|e| {
                    gst::error_msg!(
                        gst::ResourceError::NotFound,
                        ("no model: set the model-path property to an ONNX model exported from NeMo ({e})")
                    )
                })?;
                gst::info!(CAT, imp = self, "{}", bundled::explain(&path));
                path
            }
        };
        // Until the first buffer shows otherwise, input is taken to be live (see `replan`).
        let config = settings.recognizer_config(true);
        config.validate().map_err(|e| error_message(&e))?;
        // The language model loads while the acoustic model does; held until the decoder
        // is built (its errors surface there, as without the preload).
        let language_model = config.decoding.preload_language_model(&path);
        let model = OnnxModel::load(
            &path,
            &LoadOptions {
                threads: config.threads,
            },
        )
        .map_err(|e| error_message(&e))?;
        // Held until the decoder is built (the process-wide cache keeps it only while held).
        let loaded_lm = language_model.map(|loading| loading.wait());
        if let Some(Ok(lm)) = &loaded_lm {
            gst::info!(
                CAT,
                imp = self,
                "language model loaded {} ({} words)",
                if lm.loaded_from_cache() {
                    "from its compiled copy in the cache"
                } else {
                    "by parsing its ARPA text"
                },
                lm.vocabulary_size()
            );
        }
        self.build(model, settings, true)
    }

    /// The recogniser and timeline for a loaded model, these settings and input that is
    /// `live` or not: windows, decoder, warm-up and the latency figures.
    fn build(
        &self,
        model: OnnxModel,
        settings: &Settings,
        live: bool,
    ) -> Result<(Stream, State), gst::ErrorMessage> {
        let description = model.description().clone();
        // The windows follow the model's own latency plan (its description's), from now on
        // also in what the window properties read back.
        let mut settings = settings.clone();
        settings.shares = description.latency_shares;
        self.settings.lock().unwrap().shares = description.latency_shares;
        let settings = &settings;
        let config = settings.recognizer_config(live);
        config.validate().map_err(|e| error_message(&e))?;
        if let Some(code) = non_empty(&settings.language_code) {
            description
                .check_language(code)
                .map_err(|e| error_message(&e))?;
        }
        let (window, rounded) = WindowConfig::for_model(&config, &description);
        if rounded {
            gst::warning!(
                CAT,
                imp = self,
                "window durations rounded to whole output frames: {window:?} samples"
            );
        }
        let mut recognizer =
            StreamingRecognizer::from_config(model, &config).map_err(|e| error_message(&e))?;
        let beam = recognizer.uses_beam_search();
        if beam {
            let d = &config.decoding;
            let (width, weight, bonus) = config::beam_settings(d, &description);
            gst::info!(
                CAT,
                imp = self,
                "beam search: width {width}, LM weight {weight}, word bonus {bonus}, unknown-word penalty {}",
                d.unk_penalty
            );
        }

        let geometry = recognizer.geometry();
        let clock = Clock {
            sample_rate: description.sample_rate,
            frame_samples: recognizer.frame_samples() as u64,
            chunk_samples: geometry.chunk as u64,
            word_gap_samples: u64::from(config.decoding.word_gap_ms)
                * u64::from(description.sample_rate)
                / 1000,
            trust: Tolerance {
                tolerance: gst::ClockTime::from_nseconds(settings.tolerance),
                discont_wait: gst::ClockTime::from_nseconds(settings.discont_wait),
            },
        };
        let (latency, text_hold) = if live {
            self.live_latency(&mut recognizer, &clock, settings.latency_ms)?
        } else {
            // Nobody waits for a file's text in real time: no warm-up, no latency to keep,
            // and no timestamp is ever moved.
            let ms = |samples: usize| clock.time(samples as u64).mseconds();
            gst::info!(
                CAT,
                imp = self,
                "input is not live: chunks of {} ms with {} ms / {} ms of context, trimmed \
                 at the stream's edges (set latency or a window property to recognise it as \
                 live input)",
                ms(geometry.chunk),
                ms(geometry.left),
                ms(geometry.right),
            );
            (
                clock.time(recognizer.lookahead() as u64),
                gst::ClockTime::MAX,
            )
        };
        let state = State {
            sample_rate: description.sample_rate,
            timeline: Timeline::new(clock, text_hold, settings.style()),
            latency,
            refused_caps: None,
            drift_warned: false,
            replan: false,
            live,
            allowed_lag: text_hold.max(clock.time(geometry.chunk as u64)),
            pacer: Pacer::default(),
            upstream: None,
        };
        let stream = Stream {
            recognizer,
            odd_byte: None,
            samples: Vec::new(),
        };
        Ok((stream, state))
    }

    /// Warms ONNX Runtime up with a window of silence (its first run allocates and is much
    /// the slowest) and measures the time to recognise a second one: the latency to report
    /// (the `latency` property, or more when the windows and recognition need it) and how
    /// long before its chunk a word may start and its text still be on time.
    fn live_latency(
        &self,
        recognizer: &mut StreamingRecognizer<OnnxModel>,
        clock: &Clock,
        latency_ms: u32,
    ) -> Result<(gst::ClockTime, gst::ClockTime), gst::ErrorMessage> {
        let geometry = recognizer.geometry();
        let silence = vec![0.0; recognizer.lookahead()];
        let mut elapsed = std::time::Duration::ZERO;
        for _ in 0..2 {
            let started = Instant::now();
            recognizer.push(&silence);
            let run = recognizer.next_result();
            elapsed = started.elapsed();
            recognizer.reset();
            run.map_err(|e| {
                let path = recognizer.model().path().display();
                gst::error_msg!(gst::LibraryError::Failed, ("{path}: {e}"))
            })?;
        }
        // Text leaves once the chunk and its right context have arrived and been recognised;
        // what the latency leaves beyond that is how long before the chunk a word may start
        // and still be on time (text held longer has its timestamp moved forward).
        let lookahead = clock.time(recognizer.lookahead() as u64);
        let processing = gst::ClockTime::from_nseconds(elapsed.as_nanos() as u64 * 2);
        let asked = gst::ClockTime::from_mseconds(u64::from(latency_ms));
        let latency = asked.max(lookahead + processing);
        // Windows longer than the latency are a setting to fix; recognition time pushing
        // past it (a loaded machine) is only logged.
        if lookahead > asked {
            gst::element_imp_warning!(
                self,
                gst::LibraryError::Settings,
                (
                    "latency of {} ms is too short for a {} ms chunk and {} ms right context \
                     (recognised in {} ms): reporting {} ms",
                    asked.mseconds(),
                    clock.time(geometry.chunk as u64).mseconds(),
                    clock.time(geometry.right as u64).mseconds(),
                    processing.mseconds(),
                    latency.mseconds()
                )
            );
        } else if latency > asked {
            gst::info!(
                CAT,
                imp = self,
                "recognising a window takes {processing}: reporting {latency} of latency"
            );
        }
        let text_hold = latency - lookahead - processing;
        gst::info!(
            CAT,
            imp = self,
            "latency {latency}: chunk + right context {lookahead}, recognition {processing}, \
             words may start {text_hold} before their chunk"
        );
        Ok((latency, text_hold))
    }

    /// The `latency` property, or what the windows and recognition need if that is more
    /// (known once started).
    fn latency(&self) -> gst::ClockTime {
        if let Some(state) = self.state.lock().unwrap().as_ref() {
            return state.latency;
        }
        let s = self.settings.lock().unwrap();
        let plan = s.plan();
        let asked = u64::from(s.latency_ms);
        let lookahead = u64::from(plan.chunk_ms) + u64::from(plan.right_context_ms);
        gst::ClockTime::from_mseconds(asked.max(lookahead))
    }

    fn recognition_failed(&self, error: &quartznet_engine::Error) -> gst::FlowError {
        gst::element_imp_error!(
            self,
            gst::StreamError::Failed,
            ("recognition failed: {error}")
        );
        gst::FlowError::Error
    }

    fn process_buffer(&self, buffer: &gst::Buffer) -> Result<(), gst::FlowError> {
        let map = buffer.map_readable().map_err(|_| {
            gst::element_imp_error!(self, gst::StreamError::Decode, ("cannot map input buffer"));
            gst::FlowError::Error
        })?;
        let mut stream_guard = self.stream.lock().unwrap();
        self.replan(&mut stream_guard)?;
        let stream = stream_guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        if self.keep_up(stream, buffer)? {
            return Ok(());
        }
        convert_samples(&map, &mut stream.odd_byte, &mut stream.samples);
        drop(map);

        match buffer.pts() {
            Some(pts) => self.follow_timestamp(stream, pts, buffer.flags())?,
            None => {
                let mut state = self.state.lock().unwrap();
                let state = state.as_mut().ok_or(gst::FlowError::Flushing)?;
                if !state.timeline.is_started() {
                    let segment = self.obj().segment();
                    let start = segment
                        .downcast_ref::<gst::ClockTime>()
                        .and_then(|s| s.start());
                    state.timeline.start(start.unwrap_or(gst::ClockTime::ZERO));
                }
            }
        }

        stream.recognizer.push(&stream.samples);
        // The model runs here, with only the stream lock held.
        let started = Instant::now();
        let mut results = Vec::new();
        loop {
            match stream.recognizer.next_result() {
                Ok(Some(result)) => results.push(result),
                Ok(None) => break,
                Err(e) => return Err(self.recognition_failed(&e)),
            }
        }
        let busy = started.elapsed();
        let audio = self.clock_duration(stream.samples.len() as u64);
        if let Some(state) = self.state.lock().unwrap().as_mut() {
            state.pacer.recognised(audio, busy);
        }
        self.queue_results(&results, None)
    }

    /// Duration of `samples` at the model's rate.
    fn clock_duration(&self, samples: u64) -> gst::ClockTime {
        gst::ClockTime::from_nseconds(self.clock_ns(samples).max(0) as u64)
    }

    /// Drops live input that arrives too late for its text to be on time (recognition slower
    /// than real time: see `pacing`). Returns whether `buffer` was dropped. The first drop
    /// finishes the stream so far; the first buffer kept again starts a new one, and the
    /// episode is reported.
    fn keep_up(&self, stream: &mut Stream, buffer: &gst::Buffer) -> Result<bool, gst::FlowError> {
        let Some(pts) = buffer.pts() else {
            return Ok(false);
        };
        let lag = self.lag(pts);
        gst::trace!(CAT, imp = self, "buffer at {pts}: {lag:?} behind real time");
        let samples = buffer.size() as u64 / 2;
        let (pace, duration) = {
            let mut state = self.state.lock().unwrap();
            let state = state.as_mut().ok_or(gst::FlowError::Flushing)?;
            let duration = buffer
                .duration()
                .unwrap_or_else(|| state.timeline.clock().time(samples));
            let allowed = state.allowed_lag;
            let pace = state.pacer.pace(lag, allowed, pts, duration, samples);
            (pace, duration)
        };
        match pace {
            Pace::Keep => Ok(false),
            Pace::Late => {
                gst::element_imp_warning!(
                    self,
                    gst::CoreError::Clock,
                    (
                        "input arrives {} behind real time although recognition keeps up: \
                         something downstream blocks the streaming thread (put a queue after \
                         quartznetstt; see the README's Live captions); text may be late",
                        lag.unwrap_or(gst::ClockTime::ZERO)
                    )
                );
                Ok(false)
            }
            Pace::Resume(episode) => {
                self.report_dropped(Some(episode), false);
                Ok(false)
            }
            Pace::Drop { first: false } => {
                self.with_timeline(|t| t.skip(pts, duration))?;
                Ok(true)
            }
            Pace::Drop { first: true } => {
                gst::debug!(
                    CAT,
                    imp = self,
                    "{lag:?} behind real time at {pts}: dropping"
                );
                let pushed = stream.recognizer.samples_pushed();
                let end = self
                    .state
                    .lock()
                    .unwrap()
                    .as_ref()
                    .map_or(pts, |s| s.timeline.stream_end(pushed));
                let results = stream
                    .recognizer
                    .finish()
                    .map_err(|e| self.recognition_failed(&e))?;
                stream.odd_byte = None;
                self.queue_results(&results, Some(end))?;
                self.with_timeline(|t| {
                    t.end_stream();
                    t.skip(pts, duration);
                })?;
                Ok(true)
            }
        }
    }

    /// Upstream's liveness and minimum latency, asked once per stream (not live when
    /// upstream does not answer).
    fn upstream(&self) -> (bool, gst::ClockTime) {
        if let Some(known) = self.state.lock().unwrap().as_ref().and_then(|s| s.upstream) {
            return known;
        }
        let mut query = gst::query::Latency::new();
        let upstream = if self.obj().sink_pad().peer_query(&mut query) {
            let (live, min, _) = query.result();
            (live, min)
        } else {
            (false, gst::ClockTime::ZERO)
        };
        if let Some(state) = self.state.lock().unwrap().as_mut() {
            state.upstream = Some(upstream);
        }
        upstream
    }

    /// How far behind real time input stamped `pts` arrives: the pipeline clock's running
    /// time now less the buffer's running time and upstream's own latency. `None` when
    /// upstream is not live (a file is never dropped) or there is no clock.
    fn lag(&self, pts: gst::ClockTime) -> Option<gst::ClockTime> {
        let (live, upstream_latency) = self.upstream();
        if !live {
            return None;
        }
        let element = self.obj();
        let now = element.clock()?.time().checked_sub(element.base_time()?)?;
        let segment = element.segment();
        let running = segment
            .downcast_ref::<gst::ClockTime>()?
            .to_running_time(pts)?;
        now.checked_sub(running + upstream_latency)
    }

    /// A QoS message for input dropped to keep up (`None`: none, but the end of a stream),
    /// and a WARNING summing the episodes when one is due (see `pacing`).
    fn report_dropped(&self, episode: Option<Episode>, flush: bool) {
        let (processed, dropped, summary) = {
            let mut state = self.state.lock().unwrap();
            let Some(state) = state.as_mut() else {
                return;
            };
            let summary = state.pacer.warning(episode, flush);
            (state.pacer.processed, state.pacer.dropped, summary)
        };
        if let Some(sum) = summary {
            gst::element_imp_warning!(
                self,
                gst::CoreError::TooLazy,
                (
                    "recognition is slower than real time: dropped {} ms of audio ({} times \
                     between {} and {}) whose text could no longer be on time; use a smaller \
                     model, a longer chunk (less recomputation), more threads, or a larger latency",
                    sum.samples * 1000 / u64::from(self.model_rate()),
                    sum.episodes,
                    sum.from,
                    sum.until
                )
            );
        }
        let Some(episode) = episode else {
            return;
        };
        let span = episode.until.saturating_sub(episode.from);
        let segment = self.obj().segment();
        let segment = segment.downcast_ref::<gst::ClockTime>();
        let qos = gst::message::Qos::builder(true)
            .running_time_if_some(segment.and_then(|s| s.to_running_time(episode.from)))
            .stream_time_if_some(segment.and_then(|s| s.to_stream_time(episode.from)))
            .timestamp(episode.from)
            .duration(span)
            .values(span.nseconds() as i64, 1.0, 1_000_000)
            .stats(
                gst::format::Default::from_u64(processed),
                gst::format::Default::from_u64(dropped),
            )
            .src(&*self.obj())
            .build();
        let _ = self.obj().post_message(qos);
    }

    /// Keeps the recogniser's sample clock in step with buffer timestamps (see
    /// `Timeline::sync`): jitter within the tolerance changes nothing; lasting drift moves the
    /// clock to the timestamps (the audio is untouched); a short hole is filled with silence;
    /// a long one or a step back ends the current stream as at EOS and starts a new one at
    /// the new timestamp. Each resynchronisation is a WARNING saying what happened to how
    /// much audio (drift only the first time: it recurs for as long as the source drifts).
    fn follow_timestamp(
        &self,
        stream: &mut Stream,
        pts: gst::ClockTime,
        flags: gst::BufferFlags,
    ) -> Result<(), gst::FlowError> {
        let pushed = stream.recognizer.samples_pushed();
        let discont = flags.contains(gst::BufferFlags::DISCONT);
        let (sync, end, first_drift) = {
            let mut state = self.state.lock().unwrap();
            let state = state.as_mut().ok_or(gst::FlowError::Flushing)?;
            let sync = state.timeline.sync(pts, pushed, discont);
            let first_drift = matches!(sync, Sync::Reanchor(_)) && !state.drift_warned;
            state.drift_warned |= first_drift;
            (sync, state.timeline.stream_end(pushed), first_drift)
        };
        let ms = |ns: i64| ns as f64 / 1e6;
        match sync {
            Sync::InStep => {}
            Sync::Start => self.with_timeline(|t| t.start(pts))?,
            Sync::Reanchor(drift) => {
                let text = format!(
                    "input timestamps drift from the sample count: {:+.1} ms at {pts}; the text \
                     timestamps follow the input's, no audio was changed",
                    ms(drift)
                );
                if first_drift {
                    gst::element_imp_warning!(self, gst::StreamError::Format, ("{text}"));
                } else {
                    gst::info!(CAT, imp = self, "{text}");
                }
                self.with_timeline(|t| t.reanchor(pts, pushed))?;
            }
            Sync::Fill(missing) => {
                gst::element_imp_warning!(
                    self,
                    gst::StreamError::Format,
                    (
                        "{:.1} ms of audio missing before {pts} (timestamp {} expected): filled with silence",
                        ms(self.clock_ns(missing)),
                        end
                    )
                );
                stream.recognizer.push(&vec![0.0; missing as usize]);
            }
            Sync::Restart(jump) => {
                gst::element_imp_warning!(
                    self,
                    gst::StreamError::Format,
                    (
                        "timestamp jump of {:+.1} ms from {end} to {pts} (discont {discont}): the \
                      audio so far was recognised as a finished stream and a new stream starts",
                        ms(jump)
                    )
                );
                let results = stream
                    .recognizer
                    .finish()
                    .map_err(|e| self.recognition_failed(&e))?;
                self.queue_results(&results, Some(end))?;
                self.with_timeline(|t| t.start(pts))?;
            }
        }
        Ok(())
    }

    /// Duration of `samples` at the model's rate, in ns.
    fn clock_ns(&self, samples: u64) -> i64 {
        let rate = u64::from(self.model_rate());
        samples
            .mul_div_floor(gst::ClockTime::SECOND.nseconds(), rate)
            .map_or(i64::MAX, |ns| ns as i64)
    }

    fn with_timeline(&self, f: impl FnOnce(&mut Timeline)) -> Result<(), gst::FlowError> {
        let mut state = self.state.lock().unwrap();
        let state = state.as_mut().ok_or(gst::FlowError::Flushing)?;
        f(&mut state.timeline);
        Ok(())
    }

    /// Queues the output of recognised chunks on the timeline.
    fn queue_results(
        &self,
        results: &[ChunkResult],
        end: Option<gst::ClockTime>,
    ) -> Result<(), gst::FlowError> {
        self.with_timeline(|timeline| {
            for result in results {
                if timeline.push_result(result, end) {
                    gst::debug!(
                        CAT,
                        imp = self,
                        "text {:?} held beyond the reported latency: its timestamp moves forward",
                        result.words.first().map(|w| &w.text)
                    );
                }
            }
        })
    }

    /// Posts the `quartznetstt` element message of each report (the README's *Bus
    /// messages*; the client's `--format json` uses the same fields): text, finality, the
    /// span in seconds of input stream time (rounded to the millisecond), its running and
    /// stream time, and the words, each with its separator, span and confidence.
    fn post_reports(&self, reports: Vec<Report>) {
        if reports.is_empty() {
            return;
        }
        let segment = self.obj().segment();
        let segment = segment.downcast_ref::<gst::ClockTime>();
        let seconds = |time: gst::ClockTime| (time.nseconds() as f64 / 1e6).round() / 1e3;
        for report in reports {
            let running_time = segment.and_then(|s| s.to_running_time(report.start));
            let stream_time = segment.and_then(|s| s.to_stream_time(report.start));
            let words = report.words.iter().map(|w| {
                gst::Structure::builder("word")
                    .field("text", &w.text)
                    .field("separator", " ".repeat(w.spaces_before as usize))
                    .field("start", seconds(w.start))
                    .field("end", seconds(w.end))
                    .field("confidence", f64::from(w.confidence))
                    .build()
                    .to_send_value()
            });
            let structure = gst::Structure::builder("quartznetstt")
                .field("text", report.text())
                .field("final", report.is_final)
                .field("start", seconds(report.start))
                .field("end", seconds(report.end))
                .field("running-time", running_time)
                .field("stream-time", stream_time)
                .field("words", gst::Array::from_values(words))
                .build();
            let message = gst::message::Element::builder(structure)
                .src(&*self.obj())
                .build();
            let _ = self.obj().post_message(message);
        }
    }

    /// Recognises all buffered audio and pushes the results downstream (EOS, new segment).
    fn drain(&self) -> Result<(), gst::FlowError> {
        let episode = self.state.lock().unwrap().as_mut().and_then(|s| {
            s.upstream = None;
            s.pacer.finish()
        });
        self.report_dropped(episode, true);
        {
            let mut stream_guard = self.stream.lock().unwrap();
            let Some(stream) = stream_guard.as_mut() else {
                return Ok(());
            };
            let pushed = stream.recognizer.samples_pushed();
            let (started, end) = {
                let state = self.state.lock().unwrap();
                let Some(state) = state.as_ref() else {
                    return Ok(());
                };
                (
                    state.timeline.is_started(),
                    state.timeline.stream_end(pushed),
                )
            };
            if !started && pushed == 0 {
                return Ok(());
            }
            let results = stream
                .recognizer
                .finish()
                .map_err(|e| self.recognition_failed(&e))?;
            stream.odd_byte = None;
            self.queue_results(&results, Some(end))?;
            self.with_timeline(|t| t.end_stream())?;
        }
        self.push_outputs()
    }

    /// An upstream GAP must not overtake the text the element holds for earlier audio. A
    /// short one (up to a chunk) is recognised as the silence it is, and the element's own
    /// text and gaps cover it (returns true: the event is consumed); a longer one, or one
    /// without duration, first drains the stream (all held text goes out) and then goes on.
    fn fill_gap(
        &self,
        start: gst::ClockTime,
        duration: Option<gst::ClockTime>,
    ) -> Result<bool, gst::FlowError> {
        let short = {
            let state = self.state.lock().unwrap();
            let Some(state) = state.as_ref() else {
                return Ok(false);
            };
            let clock = state.timeline.clock();
            let chunk = clock.time(clock.chunk_samples);
            state.timeline.is_started() && duration.is_some_and(|d| d <= chunk)
        };
        if !short {
            self.drain()?;
            return Ok(false);
        }
        let duration = duration.unwrap_or(gst::ClockTime::ZERO);
        let samples = self.clock_samples(duration);
        let mut silence = gst::Buffer::from_mut_slice(vec![0u8; samples as usize * 2]);
        {
            let silence = silence.get_mut().expect("a new buffer is writable");
            silence.set_pts(start);
            silence.set_duration(duration);
        }
        self.process_buffer(&silence)?;
        self.push_outputs()?;
        Ok(true)
    }

    /// Samples at the model's rate in `time`.
    fn clock_samples(&self, time: gst::ClockTime) -> u64 {
        time.nseconds()
            .mul_div_round(
                u64::from(self.model_rate()),
                gst::ClockTime::SECOND.nseconds(),
            )
            .unwrap_or(0)
    }

    /// Posts the pending reports and pushes the pending outputs downstream (outside
    /// `generate_output`, which hands the base class one buffer at a time).
    fn push_outputs(&self) -> Result<(), gst::FlowError> {
        let (outputs, reports) = {
            let mut state = self.state.lock().unwrap();
            let state = state.as_mut().ok_or(gst::FlowError::Flushing)?;
            (state.timeline.take_outputs(), state.timeline.take_reports())
        };
        self.post_reports(reports);
        let src = self.obj().src_pad().clone();
        for output in outputs {
            match output {
                Output::Text(buffer) => {
                    src.push(buffer)?;
                }
                event => {
                    src.push_event(output_event(event));
                }
            }
        }
        Ok(())
    }

    /// Forgets all audio and pending output (FLUSH_STOP).
    fn reset(&self) {
        if let Some(stream) = self.stream.lock().unwrap().as_mut() {
            stream.recognizer.reset();
            stream.odd_byte = None;
        }
        if let Some(state) = self.state.lock().unwrap().as_mut() {
            state.timeline.clear();
            state.pacer.finish();
            state.upstream = None;
        }
    }
}

/// Runs `f`, returning the message of a panic in it as an error.
fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string())
    })
}

/// The event for a non-text output.
fn output_event(output: Output) -> gst::Event {
    match output {
        Output::Gap { start, duration } => {
            gst::event::Gap::builder(start).duration(duration).build()
        }
        Output::FinalTranscript => {
            gst::event::CustomDownstream::builder(gst::Structure::new_empty(FINAL_TRANSCRIPT_EVENT))
                .build()
        }
        Output::Text(_) => unreachable!("text goes downstream as a buffer"),
    }
}

/// Appends S16LE `bytes` to `samples` as f32 (int16 / 32768, NeMo's scale), carrying an odd
/// trailing byte over to the next buffer so buffers of any size lose nothing.
fn convert_samples(bytes: &[u8], odd_byte: &mut Option<u8>, samples: &mut Vec<f32>) {
    let to_f32 = |pair: [u8; 2]| f32::from(i16::from_le_bytes(pair)) / 32768.0;
    samples.clear();
    let mut bytes = bytes;
    if let Some(first) = odd_byte.take() {
        match bytes.split_first() {
            Some((&second, rest)) => {
                samples.push(to_f32([first, second]));
                bytes = rest;
            }
            None => *odd_byte = Some(first),
        }
    }
    let pairs = bytes.chunks_exact(2);
    if let Some(&last) = pairs.remainder().first() {
        *odd_byte = Some(last);
    }
    samples.extend(pairs.map(|p| to_f32([p[0], p[1]])));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_errors_with_their_message() {
        assert_eq!(catch_panic(|| 7), Ok(7));
        let text: Result<(), String> = catch_panic(|| panic!("index {} out of range", 9));
        assert_eq!(text, Err("index 9 out of range".to_string()));
        let literal: Result<(), String> = catch_panic(|| panic!("boom"));
        assert_eq!(literal, Err("boom".to_string()));
    }

    #[test]
    fn odd_bytes_carry_over_between_buffers() {
        let values: [i16; 4] = [1000, -2000, 32767, -32768];
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let (mut odd, mut all, mut samples) = (None, Vec::new(), Vec::new());
        for piece in [
            &bytes[..1],
            &bytes[1..2],
            &bytes[2..2],
            &bytes[2..7],
            &bytes[7..],
        ] {
            convert_samples(piece, &mut odd, &mut samples);
            all.extend_from_slice(&samples);
        }
        let expected: Vec<f32> = values.iter().map(|&v| f32::from(v) / 32768.0).collect();
        assert_eq!(all, expected);
        assert_eq!(odd, None);
    }
}

// SPDX-License-Identifier: MPL-2.0
//! The element's properties: their specs and defaults, the values as set (`Settings`), and
//! how they map onto the engine's configuration.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use gst::glib;
use gst::prelude::*;
use quartznet_engine::config::{
    self, DecoderSettings, LatencyPlan, RecognizerConfig, WindowOverrides,
};
use quartznet_engine::decode::ConfidenceConfig;
use quartznet_engine::decode::hotwords::{DEFAULT_HOTWORD_BOOST, HotwordList};
use quartznet_engine::model::LatencyShares;

use super::timeline::Style;
use super::{
    ConfidenceAggregationKind, ConfidenceMethod, Decoder, ExecutionProviderKind, Granularity,
    Normalize, Padding, Separator,
};

// Recognition defaults live in the engine (`quartznet_engine::config`); these are the
// element's own.
const DEFAULT_MODEL_PATH: Option<&str> = None;
const DEFAULT_LM_PATH: Option<&str> = None;
const DEFAULT_POST_MESSAGES: bool = true;
/// Only final words go downstream (what caption encoders expect).
const DEFAULT_PARTIAL_RESULTS: bool = false;
/// No lateness: text keeps its timestamps (the gst-plugins-rs transcribers' default).
const DEFAULT_LATENESS_MS: u32 = 0;
/// No language asked for: the model's.
const DEFAULT_LANGUAGE_CODE: Option<&str> = None;
/// Timestamp jitter ignored: `audiobasesink`'s default alignment threshold, above what
/// capture devices and network sources produce.
const DEFAULT_TOLERANCE: u64 = 40 * gst::ClockTime::MSECOND.nseconds();
/// How long timestamps must stay beyond the tolerance before the clock follows them
/// (`audiobasesink`'s default `discont-wait`).
const DEFAULT_DISCONT_WAIT: u64 = gst::ClockTime::SECOND.nseconds();

/// How errors name the `hotwords` property's list.
const INLINE_HOTWORDS: &str = "hotwords";

/// Property values, as set; read when the element starts.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) model_path: Option<String>,
    pub(super) threads: u32,
    /// Where ONNX Runtime runs the model (`execution-provider`).
    pub(super) execution_provider: ExecutionProviderKind,
    pub(super) latency_ms: u32,
    /// Whether `latency` was set: then input that is not live keeps its windows too.
    pub(super) latency_set: bool,
    pub(super) lateness_ms: u32,
    pub(super) language_code: Option<String>,
    /// The windows and word gap: `None` derives them from the latency.
    pub(super) left_context_ms: Option<u32>,
    pub(super) chunk_ms: Option<u32>,
    pub(super) right_context_ms: Option<u32>,
    pub(super) word_gap_ms: Option<u32>,
    pub(super) decoder: Decoder,
    pub(super) lm_path: Option<String>,
    pub(super) vocabulary_path: Option<String>,
    /// The hotword list inline (`hotwords`) and in a file (`hotwords-path`), merged.
    pub(super) hotwords: Option<String>,
    pub(super) hotwords_path: Option<String>,
    /// Counts the accepted changes of the two: a recogniser built from settings of this
    /// version has their list (see `hotwords.rs`).
    pub(super) hotwords_version: u64,
    /// How the loaded model splits a latency into windows (its description's; QuartzNet's
    /// until a model is loaded).
    pub(super) shares: LatencyShares,
    /// `None`: the model's tuned value (its description's), else the engine's default.
    pub(super) beam_width: Option<u32>,
    pub(super) lm_weight: Option<f32>,
    pub(super) word_bonus: Option<f32>,
    pub(super) unk_penalty: f32,
    pub(super) normalize: Normalize,
    pub(super) padding: Padding,
    pub(super) confidence_method: ConfidenceMethod,
    pub(super) confidence_alpha: f32,
    pub(super) confidence_aggregation: ConfidenceAggregationKind,
    pub(super) granularity: Granularity,
    pub(super) separator: Separator,
    pub(super) post_messages: bool,
    pub(super) partial_results: bool,
    pub(super) tolerance: u64,
    pub(super) discont_wait: u64,
    /// The sample rate the description of the model `model_path` names, once looked up
    /// (caps queries need it before the model loads).
    pub(super) described_rate: Option<u32>,
    /// Where the model runs: the inference-server properties (`served.rs`).
    pub(super) server: super::served::ServerSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            model_path: DEFAULT_MODEL_PATH.map(String::from),
            threads: config::DEFAULT_THREADS as u32,
            execution_provider: ExecutionProviderKind::default(),
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
            hotwords: None,
            hotwords_path: None,
            hotwords_version: 0,
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
            described_rate: None,
            server: Default::default(),
        }
    }
}

impl Settings {
    /// The latency and window properties that were set, for the engine's plan.
    pub(super) fn overrides(&self) -> WindowOverrides {
        WindowOverrides {
            latency_ms: self.latency_set.then_some(self.latency_ms),
            left_context_ms: self.left_context_ms,
            chunk_ms: self.chunk_ms,
            right_context_ms: self.right_context_ms,
            word_gap_ms: self.word_gap_ms,
        }
    }

    /// The windows and word rules of the latency, where the expert properties do not
    /// override them (what the window properties read back).
    pub(super) fn plan(&self) -> LatencyPlan {
        self.overrides().plan(&self.shares)
    }

    /// The engine's view of these settings, for input recognised as live or not: input that
    /// is not live gets the engine's file windows, trimmed at the stream's edges, unless a
    /// latency or window property was set ([`RecognizerConfig::for_input`]).
    pub(super) fn recognizer_config(&self, live: bool) -> RecognizerConfig {
        let windows = RecognizerConfig::for_input(&self.overrides(), &self.shares, live);
        RecognizerConfig {
            threads: self.threads as usize,
            normalization: self.normalize.into(),
            padding: self.padding.into(),
            decoding: DecoderSettings {
                decoder: self.decoder.into(),
                lm_path: non_empty(&self.lm_path).map(PathBuf::from),
                vocabulary_path: non_empty(&self.vocabulary_path).map(PathBuf::from),
                beam_width: self.beam_width,
                lm_weight: self.lm_weight,
                word_bonus: self.word_bonus,
                unk_penalty: self.unk_penalty,
                confidence: ConfidenceConfig {
                    measure: self.confidence_method.measure(self.confidence_alpha),
                    aggregation: self.confidence_aggregation.into(),
                },
                ..windows.decoding
            },
            ..windows
        }
    }

    /// The hotword list of `hotwords` and `hotwords-path` (the file read now), merged;
    /// `None` when both are empty. A malformed line is an error naming it.
    pub(super) fn hotword_list(&self) -> quartznet_engine::Result<Option<Arc<HotwordList>>> {
        let inline = match non_empty(&self.hotwords) {
            Some(text) => HotwordList::parse(text, INLINE_HOTWORDS)?,
            None => HotwordList::default(),
        };
        let file = match non_empty(&self.hotwords_path) {
            Some(path) => HotwordList::load(Path::new(path))?,
            None => HotwordList::default(),
        };
        let list = inline.merged(file);
        Ok((!list.is_empty()).then(|| Arc::new(list)))
    }

    pub(super) fn style(&self) -> Style {
        Style {
            per_word: self.granularity == Granularity::Word,
            separator: self.separator,
            reports: self.post_messages,
            partials: self.partial_results,
        }
    }
}

pub(super) fn non_empty(path: &Option<String>) -> Option<&str> {
    path.as_deref().filter(|p| !p.is_empty())
}

/// The property specs, in the order `gst-inspect-1.0` lists them.
pub(super) fn properties() -> &'static [glib::ParamSpec] {
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
            glib::ParamSpecEnum::builder_with_default(
                "execution-provider",
                ExecutionProviderKind::default(),
            )
            .nick("Execution Provider")
            .blurb(
                "Where ONNX Runtime runs the model: cpu, cuda or tensorrt (an NVIDIA GPU with the \
                 GPU build of ONNX Runtime, tools/setup.sh --gpu; an error naming what is missing \
                 if it cannot start), or auto (CUDA if it starts, else the CPU with a warning)",
            )
            .flags(ready)
            .build(),
            glib::ParamSpecUInt::builder("latency")
                .nick("Latency")
                .blurb(
                    "Milliseconds from the start of a word to its text leaving the element (the \
                     latency reported to the pipeline); the windows, word gap and beam-search \
                     commit delay derive from it unless set themselves",
                )
                .minimum(config::LOWEST_LATENCY_MS)
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
                "Audio before each chunk given to the model, in ms (rounded to whole output frames: 20 ms for QuartzNet, 80 ms for Citrinet and FastConformer; default: from latency)",
                config::DEFAULT_LEFT_CONTEXT_MS,
                config::MAX_WINDOW_PART_MS,
            ),
            ms(
                "chunk-ms",
                "Chunk",
                "Audio recognised per window, in ms (rounded to whole output frames, at least one; default: from latency)",
                config::DEFAULT_CHUNK_MS,
                config::MAX_WINDOW_PART_MS,
            ),
            ms(
                "right-context-ms",
                "Right Context",
                "Audio after each chunk given to the model, in ms (rounded to whole output frames; default: from latency)",
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
            glib::ParamSpecString::builder("hotwords")
                .nick("Hotwords")
                .blurb(&format!(
                    "Phrases the beam search favours, one per line: words separated by spaces, \
                     optionally ' :BOOST' (added per word of a matched phrase, natural log; \
                     default {DEFAULT_HOTWORD_BOOST}), # comments; merged with hotwords-path; \
                     empty: none. Needs decoder=auto or beam (auto without a language model \
                     becomes an open-vocabulary beam search). May change while PLAYING: used \
                     from the next chunk; a malformed list is then a warning and the list in \
                     use stays"
                ))
                .flags(glib::ParamFlags::READWRITE | gst::PARAM_FLAG_MUTABLE_PLAYING)
                .build(),
            glib::ParamSpecString::builder("hotwords-path")
                .nick("Hotwords Path")
                .blurb(
                    "File of phrases the beam search favours, in the hotwords format (UTF-8), \
                     read when set and at start; merged with hotwords; empty: none. May change \
                     while PLAYING as hotwords may (set it again to read the file again)",
                )
                .flags(glib::ParamFlags::READWRITE | gst::PARAM_FLAG_MUTABLE_PLAYING)
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
        .into_iter()
        .chain(super::served::properties())
        .collect()
    });
    PROPERTIES.as_ref()
}

impl Settings {
    /// Stores `value` for the property `name` (its type checked by GObject).
    pub(super) fn set(&mut self, name: &str, value: &glib::Value) {
        if self.server.set(name, value) {
            return;
        }
        let settings = self;
        let typed = "type checked upstream";
        match name {
            "model-path" => {
                settings.model_path = value.get().expect(typed);
                settings.described_rate = None;
            }
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
            "execution-provider" => settings.execution_provider = value.get().expect(typed),
            "lm-path" => settings.lm_path = value.get().expect(typed),
            "vocabulary-path" => settings.vocabulary_path = value.get().expect(typed),
            "hotwords" => settings.hotwords = value.get().expect(typed),
            "hotwords-path" => settings.hotwords_path = value.get().expect(typed),
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
    }

    /// The value of the property `name`.
    pub(super) fn get(&self, name: &str) -> glib::Value {
        if let Some(value) = self.server.get(name) {
            return value;
        }
        let settings = self;
        match name {
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
            "execution-provider" => settings.execution_provider.to_value(),
            "lm-path" => settings.lm_path.to_value(),
            "vocabulary-path" => settings.vocabulary_path.to_value(),
            "hotwords" => settings.hotwords.to_value(),
            "hotwords-path" => settings.hotwords_path.to_value(),
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

// SPDX-License-Identifier: MPL-2.0
//! What the element needs to know about a model besides its graph: labels, sample rate,
//! frontend settings, the encoder's time subsampling and how labels make words (characters,
//! phonemes, or the SentencePiece pieces of a sub-word model).
//!
//! Sources, in order of precedence:
//! 1. a sidecar JSON next to the model (`model.onnx` -> `model.json`), as written by
//!    `tools/export_nemo.py` from the checkpoint's own config;
//! 2. the same JSON stored in the ONNX metadata under the key [`METADATA_KEY`];
//! 3. NVIDIA's English QuartzNet defaults, with labels taken from a DeepSpeech
//!    `alphabet.txt` next to the model when there is one, and the sherpa-onnx metadata keys
//!    `subsampling_factor` and `normalize_type` honoured when present.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::cache_aware::{CacheAwareStreaming, RawStreaming};
use crate::decode::pieces::{DEFAULT_UNKNOWN_SURFACE, PieceKind, PieceTable};
use crate::error::{Error, Result};
use crate::frontend::{FrontendConfig, MAX_N_FFT, ModelInput, Normalization, PaddingMode};

const WHAT: &str = "model description";

/// Most encoder subsampling a description may declare (QuartzNet: 2; Conformers: 4 or 8).
pub const MAX_SUBSAMPLING: u32 = 64;
/// Most samples per output frame a waveform model may declare (hama: 320 = 20 ms at 16 kHz).
pub const MAX_WAVEFORM_FRAME_SAMPLES: u32 = 16_384;
/// Most labels a description may declare.
pub const MAX_LABELS: usize = 65_536;
/// Largest position table a description may declare (`pos_emb_max_len`, in output frames;
/// NeMo's default is 5000).
pub const MAX_POSITION_TABLE_FRAMES: u32 = 10_000_000;
/// Largest description or alphabet file read (the sidecar of the bundled model is 2 KB).
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// The text of a small regular file, or `None` when it does not exist.
fn read_small_file(what: &'static str, path: &Path) -> Result<Option<String>> {
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(what, path, e)),
    };
    if !metadata.is_file() {
        return Err(Error::invalid(what, path, "not a regular file"));
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(Error::invalid(
            what,
            path,
            format!("larger than {MAX_FILE_BYTES} bytes"),
        ));
    }
    std::fs::read_to_string(path)
        .map(Some)
        .map_err(|e| Error::io(what, path, e))
}

/// A description error: `source` names the file (or metadata) it came from.
fn invalid(source: &str, reason: String) -> Error {
    Error::Invalid {
        what: WHAT,
        name: source.to_string(),
        reason,
    }
}

/// ONNX metadata key under which the sidecar JSON may be embedded.
pub const METADATA_KEY: &str = "quartznetstt";
/// The sidecar format this crate writes and reads: version 2 adds the model's input kind, how
/// its labels make words (characters, phonemes with a lexicon) and per-model decoding
/// defaults.
pub const FORMAT: &str = "quartznetstt-model/2";
/// The first sidecar format (character models with NeMo's log-mel frontend), still read.
pub const FORMAT_V1: &str = "quartznetstt-model/1";

/// How the model's labels make words.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum WordUnits {
    /// Characters; the space label `" "` separates words (QuartzNet, Jasper). The beam search
    /// spells words in characters through the language model's own vocabulary.
    #[default]
    Characters,
    /// Phonemes; a word ends with the `boundary` label and is written from a pronunciation
    /// lexicon (word -> label sequences). Greedy decoding cannot make words of them.
    Phonemes {
        /// The word-boundary label (`<wb>`).
        boundary: String,
        /// The pronunciation lexicon (`word<TAB>label label ...` lines, gzipped or not).
        lexicon: PathBuf,
        /// The grapheme-to-phoneme model folder that spells words the lexicon lacks (a
        /// user vocabulary); `None`: the lexicon cannot grow.
        g2p: Option<PathBuf>,
    },
    /// SentencePiece pieces (NeMo's sub-word CTC models: Citrinet, Conformer-CTC,
    /// FastConformer-CTC): the labels are the tokenizer's pieces in id order, and the table
    /// says how they make text and words (`docs/SUBWORD.md`). Greedy decoding writes NeMo's
    /// text; the beam search spells words of pieces through the language model's vocabulary
    /// (`docs/DECODING.md`).
    Pieces(PieceTable),
}

impl WordUnits {
    /// Whether words come from a pronunciation lexicon.
    pub fn uses_lexicon(&self) -> bool {
        matches!(self, Self::Phonemes { .. })
    }

    /// The piece table of a sub-word model.
    pub fn pieces(&self) -> Option<&PieceTable> {
        match self {
            Self::Pieces(table) => Some(table),
            _ => None,
        }
    }
}

/// How this model wants a latency split into windows (see
/// [`crate::config::LatencyPlan::for_model`]): the left context it benefits from and the
/// shares of the latency given to the chunk and the right context. The defaults are the
/// QuartzNet plan's; a model that looks at its whole input (attention) gains from a longer
/// right context and left context than a convolution stack does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencyShares {
    /// Left context in ms; `None`: 30 % of the latency, 1 to 2.5 s.
    pub left_context_ms: Option<u32>,
    /// Percent of the latency recognised per window.
    pub chunk_percent: u32,
    /// Percent of the latency given as right context.
    pub right_context_percent: u32,
}

impl LatencyShares {
    /// QuartzNet's plan: chunk 25 %, right context 15 %, left context from the latency.
    pub const DEFAULT: Self = Self {
        left_context_ms: None,
        chunk_percent: 25,
        right_context_percent: 15,
    };
}

impl Default for LatencyShares {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Decoding settings tuned for this model, used where the user chose none (each `None`: the
/// crate's default, see [`crate::config`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DecodingDefaults {
    /// Beam width.
    pub beam_width: Option<u32>,
    /// Weight of the LM's natural-log probability.
    pub lm_weight: Option<f32>,
    /// Score added per word.
    pub word_bonus: Option<f32>,
}

/// NVIDIA's English character set for QuartzNet/Jasper (and DeepSpeech's English
/// `alphabet.txt`): space, a..z, apostrophe. The CTC blank is implicit and comes last.
pub fn english_labels() -> Vec<String> {
    std::iter::once(" ".to_string())
        .chain(('a'..='z').map(|c| c.to_string()))
        .chain(std::iter::once("'".to_string()))
        .collect()
}

/// Everything about a model that is not in its graph.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelDescription {
    /// Output labels without the CTC blank (which is index `labels.len()`).
    pub labels: Vec<String>,
    /// Audio sample rate the model takes.
    pub sample_rate: u32,
    /// Feature frames per output frame (2 for QuartzNet: only the first conv has stride 2).
    pub subsampling_factor: u32,
    /// The feature frontend the model was trained with.
    pub frontend: FrontendConfig,
    /// Free text from the exporter (architecture, origin).
    pub text: String,
    /// Where this description came from, for log and error messages.
    pub source: String,
    /// A word language model (ARPA) made for this model, which the decoder uses by default
    /// for beam search. In the sidecar it is a path relative to the sidecar's folder.
    pub language_model: Option<PathBuf>,
    /// The language the model transcribes, as a BCP 47 tag (`en`, `en-US`); `None`: not said.
    pub language: Option<String>,
    /// What the model takes as input (log-mel features, or the waveform).
    pub input: ModelInput,
    /// How its labels make words.
    pub units: WordUnits,
    /// Decoding settings tuned for this model.
    pub decoding: DecodingDefaults,
    /// The longest audio the model takes in one run, in samples (file windows are cut to
    /// fit); `None`: no known limit.
    pub max_input_samples: Option<usize>,
    /// The most output (encoded) frames one run of the model may produce: the length of a
    /// Conformer-like encoder's position table (NeMo's `pos_emb_max_len`, the description's
    /// field of that name). The exported graph holds the table as a constant: one frame past
    /// it its log-probs are wrong without an error, further an ONNX Runtime error; so longer
    /// windows are refused
    /// ([`crate::streaming::WindowConfig::check_position_table`]) and so is offline
    /// recognition of a longer input. `None`: no such table (QuartzNet, Citrinet).
    pub max_output_frames: Option<usize>,
    /// How a latency becomes windows for this model.
    pub latency_shares: LatencyShares,
    /// A cache-aware streaming model's stepping (the description's `streaming` section):
    /// its graph runs one chunk at a time with caches, never a whole utterance
    /// (`docs/CACHE_AWARE.md`). `None`: an ordinary whole-input model.
    pub streaming: Option<CacheAwareStreaming>,
}

impl Default for ModelDescription {
    fn default() -> Self {
        Self {
            labels: english_labels(),
            sample_rate: 16_000,
            subsampling_factor: 2,
            frontend: FrontendConfig::default(),
            text: "NVIDIA QuartzNet, English characters".to_string(),
            source: "built-in QuartzNet English defaults".to_string(),
            language_model: None,
            language: Some("en".to_string()),
            input: ModelInput::LogMel,
            units: WordUnits::Characters,
            decoding: DecodingDefaults::default(),
            max_input_samples: None,
            max_output_frames: None,
            latency_shares: LatencyShares::DEFAULT,
            streaming: None,
        }
    }
}

impl ModelDescription {
    /// Vocabulary size including the blank: the width of the model's output.
    pub fn vocab_size(&self) -> usize {
        self.labels.len() + 1
    }

    /// Duration of one output frame in samples (hop x subsampling: 320 = 20 ms at 16 kHz;
    /// a waveform model's subsampling is this number itself).
    pub fn samples_per_output_frame(&self) -> usize {
        self.input_frames_per_output_frame() * self.input_frame_samples()
    }

    /// Refuses one run of the model over `frames` output frames when that is more than its
    /// encoder's position table holds ([`max_output_frames`](Self::max_output_frames)):
    /// an [`Error::Settings`] that names the limit; `what` says what would run (e.g. "a window
    /// of 3000 ms (...)") and `remedy` what to do instead.
    pub fn check_output_frames(&self, frames: usize, what: &str, remedy: &str) -> Result<()> {
        match self.max_output_frames {
            Some(most) if frames > most => {
                let ms = |frames: usize| {
                    (frames * self.samples_per_output_frame()) as u64 * 1000
                        / u64::from(self.sample_rate)
                };
                Err(Error::Settings(format!(
                    "{what} is {frames} output frames ({} ms), more than the model's position table holds: {most} frames = {} ms (pos_emb_max_len in {}); past it the exported encoder's attention is wrong: {remedy}",
                    ms(frames),
                    ms(most),
                    self.source
                )))
            }
            _ => Ok(()),
        }
    }

    /// Input frames (feature frames, or samples for a waveform model) per output frame.
    pub fn input_frames_per_output_frame(&self) -> usize {
        self.subsampling_factor as usize
    }

    /// Samples per input frame: the feature hop, or 1 for a waveform model.
    pub fn input_frame_samples(&self) -> usize {
        match self.input {
            ModelInput::LogMel => self.frontend.hop_length,
            ModelInput::Waveform => 1,
        }
    }

    /// Whether the model transcribes `code` (a BCP 47 tag such as `en-US`, as GStreamer
    /// transcribers take it): its primary language must be the model's. A model whose
    /// description names no language accepts any well-formed code.
    pub fn check_language(&self, code: &str) -> Result<()> {
        let primary = |tag: &str| {
            tag.split(['-', '_'])
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase()
        };
        let well_formed = !code.is_empty()
            && code.len() <= 35
            && code
                .split(['-', '_'])
                .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric()))
            && (2..=3).contains(&primary(code).len())
            && primary(code).chars().all(|c| c.is_ascii_alphabetic());
        if !well_formed {
            return Err(Error::Settings(format!(
                "language code '{code}' is not a language tag such as 'en' or 'en-US'"
            )));
        }
        match &self.language {
            Some(language) if primary(language) != primary(code) => Err(Error::Settings(format!(
                "language code '{code}' is not supported: the model ({}) transcribes '{language}'",
                self.source
            ))),
            _ => Ok(()),
        }
    }

    /// Parses the sidecar JSON format.
    pub fn from_json(text: &str, source: &str) -> Result<Self> {
        let raw: RawDescription = serde_json::from_str(text)
            .map_err(|e| invalid(source, format!("invalid model description: {e}")))?;
        let mut description = raw
            .into_description()
            .map_err(|reason| invalid(source, reason))?;
        description.source = source.to_string();
        Ok(description)
    }

    /// Loads the description that belongs to `model_path`, without the ONNX metadata (see
    /// [`ModelDescription::resolve`] for the full order). Returns `Ok(None)` when there is no
    /// sidecar file.
    pub fn load_sidecar(model_path: &Path) -> Result<Option<Self>> {
        let sidecar = sidecar_path(model_path);
        let Some(text) = read_small_file(WHAT, &sidecar)? else {
            return Ok(None);
        };
        let mut description = Self::from_json(&text, &sidecar.display().to_string())?;
        description.resolve_paths(&sidecar);
        Ok(Some(description))
    }

    /// Paths in a description are relative to the folder of the file that holds it (the
    /// sidecar, or the model whose metadata it is), never to the working directory.
    fn resolve_paths(&mut self, holder: &Path) {
        let Some(dir) = holder.parent() else {
            return;
        };
        if let Some(lm) = &self.language_model {
            self.language_model = Some(dir.join(lm));
        }
        if let WordUnits::Phonemes { lexicon, g2p, .. } = &mut self.units {
            *lexicon = dir.join(&*lexicon);
            if let Some(g2p) = g2p {
                *g2p = dir.join(&*g2p);
            }
        }
    }

    /// Resolves the description of `model_path` from the sidecar, then `metadata` (a lookup
    /// into the ONNX custom metadata), then the defaults described in the module docs.
    pub fn resolve(model_path: &Path, metadata: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        if let Some(description) = Self::load_sidecar(model_path)? {
            return Ok(description);
        }
        let model_name = model_path.display().to_string();
        if let Some(json) = metadata(METADATA_KEY) {
            let source = format!("{model_name} (ONNX metadata '{METADATA_KEY}')");
            let mut description = Self::from_json(&json, &source)?;
            description.resolve_paths(model_path);
            return Ok(description);
        }

        let mut description = Self::default();
        let mut sources = vec!["QuartzNet English defaults".to_string()];
        let alphabet = model_path.with_file_name("alphabet.txt");
        if let Some(text) = read_small_file("alphabet", &alphabet)? {
            description.labels =
                parse_alphabet(&text).map_err(|e| invalid(&alphabet.display().to_string(), e))?;
            sources.push(format!("labels from {}", alphabet.display()));
        }
        if let Some(value) = metadata("subsampling_factor") {
            description.subsampling_factor = value
                .trim()
                .parse()
                .ok()
                .filter(|&f| (1..=MAX_SUBSAMPLING).contains(&f))
                .ok_or_else(|| {
                    invalid(
                        &model_name,
                        format!(
                            "ONNX metadata subsampling_factor '{value}' is not an integer from 1 to {MAX_SUBSAMPLING}"
                        ),
                    )
                })?;
            sources.push("subsampling_factor from ONNX metadata".to_string());
        }
        if let Some(value) = metadata("normalize_type") {
            description.frontend.normalization = match value.trim() {
                "per_feature" => Normalization::PerFeature,
                "" | "none" => Normalization::None,
                other => {
                    return Err(invalid(
                        &model_name,
                        format!(
                            "ONNX metadata normalize_type '{other}' is not supported (per_feature or empty)"
                        ),
                    ));
                }
            };
            sources.push("normalize_type from ONNX metadata".to_string());
        }
        description.source = sources.join(", ");
        Ok(description)
    }
}

/// `dir/name.onnx` -> `dir/name.json`.
pub fn sidecar_path(model_path: &Path) -> PathBuf {
    model_path.with_extension("json")
}

/// Parses a DeepSpeech `alphabet.txt`: one label per line, `#` starts a comment line,
/// `\#` is a literal `#`, and a line holding a single space is the space label.
pub fn parse_alphabet(text: &str) -> Result<Vec<String>, String> {
    let mut labels = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        labels.push(if line == "\\#" {
            "#".to_string()
        } else {
            line.to_string()
        });
    }
    if labels.is_empty() {
        return Err("alphabet has no labels".to_string());
    }
    Ok(labels)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDescription {
    format: String,
    #[serde(default)]
    description: String,
    labels: Vec<String>,
    sample_rate: u32,
    subsampling_factor: u32,
    /// Required for log-mel input, absent for waveform input.
    #[serde(default)]
    frontend: Option<RawFrontend>,
    #[serde(default)]
    nemo_version: Option<String>,
    #[serde(default)]
    language_model: Option<PathBuf>,
    #[serde(default)]
    language: Option<String>,
    /// Version 2: `log_mel` (default) or `waveform`.
    #[serde(default)]
    input: Option<String>,
    /// Version 2: how labels make words (default: characters).
    #[serde(default)]
    words: Option<RawWords>,
    /// Version 2: decoding defaults tuned for the model.
    #[serde(default)]
    decoding: Option<RawDecoding>,
    /// Version 2: the longest audio the model takes in one run, in seconds.
    #[serde(default)]
    max_input_seconds: Option<f64>,
    /// Version 2: how a latency becomes windows for this model.
    #[serde(default)]
    latency_plan: Option<RawLatencyPlan>,
    /// Version 2: the encoder's position table, in output (encoded) frames.
    #[serde(default)]
    pos_emb_max_len: Option<u32>,
    /// Version 2: how a cache-aware streaming graph is stepped.
    #[serde(default)]
    streaming: Option<RawStreaming>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLatencyPlan {
    #[serde(default)]
    left_context_ms: Option<u32>,
    chunk_percent: u32,
    right_context_percent: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWords {
    /// `characters`, `phonemes` or `pieces`.
    unit: String,
    #[serde(default)]
    boundary: Option<String>,
    #[serde(default)]
    lexicon: Option<PathBuf>,
    #[serde(default)]
    g2p: Option<PathBuf>,
    /// Pieces: the ids of every piece that is not `normal`, by SentencePiece type
    /// (`unknown`, `control`, `user_defined`, `byte`, `unused`).
    #[serde(default)]
    types: Option<std::collections::BTreeMap<String, Vec<usize>>>,
    /// Pieces: what the unknown piece writes (SentencePiece's default ` ⁇ `).
    #[serde(default)]
    unknown_surface: Option<String>,
    /// Pieces: the tokenizer's `remove_extra_whitespaces` (required: NeMo 3.0's tokenizers
    /// say false, older ones and SentencePiece's default true).
    #[serde(default)]
    remove_extra_whitespaces: Option<bool>,
}

impl RawWords {
    /// Whether any field that only pieces take is present.
    fn has_piece_fields(&self) -> bool {
        self.types.is_some()
            || self.unknown_surface.is_some()
            || self.remove_extra_whitespaces.is_some()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDecoding {
    #[serde(default)]
    beam_width: Option<u32>,
    #[serde(default)]
    lm_weight: Option<f32>,
    #[serde(default)]
    word_bonus: Option<f32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFrontend {
    window_size: f64,
    window_stride: f64,
    n_fft: usize,
    features: usize,
    #[serde(default = "default_window")]
    window: String,
    #[serde(default = "default_preemph")]
    preemph: Option<f32>,
    #[serde(default)]
    lowfreq: f32,
    #[serde(default)]
    highfreq: Option<f32>,
    #[serde(default = "default_mag_power")]
    mag_power: f32,
    #[serde(default = "default_log")]
    log: bool,
    #[serde(default = "default_log_guard")]
    log_zero_guard_value: f32,
    normalize: String,
    #[serde(default)]
    fixed_mean: Option<Vec<f32>>,
    #[serde(default)]
    fixed_std: Option<Vec<f32>>,
    pad_mode: String,
}

fn default_window() -> String {
    "hann".to_string()
}
fn default_preemph() -> Option<f32> {
    Some(0.97)
}
fn default_mag_power() -> f32 {
    2.0
}
fn default_log() -> bool {
    true
}
fn default_log_guard() -> f32 {
    // NeMo's default log_zero_guard_value: 2^-24.
    5.960_464_5e-8
}

impl RawDescription {
    /// The description, or what is wrong with it.
    fn into_description(self) -> Result<ModelDescription, String> {
        let version2 = match self.format.as_str() {
            FORMAT => true,
            FORMAT_V1 => false,
            other => return Err(format!("format is '{other}', expected '{FORMAT}'")),
        };
        if !version2
            && (self.input.is_some()
                || self.words.is_some()
                || self.decoding.is_some()
                || self.max_input_seconds.is_some()
                || self.latency_plan.is_some()
                || self.pos_emb_max_len.is_some()
                || self.streaming.is_some())
        {
            return Err(format!(
                "input, words, decoding, max_input_seconds, latency_plan, pos_emb_max_len and streaming need format '{FORMAT}'"
            ));
        }
        if self.labels.is_empty() {
            return Err("labels is empty".to_string());
        }
        if self.labels.len() > MAX_LABELS {
            return Err(format!(
                "{} labels are more than the most supported ({MAX_LABELS})",
                self.labels.len()
            ));
        }
        if self.sample_rate == 0 || self.subsampling_factor == 0 {
            return Err("sample_rate and subsampling_factor must be positive".to_string());
        }
        let input = match self.input.as_deref() {
            None | Some("log_mel") => ModelInput::LogMel,
            Some("waveform") => ModelInput::Waveform,
            Some(other) => {
                return Err(format!(
                    "input '{other}' is not supported (log_mel or waveform)"
                ));
            }
        };
        let most = match input {
            ModelInput::LogMel => MAX_SUBSAMPLING,
            ModelInput::Waveform => MAX_WAVEFORM_FRAME_SAMPLES,
        };
        if self.subsampling_factor > most {
            return Err(format!(
                "subsampling_factor {} is larger than the most supported ({most})",
                self.subsampling_factor
            ));
        }
        let frontend = match (input, self.frontend) {
            (ModelInput::LogMel, Some(f)) => parse_frontend(f, self.sample_rate)?,
            (ModelInput::LogMel, None) => {
                return Err("frontend is missing (a log_mel model needs one)".to_string());
            }
            // Unused (no frontend runs); it only carries the rate.
            (ModelInput::Waveform, None) => FrontendConfig {
                sample_rate: self.sample_rate,
                normalization: Normalization::None,
                ..FrontendConfig::default()
            },
            (ModelInput::Waveform, Some(_)) => {
                return Err("a waveform model has no frontend: remove it".to_string());
            }
        };
        let units = match self.words {
            None => WordUnits::Characters,
            Some(words) => parse_words(words, &self.labels)?,
        };
        let decoding = self
            .decoding
            .map_or_else(DecodingDefaults::default, |d| DecodingDefaults {
                beam_width: d.beam_width,
                lm_weight: d.lm_weight,
                word_bonus: d.word_bonus,
            });
        let max_input_samples = match self.max_input_seconds {
            None => None,
            Some(s) if (1.0..=86_400.0).contains(&s) => {
                Some((s * f64::from(self.sample_rate)) as usize)
            }
            Some(s) => {
                return Err(format!("max_input_seconds {s} is not between 1 and 86400"));
            }
        };
        let max_output_frames = match self.pos_emb_max_len {
            None => None,
            Some(frames) if (1..=MAX_POSITION_TABLE_FRAMES).contains(&frames) => {
                Some(frames as usize)
            }
            Some(frames) => {
                return Err(format!(
                    "pos_emb_max_len {frames} is not between 1 and {MAX_POSITION_TABLE_FRAMES}"
                ));
            }
        };
        let latency_shares = match self.latency_plan {
            None => LatencyShares::DEFAULT,
            Some(plan) => parse_latency_plan(plan)?,
        };
        let streaming = match self.streaming {
            None => None,
            Some(section) => Some(parse_streaming(
                section,
                input,
                &frontend,
                self.subsampling_factor,
                max_output_frames,
            )?),
        };
        let mut text = self.description;
        if let Some(version) = self.nemo_version {
            text = format!("{text} (exported with NeMo {version})")
                .trim()
                .to_string();
        }
        Ok(ModelDescription {
            labels: self.labels,
            sample_rate: self.sample_rate,
            subsampling_factor: self.subsampling_factor,
            frontend,
            text,
            source: String::new(),
            language_model: self.language_model,
            language: self.language,
            input,
            units,
            decoding,
            max_input_samples,
            max_output_frames,
            latency_shares,
            streaming,
        })
    }
}

/// The `streaming` section of a log-mel model without normalisation: with it a frame would
/// depend on the frames after it, and a cache-aware step could not run on final features
/// (`docs/CACHE_AWARE.md` section 2).
fn parse_streaming(
    section: RawStreaming,
    input: ModelInput,
    frontend: &FrontendConfig,
    subsampling: u32,
    position_table: Option<usize>,
) -> Result<CacheAwareStreaming, String> {
    if input != ModelInput::LogMel {
        return Err("streaming: a cache-aware model takes log_mel input".to_string());
    }
    if frontend.normalization != Normalization::None {
        return Err(
            "streaming: a cache-aware model's frontend must have normalize 'none' (each frame final once its samples are there)"
                .to_string(),
        );
    }
    section.parse(subsampling as usize, position_table)
}

/// The latency plan section: a chunk of 1 to 80 % and a right context of 0 to 80 % of the
/// latency, together at most 80 % (the rest covers the word itself and the decoder), and a
/// left context up to the longest window part.
fn parse_latency_plan(plan: RawLatencyPlan) -> Result<LatencyShares, String> {
    let (chunk, right) = (plan.chunk_percent, plan.right_context_percent);
    if !(1..=80).contains(&chunk) || right > 80 || chunk + right > 80 {
        return Err(format!(
            "latency_plan: chunk_percent {chunk} and right_context_percent {right} must be 1..=80 and 0..=80 with a sum of at most 80"
        ));
    }
    if let Some(left) = plan.left_context_ms
        && left > crate::config::MAX_WINDOW_PART_MS
    {
        return Err(format!(
            "latency_plan: left_context_ms {left} is longer than {} ms",
            crate::config::MAX_WINDOW_PART_MS
        ));
    }
    Ok(LatencyShares {
        left_context_ms: plan.left_context_ms,
        chunk_percent: chunk,
        right_context_percent: right,
    })
}

/// The `words` section: characters, or phonemes with a boundary label that is one of the
/// labels and a lexicon file.
fn parse_words(words: RawWords, labels: &[String]) -> Result<WordUnits, String> {
    if words.unit != "pieces" && words.has_piece_fields() {
        return Err(format!(
            "words: types, unknown_surface and remove_extra_whitespaces are for unit 'pieces', not '{}'",
            words.unit
        ));
    }
    match words.unit.as_str() {
        "pieces" => parse_pieces(words, labels),
        "characters" => {
            if words.boundary.is_some() || words.lexicon.is_some() || words.g2p.is_some() {
                return Err(
                    "words: characters take no boundary, lexicon or g2p (the space label separates words)"
                        .to_string(),
                );
            }
            Ok(WordUnits::Characters)
        }
        "phonemes" => {
            let boundary = words
                .boundary
                .ok_or("words: phonemes need a boundary label (e.g. \"<wb>\")")?;
            if !labels.contains(&boundary) {
                return Err(format!(
                    "words: the boundary '{boundary}' is not one of the labels"
                ));
            }
            let lexicon = words
                .lexicon
                .ok_or("words: phonemes need a lexicon file (word -> phonemes)")?;
            Ok(WordUnits::Phonemes {
                boundary,
                lexicon,
                g2p: words.g2p,
            })
        }
        other => Err(format!(
            "words: unit '{other}' is not supported (characters, phonemes or pieces)"
        )),
    }
}

/// The `words` section of a sub-word model: the labels are the SentencePiece pieces in id
/// order; `types` lists the ids of every piece that is not normal, by type.
fn parse_pieces(words: RawWords, labels: &[String]) -> Result<WordUnits, String> {
    if words.boundary.is_some() || words.lexicon.is_some() || words.g2p.is_some() {
        return Err(
            "words: pieces take no boundary, lexicon or g2p (a piece starting with ▁ starts a word)"
                .to_string(),
        );
    }
    let remove_extra_whitespaces = words.remove_extra_whitespaces.ok_or(
        "words: pieces need remove_extra_whitespaces (the tokenizer's normalizer flag: false for NeMo 3.0's tokenizers)",
    )?;
    let mut kinds = vec![PieceKind::Normal; labels.len()];
    let mut typed = vec![false; labels.len()];
    for (kind, ids) in words.types.unwrap_or_default() {
        for id in ids {
            let Some(piece) = labels.get(id) else {
                return Err(format!(
                    "words: {kind} piece id {id} is not one of the {} labels",
                    labels.len()
                ));
            };
            if std::mem::replace(&mut typed[id], true) {
                return Err(format!("words: piece id {id} ({piece:?}) has two types"));
            }
            kinds[id] = PieceKind::parse(&kind, piece).map_err(|e| format!("words: {e}"))?;
        }
    }
    let unknown_surface = words
        .unknown_surface
        .unwrap_or_else(|| DEFAULT_UNKNOWN_SURFACE.to_string());
    PieceTable::new(
        labels.to_vec(),
        kinds,
        &unknown_surface,
        remove_extra_whitespaces,
    )
    .map(WordUnits::Pieces)
    .map_err(|e| format!("words: {e}"))
}

/// NeMo's preprocessor settings as this crate's frontend, refusing settings it would compute
/// differently.
fn parse_frontend(f: RawFrontend, sample_rate: u32) -> Result<FrontendConfig, String> {
    if f.window != "hann" {
        return Err(format!(
            "frontend.window '{}' is not supported (only hann)",
            f.window
        ));
    }
    if f.mag_power != 2.0 {
        return Err(format!(
            "frontend.mag_power {} is not supported (only 2.0)",
            f.mag_power
        ));
    }
    if !f.log {
        return Err("frontend.log false is not supported".to_string());
    }
    // Durations become sample counts: refuse what no frontend could have before casting.
    for (name, seconds) in [
        ("window_size", f.window_size),
        ("window_stride", f.window_stride),
    ] {
        let samples = seconds * f64::from(sample_rate);
        if !(seconds.is_finite() && (1.0..=MAX_N_FFT as f64).contains(&samples)) {
            return Err(format!(
                "frontend.{name} {seconds:?} s is not between one sample and {MAX_N_FFT} samples"
            ));
        }
    }
    let samples = |seconds: f64| (seconds * f64::from(sample_rate)).round() as usize;
    let padding = match f.pad_mode.as_str() {
        "reflect" => PaddingMode::Reflect,
        "zeros" => PaddingMode::Zeros,
        other => {
            return Err(format!(
                "frontend.pad_mode '{other}' is not reflect or zeros"
            ));
        }
    };
    let normalization = match f.normalize.as_str() {
        "per_feature" => Normalization::PerFeature,
        "none" => Normalization::None,
        "fixed" => match (f.fixed_mean, f.fixed_std) {
            (Some(mean), Some(std)) => Normalization::Fixed { mean, std },
            _ => {
                return Err("frontend.normalize 'fixed' needs fixed_mean and fixed_std".to_string());
            }
        },
        other => {
            return Err(format!(
                "frontend.normalize '{other}' is not supported (per_feature, fixed or none)"
            ));
        }
    };
    let frontend = FrontendConfig {
        sample_rate,
        win_length: samples(f.window_size),
        hop_length: samples(f.window_stride),
        n_fft: f.n_fft,
        n_mels: f.features,
        preemph: f.preemph.unwrap_or(0.0),
        f_min: f.lowfreq,
        f_max: f.highfreq.unwrap_or(sample_rate as f32 / 2.0),
        log_guard: f.log_zero_guard_value,
        padding,
        normalization,
    };
    // The frontend's own message names it ("frontend: ...").
    frontend.validate().map_err(|e| e.to_string())?;
    Ok(frontend)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sidecar(pad_mode: &str, normalize: &str) -> String {
        let labels: Vec<String> = english_labels();
        format!(
            r#"{{"format": "quartznetstt-model/1", "description": "test", "labels": {labels},
            "sample_rate": 16000, "subsampling_factor": 2,
            "frontend": {{"window_size": 0.02, "window_stride": 0.01, "n_fft": 512, "features": 64,
              "window": "hann", "preemph": 0.97, "lowfreq": 0.0, "highfreq": 8000.0, "mag_power": 2.0,
              "log": true, "log_zero_guard_value": 5.960464477539063e-08, "normalize": "{normalize}",
              "pad_mode": "{pad_mode}"}}, "nemo_version": "3.0.0"}}"#,
            labels = serde_json::to_string(&labels).unwrap()
        )
    }

    #[test]
    fn sidecar_matches_builtin_defaults() {
        let d = ModelDescription::from_json(&sidecar("reflect", "per_feature"), "x.json").unwrap();
        let defaults = ModelDescription::default();
        assert_eq!(d.labels, defaults.labels);
        assert_eq!(d.frontend, defaults.frontend);
        assert_eq!(d.vocab_size(), 29);
        assert_eq!(d.samples_per_output_frame(), 320);
    }

    #[test]
    fn sidecar_pad_mode_and_errors() {
        let d = ModelDescription::from_json(&sidecar("zeros", "none"), "x.json").unwrap();
        assert_eq!(d.frontend.padding, PaddingMode::Zeros);
        assert_eq!(d.frontend.normalization, Normalization::None);
        let e = ModelDescription::from_json(&sidecar("edge", "none"), "x.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.json") && e.contains("pad_mode 'edge'"), "{e}");
        let e = ModelDescription::from_json(&sidecar("zeros", "fixed"), "x.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("fixed_mean"), "{e}");
        let e = ModelDescription::from_json("{", "x.json")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.json: invalid model description"), "{e}");
    }

    /// Sizes a downloaded description declares are checked before anything is allocated.
    #[test]
    fn hostile_sizes_are_clear_errors() {
        let base = sidecar("reflect", "per_feature");
        for (from, to, expected) in [
            (
                "\"subsampling_factor\": 2",
                "\"subsampling_factor\": 4294967295",
                "subsampling_factor 4294967295 is larger than the most supported (64)",
            ),
            (
                "\"n_fft\": 512",
                "\"n_fft\": 1000000000",
                "n_fft 1000000000 is larger than the most supported (16384)",
            ),
            (
                "\"window_stride\": 0.01",
                "\"window_stride\": 1e300",
                "frontend.window_stride 1e300 s is not between one sample and 16384 samples",
            ),
            (
                "\"sample_rate\": 16000",
                "\"sample_rate\": 4000000000",
                "is not between one sample",
            ),
        ] {
            assert!(base.contains(from), "{from}");
            let e = ModelDescription::from_json(&base.replace(from, to), "x.json")
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("x.json: ") && e.contains(expected), "{e}");
        }
    }

    #[test]
    fn paths_resolve_against_the_model_folder_and_files_must_be_regular() {
        let tmp = tempfile::tempdir().unwrap();
        let model = tmp.path().join("m.onnx");
        let with_lm = sidecar("zeros", "per_feature").replace(
            "\"nemo_version\"",
            "\"language_model\": \"toy.arpa\", \"nemo_version\"",
        );
        let meta = |key: &str| (key == METADATA_KEY).then(|| with_lm.clone());
        let d = ModelDescription::resolve(&model, &meta).unwrap();
        assert_eq!(d.language_model, Some(tmp.path().join("toy.arpa")));
        std::fs::write(tmp.path().join("m.json"), &with_lm).unwrap();
        let d = ModelDescription::resolve(&model, &|_: &str| None).unwrap();
        assert_eq!(d.language_model, Some(tmp.path().join("toy.arpa")));
        // A sidecar that is a FIFO would block the state change forever.
        std::fs::remove_file(tmp.path().join("m.json")).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(tmp.path().join("m.json"))
            .status();
        if made.is_ok_and(|s| s.success()) {
            let e = ModelDescription::resolve(&model, &|_: &str| None)
                .unwrap_err()
                .to_string();
            assert!(e.contains("not a regular file"), "{e}");
        }
    }

    #[test]
    fn language_codes_match_the_primary_language() {
        let english = ModelDescription::default();
        for ok in ["en", "en-US", "EN_gb", "en-Latn-US"] {
            assert!(english.check_language(ok).is_ok(), "{ok}");
        }
        for bad in [
            "fr-FR", "de", "", "e", "english", "en--US", "en US", "12-US",
        ] {
            assert!(
                matches!(english.check_language(bad), Err(Error::Settings(_))),
                "{bad}"
            );
        }
        let unknown = ModelDescription {
            language: None,
            ..ModelDescription::default()
        };
        assert!(unknown.check_language("fr-FR").is_ok());
        assert!(unknown.check_language("not a code").is_err());
        let json = sidecar("zeros", "per_feature").replacen('{', r#"{"language": "de", "#, 1);
        let german = ModelDescription::from_json(&json, "model.json").unwrap();
        assert_eq!(german.language.as_deref(), Some("de"));
        assert!(german.check_language("de-AT").is_ok());
        assert!(german.check_language("en-US").is_err());
    }

    #[test]
    fn alphabet_like_deepspeech() {
        let text = "# Each line is a label\n \na\nb\n\\#\n'\n# end\n";
        assert_eq!(parse_alphabet(text).unwrap(), vec![" ", "a", "b", "#", "'"]);
        assert!(parse_alphabet("# only comments\n").is_err());
    }

    #[test]
    fn resolve_falls_back_to_metadata_then_defaults() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let model = dir.join("m.onnx");
        let none = |_: &str| None;
        assert_eq!(
            ModelDescription::resolve(&model, &none).unwrap().labels,
            english_labels()
        );

        let embedded = sidecar("zeros", "per_feature");
        let meta = |key: &str| (key == METADATA_KEY).then(|| embedded.clone());
        let d = ModelDescription::resolve(&model, &meta).unwrap();
        assert_eq!(d.frontend.padding, PaddingMode::Zeros);

        let sherpa = |key: &str| match key {
            "subsampling_factor" => Some("4".to_string()),
            "normalize_type" => Some("".to_string()),
            _ => None,
        };
        std::fs::write(dir.join("alphabet.txt"), " \nx\ny\n").unwrap();
        let d = ModelDescription::resolve(&model, &sherpa).unwrap();
        assert_eq!(d.subsampling_factor, 4);
        assert_eq!(d.frontend.normalization, Normalization::None);
        assert_eq!(d.labels, vec![" ", "x", "y"]);

        std::fs::write(dir.join("m.json"), sidecar("reflect", "none")).unwrap();
        let d = ModelDescription::resolve(&model, &sherpa).unwrap();
        assert_eq!(d.subsampling_factor, 2);
    }

    /// `pos_emb_max_len` (version 2 only): the encoder's position table in output frames,
    /// which one run must not exceed.
    #[test]
    fn position_tables_limit_one_run() {
        let v1 = sidecar("zeros", "per_feature");
        let v2 = v1.replace("quartznetstt-model/1", FORMAT);
        let with = |json: &str, frames: &str| {
            let json = json.replacen('{', &format!(r#"{{"pos_emb_max_len": {frames}, "#), 1);
            ModelDescription::from_json(&json, "t.json")
        };
        let d = with(&v2, "50").unwrap();
        assert_eq!(d.max_output_frames, Some(50));
        assert!(d.check_output_frames(50, "x", "y").is_ok());
        let e = d
            .check_output_frames(51, "a window of 1020 ms", "shorter")
            .unwrap_err();
        assert!(matches!(e, Error::Settings(_)), "{e}");
        let message = e.to_string();
        assert!(
            message.starts_with("a window of 1020 ms is 51 output frames (1020 ms)")
                && message.contains("50 frames = 1000 ms (pos_emb_max_len in t.json)")
                && message.ends_with("shorter"),
            "{message}"
        );
        assert_eq!(
            ModelDescription::from_json(&v2, "t.json")
                .unwrap()
                .max_output_frames,
            None
        );
        for (json, frames, wrong) in [
            (&v1, "50", "need format"),
            (&v2, "0", "pos_emb_max_len 0 is not between"),
            (&v2, "-3", "invalid model description"),
        ] {
            let e = with(json, frames).unwrap_err().to_string();
            assert!(e.contains(wrong), "{frames}: {e}");
        }
    }

    /// A phoneme waveform model as version 2 describes it (the bundled default's shape).
    fn phoneme_sidecar(extra: &str) -> String {
        format!(
            r#"{{"format": "quartznetstt-model/2", "input": "waveform", "labels": ["a", "b", "<wb>"],
            "sample_rate": 16000, "subsampling_factor": 320,
            "words": {{"unit": "phonemes", "boundary": "<wb>", "lexicon": "x.lexicon.gz", "g2p": "g2p"}}{extra}}}"#
        )
    }

    #[test]
    fn version_2_describes_waveform_phoneme_models() {
        let extra = r#", "decoding": {"beam_width": 64, "lm_weight": 0.45},
            "max_input_seconds": 29.98,
            "latency_plan": {"left_context_ms": 2500, "chunk_percent": 15, "right_context_percent": 25}"#;
        let d = ModelDescription::from_json(&phoneme_sidecar(extra), "x.json").unwrap();
        assert_eq!(d.input, ModelInput::Waveform);
        assert_eq!(d.samples_per_output_frame(), 320);
        assert_eq!(d.input_frame_samples(), 1);
        assert!(d.units.uses_lexicon());
        assert_eq!(d.decoding.beam_width, Some(64));
        assert_eq!(d.decoding.word_bonus, None);
        assert_eq!(d.max_input_samples, Some(479_680));
        assert_eq!(d.latency_shares.chunk_percent, 15);
        // Paths are relative to the file that holds the description.
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("m.json"), phoneme_sidecar("")).unwrap();
        let d = ModelDescription::resolve(&tmp.path().join("m.onnx"), &|_: &str| None).unwrap();
        assert_eq!(
            d.units,
            WordUnits::Phonemes {
                boundary: "<wb>".into(),
                lexicon: tmp.path().join("x.lexicon.gz"),
                g2p: Some(tmp.path().join("g2p")),
            }
        );
        // Version 1 still reads, as characters with NeMo's frontend.
        let v1 = ModelDescription::from_json(&sidecar("zeros", "none"), "x.json").unwrap();
        assert_eq!(
            (v1.input, v1.units),
            (ModelInput::LogMel, WordUnits::Characters)
        );
        assert_eq!(v1.latency_shares, LatencyShares::DEFAULT);
    }

    /// A sub-word model as `tools/export_nemo.py` describes it: pieces in id order.
    fn pieces_sidecar(words: &str) -> String {
        sidecar("zeros", "per_feature")
            .replace("quartznetstt-model/1", "quartznetstt-model/2")
            .replace(
                &serde_json::to_string(&english_labels()).unwrap(),
                r#"["<unk>", "<0xC3>", "<0xA9>", "▁the", "s", "."]"#,
            )
            .replace(
                "\"nemo_version\"",
                &format!("\"words\": {words}, \"nemo_version\""),
            )
    }

    #[test]
    fn version_2_describes_sub_word_models() {
        let words = r#"{"unit": "pieces", "types": {"unknown": [0], "byte": [1, 2]},
            "unknown_surface": " ⁇ ", "remove_extra_whitespaces": false}"#;
        let d = ModelDescription::from_json(&pieces_sidecar(words), "x.json").unwrap();
        let table = d.units.pieces().unwrap();
        assert_eq!(table.pieces(), &d.labels[..]);
        assert_eq!(
            (0..6).map(|i| table.kind(i).unwrap()).collect::<Vec<_>>(),
            [
                PieceKind::Unknown,
                PieceKind::Byte(0xC3),
                PieceKind::Byte(0xA9),
                PieceKind::Normal,
                PieceKind::Normal,
                PieceKind::Normal
            ]
        );
        assert_eq!(table.text(&[3, 1, 2, 4, 5, 0]), "theés. ⁇ ");
        assert!(!d.units.uses_lexicon());
        for (words, expected) in [
            (
                r#"{"unit": "pieces", "types": {"byte": [3]}, "remove_extra_whitespaces": true}"#,
                "byte piece \"▁the\" is not of the form <0xNN>",
            ),
            (
                r#"{"unit": "pieces", "types": {"unknown": [6]}, "remove_extra_whitespaces": true}"#,
                "unknown piece id 6 is not one of the 6 labels",
            ),
            (
                r#"{"unit": "pieces", "types": {"unknown": [0], "control": [0]}, "remove_extra_whitespaces": true}"#,
                "piece id 0 (\"<unk>\") has two types",
            ),
            (
                r#"{"unit": "pieces", "types": {"special": [0]}, "remove_extra_whitespaces": true}"#,
                "unknown piece type \"special\"",
            ),
            (r#"{"unit": "pieces"}"#, "need remove_extra_whitespaces"),
            (
                r#"{"unit": "characters", "remove_extra_whitespaces": true}"#,
                "are for unit 'pieces', not 'characters'",
            ),
            (
                r#"{"unit": "pieces", "boundary": "s", "remove_extra_whitespaces": true}"#,
                "pieces take no boundary",
            ),
        ] {
            let e = ModelDescription::from_json(&pieces_sidecar(words), "x.json")
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("x.json: ") && e.contains(expected),
                "{expected}: {e}"
            );
        }
    }

    #[test]
    fn version_2_mistakes_are_clear_errors() {
        let v1_with_v2 = sidecar("zeros", "none").replacen('{', r#"{"input": "waveform", "#, 1);
        let bad = [
            (v1_with_v2, "need format 'quartznetstt-model/2'"),
            (
                phoneme_sidecar("").replace(r#""boundary": "<wb>""#, r#""boundary": "|""#),
                "the boundary '|' is not one of the labels",
            ),
            (
                phoneme_sidecar("").replace(r#", "lexicon": "x.lexicon.gz""#, ""),
                "need a lexicon",
            ),
            (
                phoneme_sidecar("").replace(
                    r#""input": "waveform""#,
                    r#""input": "waveform", "frontend": {"window_size": 0.02, "window_stride": 0.01,
                      "n_fft": 512, "features": 64, "normalize": "none", "pad_mode": "zeros"}"#,
                ),
                "a waveform model has no frontend",
            ),
            (
                phoneme_sidecar("")
                    .replace(r#""input": "waveform""#, r#""input": "log_mel""#)
                    .replace("320", "2"),
                "frontend is missing",
            ),
            (
                phoneme_sidecar("").replace("waveform", "spectrum"),
                "input 'spectrum'",
            ),
            (
                phoneme_sidecar("").replace("phonemes", "syllables"),
                "unit 'syllables'",
            ),
            (
                phoneme_sidecar(
                    r#", "latency_plan": {"chunk_percent": 60, "right_context_percent": 30}"#,
                ),
                "sum of at most 80",
            ),
            (
                phoneme_sidecar(r#", "max_input_seconds": 0.1"#),
                "max_input_seconds",
            ),
            (
                phoneme_sidecar("").replace("320", "100000"),
                "subsampling_factor 100000 is larger",
            ),
        ];
        for (json, expected) in bad {
            let e = ModelDescription::from_json(&json, "x.json")
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("x.json: ") && e.contains(expected),
                "{expected}: {e}"
            );
        }
    }
}

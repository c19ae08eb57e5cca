// SPDX-License-Identifier: MPL-2.0
//! What a user chooses about recognition, with every default and limit defined once. The
//! GStreamer element's properties, the command-line options, the tests and the bench all read
//! them from here; [`RecognizerConfig`] turns them and a model's description into the
//! frontend, window and decoder that actually run.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::decode::hotwords::HotwordList;
use crate::decode::{BeamConfig, ConfidenceConfig, DecoderConfig, DecodingOptions, Smearing};
use crate::error::{Error, Result};
use crate::frontend::{FrontendConfig, Normalization, PaddingMode};
use crate::lexicon::PronunciationLexicon;
use crate::lm;
use crate::model::{LatencyShares, ModelDescription, WordUnits};
use crate::streaming::{StreamEdges, WindowConfig};

/// ONNX Runtime intra-op threads; 0 lets ONNX Runtime choose (one per core).
pub const DEFAULT_THREADS: usize = 0;
/// Most ONNX Runtime threads a user may ask for.
pub const MAX_THREADS: usize = 256;
/// The latency a stream is given when the user chooses none: text at most this long after
/// the start of its first word, with the windows and word rules [`LatencyPlan::for_latency`]
/// derives. Picked from the README's latency table: the lowest setting whose text arrives a
/// median of at most 2 s after the word ends with a WER within 5 points of offline decoding.
pub const DEFAULT_LATENCY_MS: u32 = 4000;
/// Shortest latency buffered windows are planned for (windows shorter than this lose most
/// words): a shorter latency gets this one's windows, and a buffered model reports at least
/// this latency. A cache-aware model has no such floor (its steps are its look-aheads).
pub const MIN_LATENCY_MS: u32 = 500;
/// Shortest latency a user may ask for: none. A cache-aware model picks its look-ahead by
/// the latency down to its shortest step (NeMo's 0 ms look-ahead: an 80 ms step, 186 ms with
/// the word gap), a buffered model plans for at least [`MIN_LATENCY_MS`]; either reports
/// more than it was asked when it needs more.
pub const LOWEST_LATENCY_MS: u32 = 0;
/// Longest latency a user may ask for.
pub const MAX_LATENCY_MS: u32 = 120_000;
/// Audio before each chunk given to the model.
pub const DEFAULT_LEFT_CONTEXT_MS: u32 = DEFAULT_PLAN.left_context_ms;
/// Audio recognised per window.
pub const DEFAULT_CHUNK_MS: u32 = DEFAULT_PLAN.chunk_ms;
/// Audio after each chunk given to the model (adds to the latency).
pub const DEFAULT_RIGHT_CONTEXT_MS: u32 = DEFAULT_PLAN.right_context_ms;
/// Longest left context, chunk or right context.
pub const MAX_WINDOW_PART_MS: u32 = 60_000;
/// Input that is not live (a file) is recognised in chunks this long: the model's cost
/// grows with the audio it is given, so long chunks waste little on context (see
/// [`RecognizerConfig::for_files`]).
pub const FILE_CHUNK_MS: u32 = 60_000;
/// Context on each side of a file's chunks (trimmed at the file's start and end).
pub const FILE_CONTEXT_MS: u32 = 2500;
/// Silence after a word that completes it without a following space.
pub const DEFAULT_WORD_GAP_MS: u32 = DEFAULT_PLAN.word_gap_ms;
/// Beam width of the bundled English model's evaluation (see models/MODEL_CARD.md). 128
/// rather than 64: about one point of WER lower on both tuning sets (tools/lm/README.md) for
/// 0.6 s more decoding per 5 minutes of audio; 256 gains as much again at 2.5 times that cost.
pub const DEFAULT_BEAM_WIDTH: u32 = 128;
/// Widest beam a user may ask for.
pub const MAX_BEAM_WIDTH: u32 = 4096;
/// LM weight tuned for the bundled model, LM and beam width on the three tuning sets (synthetic
/// dev, out-of-domain book prose, Harvard sentences; tools/lm/README.md), never on the
/// evaluation sets.
pub const DEFAULT_LM_WEIGHT: f32 = 0.5;
/// Largest LM weight a user may ask for.
pub const MAX_LM_WEIGHT: f32 = 10.0;
/// Word bonus tuned with [`DEFAULT_LM_WEIGHT`].
pub const DEFAULT_WORD_BONUS: f32 = 0.5;
/// Largest word bonus (or penalty, negated) a user may ask for.
pub const MAX_WORD_BONUS: f32 = 100.0;
/// The bundled default model's tuned beam width (its description, `models/hama-en.json`,
/// says so too; a test holds them equal): what the element's `beam-width` property shows
/// while unset.
pub const BUNDLED_BEAM_WIDTH: u32 = 128;
/// The bundled default model's tuned LM weight (natural-log scores).
pub const BUNDLED_LM_WEIGHT: f32 = 0.3;
/// The bundled default model's tuned word bonus.
pub const BUNDLED_WORD_BONUS: f32 = 0.0;
/// Subtracted from the beam-search score of a word outside the LM's vocabulary (tuned with
/// [`DEFAULT_LM_WEIGHT`] on the synthetic dev set, tools/lm/README.md).
pub const DEFAULT_UNK_PENALTY: f32 = 20.0;
/// The largest unknown-word penalty; this value turns unknown words off (only vocabulary
/// words are output, the search before unknown words existed).
pub const MAX_UNK_PENALTY: f32 = 100.0;
/// How long a word of the best beam-search hypothesis waits for the others to agree before
/// it is output anyway.
pub const DEFAULT_COMMIT_DELAY_MS: u32 = DEFAULT_PLAN.commit_delay_ms;
const DEFAULT_PLAN: LatencyPlan = LatencyPlan::for_latency(DEFAULT_LATENCY_MS);
/// The longest a word may last before it is completed anyway (see
/// [`DecoderConfig::max_word_frames`]): far beyond any spoken English word, so it only acts
/// on runaway output, where it bounds how long live text and gap events are held back.
pub const MAX_WORD_MS: u32 = 3000;

/// The CTC decoder to run. "Auto" is `None`: beam search when a language model is given or
/// the model's description names one, greedy otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecoderKind {
    /// NeMo's greedy decoding (exactly NeMo's transcript), even if a language model exists.
    Greedy,
    /// CTC prefix beam search with a word language model (an error without one).
    Beam,
}

/// Where feature statistics come from. "Auto" is `None`: as the model's description says
/// (per-feature models get per-window statistics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NormalizationKind {
    /// Per-feature statistics over each window (over the utterance offline).
    PerWindow,
    /// The model's fixed statistics, else NeMo's streaming demo constants.
    Fixed,
}

/// The windows and word rules that deliver text within a latency.
///
/// Text is timestamped at the start of its first word and leaves once the chunk holding the
/// word's end and the right context after it have been recognised. Of the latency, a quarter
/// is the chunk, 15 % the right context, about 8 % the silence that completes a word without
/// a following space, a quarter the beam search's commit delay; the rest (over a quarter)
/// covers the word itself. The left context (accuracy only, no latency) is 30 %, between 1 s
/// and 2.5 s. The README's latency table measures WER and delays for these plans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencyPlan {
    /// Audio before each chunk given to the model.
    pub left_context_ms: u32,
    /// Audio recognised per window.
    pub chunk_ms: u32,
    /// Audio after each chunk given to the model.
    pub right_context_ms: u32,
    /// Silence that completes a word.
    pub word_gap_ms: u32,
    /// Beam search: how long the best hypothesis's words wait for the others to agree.
    pub commit_delay_ms: u32,
}

impl LatencyPlan {
    /// The plan for `latency_ms` (clamped to `MIN_LATENCY_MS..=MAX_LATENCY_MS`) with
    /// QuartzNet's shares ([`LatencyShares::DEFAULT`]).
    pub const fn for_latency(latency_ms: u32) -> Self {
        Self::for_model(latency_ms, &LatencyShares::DEFAULT)
    }

    /// The plan for `latency_ms` with a model's `shares` (its description's): its chunk and
    /// right context shares, its left context if it names one. The word gap and commit
    /// delay do not depend on the model.
    pub const fn for_model(latency_ms: u32, shares: &LatencyShares) -> Self {
        let l = const_clamp(latency_ms, MIN_LATENCY_MS, MAX_LATENCY_MS);
        Self {
            left_context_ms: match shares.left_context_ms {
                Some(ms) => ms,
                None => const_clamp(l * 3 / 10, 1000, 2500),
            },
            chunk_ms: l * shares.chunk_percent / 100,
            right_context_ms: l * shares.right_context_percent / 100,
            word_gap_ms: const_clamp(l * 75 / 1000, 100, 600),
            commit_delay_ms: l / 4,
        }
    }
}

/// What a user set of the latency and the windows (the element's `latency`, `left-context-ms`,
/// `chunk-ms`, `right-context-ms` and `word-gap-ms`, the client's options of the same names);
/// `None` leaves a value to the plan. Both map their own options onto this, and
/// [`RecognizerConfig::for_input`] makes the windows, word rules and edges of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowOverrides {
    /// `None`: [`DEFAULT_LATENCY_MS`], and input that is not live gets the file windows.
    pub latency_ms: Option<u32>,
    /// Audio before each chunk given to the model.
    pub left_context_ms: Option<u32>,
    /// Audio recognised per window.
    pub chunk_ms: Option<u32>,
    /// Audio after each chunk given to the model.
    pub right_context_ms: Option<u32>,
    /// Silence that completes a word. Not a window: setting it keeps the file windows.
    pub word_gap_ms: Option<u32>,
}

impl WindowOverrides {
    /// Whether the windows are left to the engine: no latency and no window part set. Only
    /// then does input that is not live get the file windows ([`RecognizerConfig::for_files`]).
    pub fn windows_automatic(&self) -> bool {
        self.latency_ms.is_none()
            && self.left_context_ms.is_none()
            && self.chunk_ms.is_none()
            && self.right_context_ms.is_none()
    }

    /// Whether input that is `live` or not is recognised as live input: a set latency or
    /// window asks for live windows, so a file is recognised as live input with them would be.
    pub fn recognised_live(&self, live: bool) -> bool {
        live || !self.windows_automatic()
    }

    /// The window parts set here that are not a whole number of `description`'s output frames
    /// (20 ms for QuartzNet, 40 ms for Conformer-CTC, 80 ms for Citrinet and FastConformer):
    /// the windows round them to the nearest frame, half a frame up
    /// ([`WindowConfig::from_millis`]), and a user who set one is told so, one
    /// [`ConfigWarning::WindowRounded`] each. Parts the plan derives from a latency, and the
    /// file windows, are rounded without a word.
    pub fn warnings(&self, description: &ModelDescription) -> Vec<ConfigWarning> {
        let frame = description.samples_per_output_frame();
        let rate = u64::from(description.sample_rate);
        let ms = |samples: usize| ((samples as u64 * 1000 + rate / 2) / rate) as u32;
        [
            ("left context", self.left_context_ms, 0),
            ("chunk", self.chunk_ms, 1),
            ("right context", self.right_context_ms, 0),
        ]
        .into_iter()
        .filter_map(|(part, asked, min_frames)| {
            let asked_ms = asked?;
            let (samples, rounded) =
                WindowConfig::part_samples(asked_ms, min_frames, description.sample_rate, frame);
            rounded.then(|| ConfigWarning::WindowRounded {
                part,
                asked_ms,
                used_ms: ms(samples),
                frame_ms: ms(frame),
            })
        })
        .collect()
    }

    /// The latency's plan for a model's `shares`, with the parts set here in place of the
    /// plan's. The commit delay always follows the latency.
    pub fn plan(&self, shares: &LatencyShares) -> LatencyPlan {
        let plan = LatencyPlan::for_model(self.latency_ms.unwrap_or(DEFAULT_LATENCY_MS), shares);
        LatencyPlan {
            left_context_ms: self.left_context_ms.unwrap_or(plan.left_context_ms),
            chunk_ms: self.chunk_ms.unwrap_or(plan.chunk_ms),
            right_context_ms: self.right_context_ms.unwrap_or(plan.right_context_ms),
            word_gap_ms: self.word_gap_ms.unwrap_or(plan.word_gap_ms),
            commit_delay_ms: plan.commit_delay_ms,
        }
    }
}

const fn const_clamp(value: u32, min: u32, max: u32) -> u32 {
    if value < min {
        min
    } else if value > max {
        max
    } else {
        value
    }
}

/// Checks beam-search values against their documented ranges.
fn check_beam_settings(beam_width: u32, lm_weight: f32, word_bonus: f32) -> Result<()> {
    if !(1..=MAX_BEAM_WIDTH).contains(&beam_width) {
        return Err(Error::Settings(format!(
            "beam width {beam_width} is outside 1..={MAX_BEAM_WIDTH}"
        )));
    }
    if !(0.0..=MAX_LM_WEIGHT).contains(&lm_weight) {
        return Err(Error::Settings(format!(
            "LM weight {lm_weight} is outside 0..={MAX_LM_WEIGHT}"
        )));
    }
    if !(-MAX_WORD_BONUS..=MAX_WORD_BONUS).contains(&word_bonus) {
        return Err(Error::Settings(format!(
            "word bonus {word_bonus} is outside -{MAX_WORD_BONUS}..={MAX_WORD_BONUS}"
        )));
    }
    Ok(())
}

/// The beam width, LM weight and word bonus that decode `description`'s model: the user's,
/// else the model's tuned values, else the crate's defaults.
pub fn beam_settings(
    settings: &DecoderSettings,
    description: &ModelDescription,
) -> (u32, f32, f32) {
    let tuned = &description.decoding;
    (
        settings
            .beam_width
            .or(tuned.beam_width)
            .unwrap_or(DEFAULT_BEAM_WIDTH),
        settings
            .lm_weight
            .or(tuned.lm_weight)
            .unwrap_or(DEFAULT_LM_WEIGHT),
        settings
            .word_bonus
            .or(tuned.word_bonus)
            .unwrap_or(DEFAULT_WORD_BONUS),
    )
}

/// The decoder a user chose.
#[derive(Clone, Debug, PartialEq)]
pub struct DecoderSettings {
    /// `None`: beam search if there is a language model, else greedy.
    pub decoder: Option<DecoderKind>,
    /// Overrides the model description's language model.
    pub lm_path: Option<PathBuf>,
    /// Words added to the model's pronunciation lexicon (one per line), spelled by its G2P;
    /// only for models whose words come from a lexicon.
    pub vocabulary_path: Option<PathBuf>,
    /// Hypotheses kept per frame by the beam search; `None`: the model's tuned value (its
    /// description's), else [`DEFAULT_BEAM_WIDTH`].
    pub beam_width: Option<u32>,
    /// Weight of the LM's natural-log probability (DeepSpeech's alpha); `None`: the model's,
    /// else [`DEFAULT_LM_WEIGHT`].
    pub lm_weight: Option<f32>,
    /// Score added per word (DeepSpeech's beta); `None`: the model's, else
    /// [`DEFAULT_WORD_BONUS`].
    pub word_bonus: Option<f32>,
    /// Subtracted from the score of a word outside the LM's vocabulary; [`MAX_UNK_PENALTY`]:
    /// such words are never output.
    pub unk_penalty: f32,
    /// Silence that completes a word (0: only a space does).
    pub word_gap_ms: u32,
    /// Beam search: how long the best hypothesis's words wait for the others to agree.
    pub commit_delay_ms: u32,
    /// How word confidences are computed (default [`ConfidenceConfig::DEFAULT`]).
    pub confidence: ConfidenceConfig,
    /// Phrases the beam search favours (`docs/DECODING.md`, *Hotwords*); an empty list is
    /// none. With a list, `decoder: None` is the beam search (without a language model, an
    /// open-vocabulary one that only the hotwords bias); greedy decoding refuses a list.
    pub hotwords: Option<Arc<HotwordList>>,
}

impl Default for DecoderSettings {
    fn default() -> Self {
        Self {
            decoder: None,
            lm_path: None,
            vocabulary_path: None,
            beam_width: None,
            lm_weight: None,
            word_bonus: None,
            unk_penalty: DEFAULT_UNK_PENALTY,
            word_gap_ms: DEFAULT_WORD_GAP_MS,
            commit_delay_ms: DEFAULT_COMMIT_DELAY_MS,
            confidence: ConfidenceConfig::DEFAULT,
            hotwords: None,
        }
    }
}

impl DecoderSettings {
    /// Checks every value against its documented range.
    pub fn validate(&self) -> Result<()> {
        check_beam_settings(
            self.beam_width.unwrap_or(DEFAULT_BEAM_WIDTH),
            self.lm_weight.unwrap_or(DEFAULT_LM_WEIGHT),
            self.word_bonus.unwrap_or(DEFAULT_WORD_BONUS),
        )?;
        if !(0.0..=MAX_UNK_PENALTY).contains(&self.unk_penalty) {
            return Err(Error::Settings(format!(
                "unknown-word penalty {} is outside 0..={MAX_UNK_PENALTY}",
                self.unk_penalty
            )));
        }
        for (name, ms) in [
            ("word gap", self.word_gap_ms),
            ("commit delay", self.commit_delay_ms),
        ] {
            if ms > MAX_WINDOW_PART_MS {
                return Err(Error::Settings(format!(
                    "{name} of {ms} ms is longer than {MAX_WINDOW_PART_MS} ms"
                )));
            }
        }
        self.confidence.validate().map_err(Error::Settings)
    }

    /// Whether these settings decode `description`'s output with beam search.
    pub fn uses_beam_search(&self, description: &ModelDescription) -> bool {
        match self.decoder {
            Some(DecoderKind::Greedy) => false,
            Some(DecoderKind::Beam) => true,
            None => self.lm_path.is_some() || description.language_model.is_some(),
        }
    }

    /// Starts loading the language model the decoder will need for the model at
    /// `model_path` (this setting's, else the one its sidecar names) on a thread of its own,
    /// so it loads while the acoustic model does; `None` when no LM is needed or known yet.
    /// Hold the result of [`lm::Loading::wait`] until the decoder is built: then
    /// [`decoding_options`](Self::decoding_options) finds it loaded (and reports any error as
    /// it would have).
    pub fn preload_language_model(&self, model_path: &std::path::Path) -> Option<lm::Loading> {
        if self.decoder == Some(DecoderKind::Greedy) {
            return None;
        }
        let path = match &self.lm_path {
            Some(path) => path.clone(),
            None => {
                ModelDescription::resolve(model_path, &|_| None)
                    .ok()?
                    .language_model?
            }
        };
        lm::Loading::start(path)
    }

    /// The decoder to run for `description`; loads (or reuses) the language model.
    pub fn decoding_options(&self, description: &ModelDescription) -> Result<DecodingOptions> {
        self.validate()?;
        let ctc = DecoderConfig {
            confidence: self.confidence,
            ..decoder_config(description, self.word_gap_ms)
        };
        let lm_path = self
            .lm_path
            .clone()
            .or_else(|| description.language_model.clone());
        if description.units.uses_lexicon()
            && (self.decoder == Some(DecoderKind::Greedy) || lm_path.is_none())
        {
            // Greedy decoding writes labels, and phonemes are not words: only the lexicon
            // search makes words of them.
            return Err(Error::Settings(format!(
                "the model ({}) writes phonemes, which only the beam search turns into words (through its pronunciation lexicon and a language model): use decoder=beam or auto{}",
                description.source,
                if lm_path.is_none() {
                    ", and give a language model (lm-path / --lm)"
                } else {
                    ""
                }
            )));
        }
        let hotwords = self.hotwords.clone().filter(|h| !h.is_empty());
        if let (Some(list), Some(DecoderKind::Greedy)) = (&hotwords, self.decoder) {
            return Err(Error::Settings(format!(
                "hotwords ({}) need the beam search: use decoder=auto or beam (greedy decoding cannot favour phrases)",
                list.source()
            )));
        }
        let lm_path = match (self.decoder, lm_path) {
            (Some(DecoderKind::Greedy), _) => return Ok(ctc.into()),
            (None, None) if hotwords.is_none() => return Ok(ctc.into()),
            (_, None) if hotwords.is_some() => {
                return self.open_vocabulary(description, ctc, hotwords);
            }
            (Some(DecoderKind::Beam), None) => {
                return Err(Error::Settings(format!(
                    "beam-search decoding needs a word language model (ARPA) and the model description ({}) names none: give one (the element's lm-path, the client's --lm)",
                    description.source
                )));
            }
            (_, Some(path)) => path,
            (None, None) => unreachable!("no hotwords: greedy above"),
        };
        let (beam_width, lm_weight, word_bonus) = beam_settings(self, description);
        // A description's tuned values are checked like the user's.
        check_beam_settings(beam_width, lm_weight, word_bonus).map_err(|e| {
            Error::Settings(format!(
                "{e} (from the model description {})",
                description.source
            ))
        })?;
        let lexicon = self.lexicon_for(description)?;
        let lm = lm::load_shared(&lm_path)?;
        Ok(DecodingOptions {
            ctc,
            beam: Some(BeamConfig {
                lm,
                beam_width: beam_width as usize,
                lm_weight,
                word_bonus,
                unk_penalty: (self.unk_penalty < MAX_UNK_PENALTY).then_some(self.unk_penalty),
                commit_delay_frames: ms_to_frames(description, self.commit_delay_ms),
                lexicon,
                smearing: Default::default(),
                hotwords,
            }),
        })
    }

    /// The beam search without a language model, for hotwords: every word is an unknown
    /// word of an empty LM at no cost, so only the acoustics and the hotwords choose.
    fn open_vocabulary(
        &self,
        description: &ModelDescription,
        ctc: DecoderConfig,
        hotwords: Option<Arc<HotwordList>>,
    ) -> Result<DecodingOptions> {
        let (beam_width, _, _) = beam_settings(self, description);
        Ok(DecodingOptions {
            ctc,
            beam: Some(BeamConfig {
                lm: lm::empty(),
                beam_width: beam_width as usize,
                lm_weight: 0.0,
                word_bonus: 0.0,
                unk_penalty: Some(0.0),
                commit_delay_frames: ms_to_frames(description, self.commit_delay_ms),
                lexicon: None,
                smearing: Smearing::Off,
                hotwords,
            }),
        })
    }

    /// The lexicon `current` (a phoneme model's) with the words of `hotwords` it lacks added,
    /// spelled by the model's G2P (`None` when it lacks none, or for other models): what
    /// [`crate::decode::BeamSearchDecoder::set_hotwords`] takes when a list changes while a
    /// stream runs.
    pub fn lexicon_with_hotwords(
        description: &ModelDescription,
        current: &Arc<PronunciationLexicon>,
        hotwords: Option<&HotwordList>,
    ) -> Result<Option<Arc<PronunciationLexicon>>> {
        let (WordUnits::Phonemes { g2p, .. }, Some(list)) = (&description.units, hotwords) else {
            return Ok(None);
        };
        let missing = missing_hotword_words(current, list);
        if missing.is_empty() {
            return Ok(None);
        }
        // Recognisers of a process with the same list (the client's inputs one after the
        // other, several elements) share one grown copy: copying a 50,000-word lexicon and
        // adding the words takes about 0.4 s. The last few copies are kept.
        static GROWN: std::sync::Mutex<Vec<GrownLexicon>> = std::sync::Mutex::new(Vec::new());
        let mut grown = GROWN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(found) = grown
            .iter()
            .find(|g| g.words == missing && Arc::ptr_eq(&g.base, current))
        {
            return Ok(Some(Arc::clone(&found.grown)));
        }
        let mut lexicon = PronunciationLexicon::clone(current);
        add_spelled(&mut lexicon, g2p.as_deref(), &missing, list.source())?;
        let lexicon = Arc::new(lexicon);
        if grown.len() == GROWN_LEXICONS_KEPT {
            grown.remove(0);
        }
        grown.push(GrownLexicon {
            base: Arc::clone(current),
            words: missing,
            grown: Arc::clone(&lexicon),
        });
        Ok(Some(lexicon))
    }

    /// The pronunciation lexicon of a model whose words come from one (shared by every
    /// recogniser of the process), with the user's vocabulary added; `None` for character
    /// models, where a vocabulary is an error (they spell any word already).
    fn lexicon_for(
        &self,
        description: &ModelDescription,
    ) -> Result<Option<Arc<PronunciationLexicon>>> {
        let WordUnits::Phonemes {
            boundary,
            lexicon,
            g2p,
        } = &description.units
        else {
            if let Some(path) = &self.vocabulary_path {
                let units = match description.units {
                    WordUnits::Pieces(_) => "SentencePiece pieces",
                    _ => "characters",
                };
                return Err(Error::Settings(format!(
                    "vocabulary {}: the model ({}) spells words in {units}, so it has no lexicon to add words to (it can write any word already; see unk-penalty)",
                    path.display(),
                    description.source
                )));
            }
            return Ok(None);
        };
        let shared = crate::lexicon::load_shared(lexicon, &description.labels, boundary)?;
        let mut lexicon = shared;
        if let Some(path) = &self.vocabulary_path {
            if g2p.is_none() {
                return Err(Error::Settings(format!(
                    "vocabulary {}: the model description ({}) names no grapheme-to-phoneme model to spell its words",
                    path.display(),
                    description.source
                )));
            }
            let words = crate::g2p::read_word_list(path)?;
            let mut grown = PronunciationLexicon::clone(&lexicon);
            add_spelled(
                &mut grown,
                g2p.as_deref(),
                &words,
                &format!("vocabulary {}", path.display()),
            )?;
            lexicon = Arc::new(grown);
        }
        let hotwords = self.hotwords.as_deref();
        Ok(Some(
            Self::lexicon_with_hotwords(description, &lexicon, hotwords)?.unwrap_or(lexicon),
        ))
    }
}

/// A lexicon grown by a hotword list's words (see `lexicon_with_hotwords`).
struct GrownLexicon {
    base: Arc<PronunciationLexicon>,
    words: Vec<String>,
    grown: Arc<PronunciationLexicon>,
}

/// Grown lexicons kept for reuse (each a copy of the model's lexicon: tens of megabytes).
const GROWN_LEXICONS_KEPT: usize = 2;

/// The words of `list` that `lexicon` lacks (as written, unless it has them lower-cased).
fn missing_hotword_words(lexicon: &PronunciationLexicon, list: &HotwordList) -> Vec<String> {
    let mut missing: Vec<String> = list
        .hotwords()
        .iter()
        .flat_map(|h| h.words.iter())
        .filter(|w| !lexicon.contains(w) && !lexicon.contains(&w.to_lowercase()))
        .cloned()
        .collect();
    missing.sort_unstable();
    missing.dedup();
    missing
}

/// Adds `words` to `lexicon`, spelled by the G2P model `g2p`; `what` names the list in
/// errors.
fn add_spelled(
    lexicon: &mut PronunciationLexicon,
    g2p: Option<&Path>,
    words: &[String],
    what: &str,
) -> Result<()> {
    let Some(g2p) = g2p else {
        return Err(Error::Settings(format!(
            "{what}: the words {} are not in the pronunciation lexicon and the model names no grapheme-to-phoneme model to spell them",
            words.join(", ")
        )));
    };
    let spelled = crate::g2p::spell_cached(g2p, words, G2P_THREADS)?;
    for (word, tokens) in spelled {
        let spelling = lexicon_spelling(&tokens).ok_or_else(|| {
            Error::Settings(format!(
                "{what}: the word '{word}' has no spelling in the model's phonemes (its G2P gave '{}')",
                tokens.join(" ")
            ))
        })?;
        lexicon.add_word(&word, &spelling)?;
    }
    Ok(())
}

/// ONNX Runtime threads of the G2P that spells a user vocabulary (short words: one thread
/// runs them as fast as more).
const G2P_THREADS: usize = 1;

/// A G2P spelling as the lexicon holds it: the space token, which the G2P writes between the
/// phonemes of words it spells "in a foreign mode" and the acoustic model never emits inside
/// a word, removed (as `tools/phoneme/build_lexicon.py` does); `None` when nothing that
/// can be heard is left (special tokens, or nothing).
fn lexicon_spelling(tokens: &[String]) -> Option<Vec<String>> {
    const SPECIAL: [&str; 4] = ["<pad>", "<sos>", "<eos>", "<unk>"];
    if tokens.iter().any(|t| SPECIAL.contains(&t.as_str())) {
        return None;
    }
    let spelling: Vec<String> = tokens
        .iter()
        .filter(|t| t.as_str() != " ")
        .cloned()
        .collect();
    (!spelling.is_empty()).then_some(spelling)
}

/// Everything a user chooses about a recogniser; `Default` gives the documented defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct RecognizerConfig {
    /// ONNX Runtime intra-op threads (0: one per core).
    pub threads: usize,
    /// Audio before each chunk given to the model.
    pub left_context_ms: u32,
    /// Audio recognised per window.
    pub chunk_ms: u32,
    /// Audio after each chunk given to the model.
    pub right_context_ms: u32,
    /// `None`: as the model's description says.
    pub normalization: Option<NormalizationKind>,
    /// `None`: as the model's description says.
    pub padding: Option<PaddingMode>,
    /// How buffers meet the stream's start and end.
    pub edges: StreamEdges,
    /// The decoder.
    pub decoding: DecoderSettings,
}

impl Default for RecognizerConfig {
    fn default() -> Self {
        Self {
            threads: DEFAULT_THREADS,
            left_context_ms: DEFAULT_LEFT_CONTEXT_MS,
            chunk_ms: DEFAULT_CHUNK_MS,
            right_context_ms: DEFAULT_RIGHT_CONTEXT_MS,
            normalization: None,
            padding: None,
            edges: StreamEdges::default(),
            decoding: DecoderSettings::default(),
        }
    }
}

impl RecognizerConfig {
    /// The defaults, with the windows and word rules of `plan`.
    pub fn planned(plan: LatencyPlan) -> Self {
        let mut config = Self {
            left_context_ms: plan.left_context_ms,
            chunk_ms: plan.chunk_ms,
            right_context_ms: plan.right_context_ms,
            ..Self::default()
        };
        config.decoding.word_gap_ms = plan.word_gap_ms;
        config.decoding.commit_delay_ms = plan.commit_delay_ms;
        config
    }

    /// The defaults for input that is not live (a file): chunks of [`FILE_CHUNK_MS`] with
    /// [`FILE_CONTEXT_MS`] on each side and [`StreamEdges::Trimmed`] edges, so the model
    /// runs on about 8 % more audio than the file holds (the live default: 180 % more), and
    /// a file no longer than a chunk is recognised exactly as offline. Text waits for its
    /// chunk, which costs nothing when nobody waits in real time.
    pub fn for_files() -> Self {
        Self {
            left_context_ms: FILE_CONTEXT_MS,
            chunk_ms: FILE_CHUNK_MS,
            right_context_ms: FILE_CONTEXT_MS,
            edges: StreamEdges::Trimmed,
            ..Self::default()
        }
    }

    /// The defaults, with the windows, word rules and edges of `overrides` for input that is
    /// `live` or not. Input recognised as live ([`WindowOverrides::recognised_live`]) gets
    /// the plan's windows and [`StreamEdges::Silence`]; other input the file windows and
    /// edges of [`for_files`](Self::for_files), with the plan's word gap and commit delay.
    /// Callers set the rest (threads, frontend, decoder) from their own options, keeping
    /// this config's `decoding.word_gap_ms` and `decoding.commit_delay_ms`.
    pub fn for_input(overrides: &WindowOverrides, shares: &LatencyShares, live: bool) -> Self {
        let plan = overrides.plan(shares);
        let mut config = if overrides.recognised_live(live) {
            Self::planned(plan)
        } else {
            Self::for_files()
        };
        config.decoding.word_gap_ms = plan.word_gap_ms;
        config.decoding.commit_delay_ms = plan.commit_delay_ms;
        config
    }

    /// What in these settings works against recognition without being an error, for
    /// `cores` cores ([`available_cores`]): the element posts each as a warning, the client
    /// prints it.
    pub fn warnings(&self, cores: usize) -> Vec<ConfigWarning> {
        let mut warnings = Vec::new();
        let window_ms = self
            .left_context_ms
            .saturating_add(self.chunk_ms)
            .saturating_add(self.right_context_ms);
        if window_ms < MIN_WINDOW_MS {
            warnings.push(ConfigWarning::WindowTooShort { window_ms });
        }
        if self.threads > cores.max(1) {
            warnings.push(ConfigWarning::ThreadsBeyondCores {
                threads: self.threads,
                cores: cores.max(1),
            });
        }
        warnings
    }

    /// Checks every value against its documented range.
    pub fn validate(&self) -> Result<()> {
        if self.threads > MAX_THREADS {
            return Err(Error::Settings(format!(
                "{} threads is more than {MAX_THREADS}",
                self.threads
            )));
        }
        if self.chunk_ms == 0 {
            return Err(Error::Settings(
                "a chunk of 0 ms holds no audio (at least 1 ms, rounded up to an output frame)"
                    .to_string(),
            ));
        }
        for (name, ms) in [
            ("left context", self.left_context_ms),
            ("chunk", self.chunk_ms),
            ("right context", self.right_context_ms),
        ] {
            if ms > MAX_WINDOW_PART_MS {
                return Err(Error::Settings(format!(
                    "{name} of {ms} ms is longer than {MAX_WINDOW_PART_MS} ms"
                )));
            }
        }
        self.decoding.validate()
    }

    /// The frontend to run: the model's, with the user's normalisation and padding.
    pub fn frontend_for(&self, description: &ModelDescription) -> FrontendConfig {
        let mut frontend = description.frontend.clone();
        match self.normalization {
            None => {}
            Some(NormalizationKind::PerWindow) => {
                frontend.normalization = Normalization::PerFeature
            }
            // The model's own fixed statistics win over the demo's.
            Some(NormalizationKind::Fixed)
                if !matches!(frontend.normalization, Normalization::Fixed { .. }) =>
            {
                frontend.normalization = Normalization::nemo_streaming_demo();
            }
            Some(NormalizationKind::Fixed) => {}
        }
        if let Some(padding) = self.padding {
            frontend.padding = padding;
        }
        frontend
    }
}

/// The shortest window (left context, chunk and right context together) worth warning
/// about: a spoken word lasts a few hundred milliseconds and the model needs audio around it,
/// so a window under half a second holds too little to recognise one (the reason
/// [`MIN_LATENCY_MS`] is what it is, whose plan gives 1.2 s windows).
pub const MIN_WINDOW_MS: u32 = 500;

/// Settings that are valid but work against recognition (see [`RecognizerConfig::warnings`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigWarning {
    /// The window given to the model is shorter than [`MIN_WINDOW_MS`].
    WindowTooShort {
        /// Left context, chunk and right context together.
        window_ms: u32,
    },
    /// A window part the user set is not a whole number of the model's output frames, so the
    /// windows use the nearest whole number of frames ([`WindowOverrides::warnings`]).
    WindowRounded {
        /// "left context", "chunk" or "right context".
        part: &'static str,
        /// What the user set.
        asked_ms: u32,
        /// What the windows use (to the nearest ms).
        used_ms: u32,
        /// The model's output frame (to the nearest ms).
        frame_ms: u32,
    },
    /// More ONNX Runtime threads than the machine has cores.
    ThreadsBeyondCores {
        /// The threads asked for.
        threads: usize,
        /// The cores available to the process.
        cores: usize,
    },
}

impl std::fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::WindowTooShort { window_ms } => write!(
                f,
                "the model is given windows of {window_ms} ms (left context + chunk + right context), under {MIN_WINDOW_MS} ms: too little audio to recognise a word in; give a longer chunk or context, or only a latency"
            ),
            Self::WindowRounded {
                part,
                asked_ms,
                used_ms,
                frame_ms,
            } => write!(
                f,
                "a {part} of {asked_ms} ms is not a whole number of the model's {frame_ms} ms output frames: it is rounded to the nearest frame (half a frame up), {used_ms} ms"
            ),
            Self::ThreadsBeyondCores { threads, cores } => write!(
                f,
                "{threads} threads on {cores} cores: the threads beyond the cores only wait for each other and slow recognition down (0: one per core)"
            ),
        }
    }
}

/// The cores this process may run on (1 when the system does not say), what
/// [`RecognizerConfig::warnings`] compares threads with.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn ms_to_frames(description: &ModelDescription, ms: u32) -> u32 {
    let frame_ms =
        description.samples_per_output_frame() as f64 * 1000.0 / f64::from(description.sample_rate);
    (f64::from(ms) / frame_ms).round() as u32
}

/// Decoder settings with the word gap and the word length limit in output frames.
pub fn decoder_config(description: &ModelDescription, word_gap_ms: u32) -> DecoderConfig {
    let frames = |ms: u32| ms_to_frames(description, ms);
    DecoderConfig {
        word_gap_frames: frames(word_gap_ms),
        max_word_frames: frames(MAX_WORD_MS),
        ..DecoderConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_override_the_description() {
        let d = ModelDescription::default();
        let auto = RecognizerConfig::default();
        assert_eq!(auto.frontend_for(&d), d.frontend);
        let chosen = RecognizerConfig {
            normalization: Some(NormalizationKind::Fixed),
            padding: Some(PaddingMode::Zeros),
            ..RecognizerConfig::default()
        };
        let f = chosen.frontend_for(&d);
        assert_eq!(f.padding, PaddingMode::Zeros);
        assert!(
            matches!(f.normalization, Normalization::Fixed { ref mean, .. } if mean.len() == 64)
        );
        assert_eq!(decoder_config(&d, 600).word_gap_frames, 30);
    }

    #[test]
    fn the_default_windows_are_the_default_latency_plan() {
        let plan = LatencyPlan::for_latency(DEFAULT_LATENCY_MS);
        assert_eq!(RecognizerConfig::planned(plan), RecognizerConfig::default());
        // Chunk, right context, word gap and commit delay fit in the latency with room for
        // the word itself.
        for latency in [MIN_LATENCY_MS, 1000, 2000, 4000, 8000, MAX_LATENCY_MS] {
            let p = LatencyPlan::for_latency(latency);
            let used = p.chunk_ms + p.right_context_ms + p.word_gap_ms + p.commit_delay_ms;
            assert!(used * 10 <= latency * 9, "{latency} ms: {p:?}");
            assert!(RecognizerConfig::planned(p).validate().is_ok(), "{p:?}");
        }
        assert_eq!(
            LatencyPlan::for_latency(0),
            LatencyPlan::for_latency(MIN_LATENCY_MS)
        );
    }

    #[test]
    fn out_of_range_settings_are_refused() {
        assert!(RecognizerConfig::default().validate().is_ok());
        let too_long = RecognizerConfig {
            chunk_ms: MAX_WINDOW_PART_MS + 1,
            ..RecognizerConfig::default()
        };
        assert!(matches!(too_long.validate(), Err(Error::Settings(_))));
        let no_beam = DecoderSettings {
            beam_width: Some(0),
            ..DecoderSettings::default()
        };
        assert!(matches!(no_beam.validate(), Err(Error::Settings(_))));
        let nan_weight = DecoderSettings {
            lm_weight: Some(f32::NAN),
            ..DecoderSettings::default()
        };
        assert!(matches!(nan_weight.validate(), Err(Error::Settings(_))));
        let mut zero_alpha = DecoderSettings::default();
        zero_alpha.confidence.measure = zero_alpha.confidence.measure.with_alpha(0.0);
        assert!(matches!(zero_alpha.validate(), Err(Error::Settings(_))));
    }

    /// The element shows the bundled model's tuned values while its properties are unset;
    /// they must be the ones its description holds.
    #[test]
    fn the_bundled_constants_are_the_bundled_description() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../models")
            .join(crate::model::bundled::FILE_NAME);
        let d = ModelDescription::load_sidecar(&path).unwrap().unwrap();
        let settings = DecoderSettings::default();
        assert_eq!(
            beam_settings(&settings, &d),
            (BUNDLED_BEAM_WIDTH, BUNDLED_LM_WEIGHT, BUNDLED_WORD_BONUS)
        );
        // QuartzNet's description names none: the crate's defaults decode it.
        let quartznet = ModelDescription::default();
        assert_eq!(
            beam_settings(&settings, &quartznet),
            (DEFAULT_BEAM_WIDTH, DEFAULT_LM_WEIGHT, DEFAULT_WORD_BONUS)
        );
        let chosen = DecoderSettings {
            lm_weight: Some(1.5),
            ..DecoderSettings::default()
        };
        assert_eq!(beam_settings(&chosen, &d).1, 1.5);
    }

    #[test]
    fn a_model_plans_its_own_windows() {
        let shares = LatencyShares {
            left_context_ms: Some(2500),
            chunk_percent: 15,
            right_context_percent: 25,
        };
        let plan = LatencyPlan::for_model(4000, &shares);
        assert_eq!(
            (plan.left_context_ms, plan.chunk_ms, plan.right_context_ms),
            (2500, 600, 1000)
        );
        assert_eq!(plan.word_gap_ms, LatencyPlan::for_latency(4000).word_gap_ms);
        assert_eq!(
            LatencyPlan::for_model(4000, &LatencyShares::DEFAULT),
            LatencyPlan::for_latency(4000)
        );
    }

    #[test]
    fn overrides_replace_single_parts_of_the_plan() {
        let shares = LatencyShares {
            left_context_ms: Some(2500),
            chunk_percent: 15,
            right_context_percent: 25,
        };
        assert_eq!(
            WindowOverrides::default().plan(&shares),
            LatencyPlan::for_model(DEFAULT_LATENCY_MS, &shares)
        );
        let overrides = WindowOverrides {
            latency_ms: Some(2000),
            chunk_ms: Some(320),
            word_gap_ms: Some(0),
            ..WindowOverrides::default()
        };
        let planned = LatencyPlan::for_model(2000, &shares);
        assert_eq!(
            overrides.plan(&shares),
            LatencyPlan {
                chunk_ms: 320,
                word_gap_ms: 0,
                ..planned
            }
        );
        // A word gap is not a window: the windows stay automatic.
        let gap = WindowOverrides {
            word_gap_ms: Some(100),
            ..WindowOverrides::default()
        };
        assert!(gap.windows_automatic());
        assert!(!overrides.windows_automatic());
        for one in [
            WindowOverrides {
                latency_ms: Some(DEFAULT_LATENCY_MS),
                ..WindowOverrides::default()
            },
            WindowOverrides {
                left_context_ms: Some(0),
                ..WindowOverrides::default()
            },
            WindowOverrides {
                right_context_ms: Some(0),
                ..WindowOverrides::default()
            },
        ] {
            assert!(!one.windows_automatic(), "{one:?}");
            assert!(one.recognised_live(false), "{one:?}");
        }
        assert!(!gap.recognised_live(false) && gap.recognised_live(true));
    }

    /// A window part the user set that the model's output frames round is warned about; the
    /// parts the plan derives are not.
    #[test]
    fn rounded_window_parts_that_were_set_are_warned_about() {
        let quartznet = ModelDescription::default();
        let fast_conformer = ModelDescription {
            subsampling_factor: 8,
            ..ModelDescription::default()
        };
        let set = WindowOverrides {
            left_context_ms: Some(1200),
            chunk_ms: Some(1000),
            right_context_ms: Some(10),
            ..WindowOverrides::default()
        };
        assert_eq!(
            set.warnings(&quartznet),
            [ConfigWarning::WindowRounded {
                part: "right context",
                asked_ms: 10,
                used_ms: 20,
                frame_ms: 20
            }]
        );
        let warnings = set.warnings(&fast_conformer);
        assert_eq!(
            warnings,
            [
                ConfigWarning::WindowRounded {
                    part: "chunk",
                    asked_ms: 1000,
                    used_ms: 1040,
                    frame_ms: 80
                },
                ConfigWarning::WindowRounded {
                    part: "right context",
                    asked_ms: 10,
                    used_ms: 0,
                    frame_ms: 80
                }
            ]
        );
        let text = warnings[0].to_string();
        assert!(
            text.contains("chunk of 1000 ms")
                && text.contains("80 ms output frames")
                && text.contains("1040 ms"),
            "{text}"
        );
        // A latency alone: the plan's parts round silently.
        let latency = WindowOverrides {
            latency_ms: Some(3000),
            ..WindowOverrides::default()
        };
        assert_eq!(latency.warnings(&fast_conformer), []);
    }

    #[test]
    fn files_get_the_file_windows_unless_a_latency_or_window_is_set() {
        let shares = LatencyShares::DEFAULT;
        let automatic = WindowOverrides::default();
        assert_eq!(
            RecognizerConfig::for_input(&automatic, &shares, true),
            RecognizerConfig::default()
        );
        assert_eq!(
            RecognizerConfig::for_input(&automatic, &shares, false),
            RecognizerConfig::for_files()
        );
        // The word gap applies to files too, without taking their windows away.
        let gap = WindowOverrides {
            word_gap_ms: Some(0),
            ..automatic
        };
        let file = RecognizerConfig::for_input(&gap, &shares, false);
        assert_eq!(
            (file.chunk_ms, file.edges, file.decoding.word_gap_ms),
            (FILE_CHUNK_MS, StreamEdges::Trimmed, 0)
        );
        // A latency or window: a file is recognised as live input would be.
        let latency = WindowOverrides {
            latency_ms: Some(2000),
            ..automatic
        };
        let planned = RecognizerConfig::planned(LatencyPlan::for_latency(2000));
        for live in [false, true] {
            let config = RecognizerConfig::for_input(&latency, &shares, live);
            assert_eq!(config, planned, "live {live}");
            assert_eq!(config.edges, StreamEdges::Silence);
        }
        let chunk = WindowOverrides {
            chunk_ms: Some(640),
            ..automatic
        };
        let config = RecognizerConfig::for_input(&chunk, &shares, false);
        assert_eq!(
            (config.left_context_ms, config.chunk_ms, config.edges),
            (DEFAULT_LEFT_CONTEXT_MS, 640, StreamEdges::Silence)
        );
    }

    #[test]
    fn warnings_name_windows_too_short_and_threads_beyond_the_cores() {
        assert_eq!(RecognizerConfig::default().warnings(4), []);
        assert_eq!(RecognizerConfig::for_files().warnings(1), []);
        // Every plan the latency range allows is long enough.
        for latency in [MIN_LATENCY_MS, DEFAULT_LATENCY_MS, MAX_LATENCY_MS] {
            let config = RecognizerConfig::planned(LatencyPlan::for_latency(latency));
            assert_eq!(config.warnings(4), [], "{latency}");
        }
        let tiny = RecognizerConfig {
            left_context_ms: 0,
            chunk_ms: 1,
            right_context_ms: 0,
            threads: 64,
            ..RecognizerConfig::default()
        };
        let warnings = tiny.warnings(4);
        assert_eq!(
            warnings,
            [
                ConfigWarning::WindowTooShort { window_ms: 1 },
                ConfigWarning::ThreadsBeyondCores {
                    threads: 64,
                    cores: 4
                }
            ]
        );
        assert!(warnings[0].to_string().contains("1 ms"), "{}", warnings[0]);
        assert!(warnings[1].to_string().contains("64 threads on 4 cores"));
        // As many threads as cores, or ONNX Runtime's choice (0), are fine.
        for threads in [0, 4] {
            let config = RecognizerConfig {
                threads,
                ..RecognizerConfig::default()
            };
            assert_eq!(config.warnings(4), [], "{threads}");
        }
        let huge = RecognizerConfig {
            left_context_ms: u32::MAX,
            ..RecognizerConfig::default()
        };
        assert_eq!(huge.warnings(4), []);
        assert!(available_cores() >= 1);
    }

    #[test]
    fn phoneme_spellings_drop_the_space_token_and_refuse_special_tokens() {
        let tokens = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            lexicon_spelling(&tokens(&["s", " ", "t", " ", "o"])),
            Some(tokens(&["s", "t", "o"]))
        );
        assert_eq!(lexicon_spelling(&tokens(&["<unk>"])), None);
        assert_eq!(lexicon_spelling(&tokens(&[" "])), None);
        assert_eq!(lexicon_spelling(&[]), None);
    }
}

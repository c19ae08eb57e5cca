// SPDX-License-Identifier: MPL-2.0
//! Streaming CTC prefix beam search with a word n-gram language model (`docs/DECODING.md`).
//!
//! The search is DeepSpeech's `ctc_beam_search_decoder` in log space: every hypothesis is a
//! collapsed label sequence with the probability of all alignments that end in blank and of
//! those that end in its last label. How labels make words is one abstraction
//! ([`units::Units`]): characters spelled through the language model's character trie, the
//! space label between words; or phoneme tokens spelled through a pronunciation lexicon, the
//! boundary label `<wb>` between words. When a word completes (a boundary label after a
//! complete spelling, a silence of `word_gap_frames`, or the end of the stream), its score
//! gains `lm_weight * ln p_lm(word | previous words) + word_bonus`; a lexicon spelling shared
//! by several words completes as each of them. Character hypotheses follow the spelling trie
//! of the language model's vocabulary; with an unknown-word penalty they may also spell a word
//! outside it, which scores as the word `<unk>` would, less the penalty (paid as soon as the
//! spelling leaves the trie, or when a prefix that is not a word completes). Without one
//! (`unk_penalty: None`), and always with a lexicon, only vocabulary words are output, as
//! DeepSpeech does with its scorer. With smearing ([`Smearing`]), a partial spelling's score
//! also holds `lm_weight` times the best unigram log-probability of the words it may still
//! become, replaced by the word's own score when it completes (flashlight's look-ahead).
//!
//! Streaming output: a word is final once every hypothesis in the beam agrees on it, or once
//! it ended `commit_delay_frames` ago in the best hypothesis (hypotheses that disagree are
//! then dropped), so text never waits longer than that delay for the search to settle.
//! Commitment is decided frame by frame, so the result does not depend on how the frames
//! are split into `push()` calls.
//!
//! Cost: each frame expands every hypothesis by every plausible label, hundreds of
//! candidates of which only `beam_width` survive. Candidates are therefore small records
//! (parent, move, probability mass), and only the survivors are built as hypotheses, which
//! hold word ids rather than text. When every text has one spelling (labels that are
//! distinct single characters, or a lexicon), a candidate can only merge with a hypothesis
//! of the current beam, so the others' scores are final when they are made and those that
//! cannot reach the `beam_width` best are never made (`fast.rs`). Other label sets find merges
//! by hashing. Either way the result is exactly the plain search's (the tests compare the two
//! paths). Both run the one CTC transition of `transition.rs`.

mod candidates;
mod commit;
mod context;
mod fast;
#[cfg(test)]
mod hotword_tests;
mod hypothesis;
#[cfg(test)]
mod pieces_tests;
#[cfg(test)]
mod tests;
mod transition;
mod units;

use std::sync::Arc;

use super::confidence::{ConfidenceAggregation, Scorer, WordConfidence};
use super::pieces::PieceTable;
use super::{DecoderConfig, Word, check_labels, vocabulary_punctuation};
use crate::decode::hotwords::HotwordList;
use crate::error::{Error, Result};
use crate::lexicon::PronunciationLexicon;
use crate::lm::{NgramModel, WordId};
use candidates::{Candidate, Candidates, Move};
use context::{ContextGraph, ContextState};
use fast::FastPath;
use hypothesis::{Context, DoneWord, Hypothesis, Partial, score};
use transition::Row;
use units::{Lookahead, OOV, Role, Spellings, Units};

/// Labels whose log-probability is below this are not tried as extensions (ln 4.5e-5):
/// they cannot win against the beam and would multiply the work by the vocabulary size.
const MIN_TOKEN_LOGPROB: f32 = -10.0;
/// Spelling states beyond the vocabulary's trie that trigger a compaction (keeping only those
/// the beam refers to), so a long stream does not accumulate them.
const MAX_SPELLINGS: usize = 1 << 16;

/// Whether a partial word's score looks ahead to the words it may become ("LM smearing").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Smearing {
    /// [`Smearing::MaxUnigram`] with a pronunciation lexicon, [`Smearing::Off`] for
    /// characters (whose results stay those of the search without it).
    #[default]
    Auto,
    /// A partial word scores nothing until it completes.
    Off,
    /// A partial word's score holds `lm_weight` times the highest unigram log-probability
    /// (natural log) of the words its spelling may still become (for characters with unknown
    /// words allowed, at least `<unk>`'s); the word's own score replaces it when it
    /// completes. Hypotheses that spell unlikely words fall behind early, before they crowd
    /// out likelier ones (flashlight's `LexiconDecoder` with max smearing).
    MaxUnigram,
    /// [`Smearing::MaxUnigram`] with each word scored after `<s>` rather than as a unigram
    /// (the usual flashlight / torchaudio recipe, `lm.start(false)`): favours the words that
    /// start sentences; only the pruning differs, a completed word scores the same.
    MaxAfterStart,
}

/// Settings of the beam search; the language model is shared (it is large and read-only).
#[derive(Debug, Clone)]
pub struct BeamConfig {
    /// The word language model (shared: it is large and read-only).
    pub lm: Arc<NgramModel>,
    /// Hypotheses kept after each frame.
    pub beam_width: usize,
    /// Weight of the language model's natural-log probability (DeepSpeech's alpha).
    pub lm_weight: f32,
    /// Score added per word (DeepSpeech's beta), which offsets the LM's cost of every word.
    pub word_bonus: f32,
    /// Subtracted from the score of a character word outside the LM's vocabulary (scored as
    /// `<unk>`); `None`: such words are never output (only vocabulary words are spelled).
    /// Not used with a lexicon, which spells only its own words.
    pub unk_penalty: Option<f32>,
    /// A word of the best hypothesis that ended this many frames ago is output even if
    /// other hypotheses still disagree. 0 = only when all agree (and at the end).
    pub commit_delay_frames: u32,
    /// `None`: the labels are characters, the space label separates words, and words are
    /// spelled through the LM's vocabulary. `Some`: the labels are tokens (phonemes) that
    /// spell the lexicon's words, completed by its boundary label; a lexicon word the LM does
    /// not know scores as `<unk>`. The lexicon must have been read for the model's labels.
    pub lexicon: Option<Arc<PronunciationLexicon>>,
    /// LM look-ahead of partial words; the default ([`Smearing::Auto`]) uses it with a
    /// lexicon only.
    pub smearing: Smearing,
    /// Phrases to favour (`docs/DECODING.md`, *Hotwords*); `None` or an empty list: none.
    /// Each must be writable by the model: its characters among the labels' (pieces'), or,
    /// with a lexicon, its words in the lexicon.
    pub hotwords: Option<Arc<HotwordList>>,
}

/// What one frame contributes when candidates are built into hypotheses.
#[derive(Debug, Clone, Copy)]
struct Frame {
    index: u64,
    confidence: f32,
    blank_wins: bool,
}

/// Hotwords as the search uses them.
#[derive(Debug, Clone)]
struct Hot {
    graph: ContextGraph,
    /// The symbols each label spells (see [`units::Units::hot_symbols`]).
    symbols: Vec<Box<[u32]>>,
}

/// Per-frame work space, kept to reuse its allocations.
#[derive(Debug, Clone, Default)]
struct Scratch {
    candidates: Candidates,
    tried: Vec<usize>,
    fast: FastPath,
    scores: Vec<f64>,
    order: Vec<usize>,
    uses: Vec<u32>,
    /// The previous beam's storage, and word lists of hypotheses no longer in the beam.
    spare_beam: Vec<Hypothesis>,
    spare_words: Vec<Vec<DoneWord>>,
}

/// Streaming beam-search CTC decoder; the same interface as
/// [`super::GreedyCtcDecoder`].
#[derive(Debug, Clone)]
pub struct BeamSearchDecoder {
    /// The text each label spells (its own, but a piece's without `▁`).
    spelled: Vec<String>,
    /// The vocabulary's punctuation: a word opening with one is written without a space
    /// before it, as NeMo's text has it (`don 't` is `don't`).
    punctuation: Vec<char>,
    roles: Vec<Role>,
    blank: usize,
    word_gap_frames: u32,
    scorer: Scorer,
    aggregation: ConfidenceAggregation,
    config: BeamConfig,
    /// `config.lm_weight`, as the scores add it.
    lm_weight: f64,

    next_frame: u64,
    /// Consecutive frames whose most likely label is blank.
    silence: u32,
    /// Sorted best first; never empty.
    beam: Vec<Hypothesis>,
    /// Whether a word was output since the last reset (every later word is separated from
    /// the one before by one space: the search spells words, not spaces).
    started: bool,

    /// How labels make words.
    units: Units,
    /// The look-ahead of partial spellings, with smearing.
    lookahead: Option<Lookahead>,
    /// Whether each text has one spelling, which the fast path (`fast.rs`) relies on.
    /// `false`: only the general path is exact.
    fast_path: bool,
    /// The boundary label (the first, if several).
    boundary: usize,
    /// Character spelling states beyond the vocabulary's trie (unknown words).
    spellings: Spellings,
    /// The LM context after a word the LM does not know: `<unk>`, or `OOV` if the LM has
    /// none.
    unk_context: WordId,
    /// The hotword context graph, and the symbols each label adds to it.
    hot: Option<Hot>,

    scratch: Scratch,
}

impl BeamSearchDecoder {
    /// `labels` are the model's vocabulary without the blank (which is last). Without a
    /// lexicon they must include the space label, which separates the words the LM scores;
    /// with one, its boundary label separates them.
    pub fn new(labels: Vec<String>, decoder: DecoderConfig, config: BeamConfig) -> Result<Self> {
        check_labels(&labels)?;
        check_settings(&config)?;
        let (units, punctuation) = match &config.lexicon {
            None => {
                if !labels.iter().any(|l| l == " ") {
                    return Err(Error::Settings(
                        "beam search with a word language model needs a space label (\" \")".into(),
                    ));
                }
                let units = Units::characters(Arc::clone(&config.lm), config.unk_penalty);
                (units, vocabulary_punctuation(&labels))
            }
            Some(lexicon) => {
                check_lexicon(lexicon, &labels)?;
                let after_start = config.smearing == Smearing::MaxAfterStart;
                // The lexicon's words are written one space apart: its spellings are
                // phonemes, not the text's punctuation.
                let units = Units::lexicon(Arc::clone(lexicon), &config.lm, after_start);
                (units, Vec::new())
            }
        };
        Self::with_units(labels, units, punctuation, decoder, config)
    }

    /// The beam search over a sub-word model's SentencePiece `pieces` (the model's labels,
    /// blank last): a piece `▁..` ends the word being spelled and starts the next, other
    /// pieces spell on; words are spelled as characters through the LM's vocabulary, as
    /// [`Self::new`] spells them for a character model. A pronunciation lexicon does not
    /// apply (`Error::Settings`).
    pub fn with_pieces(
        pieces: &PieceTable,
        decoder: DecoderConfig,
        config: BeamConfig,
    ) -> Result<Self> {
        let labels = pieces.pieces().to_vec();
        check_labels(&labels)?;
        check_settings(&config)?;
        if config.lexicon.is_some() {
            return Err(Error::Settings(
                "a pronunciation lexicon spells phonemes; a sub-word model's words are spelled by its pieces (no lexicon)".into(),
            ));
        }
        let units = Units::pieces(pieces, Arc::clone(&config.lm), config.unk_penalty);
        let punctuation = pieces.punctuation().to_vec();
        Self::with_units(labels, units, punctuation, decoder, config)
    }

    /// The decoder of `labels` made words by `units`.
    fn with_units(
        labels: Vec<String>,
        units: Units,
        punctuation: Vec<char>,
        decoder: DecoderConfig,
        config: BeamConfig,
    ) -> Result<Self> {
        let smearing = match config.smearing {
            Smearing::Auto => config.lexicon.is_some(),
            Smearing::Off => false,
            Smearing::MaxUnigram | Smearing::MaxAfterStart => true,
        };
        let after_start = config.smearing == Smearing::MaxAfterStart;
        let lookahead = smearing.then(|| units.lookahead(&config.lm, after_start));
        let roles = units.roles(&labels);
        let boundary = roles.iter().position(|&r| r == Role::Boundary).unwrap_or(0);
        let blank = labels.len();
        let fast_path = units.one_spelling_per_text(&labels);
        let spelled = units.spelled_texts(&labels);
        let scorer = Scorer::new(decoder.confidence.measure, blank + 1).map_err(Error::Settings)?;
        let unk_context = config.lm.word_id(crate::lm::UNKNOWN).unwrap_or(OOV);
        let (units, hot) = prepare_hotwords(config.hotwords.as_deref(), units, &spelled)?;
        let spellings = Spellings::new(units.vocabulary_end().min(OOV - 1));
        let mut decoder = Self {
            spelled,
            punctuation,
            roles,
            blank,
            word_gap_frames: decoder.word_gap_frames,
            scorer,
            aggregation: decoder.confidence.aggregation,
            lm_weight: f64::from(config.lm_weight),
            config,
            next_frame: 0,
            silence: 0,
            beam: Vec::new(),
            started: false,
            units,
            lookahead,
            fast_path,
            boundary,
            spellings,
            unk_context,
            hot,
            scratch: Scratch::default(),
        };
        decoder.reset(0);
        Ok(decoder)
    }

    /// The pronunciation lexicon its words come from (phoneme models).
    pub fn lexicon(&self) -> Option<&Arc<PronunciationLexicon>> {
        self.config.lexicon.as_ref()
    }

    /// The hotword list in use.
    pub fn hotwords(&self) -> Option<&Arc<HotwordList>> {
        self.config.hotwords.as_ref()
    }

    /// Output width: labels plus blank.
    pub fn vocab_size(&self) -> usize {
        self.blank + 1
    }

    /// The stream frame the next pushed row is.
    pub fn next_frame(&self) -> u64 {
        self.next_frame
    }

    /// Forgets everything; the next pushed frame gets index `next_frame`.
    pub fn reset(&mut self, next_frame: u64) {
        self.next_frame = next_frame;
        self.silence = 0;
        self.beam = vec![self.initial()];
        self.started = false;
        self.spellings.clear();
    }

    fn initial(&self) -> Hypothesis {
        Hypothesis {
            words: Vec::new(),
            words_hash: 0,
            partial: None,
            last: self.blank,
            context: Context::new(self.config.lm.sentence_start()),
            hot: self.hot.as_ref().map_or(0, |h| h.graph.start()),
            p_blank: 0.0,
            p_label: f64::NEG_INFINITY,
            lm_score: 0.0,
        }
    }

    /// Decodes `frames` frames (`logprobs.len()` = `frames * vocab_size()`) and returns the
    /// words that became final, in order. A length mismatch decodes only whole frames.
    pub fn push(&mut self, logprobs: &[f32], frames: usize) -> Vec<Word> {
        let vocab = self.vocab_size();
        debug_assert!(frames.checked_mul(vocab) == Some(logprobs.len()));
        let n = frames.min(logprobs.len() / vocab);
        let mut out = Vec::new();
        for row in logprobs[..n * vocab].chunks_exact(vocab) {
            self.step(row);
            self.commit(&mut out);
        }
        self.separate(&mut out);
        out
    }

    /// One frame: expand every hypothesis, complete words on a long silence, keep the
    /// `beam_width` best.
    fn step(&mut self, row: &[f32]) {
        let clean = |lp: f32| {
            if lp.is_nan() {
                f64::NEG_INFINITY
            } else {
                f64::from(lp)
            }
        };
        let blank_lp = clean(row[self.blank]);
        let mut scratch = std::mem::take(&mut self.scratch);
        let tried = &mut scratch.tried;
        tried.clear();
        tried.extend(
            (0..self.blank)
                .filter(|&c| row[c] >= MIN_TOKEN_LOGPROB && self.roles[c] != Role::Ignored),
        );
        let blank_wins = tried.iter().all(|&c| row[c] < row[self.blank]);
        self.silence = if blank_wins {
            self.silence.saturating_add(1)
        } else {
            0
        };
        let frame = Frame {
            index: self.next_frame,
            confidence: self.scorer.score(row),
            blank_wins,
        };

        let next = &mut scratch.candidates;
        next.clear();
        // Words completed by this silence change the scores after expansion, so no
        // candidate may be dropped early then.
        let completes = self.word_gap_frames > 0 && self.silence == self.word_gap_frames;
        let mut spellings = std::mem::take(&mut self.spellings);
        let row = Row {
            lp: row,
            blank: blank_lp,
            tried,
        };
        if self.fast_path {
            let prune = !completes;
            self.expand_all_fast(&mut scratch.fast, row, prune, &mut spellings, next);
        } else {
            for parent in 0..self.beam.len() {
                self.expand(parent, row, &mut spellings, next);
            }
        }
        self.spellings = spellings;

        let beam = if completes {
            self.prune_after_silence(&mut scratch, frame)
        } else {
            let Scratch {
                candidates,
                scores,
                order,
                ..
            } = &mut scratch;
            scores.clear();
            scores.extend(
                candidates
                    .list
                    .iter()
                    .map(|c| score(c.p_blank, c.p_label, c.lm_score)),
            );
            best_first(scores, self.config.beam_width, order);
            self.build(&mut scratch, frame)
        };
        self.scratch = scratch;
        self.beam = self.normalize(beam);
        if self.spellings.len() > MAX_SPELLINGS {
            self.compact_spellings();
        }
        self.next_frame += 1;
    }

    /// The next beam on a frame where a silence completes words: every candidate built,
    /// completed, and the `beam_width` best kept.
    fn prune_after_silence(&mut self, scratch: &mut Scratch, frame: Frame) -> Vec<Hypothesis> {
        scratch.order.clear();
        scratch.order.extend(0..scratch.candidates.list.len());
        let hyps = self.build(scratch, frame);
        let hyps = self.complete_after_silence(hyps);
        scratch.scores.clear();
        scratch.scores.extend(hyps.iter().map(Hypothesis::score));
        best_first(&scratch.scores, self.config.beam_width, &mut scratch.order);
        let mut hyps: Vec<Option<Hypothesis>> = hyps.into_iter().map(Some).collect();
        scratch
            .order
            .iter()
            .filter_map(|&i| hyps[i].take())
            .collect()
    }

    /// Renumbers the spelling states beyond the trie, keeping only those the beam refers to.
    /// Texts keep their identity (one state per text), so the search is unchanged.
    fn compact_spellings(&mut self) {
        self.respell(None);
    }

    /// Gives every spelling state of the beam beyond the LM's trie its state for the same
    /// text under the current units, which were `old` (`None`: the same units, whose states
    /// beyond the vocabulary are renumbered to those the beam refers to).
    fn respell(&mut self, old: Option<&Units>) {
        let (Some(now), Some(before)) = (
            self.units.characters_part().cloned(),
            old.unwrap_or(&self.units).characters_part().cloned(),
        ) else {
            return;
        };
        // The LM trie's states never change; with the same units, the extension's neither.
        let keep_below = match old {
            None => self.spellings.base(),
            Some(_) => before.trie_size(),
        };
        let base = self.units.vocabulary_end();
        let old_spellings = std::mem::replace(&mut self.spellings, Spellings::new(base));
        let mut renumbered: crate::lm::FastMap<u32, u32> = crate::lm::FastMap::default();
        let spellings = &mut self.spellings;
        let mut remap = |state: u32| {
            if state < keep_below {
                return state;
            }
            *renumbered
                .entry(state)
                .or_insert_with(|| spellings.step(&now, 0, &old_spellings.text(&before, state)))
        };
        for hyp in &mut self.beam {
            if let Some(p) = hyp.partial.as_mut() {
                p.state = remap(p.state);
                p.from = p.from.map(&mut remap);
                p.word = self.units.first_word(p.state);
            }
            // Every hypothesis shares the committed words, so hashing only the uncommitted
            // ones from a common start keeps equal texts equal.
            hyp.words_hash = 0;
            for w in &mut hyp.words {
                if w.id & OOV != 0 {
                    w.id = OOV | remap(w.id & !OOV);
                }
                hyp.words_hash = hypothesis::words_hash_with(hyp.words_hash, w.id);
            }
        }
    }

    /// Builds the candidates `scratch.order` (indices into `scratch.candidates`) as
    /// hypotheses, in that order; consumes the current beam, whose last use of each
    /// hypothesis moves its words (the others' word lists are kept for reuse).
    fn build(&mut self, scratch: &mut Scratch, frame: Frame) -> Vec<Hypothesis> {
        let Scratch {
            candidates,
            order,
            uses,
            spare_beam,
            spare_words,
            ..
        } = scratch;
        let candidates = &candidates.list;
        uses.clear();
        uses.resize(self.beam.len(), 0);
        for &i in order.iter() {
            uses[candidates[i].parent] += 1;
        }
        let mut parents = std::mem::take(&mut self.beam);
        let mut built = std::mem::take(spare_beam);
        built.clear();
        built.extend(order.iter().map(|&i| {
            let candidate = &candidates[i];
            uses[candidate.parent] -= 1;
            let parent = &mut parents[candidate.parent];
            let words = if uses[candidate.parent] == 0 {
                std::mem::take(&mut parent.words)
            } else {
                let mut words = spare_words.pop().unwrap_or_default();
                words.clear();
                words.extend_from_slice(&parent.words);
                words
            };
            self.build_one(candidate, parent, words, frame)
        }));
        spare_words.extend(
            parents
                .drain(..)
                .map(|h| h.words)
                .filter(|w| w.capacity() > 0),
        );
        *spare_beam = parents;
        built
    }

    /// `candidate` as a hypothesis: `parent` moved by its step, with `words` (the parent's).
    fn build_one(
        &self,
        candidate: &Candidate,
        parent: &Hypothesis,
        words: Vec<DoneWord>,
        frame: Frame,
    ) -> Hypothesis {
        let aggregation = self.aggregation;
        let mut hyp = Hypothesis {
            words,
            words_hash: parent.words_hash,
            partial: parent.partial,
            last: parent.last,
            context: parent.context,
            hot: self.hot_after(parent.hot, candidate.step),
            p_blank: candidate.p_blank,
            p_label: candidate.p_label,
            lm_score: candidate.lm_score,
        };
        match candidate.step {
            Move::Stay => {}
            Move::Spell { label, state } => {
                hyp.last = label;
                hyp.partial = Some(self.spelled_on(parent.partial, state, label, frame));
            }
            Move::Complete { label, word } => {
                hyp.last = label;
                let partial = hyp.partial.take().expect("only a partial word completes");
                self.add_word(&mut hyp, word, partial);
            }
            Move::Restart { label, word, state } => {
                hyp.last = label;
                let partial = hyp.partial.take().expect("only a partial word completes");
                self.add_word(&mut hyp, word, partial);
                hyp.partial = Some(self.spelled_on(None, state, label, frame));
            }
        }
        if candidate.goes_on
            && let Some(p) = hyp.partial.as_mut()
        {
            p.end = frame.index + 1;
            if !frame.blank_wins {
                p.confidence.add_frame(aggregation, frame.confidence);
            }
        }
        hyp
    }

    /// The most one spelling step can raise a hypothesis's score through hotwords (the fast
    /// path's pruning bound; 0 without hotwords).
    #[inline]
    fn hot_gain(&self) -> f64 {
        self.hot.as_ref().map_or(0.0, |h| h.graph.max_gain())
    }

    /// The hotword state after `step` from `state`.
    fn hot_after(&self, state: ContextState, step: Move) -> ContextState {
        let Some(hot) = &self.hot else {
            return 0;
        };
        let g = &hot.graph;
        match step {
            Move::Stay => state,
            Move::Spell { label, .. } => g.steps(state, &hot.symbols[label]).0,
            Move::Complete { .. } => g.separate(state).0,
            Move::Restart { label, .. } => g.steps(g.separate(state).0, &hot.symbols[label]).0,
        }
    }

    /// Replaces the hotword list (`None` or empty: no hotwords) from the next frame on, and,
    /// for a lexicon, the lexicon (which must be the current one with words added, as
    /// `DecoderSettings` makes it: states and word ids keep their meaning). Every
    /// hypothesis gives back the boost of the phrase it was in the middle of and starts
    /// matching the new list at its next word.
    pub fn set_hotwords(
        &mut self,
        hotwords: Option<Arc<HotwordList>>,
        lexicon: Option<Arc<PronunciationLexicon>>,
    ) -> Result<()> {
        if let (Some(lexicon), Units::Lexicon(_)) = (&lexicon, &self.units) {
            // A lexicon's labels spell themselves: `spelled` holds the model's labels.
            check_lexicon(lexicon, &self.spelled)?;
            let after_start = self.config.smearing == Smearing::MaxAfterStart;
            let units = Units::lexicon(Arc::clone(lexicon), &self.config.lm, after_start);
            let lookahead = self
                .lookahead
                .is_some()
                .then(|| units.lookahead(&self.config.lm, after_start));
            self.units = units;
            self.lookahead = lookahead;
            self.config.lexicon = Some(Arc::clone(lexicon));
        }
        let base_units = self.units.with_words(&[]);
        let (units, hot) = prepare_hotwords(hotwords.as_deref(), base_units, &self.spelled)?;
        let before = std::mem::replace(&mut self.units, units);
        self.respell(Some(&before));
        let old = self.hot.take();
        for hyp in &mut self.beam {
            if let Some(old) = &old {
                hyp.lm_score += old.graph.finish(hyp.hot);
            }
            hyp.hot = match &hot {
                // Mid-word, a phrase can only start after the next separator (the root);
                // between words, at once.
                Some(h) if hyp.partial.is_none() => h.graph.start(),
                _ => 0,
            };
        }
        self.hot = hot;
        self.config.hotwords = hotwords;
        Ok(())
    }

    /// The partial word `partial` (`None`: a new word) spelled on to `state` by `label`,
    /// whose token this frame starts.
    fn spelled_on(
        &self,
        partial: Option<Partial>,
        state: units::SpellState,
        label: usize,
        frame: Frame,
    ) -> Partial {
        let aggregation = self.aggregation;
        // A new token on this path: the previous one ends, this frame starts it.
        let mut word = partial.map_or(WordConfidence::EMPTY, |p| p.confidence);
        word.close_token(aggregation);
        word.add_frame(aggregation, frame.confidence);
        Partial {
            state,
            word: self.units.first_word(state),
            from: partial.map(|p| p.state),
            label,
            start: partial.map_or(frame.index, |p| p.start),
            end: frame.index + 1,
            confidence: word,
        }
    }

    /// Appends the completed `partial` as `word` (its score is the caller's to add).
    fn add_word(&self, hyp: &mut Hypothesis, word: WordId, partial: Partial) {
        let keep = self.config.lm.order().saturating_sub(1).max(1);
        let context = self.units.lm_word(word).unwrap_or(self.unk_context);
        hyp.context.push(context, keep);
        hyp.words.push(DoneWord {
            id: word,
            start: partial.start,
            end: partial.end,
            confidence: partial.confidence.value(self.aggregation),
        });
        hyp.words_hash = hypothesis::words_hash_with(hyp.words_hash, word);
    }

    /// Shifts the scores of the pruned beam (best first) so the best is zero.
    fn normalize(&self, mut hyps: Vec<Hypothesis>) -> Vec<Hypothesis> {
        if hyps.is_empty() {
            // Unreachable (blank always keeps each prefix), but the beam must never be empty.
            hyps.push(self.initial());
        }
        // Keep scores near zero so hours of audio do not erode f64 precision.
        let offset = hyps[0].score();
        if offset.is_finite() {
            for h in &mut hyps {
                h.p_blank -= offset;
                h.p_label -= offset;
            }
        }
        hyps
    }
}

/// `units` with the words of `hotwords` in their vocabulary, and the context graph of
/// `hotwords` (`None` without any); or the first phrase the model cannot write.
fn prepare_hotwords(
    hotwords: Option<&HotwordList>,
    units: Units,
    spelled: &[String],
) -> Result<(Units, Option<Hot>)> {
    let Some(list) = hotwords.filter(|l| !l.is_empty()) else {
        return Ok((units, None));
    };
    let (symbols, separator) = units.hot_symbols(spelled);
    let mut phrases = Vec::with_capacity(list.len());
    let mut words: Vec<String> = Vec::new();
    let spelled_phrases =
        units
            .spell_hotwords(list.hotwords(), spelled)
            .map_err(|(hotword, reason)| {
                Error::Settings(format!(
                    "hotword list {}, line {} ({:?}): {reason}",
                    list.source(),
                    hotword.line,
                    hotword.phrase()
                ))
            })?;
    for (hotword, spellings) in list.hotwords().iter().zip(spelled_phrases) {
        for spelling in spellings {
            if units.characters_part().is_some() {
                // Text units spell words in characters: these are the words' texts.
                words.extend(spelling.iter().map(|w| {
                    w.iter()
                        .filter_map(|&c| char::from_u32(c))
                        .collect::<String>()
                }));
            }
            phrases.push(context::Spelled {
                words: spelling,
                boost_per_word: hotword.boost,
            });
        }
    }
    let units = units.with_words(&words);
    let hot = Hot {
        graph: ContextGraph::new(&phrases, separator),
        symbols,
    };
    Ok((units, Some(hot)))
}

/// Sets `order` to the indices of the `width` best `scores`, best first; equal scores in
/// index order (as a stable sort of all of them would give, without sorting all of them).
fn best_first(scores: &[f64], width: usize, order: &mut Vec<usize>) {
    let by_score = |a: &usize, b: &usize| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b));
    order.clear();
    order.extend(0..scores.len());
    if order.len() > width {
        order.select_nth_unstable_by(width - 1, by_score);
        order.truncate(width);
    }
    order.sort_unstable_by(by_score);
}

/// The numbers of the settings must be usable.
fn check_settings(config: &BeamConfig) -> Result<()> {
    if config.beam_width == 0 {
        return Err(Error::Settings("the beam width must be at least 1".into()));
    }
    for (name, value) in [
        ("LM weight", config.lm_weight),
        ("word bonus", config.word_bonus),
        ("unknown-word penalty", config.unk_penalty.unwrap_or(0.0)),
    ] {
        if !value.is_finite() {
            return Err(Error::Settings(format!(
                "the {name} must be a finite number (got {value})"
            )));
        }
    }
    if config.unk_penalty.is_some_and(|p| p < 0.0) {
        return Err(Error::Settings(
            "the unknown-word penalty must not be negative".into(),
        ));
    }
    if config.lm.vocabulary_size() >= OOV as usize || config.lm.trie_size() >= OOV as usize {
        return Err(Error::Settings(
            "the language model's vocabulary is too large for the beam search".into(),
        ));
    }
    Ok(())
}

/// The lexicon must spell in the model's labels and have words to spell.
fn check_lexicon(lexicon: &PronunciationLexicon, labels: &[String]) -> Result<()> {
    if lexicon.labels() != labels {
        return Err(Error::Settings(format!(
            "the pronunciation lexicon was read for other labels ({} labels) than the model's ({} labels)",
            lexicon.labels().len(),
            labels.len()
        )));
    }
    if lexicon.is_empty() {
        return Err(Error::Settings(
            "the pronunciation lexicon has no words".into(),
        ));
    }
    if lexicon.len() >= OOV as usize {
        return Err(Error::Settings(
            "the pronunciation lexicon has too many words for the beam search".into(),
        ));
    }
    Ok(())
}

// SPDX-License-Identifier: MPL-2.0
//! Streaming CTC prefix beam search with a word n-gram language model (`docs/DECODING.md`).
//!
//! The search is DeepSpeech's `ctc_beam_search_decoder` in log space: every hypothesis is a
//! collapsed label sequence with the probability of all alignments that end in blank and of
//! those that end in its last label. When a word completes (a space label, a silence of
//! `word_gap_frames`, or the end of the stream), its score gains
//! `lm_weight * ln p_lm(word | previous words) + word_bonus`. Hypotheses follow the spelling
//! trie of the language model's vocabulary; with an unknown-word penalty they may also spell
//! a word outside it, which scores as the word `<unk>` would, less the penalty (paid as soon
//! as the spelling leaves the trie, or when a prefix that is not a word completes). Without one (`unk_penalty: None`), only vocabulary
//! words are output, as DeepSpeech does with its scorer.
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
//! hold word ids rather than text. When every label is one distinct character (the
//! character models), a candidate can only merge with a hypothesis of the current beam, so
//! the others' scores are final when they are made and those that cannot reach the
//! `beam_width` best are never made. Other label sets find merges by hashing. Either way
//! the result is exactly the plain search's (the tests compare the two paths).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use super::confidence::{ConfidenceAggregation, Scorer, WordConfidence};
use super::{DecoderConfig, Word, check_labels};
use crate::error::{Error, Result};
use crate::lm::{FastMap, MAX_ORDER, NgramModel, TrieState, WordId};

/// Labels whose log-probability is below this are not tried as extensions (ln 4.5e-5):
/// they cannot win against the beam and would multiply the work by the vocabulary size.
const MIN_TOKEN_LOGPROB: f32 = -10.0;

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
    /// Subtracted from the score of a word outside the LM's vocabulary (scored as `<unk>`);
    /// `None`: such words are never output (only vocabulary words are spelled).
    pub unk_penalty: Option<f32>,
    /// A word of the best hypothesis that ended this many frames ago is output even if
    /// other hypotheses still disagree. 0 = only when all agree (and at the end).
    pub commit_delay_frames: u32,
}

/// A completed word of a hypothesis. The id is the text (a vocabulary word's id, or [`OOV`]
/// with the spelling state of a word outside the vocabulary), so comparing hypotheses
/// compares integers, not strings.
#[derive(Debug, Clone, Copy)]
struct DoneWord {
    id: WordId,
    start: u64,
    end: u64,
    confidence: f32,
}

/// The word being spelled by a hypothesis; its text is the trie's path to `state`.
#[derive(Debug, Clone, Copy)]
struct Partial {
    state: TrieState,
    /// The vocabulary word spelled exactly by `state`, if any (the trie's, kept at hand).
    word: Option<WordId>,
    /// The spelling before the last label (`None`: the word started with it) and that
    /// label, so the hypothesis one label shorter is found without walking the trie.
    from: Option<TrieState>,
    label: usize,
    start: u64,
    end: u64,
    /// The word's tokens on this path; a token's frames are the one that started it and
    /// those after it, while the path stays on its label, whose argmax is not blank (NeMo's
    /// `exclude_blank`, as the greedy decoder).
    confidence: WordConfidence,
}

/// Previous words for the language model, the newest last, in a fixed array so that
/// copying a hypothesis does not allocate.
#[derive(Debug, Clone, Copy)]
struct Context {
    ids: [WordId; MAX_ORDER],
    len: usize,
}

impl Context {
    fn new(first: WordId) -> Self {
        let mut ids = [0; MAX_ORDER];
        ids[0] = first;
        Self { ids, len: 1 }
    }

    fn words(&self) -> &[WordId] {
        &self.ids[..self.len]
    }

    /// Appends `word`, keeping the newest `keep` words (at least 1).
    fn push(&mut self, word: WordId, keep: usize) {
        let keep = keep.clamp(1, MAX_ORDER);
        if self.len >= keep {
            let drop = self.len + 1 - keep;
            self.ids.copy_within(drop..self.len, 0);
            self.len -= drop;
        }
        self.ids[self.len] = word;
        self.len += 1;
    }
}

#[derive(Debug, Clone)]
struct Hypothesis {
    /// Uncommitted completed words. The text of a hypothesis is these words, each followed
    /// by a space, then the partial word: two hypotheses with the same word ids and the same
    /// partial trie state spell the same label sequence and are merged.
    words: Vec<DoneWord>,
    /// Hash of every word completed since the sentence started, committed ones included
    /// (all hypotheses share those), to find equal texts quickly.
    words_hash: u64,
    partial: Option<Partial>,
    /// Last label emitted on this path (`blank` when none), for the repeat collapse.
    last: usize,
    context: Context,
    /// ln P(alignments of this prefix ending in blank / in its last label).
    p_blank: f64,
    p_label: f64,
    /// Accumulated `lm_weight * ln p_lm + word_bonus` of its words.
    lm_score: f64,
}

impl Hypothesis {
    fn acoustic(&self) -> f64 {
        log_add(self.p_blank, self.p_label)
    }

    fn score(&self) -> f64 {
        score(self.p_blank, self.p_label, self.lm_score)
    }

    fn spelling(&self) -> Option<TrieState> {
        self.partial.map(|p| p.state)
    }
}

fn score(p_blank: f64, p_label: f64, lm_score: f64) -> f64 {
    let s = log_add(p_blank, p_label) + lm_score;
    if s.is_nan() { f64::NEG_INFINITY } else { s }
}

#[inline]
fn log_add(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    if b == f64::NEG_INFINITY {
        return a;
    }
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    hi + (lo - hi).exp().ln_1p()
}

/// Word ids with this bit are words outside the vocabulary: the other bits are the word's
/// spelling state ([`Spellings`]). `OOV | 0` (the empty spelling, never a word) is the LM
/// context after such a word when the LM has no `<unk>`.
const OOV: WordId = 1 << 31;
/// Spelling states beyond the vocabulary's trie that trigger a compaction (keeping only those
/// the beam refers to), so a long stream does not accumulate them.
const MAX_SPELLINGS: usize = 1 << 16;

/// The word a partial spelling completes as: its vocabulary word, or (with unknown words
/// allowed) the unknown word spelled by its state.
fn completion(partial: &Partial, unknown: bool) -> Option<WordId> {
    partial
        .word
        .or((unknown && partial.state != 0).then_some(OOV | partial.state))
}

/// Spelling states: the LM's trie (states below `base`), continued by states of the decoder's
/// own for spellings that no vocabulary word starts with. A text has exactly one state: its
/// longest prefix in the trie, then one state per further character.
#[derive(Debug, Clone, Default)]
struct Spellings {
    base: TrieState,
    edges: FastMap<(TrieState, char), TrieState>,
    /// Parent and character of state `base + i`.
    nodes: Vec<(TrieState, char)>,
}

impl Spellings {
    fn new(base: TrieState) -> Self {
        Self {
            base,
            ..Self::default()
        }
    }

    fn clear(&mut self) {
        self.edges.clear();
        self.nodes.clear();
    }

    /// `from` extended by `text` within the vocabulary's trie, if it stays there.
    fn in_trie(&self, lm: &NgramModel, from: TrieState, text: &str) -> Option<TrieState> {
        if from >= self.base {
            return None;
        }
        lm.trie_step(from, text)
    }

    /// `from` extended by `text`, leaving the trie where the vocabulary does.
    fn step(&mut self, lm: &NgramModel, mut state: TrieState, text: &str) -> TrieState {
        let mut buffer = [0u8; 4];
        for c in text.chars() {
            if state < self.base
                && let Some(next) = lm.trie_step(state, c.encode_utf8(&mut buffer))
            {
                state = next;
                continue;
            }
            let fresh = self.base + self.nodes.len() as TrieState;
            state = *self.edges.entry((state, c)).or_insert_with(|| {
                self.nodes.push((state, c));
                fresh
            });
        }
        state
    }

    fn text(&self, lm: &NgramModel, mut state: TrieState) -> String {
        let mut tail = Vec::new();
        while state >= self.base {
            let Some(&(parent, c)) = self.nodes.get((state - self.base) as usize) else {
                break;
            };
            tail.push(c);
            state = parent;
        }
        let mut text = lm.trie_text(state);
        text.extend(tail.iter().rev());
        text
    }
}

/// One multiply-fold step of a hash: equal inputs give equal outputs, near ones far apart.
#[inline]
fn mix(hash: u64, value: u64) -> u64 {
    let product = u128::from(hash ^ value) * 0x9e37_79b9_7f4a_7c15_u128;
    (product as u64) ^ ((product >> 64) as u64)
}

fn words_hash_with(hash: u64, word: WordId) -> u64 {
    mix(hash, u64::from(word))
}

/// Hash of a text: its words and its partial word's trie state.
fn text_hash(words_hash: u64, spelling: Option<TrieState>) -> u64 {
    mix(
        words_hash.rotate_left(29),
        spelling.map_or(0, |s| u64::from(s) + 1),
    )
}

/// How a candidate of the next beam comes from a hypothesis of the current one.
#[derive(Debug, Clone, Copy)]
enum Move {
    /// The hypothesis itself: a blank, its last label again, or a space between words.
    Stay,
    /// A letter label extends its partial word to `state`.
    Spell { label: usize, state: TrieState },
    /// A space label completes its partial word as `word`.
    Complete { label: usize, word: WordId },
}

/// A hypothesis of the next beam before it is built (most are pruned unbuilt).
#[derive(Debug, Clone, Copy)]
struct Candidate {
    /// Index in the current beam of the hypothesis that made it first (merged ones only
    /// add their mass, as in the search this reproduces).
    parent: usize,
    step: Move,
    /// The next candidate with the same hash (`usize::MAX`: none).
    next_same: usize,
    p_blank: f64,
    p_label: f64,
    lm_score: f64,
    /// A hypothesis's own label went on in this frame and merged here: its partial word's
    /// token gains the frame. A candidate receives at most one such merge (each text of the
    /// current beam is one hypothesis), so a flag says it all.
    goes_on: bool,
}

/// The next beam's candidates, in the order they were made, and their index by text.
#[derive(Debug, Clone, Default)]
struct Candidates {
    list: Vec<Candidate>,
    by_hash: FastMap<u64, usize>,
}

impl Candidates {
    /// Adds a candidate with no mass yet, not indexed by text (the caller knows no other
    /// candidate spells it); returns its index.
    fn push(&mut self, parent: usize, step: Move, lm_score: f64) -> usize {
        self.list.push(Candidate {
            parent,
            step,
            next_same: usize::MAX,
            p_blank: f64::NEG_INFINITY,
            p_label: f64::NEG_INFINITY,
            lm_score,
            goes_on: false,
        });
        self.list.len() - 1
    }

    fn clear(&mut self) {
        self.list.clear();
        self.by_hash.clear();
    }

    /// The candidate that spells the same text as `parent` moved by `step`, made if there is
    /// none yet with `lm_score()` (called only then: it may query the language model).
    fn slot(
        &mut self,
        beam: &[Hypothesis],
        parent: usize,
        step: Move,
        lm_score: impl FnOnce() -> f64,
    ) -> usize {
        let from = &beam[parent];
        let hash = match step {
            Move::Stay => text_hash(from.words_hash, from.spelling()),
            Move::Spell { state, .. } => text_hash(from.words_hash, Some(state)),
            Move::Complete { word, .. } => text_hash(words_hash_with(from.words_hash, word), None),
        };
        let new = self.list.len();
        match self.by_hash.entry(hash) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(new);
            }
            std::collections::hash_map::Entry::Occupied(e) => {
                let mut i = *e.get();
                loop {
                    if same_text(beam, &self.list[i], parent, step) {
                        return i;
                    }
                    if self.list[i].next_same == usize::MAX {
                        break;
                    }
                    i = self.list[i].next_same;
                }
                self.list[i].next_same = new;
            }
        }
        self.list.push(Candidate {
            parent,
            step,
            next_same: usize::MAX,
            p_blank: f64::NEG_INFINITY,
            p_label: f64::NEG_INFINITY,
            lm_score: lm_score(),
            goes_on: false,
        });
        new
    }
}

/// The words and partial word a candidate would have: the parent's words, one more if the
/// move completes a word, and the spelling state.
fn text_of(
    beam: &[Hypothesis],
    parent: usize,
    step: Move,
) -> (&[DoneWord], Option<WordId>, Option<TrieState>) {
    let from = &beam[parent];
    match step {
        Move::Stay => (&from.words, None, from.spelling()),
        Move::Spell { state, .. } => (&from.words, None, Some(state)),
        Move::Complete { word, .. } => (&from.words, Some(word), None),
    }
}

/// Whether `candidate` spells the same text as `parent` moved by `step` (exactly: hashes
/// only narrow the search).
fn same_text(beam: &[Hypothesis], candidate: &Candidate, parent: usize, step: Move) -> bool {
    let (a_words, a_more, a_state) = text_of(beam, candidate.parent, candidate.step);
    let (b_words, b_more, b_state) = text_of(beam, parent, step);
    a_state == b_state
        && a_words.len() + usize::from(a_more.is_some())
            == b_words.len() + usize::from(b_more.is_some())
        && a_words
            .iter()
            .map(|w| w.id)
            .chain(a_more)
            .eq(b_words.iter().map(|w| w.id).chain(b_more))
}

/// The label index of each character, if every label is one character and no two are the
/// same.
fn single_letters(labels: &[String]) -> Option<FastMap<char, usize>> {
    let mut letters = FastMap::default();
    for (i, label) in labels.iter().enumerate() {
        let mut chars = label.chars();
        let (Some(c), None) = (chars.next(), chars.next()) else {
            return None;
        };
        if letters.insert(c, i).is_some() {
            return None;
        }
    }
    Some(letters)
}

/// Which hypotheses of the current beam spell another one's text plus one label, and the
/// candidate each one's text has in the next beam so far.
#[derive(Debug, Clone, Default)]
struct Links {
    /// (parent, label, child), sorted.
    edges: Vec<(usize, usize, usize)>,
    /// `edges[start[p]..start[p + 1]]` are parent `p`'s.
    start: Vec<usize>,
    /// The candidate spelling hypothesis `k`'s text, once made.
    slot: Vec<Option<usize>>,
    /// (text hash, index) of every hypothesis, sorted.
    texts: Vec<(u64, usize)>,
}

impl Links {
    /// Finds the links of `beam`, whose labels must be distinct single characters (then
    /// the text one label shorter than a partial word's is its `from` spelling); `space`
    /// is the space label.
    fn find(&mut self, beam: &[Hypothesis], space: usize, unknown: bool) {
        self.texts.clear();
        self.texts.extend(
            beam.iter()
                .enumerate()
                .map(|(k, h)| (text_hash(h.words_hash, h.spelling()), k)),
        );
        self.texts.sort_unstable();
        self.edges.clear();
        for (k, hyp) in beam.iter().enumerate() {
            // Spelled from the text one letter shorter.
            let Some(Partial {
                from: spelling,
                label,
                ..
            }) = hyp.partial
            else {
                continue;
            };
            let parent = self.lookup(beam, text_hash(hyp.words_hash, spelling), |q| {
                q.spelling() == spelling && same_ids(&q.words, &hyp.words, None)
            });
            if let Some(parent) = parent {
                self.edges.push((parent, label, k));
            }
        }
        for (p, hyp) in beam.iter().enumerate() {
            // Completed by a space.
            let Some(word) = hyp.partial.and_then(|x| completion(&x, unknown)) else {
                continue;
            };
            let hash = text_hash(words_hash_with(hyp.words_hash, word), None);
            let child = self.lookup(beam, hash, |q| {
                q.partial.is_none() && same_ids(&q.words, &hyp.words, Some(word))
            });
            if let Some(child) = child {
                self.edges.push((p, space, child));
            }
        }
        self.edges.sort_unstable();
        self.start.clear();
        let mut e = 0;
        for p in 0..=beam.len() {
            while e < self.edges.len() && self.edges[e].0 < p {
                e += 1;
            }
            self.start.push(e);
        }
        self.slot.clear();
        self.slot.resize(beam.len(), None);
    }

    /// The hypothesis whose text has `hash` and satisfies `is`.
    fn lookup(
        &self,
        beam: &[Hypothesis],
        hash: u64,
        is: impl Fn(&Hypothesis) -> bool,
    ) -> Option<usize> {
        let first = self.texts.partition_point(|&(h, _)| h < hash);
        self.texts[first..]
            .iter()
            .take_while(|&&(h, _)| h == hash)
            .map(|&(_, k)| k)
            .find(|&k| is(&beam[k]))
    }

    /// The labels that extend `parent` to another hypothesis's text.
    fn labels(&self, parent: usize) -> impl Iterator<Item = usize> + '_ {
        self.edges[self.start[parent]..self.start[parent + 1]]
            .iter()
            .map(|e| e.1)
    }

    /// The hypothesis whose text is `parent`'s plus `label`.
    fn child(&self, parent: usize, label: usize) -> Option<usize> {
        self.edges[self.start[parent]..self.start[parent + 1]]
            .iter()
            .find(|e| e.1 == label)
            .map(|e| e.2)
    }
}

/// Whether `a` has the same word ids as `b` followed by `more`.
fn same_ids(a: &[DoneWord], b: &[DoneWord], more: Option<WordId>) -> bool {
    a.len() == b.len() + usize::from(more.is_some())
        && a.iter()
            .map(|w| w.id)
            .eq(b.iter().map(|w| w.id).chain(more))
}

/// A score ordered by `total_cmp`, for the heap.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Ranked(f64);

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The `width`-th best of lower bounds of distinct candidates' final scores, so at least
/// `width` candidates end at or above it.
#[derive(Debug, Clone, Default)]
struct Floor {
    width: usize,
    best: BinaryHeap<Reverse<Ranked>>,
}

impl Floor {
    /// Forgets all bounds; with `width` 0 the floor stays at minus infinity.
    fn reset(&mut self, width: usize) {
        self.width = width;
        self.best.clear();
    }

    fn add(&mut self, bound: f64) {
        if self.width == 0 {
            return;
        }
        if self.best.len() < self.width {
            self.best.push(Reverse(Ranked(bound)));
        } else if self.best.peek().is_some_and(|low| bound > low.0.0) {
            self.best.pop();
            self.best.push(Reverse(Ranked(bound)));
        }
    }

    /// Scores below this cannot be among the `width` best.
    fn value(&self) -> f64 {
        match self.best.peek() {
            Some(low) if self.best.len() == self.width => low.0.0,
            _ => f64::NEG_INFINITY,
        }
    }
}

/// What one frame contributes when candidates are built into hypotheses.
#[derive(Debug, Clone, Copy)]
struct Frame {
    index: u64,
    confidence: f32,
    blank_wins: bool,
}

/// Streaming beam-search CTC decoder; the same interface as
/// [`super::GreedyCtcDecoder`].
#[derive(Debug, Clone)]
pub struct BeamSearchDecoder {
    labels: Vec<String>,
    is_space: Vec<bool>,
    blank: usize,
    word_gap_frames: u32,
    scorer: Scorer,
    aggregation: ConfidenceAggregation,
    config: BeamConfig,

    next_frame: u64,
    /// Consecutive frames whose most likely label is blank.
    silence: u32,
    /// Sorted best first; never empty.
    beam: Vec<Hypothesis>,
    /// Whether a word was output since the last reset (every later word is separated from
    /// the one before by one space: the search spells words, not spaces).
    started: bool,

    /// Each label's index by its character, when every label is one character and no two
    /// are the same: then a text can only be reached from one hypothesis by one label, which
    /// the fast path (`expand_single`) relies on. `None`: only the general path is exact.
    letters: Option<FastMap<char, usize>>,
    /// The space label (the first, if several).
    space: usize,
    /// Spelling states, the vocabulary's trie continued for unknown words.
    spellings: Spellings,
    /// Whether unknown words may be spelled (`config.unk_penalty` is set), and its value.
    unknown: bool,
    unk_penalty: f64,
    /// The LM context after an unknown word: `<unk>`, or `OOV` if the LM has none.
    unk_context: WordId,
    /// States below this are the vocabulary trie's (the spelling of a word that is not in
    /// the vocabulary but is a prefix of one has not paid the unknown-word penalty yet).
    trie_size: TrieState,

    /// Per-frame work space, kept to reuse its allocations.
    candidates: Candidates,
    tried: Vec<usize>,
    links: Links,
    floor: Floor,
    by_prob: Vec<usize>,
    visit: Vec<usize>,
}

impl BeamSearchDecoder {
    /// `labels` are the model's vocabulary without the blank (which is last); they must
    /// include the space label, which separates the words the LM scores.
    pub fn new(labels: Vec<String>, decoder: DecoderConfig, config: BeamConfig) -> Result<Self> {
        check_labels(&labels)?;
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
        let is_space: Vec<bool> = labels.iter().map(|l| l == " ").collect();
        if !is_space.contains(&true) {
            return Err(Error::Settings(
                "beam search with a word language model needs a space label (\" \")".into(),
            ));
        }
        let blank = labels.len();
        let space = is_space.iter().position(|&s| s).unwrap_or(0);
        let letters = single_letters(&labels);
        let scorer = Scorer::new(decoder.confidence.measure, blank + 1).map_err(Error::Settings)?;
        let trie_size = config.lm.trie_size() as TrieState;
        let spellings = Spellings::new(trie_size);
        let unknown = config.unk_penalty.is_some();
        let unk_penalty = f64::from(config.unk_penalty.unwrap_or(0.0));
        let unk_context = config.lm.word_id(crate::lm::UNKNOWN).unwrap_or(OOV);
        let mut decoder = Self {
            labels,
            is_space,
            blank,
            word_gap_frames: decoder.word_gap_frames,
            scorer,
            aggregation: decoder.confidence.aggregation,
            config,
            next_frame: 0,
            silence: 0,
            beam: Vec::new(),
            started: false,
            letters,
            space,
            spellings,
            unknown,
            unk_penalty,
            unk_context,
            trie_size,
            candidates: Candidates::default(),
            tried: Vec::new(),
            links: Links::default(),
            floor: Floor::default(),
            by_prob: Vec::new(),
            visit: Vec::new(),
        };
        decoder.reset(0);
        Ok(decoder)
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

    /// The first word output after a reset has no separator before it.
    fn separate(&mut self, words: &mut [Word]) {
        if let Some(first) = words.first_mut()
            && !self.started
        {
            first.spaces_before = 0;
            self.started = true;
        }
    }

    /// The best hypothesis's words that are not final yet (they may still change), each
    /// with its own times; the last may still be being spoken.
    pub fn pending(&self) -> Vec<Word> {
        let best = &self.beam[0];
        let mut words: Vec<Word> = best.words.iter().map(|w| self.done_word(w)).collect();
        if let Some(p) = &best.partial {
            words.push(self.partial_word(p));
        }
        if let Some(first) = words.first_mut()
            && !self.started
        {
            first.spaces_before = 0;
        }
        words
    }

    /// The earliest frame at which any hypothesis has text that is not final: words output
    /// later can start no earlier, so time before it is settled.
    pub fn unsettled_from(&self) -> Option<u64> {
        self.beam
            .iter()
            .filter_map(|h| {
                h.words
                    .first()
                    .map(|w| w.start)
                    .or(h.partial.as_ref().map(|p| p.start))
            })
            .min()
    }

    /// End of stream or segment: ends every hypothesis with `</s>`, returns the best one's
    /// remaining words and starts a new sentence. The frame counter continues.
    pub fn finish(&mut self) -> Vec<Word> {
        let end = self.config.lm.sentence_end();
        let weight = f64::from(self.config.lm_weight);
        let mut best: Option<(f64, Hypothesis)> = None;
        let beam = std::mem::take(&mut self.beam);
        let fallback = beam.first().cloned().unwrap_or_else(|| self.initial());
        for hyp in beam {
            let Some(mut done) = self.complete_partial(hyp) else {
                continue;
            };
            done.lm_score +=
                weight * f64::from(self.config.lm.log_prob(done.context.words(), Some(end)));
            let score = done.score();
            if best.as_ref().is_none_or(|(s, _)| score > *s) {
                best = Some((score, done));
            }
        }
        let mut words: Vec<Word> = match best {
            Some((_, hyp)) => hyp.words.iter().map(|w| self.done_word(w)).collect(),
            // No hypothesis ends in a whole word (the stream stopped mid-word): output the
            // best one as it stands rather than lose what was heard.
            None => {
                let mut words: Vec<Word> =
                    fallback.words.iter().map(|w| self.done_word(w)).collect();
                if let Some(p) = &fallback.partial {
                    words.push(self.partial_word(p));
                }
                words
            }
        };
        self.separate(&mut words);
        let next = self.next_frame;
        self.reset(next);
        words
    }

    /// Completes the hypothesis's partial word as if a space followed. `None` if the partial
    /// text is not a vocabulary word (only a prefix of one).
    fn complete_partial(&self, mut hyp: Hypothesis) -> Option<Hypothesis> {
        let Some(partial) = hyp.partial.take() else {
            return Some(hyp);
        };
        let word = completion(&partial, self.unknown)?;
        hyp.lm_score += self.word_score(&hyp.context, word);
        self.add_word(&mut hyp, word, partial);
        Some(hyp)
    }

    /// `lm_weight * ln p_lm(word | context) + word_bonus`; an unknown word scores as
    /// `<unk>`, less the unknown-word penalty unless its spelling paid it on leaving the trie.
    fn word_score(&self, context: &Context, word: WordId) -> f64 {
        let known = word & OOV == 0;
        let logp = self
            .config
            .lm
            .log_prob(context.words(), known.then_some(word));
        let penalty = if !known && word & !OOV < self.trie_size {
            self.unk_penalty
        } else {
            0.0
        };
        f64::from(self.config.lm_weight) * f64::from(logp) + f64::from(self.config.word_bonus)
            - penalty
    }

    /// Appends the completed `partial` as `word` (its score is the caller's to add).
    fn add_word(&self, hyp: &mut Hypothesis, word: WordId, partial: Partial) {
        let keep = self.config.lm.order().saturating_sub(1).max(1);
        let context = if word & OOV == 0 {
            word
        } else {
            self.unk_context
        };
        hyp.context.push(context, keep);
        hyp.words.push(DoneWord {
            id: word,
            start: partial.start,
            end: partial.end,
            confidence: partial.confidence.value(self.aggregation),
        });
        hyp.words_hash = words_hash_with(hyp.words_hash, word);
    }

    fn step(&mut self, row: &[f32]) {
        let clean = |lp: f32| {
            if lp.is_nan() {
                f64::NEG_INFINITY
            } else {
                f64::from(lp)
            }
        };
        let blank_lp = clean(row[self.blank]);
        let mut tried = std::mem::take(&mut self.tried);
        tried.clear();
        tried.extend((0..self.blank).filter(|&c| row[c] >= MIN_TOKEN_LOGPROB));
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

        let mut next = std::mem::take(&mut self.candidates);
        next.clear();
        // Words completed by this silence change the scores after expansion, so no
        // candidate may be dropped early then.
        let completes = self.word_gap_frames > 0 && self.silence == self.word_gap_frames;
        let mut spellings = std::mem::take(&mut self.spellings);
        if self.letters.is_some() {
            self.expand_all_single(row, blank_lp, &tried, !completes, &mut spellings, &mut next);
        } else {
            for parent in 0..self.beam.len() {
                self.expand(parent, row, blank_lp, &tried, &mut spellings, &mut next);
            }
        }
        self.spellings = spellings;
        self.tried = tried;

        let beam = if completes {
            let all: Vec<usize> = (0..next.list.len()).collect();
            let hyps = self.build(&next.list, &all, frame);
            let hyps = self.complete_after_silence(hyps);
            let scores: Vec<f64> = hyps.iter().map(Hypothesis::score).collect();
            let best = self.best_first(&scores);
            let mut hyps: Vec<Option<Hypothesis>> = hyps.into_iter().map(Some).collect();
            best.iter().filter_map(|&i| hyps[i].take()).collect()
        } else {
            let scores: Vec<f64> = next
                .list
                .iter()
                .map(|c| score(c.p_blank, c.p_label, c.lm_score))
                .collect();
            let best = self.best_first(&scores);
            self.build(&next.list, &best, frame)
        };
        self.candidates = next;
        self.beam = self.normalize(beam);
        if self.spellings.nodes.len() > MAX_SPELLINGS {
            self.compact_spellings();
        }
        self.next_frame += 1;
    }

    /// Renumbers the spelling states beyond the trie, keeping only those the beam refers to.
    /// Texts keep their identity (one state per text), so the search is unchanged.
    fn compact_spellings(&mut self) {
        let lm = Arc::clone(&self.config.lm);
        let old = std::mem::replace(&mut self.spellings, Spellings::new(self.trie_size));
        let mut renumbered: FastMap<TrieState, TrieState> = FastMap::default();
        let spellings = &mut self.spellings;
        let mut remap = |state: TrieState| {
            if state < old.base {
                return state;
            }
            *renumbered
                .entry(state)
                .or_insert_with(|| spellings.step(&lm, 0, &old.text(&lm, state)))
        };
        for hyp in &mut self.beam {
            if let Some(p) = hyp.partial.as_mut() {
                p.state = remap(p.state);
                p.from = p.from.map(&mut remap);
            }
            // Every hypothesis shares the committed words, so hashing only the uncommitted
            // ones from a common start keeps equal texts equal.
            hyp.words_hash = 0;
            for w in &mut hyp.words {
                if w.id & OOV != 0 {
                    w.id = OOV | remap(w.id & !OOV);
                }
                hyp.words_hash = words_hash_with(hyp.words_hash, w.id);
            }
        }
    }

    /// Adds the candidates that hypothesis `parent` makes in this frame (DeepSpeech's prefix
    /// beam search step), merging those that spell a text already made.
    fn expand(
        &self,
        parent: usize,
        row: &[f32],
        blank_lp: f64,
        tried: &[usize],
        spellings: &mut Spellings,
        next: &mut Candidates,
    ) {
        let hyp = &self.beam[parent];
        let lm = &self.config.lm;
        let total = hyp.acoustic();
        // Mass that stays on this prefix: a blank, a space before any letter of a word
        // (which changes nothing), or the last label again (the same token going on).
        let stay_blank = total + blank_lp;
        let mut stay_label = f64::NEG_INFINITY;
        let mut token_goes_on = false;
        for &c in tried {
            let lp = f64::from(row[c]);
            if self.is_space[c] {
                let Some(partial) = &hyp.partial else {
                    stay_label = log_add(stay_label, total + lp);
                    continue;
                };
                let Some(word) = completion(partial, self.unknown) else {
                    continue; // not a vocabulary word
                };
                let step = Move::Complete { label: c, word };
                let i = next.slot(&self.beam, parent, step, || {
                    hyp.lm_score + self.word_score(&hyp.context, word)
                });
                next.list[i].p_label = log_add(next.list[i].p_label, total + lp);
                continue;
            }
            let extend = if c == hyp.last {
                // The same label again without a blank between is the same token.
                stay_label = log_add(stay_label, hyp.p_label + lp);
                token_goes_on = true;
                hyp.p_blank + lp
            } else {
                total + lp
            };
            if extend == f64::NEG_INFINITY {
                continue;
            }
            let from = hyp.partial.as_ref().map_or(lm.trie_root(), |p| p.state);
            let (state, lm_score) = match spellings.in_trie(lm, from, &self.labels[c]) {
                Some(state) => (state, hyp.lm_score),
                None if self.unknown => {
                    // Leaving the trie pays the unknown-word penalty (once: beyond it, on).
                    let penalty = if from < spellings.base {
                        self.unk_penalty
                    } else {
                        0.0
                    };
                    let state = spellings.step(lm, from, &self.labels[c]);
                    (state, hyp.lm_score - penalty)
                }
                None => continue, // no vocabulary word is spelled this way
            };
            let step = Move::Spell { label: c, state };
            let i = next.slot(&self.beam, parent, step, || lm_score);
            next.list[i].p_label = log_add(next.list[i].p_label, extend);
        }
        // The hypothesis itself moves on (or merges into an extension of another one
        // that spells the same text).
        let i = next.slot(&self.beam, parent, Move::Stay, || hyp.lm_score);
        let entry = &mut next.list[i];
        entry.p_blank = log_add(entry.p_blank, stay_blank);
        entry.p_label = log_add(entry.p_label, stay_label);
        entry.goes_on |= token_goes_on;
    }

    /// [`Self::expand`] for every hypothesis when every label is one distinct character.
    /// Then a candidate can only spell the same text as another if that text is a
    /// hypothesis of the current beam (`Links`), so every other candidate's score is final
    /// when it is made, and one below the `beam_width` best scores seen so far (`Floor`)
    /// can be skipped: it could not survive pruning. With `prune` false, none is skipped.
    fn expand_all_single(
        &mut self,
        row: &[f32],
        blank_lp: f64,
        tried: &[usize],
        prune: bool,
        spellings: &mut Spellings,
        next: &mut Candidates,
    ) {
        let mut links = std::mem::take(&mut self.links);
        let mut floor = std::mem::take(&mut self.floor);
        links.find(&self.beam, self.space, self.unknown);
        floor.reset(if prune { self.config.beam_width } else { 0 });
        // Each hypothesis's own text gets at least its blank mass: a lower bound of that
        // candidate's final score (its LM score is the hypothesis's, the same words).
        for hyp in &self.beam {
            floor.add(score(
                hyp.acoustic() + blank_lp,
                f64::NEG_INFINITY,
                hyp.lm_score,
            ));
        }
        let mut by_prob = std::mem::take(&mut self.by_prob);
        by_prob.clear();
        by_prob.extend_from_slice(tried);
        by_prob.sort_unstable_by(|&a, &b| row[b].total_cmp(&row[a]));
        let mut visit = std::mem::take(&mut self.visit);
        for parent in 0..self.beam.len() {
            self.labels_to_visit(parent, row, &by_prob, &links, floor.value(), &mut visit);
            self.expand_single(
                parent,
                row,
                blank_lp,
                &visit,
                (&mut links, &mut floor, spellings),
                next,
            );
        }
        self.by_prob = by_prob;
        self.visit = visit;
        self.links = links;
        self.floor = floor;
    }

    /// The labels of `by_prob` (this frame's tried labels, most likely first) that
    /// hypothesis `parent` must try, in label order: those whose extension could reach
    /// `floor`, and those that do more than make a candidate of their own (a space, its
    /// last label again, a label that spells another hypothesis). The others would make
    /// candidates scored below the floor, which `expand_single` would skip.
    fn labels_to_visit(
        &self,
        parent: usize,
        row: &[f32],
        by_prob: &[usize],
        links: &Links,
        floor: f64,
        visit: &mut Vec<usize>,
    ) {
        let hyp = &self.beam[parent];
        let total = hyp.acoustic();
        visit.clear();
        for &c in by_prob {
            // The same sum as that candidate's score, so the comparison is the same.
            if total + f64::from(row[c]) + hyp.lm_score < floor {
                break;
            }
            visit.push(c);
        }
        let tried = |c: usize| c < self.blank && row[c] >= MIN_TOKEN_LOGPROB;
        let special = [self.space, hyp.last]
            .into_iter()
            .chain(links.labels(parent))
            .filter(|&c| tried(c));
        visit.extend(special);
        visit.sort_unstable();
        visit.dedup();
    }

    /// [`Self::expand`] for one hypothesis on the fast path (see
    /// [`Self::expand_all_single`]): the same candidates in the same order with the same
    /// masses, less those that cannot survive.
    #[allow(clippy::too_many_arguments)]
    fn expand_single(
        &self,
        parent: usize,
        row: &[f32],
        blank_lp: f64,
        tried: &[usize],
        (links, floor, spellings): (&mut Links, &mut Floor, &mut Spellings),
        next: &mut Candidates,
    ) {
        let hyp = &self.beam[parent];
        let lm = &self.config.lm;
        let total = hyp.acoustic();
        let stay_blank = total + blank_lp;
        let mut stay_label = f64::NEG_INFINITY;
        let mut token_goes_on = false;
        for &c in tried {
            let lp = f64::from(row[c]);
            let (step, mass, lm_score) = if self.is_space[c] {
                let Some(partial) = &hyp.partial else {
                    stay_label = log_add(stay_label, total + lp);
                    continue;
                };
                let Some(word) = completion(partial, self.unknown) else {
                    continue; // not a vocabulary word
                };
                let lm_score = hyp.lm_score + self.word_score(&hyp.context, word);
                (Move::Complete { label: c, word }, total + lp, lm_score)
            } else {
                let extend = if c == hyp.last {
                    stay_label = log_add(stay_label, hyp.p_label + lp);
                    token_goes_on = true;
                    hyp.p_blank + lp
                } else {
                    total + lp
                };
                if extend == f64::NEG_INFINITY {
                    continue;
                }
                // The trie state is looked up only for a candidate that is kept.
                (Move::Spell { label: c, state: 0 }, extend, hyp.lm_score)
            };
            let i = match links.child(parent, c) {
                Some(child) => match links.slot[child] {
                    Some(i) => i,
                    None => {
                        // The child spells this text: its state, and its LM score (which
                        // includes the unknown-word penalty if this label left the trie).
                        let (step, lm_score) = match step {
                            Move::Spell { label, .. } => (
                                Move::Spell {
                                    label,
                                    state: self.beam[child].spelling().unwrap_or(0),
                                },
                                self.beam[child].lm_score,
                            ),
                            other => (other, lm_score),
                        };
                        let i = next.push(parent, step, lm_score);
                        links.slot[child] = Some(i);
                        i
                    }
                },
                None => {
                    let mut final_score = score(f64::NEG_INFINITY, mass, lm_score);
                    if final_score < floor.value() {
                        continue;
                    }
                    let mut lm_score = lm_score;
                    let step = match step {
                        Move::Spell { label, .. } => {
                            let from = hyp.partial.as_ref().map_or(lm.trie_root(), |p| p.state);
                            let state = match spellings.in_trie(lm, from, &self.labels[c]) {
                                Some(state) => state,
                                None if self.unknown => {
                                    // Leaving the trie pays the unknown-word penalty.
                                    if from < spellings.base {
                                        lm_score -= self.unk_penalty;
                                        final_score = score(f64::NEG_INFINITY, mass, lm_score);
                                        if final_score < floor.value() {
                                            continue;
                                        }
                                    }
                                    spellings.step(lm, from, &self.labels[c])
                                }
                                None => continue, // no vocabulary word is spelled this way
                            };
                            Move::Spell { label, state }
                        }
                        other => other,
                    };
                    floor.add(final_score);
                    next.push(parent, step, lm_score)
                }
            };
            next.list[i].p_label = log_add(next.list[i].p_label, mass);
        }
        let i =
            *links.slot[parent].get_or_insert_with(|| next.push(parent, Move::Stay, hyp.lm_score));
        let entry = &mut next.list[i];
        entry.p_blank = log_add(entry.p_blank, stay_blank);
        entry.p_label = log_add(entry.p_label, stay_label);
        entry.goes_on |= token_goes_on;
    }

    /// Indices of the `beam_width` best scores, best first; equal scores in index order (as
    /// a stable sort of all of them would give, without sorting all of them).
    fn best_first(&self, scores: &[f64]) -> Vec<usize> {
        let order = |a: &usize, b: &usize| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b));
        let mut best: Vec<usize> = (0..scores.len()).collect();
        let width = self.config.beam_width;
        if best.len() > width {
            best.select_nth_unstable_by(width - 1, order);
            best.truncate(width);
        }
        best.sort_unstable_by(order);
        best
    }

    /// Builds the candidates `chosen` (indices into `candidates`) as hypotheses, in that
    /// order; consumes the current beam, whose last use of each hypothesis moves its words.
    fn build(
        &mut self,
        candidates: &[Candidate],
        chosen: &[usize],
        frame: Frame,
    ) -> Vec<Hypothesis> {
        let mut uses = vec![0u32; self.beam.len()];
        for &i in chosen {
            uses[candidates[i].parent] += 1;
        }
        let mut parents = std::mem::take(&mut self.beam);
        chosen
            .iter()
            .map(|&i| {
                let candidate = &candidates[i];
                uses[candidate.parent] -= 1;
                let parent = &mut parents[candidate.parent];
                let words = if uses[candidate.parent] == 0 {
                    std::mem::take(&mut parent.words)
                } else {
                    parent.words.clone()
                };
                self.build_one(candidate, parent, words, frame)
            })
            .collect()
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
            p_blank: candidate.p_blank,
            p_label: candidate.p_label,
            lm_score: candidate.lm_score,
        };
        match candidate.step {
            Move::Stay => {}
            Move::Spell { label, state } => {
                hyp.last = label;
                // A new token on this path: the previous one ends, this frame starts it.
                let mut word = parent
                    .partial
                    .map_or(WordConfidence::EMPTY, |p| p.confidence);
                word.close_token(aggregation);
                word.add_frame(aggregation, frame.confidence);
                hyp.partial = Some(Partial {
                    state,
                    word: self.config.lm.trie_word(state),
                    from: parent.spelling(),
                    label,
                    start: parent.partial.map_or(frame.index, |p| p.start),
                    end: frame.index + 1,
                    confidence: word,
                });
            }
            Move::Complete { label, word } => {
                hyp.last = label;
                let partial = hyp.partial.take().expect("only a partial word completes");
                self.add_word(&mut hyp, word, partial);
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

    /// A long silence ends the word being spelled, as a space would: hypotheses whose
    /// partial text is not a word are dropped (unless that would drop them all).
    fn complete_after_silence(&self, hyps: Vec<Hypothesis>) -> Vec<Hypothesis> {
        let mut merged: Vec<Hypothesis> = Vec::with_capacity(hyps.len());
        // Every completed hypothesis has no partial word: its words are its text.
        let mut index: FastMap<Vec<WordId>, usize> = FastMap::default();
        for hyp in &hyps {
            let Some(done) = self.complete_partial(hyp.clone()) else {
                continue;
            };
            let text: Vec<WordId> = done.words.iter().map(|w| w.id).collect();
            match index.get(&text) {
                Some(&i) => {
                    merged[i].p_blank = log_add(merged[i].p_blank, done.p_blank);
                    merged[i].p_label = log_add(merged[i].p_label, done.p_label);
                }
                None => {
                    index.insert(text, merged.len());
                    merged.push(done);
                }
            }
        }
        if merged.is_empty() { hyps } else { merged }
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

    /// Outputs the words that are final: those every hypothesis shares, then those that
    /// ended `commit_delay_frames` ago in the best hypothesis.
    fn commit(&mut self, out: &mut Vec<Word>) {
        // Hypotheses agree on a word when they put the same text at the same frames: "a"
        // in one and the first "a" of "a a" in another may be different sounds, and taking
        // one's word as the other's would put the other's next word before it in time
        // (found by fuzzing).
        let same =
            |a: &DoneWord, b: &DoneWord| a.id == b.id && a.start == b.start && a.end == b.end;
        let best = &self.beam[0];
        let shared = self.beam[1..].iter().fold(best.words.len(), |n, h| {
            n.min(
                best.words
                    .iter()
                    .zip(&h.words)
                    .take_while(|(a, b)| same(a, b))
                    .count(),
            )
        });
        let delay = u64::from(self.config.commit_delay_frames);
        let overdue = if delay == 0 {
            0
        } else {
            best.words
                .iter()
                .take_while(|w| w.end + delay <= self.next_frame)
                .count()
        };
        let count = shared.max(overdue);
        if count == 0 {
            return;
        }
        let committed: Vec<DoneWord> = best.words[..count].to_vec();
        self.beam.retain(|h| {
            h.words.len() >= count
                && h.words[..count]
                    .iter()
                    .zip(&committed)
                    .all(|(a, b)| same(a, b))
        });
        for h in &mut self.beam {
            h.words.drain(..count);
        }
        out.extend(committed.iter().map(|w| self.done_word(w)));
    }

    fn done_word(&self, w: &DoneWord) -> Word {
        Word {
            text: if w.id & OOV == 0 {
                self.config.lm.word_text(w.id).to_owned()
            } else {
                self.spellings.text(&self.config.lm, w.id & !OOV)
            },
            spaces_before: 1,
            start_frame: w.start,
            end_frame: w.end,
            confidence: w.confidence,
        }
    }

    fn partial_word(&self, p: &Partial) -> Word {
        Word {
            text: self.spellings.text(&self.config.lm, p.state),
            spaces_before: 1,
            start_frame: p.start,
            end_frame: p.end,
            confidence: p.confidence.value(self.aggregation),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::english_labels;

    /// Vocabulary "a", "an", "at", "ban", "cat", "can" with a bigram preferring "a cat".
    const ARPA: &str = "\\data\\
ngram 1=9
ngram 2=2

\\1-grams:
-2.0\t<unk>
-99\t<s>\t0
-1.0\t</s>
-1.0\ta\t0
-1.0\tan\t0
-1.0\tat\t0
-1.0\tban\t0
-1.0\tcat\t0
-1.5\tcan\t0

\\2-grams:
-0.1\ta cat
-0.2\t<s> a

\\end\\
";

    fn lm() -> Arc<NgramModel> {
        Arc::new(NgramModel::parse(ARPA.as_bytes()).unwrap())
    }

    fn decoder(lm_weight: f32, commit_delay_frames: u32) -> BeamSearchDecoder {
        BeamSearchDecoder::new(
            english_labels(),
            DecoderConfig {
                word_gap_frames: 10,
                ..DecoderConfig::default()
            },
            BeamConfig {
                lm: lm(),
                beam_width: 16,
                lm_weight,
                word_bonus: 0.0,
                unk_penalty: None,
                commit_delay_frames,
            },
        )
        .unwrap()
    }

    /// Log-prob rows from per-frame `(label, probability)` lists; the rest goes to blank.
    fn frames(spec: &[&[(char, f32)]]) -> Vec<f32> {
        let labels = english_labels();
        let vocab = labels.len() + 1;
        let mut out = Vec::new();
        for frame in spec {
            let mut p = vec![1e-6f32; vocab];
            let mut rest = 1.0 - 1e-6 * vocab as f32;
            for &(ch, prob) in *frame {
                let i = labels.iter().position(|l| l == &ch.to_string()).unwrap();
                p[i] = prob;
                rest -= prob;
            }
            p[vocab - 1] = rest.max(1e-6);
            out.extend(p.iter().map(|x| x.ln()));
        }
        out
    }

    fn text(words: &[Word]) -> String {
        words
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn decode(d: &mut BeamSearchDecoder, lp: &[f32]) -> String {
        let n = lp.len() / d.vocab_size();
        let mut words = d.push(lp, n);
        words.extend(d.finish());
        text(&words)
    }

    #[test]
    fn clear_input_decodes_like_greedy() {
        let lp = frames(&[
            &[('a', 0.9)],
            &[],
            &[(' ', 0.9)],
            &[('c', 0.9)],
            &[('a', 0.9)],
            &[('t', 0.9)],
            &[],
        ]);
        assert_eq!(decode(&mut decoder(0.5, 0), &lp), "a cat");
    }

    #[test]
    fn the_language_model_resolves_an_ambiguous_letter() {
        // "a c?": 'o' beats 'a' acoustically but no word starts "co"; then 'n' beats 't'
        // acoustically, and the LM's bigram "a cat" outweighs that.
        let lp = frames(&[
            &[('a', 0.9)],
            &[(' ', 0.9)],
            &[('c', 0.9)],
            &[('o', 0.5), ('a', 0.4)],
            &[('t', 0.45), ('n', 0.5)],
            &[],
        ]);
        assert_eq!(decode(&mut decoder(1.0, 0), &lp), "a cat");
        // Without LM weight only the lexicon acts: "can" wins acoustically.
        assert_eq!(decode(&mut decoder(0.0, 0), &lp), "a can");
    }

    #[test]
    fn out_of_vocabulary_spellings_are_not_output() {
        let lp = frames(&[&[('c', 0.9)], &[('o', 0.6), ('a', 0.3)], &[('t', 0.9)], &[]]);
        assert_eq!(decode(&mut decoder(0.5, 0), &lp), "cat");
    }

    fn with_unknown_words(lm_weight: f32, unk_penalty: Option<f32>) -> BeamSearchDecoder {
        let mut d = decoder(lm_weight, 0);
        d.config.unk_penalty = unk_penalty;
        d.unknown = unk_penalty.is_some();
        d.unk_penalty = f64::from(unk_penalty.unwrap_or(0.0));
        d
    }

    #[test]
    fn an_unknown_word_is_output_when_the_sound_is_clear() {
        // "a cot": "cot" is not in the vocabulary, but every frame says so clearly.
        let clear = frames(&[
            &[('a', 0.95)],
            &[(' ', 0.95)],
            &[('c', 0.95)],
            &[('o', 0.95)],
            &[('t', 0.95)],
            &[],
        ]);
        // Lexicon only: no vocabulary word sounds like that ('a' is far too unlikely there).
        assert_eq!(decode(&mut decoder(0.5, 0), &clear), "a", "lexicon only");
        assert_eq!(
            decode(&mut with_unknown_words(0.5, Some(2.0)), &clear),
            "a cot"
        );
        // A vocabulary word that the sound nearly matches still wins where the evidence is
        // weak: the penalty outweighs the acoustic difference.
        let weak = frames(&[&[('c', 0.9)], &[('o', 0.5), ('a', 0.4)], &[('t', 0.9)], &[]]);
        assert_eq!(
            decode(&mut with_unknown_words(0.5, Some(2.0)), &weak),
            "cat"
        );
        // (Even without a penalty: `<unk>` is less likely than "cat" in the LM.)
        assert_eq!(
            decode(&mut with_unknown_words(0.5, Some(0.0)), &weak),
            "cat"
        );
        assert_eq!(
            decode(&mut with_unknown_words(0.0, Some(0.0)), &weak),
            "cot"
        );
        // Several unknown words in a row, with words of the vocabulary around them.
        let names = frames(&[
            &[('z', 0.95)],
            &[('o', 0.95)],
            &[('e', 0.95)],
            &[(' ', 0.95)],
            &[('a', 0.95)],
            &[(' ', 0.95)],
            &[('c', 0.95)],
            &[('a', 0.95)],
            &[('t', 0.95)],
            &[],
        ]);
        assert_eq!(
            decode(&mut with_unknown_words(0.5, Some(1.0)), &names),
            "zoe a cat"
        );
    }

    #[test]
    fn a_huge_unknown_word_penalty_is_the_lexicon_only_search() {
        let vocab = english_labels().len() + 1;
        for seed in 0..20u64 {
            let lp = random_frames(seed, 150);
            let run = |mut d: BeamSearchDecoder| {
                let mut words = Vec::new();
                for chunk in lp.chunks(11 * vocab) {
                    words.extend(d.push(chunk, chunk.len() / vocab));
                }
                words.extend(d.finish());
                words
            };
            assert_eq!(
                run(with_unknown_words(0.8, Some(1.0e4))),
                run(with_unknown_words(0.8, None)),
                "seed {seed}"
            );
        }
    }

    #[test]
    fn unknown_spellings_are_compacted_without_changing_the_result() {
        let vocab = english_labels().len() + 1;
        let lp = random_frames(7, 400);
        let run = |limit: bool| {
            let mut d = with_unknown_words(0.5, Some(0.5));
            let mut words = Vec::new();
            for row in lp.chunks(vocab) {
                words.extend(d.push(row, 1));
                if limit {
                    d.compact_spellings();
                }
            }
            words.extend(d.finish());
            words
        };
        let (compacted, plain) = (run(true), run(false));
        assert!(
            plain.iter().any(|w| lm().word_id(&w.text).is_none()),
            "{plain:?}"
        );
        assert_eq!(compacted, plain);
    }

    #[test]
    fn repeated_letters_need_a_blank_between() {
        // "a" held over three frames is one 'a', not "aaa".
        let lp = frames(&[&[('a', 0.9)], &[('a', 0.9)], &[('a', 0.9)], &[]]);
        let mut d = decoder(0.5, 0);
        assert_eq!(decode(&mut d, &lp), "a");
    }

    #[test]
    fn words_are_timed_and_output_once_final() {
        let mut spec: Vec<&[(char, f32)]> = vec![&[('a', 0.9)], &[(' ', 0.9)]];
        spec.extend(std::iter::repeat_n(&[][..], 30));
        spec.extend([&[('c', 0.9)][..], &[('a', 0.9)], &[('t', 0.9)]]);
        let lp = frames(&spec);
        let vocab = english_labels().len() + 1;
        let mut d = decoder(0.5, 20);
        // The first word is final long before the end (commit delay 20 frames).
        let early = d.push(&lp[..25 * vocab], 25);
        assert_eq!(text(&early), "a");
        assert_eq!((early[0].start_frame, early[0].end_frame), (0, 1));
        let rest = d.push(&lp[25 * vocab..], spec.len() - 25);
        assert!(rest.is_empty());
        assert_eq!(
            d.pending().into_iter().map(|w| w.text).collect::<Vec<_>>(),
            ["cat"]
        );
        let last = d.finish();
        assert_eq!(text(&last), "cat");
        assert_eq!((last[0].start_frame, last[0].end_frame), (32, 35));
        // Every frame of "cat" has the same distribution: its confidence is that frame's.
        let row = &lp[32 * vocab..33 * vocab];
        let measure = crate::decode::ConfidenceConfig::default().measure;
        let expected = crate::decode::frame_confidence(measure, row);
        assert!(
            (last[0].confidence - expected).abs() < 1e-6,
            "{} vs {expected}",
            last[0].confidence
        );
    }

    /// On input where the search takes the greedy path, every word's confidence is the
    /// greedy decoder's (NeMo's): the same frames make each token, whatever the measure and
    /// aggregation; frames where blank is the most likely label belong to no token.
    #[test]
    fn confidence_is_the_greedy_decoders_on_its_path() {
        use crate::decode::{
            ConfidenceAggregation, ConfidenceConfig, ConfidenceMeasure, GreedyCtcDecoder,
        };
        let lp = frames(&[
            &[('a', 0.9)],
            &[('a', 0.6)],
            &[('a', 0.3)], // blank wins: no token's frame
            &[(' ', 0.9)],
            &[('c', 0.8)],
            &[('c', 0.7)],
            &[],
            &[('a', 0.9)],
            &[('t', 0.55)],
            &[('t', 0.95)],
            &[('t', 0.2)],
            &[],
        ]);
        let n = lp.len() / (english_labels().len() + 1);
        for aggregation in ConfidenceAggregation::ALL {
            for measure in [
                ConfidenceMeasure::NEMO_DEFAULT,
                ConfidenceMeasure::MaxProb { alpha: 1.0 },
                ConfidenceConfig::DEFAULT.measure,
            ] {
                let config = DecoderConfig {
                    word_gap_frames: 10,
                    confidence: ConfidenceConfig {
                        measure,
                        aggregation,
                    },
                    ..DecoderConfig::default()
                };
                let mut greedy = GreedyCtcDecoder::new(english_labels(), config).unwrap();
                let mut expected = greedy.push(&lp, n);
                expected.extend(greedy.finish());
                let beam = BeamConfig {
                    lm: lm(),
                    beam_width: 16,
                    lm_weight: 0.5,
                    word_bonus: 0.0,
                    unk_penalty: None,
                    commit_delay_frames: 0,
                };
                let mut d = BeamSearchDecoder::new(english_labels(), config, beam).unwrap();
                let mut words = d.push(&lp, n);
                words.extend(d.finish());
                assert_eq!(text(&words), "a cat");
                assert_eq!(text(&expected), "a cat");
                for (w, e) in words.iter().zip(&expected) {
                    assert!(
                        (w.confidence - e.confidence).abs() < 1e-6,
                        "{measure} {aggregation}: {w:?} vs greedy {e:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_result_does_not_depend_on_push_sizes() {
        let spec: Vec<&[(char, f32)]> = vec![
            &[('a', 0.6), ('o', 0.3)],
            &[(' ', 0.8)],
            &[('c', 0.7)],
            &[('a', 0.5), ('o', 0.4)],
            &[('n', 0.5), ('t', 0.4)],
            &[],
            &[(' ', 0.5)],
            &[('a', 0.8)],
            &[('t', 0.6)],
            &[],
        ];
        let lp = frames(&spec);
        let vocab = english_labels().len() + 1;
        let whole = decode(&mut decoder(0.8, 3), &lp);
        for split in 1..spec.len() {
            let mut d = decoder(0.8, 3);
            let mut words = d.push(&lp[..split * vocab], split);
            words.extend(d.push(&lp[split * vocab..], spec.len() - split));
            words.extend(d.finish());
            assert_eq!(text(&words), whole, "split at {split}");
        }
    }

    #[test]
    fn a_silence_completes_the_word_and_nan_is_harmless() {
        let mut spec: Vec<&[(char, f32)]> = vec![&[('a', 0.9)], &[('n', 0.9)]];
        spec.extend(std::iter::repeat_n(&[][..], 12));
        let mut lp = frames(&spec);
        let vocab = english_labels().len() + 1;
        lp[5 * vocab + 3] = f32::NAN;
        let mut d = decoder(0.5, 5);
        let words = d.push(&lp, spec.len());
        assert_eq!(
            text(&words),
            "an",
            "completed by the 10-frame silence, then committed"
        );
        assert!(d.finish().is_empty());
    }

    #[test]
    fn bad_settings_are_errors() {
        let config = |beam_width, lm_weight| BeamConfig {
            lm: lm(),
            beam_width,
            lm_weight,
            word_bonus: 0.0,
            unk_penalty: None,
            commit_delay_frames: 0,
        };
        let d = DecoderConfig::default();
        assert!(BeamSearchDecoder::new(english_labels(), d, config(0, 0.5)).is_err());
        assert!(BeamSearchDecoder::new(english_labels(), d, config(8, f32::NAN)).is_err());
        for penalty in [-1.0, f32::NAN, f32::INFINITY] {
            let beam = BeamConfig {
                unk_penalty: Some(penalty),
                ..config(8, 0.5)
            };
            assert!(BeamSearchDecoder::new(english_labels(), d, beam).is_err());
        }
        let no_space: Vec<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        assert!(
            BeamSearchDecoder::new(no_space, d, config(8, 0.5))
                .unwrap_err()
                .to_string()
                .contains("space")
        );
    }

    /// Random frames over the test vocabulary's letters: each frame puts random weights on
    /// a few labels and blank (a linear congruential generator keeps it reproducible).
    fn random_frames(seed: u64, count: usize) -> Vec<f32> {
        let labels = english_labels();
        let vocab = labels.len() + 1;
        let useful: Vec<usize> = ['a', 'n', 't', 'b', 'c', ' ', 'o']
            .iter()
            .map(|ch| labels.iter().position(|l| l == &ch.to_string()).unwrap())
            .collect();
        let mut state = seed;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) as f32) / (1u64 << 31) as f32
        };
        let mut out = Vec::with_capacity(count * vocab);
        for _ in 0..count {
            let mut p = vec![1e-7f32; vocab];
            for &c in &useful {
                let r = next();
                p[c] = if r < 0.5 { 1e-7 } else { r * r * r };
            }
            p[vocab - 1] = next() * 1.5;
            let sum: f32 = p.iter().sum();
            out.extend(p.iter().map(|x| (x / sum).ln()));
        }
        out
    }

    /// The fast path (one distinct character per label: merges only with hypotheses of the
    /// beam, candidates below the floor skipped) gives exactly the general path's words,
    /// times and confidences, with small beams (much pruning) and word gaps (completions).
    #[test]
    fn the_fast_path_is_exactly_the_general_one() {
        let vocab = english_labels().len() + 1;
        for seed in 0..40u64 {
            let lp = random_frames(seed, 120);
            let unknown = [None, Some(0.0), Some(3.0)];
            for (width, gap, delay, unk_penalty) in [
                (1, 0, 0, 0),
                (3, 3, 0, 1),
                (8, 4, 6, 2),
                (32, 2, 3, 0),
                (32, 2, 3, 2),
                (8, 0, 0, 1),
            ]
            .map(|(w, g, d, u)| (w, g, d, unknown[u]))
            {
                let make = || {
                    BeamSearchDecoder::new(
                        english_labels(),
                        DecoderConfig {
                            word_gap_frames: gap,
                            ..DecoderConfig::default()
                        },
                        BeamConfig {
                            lm: lm(),
                            beam_width: width,
                            lm_weight: 0.8,
                            word_bonus: 0.5,
                            unk_penalty,
                            commit_delay_frames: delay,
                        },
                    )
                    .unwrap()
                };
                let mut fast = make();
                assert!(fast.letters.is_some());
                let mut general = make();
                general.letters = None;
                let run = |d: &mut BeamSearchDecoder| {
                    let mut words = Vec::new();
                    for chunk in lp.chunks(7 * vocab) {
                        words.extend(d.push(chunk, chunk.len() / vocab));
                        let pending = d.pending();
                        words.extend(pending.into_iter().map(|mut w| {
                            w.text.insert(0, '~');
                            w
                        }));
                    }
                    words.extend(d.finish());
                    words
                        .iter()
                        .map(|w| {
                            let c = w.confidence.to_bits();
                            (
                                w.text.clone(),
                                w.spaces_before,
                                w.start_frame,
                                w.end_frame,
                                c,
                            )
                        })
                        .collect::<Vec<_>>()
                };
                assert_eq!(
                    run(&mut fast),
                    run(&mut general),
                    "seed {seed}, width {width}, gap {gap}, delay {delay}, unknown words {unk_penalty:?}"
                );
            }
        }
    }

    #[test]
    fn labels_of_several_characters_take_the_general_path() {
        let mut labels = english_labels();
        labels[1] = "ab".into();
        assert!(single_letters(&labels).is_none());
        labels[1] = "b".into();
        assert!(single_letters(&labels).is_none(), "two labels \"b\"");
        assert!(single_letters(&english_labels()).is_some());
    }
}

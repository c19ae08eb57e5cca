// SPDX-License-Identifier: MPL-2.0
//! A hypothesis of the beam: its completed words, the word it is spelling, its LM context and
//! its probability masses; and the hashes that find hypotheses with equal texts.

use super::units::SpellState;
use crate::decode::confidence::WordConfidence;
use crate::lm::{MAX_ORDER, WordId};

/// A completed word of a hypothesis. The id is the text (see [`super::units::Units`]), so
/// comparing hypotheses compares integers, not strings.
#[derive(Debug, Clone, Copy)]
pub(super) struct DoneWord {
    pub id: WordId,
    pub start: u64,
    pub end: u64,
    pub confidence: f32,
}

/// The word being spelled by a hypothesis; its text is the spelling trie's path to `state`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Partial {
    pub state: SpellState,
    /// The first word spelled exactly by `state`, if any ([`super::units::Units::first_word`],
    /// kept at hand).
    pub word: Option<WordId>,
    /// The spelling before the last label (`None`: the word started with it) and that
    /// label, so the hypothesis one label shorter is found without walking the trie.
    pub from: Option<SpellState>,
    pub label: usize,
    pub start: u64,
    pub end: u64,
    /// The word's tokens on this path; a token's frames are the one that started it and
    /// those after it, while the path stays on its label, whose argmax is not blank (NeMo's
    /// `exclude_blank`, as the greedy decoder).
    pub confidence: WordConfidence,
}

/// Previous words for the language model, the newest last, in a fixed array so that
/// copying a hypothesis does not allocate.
#[derive(Debug, Clone, Copy)]
pub(super) struct Context {
    ids: [WordId; MAX_ORDER],
    len: usize,
}

impl Context {
    pub fn new(first: WordId) -> Self {
        let mut ids = [0; MAX_ORDER];
        ids[0] = first;
        Self { ids, len: 1 }
    }

    pub fn words(&self) -> &[WordId] {
        &self.ids[..self.len]
    }

    /// Appends `word`, keeping the newest `keep` words (at least 1).
    pub fn push(&mut self, word: WordId, keep: usize) {
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
pub(super) struct Hypothesis {
    /// Uncommitted completed words. The text of a hypothesis is these words, each followed
    /// by a boundary, then the partial word: two hypotheses with the same word ids and the
    /// same partial spelling state spell the same label sequence and are merged.
    pub words: Vec<DoneWord>,
    /// Hash of every word completed since the sentence started, committed ones included
    /// (all hypotheses share those), to find equal texts quickly.
    pub words_hash: u64,
    pub partial: Option<Partial>,
    /// Last label emitted on this path (`blank` when none), for the repeat collapse.
    pub last: usize,
    pub context: Context,
    /// Its state in the hotword context graph (0 without hotwords); the state's partial
    /// score and the rewards of matched phrases are in `lm_score`.
    pub hot: u32,
    /// ln P(alignments of this prefix ending in blank / in its last label).
    pub p_blank: f64,
    pub p_label: f64,
    /// Accumulated `lm_weight * ln p_lm + word_bonus` of its words (less unknown-word
    /// penalties), plus, with smearing, `lm_weight` times the look-ahead of its partial
    /// spelling, plus its hotword score (a function of its text, as the rest).
    pub lm_score: f64,
}

impl Hypothesis {
    pub fn acoustic(&self) -> f64 {
        log_add(self.p_blank, self.p_label)
    }

    pub fn score(&self) -> f64 {
        score(self.p_blank, self.p_label, self.lm_score)
    }

    pub fn spelling(&self) -> Option<SpellState> {
        self.partial.map(|p| p.state)
    }
}

pub(super) fn score(p_blank: f64, p_label: f64, lm_score: f64) -> f64 {
    let s = log_add(p_blank, p_label) + lm_score;
    if s.is_nan() { f64::NEG_INFINITY } else { s }
}

#[inline]
pub(super) fn log_add(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    if b == f64::NEG_INFINITY {
        return a;
    }
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    hi + (lo - hi).exp().ln_1p()
}

/// One multiply-fold step of a hash: equal inputs give equal outputs, near ones far apart.
#[inline]
fn mix(hash: u64, value: u64) -> u64 {
    let product = u128::from(hash ^ value) * 0x9e37_79b9_7f4a_7c15_u128;
    (product as u64) ^ ((product >> 64) as u64)
}

pub(super) fn words_hash_with(hash: u64, word: WordId) -> u64 {
    mix(hash, u64::from(word))
}

/// Hash of a text: its words and its partial word's spelling state.
pub(super) fn text_hash(words_hash: u64, spelling: Option<SpellState>) -> u64 {
    mix(
        words_hash.rotate_left(29),
        spelling.map_or(0, |s| u64::from(s) + 1),
    )
}

/// Whether `a` has the same word ids as `b` followed by `more`.
pub(super) fn same_ids(a: &[DoneWord], b: &[DoneWord], more: Option<WordId>) -> bool {
    a.len() == b.len() + usize::from(more.is_some())
        && a.iter()
            .map(|w| w.id)
            .eq(b.iter().map(|w| w.id).chain(more))
}

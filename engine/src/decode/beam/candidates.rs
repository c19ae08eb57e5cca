// SPDX-License-Identifier: MPL-2.0
//! Candidates of the next beam: small records (parent, move, probability mass), of which only
//! the `beam_width` best are built as hypotheses.

use super::hypothesis::{Hypothesis, text_hash, words_hash_with};
use super::units::SpellState;
use crate::lm::{FastMap, WordId};

/// How a candidate of the next beam comes from a hypothesis of the current one.
#[derive(Debug, Clone, Copy)]
pub(super) enum Move {
    /// The hypothesis itself: a blank, its last label again, or a boundary between words.
    Stay,
    /// A token label extends its partial word to `state`.
    Spell { label: usize, state: SpellState },
    /// A boundary label completes its partial word as `word`.
    Complete { label: usize, word: WordId },
    /// A word-start label completes its partial word as `word` and spells the next word's
    /// start, `state`.
    Restart {
        label: usize,
        word: WordId,
        state: SpellState,
    },
}

/// A hypothesis of the next beam before it is built (most are pruned unbuilt).
#[derive(Debug, Clone, Copy)]
pub(super) struct Candidate {
    /// Index in the current beam of the hypothesis that made it first (merged ones only
    /// add their mass, as in the search this reproduces).
    pub parent: usize,
    pub step: Move,
    /// The next candidate with the same hash (`usize::MAX`: none).
    next_same: usize,
    pub p_blank: f64,
    pub p_label: f64,
    pub lm_score: f64,
    /// A hypothesis's own label went on in this frame and merged here: its partial word's
    /// token gains the frame. A candidate receives at most one such merge (each text of the
    /// current beam is one hypothesis), so a flag says it all.
    pub goes_on: bool,
}

/// The next beam's candidates, in the order they were made, and their index by text.
#[derive(Debug, Clone, Default)]
pub(super) struct Candidates {
    pub list: Vec<Candidate>,
    by_hash: FastMap<u64, usize>,
}

impl Candidates {
    /// Adds a candidate with no mass yet, not indexed by text (the caller knows no other
    /// candidate spells it); returns its index.
    pub fn push(&mut self, parent: usize, step: Move, lm_score: f64) -> usize {
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

    pub fn clear(&mut self) {
        self.list.clear();
        self.by_hash.clear();
    }

    /// The candidate that spells the same text as `parent` moved by `step`, made if there is
    /// none yet with `lm_score()` (called only then: it may query the language model).
    /// Returns it and whether it was made now.
    pub fn slot(
        &mut self,
        beam: &[Hypothesis],
        parent: usize,
        step: Move,
        lm_score: impl FnOnce() -> f64,
    ) -> (usize, bool) {
        let from = &beam[parent];
        let hash = match step {
            Move::Stay => text_hash(from.words_hash, from.spelling()),
            Move::Spell { state, .. } => text_hash(from.words_hash, Some(state)),
            Move::Complete { word, .. } => text_hash(words_hash_with(from.words_hash, word), None),
            Move::Restart { word, state, .. } => {
                text_hash(words_hash_with(from.words_hash, word), Some(state))
            }
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
                        return (i, false);
                    }
                    if self.list[i].next_same == usize::MAX {
                        break;
                    }
                    i = self.list[i].next_same;
                }
                self.list[i].next_same = new;
            }
        }
        (self.push(parent, step, lm_score()), true)
    }
}

/// The words and partial word a candidate would have: the parent's words, one more if the
/// move completes a word, and the spelling state.
fn text_of(
    beam: &[Hypothesis],
    parent: usize,
    step: Move,
) -> (
    &[super::hypothesis::DoneWord],
    Option<WordId>,
    Option<SpellState>,
) {
    let from = &beam[parent];
    match step {
        Move::Stay => (&from.words, None, from.spelling()),
        Move::Spell { state, .. } => (&from.words, None, Some(state)),
        Move::Complete { word, .. } => (&from.words, Some(word), None),
        Move::Restart { word, state, .. } => (&from.words, Some(word), Some(state)),
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

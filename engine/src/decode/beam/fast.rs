// SPDX-License-Identifier: MPL-2.0
//! The fast path: when each text is spelled by one label sequence
//! ([`super::units::Units::one_spelling_per_text`]), a candidate can only spell the same
//! text as another if that text is a hypothesis of the current beam ([`Links`]), so every
//! other candidate's score is final when it is made, and one below the `beam_width` best
//! scores seen so far ([`Floor`]) can be skipped: it could not survive pruning. The result is
//! exactly the general path's (the tests compare the two).
//!
//! The one exception is a lexicon word with several spellings: completing any of them makes
//! the same text. Such completions are merged by text (as the general path does) and never
//! skipped; their first mass is a lower bound of their final score, which is all the floor
//! needs.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::BeamSearchDecoder;
use super::candidates::{Candidates, Move};
use super::hypothesis::{Hypothesis, Partial, same_ids, score, text_hash, words_hash_with};
use super::transition::{Row, Target};
use super::units::{Spelled, Spellings, Units};
use crate::lm::WordId;

/// Which hypotheses of the current beam spell another one's text plus one label, and the
/// candidate each one's text has in the next beam so far.
#[derive(Debug, Clone, Default)]
pub(super) struct Links {
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
    /// Finds the links of `beam`, whose texts must each be spelled one way (then the text
    /// one label shorter than a partial word's is its `from` spelling); `boundary` is the
    /// label that completes words.
    fn find(&mut self, beam: &[Hypothesis], boundary: usize, units: &Units) {
        self.texts.clear();
        self.texts.extend(
            beam.iter()
                .enumerate()
                .map(|(k, h)| (text_hash(h.words_hash, h.spelling()), k)),
        );
        self.texts.sort_unstable();
        self.edges.clear();
        for (k, hyp) in beam.iter().enumerate() {
            // Spelled from the text one token shorter.
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
            // Completed by a boundary, as each of the spelling's words.
            let Some(partial) = hyp.partial else {
                continue;
            };
            for word in units.completions(&partial) {
                let hash = text_hash(words_hash_with(hyp.words_hash, word), None);
                let child = self.lookup(beam, hash, |q| {
                    q.partial.is_none() && same_ids(&q.words, &hyp.words, Some(word))
                });
                if let Some(child) = child {
                    self.edges.push((p, boundary, child));
                }
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

    /// The hypothesis whose text is `parent`'s plus `label`, and when that label completes
    /// a word, whose last word is `word`.
    fn child(
        &self,
        beam: &[Hypothesis],
        parent: usize,
        label: usize,
        word: Option<WordId>,
    ) -> Option<usize> {
        self.edges[self.start[parent]..self.start[parent + 1]]
            .iter()
            .find(|e| {
                e.1 == label
                    && word.is_none_or(|w| beam[e.2].words.last().is_some_and(|d| d.id == w))
            })
            .map(|e| e.2)
    }
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
pub(super) struct Floor {
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

/// The fast path's work space, kept to reuse its allocations.
#[derive(Debug, Clone, Default)]
pub(super) struct FastPath {
    links: Links,
    floor: Floor,
    /// This frame's tried labels, most likely first.
    by_prob: Vec<usize>,
    /// The labels one hypothesis tries.
    visit: Vec<usize>,
}

/// What one hypothesis's expansion on the fast path works with.
struct Expansion<'a> {
    links: &'a mut Links,
    floor: &'a mut Floor,
    spellings: &'a mut Spellings,
    next: &'a mut Candidates,
}

impl BeamSearchDecoder {
    /// [`Self::expand`] for every hypothesis on the fast path. With `prune` false, no
    /// candidate is skipped.
    pub(super) fn expand_all_fast(
        &self,
        work: &mut FastPath,
        row: Row<'_>,
        prune: bool,
        spellings: &mut Spellings,
        next: &mut Candidates,
    ) {
        let FastPath {
            links,
            floor,
            by_prob,
            visit,
        } = work;
        links.find(&self.beam, self.boundary, &self.units);
        floor.reset(if prune { self.config.beam_width } else { 0 });
        // Each hypothesis's own text gets at least its blank mass: a lower bound of that
        // candidate's final score (its LM score is the hypothesis's, the same words).
        for hyp in &self.beam {
            floor.add(score(
                hyp.acoustic() + row.blank,
                f64::NEG_INFINITY,
                hyp.lm_score,
            ));
        }
        by_prob.clear();
        by_prob.extend_from_slice(row.tried);
        by_prob.sort_unstable_by(|&a, &b| row.lp[b].total_cmp(&row.lp[a]));
        for parent in 0..self.beam.len() {
            self.labels_to_visit(parent, row.lp, by_prob, links, floor.value(), visit);
            let mut expansion = Expansion {
                links,
                floor,
                spellings,
                next,
            };
            self.expand_fast(parent, row.lp, row.blank, visit, &mut expansion);
        }
    }

    /// The labels of `by_prob` (this frame's tried labels, most likely first) that
    /// hypothesis `parent` must try, in label order: those whose extension could reach
    /// `floor` (spelling never raises the LM score, so the hypothesis's is a bound), and
    /// those that do more than make a candidate of their own (a boundary, its last label
    /// again, a label that spells another hypothesis). The others would make candidates
    /// scored below the floor, which `expand_fast` would skip.
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
            // The same sum as that candidate's score, so the comparison is the same (plus
            // the most a hotword step can add).
            if total + f64::from(row[c]) + hyp.lm_score + self.hot_gain() < floor {
                break;
            }
            visit.push(c);
        }
        let tried = |c: usize| c < self.blank && row[c] >= super::MIN_TOKEN_LOGPROB;
        let special = [self.boundary, hyp.last]
            .into_iter()
            .chain(links.labels(parent))
            .filter(|&c| tried(c));
        visit.extend(special);
        visit.sort_unstable();
        visit.dedup();
    }

    /// [`Self::expand`] for one hypothesis on the fast path: the same transitions, the same
    /// candidates in the same order with the same masses, less those that cannot survive.
    fn expand_fast(
        &self,
        parent: usize,
        row: &[f32],
        blank_lp: f64,
        labels: &[usize],
        x: &mut Expansion<'_>,
    ) {
        let hyp = &self.beam[parent];
        let total = hyp.acoustic();
        let mut stay_blank = total + blank_lp;
        let mut stay_label = f64::NEG_INFINITY;
        let mut token_goes_on = false;
        for &c in labels {
            let t = self.transition(hyp, total, c, f64::from(row[c]));
            stay_label = super::hypothesis::log_add(stay_label, t.stay);
            stay_blank = super::hypothesis::log_add(stay_blank, t.absorbed);
            token_goes_on |= t.goes_on;
            match t.to {
                None => {}
                Some((Target::Complete, mass)) => {
                    let partial = hyp
                        .partial
                        .as_ref()
                        .expect("a boundary completes a partial word");
                    for word in self.units.completions(partial) {
                        self.complete_fast(parent, c, word, mass, x);
                    }
                }
                Some((Target::Spell, mass)) => self.spell_fast(parent, c, mass, x),
                // Word-start labels have several characters, which the fast path never
                // serves (`Units::one_spelling_per_text`).
                Some((Target::Restart, _)) => {
                    debug_assert!(false, "the fast path serves no word-start labels");
                }
            }
        }
        let i = *x.links.slot[parent]
            .get_or_insert_with(|| x.next.push(parent, Move::Stay, hyp.lm_score));
        let entry = &mut x.next.list[i];
        entry.p_blank = super::hypothesis::log_add(entry.p_blank, stay_blank);
        entry.p_label = super::hypothesis::log_add(entry.p_label, stay_label);
        entry.goes_on |= token_goes_on;
    }

    /// The candidate of hypothesis `parent` spelled on by token `c` with `mass`, unless it
    /// cannot survive.
    fn spell_fast(&self, parent: usize, c: usize, mass: f64, x: &mut Expansion<'_>) {
        let hyp = &self.beam[parent];
        let i = if let Some(child) = x.links.child(&self.beam, parent, c, None) {
            // Another hypothesis spells this text: its state, and its LM score (the same
            // text has the same, penalty and look-ahead included).
            *x.links.slot[child].get_or_insert_with(|| {
                let state = self.beam[child].spelling().unwrap_or(self.units.root());
                let step = Move::Spell { label: c, state };
                x.next.push(parent, step, self.beam[child].lm_score)
            })
        } else {
            // The hypothesis's LM score (plus the most a hotword step adds) bounds the
            // candidate's: test before the trie.
            let bound = score(f64::NEG_INFINITY, mass, hyp.lm_score + self.hot_gain());
            if bound < x.floor.value() {
                return;
            }
            let Some((spelled, lm_score)) = self.spell_target(hyp, c, x.spellings) else {
                return; // no word is spelled this way
            };
            let final_score = if lm_score == hyp.lm_score && self.hot.is_none() {
                bound
            } else {
                score(f64::NEG_INFINITY, mass, lm_score)
            };
            if final_score < x.floor.value() {
                return; // the unknown-word penalty or the look-ahead sank it
            }
            let state = match spelled {
                Spelled::Known(state) => state,
                Spelled::Unknown { .. } => {
                    let from = hyp.spelling().unwrap_or(self.units.root());
                    self.units
                        .spell_unknown(x.spellings, from, &self.spelled[c])
                }
            };
            x.floor.add(final_score);
            x.next
                .push(parent, Move::Spell { label: c, state }, lm_score)
        };
        let entry = &mut x.next.list[i];
        entry.p_label = super::hypothesis::log_add(entry.p_label, mass);
    }

    /// The candidate of hypothesis `parent` completed as `word` by boundary `c` with
    /// `mass`, unless it cannot survive.
    fn complete_fast(
        &self,
        parent: usize,
        c: usize,
        word: WordId,
        mass: f64,
        x: &mut Expansion<'_>,
    ) {
        let hyp = &self.beam[parent];
        let lm_score = self.complete_score(hyp, word);
        let step = Move::Complete { label: c, word };
        let i = if let Some(child) = x.links.child(&self.beam, parent, c, Some(word)) {
            *x.links.slot[child].get_or_insert_with(|| x.next.push(parent, step, lm_score))
        } else if self.units.completions_merge() {
            // Other spellings of the word may complete it too: merge by text, skip none.
            let (i, made) = x.next.slot(&self.beam, parent, step, || lm_score);
            if made {
                x.floor.add(score(f64::NEG_INFINITY, mass, lm_score));
            }
            i
        } else {
            let final_score = score(f64::NEG_INFINITY, mass, lm_score);
            if final_score < x.floor.value() {
                return;
            }
            x.floor.add(final_score);
            x.next.push(parent, step, lm_score)
        };
        let entry = &mut x.next.list[i];
        entry.p_label = super::hypothesis::log_add(entry.p_label, mass);
    }
}

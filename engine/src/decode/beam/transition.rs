// SPDX-License-Identifier: MPL-2.0
//! The CTC transition, written once: what one label in one frame does to one hypothesis
//! (DeepSpeech's prefix beam search step), and the general expansion built on it. The fast
//! path (`fast.rs`) runs the same transition and only decides which candidates to make.

use super::BeamSearchDecoder;
use super::candidates::{Candidates, Move};
use super::context::ContextState;
use super::hypothesis::{Context, Hypothesis, log_add};
use super::units::{Role, SpellState, Spelled, Spellings};
use crate::lm::WordId;

/// One frame as the expansion reads it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Row<'a> {
    /// The frame's log-probabilities (labels, then blank).
    pub lp: &'a [f32],
    /// Blank's log-probability (minus infinity for NaN).
    pub blank: f64,
    /// The labels likely enough to try, in label order.
    pub tried: &'a [usize],
}

/// What a label's mass makes besides the hypothesis itself.
#[derive(Debug, Clone, Copy)]
pub(super) enum Target {
    /// A new token spells on the partial word (see [`BeamSearchDecoder::spell_target`]).
    Spell,
    /// A boundary completes the partial word as each of its words
    /// ([`super::units::Units::completions`]).
    Complete,
    /// A word-start label completes the partial word as each of its words and spells the
    /// next word's start (see [`BeamSearchDecoder::restart_target`]).
    Restart,
}

/// Where the mass of one label goes, from one hypothesis in one frame.
#[derive(Debug, Clone, Copy)]
pub(super) struct Transition {
    /// Mass that stays on the hypothesis's own text in its label part: its last label again
    /// (the same token going on), or a boundary with no partial word (silence between
    /// words). Minus infinity: none.
    pub stay: f64,
    /// Mass that stays on the hypothesis's own text in its blank part: a boundary inside a
    /// hotword word, which the word's spelling goes on across (models split long names they
    /// do not know: "life tuber needs" for "Kubernetes"). Minus infinity: none.
    pub absorbed: f64,
    /// The hypothesis's own token went on (its partial word gains the frame).
    pub goes_on: bool,
    /// The text the label makes, and the mass it gets.
    pub to: Option<(Target, f64)>,
}

impl BeamSearchDecoder {
    /// Where label `c` with log-probability `lp` takes `hyp`, whose total mass is `total`.
    #[inline(always)]
    pub(super) fn transition(&self, hyp: &Hypothesis, total: f64, c: usize, lp: f64) -> Transition {
        let mut t = Transition {
            stay: f64::NEG_INFINITY,
            absorbed: f64::NEG_INFINITY,
            goes_on: false,
            to: None,
        };
        match self.roles[c] {
            Role::Boundary if hyp.partial.is_none() => t.stay = total + lp,
            Role::Boundary => {
                t.to = Some((Target::Complete, total + lp));
                if self.hot.as_ref().is_some_and(|h| h.graph.in_word(hyp.hot)) {
                    t.absorbed = total + lp;
                }
            }
            Role::Ignored => {}
            Role::Token | Role::WordStart => {
                let extend = if c == hyp.last {
                    // The same label again without a blank between is the same token.
                    t.stay = hyp.p_label + lp;
                    t.goes_on = true;
                    hyp.p_blank + lp
                } else {
                    total + lp
                };
                // A word-start label after a partial word (its own included, when a blank
                // came between) begins the next word; otherwise it spells on (or the first).
                let target = match self.roles[c] {
                    Role::WordStart if hyp.partial.is_some() => Target::Restart,
                    _ => Target::Spell,
                };
                if extend != f64::NEG_INFINITY {
                    t.to = Some((target, extend));
                }
            }
        }
        t
    }

    /// The spelling `hyp`'s partial word (or a new word) takes with token `c`, and the LM
    /// score of that text: the hypothesis's, less the unknown-word penalty if the spelling
    /// leaves the trie, plus the change of the look-ahead with smearing. `None`: no word is
    /// spelled that way. An unknown spelling's state is made by the caller, only for a
    /// candidate that is kept.
    #[inline(always)]
    pub(super) fn spell_target(
        &self,
        hyp: &Hypothesis,
        c: usize,
        spellings: &Spellings,
    ) -> Option<(Spelled, f64)> {
        let from = hyp.spelling().unwrap_or(self.units.root());
        self.spell_from(from, hyp.lm_score, hyp.hot, c, spellings)
    }

    /// [`Self::spell_target`] of a word-start label `c` after `hyp`'s partial word completed
    /// as `word`: the next word spelled from the root, its LM score the completed
    /// hypothesis's ([`Self::complete_score`]) plus what spelling `c` adds.
    #[inline]
    pub(super) fn restart_target(
        &self,
        hyp: &Hypothesis,
        c: usize,
        word: WordId,
        spellings: &Spellings,
    ) -> Option<(Spelled, f64)> {
        let completed = self.complete_score(hyp, word);
        let hot = self.hot.as_ref().map_or(0, |h| h.graph.separate(hyp.hot).0);
        self.spell_from(self.units.root(), completed, hot, c, spellings)
    }

    /// Label `c` spelled on from state `from` of a hypothesis whose LM score is `lm_score`
    /// and hotword state `hot`.
    #[inline(always)]
    fn spell_from(
        &self,
        from: SpellState,
        lm_score: f64,
        hot: ContextState,
        c: usize,
        spellings: &Spellings,
    ) -> Option<(Spelled, f64)> {
        let spelled = self.units.spell(spellings, from, c, &self.spelled[c])?;
        let mut lm_score = match spelled {
            Spelled::Known(_) => lm_score,
            Spelled::Unknown { penalty } => lm_score - penalty,
        };
        if let Some(h) = &self.hot {
            lm_score += h.graph.steps(hot, &h.symbols[c]).1;
        }
        let Some(look) = &self.lookahead else {
            return Some((spelled, lm_score));
        };
        let to = match spelled {
            Spelled::Known(state) => look.at(state),
            // Any state beyond the trie has the look-ahead of an unknown word.
            Spelled::Unknown { .. } => look.at(SpellState::MAX),
        };
        let change = f64::from(to) - f64::from(look.at(from));
        Some((spelled, lm_score + self.lm_weight * change))
    }

    /// The LM score of `hyp` with its partial word completed as `word`: the word's score
    /// replaces the look-ahead of its spelling; with hotwords, the word separator's step.
    #[inline]
    pub(super) fn complete_score(&self, hyp: &Hypothesis, word: WordId) -> f64 {
        let mut lm_score = hyp.lm_score + self.word_score(&hyp.context, word);
        if let Some(h) = &self.hot {
            lm_score += h.graph.separate(hyp.hot).1;
        }
        match (&self.lookahead, hyp.partial) {
            (Some(look), Some(partial)) => {
                lm_score - self.lm_weight * f64::from(look.at(partial.state))
            }
            _ => lm_score,
        }
    }

    /// `lm_weight * ln p_lm(word | context) + word_bonus`; a word the LM does not know scores
    /// as `<unk>` (an unknown character word less the unknown-word penalty unless its
    /// spelling paid it on leaving the trie).
    pub(super) fn word_score(&self, context: &Context, word: WordId) -> f64 {
        let logp = self
            .config
            .lm
            .log_prob(context.words(), self.units.lm_word(word));
        let penalty = self.units.completion_penalty(word);
        f64::from(self.config.lm_weight) * f64::from(logp) + f64::from(self.config.word_bonus)
            - penalty
    }

    /// Adds the candidates that hypothesis `parent` makes in this frame, merging those that
    /// spell a text already made (the general path: any labels).
    pub(super) fn expand(
        &self,
        parent: usize,
        row: Row<'_>,
        spellings: &mut Spellings,
        next: &mut Candidates,
    ) {
        let hyp = &self.beam[parent];
        let total = hyp.acoustic();
        let mut stay_blank = total + row.blank;
        let mut stay_label = f64::NEG_INFINITY;
        let mut token_goes_on = false;
        for &c in row.tried {
            let t = self.transition(hyp, total, c, f64::from(row.lp[c]));
            stay_label = log_add(stay_label, t.stay);
            stay_blank = log_add(stay_blank, t.absorbed);
            token_goes_on |= t.goes_on;
            match t.to {
                None => {}
                Some((Target::Complete, mass)) => {
                    let partial = hyp
                        .partial
                        .as_ref()
                        .expect("a boundary completes a partial word");
                    for word in self.units.completions(partial) {
                        let step = Move::Complete { label: c, word };
                        let (i, _) =
                            next.slot(&self.beam, parent, step, || self.complete_score(hyp, word));
                        next.list[i].p_label = log_add(next.list[i].p_label, mass);
                    }
                }
                Some((Target::Restart, mass)) => {
                    let partial = hyp
                        .partial
                        .as_ref()
                        .expect("a word start restarts a partial word");
                    for word in self.units.completions(partial) {
                        let Some((spelled, lm_score)) =
                            self.restart_target(hyp, c, word, spellings)
                        else {
                            continue; // no word starts this way
                        };
                        let state = self.state_of(spelled, self.units.root(), c, spellings);
                        let step = Move::Restart {
                            label: c,
                            word,
                            state,
                        };
                        let (i, _) = next.slot(&self.beam, parent, step, || lm_score);
                        next.list[i].p_label = log_add(next.list[i].p_label, mass);
                    }
                }
                Some((Target::Spell, mass)) => {
                    let Some((spelled, lm_score)) = self.spell_target(hyp, c, spellings) else {
                        continue; // no word is spelled this way
                    };
                    let from = hyp.spelling().unwrap_or(self.units.root());
                    let state = self.state_of(spelled, from, c, spellings);
                    let step = Move::Spell { label: c, state };
                    let (i, _) = next.slot(&self.beam, parent, step, || lm_score);
                    next.list[i].p_label = log_add(next.list[i].p_label, mass);
                }
            }
        }
        // The hypothesis itself moves on (or merges into an extension of another one
        // that spells the same text).
        let (i, _) = next.slot(&self.beam, parent, Move::Stay, || hyp.lm_score);
        let entry = &mut next.list[i];
        entry.p_blank = log_add(entry.p_blank, stay_blank);
        entry.p_label = log_add(entry.p_label, stay_label);
        entry.goes_on |= token_goes_on;
    }

    /// The state `spelled` names: a known one, or the unknown spelling of label `c` after
    /// `from`, made now.
    pub(super) fn state_of(
        &self,
        spelled: Spelled,
        from: SpellState,
        c: usize,
        spellings: &mut Spellings,
    ) -> SpellState {
        match spelled {
            Spelled::Known(state) => state,
            Spelled::Unknown { .. } => self.units.spell_unknown(spellings, from, &self.spelled[c]),
        }
    }
}

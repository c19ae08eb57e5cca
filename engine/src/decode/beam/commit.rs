// SPDX-License-Identifier: MPL-2.0
//! Words out of the search: which are final (commit), what is pending, the end of a stream,
//! and words completed by a silence.

use super::BeamSearchDecoder;
use super::hypothesis::{DoneWord, Hypothesis, Partial, log_add};
use crate::decode::Word;
use crate::lm::{FastMap, WordId};

impl BeamSearchDecoder {
    /// The first word output after a reset has no separator before it.
    pub(super) fn separate(&mut self, words: &mut [Word]) {
        if let Some(first) = words.first_mut()
            && !self.started
        {
            first.spaces_before = 0;
            self.started = true;
        }
    }

    /// The best hypothesis's words that are not final yet (they may still change), each
    /// with its own times; the last may still be being spoken (with a lexicon, it is shown
    /// as the word its spelling most likely becomes).
    pub fn pending(&self) -> Vec<Word> {
        let best = &self.beam[0];
        let mut words: Vec<Word> = best.words.iter().map(|w| self.done_word(w)).collect();
        if let Some(p) = &best.partial {
            words.push(self.partial_word(p));
        }
        words.retain(|w| !w.text.is_empty());
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
        let mut best: Option<(f64, Hypothesis)> = None;
        let beam = std::mem::take(&mut self.beam);
        let fallback = beam.first().cloned().unwrap_or_else(|| self.initial());
        for hyp in beam {
            self.complete_partial(hyp, |mut done| {
                done.lm_score += self.lm_weight
                    * f64::from(self.config.lm.log_prob(done.context.words(), Some(end)));
                // A phrase not finished by the end of the stream gains nothing.
                if let Some(h) = &self.hot {
                    done.lm_score += h.graph.finish(done.hot);
                }
                let score = done.score();
                if best.as_ref().is_none_or(|(s, _)| score > *s) {
                    best = Some((score, done));
                }
            });
        }
        let mut words: Vec<Word> = match best {
            Some((_, hyp)) => hyp.words.iter().map(|w| self.done_word(w)).collect(),
            // No hypothesis ends in a whole word (the stream stopped mid-word): output the
            // best one as it stands rather than lose what was heard; a partial phoneme
            // spelling is no word, so then only the words before it.
            None => {
                let mut words: Vec<Word> =
                    fallback.words.iter().map(|w| self.done_word(w)).collect();
                if let Some(p) = &fallback.partial
                    && self.units.writes_partial()
                {
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

    /// Completes the hypothesis's partial word as if a boundary followed, as each word its
    /// spelling is (several: homophones), and gives each completed hypothesis to `done`.
    /// None if the partial spelling is not a word (only the start of one).
    pub(super) fn complete_partial(&self, mut hyp: Hypothesis, mut done: impl FnMut(Hypothesis)) {
        let Some(partial) = hyp.partial else {
            return done(hyp);
        };
        let hot = self.hot.as_ref().map_or(0, |h| h.graph.separate(hyp.hot).0);
        let mut words = self.units.completions(&partial).peekable();
        while let Some(word) = words.next() {
            let lm_score = self.complete_score(&hyp, word);
            if words.peek().is_none() {
                // The last (usually the only) word takes the hypothesis itself.
                hyp.partial = None;
                hyp.lm_score = lm_score;
                hyp.hot = hot;
                self.add_word(&mut hyp, word, partial);
                return done(hyp);
            }
            let mut copy = hyp.clone();
            copy.partial = None;
            copy.lm_score = lm_score;
            copy.hot = hot;
            self.add_word(&mut copy, word, partial);
            done(copy);
        }
    }

    /// A long silence ends the word being spelled, as a boundary would: hypotheses whose
    /// partial spelling is not a word are dropped (unless that would drop them all).
    pub(super) fn complete_after_silence(&self, hyps: Vec<Hypothesis>) -> Vec<Hypothesis> {
        let mut merged: Vec<Hypothesis> = Vec::with_capacity(hyps.len());
        // Every completed hypothesis has no partial word: its words are its text.
        let mut index: FastMap<Vec<WordId>, usize> = FastMap::default();
        for hyp in &hyps {
            self.complete_partial(hyp.clone(), |done| {
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
            });
        }
        if merged.is_empty() { hyps } else { merged }
    }

    /// Outputs the words that are final: those every hypothesis shares, then those that
    /// ended `commit_delay_frames` ago in the best hypothesis.
    pub(super) fn commit(&mut self, out: &mut Vec<Word>) {
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

    /// The space before a word: one, none before one that opens with the vocabulary's
    /// punctuation (NeMo's text drops it).
    fn spaces_before(&self, text: &str) -> u32 {
        let opens = text.chars().next();
        u32::from(!opens.is_some_and(|c| self.punctuation.contains(&c)))
    }

    pub(super) fn done_word(&self, w: &DoneWord) -> Word {
        let text = self.units.word_text(&self.spellings, w.id);
        Word {
            spaces_before: self.spaces_before(&text),
            text,
            start_frame: w.start,
            end_frame: w.end,
            confidence: w.confidence,
        }
    }

    pub(super) fn partial_word(&self, p: &Partial) -> Word {
        let text = self.units.partial_text(&self.spellings, p.state);
        Word {
            spaces_before: self.spaces_before(&text),
            text,
            start_frame: p.start,
            end_frame: p.end,
            confidence: p.confidence.value(self.aggregation),
        }
    }
}

// SPDX-License-Identifier: MPL-2.0
//! Streaming CTC prefix beam search with a word n-gram language model (`docs/DECODING.md`).
//!
//! The search is DeepSpeech's `ctc_beam_search_decoder` in log space: every hypothesis is a
//! collapsed label sequence with the probability of all alignments that end in blank and of
//! those that end in its last label. When a word completes (a space label, a silence of
//! `word_gap_frames`, or the end of the stream), its score gains
//! `lm_weight * ln p_lm(word | previous words) + word_bonus`. Hypotheses must spell words of
//! the language model's vocabulary (its spelling trie prunes the rest), as DeepSpeech does
//! with its scorer: a word outside the vocabulary cannot be output.
//!
//! Streaming output: a word is final once every hypothesis in the beam agrees on it, or once
//! it ended `commit_delay_frames` ago in the best hypothesis (hypotheses that disagree are
//! then dropped), so text never waits longer than that delay for the search to settle.
//! Commitment is decided frame by frame, so the result does not depend on how the frames
//! are split into `push()` calls.

use std::collections::HashMap;
use std::sync::Arc;

use super::confidence::{ConfidenceAggregation, Scorer, WordConfidence};
use super::{DecoderConfig, Word, check_labels};
use crate::error::{Error, Result};
use crate::lm::{NgramModel, TrieState, WordId};

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
    /// A word of the best hypothesis that ended this many frames ago is output even if
    /// other hypotheses still disagree. 0 = only when all agree (and at the end).
    pub commit_delay_frames: u32,
}

/// The word being spelled by a hypothesis.
#[derive(Debug, Clone)]
struct Partial {
    text: String,
    state: TrieState,
    start: u64,
    end: u64,
    /// The word's tokens on this path; a token's frames are the one that started it and
    /// those after it, while the path stays on its label, whose argmax is not blank (NeMo's
    /// `exclude_blank`, as the greedy decoder).
    confidence: WordConfidence,
}

#[derive(Debug, Clone)]
struct Hypothesis {
    /// Uncommitted text: each completed word followed by a space, then the partial word.
    /// Two hypotheses with the same text are the same label sequence and are merged.
    text: String,
    /// Uncommitted completed words.
    words: Vec<Word>,
    partial: Option<Partial>,
    /// Last label emitted on this path (`blank` when none), for the repeat collapse.
    last: usize,
    /// Previous words for the language model, the newest last (`<s>` at stream start).
    context: Vec<WordId>,
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
        let s = self.acoustic() + self.lm_score;
        if s.is_nan() { f64::NEG_INFINITY } else { s }
    }

    /// This hypothesis extended to `text` by `label`, with no probability mass yet (the
    /// caller adds the mass of this frame's paths and sets the partial word).
    fn extended(&self, text: String, label: usize) -> Self {
        Self {
            text,
            words: self.words.clone(),
            partial: self.partial.clone(),
            last: label,
            context: self.context.clone(),
            p_blank: f64::NEG_INFINITY,
            p_label: f64::NEG_INFINITY,
            lm_score: self.lm_score,
        }
    }
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
        ] {
            if !value.is_finite() {
                return Err(Error::Settings(format!(
                    "the {name} must be a finite number (got {value})"
                )));
            }
        }
        let is_space: Vec<bool> = labels.iter().map(|l| l == " ").collect();
        if !is_space.contains(&true) {
            return Err(Error::Settings(
                "beam search with a word language model needs a space label (\" \")".into(),
            ));
        }
        let blank = labels.len();
        let scorer = Scorer::new(decoder.confidence.measure, blank + 1).map_err(Error::Settings)?;
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
    }

    fn initial(&self) -> Hypothesis {
        Hypothesis {
            text: String::new(),
            words: Vec::new(),
            partial: None,
            last: self.blank,
            context: vec![self.config.lm.sentence_start()],
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
        let mut words: Vec<Word> = best.words.clone();
        if let Some(p) = &best.partial {
            words.push(partial_word(p, self.aggregation));
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
                    .map(|w| w.start_frame)
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
            let Some(mut done) = self.complete_partial(hyp.clone()) else {
                continue;
            };
            done.lm_score += weight * f64::from(self.config.lm.log_prob(&done.context, Some(end)));
            let score = done.score();
            if best.as_ref().is_none_or(|(s, _)| score > *s) {
                best = Some((score, done));
            }
        }
        let words = match best {
            Some((_, hyp)) => hyp.words,
            // No hypothesis ends in a whole word (the stream stopped mid-word): output the
            // best one as it stands rather than lose what was heard.
            None => {
                let mut hyp = fallback;
                if let Some(p) = hyp.partial.take() {
                    hyp.words.push(partial_word(&p, self.aggregation));
                }
                hyp.words
            }
        };
        let mut words = words;
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
        let word = self.config.lm.trie_word(partial.state)?;
        self.add_word(&mut hyp, word, partial);
        hyp.text.push(' ');
        Some(hyp)
    }

    fn add_word(&self, hyp: &mut Hypothesis, word: WordId, partial: Partial) {
        let lm = &self.config.lm;
        let logp = lm.log_prob(&hyp.context, Some(word));
        hyp.lm_score +=
            f64::from(self.config.lm_weight) * f64::from(logp) + f64::from(self.config.word_bonus);
        hyp.context.push(word);
        let keep = lm.order().saturating_sub(1).max(1);
        if hyp.context.len() > keep {
            hyp.context.drain(..hyp.context.len() - keep);
        }
        hyp.words.push(partial_word(&partial, self.aggregation));
    }

    fn step(&mut self, row: &[f32]) {
        let t = self.next_frame;
        let confidence = self.scorer.score(row);
        let clean = |lp: f32| {
            if lp.is_nan() {
                f64::NEG_INFINITY
            } else {
                f64::from(lp)
            }
        };
        let blank_lp = clean(row[self.blank]);
        let candidates: Vec<usize> = (0..self.blank)
            .filter(|&c| row[c] >= MIN_TOKEN_LOGPROB)
            .collect();
        let blank_wins = candidates.iter().all(|&c| row[c] < row[self.blank]);
        self.silence = if blank_wins {
            self.silence.saturating_add(1)
        } else {
            0
        };

        let mut next: Vec<Hypothesis> =
            Vec::with_capacity(self.beam.len() * (candidates.len() + 1));
        let mut index: HashMap<String, usize> = HashMap::with_capacity(next.capacity());
        // The entry for `text` in `next`, made by `make(text)` if there is none yet.
        let slot = |next: &mut Vec<Hypothesis>,
                    index: &mut HashMap<String, usize>,
                    text: String,
                    make: &dyn Fn(String) -> Hypothesis|
         -> usize {
            if let Some(&i) = index.get(&text) {
                return i;
            }
            index.insert(text.clone(), next.len());
            next.push(make(text));
            next.len() - 1
        };

        for hyp in std::mem::take(&mut self.beam) {
            let total = hyp.acoustic();
            // Mass that stays on this prefix: a blank, a space before any letter of a word
            // (which changes nothing), or the last label again (the same token going on).
            let stay_blank = total + blank_lp;
            let mut stay_label = f64::NEG_INFINITY;
            let mut token_goes_on = false;
            for &c in &candidates {
                let lp = f64::from(row[c]);
                if self.is_space[c] {
                    let Some(partial) = &hyp.partial else {
                        stay_label = log_add(stay_label, total + lp);
                        continue;
                    };
                    let Some(word) = self.config.lm.trie_word(partial.state) else {
                        continue; // not a vocabulary word
                    };
                    let make = |text: String| {
                        let mut h = hyp.extended(text, c);
                        let p = h.partial.take().expect("checked above");
                        self.add_word(&mut h, word, p);
                        h
                    };
                    let i = slot(&mut next, &mut index, format!("{} ", hyp.text), &make);
                    next[i].p_label = log_add(next[i].p_label, total + lp);
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
                let from = hyp
                    .partial
                    .as_ref()
                    .map_or(self.config.lm.trie_root(), |p| p.state);
                let Some(state) = self.config.lm.trie_step(from, &self.labels[c]) else {
                    continue; // no vocabulary word is spelled this way
                };
                let make = |text: String| {
                    let mut h = hyp.extended(text, c);
                    // A new token on this path: the previous one ends, this frame starts it.
                    let mut word = hyp
                        .partial
                        .as_ref()
                        .map_or(WordConfidence::EMPTY, |p| p.confidence);
                    word.close_token(self.aggregation);
                    word.add_frame(self.aggregation, confidence);
                    h.partial = Some(match &hyp.partial {
                        Some(p) => Partial {
                            text: format!("{}{}", p.text, self.labels[c]),
                            state,
                            start: p.start,
                            end: t + 1,
                            confidence: word,
                        },
                        None => Partial {
                            text: self.labels[c].clone(),
                            state,
                            start: t,
                            end: t + 1,
                            confidence: word,
                        },
                    });
                    h
                };
                let text = format!("{}{}", hyp.text, self.labels[c]);
                let i = slot(&mut next, &mut index, text, &make);
                next[i].p_label = log_add(next[i].p_label, extend);
            }
            // The hypothesis itself moves on (or merges into an extension of another one
            // that spells the same text).
            let i = match index.get(&hyp.text) {
                Some(&i) => i,
                None => {
                    index.insert(hyp.text.clone(), next.len());
                    next.push(Hypothesis {
                        p_blank: f64::NEG_INFINITY,
                        p_label: f64::NEG_INFINITY,
                        ..hyp
                    });
                    next.len() - 1
                }
            };
            let entry = &mut next[i];
            entry.p_blank = log_add(entry.p_blank, stay_blank);
            entry.p_label = log_add(entry.p_label, stay_label);
            if token_goes_on && let Some(p) = entry.partial.as_mut() {
                p.end = t + 1;
                if !blank_wins {
                    p.confidence.add_frame(self.aggregation, confidence);
                }
            }
        }

        if self.word_gap_frames > 0 && self.silence == self.word_gap_frames {
            next = self.complete_after_silence(next);
        }
        self.beam = self.prune(next);
        self.next_frame += 1;
    }

    /// A long silence ends the word being spelled, as a space would: hypotheses whose
    /// partial text is not a word are dropped (unless that would drop them all).
    fn complete_after_silence(&self, hyps: Vec<Hypothesis>) -> Vec<Hypothesis> {
        let mut merged: Vec<Hypothesis> = Vec::with_capacity(hyps.len());
        let mut index: HashMap<String, usize> = HashMap::new();
        for hyp in &hyps {
            let Some(done) = self.complete_partial(hyp.clone()) else {
                continue;
            };
            match index.get(&done.text) {
                Some(&i) => {
                    merged[i].p_blank = log_add(merged[i].p_blank, done.p_blank);
                    merged[i].p_label = log_add(merged[i].p_label, done.p_label);
                }
                None => {
                    index.insert(done.text.clone(), merged.len());
                    merged.push(done);
                }
            }
        }
        if merged.is_empty() { hyps } else { merged }
    }

    fn prune(&self, mut hyps: Vec<Hypothesis>) -> Vec<Hypothesis> {
        hyps.sort_by(|a, b| b.score().total_cmp(&a.score()));
        hyps.truncate(self.config.beam_width);
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
        let same = |a: &Word, b: &Word| {
            a.text == b.text && a.start_frame == b.start_frame && a.end_frame == b.end_frame
        };
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
                .take_while(|w| w.end_frame + delay <= self.next_frame)
                .count()
        };
        let count = shared.max(overdue);
        if count == 0 {
            return;
        }
        let committed: Vec<Word> = best.words[..count].to_vec();
        let bytes: usize = committed.iter().map(|w| w.text.len() + 1).sum();
        self.beam.retain(|h| {
            h.words.len() >= count
                && h.words[..count]
                    .iter()
                    .zip(&committed)
                    .all(|(a, b)| same(a, b))
        });
        for h in &mut self.beam {
            h.words.drain(..count);
            h.text.drain(..bytes);
        }
        out.extend(committed);
    }
}

fn partial_word(p: &Partial, aggregation: ConfidenceAggregation) -> Word {
    Word {
        text: p.text.clone(),
        spaces_before: 1,
        start_frame: p.start,
        end_frame: p.end,
        confidence: p.confidence.value(aggregation),
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
            commit_delay_frames: 0,
        };
        let d = DecoderConfig::default();
        assert!(BeamSearchDecoder::new(english_labels(), d, config(0, 0.5)).is_err());
        assert!(BeamSearchDecoder::new(english_labels(), d, config(8, f32::NAN)).is_err());
        let no_space: Vec<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        assert!(
            BeamSearchDecoder::new(no_space, d, config(8, 0.5))
                .unwrap_err()
                .to_string()
                .contains("space")
        );
    }
}

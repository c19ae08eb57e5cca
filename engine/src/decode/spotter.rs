// SPDX-License-Identifier: MPL-2.0
//! CTC word spotting: where in a stretch of log-probs each hotword's labels could have been
//! said, and whether that explains the audio better than what the model's own best path says
//! there (NeMo's CTC-based word spotter, CTC-WS, `context_biasing/ctc_based_word_spotter.py`,
//! reduced to what a decision needs).
//!
//! The beam search can only write a hotword whose exact labels the model put near the top of
//! each frame. A model that has never heard a name writes sound-alikes whose labels differ
//! from the name's spelling in a phoneme or two, and the phrase never enters the beam. The
//! spotter scores the phrase's own labels frame by frame instead (a Viterbi alignment through
//! the CTC topology of its labels, starting and ending anywhere), so a phoneme the model heard
//! differently costs that phoneme's log-prob on its frames, not the whole phrase. Each frame a
//! phrase label is aligned to earns `bonus`; the best path's labels over the same frames earn
//! `best_bonus` per label. A phrase is spotted where its aligned score beats the best path's
//! over its frames: with `bonus` large against the per-frame cost of a misheard label, names
//! with one wrong phoneme are spotted; with `best_bonus`, short or mostly misheard phrases are
//! not.
//!
//! The element does not use it: measured against boosting in the beam search on the hotword
//! sets (`tools/hotwords/README.md`, *CTC word spotting*; `examples/hotword_spotting.rs`), it
//! finds more names only by writing them over sound-alike words too. It serves applications
//! that search recordings for phrases, and the measurement.

/// How generous the spotter is; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpotterConfig {
    /// Natural-log score added for each frame aligned to one of a phrase's labels (NeMo's
    /// `cb_weight`, 3.0).
    pub bonus: f32,
    /// Added for each label of the best path over a spotted phrase's frames (NeMo's
    /// `ctc_ali_token_weight`, 0.5).
    pub best_bonus: f32,
    /// Alignments more than this below the best alignment of the same phrase at the same
    /// frame are dropped (NeMo's `beam_threshold`, 5.0).
    pub beam: f32,
    /// A phrase may start only on a frame where its first label has at least this
    /// probability (NeMo's `non_blank_threshold`, 0.001).
    pub start_probability: f32,
}

impl Default for SpotterConfig {
    fn default() -> Self {
        Self {
            bonus: 3.0,
            best_bonus: 0.5,
            beam: 5.0,
            start_probability: 0.001,
        }
    }
}

/// A phrase to spot: its labels (model label indices, none the blank). Between two of them the
/// [`Frames::skippable`] labels may be aligned as if they were the blank (the word boundary
/// of a phoneme model between or inside words: models split unknown names into several
/// words).
#[derive(Debug, Clone, PartialEq)]
pub struct Phrase {
    /// The labels, in order.
    pub labels: Vec<u32>,
}

/// One spotted phrase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spot {
    /// Index of the phrase in the list given to [`spot`].
    pub phrase: usize,
    /// First frame aligned to a label of the phrase.
    pub start_frame: usize,
    /// One past the last frame aligned to its last label.
    pub end_frame: usize,
    /// The alignment's score (log-probs plus bonuses).
    pub score: f32,
    /// The best path's score over the same frames (its log-probs plus its label bonus).
    pub best_score: f32,
}

/// Log-probs `[frames][vocab]` with the CTC blank at `blank`; labels in `skippable` count as
/// the blank between a phrase's labels.
#[derive(Debug, Clone, Copy)]
pub struct Frames<'a> {
    /// Row-major log-probs.
    pub logprobs: &'a [f32],
    /// Row width.
    pub vocab: usize,
    /// The blank's index.
    pub blank: usize,
    /// Labels aligned as silence inside a phrase (a phoneme model's word boundary).
    pub skippable: &'a [u32],
}

impl Frames<'_> {
    fn frames(&self) -> usize {
        self.logprobs.len() / self.vocab.max(1)
    }

    fn row(&self, t: usize) -> &[f32] {
        &self.logprobs[t * self.vocab..(t + 1) * self.vocab]
    }

    /// The best "nothing said" score of a frame inside a phrase.
    fn gap(&self, row: &[f32]) -> f32 {
        self.skippable
            .iter()
            .map(|&l| row[l as usize])
            .fold(row[self.blank], f32::max)
    }
}

/// Viterbi state of one phrase: per label, the best alignment now on that label (`on`) and
/// now in the gap after it (`after`), each with the frame it started.
#[derive(Clone, Copy)]
struct Cell {
    score: f32,
    start: usize,
}

const DEAD: Cell = Cell {
    score: f32::NEG_INFINITY,
    start: 0,
};

fn better(a: Cell, b: Cell) -> Cell {
    if b.score > a.score { b } else { a }
}

/// Every place each phrase can be spotted: for each phrase, its best alignments that end
/// where the alignment's score beats the best path's over the same frames, overlapping ones
/// reduced to the best (by margin over the best path). Sorted by start frame.
pub fn spot(frames: &Frames<'_>, phrases: &[Phrase], config: &SpotterConfig) -> Vec<Spot> {
    let n = frames.frames();
    if n == 0 || phrases.is_empty() {
        return Vec::new();
    }
    let best = BestPath::new(frames);
    let start_floor = config.start_probability.max(f32::MIN_POSITIVE).ln();
    let mut found = Vec::new();
    for (index, phrase) in phrases.iter().enumerate() {
        let mut hits = align(frames, phrase, config, start_floor)
            .into_iter()
            .filter_map(|(start, end, score)| {
                let best_score = best.score(start, end, config.best_bonus);
                (score > best_score).then_some(Spot {
                    phrase: index,
                    start_frame: start,
                    end_frame: end,
                    score,
                    best_score,
                })
            })
            .collect::<Vec<_>>();
        found.append(&mut hits);
    }
    keep_best_of_overlaps(found)
}

/// The phrase's alignments: for every frame where an alignment can end on its last label,
/// the best such alignment `(start, end, score)`.
fn align(
    frames: &Frames<'_>,
    phrase: &Phrase,
    config: &SpotterConfig,
    start_floor: f32,
) -> Vec<(usize, usize, f32)> {
    let labels = &phrase.labels;
    let Some(&first) = labels.first() else {
        return Vec::new();
    };
    let k = labels.len();
    let mut on = vec![DEAD; k];
    let mut after = vec![DEAD; k];
    let mut ends = Vec::new();
    for t in 0..frames.frames() {
        let row = frames.row(t);
        let gap = frames.gap(row);
        let mut next_on = vec![DEAD; k];
        let mut next_after = vec![DEAD; k];
        for j in 0..k {
            let here = row[labels[j] as usize] + config.bonus;
            // Stay on the label, or come from the previous label (directly only when it is
            // another label: CTC needs a blank between two equal ones) or its gap.
            let mut best = Cell {
                score: on[j].score + here,
                start: on[j].start,
            };
            if j > 0 {
                best = better(
                    best,
                    Cell {
                        score: after[j - 1].score + here,
                        start: after[j - 1].start,
                    },
                );
                if labels[j - 1] != labels[j] {
                    best = better(
                        best,
                        Cell {
                            score: on[j - 1].score + here,
                            start: on[j - 1].start,
                        },
                    );
                }
            } else if row[first as usize] >= start_floor {
                best = better(
                    best,
                    Cell {
                        score: here,
                        start: t,
                    },
                );
            }
            next_on[j] = best;
            if j + 1 < k {
                next_after[j] = better(
                    Cell {
                        score: on[j].score + gap,
                        start: on[j].start,
                    },
                    Cell {
                        score: after[j].score + gap,
                        start: after[j].start,
                    },
                );
            }
        }
        prune(&mut next_on, &mut next_after, config.beam);
        on = next_on;
        after = next_after;
        if on[k - 1].score.is_finite() {
            ends.push((on[k - 1].start, t + 1, on[k - 1].score));
        }
    }
    ends
}

/// Drops cells far below the best of the frame.
fn prune(on: &mut [Cell], after: &mut [Cell], beam: f32) {
    let top = on
        .iter()
        .chain(after.iter())
        .map(|c| c.score)
        .fold(f32::NEG_INFINITY, f32::max);
    for cell in on.iter_mut().chain(after.iter_mut()) {
        if cell.score < top - beam {
            *cell = DEAD;
        }
    }
}

/// The model's best path (each frame's most likely label): prefix sums of its log-probs and
/// of the labels it starts, so its score over any frames is two subtractions.
struct BestPath {
    logprob: Vec<f64>,
    labels: Vec<u32>,
}

impl BestPath {
    fn new(frames: &Frames<'_>) -> Self {
        let n = frames.frames();
        let mut logprob = Vec::with_capacity(n + 1);
        let mut labels = Vec::with_capacity(n + 1);
        logprob.push(0.0);
        labels.push(0);
        let mut previous = None;
        for t in 0..n {
            let row = frames.row(t);
            let (arg, &value) = row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .expect("a row has a label");
            let is_label = arg != frames.blank && !frames.skippable.contains(&(arg as u32));
            let starts = is_label && previous != Some(arg);
            previous = Some(arg);
            logprob.push(logprob[t] + f64::from(value));
            labels.push(labels[t] + u32::from(starts));
        }
        Self { logprob, labels }
    }

    /// Its score over frames `start..end`: log-probs plus `bonus` per label it starts there.
    fn score(&self, start: usize, end: usize, bonus: f32) -> f32 {
        let logprob = self.logprob[end] - self.logprob[start];
        let labels = self.labels[end] - self.labels[start];
        logprob as f32 + bonus * labels as f32
    }
}

/// Of spots that overlap, the one whose score beats the best path by most (NeMo keeps the
/// best-scoring of overlapping hypotheses; the margin compares phrases of different lengths
/// fairly).
fn keep_best_of_overlaps(mut spots: Vec<Spot>) -> Vec<Spot> {
    spots.sort_by(|a, b| {
        (b.score - b.best_score)
            .total_cmp(&(a.score - a.best_score))
            .then(a.start_frame.cmp(&b.start_frame))
    });
    let mut kept: Vec<Spot> = Vec::new();
    for spot in spots {
        let overlaps = kept
            .iter()
            .any(|k| spot.start_frame < k.end_frame && k.start_frame < spot.end_frame);
        if !overlaps {
            kept.push(spot);
        }
    }
    kept.sort_by_key(|s| s.start_frame);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    const VOCAB: usize = 5; // labels 0..3, blank 4
    const BLANK: usize = 4;

    /// Log-probs where each frame is `p` sure of its label and spreads the rest evenly.
    fn confident(path: &[usize], p: f32) -> Vec<f32> {
        let rest = ((1.0 - p) / (VOCAB - 1) as f32).ln();
        path.iter()
            .flat_map(|&l| (0..VOCAB).map(move |v| if v == l { p.ln() } else { rest }))
            .collect()
    }

    fn frames(logprobs: &[f32]) -> Frames<'_> {
        Frames {
            logprobs,
            vocab: VOCAB,
            blank: BLANK,
            skippable: &[],
        }
    }

    #[test]
    fn spots_a_phrase_the_best_path_spells() {
        let lp = confident(&[4, 4, 0, 1, 1, 4, 2, 4, 4], 0.9);
        let spots = spot(
            &frames(&lp),
            &[Phrase {
                labels: vec![0, 1, 2],
            }],
            &SpotterConfig::default(),
        );
        assert_eq!(spots.len(), 1);
        assert_eq!((spots[0].start_frame, spots[0].end_frame), (2, 7));
    }

    #[test]
    fn one_misheard_label_is_forgiven_by_the_bonus_but_not_without_it() {
        // The model heard 3 where the phrase has 1.
        let lp = confident(&[4, 0, 0, 3, 3, 2, 2, 0, 4], 0.8);
        let phrase = [Phrase {
            labels: vec![0, 1, 2, 0],
        }];
        assert_eq!(
            spot(&frames(&lp), &phrase, &SpotterConfig::default()).len(),
            1
        );
        let stingy = SpotterConfig {
            bonus: 0.5,
            ..SpotterConfig::default()
        };
        assert!(spot(&frames(&lp), &phrase, &stingy).is_empty());
    }

    #[test]
    fn mostly_other_labels_are_not_a_spot() {
        let lp = confident(&[4, 0, 3, 3, 3, 3, 3, 3, 4], 0.95);
        let phrase = [Phrase {
            labels: vec![0, 1, 2, 1],
        }];
        assert!(spot(&frames(&lp), &phrase, &SpotterConfig::default()).is_empty());
    }

    #[test]
    fn repeated_labels_need_a_blank_between_them() {
        // "0 0" as one run is one label 0, not two.
        let one = confident(&[4, 0, 0, 0, 4], 0.99);
        let two = confident(&[4, 0, 4, 0, 4], 0.99);
        let phrase = [Phrase { labels: vec![0, 0] }];
        let config = SpotterConfig {
            bonus: 1.0,
            best_bonus: 0.0,
            ..SpotterConfig::default()
        };
        let from_one = spot(&frames(&one), &phrase, &config);
        let from_two = spot(&frames(&two), &phrase, &config);
        assert_eq!(from_two.len(), 1);
        // Through a single run the second 0 has to take a frame the model gave the first
        // one's continuation, which costs nothing here, but it must be a blank in between:
        // the alignment uses a low-probability blank.
        assert!(from_one.is_empty() || from_one[0].score < from_two[0].score);
    }

    #[test]
    fn skippable_labels_join_the_words_of_a_phrase() {
        // 3 is a word boundary the model put inside the phrase.
        let lp = confident(&[4, 0, 1, 3, 2, 0, 4], 0.9);
        let phrase = [Phrase {
            labels: vec![0, 1, 2, 0],
        }];
        let stingy = SpotterConfig {
            bonus: 0.3,
            best_bonus: 0.0,
            ..SpotterConfig::default()
        };
        let plain = spot(&frames(&lp), &phrase, &stingy);
        let skipping = spot(
            &Frames {
                skippable: &[3],
                ..frames(&lp)
            },
            &phrase,
            &stingy,
        );
        assert!(plain.is_empty());
        assert_eq!(skipping.len(), 1);
    }

    #[test]
    fn overlapping_spots_keep_the_clearest() {
        let lp = confident(&[4, 0, 1, 2, 4], 0.9);
        let phrases = [
            Phrase {
                labels: vec![0, 1, 2],
            },
            Phrase {
                labels: vec![0, 1, 3],
            },
        ];
        let spots = spot(&frames(&lp), &phrases, &SpotterConfig::default());
        assert_eq!(spots.len(), 1);
        assert_eq!(spots[0].phrase, 0);
    }

    #[test]
    fn empty_input_spots_nothing() {
        assert!(
            spot(
                &frames(&[]),
                &[Phrase { labels: vec![0] }],
                &SpotterConfig::default()
            )
            .is_empty()
        );
        assert!(
            spot(
                &frames(&confident(&[0], 0.9)),
                &[Phrase { labels: vec![] }],
                &SpotterConfig::default()
            )
            .is_empty()
        );
    }
}

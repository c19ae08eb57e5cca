// SPDX-License-Identifier: MPL-2.0
//! Cutting timed words into captions (cues) that read well: the rules common subtitle
//! guidelines give (Netflix's and the BBC's English style guides: at most two lines of at
//! most 42 characters, at most 7 seconds on screen, a new caption after a pause), applied as
//! the words arrive.
//!
//! The element cuts its phrase buffers with these rules and `quartznet-transcribe` its
//! lines and SRT/WebVTT cues, so a phrase on a video, a line of text and a subtitle cue are
//! the same words. A caption only ends *between* words the model separated: a word it
//! continued (cut only for timing, [`crate::decode::Word::spaces_before`] 0) stays with the
//! word before.

/// The limits a caption keeps to. All times in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CaptionRules {
    /// Characters per line (a single word longer than this gets a line of its own).
    pub max_line_chars: usize,
    /// Lines per caption.
    pub max_lines: usize,
    /// From the first word's start to the last word's end.
    pub max_duration: f64,
    /// Silence between two words that starts a new caption.
    pub pause: f64,
    /// Shortest time a caption stays on screen when the next one leaves room (a caption
    /// writer extends its end into the silence after it, never over the next caption).
    pub min_display: f64,
    /// Time left between a caption's extended end and the next caption's start, so a
    /// player shows a change (two frames at 25 fps).
    pub min_gap: f64,
}

impl CaptionRules {
    /// Netflix's English guide (42 characters, 2 lines, 7 s; 5/6 s minimum, 2 frames
    /// between events), a pause of 0.5 s (a breath between phrases; the element's default
    /// word gap is 0.3 s).
    pub const DEFAULT: Self = Self {
        max_line_chars: 42,
        max_lines: 2,
        max_duration: 7.0,
        pause: 0.5,
        min_display: 5.0 / 6.0,
        min_gap: 0.08,
    };
}

impl Default for CaptionRules {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What the caption rules need of a word.
pub trait CaptionWord {
    /// The word's text, without its separator.
    fn text(&self) -> &str;
    /// The model wrote no space before it: it continues the word before (cut only for
    /// timing), so no caption or line may end between them.
    fn continues(&self) -> bool;
    /// Start, seconds.
    fn start(&self) -> f64;
    /// End, seconds.
    fn end(&self) -> f64;
}

/// Groups words into captions as they arrive: [`CaptionBuilder::push`] hands back a
/// caption once a word cannot join it, [`CaptionBuilder::finish`] the last one.
#[derive(Debug)]
pub struct CaptionBuilder<W> {
    rules: CaptionRules,
    words: Vec<W>,
}

impl<W: CaptionWord> CaptionBuilder<W> {
    /// An empty builder.
    pub fn new(rules: CaptionRules) -> Self {
        Self {
            rules,
            words: Vec::new(),
        }
    }

    /// Adds `word`; returns the caption it closes when it cannot join the current one (it
    /// then starts the next).
    pub fn push(&mut self, word: W) -> Option<Vec<W>> {
        let closed = if self.fits(&word) {
            None
        } else {
            Some(std::mem::take(&mut self.words))
        };
        self.words.push(word);
        closed
    }

    /// The caption being built, if any (end of input, or of a chunk that must go out now).
    pub fn finish(&mut self) -> Option<Vec<W>> {
        (!self.words.is_empty()).then(|| std::mem::take(&mut self.words))
    }

    /// Whether no word is waiting.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    fn fits(&self, word: &W) -> bool {
        let (Some(first), Some(last)) = (self.words.first(), self.words.last()) else {
            return true;
        };
        if word.continues() {
            return true;
        }
        if word.start() - last.end() >= self.rules.pause
            || word.end() - first.start() > self.rules.max_duration
        {
            return false;
        }
        let mut units = units(&self.words);
        units.push(word.text().chars().count());
        greedy_line_count(&units, self.rules.max_line_chars) <= self.rules.max_lines
    }
}

/// Splits `words` into captions (all at once; [`CaptionBuilder`] word by word).
pub fn captions<W: CaptionWord + Clone>(words: &[W], rules: CaptionRules) -> Vec<Vec<W>> {
    let mut builder = CaptionBuilder::new(rules);
    let mut out: Vec<Vec<W>> = words
        .iter()
        .filter_map(|w| builder.push(w.clone()))
        .collect();
    out.extend(builder.finish());
    out
}

/// A caption's text as lines of at most `rules.max_line_chars` where possible: one line if
/// it fits, else two as even as possible (easier to read than a full line over a short
/// one), else filled greedily. Words are joined by one space, a continued word to the word
/// before without one.
pub fn caption_lines<W: CaptionWord>(words: &[W], rules: &CaptionRules) -> Vec<String> {
    let units = unit_texts(words);
    let lengths: Vec<usize> = units.iter().map(|u| u.chars().count()).collect();
    let total = joined_len(&lengths);
    let limit = rules.max_line_chars;
    if total <= limit || units.len() < 2 || rules.max_lines < 2 {
        return vec![units.join(" ")];
    }
    let even = (1..units.len())
        .map(|cut| {
            (
                joined_len(&lengths[..cut]),
                joined_len(&lengths[cut..]),
                cut,
            )
        })
        .filter(|&(a, b, _)| a <= limit && b <= limit)
        .min_by_key(|&(a, b, _)| a.abs_diff(b));
    if let Some((_, _, cut)) = even {
        return vec![units[..cut].join(" "), units[cut..].join(" ")];
    }
    let mut lines: Vec<String> = Vec::new();
    for unit in units {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + unit.chars().count() <= limit => {
                line.push(' ');
                line.push_str(&unit);
            }
            _ => lines.push(unit),
        }
    }
    lines
}

/// The captions' display times: each from its first word's start to its last word's end,
/// extended to `rules.min_display` where the silence after it allows (keeping
/// `rules.min_gap` before the next caption), never shortened.
pub fn display_times(spans: &[(f64, f64)], rules: &CaptionRules) -> Vec<(f64, f64)> {
    spans
        .iter()
        .enumerate()
        .map(|(i, &(start, end))| {
            let wanted = end.max(start + rules.min_display);
            let room = spans
                .get(i + 1)
                .map_or(f64::INFINITY, |&(next, _)| next - rules.min_gap);
            (start, wanted.min(room).max(end))
        })
        .collect()
}

/// The words' texts, each continued word joined to the one before: the pieces a line may
/// break between.
fn unit_texts<W: CaptionWord>(words: &[W]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in words {
        match out.last_mut() {
            Some(last) if w.continues() => last.push_str(w.text()),
            _ => out.push(w.text().to_string()),
        }
    }
    out
}

fn units<W: CaptionWord>(words: &[W]) -> Vec<usize> {
    unit_texts(words)
        .iter()
        .map(|u| u.chars().count())
        .collect()
}

/// Length of pieces joined by single spaces.
fn joined_len(lengths: &[usize]) -> usize {
    lengths.iter().sum::<usize>() + lengths.len().saturating_sub(1)
}

/// Lines needed to fill pieces greedily into lines of `limit` (the fewest possible).
fn greedy_line_count(lengths: &[usize], limit: usize) -> usize {
    let mut lines = 0;
    let mut current: Option<usize> = None;
    for &len in lengths {
        current = match current {
            Some(used) if used + 1 + len <= limit => Some(used + 1 + len),
            _ => {
                lines += 1;
                Some(len)
            }
        };
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct W(&'static str, bool, f64, f64);

    impl CaptionWord for W {
        fn text(&self) -> &str {
            self.0
        }
        fn continues(&self) -> bool {
            self.1
        }
        fn start(&self) -> f64 {
            self.2
        }
        fn end(&self) -> f64 {
            self.3
        }
    }

    /// Words of `len` letters, one every `step` seconds, each `step * 0.8` long.
    fn words(n: usize, step: f64) -> Vec<W> {
        (0..n)
            .map(|i| W("word", false, i as f64 * step, i as f64 * step + step * 0.8))
            .collect()
    }

    #[test]
    fn lines_and_count_limit_a_caption() {
        // "word" x n: 4 chars + 1 space; 42 chars hold 8 words per line, so 16 per caption.
        let cues = captions(&words(40, 0.2), CaptionRules::DEFAULT);
        let sizes: Vec<usize> = cues.iter().map(Vec::len).collect();
        assert_eq!(sizes, [16, 16, 8]);
        for cue in &cues {
            let lines = caption_lines(cue, &CaptionRules::DEFAULT);
            assert!(lines.len() <= 2, "{lines:?}");
            assert!(lines.iter().all(|l| l.chars().count() <= 42), "{lines:?}");
        }
    }

    #[test]
    fn duration_limits_a_caption() {
        // Slow speech: one word a second; 7 s holds 7 words.
        let cues = captions(&words(20, 1.0), CaptionRules::DEFAULT);
        for cue in &cues {
            assert!(cue.last().unwrap().3 - cue[0].2 <= 7.0);
        }
        assert_eq!(cues.len(), 3);
    }

    #[test]
    fn a_pause_starts_a_caption_but_a_continued_word_stays() {
        let input = vec![
            W("grace", false, 0.0, 0.4),
            W("and", false, 1.0, 1.2),
            W("the", false, 1.25, 1.4),
            W("ar", false, 1.45, 1.6),
            W("my", true, 2.5, 2.7),
        ];
        let cues = captions(&input, CaptionRules::DEFAULT);
        assert_eq!(cues.len(), 2);
        assert_eq!(cues[1].len(), 4);
        assert_eq!(
            caption_lines(&cues[1], &CaptionRules::DEFAULT),
            ["and the army"]
        );
    }

    #[test]
    fn two_lines_are_balanced() {
        let input: Vec<W> = [
            "the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "and", "runs",
        ]
        .iter()
        .enumerate()
        .map(|(i, t)| W(t, false, i as f64 * 0.3, i as f64 * 0.3 + 0.2))
        .collect();
        let lines = caption_lines(&input, &CaptionRules::DEFAULT);
        assert_eq!(
            lines,
            ["the quick brown fox jumps", "over the lazy dog and runs"]
        );
    }

    #[test]
    fn a_long_word_gets_its_own_line() {
        let long = "x".repeat(60);
        let leaked: &'static str = Box::leak(long.into_boxed_str());
        let input = vec![
            W("a", false, 0.0, 0.1),
            W(leaked, false, 0.2, 0.9),
            W("b", false, 1.0, 1.1),
        ];
        let cues = captions(&input, CaptionRules::DEFAULT);
        let lines: Vec<Vec<String>> = cues
            .iter()
            .map(|c| caption_lines(c, &CaptionRules::DEFAULT))
            .collect();
        assert!(lines.iter().all(|l| l.len() <= 2), "{lines:?}");
        assert_eq!(cues.iter().map(Vec::len).sum::<usize>(), 3);
    }

    #[test]
    fn short_captions_are_held_into_the_silence() {
        let rules = CaptionRules::DEFAULT;
        let times = display_times(&[(0.0, 0.3), (0.6, 0.9), (5.0, 7.0)], &rules);
        assert_eq!(times[0], (0.0, 0.6 - rules.min_gap));
        assert_eq!(times[1], (0.6, 0.6 + rules.min_display));
        assert_eq!(times[2], (5.0, 7.0));
        // Never shortened, even when the next one starts early.
        assert_eq!(
            display_times(&[(0.0, 1.0), (0.5, 2.0)], &rules)[0],
            (0.0, 1.0)
        );
    }

    #[test]
    fn nothing_in_nothing_out() {
        assert!(captions::<W>(&[], CaptionRules::DEFAULT).is_empty());
        let mut b = CaptionBuilder::<W>::new(CaptionRules::DEFAULT);
        assert!(b.finish().is_none());
    }
}

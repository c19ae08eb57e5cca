// SPDX-License-Identifier: MPL-2.0
//! Streaming greedy CTC decoding with word timing and confidence (`docs/DECODING.md`).
//!
//! Input is the acoustic model's log-probabilities, row-major `[frames][vocab]`, with
//! `vocab = labels.len() + 1` and the CTC blank as the LAST index (NeMo's layout for
//! character QuartzNet models: `blank_id = len(vocabulary)`). The rows are expected to be
//! log-softmax output (the confidence measures exponentiate them as probabilities).
//!
//! The decoder is a per-frame state machine, so the result never depends on how the frames
//! are split into `push()` calls: everything that spans frames (the previous argmax for the
//! repeat collapse, the open token, the word under construction, the silence counter) lives
//! in the decoder, not in the chunk.

use super::confidence::{ConfidenceAggregation, Scorer, WordConfidence};
use super::pieces::{PieceKind, PieceTable, WORD_START};
use super::{DecoderConfig, Word, check_labels, opens_with_punctuation, vocabulary_punctuation};
use crate::error::{Error, Result};

/// Index of the maximum, ties to the lowest index, like `torch.argmax`/`Tensor.max(dim)`
/// (which NeMo's greedy decoder uses). torch treats NaN as the maximum, so the first NaN
/// wins here too. An empty row returns 0 (callers never pass one).
#[inline]
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    let mut best_v = f32::NEG_INFINITY;
    for (i, &v) in row.iter().enumerate() {
        if v.is_nan() {
            return i;
        }
        if v > best_v || i == 0 {
            best = i;
            best_v = v;
        }
    }
    best
}

/// Streaming greedy CTC decoder producing words with frame timing and confidence.
///
/// Rules (`docs/DECODING.md`, identical to NeMo's `GreedyCTCInfer` + `CTCDecoding`):
/// - argmax per frame; token `p` is emitted when `p != blank` and (`p != previous` or
///   `previous == blank`); `previous` carries across `push()` calls.
/// - A token starts at its first frame and ends after its last consecutive frame with the
///   same argmax (exclusive end).
/// - Tokens equal to the label `" "` split words and are not part of them; leading or
///   repeated spaces produce no empty words. Labels are concatenated as they are (a label
///   may be longer than one character), only a label exactly equal to `" "` splits.
///   Without a `" "` label, a word only ends on the silence gap or at `finish()`, so each
///   such finalisation yields the whole text since the previous one as one "word".
/// - Each word records the space tokens emitted before it (`Word::spaces_before`); a word
///   ended for timing only (word gap, maximum length) and then continued gets 0, so
///   `transcript(words)` is the collapsed label sequence, NeMo's text. Like NeMo, one space
///   before a word that opens with the vocabulary's punctuation is dropped (`don 't` ->
///   `don't`).
/// - Confidence as NeMo's `compute_confidence` with `exclude_blank: true`: a token's
///   confidence aggregates the frame confidences of its run (blank frames belong to no
///   token), a word's aggregates its tokens, both with the configured aggregation
///   ([`super::ConfidenceConfig`]). A word cut for timing (word gap, maximum length) is
///   scored on its own tokens; a token that runs on past a maximum-length cut is scored on
///   its frames up to the cut.
///
/// With SentencePiece pieces ([`GreedyCtcDecoder::with_pieces`]) the tokens write NeMo's
/// text ([`PieceTable::text`]) instead, and words are that text's words
/// (`docs/SUBWORD.md`, "Greedy decoding in this repository"): a `▁` (or a space of the
/// unknown surface) is a separator, so a piece starting with `▁` begins a new word and
/// carries its space(s) as `spaces_before`; mid-word pieces continue the word; byte pieces
/// are decoded together as UTF-8 within the word; control pieces write nothing.
#[derive(Debug, Clone)]
pub struct GreedyCtcDecoder {
    labels: Vec<String>,
    /// `is_space[i]` for each label index (blank excluded); all false for pieces, whose
    /// separators are the `▁` inside them.
    is_space: Vec<bool>,
    /// Whether label `i` starts with vocabulary punctuation (NeMo drops a space before it).
    opens_punctuation: Vec<bool>,
    blank: usize,
    word_gap_frames: u32,
    max_word_frames: u32,
    scorer: Scorer,
    aggregation: ConfidenceAggregation,

    /// Stream index of the next frame to be pushed.
    next_frame: u64,
    /// Argmax of the previous frame; `blank` after new/reset/finish so the first token of
    /// a new segment is always emitted.
    prev: usize,
    /// Consecutive blank frames seen since the last non-blank frame.
    gap: u32,
    /// Space tokens emitted since the last word started (they separate it from the next).
    spaces: u32,

    word_active: bool,
    word_text: String,
    /// Space tokens between the previous word and this one.
    word_spaces: u32,
    word_start: u64,
    /// End (exclusive) of the word's last closed token.
    word_end: u64,
    /// The word's closed tokens and the open run of `prev` (meaningful when `prev` is a
    /// word character).
    word_conf: WordConfidence,
    /// Pieces only: separators were written after the word's text, so the next text
    /// written starts a new word. The word stays open until then because the separator may
    /// come from the same token as its text (` ⁇ `), whose run has not ended yet, and so
    /// that a punctuation character written next can take back one separator.
    word_ended: bool,
    /// How pieces make text (`None`: character labels).
    pieces: Option<Box<PieceSpelling>>,
}

/// What the greedy decoder needs to write a SentencePiece model's text as NeMo does
/// ([`PieceTable::decode`], then one whitespace less before punctuation), token by token.
#[derive(Debug, Clone)]
struct PieceSpelling {
    table: PieceTable,
    /// What each piece writes, with `▁` standing for a separator (a word-splitting space):
    /// normal pieces as they are, the unknown piece its surface with its spaces as `▁`
    /// (SentencePiece surrounds it with spaces to set it apart as a word of its own),
    /// control and byte pieces nothing (bytes are decoded in runs).
    spelling: Vec<Vec<char>>,
    /// Still at the start of the text: a piece drops its leading `▁` (the dummy prefix).
    at_start: bool,
    /// Whether anything (separators included) has been written since the stream started.
    written: bool,
    /// Bytes of the current word that do not make a character yet (at most 3 after each
    /// token: a prefix of a valid UTF-8 sequence).
    bytes: Vec<u8>,
    /// Whether the open run (`prev`) belongs to the current word (it wrote text or bytes
    /// into it); the character path asks the label instead.
    in_word: bool,
}

impl PieceSpelling {
    fn new(table: PieceTable) -> Self {
        let spelling = (0..table.pieces().len())
            .map(|id| match table.kind(id) {
                Some(PieceKind::Unknown) => table
                    .unknown_surface()
                    .chars()
                    .map(|c| if c == ' ' { WORD_START } else { c })
                    .collect(),
                Some(PieceKind::Control | PieceKind::Byte(_)) | None => Vec::new(),
                Some(_) => table.pieces()[id].chars().collect(),
            })
            .collect();
        Self {
            table,
            spelling,
            at_start: true,
            written: false,
            bytes: Vec::new(),
            in_word: false,
        }
    }

    fn reset(&mut self) {
        self.at_start = true;
        self.written = false;
        self.bytes.clear();
        self.in_word = false;
    }

    /// Takes the characters of the pending bytes that are settled: every complete
    /// character and, for a byte that can begin no character, U+FFFD (SentencePiece writes
    /// one per such byte). With `all`, the run is over and an unfinished sequence at its
    /// end is settled too (one U+FFFD per byte). Decoding the run piecewise this way gives
    /// the same characters as decoding it at once: a complete prefix stays complete and an
    /// invalid byte stays invalid whatever follows.
    fn settled_bytes(&mut self, all: bool) -> Vec<char> {
        let mut out = Vec::new();
        let mut rest = 0;
        while rest < self.bytes.len() {
            match std::str::from_utf8(&self.bytes[rest..]) {
                Ok(valid) => {
                    out.extend(valid.chars());
                    rest = self.bytes.len();
                }
                Err(e) => {
                    let valid = &self.bytes[rest..rest + e.valid_up_to()];
                    out.extend(std::str::from_utf8(valid).expect("checked valid").chars());
                    rest += e.valid_up_to();
                    if e.error_len().is_none() && !all {
                        // An unfinished character: the next bytes may complete it.
                        break;
                    }
                    out.push(char::REPLACEMENT_CHARACTER);
                    rest += 1;
                }
            }
        }
        self.bytes.drain(..rest);
        out
    }
}

impl GreedyCtcDecoder {
    /// `labels` are the model's vocabulary without the blank (NeMo `decoder.vocabulary`).
    /// Errors on an empty vocabulary, an empty label string (it would create words without
    /// text) or an invalid confidence alpha.
    pub fn new(labels: Vec<String>, config: DecoderConfig) -> Result<Self> {
        check_labels(&labels)?;
        let blank = labels.len();
        let scorer = Scorer::new(config.confidence.measure, blank + 1).map_err(Error::Settings)?;
        let is_space = labels.iter().map(|l| l == " ").collect();
        let opens_punctuation = opens_with_punctuation(&labels);
        Ok(Self {
            word_ended: false,
            pieces: None,
            labels,
            is_space,
            opens_punctuation,
            blank,
            word_gap_frames: config.word_gap_frames,
            max_word_frames: config.max_word_frames,
            scorer,
            aggregation: config.confidence.aggregation,
            next_frame: 0,
            prev: blank,
            gap: 0,
            spaces: 0,
            word_active: false,
            word_text: String::new(),
            word_spaces: 0,
            word_start: 0,
            word_end: 0,
            word_conf: WordConfidence::EMPTY,
        })
    }

    /// A decoder for a SentencePiece model: the labels are `table`'s pieces, and the words'
    /// text is NeMo's ([`PieceTable::text`] of the tokens, whatever the chunking).
    pub fn with_pieces(table: PieceTable, config: DecoderConfig) -> Result<Self> {
        let mut decoder = Self::new(table.pieces().to_vec(), config)?;
        decoder.is_space.fill(false);
        decoder.opens_punctuation.fill(false);
        decoder.pieces = Some(Box::new(PieceSpelling::new(table)));
        Ok(decoder)
    }

    /// Number of log-probs per frame: labels + blank.
    pub fn vocab_size(&self) -> usize {
        self.blank + 1
    }

    /// The labels, without blank.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Stream index that the next pushed frame will get.
    pub fn next_frame(&self) -> u64 {
        self.next_frame
    }

    /// Decodes `frames` consecutive frames (`logprobs.len()` must be `frames * vocab_size()`)
    /// and returns the words completed by these frames, in order.
    ///
    /// A length mismatch is a caller bug: it asserts in debug builds; in release builds only
    /// the complete frames present in both `frames` and `logprobs` are decoded, so it never
    /// panics.
    pub fn push(&mut self, logprobs: &[f32], frames: usize) -> Vec<Word> {
        let vocab = self.vocab_size();
        debug_assert!(
            frames.checked_mul(vocab) == Some(logprobs.len()),
            "push: {} log-probs for {frames} frames of vocab {vocab}",
            logprobs.len()
        );
        let n = frames.min(logprobs.len() / vocab);
        let mut out = Vec::new();
        for row in logprobs[..n * vocab].chunks_exact(vocab) {
            self.step(row, &mut out);
        }
        out
    }

    /// The word being built (not yet completed), as a partial result. If its last token is
    /// still running, its end is `next_frame()` and its confidence includes the frames so
    /// far; both may still change.
    pub fn pending(&self) -> Option<Word> {
        if !self.word_active {
            return None;
        }
        let end = if self.run_in_word() {
            self.next_frame
        } else {
            self.word_end
        };
        Some(Word {
            text: self.word_text.clone(),
            spaces_before: self.word_spaces,
            start_frame: self.word_start,
            end_frame: end,
            confidence: self.word_conf.value(self.aggregation),
        })
    }

    /// End of stream (or of a segment): closes the running token at `next_frame()`,
    /// completes and returns the pending word, and resets the collapse state so a token
    /// pushed next is emitted even if it repeats the last one. The frame counter continues,
    /// and so does the separator count (spaces after the last word separate it from the
    /// next segment's first).
    pub fn finish(&mut self) -> Option<Word> {
        if self.pieces.is_some() {
            // Bytes left unfinished are written now, one U+FFFD each (the word they belong
            // to is open: a byte token opens one, and no cut happens while bytes wait).
            let t = self.next_frame;
            let chars = self
                .pieces
                .as_mut()
                .map_or_else(Vec::new, |s| s.settled_bytes(true));
            let mut cut = Vec::new();
            for c in chars {
                self.write_text(c, t, &mut cut);
            }
            debug_assert!(cut.is_empty(), "bytes continue their open word");
        }
        self.close_run(self.next_frame);
        let word = self.take_word();
        self.prev = self.blank;
        self.gap = 0;
        word
    }

    /// Space tokens after the last word (none while a word is open): after [`Self::finish`],
    /// the spaces NeMo's text ends with.
    pub fn trailing_spaces(&self) -> u32 {
        if self.word_active { 0 } else { self.spaces }
    }

    /// Forgets everything (pending word included); the next pushed frame gets index
    /// `next_frame`.
    pub fn reset(&mut self, next_frame: u64) {
        self.next_frame = next_frame;
        self.prev = self.blank;
        self.gap = 0;
        self.spaces = 0;
        self.word_active = false;
        self.word_text.clear();
        self.word_spaces = 0;
        self.word_start = 0;
        self.word_end = 0;
        self.word_conf = WordConfidence::EMPTY;
        self.word_ended = false;
        if let Some(state) = &mut self.pieces {
            state.reset();
        }
    }

    #[inline]
    fn is_word_char(&self, token: usize) -> bool {
        token < self.blank && !self.is_space[token]
    }

    /// Whether the open run (`prev`) belongs to the word (character labels: it is a word
    /// character; pieces: it wrote into the word).
    #[inline]
    fn run_in_word(&self) -> bool {
        match &self.pieces {
            None => self.is_word_char(self.prev),
            Some(state) => state.in_word,
        }
    }

    /// Whether a cut for timing (word gap, maximum length) may end the word here without
    /// changing the text: not while bytes wait for the rest of their character, nor while
    /// the word ends in whitespace that a punctuation character written next would remove.
    #[inline]
    fn cuttable(&self) -> bool {
        match &self.pieces {
            None => true,
            Some(state) => {
                state.bytes.is_empty()
                    && (self.word_ended || !self.word_text.ends_with(char::is_whitespace))
            }
        }
    }

    /// If the open run (`prev`) is a word character, it ends at `end`: fold it into the word.
    #[inline]
    fn close_run(&mut self, end: u64) {
        if self.run_in_word() {
            self.word_end = end;
            self.word_conf.close_token(self.aggregation);
        }
    }

    /// Completes the current word (its last token must already be closed).
    fn take_word(&mut self) -> Option<Word> {
        if !self.word_active {
            return None;
        }
        self.word_active = false;
        self.word_ended = false;
        // clone + clear keeps the grown buffer for the next word: one exact-size
        // allocation per word instead of regrowing from empty.
        let text = self.word_text.clone();
        self.word_text.clear();
        Some(Word {
            text,
            spaces_before: self.word_spaces,
            start_frame: self.word_start,
            end_frame: self.word_end,
            confidence: self.word_conf.value(self.aggregation),
        })
    }

    fn step(&mut self, row: &[f32], out: &mut Vec<Word>) {
        let t = self.next_frame;
        let p = argmax(row);
        if p == self.prev {
            // Same argmax as before: the open token (if any) continues.
            if self.run_in_word() {
                let c = self.scorer.score(row);
                self.word_conf.add_frame(self.aggregation, c);
            }
        } else {
            self.close_run(t);
            if let Some(state) = &mut self.pieces {
                state.in_word = false;
                if p != self.blank {
                    self.piece_token(p, t, row, out);
                }
            } else if p != self.blank {
                if self.is_space[p] {
                    if let Some(w) = self.take_word() {
                        out.push(w);
                    }
                    self.spaces = self.spaces.saturating_add(1);
                } else {
                    if !self.word_active {
                        self.word_active = true;
                        self.word_start = t;
                        self.word_conf = WordConfidence::EMPTY;
                        self.word_spaces = std::mem::take(&mut self.spaces);
                        if self.opens_punctuation[p] {
                            self.word_spaces = self.word_spaces.saturating_sub(1);
                        }
                    }
                    self.word_text.push_str(&self.labels[p]);
                    let c = self.scorer.score(row);
                    self.word_conf.add_frame(self.aggregation, c);
                }
            }
        }
        if p == self.blank {
            self.gap = self.gap.saturating_add(1);
            if self.word_gap_frames > 0
                && self.gap >= self.word_gap_frames
                && self.cuttable()
                && let Some(w) = self.take_word()
            {
                out.push(w);
            }
        } else {
            self.gap = 0;
        }
        self.prev = p;
        self.next_frame += 1;
        if self.max_word_frames > 0
            && self.word_active
            && self.next_frame - self.word_start >= u64::from(self.max_word_frames)
            && self.cuttable()
        {
            // Split here; a character run that goes on is not emitted again (prev stays).
            self.close_run(self.next_frame);
            out.extend(self.take_word());
        }
    }
}

impl GreedyCtcDecoder {
    /// Piece `p` is emitted at frame `t` (`row`): write its text into the words.
    fn piece_token(&mut self, p: usize, t: u64, row: &[f32], out: &mut Vec<Word>) {
        let Some(state) = self.pieces.as_mut() else {
            return;
        };
        let kind = state.table.kind(p);
        if let Some(PieceKind::Byte(b)) = kind {
            // A byte continues the word (or opens one); its characters are written as soon
            // as they are settled.
            state.at_start = false;
            out.extend(self.begin_text(t));
            let state = self.pieces.as_mut().expect("pieces");
            state.in_word = true;
            state.bytes.push(b);
            for c in state.settled_bytes(false) {
                self.write_text(c, t, out);
            }
        } else {
            // Any other piece ends a byte run.
            let chars = state.settled_bytes(true);
            for c in chars {
                self.write_text(c, t, out);
            }
            let state = self.pieces.as_mut().expect("pieces");
            let at_start = state.at_start;
            let spelling = &state.spelling[p];
            let dropped = at_start
                && !matches!(kind, Some(PieceKind::Unknown))
                && spelling.first() == Some(&WORD_START);
            for i in usize::from(dropped)..spelling.len() {
                let c = self.pieces.as_ref().expect("pieces").spelling[p][i];
                if c == WORD_START {
                    self.write_separator();
                } else {
                    self.write_text(c, t, out);
                    self.pieces.as_mut().expect("pieces").in_word = true;
                }
            }
            let state = self.pieces.as_mut().expect("pieces");
            state.at_start &=
                !state.written && (state.table.removes_extra_whitespaces() || !dropped);
        }
        if self.pieces.as_ref().is_some_and(|s| s.in_word) {
            let c = self.scorer.score(row);
            self.word_conf.add_frame(self.aggregation, c);
        }
    }

    /// Makes sure a word takes text at frame `t`: completes a word that separators ended
    /// (returned) and opens a new one with those separators before it.
    fn begin_text(&mut self, t: u64) -> Option<Word> {
        let mut done = None;
        if self.word_active && self.word_ended {
            if self.run_in_word() {
                // The token that ends this word also begins the next (text, separator,
                // text in one piece): the first word gets the token's first frame.
                self.word_end = t + 1;
                self.word_conf.close_token(self.aggregation);
            }
            done = self.take_word();
        }
        if !self.word_active {
            self.word_active = true;
            self.word_start = t;
            self.word_conf = WordConfidence::EMPTY;
            self.word_spaces = std::mem::take(&mut self.spaces);
        }
        done
    }

    /// Writes text character `c` (of a token emitted at frame `t`) into the current word.
    /// NeMo removes the whitespace just before a punctuation character: the word's last
    /// separator if its text is still empty, else a whitespace its text ends with.
    fn write_text(&mut self, c: char, t: u64, out: &mut Vec<Word>) {
        out.extend(self.begin_text(t));
        let Some(state) = self.pieces.as_mut() else {
            return;
        };
        state.written = true;
        if state.table.punctuation().contains(&c) {
            if self.word_text.is_empty() {
                self.word_spaces = self.word_spaces.saturating_sub(1);
            } else if self.word_text.ends_with(char::is_whitespace) {
                self.word_text.pop();
            }
        }
        self.word_text.push(c);
    }

    /// Writes a separator (a space that splits words): the word ends with the next text.
    fn write_separator(&mut self) {
        if let Some(state) = self.pieces.as_mut() {
            state.written = true;
        }
        if self.word_active {
            self.word_ended = true;
        }
        self.spaces = self.spaces.saturating_add(1);
    }
}

/// NeMo-identical greedy transcript of a whole utterance: argmax per frame, collapse
/// repeats, drop blanks (index `vocab - 1`), concatenate the label strings.
///
/// NeMo's character CTC decoding (`decode_tokens_to_str_with_strip_punctuation`) joins the
/// labels (`''.join(tokens)`) and then removes one whitespace character before each
/// punctuation character of the vocabulary (`re.sub(r'(\s)(P)', r'\2', text)`); nothing
/// else is trimmed, so leading, trailing and double spaces are kept as emitted.
/// A trailing partial frame is ignored; indices without a label are skipped.
pub fn greedy_transcript(logprobs: &[f32], vocab: usize, labels: &[String]) -> String {
    let mut out = String::new();
    if vocab == 0 {
        return out;
    }
    let blank = vocab - 1;
    let mut prev = blank;
    for row in logprobs.chunks_exact(vocab) {
        let p = argmax(row);
        if p != blank
            && p != prev
            && let Some(l) = labels.get(p)
        {
            out.push_str(l);
        }
        prev = p;
    }
    strip_space_before_punctuation(&out, &vocabulary_punctuation(labels))
}

/// Python's `re.sub(r'(\s)(P)', r'\2', text)` for the punctuation set `P`: scanning left
/// to right, a whitespace character directly before a punctuation character is dropped.
pub(super) fn strip_space_before_punctuation(text: &str, punctuation: &[char]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let before_punctuation = chars.peek().is_some_and(|n| punctuation.contains(n));
        if !(c.is_whitespace() && before_punctuation) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{
        ConfidenceAggregation, ConfidenceConfig, ConfidenceMeasure, EntropyKind, EntropyNorm,
        frame_confidence, transcript as text_of,
    };

    /// QuartzNet-like toy vocabulary: space first, blank last (index 5).
    fn labels() -> Vec<String> {
        [" ", "a", "b", "c", "'"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }
    const V: usize = 6;
    const BLANK: usize = 5;

    fn cfg(gap: u32) -> DecoderConfig {
        DecoderConfig {
            word_gap_frames: gap,
            ..DecoderConfig::default()
        }
    }

    fn index_of(c: char) -> usize {
        match c {
            '_' => BLANK,
            ' ' => 0,
            'a' => 1,
            'b' => 2,
            'c' => 3,
            '\'' => 4,
            _ => panic!("bad test char {c:?}"),
        }
    }

    /// A row whose argmax is `k` with probability `pk`, the rest spread evenly.
    fn row(k: usize, pk: f32) -> Vec<f32> {
        let rest = ((1.0 - pk) / (V as f32 - 1.0)).ln();
        (0..V)
            .map(|i| if i == k { pk.ln() } else { rest })
            .collect()
    }

    /// Log-probs for an argmax sequence written as a string ('_' = blank).
    fn frames(s: &str) -> Vec<f32> {
        s.chars().flat_map(|c| row(index_of(c), 0.9)).collect()
    }

    fn decode_all(dec: &mut GreedyCtcDecoder, s: &str) -> Vec<Word> {
        let lp = frames(s);
        let mut words = dec.push(&lp, s.chars().count());
        words.extend(dec.finish());
        words
    }

    fn texts(words: &[Word]) -> Vec<&str> {
        words.iter().map(|w| w.text.as_str()).collect()
    }

    fn transcript(s: &str) -> String {
        greedy_transcript(&frames(s), V, &labels())
    }

    #[test]
    fn ctc_collapse_rules() {
        assert_eq!(transcript("aa_a"), "aa");
        assert_eq!(transcript("aab"), "ab");
        assert_eq!(transcript("a_a_a"), "aaa");
        assert_eq!(transcript("aaaa"), "a");
        assert_eq!(transcript("__a__bb_b"), "abb");
        assert_eq!(transcript("____"), "");
        assert_eq!(transcript(""), "");
        let mut d = GreedyCtcDecoder::new(labels(), cfg(0)).unwrap();
        assert_eq!(texts(&decode_all(&mut d, "aa_a")), ["aa"]);
        assert_eq!(texts(&decode_all(&mut d, "aab")), ["ab"]);
    }

    /// NeMo's `decode_tokens_to_str_with_strip_punctuation`: the apostrophe is punctuation
    /// of the vocabulary, so one space before it goes, in the transcript and in the words.
    #[test]
    fn one_space_before_punctuation_goes_as_in_nemo() {
        assert_eq!(transcript("a_ _'b"), "a'b");
        assert_eq!(transcript("a _ _'b"), "a 'b");
        assert_eq!(transcript(" '_ 'a"), "''a");
        let mut d = GreedyCtcDecoder::new(labels(), cfg(0)).unwrap();
        let words = decode_all(&mut d, "ab _'c_ _ _'");
        assert_eq!(texts(&words), ["ab", "'c", "'"]);
        let seps: Vec<u32> = words.iter().map(|w| w.spaces_before).collect();
        assert_eq!(seps, [0, 0, 1]);
        assert_eq!(text_of(&words), "ab'c '");
        assert_eq!(vocabulary_punctuation(&labels()), ['\'']);
        let special: Vec<String> = ["<unk>", "[.]", "a", "##-", "\u{2581}?"]
            .map(String::from)
            .to_vec();
        assert!(vocabulary_punctuation(&special).is_empty());
    }

    #[test]
    fn ctc_greedy_transcript_keeps_raw_spaces() {
        // NeMo returns the raw concatenation: no trimming, no space squeezing.
        assert_eq!(transcript(" a__  _ b "), " a  b ");
        assert_eq!(transcript("ab_'c"), "ab'c");
        // Trailing partial frame ignored, vocab 0 gives nothing.
        let mut lp = frames("ab");
        lp.push(0.0);
        assert_eq!(greedy_transcript(&lp, V, &labels()), "ab");
        assert_eq!(greedy_transcript(&lp, 0, &labels()), "");
    }

    #[test]
    fn ctc_argmax_ties_lowest_index() {
        assert_eq!(argmax(&[0.0, 1.0, 1.0, 0.5]), 1);
        assert_eq!(argmax(&[f32::NEG_INFINITY; 3]), 0);
        assert_eq!(argmax(&[0.0, f32::NAN, 1.0]), 1);
        assert_eq!(argmax(&[-1.0, -1.0]), 0);
    }

    #[test]
    fn ctc_carry_across_chunk_boundary() {
        let mut d = GreedyCtcDecoder::new(labels(), cfg(0)).unwrap();
        assert!(d.push(&frames("a"), 1).is_empty());
        assert!(d.push(&frames("a"), 1).is_empty());
        let w = d.finish().unwrap();
        assert_eq!((w.text.as_str(), w.start_frame, w.end_frame), ("a", 0, 2));

        // With a blank in between, the repeat is a second character.
        let mut d = GreedyCtcDecoder::new(labels(), cfg(0)).unwrap();
        d.push(&frames("a"), 1);
        d.push(&frames("_a"), 2);
        assert_eq!(d.finish().unwrap().text, "aa");

        // Zero-frame pushes change nothing.
        let mut d = GreedyCtcDecoder::new(labels(), cfg(0)).unwrap();
        d.push(&frames("a"), 1);
        assert!(d.push(&[], 0).is_empty());
        d.push(&frames("a"), 1);
        assert_eq!(d.next_frame(), 2);
        assert_eq!(d.finish().unwrap().text, "a");
    }

    #[test]
    fn ctc_token_and_word_timing() {
        // frame: 0 1 2 3 4 5 6 7 8 9
        //        _ _ a b _ b _ _ ' ' c
        let s = "__ab_b__ c";
        let mut d = GreedyCtcDecoder::new(labels(), cfg(0)).unwrap();
        let lp = frames(s);
        // The space at frame 8 completes "abb": a starts at 2, last b covers frame 5.
        let w1 = d.push(&lp[..9 * V], 9);
        assert_eq!(w1.len(), 1);
        assert_eq!(
            (w1[0].text.as_str(), w1[0].start_frame, w1[0].end_frame),
            ("abb", 2, 6)
        );
        assert!(d.pending().is_none());
        assert!(d.push(&lp[9 * V..], 1).is_empty());
        let p = d.pending().unwrap();
        assert_eq!((p.text.as_str(), p.start_frame, p.end_frame), ("c", 9, 10));
        let w2 = d.finish().unwrap();
        assert_eq!(
            (w2.text.as_str(), w2.start_frame, w2.end_frame),
            ("c", 9, 10)
        );

        // A token repeated over several frames ends after its last frame.
        let mut d = GreedyCtcDecoder::new(labels(), cfg(0)).unwrap();
        let w = decode_all(&mut d, "_aaab___");
        assert_eq!((w[0].start_frame, w[0].end_frame), (1, 5));
    }

    #[test]
    fn ctc_pending_tracks_open_token() {
        let mut d = GreedyCtcDecoder::new(labels(), cfg(0)).unwrap();
        assert!(d.pending().is_none());
        d.push(&frames("_aa"), 3);
        let p = d.pending().unwrap();
        assert_eq!((p.text.as_str(), p.start_frame, p.end_frame), ("a", 1, 3));
        d.push(&frames("a"), 1);
        assert_eq!(d.pending().unwrap().end_frame, 4);
        d.push(&frames("__"), 2);
        // Closed token: the end no longer moves with the blanks.
        assert_eq!(d.pending().unwrap().end_frame, 4);
        d.push(&frames("b"), 1);
        let p = d.pending().unwrap();
        assert_eq!((p.text.as_str(), p.end_frame), ("ab", 7));
    }

    #[test]
    fn ctc_word_split_on_spaces() {
        let mut d = GreedyCtcDecoder::new(labels(), cfg(0)).unwrap();
        let w = decode_all(&mut d, "  a  _ b_ _c'c ");
        assert_eq!(texts(&w), ["a", "b", "c'c"]);
        // Frames: 0,1 space; a=2; 3,4 space; 5 blank; 6 space; b=7; ...
        assert_eq!((w[0].start_frame, w[0].end_frame), (2, 3));
        assert_eq!((w[1].start_frame, w[1].end_frame), (7, 8));
        assert_eq!((w[2].start_frame, w[2].end_frame), (11, 14));
        // Only spaces and blanks: no words at all.
        let mut d = GreedyCtcDecoder::new(labels(), cfg(0)).unwrap();
        assert!(decode_all(&mut d, " _  __ ").is_empty());
    }

    #[test]
    fn ctc_gap_finalisation() {
        let mut d = GreedyCtcDecoder::new(labels(), cfg(3)).unwrap();
        let s = "ab___c";
        let lp = frames(s);
        let mut done_at = Vec::new();
        for f in 0..s.len() {
            for w in d.push(&lp[f * V..(f + 1) * V], 1) {
                done_at.push((f, w));
            }
        }
        // Third blank after "b" is frame 4.
        assert_eq!(done_at.len(), 1);
        assert_eq!(done_at[0].0, 4);
        let w = &done_at[0].1;
        assert_eq!((w.text.as_str(), w.start_frame, w.end_frame), ("ab", 0, 2));
        assert_eq!(d.finish().unwrap().text, "c");

        // Two blanks are not enough.
        let mut d = GreedyCtcDecoder::new(labels(), cfg(3)).unwrap();
        assert_eq!(texts(&decode_all(&mut d, "ab__c")), ["abc"]);
        // A repeated character is not silence.
        let mut d = GreedyCtcDecoder::new(labels(), cfg(2)).unwrap();
        assert_eq!(texts(&decode_all(&mut d, "abbbb_c")), ["abc"]);
        // Gap 0 never finalises on silence.
        let mut d = GreedyCtcDecoder::new(labels(), cfg(0)).unwrap();
        let w = d.push(&frames("a__________________b"), 20);
        assert!(w.is_empty());
        assert_eq!(d.finish().unwrap().text, "ab");
        // Silence at the start or after a space completes nothing.
        let mut d = GreedyCtcDecoder::new(labels(), cfg(1)).unwrap();
        assert_eq!(texts(&decode_all(&mut d, "___a _ _b_c")), ["a", "b", "c"]);
    }

    #[test]
    fn ctc_finish_resets_collapse_but_not_clock() {
        let mut d = GreedyCtcDecoder::new(labels(), cfg(0)).unwrap();
        d.push(&frames("_a"), 2);
        let w = d.finish().unwrap();
        assert_eq!((w.text.as_str(), w.start_frame, w.end_frame), ("a", 1, 2));
        assert!(d.finish().is_none());
        assert_eq!(d.next_frame(), 2);
        // The same character right after finish() is a new token.
        d.push(&frames("a"), 1);
        let w = d.finish().unwrap();
        assert_eq!((w.text.as_str(), w.start_frame, w.end_frame), ("a", 2, 3));
    }

    #[test]
    fn ctc_reset_forgets_everything() {
        let mut d = GreedyCtcDecoder::new(labels(), cfg(0)).unwrap();
        d.push(&frames("ab"), 2);
        d.reset(100);
        assert!(d.pending().is_none());
        assert_eq!(d.next_frame(), 100);
        d.push(&frames("bc"), 2);
        let w = d.finish().unwrap();
        assert_eq!(
            (w.text.as_str(), w.start_frame, w.end_frame),
            ("bc", 100, 102)
        );
    }

    #[test]
    fn ctc_new_validates() {
        assert!(GreedyCtcDecoder::new(vec![], cfg(0)).is_err());
        assert!(GreedyCtcDecoder::new(vec!["a".into(), String::new()], cfg(0)).is_err());
        for alpha in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            let c = DecoderConfig {
                confidence: ConfidenceConfig {
                    measure: TSALLIS.with_alpha(alpha),
                    aggregation: ConfidenceAggregation::Min,
                },
                ..DecoderConfig::default()
            };
            assert!(GreedyCtcDecoder::new(labels(), c).is_err(), "{alpha}");
        }
        let d = GreedyCtcDecoder::new(labels(), cfg(0)).unwrap();
        assert_eq!(d.vocab_size(), V);
    }

    #[test]
    fn ctc_no_space_label_gives_one_word_per_finalisation() {
        let l: Vec<String> = vec!["a".into(), "b".into()];
        let mut d = GreedyCtcDecoder::new(l, cfg(2)).unwrap();
        // vocab 3, blank 2
        let lp: Vec<f32> = [0usize, 2, 1, 2, 2, 1, 0]
            .iter()
            .flat_map(|&k| {
                let mut r = vec![-5.0f32; 3];
                r[k] = -0.01;
                r
            })
            .collect();
        let mut w = d.push(&lp, 7);
        w.extend(d.finish());
        assert_eq!(texts(&w), ["ab", "ba"]);
    }

    const TSALLIS: ConfidenceMeasure = ConfidenceMeasure::NEMO_DEFAULT;
    const MAX_PROB: ConfidenceMeasure = ConfidenceMeasure::MaxProb { alpha: 1.0 };
    /// NeMo's Tsallis measure at alpha 1: the Gibbs baseline.
    const GIBBS: ConfidenceMeasure = ConfidenceMeasure::Entropy {
        kind: EntropyKind::Tsallis,
        norm: EntropyNorm::Exp,
        alpha: 1.0,
    };

    #[test]
    fn ctc_confidence_uniform_is_zero() {
        for v in [2usize, 3, 29, 1025] {
            let r = vec![-(v as f32).ln(); v];
            assert!(frame_confidence(TSALLIS, &r) < 1e-5, "tsallis v={v}");
            for alpha in [0.33, 1.0, 2.0] {
                for m in ConfidenceMeasure::all(alpha) {
                    assert!(frame_confidence(m, &r) < 1e-5, "{m} v={v}");
                }
            }
        }
    }

    #[test]
    fn ctc_confidence_one_hot_is_one() {
        let mut r = vec![f32::NEG_INFINITY; 29];
        r[7] = 0.0;
        assert_eq!(frame_confidence(TSALLIS, &r), 1.0);
        for alpha in [0.33, 1.0, 2.0] {
            for m in ConfidenceMeasure::all(alpha) {
                assert!((frame_confidence(m, &r) - 1.0).abs() < 1e-6, "{m}");
            }
        }
        // Finite but very confident log-probs.
        let mut r = vec![-1e4f32; 29];
        r[3] = 0.0;
        assert!((frame_confidence(TSALLIS, &r) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn ctc_confidence_hand_computed() {
        // V = 3, p = (0.7, 0.2, 0.1), alpha = 0.33:
        //   sum p^a     = 0.7^0.33 + 0.2^0.33 + 0.1^0.33 = 1.944644743
        //   H           = (1 - 1.944644743) / (0.33 - 1)   = 1.409917527
        //   exp(-Hmax)  = exp((1 - 3^0.67) / 0.67)         = 0.197216054
        //   conf        = (exp(-H) - 0.197216054) / (1 - 0.197216054) = 0.058480698
        // NeMo's get_confidence_measure_bank()['entropy_tsallis_exp'](log p, 3, 0.33) gives
        // 0.058480698237600826; ['max_prob'](log p, 3, 1.0) = (3*0.7-1)/2 = 0.55;
        // ['entropy_tsallis_exp'](log p, 3, 1.0) (Gibbs baseline) = 0.1727688674979183.
        let r: Vec<f32> = [0.7f32, 0.2, 0.1].iter().map(|p| p.ln()).collect();
        let t = frame_confidence(TSALLIS, &r);
        assert!((t - 0.058_480_7).abs() < 1e-6, "{t}");
        let m = frame_confidence(MAX_PROB, &r);
        assert!((m - 0.55).abs() < 1e-6, "{m}");
        let g = frame_confidence(GIBBS, &r);
        assert!((g - 0.172_768_87).abs() < 1e-6, "{g}");
    }

    #[test]
    fn ctc_confidence_nan_row_is_zero_and_no_panic() {
        let r = vec![f32::NAN; 4];
        assert_eq!(frame_confidence(TSALLIS, &r), 0.0);
        let mut d = GreedyCtcDecoder::new(labels(), cfg(0)).unwrap();
        let lp = vec![f32::NAN; 2 * V];
        d.push(&lp, 2);
        // NaN argmax is index 0 (space): no word.
        assert!(d.finish().is_none());
    }

    #[test]
    fn ctc_word_confidence_is_min_over_token_frames_excluding_blank() {
        let mut d = GreedyCtcDecoder::new(
            labels(),
            DecoderConfig {
                confidence: ConfidenceConfig {
                    measure: MAX_PROB,
                    aggregation: ConfidenceAggregation::Min,
                },
                ..DecoderConfig::default()
            },
        )
        .unwrap();
        // MaxProb with V = 6: conf = (6 p - 1) / 5.
        let c = |p: f32| (6.0 * p - 1.0) / 5.0;
        let mut lp = Vec::new();
        lp.extend(row(1, 0.9)); // a
        lp.extend(row(1, 0.6)); // a (same token, lower)
        lp.extend(row(BLANK, 0.3)); // blank with low prob: excluded
        lp.extend(row(2, 0.8)); // b
        lp.extend(row(0, 0.2)); // space: not part of the word
        lp.extend(row(3, 0.95)); // c
        let w = d.push(&lp, 6);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].text, "ab");
        assert!((w[0].confidence - c(0.6)).abs() < 1e-6);
        let p = d.pending().unwrap();
        assert!((p.confidence - c(0.95)).abs() < 1e-6);
        let w = d.finish().unwrap();
        assert!((w.confidence - c(0.95)).abs() < 1e-6);

        // Mean: each token's mean over its frames, then the mean over the tokens.
        let mean = ConfidenceConfig {
            measure: MAX_PROB,
            aggregation: ConfidenceAggregation::Mean,
        };
        let config = DecoderConfig {
            confidence: mean,
            ..DecoderConfig::default()
        };
        let mut d = GreedyCtcDecoder::new(labels(), config).unwrap();
        let w = d.push(&lp, 6);
        let expected = ((c(0.9) + c(0.6)) / 2.0 + c(0.8)) / 2.0;
        assert!((w[0].confidence - expected).abs() < 1e-6, "{w:?}");
    }

    /// Tiny deterministic PRNG so the tests need no extra dependency.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn unit(&mut self) -> f32 {
            (self.next() >> 40) as f32 / (1u64 << 24) as f32
        }
    }

    /// Random log-softmax rows whose argmax follows a random sequence with long runs,
    /// plenty of blanks and spaces.
    fn random_logprobs(rng: &mut XorShift, n: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(n * V);
        let mut k = BLANK;
        for _ in 0..n {
            if rng.below(3) == 0 {
                k = match rng.below(10) {
                    0..=3 => BLANK,
                    4 | 5 => 0,
                    _ => 1 + rng.below(V - 2),
                };
            }
            let logits: Vec<f32> = (0..V)
                .map(|i| rng.unit() * 3.0 + if i == k { 4.0 } else { 0.0 })
                .collect();
            let lse = logits.iter().map(|x| x.exp()).sum::<f32>().ln();
            out.extend(logits.iter().map(|x| x - lse));
        }
        out
    }

    /// Independent offline reference: runs of equal argmax -> tokens -> words.
    fn reference_words(lp: &[f32], gap: u32, confidence: ConfidenceConfig) -> Vec<Word> {
        let labels = labels();
        let rows: Vec<&[f32]> = lp.chunks_exact(V).collect();
        // NeMo's aggregation functions, left to right.
        let aggregate = |xs: &[f64]| -> f64 {
            let mut it = xs.iter().copied();
            let first = it.next().unwrap();
            match confidence.aggregation {
                ConfidenceAggregation::Mean => it.fold(first, |a, x| a + x) / xs.len() as f64,
                ConfidenceAggregation::Min => it.fold(first, f64::min),
                ConfidenceAggregation::Max => it.fold(first, f64::max),
                ConfidenceAggregation::Prod => it.fold(first, |a, x| a * x),
            }
        };
        // (token, start, end, token confidence)
        let mut tokens: Vec<(usize, u64, u64, f64)> = Vec::new();
        let mut i = 0;
        while i < rows.len() {
            let k = argmax(rows[i]);
            let mut j = i;
            let mut frames = Vec::new();
            while j < rows.len() && argmax(rows[j]) == k {
                frames.push(f64::from(frame_confidence(confidence.measure, rows[j])));
                j += 1;
            }
            let m = aggregate(&frames);
            if k != BLANK {
                tokens.push((k, i as u64, j as u64, m));
            }
            i = j;
        }
        let mut words = Vec::new();
        let mut cur: Option<Word> = None;
        let mut token_confidences: Vec<f64> = Vec::new();
        let mut spaces = 0u32;
        let mut end_word = |cur: &mut Option<Word>, confidences: &mut Vec<f64>| {
            if let Some(mut w) = cur.take() {
                w.confidence = aggregate(confidences).clamp(0.0, 1.0) as f32;
                words.push(w);
            }
            confidences.clear();
        };
        for &(k, s, e, m) in &tokens {
            if let Some(w) = &cur
                && gap > 0
                && s - w.end_frame >= u64::from(gap)
            {
                end_word(&mut cur, &mut token_confidences);
            }
            if labels[k] == " " {
                end_word(&mut cur, &mut token_confidences);
                spaces += 1;
                continue;
            }
            let w = cur.get_or_insert(Word {
                text: String::new(),
                // NeMo drops one space before punctuation ("'" here).
                spaces_before: std::mem::take(&mut spaces)
                    .saturating_sub(u32::from(labels[k] == "'")),
                start_frame: s,
                end_frame: e,
                confidence: 1.0,
            });
            w.text.push_str(&labels[k]);
            w.end_frame = e;
            token_confidences.push(m);
        }
        end_word(&mut cur, &mut token_confidences);
        words
    }

    #[test]
    fn ctc_chunk_split_invariance_random() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut total_words = 0;
        for trial in 0..200 {
            let n = 1 + rng.below(300);
            let lp = random_logprobs(&mut rng, n);
            let gap = [0u32, 1, 2, 5][trial % 4];
            let method = ConfidenceConfig {
                measure: ConfidenceMeasure::all([0.33, 1.0][trial % 2])[trial % 7],
                aggregation: ConfidenceAggregation::ALL[(trial / 7) % 4],
            };
            let config = DecoderConfig {
                word_gap_frames: gap,
                confidence: method,
                ..DecoderConfig::default()
            };

            let mut one = GreedyCtcDecoder::new(labels(), config).unwrap();
            let mut whole = one.push(&lp, n);
            whole.extend(one.finish());

            let expected = reference_words(&lp, gap, method);
            assert_eq!(whole, expected, "trial {trial}: one-shot vs reference");
            total_words += whole.len();
            let text: String = greedy_transcript(&lp, V, &labels());
            let joined: Vec<&str> = text.split(' ').filter(|s| !s.is_empty()).collect();
            if gap == 0 {
                // A word opening with punctuation after one space continues the one before.
                let mut merged: Vec<String> = Vec::new();
                for w in &whole {
                    match merged.last_mut() {
                        Some(last) if w.spaces_before == 0 => last.push_str(&w.text),
                        _ => merged.push(w.text.clone()),
                    }
                }
                assert_eq!(merged, joined, "trial {trial}: transcript words");
            }
            // Word gaps cut words for timing, never the text.
            let trailing = " ".repeat(one.trailing_spaces() as usize);
            assert_eq!(text_of(&whole) + &trailing, text, "trial {trial}: text");

            let mut chunked = GreedyCtcDecoder::new(labels(), config).unwrap();
            let mut got = Vec::new();
            let mut f = 0;
            while f < n {
                let len = rng.below(8).min(n - f); // includes empty chunks
                got.extend(chunked.push(&lp[f * V..(f + len) * V], len));
                f += len;
            }
            got.extend(chunked.finish());
            assert_eq!(got, whole, "trial {trial}: chunked vs one-shot");
            assert_eq!(chunked.next_frame(), n as u64);
        }
        // Guard against a generator that degenerates into no words at all.
        assert!(total_words > 1000, "{total_words}");
    }

    #[cfg(not(debug_assertions))]
    #[test]
    fn ctc_push_length_mismatch_truncates_in_release() {
        let mut d = GreedyCtcDecoder::new(labels(), cfg(0)).unwrap();
        let mut lp = frames("ab");
        lp.push(0.0); // stray value
        d.push(&lp, 5); // claims more frames than present
        assert_eq!(d.next_frame(), 2);
        assert_eq!(d.finish().unwrap().text, "ab");
    }

    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "push:")]
    fn ctc_push_length_mismatch_asserts_in_debug() {
        let mut d = GreedyCtcDecoder::new(labels(), cfg(0)).unwrap();
        d.push(&frames("ab"), 3);
    }

    #[test]
    fn max_word_frames_splits_endless_words() {
        let config = DecoderConfig {
            max_word_frames: 4,
            ..DecoderConfig::default()
        };
        let mut d = GreedyCtcDecoder::new(labels(), config).unwrap();
        // "abcab" with one frame per letter and no space: complete after 4 frames.
        let words = d.push(&frames("abca"), 4);
        assert_eq!(texts(&words), ["abca"]);
        assert_eq!((words[0].start_frame, words[0].end_frame), (0, 4));
        // A run that continues past the split is not emitted again.
        let words = decode_all(&mut d, "aab");
        assert_eq!(texts(&words), ["b"]);
        assert_eq!((words[0].start_frame, words[0].end_frame), (6, 7));
        assert_eq!(words[0].spaces_before, 0, "a continuation, not a new word");
    }

    /// Cutting words for timing (word gap, maximum length) never changes the text: the
    /// pieces are continuations (found by comparing with NeMo on a random-weight model
    /// whose words run for seconds: the old decoder wrote `cilf sifix` for `cilfsifix`).
    #[test]
    fn timing_cuts_keep_the_models_text() {
        let config = DecoderConfig {
            word_gap_frames: 2,
            max_word_frames: 3,
            ..DecoderConfig::default()
        };
        for s in ["abcabc", "ab___ca", " a  b__c ", "  abcab_ _c", "a__ _b"] {
            let mut d = GreedyCtcDecoder::new(labels(), config).unwrap();
            let words = decode_all(&mut d, s);
            assert!(words.len() > 1, "{s:?} is cut into several words");
            assert_eq!(text_of(&words), transcript(s).trim_end(), "{s:?}");
        }
        let mut d = GreedyCtcDecoder::new(labels(), config).unwrap();
        let words = decode_all(&mut d, "  a__b _ c");
        let seps: Vec<u32> = words.iter().map(|w| w.spaces_before).collect();
        assert_eq!(texts(&words), ["a", "b", "c"]);
        assert_eq!(
            seps,
            [1, 0, 2],
            "repeated frames of one space are one token"
        );
    }

    /// A SentencePiece decoder over a toy table, fed one argmax per frame (`None` = blank).
    fn piece_words(config: DecoderConfig, frames: &[Option<usize>]) -> (Vec<Word>, u32, String) {
        use crate::decode::pieces::{DEFAULT_UNKNOWN_SURFACE, PieceKind::*};
        let pieces = [
            ("<unk>", Unknown),
            ("\u{2581}the", Normal),
            ("he", Normal),
            ("\u{2581}", Normal),
            ("<0xC3>", Byte(0xC3)),
            ("<0xA9>", Byte(0xA9)),
            ("'", Normal),
            ("<0x20>", Byte(0x20)),
            ("<s>", Control),
        ];
        let table = PieceTable::new(
            pieces.iter().map(|(p, _)| p.to_string()).collect(),
            pieces.iter().map(|(_, k)| *k).collect(),
            DEFAULT_UNKNOWN_SURFACE,
            false,
        )
        .unwrap();
        let blank = pieces.len();
        let tokens: Vec<usize> = frames
            .iter()
            .enumerate()
            .filter(|&(t, f)| f.is_some() && (t == 0 || frames[t - 1] != *f))
            .map(|(_, f)| f.unwrap())
            .collect();
        let text = table.text(&tokens);
        let rows: Vec<f32> = frames
            .iter()
            .flat_map(|f| {
                let k = f.unwrap_or(blank);
                (0..=blank).map(move |i| if i == k { -0.01 } else { -8.0 })
            })
            .collect();
        let mut d = GreedyCtcDecoder::with_pieces(table, config).unwrap();
        let mut words = d.push(&rows, frames.len());
        words.extend(d.finish());
        (words, d.trailing_spaces(), text)
    }

    fn spans(words: &[Word]) -> Vec<(&str, u32, u64, u64)> {
        words
            .iter()
            .map(|w| (w.text.as_str(), w.spaces_before, w.start_frame, w.end_frame))
            .collect()
    }

    /// Pieces make NeMo's text; a `▁` separates words, a byte run is decoded within its
    /// word even across a silence long enough to cut it, the unknown surface's spaces
    /// separate it, and NeMo's one space less before punctuation joins `'` on.
    #[test]
    fn pieces_write_nemos_text_in_words() {
        let config = cfg(2);
        let (the, he, space, c3, a9, apostrophe, unk) = (1, 2, 3, 4, 5, 6, 0);
        let frames = [
            Some(the),
            Some(the),
            None,
            Some(c3),
            None,
            None,
            None,
            Some(a9),
            Some(he),
            Some(space),
            Some(apostrophe),
            Some(unk),
            None,
            Some(he),
            Some(8), // control: writes nothing
            Some(space),
        ];
        let (words, trailing, text) = piece_words(config, &frames);
        assert_eq!(text, "the\u{e9}he' \u{2047} he ");
        assert_eq!(text_of(&words) + &" ".repeat(trailing as usize), text);
        assert_eq!(
            spans(&words),
            [
                ("the\u{e9}he", 0, 0, 9),
                ("'", 0, 10, 11),
                ("\u{2047}", 1, 11, 12),
                ("he", 1, 13, 14),
            ]
        );
        // A whitespace byte before punctuation is NeMo's to remove: no cut in between.
        let byte_space = 7;
        let frames = [
            Some(the),
            Some(byte_space),
            None,
            None,
            None,
            Some(apostrophe),
        ];
        let (words, _, text) = piece_words(config, &frames);
        assert_eq!(text, "the'");
        assert_eq!(spans(&words), [("the'", 0, 0, 6)]);
        // A lone `▁` first is the dummy prefix; the next word keeps its own space.
        let (words, _, text) = piece_words(config, &[Some(space), Some(the)]);
        assert_eq!(text, " the");
        assert_eq!(spans(&words), [("the", 1, 1, 2)]);
    }
}

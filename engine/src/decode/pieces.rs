// SPDX-License-Identifier: MPL-2.0
//! SentencePiece vocabularies as NeMo's sub-word CTC models use them (`docs/SUBWORD.md`):
//! the id -> piece table with each piece's type, and the text of a piece sequence exactly as
//! NeMo writes it (SentencePiece's `DecodeIds`, then NeMo's one space less before the
//! vocabulary's punctuation).
//!
//! SentencePiece writes a space as U+2581 (`▁`) inside pieces; a piece that starts with it
//! starts a word. Decoding, piece by piece:
//! - a control piece (`<s>`, `</s>`, `<pad>`) writes nothing;
//! - the unknown piece writes the model's unknown surface (` ⁇ ` by default);
//! - a run of byte pieces (`<0xE2>` ..., byte fallback) writes its bytes as UTF-8, each byte
//!   that does not begin a valid character replaced by U+FFFD;
//! - any other piece writes itself with `▁` as a space, except that at the start of the text
//!   a piece drops its leading `▁` (the dummy prefix SentencePiece adds before a text). The
//!   start lasts while nothing is written, and (NeMo 3.0's tokenizers, which keep extra
//!   whitespace) only until one piece has dropped its `▁`.

use super::greedy::strip_space_before_punctuation;
use super::vocabulary_punctuation;
use crate::error::{Error, Result};

/// SentencePiece's space symbol, U+2581.
pub const WORD_START: char = '\u{2581}';

/// What SentencePiece's default unknown surface is (` ⁇ `, U+2047 between spaces).
pub const DEFAULT_UNKNOWN_SURFACE: &str = " \u{2047} ";

/// The type of a piece, as SentencePiece's model records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PieceKind {
    /// Text.
    Normal,
    /// The unknown piece (`<unk>`).
    Unknown,
    /// Invisible control symbols (`<s>`, `</s>`, `<pad>`).
    Control,
    /// A symbol the tokenizer's author added; written as it is.
    UserDefined,
    /// One byte of UTF-8 (`<0xNN>`, byte fallback).
    Byte(u8),
    /// Reserved and never produced by the tokenizer; written as it is.
    Unused,
}

impl PieceKind {
    /// The kind SentencePiece names `kind` (`normal`, `unknown`, `control`, `user_defined`,
    /// `byte`, `unused`); a byte piece's value comes from its text (`<0xNN>`).
    pub fn parse(kind: &str, piece: &str) -> Result<Self> {
        Ok(match kind {
            "normal" => Self::Normal,
            "unknown" => Self::Unknown,
            "control" => Self::Control,
            "user_defined" => Self::UserDefined,
            "unused" => Self::Unused,
            "byte" => Self::Byte(byte_value(piece).ok_or_else(|| {
                Error::Settings(format!("byte piece {piece:?} is not of the form <0xNN>"))
            })?),
            other => {
                return Err(Error::Settings(format!(
                    "unknown piece type {other:?} for {piece:?} (normal, unknown, control, user_defined, byte, unused)"
                )));
            }
        })
    }
}

/// The byte a piece `<0xNN>` stands for.
fn byte_value(piece: &str) -> Option<u8> {
    let hex = piece.strip_prefix("<0x")?.strip_suffix('>')?;
    (hex.len() == 2)
        .then(|| u8::from_str_radix(hex, 16).ok())
        .flatten()
}

/// A SentencePiece vocabulary: the pieces in id order (the CTC blank is the id after the
/// last), their kinds and the surface of the unknown piece.
#[derive(Clone, Debug, PartialEq)]
pub struct PieceTable {
    pieces: Vec<String>,
    kinds: Vec<PieceKind>,
    unknown_surface: String,
    /// SentencePiece's `remove_extra_whitespaces` (true before NeMo 3.0's tokenizers): every
    /// leading space-only piece is swallowed, not just the first piece's `▁`.
    remove_extra_whitespaces: bool,
    /// The vocabulary's punctuation: NeMo writes one space less before each.
    punctuation: Vec<char>,
}

impl PieceTable {
    /// The table of `pieces` with their `kinds` (same length, id order), the unknown piece's
    /// surface and the tokenizer's `remove_extra_whitespaces` flag.
    pub fn new(
        pieces: Vec<String>,
        kinds: Vec<PieceKind>,
        unknown_surface: &str,
        remove_extra_whitespaces: bool,
    ) -> Result<Self> {
        if pieces.len() != kinds.len() {
            return Err(Error::Settings(format!(
                "{} pieces but {} piece types",
                pieces.len(),
                kinds.len()
            )));
        }
        Ok(Self {
            punctuation: vocabulary_punctuation(&pieces),
            pieces,
            kinds,
            unknown_surface: unknown_surface.to_string(),
            remove_extra_whitespaces,
        })
    }

    /// The pieces in id order.
    pub fn pieces(&self) -> &[String] {
        &self.pieces
    }

    /// The kind of piece `id`.
    pub fn kind(&self, id: usize) -> Option<PieceKind> {
        self.kinds.get(id).copied()
    }

    /// The text the unknown piece writes (` ⁇ ` by default).
    pub fn unknown_surface(&self) -> &str {
        &self.unknown_surface
    }

    /// SentencePiece's `remove_extra_whitespaces`: whether every leading space-only piece
    /// is swallowed at the start of the text (not just the first piece's `▁`).
    pub fn removes_extra_whitespaces(&self) -> bool {
        self.remove_extra_whitespaces
    }

    /// The vocabulary's punctuation (NeMo writes one whitespace less before each).
    pub fn punctuation(&self) -> &[char] {
        &self.punctuation
    }

    /// Whether piece `id` starts a word (it begins with `▁`).
    pub fn starts_word(&self, id: usize) -> bool {
        matches!(
            self.kind(id),
            Some(PieceKind::Normal | PieceKind::UserDefined | PieceKind::Unused)
        ) && self.pieces[id].starts_with(WORD_START)
    }

    /// The text of `ids` as NeMo writes it: [`PieceTable::decode`], then one whitespace
    /// less before each of the vocabulary's punctuation characters
    /// (`decode_tokens_to_str_with_strip_punctuation`).
    pub fn text(&self, ids: &[usize]) -> String {
        strip_space_before_punctuation(&self.decode(ids), &self.punctuation)
    }

    /// The text of `ids` as SentencePiece's `DecodeIds` writes it (ids past the table are
    /// skipped: the blank and padding never reach a text).
    pub fn decode(&self, ids: &[usize]) -> String {
        let mut text = String::new();
        let mut bytes = Vec::new();
        // At the start of the text a piece loses its leading `▁` (the dummy prefix). The
        // start lasts while nothing is written and, unless extra whitespace is removed, only
        // until one piece has lost its `▁`.
        let mut at_start = true;
        for &id in ids {
            let Some(kind) = self.kind(id) else {
                continue;
            };
            if let PieceKind::Byte(b) = kind {
                bytes.push(b);
                at_start = false;
                continue;
            }
            push_bytes(&mut text, &mut bytes);
            let mut dropped = false;
            match kind {
                PieceKind::Control => {}
                PieceKind::Unknown => text.push_str(&self.unknown_surface),
                _ => {
                    let mut piece = self.pieces[id].as_str();
                    if at_start && let Some(rest) = piece.strip_prefix(WORD_START) {
                        piece = rest;
                        dropped = true;
                    }
                    text.extend(piece.chars().map(|c| if c == WORD_START { ' ' } else { c }));
                }
            }
            at_start &= text.is_empty() && (self.remove_extra_whitespaces || !dropped);
        }
        push_bytes(&mut text, &mut bytes);
        text
    }
}

/// A word as NeMo's `get_words_offsets` makes it from sub-word tokens: its text and its span
/// in output frames (`start..end`, NeMo's offsets, see [`PieceTable::nemo_words`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetWord {
    /// The word's pieces decoded together.
    pub text: String,
    /// NeMo's `start_offset`: the emission frame of the token before the word's first.
    pub start: u64,
    /// NeMo's `end_offset`: the emission frame of the word's last token.
    pub end: u64,
}

impl PieceTable {
    /// A piece decoded on its own, as NeMo's token offsets name it.
    fn alone(&self, id: usize) -> String {
        self.decode(&[id])
    }

    /// Whether a token decoded alone is one of the vocabulary's punctuation characters.
    fn is_punctuation(&self, alone: &str) -> bool {
        let mut chars = alone.chars();
        matches!((chars.next(), chars.next()), (Some(c), None) if self.punctuation.contains(&c))
    }

    /// NeMo's token spans (`compute_ctc_timestamps`, `_refine_timestamps`): token `k`,
    /// emitted at frame `emitted[k]`, runs from the previous token's emission frame (the
    /// first from one frame before its own) to its own; a punctuation token after the first
    /// is zero long.
    fn token_spans(&self, tokens: &[usize], emitted: &[u64]) -> Vec<(u64, u64)> {
        let mut spans: Vec<(u64, u64)> = emitted
            .iter()
            .enumerate()
            .map(|(k, &e)| match k {
                0 => (e.saturating_sub(1), e),
                _ => (emitted[k - 1], e),
            })
            .collect();
        if !self.punctuation.is_empty() {
            for (k, span) in spans.iter_mut().enumerate().skip(1) {
                let opens = self.alone(tokens[k]).chars().next();
                if opens.is_some_and(|c| self.punctuation.contains(&c)) {
                    span.1 = span.0;
                }
            }
        }
        spans
    }

    /// The words NeMo's `get_words_offsets` makes of greedy CTC `tokens` emitted at frames
    /// `emitted` (the first frame of each token's run), with NeMo's spans: a piece that
    /// decodes to other text than itself (`▁..`, `<unk>`, a byte piece) starts a word,
    /// unless it is punctuation, which joins the word before; a word's text is its pieces
    /// decoded together (`docs/SUBWORD.md`).
    pub fn nemo_words(&self, tokens: &[usize], emitted: &[u64]) -> Vec<OffsetWord> {
        let spans = self.token_spans(tokens, emitted);
        let mut words: Vec<OffsetWord> = Vec::new();
        let mut built: Vec<usize> = Vec::new();
        let mut first = 0;
        let close = |built: &[usize], from: usize, to: usize, words: &mut Vec<OffsetWord>| {
            words.push(OffsetWord {
                text: self.decode(built),
                start: spans[from].0,
                end: spans[to].1,
            });
        };
        for (k, &id) in tokens.iter().enumerate() {
            let Some(piece) = self.pieces.get(id) else {
                continue;
            };
            let alone = self.alone(id);
            let punctuation = self.is_punctuation(&alone);
            if *piece != alone && !punctuation {
                if !built.is_empty() {
                    close(&built, first, k - 1, &mut words);
                }
                built = vec![id];
                first = k;
            } else if punctuation && built.is_empty() && !words.is_empty() {
                let last = words.last_mut().expect("checked");
                if last.text.ends_with(' ') {
                    last.text.pop();
                }
                last.text.push_str(&alone);
                last.end = spans[k].1;
            } else if punctuation && !built.is_empty() {
                let spacer =
                    |id: &usize| matches!(self.pieces[*id].as_str(), "\u{2581}" | " " | "_");
                if built.last().is_some_and(spacer) {
                    built.pop();
                }
                built.push(id);
            } else {
                if built.is_empty() {
                    first = k;
                }
                built.push(id);
            }
        }
        if !built.is_empty() {
            close(&built, first, tokens.len() - 1, &mut words);
        }
        if let (Some(word), Some(span)) = (words.first_mut(), spans.first()) {
            word.start = span.0;
        }
        words
    }
}

/// Appends a run of byte pieces as SentencePiece decodes it: each valid UTF-8 character as
/// itself, each byte that does not begin one as U+FFFD.
pub(crate) fn push_bytes(text: &mut String, bytes: &mut Vec<u8>) {
    let mut rest = bytes.as_slice();
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                text.push_str(valid);
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                text.push_str(std::str::from_utf8(valid).expect("checked valid"));
                text.push(char::REPLACEMENT_CHARACTER);
                rest = &after[1..];
            }
        }
    }
    bytes.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pieces: &[(&str, PieceKind)]) -> PieceTable {
        PieceTable::new(
            pieces.iter().map(|(p, _)| p.to_string()).collect(),
            pieces.iter().map(|(_, k)| *k).collect(),
            DEFAULT_UNKNOWN_SURFACE,
            false,
        )
        .unwrap()
    }

    #[test]
    fn pieces_decode_as_sentencepiece_writes_them() {
        use PieceKind::*;
        let t = table(&[
            ("<unk>", Unknown),
            ("<s>", Control),
            ("▁the", Normal),
            ("he", Normal),
            ("▁", Normal),
            ("<0xE2>", Byte(0xE2)),
            ("<0x82>", Byte(0x82)),
            ("<0xAC>", Byte(0xAC)),
            ("'", Normal),
        ]);
        // The leading space goes, later ones stay; control pieces write nothing.
        assert_eq!(t.decode(&[1, 2, 3, 2]), "thehe the");
        // A lone `▁` first is the dummy prefix: the next word keeps its space, unless the
        // tokenizer removes extra whitespace.
        assert_eq!(t.decode(&[4, 2]), " the");
        assert_eq!(t.decode(&[4, 4, 2]), "  the");
        let swallowing = PieceTable {
            remove_extra_whitespaces: true,
            ..t.clone()
        };
        assert_eq!(swallowing.decode(&[4, 4, 2]), "the");
        assert_eq!(t.decode(&[0, 4, 8]), " \u{2047}  '");
        // Bytes join into UTF-8; a truncated character is one U+FFFD per byte.
        assert_eq!(t.decode(&[3, 5, 6, 7]), "he€");
        assert_eq!(t.decode(&[5, 6, 3]), "\u{FFFD}\u{FFFD}he");
        assert!(t.starts_word(2) && t.starts_word(4) && !t.starts_word(3));
        // The blank (the id after the last piece) writes nothing.
        assert_eq!(t.decode(&[9, 2]), "the");
    }

    #[test]
    fn piece_kinds_parse_with_their_byte() {
        assert_eq!(
            PieceKind::parse("byte", "<0x7F>").unwrap(),
            PieceKind::Byte(0x7F)
        );
        assert!(PieceKind::parse("byte", "<0x7G>").is_err());
        assert!(PieceKind::parse("word", "x").is_err());
    }
}

// SPDX-License-Identifier: MPL-2.0
//! The beam search over SentencePiece pieces: words are the text between word starts (`▁`),
//! whichever pieces spell them, scored by the word LM as a character model's are.

use super::*;
use crate::decode::pieces::{PieceKind, PieceTable};
use crate::decode::transcript;

/// Vocabulary "a", "cat", "can", "cats" with a bigram preferring "a cat".
const ARPA: &str = "\\data\\
ngram 1=7
ngram 2=2

\\1-grams:
-2.0\t<unk>
-99\t<s>\t0
-1.0\t</s>
-1.0\ta\t0
-1.0\tcat\t0
-1.5\tcan\t0
-1.2\tcats\t0

\\2-grams:
-0.1\ta cat
-0.2\t<s> a

\\end\\
";

/// The pieces, in id order (blank is the id after the last).
const PIECES: &[(&str, PieceKind)] = &[
    ("<unk>", PieceKind::Unknown),
    ("<s>", PieceKind::Control),
    ("▁", PieceKind::Normal),
    ("▁a", PieceKind::Normal),
    ("▁c", PieceKind::Normal),
    ("at", PieceKind::Normal),
    ("an", PieceKind::Normal),
    ("▁cat", PieceKind::Normal),
    ("s", PieceKind::Normal),
    ("▁,", PieceKind::Normal),
    ("<0xC3>", PieceKind::Byte(0xC3)),
    ("<0xA9>", PieceKind::Byte(0xA9)),
    ("t", PieceKind::Normal),
    (",", PieceKind::Normal),
];

fn table() -> PieceTable {
    PieceTable::new(
        PIECES.iter().map(|(p, _)| p.to_string()).collect(),
        PIECES.iter().map(|(_, k)| *k).collect(),
        crate::decode::pieces::DEFAULT_UNKNOWN_SURFACE,
        false,
    )
    .unwrap()
}

fn id(piece: &str) -> usize {
    PIECES.iter().position(|(p, _)| *p == piece).unwrap()
}

fn decoder(lm_weight: f32, unk_penalty: Option<f32>) -> BeamSearchDecoder {
    BeamSearchDecoder::with_pieces(
        &table(),
        DecoderConfig {
            word_gap_frames: 10,
            ..DecoderConfig::default()
        },
        BeamConfig {
            lm: Arc::new(NgramModel::parse(ARPA.as_bytes()).unwrap()),
            beam_width: 16,
            lm_weight,
            word_bonus: 0.0,
            unk_penalty,
            commit_delay_frames: 0,
            lexicon: None,
            smearing: Smearing::Auto,
            hotwords: None,
        },
    )
    .unwrap()
}

/// Log-prob rows from per-frame `(piece, probability)` lists; the rest goes to blank.
fn frames(spec: &[&[(&str, f32)]]) -> Vec<f32> {
    let vocab = PIECES.len() + 1;
    let mut out = Vec::new();
    for frame in spec {
        let mut p = vec![1e-6f32; vocab];
        let mut rest = 1.0 - 1e-6 * vocab as f32;
        for &(piece, prob) in *frame {
            p[id(piece)] = prob;
            rest -= prob;
        }
        p[vocab - 1] = rest.max(1e-6);
        out.extend(p.iter().map(|x| x.ln()));
    }
    out
}

/// Every frame's argmax with certainty (the rest blank).
fn clear(pieces: &[&str]) -> Vec<f32> {
    let spec: Vec<Vec<(&str, f32)>> = pieces
        .iter()
        .map(|&p| {
            if p.is_empty() {
                vec![]
            } else {
                vec![(p, 0.98)]
            }
        })
        .collect();
    let refs: Vec<&[(&str, f32)]> = spec.iter().map(Vec::as_slice).collect();
    frames(&refs)
}

fn words(d: &mut BeamSearchDecoder, lp: &[f32], chunk_frames: usize) -> Vec<Word> {
    let vocab = d.vocab_size();
    let mut out = Vec::new();
    for chunk in lp.chunks(chunk_frames * vocab) {
        out.extend(d.push(chunk, chunk.len() / vocab));
    }
    out.extend(d.finish());
    out
}

fn decode(d: &mut BeamSearchDecoder, lp: &[f32]) -> String {
    transcript(&words(d, lp, usize::MAX / 64))
}

#[test]
fn a_word_start_piece_completes_the_word_before_it() {
    let lp = clear(&["▁a", "", "▁c", "at", "", "▁a", ""]);
    assert_eq!(decode(&mut decoder(0.5, None), &lp), "a cat a");
    let ws = words(&mut decoder(0.5, None), &lp, 100);
    let times: Vec<(u64, u64)> = ws.iter().map(|w| (w.start_frame, w.end_frame)).collect();
    // A word runs from its first piece's first frame to its last piece's last.
    assert_eq!(times, [(0, 1), (2, 4), (5, 6)]);
}

#[test]
fn a_word_is_the_same_whichever_pieces_spell_it() {
    // "▁cat" and "▁c" + "at" are one text: their masses add up on one hypothesis.
    let split = frames(&[
        &[("▁a", 0.9)],
        &[("▁cat", 0.45), ("▁c", 0.3)],
        &[("at", 0.6)],
        &[],
    ]);
    assert_eq!(decode(&mut decoder(0.5, None), &split), "a cat");
}

#[test]
fn the_language_model_resolves_an_ambiguous_piece() {
    // "an" beats "at" acoustically; the bigram "a cat" outweighs that.
    let lp = frames(&[
        &[("▁a", 0.9)],
        &[("▁c", 0.9)],
        &[("an", 0.5), ("at", 0.45)],
        &[],
    ]);
    assert_eq!(decode(&mut decoder(1.0, None), &lp), "a cat");
    assert_eq!(decode(&mut decoder(0.0, None), &lp), "a can");
}

#[test]
fn a_repeated_word_start_needs_a_blank_between() {
    assert_eq!(decode(&mut decoder(0.5, None), &clear(&["▁a", "▁a"])), "a");
    assert_eq!(
        decode(&mut decoder(0.5, None), &clear(&["▁a", "", "▁a"])),
        "a a"
    );
}

#[test]
fn pieces_without_a_word_start_spell_on() {
    // "▁cat" + "s" is "cats"; a lone "▁" only separates.
    let lp = clear(&["▁cat", "s", "", "▁", "▁a", ""]);
    assert_eq!(decode(&mut decoder(0.5, None), &lp), "cats a");
}

#[test]
fn unknown_words_and_byte_pieces() {
    // "▁c" + é (two byte pieces) + "t": no vocabulary word; written as UTF-8.
    let lp = clear(&["▁a", "", "▁c", "<0xC3>", "<0xA9>", "t", ""]);
    assert_eq!(decode(&mut decoder(0.5, Some(1.0)), &lp), "a cét");
    // Without unknown words only vocabulary words come out.
    assert_eq!(decode(&mut decoder(0.5, None), &lp), "a");
}

#[test]
fn punctuation_opens_without_a_space_and_control_pieces_write_nothing() {
    let lp = clear(&["▁a", "<s>", "▁cat", "", "▁,", "", "▁a", ""]);
    let ws = words(&mut decoder(0.5, Some(1.0)), &lp, 3);
    assert_eq!(transcript(&ws), "a cat, a");
    assert_eq!(ws[2].spaces_before, 0);
    // The unknown piece separates words and writes nothing.
    let lp = clear(&["▁cat", "<unk>", "s", ""]);
    assert_eq!(decode(&mut decoder(0.5, Some(1.0)), &lp), "cat s");
}

#[test]
fn the_result_does_not_depend_on_push_sizes() {
    let mut seed = 7u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % 1000) as f32 / 1000.0
    };
    let vocab = PIECES.len() + 1;
    let mut lp = Vec::new();
    for _ in 0..120 {
        let mut row: Vec<f32> = (0..vocab).map(|_| next().powi(4) + 1e-4).collect();
        // Silences of `word_gap_frames` now and then complete words on their own too.
        row[vocab - 1] += 3.0 * next().powi(8);
        let sum: f32 = row.iter().sum();
        lp.extend(row.iter().map(|p| (p / sum).ln()));
    }
    let key = |ws: Vec<Word>| -> Vec<(String, u32, u64, u64)> {
        ws.into_iter()
            .map(|w| (w.text, w.spaces_before, w.start_frame, w.end_frame))
            .collect()
    };
    let whole = key(words(&mut decoder(0.5, Some(4.0)), &lp, 1000));
    assert!(whole.len() > 5, "{whole:?}");
    for chunk in [1, 3, 7] {
        assert_eq!(
            key(words(&mut decoder(0.5, Some(4.0)), &lp, chunk)),
            whole,
            "chunks of {chunk}"
        );
    }
}

#[test]
fn a_lexicon_does_not_apply_to_pieces() {
    let lexicon = crate::lexicon::PronunciationLexicon::from_entries(
        [("cat".to_string(), vec!["▁cat".to_string()])],
        table().pieces(),
        "▁",
    )
    .unwrap();
    let e = BeamSearchDecoder::with_pieces(
        &table(),
        DecoderConfig::default(),
        BeamConfig {
            lexicon: Some(Arc::new(lexicon)),
            ..decoder(0.5, None).config
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("no lexicon"), "{e}");
}

#[test]
fn hotwords_over_pieces() {
    let hot = |text: &str| {
        let mut d = decoder(0.0, None);
        let list = crate::decode::hotwords::HotwordList::parse(text, "test").unwrap();
        d.set_hotwords(Some(Arc::new(list)), None).unwrap();
        d
    };
    // "an" beats "at" acoustically; with no LM weight "can" wins, unless "cat" is a hotword
    // (spelled "▁c" + "at" or "▁cat": the same text).
    let lp = frames(&[
        &[("▁a", 0.9)],
        &[("▁c", 0.9)],
        &[("an", 0.5), ("at", 0.45)],
        &[],
    ]);
    assert_eq!(decode(&mut decoder(0.0, None), &lp), "a can");
    assert_eq!(decode(&mut hot("cat :1"), &lp), "a cat");
    // A word no LM knows, written by pieces: "tat" ("t" + "at").
    let tat = clear(&["▁a", "", "▁", "t", "at", ""]);
    assert_eq!(decode(&mut decoder(0.5, None), &tat), "a");
    assert_eq!(decode(&mut hot("tat"), &tat), "a tat");
}

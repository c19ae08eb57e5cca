// SPDX-License-Identifier: MPL-2.0
//! Sub-word (SentencePiece) vocabularies against NeMo 3.0: the text NeMo's CTC decoding
//! writes for label sequences over tokenizers trained here (`tools/subword_fixtures.py`,
//! fixtures in `tests/fixtures/subword/`: unigram, BPE with byte fallback, a capitals and
//! punctuation unigram).

#[path = "../../tests/common/mod.rs"]
mod common;

use common::ctc_emissions;

use std::path::Path;

use quartznet_engine::decode::pieces::{PieceKind, PieceTable};
use quartznet_engine::decode::{DecoderConfig, GreedyCtcDecoder, Word, transcript};
use serde_json::Value;

/// The piece table a fixture's `pieces.json` describes.
fn table(dir: &Path) -> PieceTable {
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("pieces.json")).unwrap()).unwrap();
    let entries = json["pieces"].as_array().unwrap();
    let pieces: Vec<String> = entries
        .iter()
        .map(|p| p["piece"].as_str().unwrap().to_string())
        .collect();
    let kinds: Vec<PieceKind> = entries
        .iter()
        .map(|p| {
            PieceKind::parse(p["type"].as_str().unwrap(), p["piece"].as_str().unwrap()).unwrap()
        })
        .collect();
    assert_eq!(json["blank_id"].as_u64().unwrap() as usize, pieces.len());
    let remove_extra = json["normalizer"]["remove_extra_whitespaces"]
        .as_bool()
        .unwrap();
    PieceTable::new(
        pieces,
        kinds,
        json["unk_surface"].as_str().unwrap(),
        remove_extra,
    )
    .unwrap()
}

fn tokenizers() -> Vec<std::path::PathBuf> {
    let root = common::fixtures().join("subword");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("pieces.json").exists())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 3, "{dirs:?}");
    dirs
}

/// The collapsed tokens of every case decode to NeMo's text, byte for byte.
#[test]
fn texts_are_nemos() {
    for dir in tokenizers() {
        let table = table(&dir);
        let cases: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap())
                .unwrap();
        for case in cases["cases"].as_array().unwrap() {
            let tokens: Vec<usize> = case["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_u64().unwrap() as usize)
                .collect();
            let name = case["name"].as_str().unwrap();
            assert_eq!(
                table.decode(&tokens),
                case["sp_decode_ids"].as_str().unwrap(),
                "{}: {name} (SentencePiece)",
                dir.display()
            );
            assert_eq!(
                table.text(&tokens),
                case["text"].as_str().unwrap(),
                "{}: {name}",
                dir.display()
            );
        }
    }
}

/// Words and their spans are NeMo's `get_words_offsets`, for every case.
#[test]
fn word_offsets_are_nemos() {
    for dir in tokenizers() {
        let table = table(&dir);
        let cases: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap())
                .unwrap();
        let blank = table.pieces().len();
        for case in cases["cases"].as_array().unwrap() {
            let ids = |key: &str| -> Vec<usize> {
                case[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_u64().unwrap() as usize)
                    .collect()
            };
            let (labels, tokens) = (ids("labels"), ids("tokens"));
            let emitted = ctc_emissions(&labels, blank);
            assert_eq!(emitted.len(), tokens.len());
            let ours: Vec<(String, u64, u64)> = table
                .nemo_words(&tokens, &emitted)
                .into_iter()
                .map(|w| (w.text, w.start, w.end))
                .collect();
            let nemo: Vec<(String, u64, u64)> = case["word_offsets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| {
                    (
                        w["word"].as_str().unwrap().to_string(),
                        w["start_offset"].as_u64().unwrap(),
                        w["end_offset"].as_u64().unwrap(),
                    )
                })
                .collect();
            assert_eq!(
                ours,
                nemo,
                "{}: {}",
                dir.display(),
                case["name"].as_str().unwrap()
            );
        }
    }
}

/// One-hot log-prob rows (`vocab` wide) whose argmax is each of `labels`.
fn one_hot(labels: &[usize], vocab: usize) -> Vec<f32> {
    labels
        .iter()
        .flat_map(|&l| (0..vocab).map(move |i| if i == l { 0.0 } else { -30.0 }))
        .collect()
}

/// Whether NeMo's word is one our words must reproduce: NeMo's `get_words_offsets` makes
/// empty words of lone `▁` pieces, a U+FFFD word of each byte piece and words that begin
/// with the unknown surface's space, which the streaming decoder does not
/// (`docs/SUBWORD.md`, "Greedy decoding in this repository").
fn sensible(word: &str) -> bool {
    !word.is_empty() && !word.contains(['\u{FFFD}', ' ', '\u{2047}'])
}

/// The streaming greedy decoder over pieces writes NeMo's text for every case, byte for
/// byte, however the frames are split into `push()` calls and wherever words are cut for
/// timing; its words are the text's words, and each of NeMo's sensible words is one of
/// them, with frames consistent with NeMo's offsets.
#[test]
fn greedy_decoder_writes_nemos_text_and_words() {
    let configs = [
        DecoderConfig::default(),
        DecoderConfig {
            word_gap_frames: 1,
            max_word_frames: 3,
            ..DecoderConfig::default()
        },
    ];
    let (mut cases_seen, mut matched) = (0, 0);
    for dir in tokenizers() {
        let table = table(&dir);
        let cases: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap())
                .unwrap();
        let blank = table.pieces().len();
        let vocab = blank + 1;
        for case in cases["cases"].as_array().unwrap() {
            let name = format!("{}: {}", dir.display(), case["name"].as_str().unwrap());
            let labels: Vec<usize> = case["labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_u64().unwrap() as usize)
                .collect();
            let text = case["text"].as_str().unwrap();
            let rows = one_hot(&labels, vocab);
            let n = labels.len();
            cases_seen += 1;
            for (c, &config) in configs.iter().enumerate() {
                let mut whole: Option<Vec<Word>> = None;
                for chunk in [1, 3, n.max(1)] {
                    let mut decoder = GreedyCtcDecoder::with_pieces(table.clone(), config).unwrap();
                    let mut words = Vec::new();
                    for frames in rows.chunks(chunk * vocab) {
                        words.extend(decoder.push(frames, frames.len() / vocab));
                        if let Some(pending) = decoder.pending() {
                            assert!(pending.start_frame <= pending.end_frame, "{name}");
                        }
                    }
                    words.extend(decoder.finish());
                    let trailing = " ".repeat(decoder.trailing_spaces() as usize);
                    assert_eq!(
                        transcript(&words) + &trailing,
                        text,
                        "{name}, config {c}, chunks of {chunk}: {words:?}"
                    );
                    for pair in words.windows(2) {
                        assert!(pair[0].start_frame <= pair[1].start_frame, "{name}");
                        assert!(pair[0].end_frame <= pair[1].end_frame, "{name}");
                    }
                    for w in &words {
                        assert!(!w.text.is_empty(), "{name}: {words:?}");
                        assert!(w.start_frame < w.end_frame, "{name}: {w:?}");
                        assert!(w.end_frame <= n as u64, "{name}: {w:?}");
                    }
                    // The chunking changes nothing, confidences included.
                    match &whole {
                        None => whole = Some(words),
                        Some(first) => assert_eq!(&words, first, "{name}, chunks of {chunk}"),
                    }
                }
                if c > 0 {
                    continue;
                }
                // Without timing cuts, each sensible NeMo word is one of ours, in order. Ours
                // run from the emission of the first token that writes into them to the end
                // of the last one's run; NeMo's start at the emission of the token before
                // the first (a lone `▁` is one of NeMo's word's tokens), and end at the
                // emission of the last.
                let words = whole.unwrap();
                let mut ours = words.iter();
                let nemo_words = case["word_offsets"].as_array().unwrap();
                for (k, nemo) in nemo_words.iter().enumerate() {
                    let word = nemo["word"].as_str().unwrap();
                    // A byte piece continues the word before in our text's words, while
                    // NeMo starts a word with it (whose text is U+FFFD or, for ASCII, the
                    // character). A NeMo word's first token is the last
                    // whose span starts where the word does (spans start at the previous
                    // token's emission, so only the first two can share a start).
                    let pieces = case["pieces"].as_array().unwrap();
                    let spans = case["char_offsets"].as_array().unwrap();
                    let of_bytes = |word: &Value| {
                        let first = spans
                            .iter()
                            .rposition(|t| t["start_offset"] == word["start_offset"])
                            .unwrap();
                        pieces[first].as_str().unwrap().starts_with("<0x")
                    };
                    let cut_by_bytes = nemo_words.get(k + 1).is_some_and(of_bytes);
                    if !sensible(word) || of_bytes(nemo) || cut_by_bytes {
                        continue;
                    }
                    let (start, end) = (
                        nemo["start_offset"].as_u64().unwrap(),
                        nemo["end_offset"].as_u64().unwrap(),
                    );
                    let found = ours
                        .find(|w| w.text == word)
                        .unwrap_or_else(|| panic!("{name}: NeMo's {word:?} in {words:?}"));
                    // (NeMo ends a word whose last token is punctuation at the token
                    // before's emission, so NeMo's end may lie before our start.)
                    assert!(
                        start <= found.start_frame && end < found.end_frame,
                        "{name}: NeMo's {word:?} {start}..{end}, ours {found:?}"
                    );
                    matched += 1;
                }
            }
        }
    }
    assert!(
        cases_seen >= 100 && matched >= 300,
        "{cases_seen} cases, {matched} words"
    );
}

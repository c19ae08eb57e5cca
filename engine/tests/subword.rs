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

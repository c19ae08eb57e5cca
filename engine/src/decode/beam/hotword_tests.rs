// SPDX-License-Identifier: MPL-2.0
//! Hotwords in the beam search: whole phrases gain, partial matches give their boost back,
//! words the LM lacks become writable, the fast path stays exact, and a list can change
//! between frames.

use super::tests::{frames, lm, random_frames, stream_words};
use super::*;
use crate::decode::hotwords::HotwordList;
use crate::model::english_labels;

fn list(text: &str) -> Option<Arc<HotwordList>> {
    Some(Arc::new(HotwordList::parse(text, "test list").unwrap()))
}

fn characters(unk_penalty: Option<f32>, hotwords: Option<Arc<HotwordList>>) -> BeamSearchDecoder {
    BeamSearchDecoder::new(
        english_labels(),
        DecoderConfig {
            word_gap_frames: 10,
            ..DecoderConfig::default()
        },
        BeamConfig {
            lm: lm(),
            beam_width: 16,
            lm_weight: 0.0,
            word_bonus: 0.0,
            unk_penalty,
            commit_delay_frames: 0,
            lexicon: None,
            smearing: Smearing::Auto,
            hotwords,
        },
    )
    .unwrap()
}

fn decode(d: &mut BeamSearchDecoder, lp: &[f32]) -> String {
    let n = lp.len() / d.vocab_size();
    let mut words = d.push(lp, n);
    words.extend(d.finish());
    crate::decode::transcript(&words)
}

/// "a ca?": 'n' a little likelier than 't'.
fn can_or_cat() -> Vec<f32> {
    frames(&[
        &[('a', 0.9)],
        &[(' ', 0.9)],
        &[('c', 0.9)],
        &[('a', 0.9)],
        &[('n', 0.5), ('t', 0.45)],
        &[],
    ])
}

#[test]
fn a_hotword_wins_where_the_sound_is_ambiguous() {
    assert_eq!(decode(&mut characters(None, None), &can_or_cat()), "a can");
    assert_eq!(
        decode(&mut characters(None, list("cat :1")), &can_or_cat()),
        "a cat"
    );
    // Multi-word: "a cat" as a phrase.
    assert_eq!(
        decode(&mut characters(None, list("a cat :1")), &can_or_cat()),
        "a cat"
    );
}

#[test]
fn a_partial_match_alone_never_wins() {
    // "cats" is matched up to "cat", then the word ends: the boost of "cat" as the start of
    // "cats" is given back, so "can" (likelier) stays; were it kept, "cat" would win.
    let boosted = characters(None, list("cats :3"));
    assert_eq!(decode(&mut boosted.clone(), &can_or_cat()), "a can");
    // The boost is really there while the phrase is spoken.
    let mut d = boosted;
    d.push(&can_or_cat()[..5 * d.vocab_size()], 5);
    let best = d.pending().into_iter().map(|w| w.text).collect::<Vec<_>>();
    assert_eq!(best, ["a", "cat"], "partial boost while it lasts");
}

#[test]
fn hotwords_the_lm_lacks_are_written_even_with_unknown_words_off() {
    // "a cot": no vocabulary word; closed vocabulary writes "a".
    let cot = frames(&[
        &[('a', 0.95)],
        &[(' ', 0.95)],
        &[('c', 0.95)],
        &[('o', 0.95)],
        &[('t', 0.95)],
        &[],
    ]);
    assert_eq!(decode(&mut characters(None, None), &cot), "a");
    assert_eq!(decode(&mut characters(None, list("cot")), &cot), "a cot");
    // The unknown-word penalty does not apply to it either.
    let mut d = characters(Some(100.0), list("cot :0.001"));
    assert_eq!(decode(&mut d, &cot), "a cot");
}

#[test]
fn a_list_the_model_cannot_write_is_an_error_naming_the_line() {
    let e = BeamSearchDecoder::new(
        english_labels(),
        DecoderConfig::default(),
        BeamConfig {
            hotwords: list("cat\nnaïve\n"),
            ..characters(None, None).config
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("hotword list test list, line 2 (\"naïve\"): the model cannot write 'ï'"),
        "{e}"
    );
}

#[test]
fn upper_case_hotwords_fit_a_lower_case_model() {
    assert_eq!(
        decode(&mut characters(None, list("CAT :1")), &can_or_cat()),
        "a cat"
    );
}

/// The fast path is exact with hotwords too: its bound adds the most a step can gain.
#[test]
fn the_fast_path_is_exactly_the_general_one_with_hotwords() {
    let hotwords = list("cat :2\nban at :4\nbat :1.5\ncon :3\nnab :2\n");
    for seed in 0..20u64 {
        let lp = random_frames(seed, 120);
        for (width, unk) in [(1, None), (8, Some(2.0)), (32, None), (64, Some(0.5))] {
            let make = || characters(unk, hotwords.clone());
            let mut fast = make();
            assert!(fast.fast_path);
            let mut general = make();
            general.fast_path = false;
            fast.config.beam_width = width;
            general.config.beam_width = width;
            assert_eq!(
                stream_words(&mut fast, &lp),
                stream_words(&mut general, &lp),
                "seed {seed}, width {width}, unknown {unk:?}"
            );
        }
    }
}

#[test]
fn a_list_changed_between_frames_applies_from_the_next() {
    let lp = can_or_cat();
    let vocab = english_labels().len() + 1;
    // Set before the word: it counts.
    let mut d = characters(None, None);
    let mut words = d.push(&lp[..2 * vocab], 2);
    d.set_hotwords(list("cat :1"), None).unwrap();
    words.extend(d.push(&lp[2 * vocab..], lp.len() / vocab - 2));
    words.extend(d.finish());
    assert_eq!(crate::decode::transcript(&words), "a cat");
    // Removed before the word: it does not.
    let mut d = characters(None, list("cat :1"));
    let mut words = d.push(&lp[..2 * vocab], 2);
    d.set_hotwords(None, None).unwrap();
    words.extend(d.push(&lp[2 * vocab..], lp.len() / vocab - 2));
    words.extend(d.finish());
    assert_eq!(crate::decode::transcript(&words), "a can");
    // A word the LM lacks, spelled while the list changes, keeps its text.
    let cot = frames(&[
        &[('c', 0.95)],
        &[('o', 0.95)],
        &[('t', 0.95)],
        &[(' ', 0.9)],
        &[],
    ]);
    let mut d = characters(Some(1.0), list("cot"));
    let mut words = d.push(&cot[..2 * vocab], 2);
    d.set_hotwords(list("cab"), None).unwrap();
    words.extend(d.push(&cot[2 * vocab..], 3));
    words.extend(d.finish());
    assert_eq!(crate::decode::transcript(&words), "cot");
}

mod phonemes {
    use super::*;
    use crate::lexicon::PronunciationLexicon;

    const LABELS: [&str; 8] = ["k", "æ", "t", "ɛ", "n", "aɪ", "s", "<wb>"];
    /// Variants (cat), and a word the LM does not know (kite).
    const WORDS: [(&str, &str); 7] = [
        ("kai", "k aɪ"),
        ("cat", "k æ t"),
        ("cat", "k ɛ t"),
        ("can", "k æ n"),
        ("kite", "k aɪ t"),
        ("kites", "k aɪ t s"),
        ("tan", "t æ n"),
    ];
    const ARPA: &str = "\\data\\\nngram 1=7\n\n\\1-grams:\n-2.0\t<unk>\n-99\t<s>\n-1.0\t</s>\n-1.0\tcat\n-1.0\tcan\n-1.2\tkites\n-1.5\ttan\n\n\\end\\\n";

    fn labels() -> Vec<String> {
        LABELS.map(String::from).to_vec()
    }

    fn make(width: usize, hotwords: Option<Arc<HotwordList>>) -> BeamSearchDecoder {
        let entries = WORDS.map(|(w, s)| (w.to_string(), s.split(' ').map(String::from).collect()));
        let lexicon = PronunciationLexicon::from_entries(entries, &labels(), "<wb>").unwrap();
        BeamSearchDecoder::new(
            labels(),
            DecoderConfig {
                word_gap_frames: 4,
                ..DecoderConfig::default()
            },
            BeamConfig {
                lm: Arc::new(NgramModel::parse(ARPA.as_bytes()).unwrap()),
                beam_width: width,
                lm_weight: 0.5,
                word_bonus: 0.5,
                unk_penalty: None,
                commit_delay_frames: 3,
                lexicon: Some(Arc::new(lexicon)),
                smearing: Smearing::Auto,
                hotwords,
            },
        )
        .unwrap()
    }

    fn rows(spec: &[&[(&str, f32)]]) -> Vec<f32> {
        let vocab = LABELS.len() + 1;
        let mut out = Vec::new();
        for frame in spec {
            let mut p = vec![1e-6f32; vocab];
            let mut rest = 1.0 - 1e-6 * vocab as f32;
            for &(label, prob) in *frame {
                p[LABELS.iter().position(|l| *l == label).unwrap()] = prob;
                rest -= prob;
            }
            p[vocab - 1] = rest.max(1e-6);
            out.extend(p.iter().map(|x| x.ln()));
        }
        out
    }

    #[test]
    fn a_lexicon_word_the_lm_lacks_wins_as_a_hotword() {
        // "k a?t": "æ" a little likelier than "aɪ"; "kite" is no LM word.
        let lp = rows(&[
            &[("k", 0.9)],
            &[("æ", 0.5), ("aɪ", 0.45)],
            &[("t", 0.9)],
            &[("<wb>", 0.9)],
            &[],
        ]);
        assert_eq!(decode(&mut make(16, None), &lp), "cat");
        assert_eq!(decode(&mut make(16, list("kite :3")), &lp), "kite");
        // "kites" is matched up to "kite" only: its boost goes back.
        assert_eq!(decode(&mut make(16, list("kites :3")), &lp), "cat");
        // A hotword not in the lexicon is an error naming it (the settings add such words
        // to the lexicon with the model's G2P first).
        let e = BeamSearchDecoder::new(
            labels(),
            DecoderConfig::default(),
            BeamConfig {
                hotwords: list("kit"),
                ..make(4, None).config
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("\"kit\" is not in the pronunciation lexicon"),
            "{e}"
        );
    }

    #[test]
    fn a_boundary_inside_a_hotword_word_is_absorbed() {
        // The model splits "kite" with a word boundary it is sure of: "kai" (and a "t" that
        // is no word) without the list; with it the spelling goes on across the boundary
        // (were the boundary not absorbed, "kite" would have to pay for a blank there).
        let lp = rows(&[
            &[("k", 0.9)],
            &[("aɪ", 0.9)],
            &[("<wb>", 0.998)],
            &[("t", 0.9)],
            &[("<wb>", 0.9)],
            &[],
        ]);
        assert_eq!(decode(&mut make(16, None), &lp), "kai");
        assert_eq!(decode(&mut make(16, list("kite :3")), &lp), "kite");
    }

    #[test]
    fn the_fast_path_is_exactly_the_general_one_with_hotwords() {
        let hotwords = list("kite :2\ncat tan :3\ncan :1\n");
        let vocab = LABELS.len() + 1;
        for seed in 0..20u64 {
            let mut state = seed.wrapping_mul(7919).wrapping_add(17);
            let mut next = || {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((state >> 33) as f32) / (1u64 << 31) as f32
            };
            let mut lp = Vec::new();
            for _ in 0..100 {
                let mut p: Vec<f32> = (0..vocab)
                    .map(|_| {
                        let r = next();
                        if r < 0.5 { 1e-7 } else { r * r * r }
                    })
                    .collect();
                p[vocab - 1] += next() * 1.5;
                let sum: f32 = p.iter().sum();
                lp.extend(p.iter().map(|x| (x / sum).ln()));
            }
            for width in [1, 4, 16, 48] {
                let mut fast = make(width, hotwords.clone());
                assert!(fast.fast_path);
                let mut general = make(width, hotwords.clone());
                general.fast_path = false;
                assert_eq!(
                    stream_words(&mut fast, &lp),
                    stream_words(&mut general, &lp),
                    "seed {seed}, width {width}"
                );
            }
        }
    }
}

// SPDX-License-Identifier: MPL-2.0
//! `tools/lm/build_lm.py` and the Rust ARPA reader together: the file the tool writes loads,
//! and every distribution it describes sums to one.

use std::path::Path;
use std::process::Command;

use quartznet_engine::lm::NgramModel;

const TEXT: &str = "the cat sat on the mat
the dog sat on the log
a cat and a dog
the cat ate the rat
on the mat the cat sat
a rat sat on a log
";

#[test]
fn built_models_load_and_are_normalised() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let text = dir.join("text.txt");
    std::fs::write(&text, TEXT).unwrap();
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/lm/build_lm.py");
    // A word-frequency list (lm_text.py's wordfreq_en.tsv) adds its words to the vocabulary.
    let unigrams = dir.join("unigrams.tsv");
    std::fs::write(&unigrams, "the\t0.05\nbird\t0.001\nnot-a-word\t0.01\n").unwrap();
    for (name, prune, with_unigrams) in [
        ("full.arpa", "0", false),
        ("pruned.arpa.gz", "1", false),
        ("unigrams.arpa", "1", true),
    ] {
        let out = dir.join(name);
        let mut command = Command::new("python3");
        command
            .arg(&tool)
            .arg(&text)
            .args(["--order", "3", "--prune", "0", prune, prune, "-o"])
            .arg(&out);
        if with_unigrams {
            command.arg("--unigrams").arg(&unigrams);
        }
        let status = command.status().expect("python3 runs");
        assert!(status.success(), "build_lm.py {name}");
        let lm = NgramModel::load(&out).unwrap();
        assert_eq!(lm.order(), 3);
        let mut vocabulary = vec![
            "the", "cat", "sat", "on", "mat", "dog", "log", "a", "and", "ate", "rat", "</s>",
            "<unk>",
        ];
        if with_unigrams {
            vocabulary.push("bird");
        }
        assert_eq!(
            lm.vocabulary_size(),
            vocabulary.len() + 1,
            "{name}: and <s>"
        );
        let words: Vec<Option<u32>> = vocabulary.iter().map(|w| lm.word_id(w)).collect();
        assert!(words.iter().all(Option::is_some), "{name}: vocabulary");
        let id = |w: &str| lm.word_id(w).unwrap();
        for context in [
            vec![id("<s>")],
            vec![id("<s>"), id("the")],
            vec![id("the"), id("cat")],
            vec![id("rat"), id("and")],
            vec![],
        ] {
            let total: f64 = words
                .iter()
                .map(|&w| f64::from(lm.log_prob(&context, w)).exp())
                .sum();
            assert!(
                (total - 1.0).abs() < 1e-3,
                "{name}: p(. | {context:?}) sums to {total}"
            );
        }
        // Seen continuations beat unseen ones.
        assert!(
            lm.log_prob(&[id("the"), id("cat")], Some(id("sat")))
                > lm.log_prob(&[id("the"), id("cat")], Some(id("log")))
        );
    }
}

/// The bundled LM through the cache of compiled copies: the copy gives every score the
/// parsed text gives, bit for bit (a sample of 200,000 trigrams of its words, and the
/// n-grams its decoder meets most: those in the file).
#[test]
fn the_bundled_lm_reads_back_from_its_compiled_copy() {
    use quartznet_engine::lm::LmCache;
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/quartznet-en.arpa.gz");
    let tmp = tempfile::tempdir().unwrap();
    let cache = LmCache::new(tmp.path());
    let parsed = NgramModel::load_cached(&source, None).unwrap();
    let written = NgramModel::load_cached(&source, Some(&cache)).unwrap();
    let copy = NgramModel::load_cached(&source, Some(&cache)).unwrap();
    assert!(!written.loaded_from_cache() && copy.loaded_from_cache());
    assert_eq!(parsed.vocabulary_size(), copy.vocabulary_size());
    assert_eq!(parsed.trie_size(), copy.trie_size());
    let words = parsed.vocabulary_size() as u64;
    // A fixed linear congruential sequence: the same sample on every run.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) % words) as u32
    };
    let mut listed = 0;
    for _ in 0..200_000 {
        let (a, b, c) = (next(), next(), next());
        for context in [&[a, b][..], &[b][..], &[][..]] {
            let (p, q) = (
                parsed.log_prob(context, Some(c)),
                copy.log_prob(context, Some(c)),
            );
            assert_eq!(p.to_bits(), q.to_bits(), "{context:?} {c}");
        }
    }
    // Trigrams and bigrams the file lists (random ones almost always back off).
    let text = std::io::read_to_string(flate2::read::GzDecoder::new(
        std::fs::File::open(&source).unwrap(),
    ))
    .unwrap();
    for line in text
        .lines()
        .filter(|l| l.split('\t').nth(1).is_some_and(|w| w.contains(' ')))
    {
        let ids: Option<Vec<u32>> = line
            .split('\t')
            .nth(1)
            .unwrap()
            .split(' ')
            .map(|w| parsed.word_id(w))
            .collect();
        let ids = ids.unwrap();
        let (context, word) = ids.split_at(ids.len() - 1);
        let (p, q) = (
            parsed.log_prob(context, Some(word[0])),
            copy.log_prob(context, Some(word[0])),
        );
        assert_eq!(p.to_bits(), q.to_bits(), "{line}");
        listed += 1;
    }
    assert!(listed > 1_000_000, "{listed} listed n-grams checked");
}

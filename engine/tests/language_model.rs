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

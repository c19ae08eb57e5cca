// SPDX-License-Identifier: MPL-2.0
//! Bounded-time fuzz tests: random and hostile input for everything the engine reads or is
//! handed (ARPA language models plain and gzipped, model descriptions and alphabets, frontend
//! settings and audio, CTC log-probs for both decoders, an acoustic model that misbehaves).
//! The property is always the same: no panic and no hang; a failure is a typed
//! [`quartznet_engine::Error`] whose message names the file, source or setting; what is
//! accepted can be used.
//!
//! Each property runs a fixed number of random cases, a few seconds in all in a debug build,
//! so it runs with every `cargo test`. `QUARTZNETSTT_FUZZ_CASES` sets the number of cases of
//! every property, for a longer run on demand:
//!
//! ```text
//! QUARTZNETSTT_FUZZ_CASES=100000 cargo test --release -p quartznet-engine --test fuzz
//! ```
//!
//! Inputs are new on every run (`PROPTEST_RNG_SEED=<u64>` fixes them). A failure prints the
//! smallest input proptest found; each one becomes a plain `#[test]` at the end of this file
//! (the `regression_` tests) next to the fix.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, LazyLock};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use serde_json::{Map, Value, json};

use quartznet_engine::Error;
use quartznet_engine::decode::{
    BeamConfig, ConfidenceAggregation, ConfidenceConfig, ConfidenceMeasure, CtcDecoder,
    DecoderConfig, DecodingOptions, Word,
};
use quartznet_engine::frontend::{
    FeatureExtractor, Features, FrontendConfig, MAX_N_FFT, MAX_N_MELS, Normalization, PaddingMode,
};
use quartznet_engine::lm::{MAX_LINE_BYTES, NgramModel};
use quartznet_engine::model::{
    AcousticModel, FORMAT, ModelDescription, english_labels, parse_alphabet,
};
use quartznet_engine::streaming::{
    STREAM_LEAD_IN_MS, StreamEdges, StreamingRecognizer, WindowConfig, recognize_offline,
};

/// The proptest settings of a property: `default` cases unless `QUARTZNETSTT_FUZZ_CASES`
/// says otherwise; no regression files (failures become `regression_` tests here).
fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("QUARTZNETSTT_FUZZ_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        // A failure is reported within a minute, shrunk as far as that allows.
        max_shrink_time: 60_000,
        ..ProptestConfig::default()
    }
}

/// A failure must be a message that names `name` (the file, source or setting).
fn names(error: &Error, name: &str) -> Result<(), TestCaseError> {
    let text = error.to_string();
    prop_assert!(!text.trim().is_empty(), "empty message: {error:?}");
    prop_assert!(text.contains(name), "{text:?} does not name {name:?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// ARPA language models
// ---------------------------------------------------------------------------------------

/// Words an ARPA line may hold: markers, vocabulary, and things that look like syntax.
const ARPA_WORDS: &[&str] = &[
    "<s>", "</s>", "<unk>", "a", "b", "ab", "ba", "abc", "é", "<x>", "x\u{0}y", "-1.0", "\\data\\",
    "ngram", "'",
];

/// A log10 value as a file may write it: mostly ordinary, sometimes anything.
fn arpa_number() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (-12.0f32..1.0).prop_map(|v| format!("{v:.4}")),
        2 => select(vec![
            "0", "-0", "-99", "-inf", "inf", "+inf", "-Infinity", "NaN", "nan", "1e38", "-1e38",
            "3.5e38", "-3.5e38", "1e30", "1e-45", "x", "0x10", "1_0", "--1", "1e", "",
        ])
        .prop_map(String::from),
        1 => any::<f32>().prop_map(|v| v.to_string()),
    ]
}

/// One line of a near-valid ARPA file, in any order.
fn arpa_line() -> impl Strategy<Value = String> {
    let count = prop_oneof![
        4 => (0u64..6).prop_map(|c| c.to_string()),
        1 => select(vec![
            "1000000000", "18446744073709551615", "18446744073709551616", "-1", "x", "", " 3 ",
        ])
        .prop_map(String::from),
    ];
    let section = prop_oneof![
        4 => (0u32..=18).prop_map(|n| format!("\\{n}-grams:")),
        1 => select(vec!["\\x-grams:", "\\-grams:", "\\-1-grams:", "\\1-grams"]).prop_map(String::from),
    ];
    let ngram = (
        arpa_number(),
        vec(select(ARPA_WORDS), 0..5),
        proptest::option::of(arpa_number()),
        select(vec!["\t", " ", "  \t"]),
    )
        .prop_map(|(p, words, backoff, sep)| {
            let mut line = format!("{p}{sep}{}", words.join(" "));
            if let Some(b) = backoff {
                line.push_str(sep);
                line.push_str(&b);
            }
            line
        });
    prop_oneof![
        2 => Just("\\data\\".to_string()),
        3 => ((-1i32..=18), count).prop_map(|(n, c)| format!("ngram {n}={c}")),
        3 => section,
        1 => Just("\\end\\".to_string()),
        1 => Just(String::new()),
        8 => ngram,
        1 => "[ -~]{0,40}",
        1 => (0usize..3).prop_map(|d| "9".repeat(MAX_LINE_BYTES - 1 + d)),
    ]
}

/// A whole near-valid ARPA text: random lines, `\n` or `\r\n`.
fn arpa_text() -> impl Strategy<Value = String> {
    (vec(arpa_line(), 0..40), any::<bool>(), any::<bool>()).prop_map(|(lines, crlf, last)| {
        let mut text = lines.join(if crlf { "\r\n" } else { "\n" });
        if last {
            text.push('\n');
        }
        text
    })
}

/// A change to a valid ARPA file's lines.
#[derive(Debug, Clone)]
enum Mutation {
    None,
    Drop(Index),
    Duplicate(Index),
    Swap(Index, Index),
    Insert(Index, String),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        6 => Just(Mutation::None),
        1 => any::<Index>().prop_map(Mutation::Drop),
        1 => any::<Index>().prop_map(Mutation::Duplicate),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        1 => (any::<Index>(), arpa_line()).prop_map(|(i, l)| Mutation::Insert(i, l)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
}

/// A valid ARPA model (possibly mutated), with what it lists.
#[derive(Debug, Clone)]
struct ArpaCase {
    text: String,
    /// The vocabulary, markers included.
    words: Vec<String>,
    order: usize,
    /// Listed n-grams (words, log10 prob) when the text is valid, unchanged and its numbers
    /// ordinary: the reader must take it and score them exactly.
    listed: Option<Vec<(Vec<String>, f32)>>,
}

/// An ordinary log10 value, or (rarely) a hostile one.
fn model_number() -> impl Strategy<Value = (String, bool)> {
    prop_oneof![
        12 => (-6.0f32..0.5).prop_map(|v| (format!("{v:.4}"), true)),
        1 => Just(("-99".to_string(), true)),
        1 => arpa_number().prop_map(|s| (s, false)),
    ]
}

/// One order's n-grams: words -> (log10 probability, back-off) as written.
type NgramTable = BTreeMap<Vec<String>, (String, Option<String>)>;

fn arpa_model() -> impl Strategy<Value = ArpaCase> {
    (
        proptest::collection::btree_set("[a-cé']{1,3}", 0..6),
        any::<bool>(),
        1usize..=4,
        vec((model_number(), proptest::option::of(model_number())), 9),
        vec(
            (
                any::<Index>(),
                vec(any::<Index>(), 4),
                model_number(),
                proptest::option::of(model_number()),
            ),
            0..12,
        ),
        mutation(),
        any::<bool>(),
    )
        .prop_map(
            |(vocab, unk, order, unigram_numbers, entries, mutation, empty_sections)| {
                let mut words: Vec<String> = vec!["<s>".into(), "</s>".into()];
                if unk {
                    words.push("<unk>".into());
                }
                words.extend(vocab);
                let mut clean = matches!(mutation, Mutation::None);
                // grams[n - 1]: the n-grams.
                let mut grams: Vec<NgramTable> = vec![BTreeMap::new(); order];
                for (word, ((p, p_ok), backoff)) in words.iter().zip(&unigram_numbers) {
                    clean &= p_ok;
                    let backoff = backoff.as_ref().map(|(b, b_ok)| {
                        clean &= b_ok;
                        b.clone()
                    });
                    grams[0].insert(vec![word.clone()], (p.clone(), backoff));
                }
                if order > 1 {
                    for (n, picks, (p, p_ok), backoff) in entries {
                        let n = 2 + n.index(order - 1);
                        let key: Vec<String> = picks[..n]
                            .iter()
                            .map(|i| words[i.index(words.len())].clone())
                            .collect();
                        clean &= p_ok;
                        let backoff = backoff.map(|(b, b_ok)| {
                            clean &= b_ok;
                            b
                        });
                        grams[n - 1].insert(key, (p, backoff));
                    }
                }
                let mut lines = vec!["\\data\\".to_string()];
                for (n, table) in grams.iter().enumerate() {
                    lines.push(format!("ngram {}={}", n + 1, table.len()));
                }
                let mut listed = Vec::new();
                for (n, table) in grams.iter().enumerate() {
                    if table.is_empty() && !empty_sections {
                        continue;
                    }
                    lines.push(String::new());
                    lines.push(format!("\\{}-grams:", n + 1));
                    for (key, (p, backoff)) in table {
                        let mut line = format!("{p}\t{}", key.join(" "));
                        if let Some(b) = backoff {
                            line.push('\t');
                            line.push_str(b);
                        }
                        lines.push(line);
                        listed.push((key.clone(), p.parse::<f32>().unwrap_or(f32::NAN)));
                    }
                }
                lines.push(String::new());
                lines.push("\\end\\".to_string());
                match mutation {
                    Mutation::None => {}
                    Mutation::Drop(i) => {
                        lines.remove(i.index(lines.len()));
                    }
                    Mutation::Duplicate(i) => {
                        let line = lines[i.index(lines.len())].clone();
                        lines.insert(i.index(lines.len()), line);
                    }
                    Mutation::Swap(a, b) => {
                        let (a, b) = (a.index(lines.len()), b.index(lines.len()));
                        lines.swap(a, b);
                    }
                    Mutation::Insert(i, line) => lines.insert(i.index(lines.len() + 1), line),
                    Mutation::Truncate(i) => {
                        let keep = i.index(lines.len());
                        lines.truncate(keep);
                    }
                }
                let mut text = lines.join("\n");
                text.push('\n');
                ArpaCase {
                    text,
                    words,
                    order,
                    listed: clean.then_some(listed),
                }
            },
        )
}

/// Word-id queries: contexts and words, mostly in the vocabulary, some past its end.
fn lm_queries() -> impl Strategy<Value = Vec<(Vec<u32>, Option<u32>)>> {
    vec(
        (
            vec(0u32..24, 0..6),
            proptest::option::weighted(0.9, 0u32..24),
        ),
        0..24,
    )
}

/// What must hold for any model the reader accepted: scores are finite or -inf (never NaN
/// or +inf, which would poison the beam), and the spelling trie spells the vocabulary.
fn check_model(
    lm: &NgramModel,
    words: &[String],
    queries: &[(Vec<u32>, Option<u32>)],
) -> Result<(), TestCaseError> {
    prop_assert!((1..=quartznet_engine::lm::MAX_ORDER).contains(&lm.order()));
    prop_assert!(lm.word_id("<s>") == Some(lm.sentence_start()));
    prop_assert!(lm.word_id("</s>") == Some(lm.sentence_end()));
    let size = lm.vocabulary_size() as u32;
    for (context, word) in queries {
        // Ids a little past the vocabulary too: the decoder never makes them, but they must
        // not panic either.
        let context: Vec<u32> = context.iter().map(|&c| c % (size + 2)).collect();
        let word = word.map(|w| w % (size + 2));
        let lp = lm.log_prob(&context, word);
        prop_assert!(
            lp.is_finite() || lp == f32::NEG_INFINITY,
            "log_prob({context:?}, {word:?}) = {lp}"
        );
    }
    for word in words {
        let Some(id) = lm.word_id(word) else {
            continue;
        };
        let state = lm.trie_step(lm.trie_root(), word);
        if word.starts_with('<') {
            prop_assert!(state.is_none_or(|s| lm.trie_word(s) != Some(id)));
        } else {
            let state =
                state.ok_or_else(|| TestCaseError::fail(format!("{word:?} not spelled")))?;
            prop_assert_eq!(lm.trie_word(state), Some(id));
        }
    }
    for probe in ["a", "ab", "abc", "é", "'", "", "<s>", "zz"] {
        if let Some(state) = lm.trie_step(lm.trie_root(), probe) {
            prop_assert!(
                lm.trie_word(state)
                    .is_none_or(|id| lm.word_id(probe) == Some(id))
            );
        }
    }
    prop_assert!(lm.trie_word(u32::MAX).is_none());
    Ok(())
}

/// `text` as a file, plain or gzipped, through `NgramModel::load`: the same verdict as
/// parsing it, and any error names the file.
fn check_load(text: &[u8], gzip: bool, parsed: Option<&NgramModel>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(if gzip { "lm.arpa.gz" } else { "lm.arpa" });
    let mut file = std::fs::File::create(&path).unwrap();
    if gzip {
        let mut gz = flate2::write::GzEncoder::new(&mut file, flate2::Compression::fast());
        gz.write_all(text).unwrap();
        gz.finish().unwrap();
    } else {
        file.write_all(text).unwrap();
    }
    drop(file);
    match (NgramModel::load(&path), parsed) {
        (Ok(loaded), Some(parsed)) => {
            prop_assert_eq!(loaded.order(), parsed.order());
            prop_assert_eq!(loaded.vocabulary_size(), parsed.vocabulary_size());
        }
        (Ok(_), None) => prop_assert!(false, "load accepted what parse refused"),
        (Err(e), parsed) => {
            prop_assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
            names(&e, &path.display().to_string())?;
            // A tiny file that inflates past the ratio limit is refused on purpose.
            prop_assert!(
                parsed.is_none() || (gzip && e.to_string().contains("decompresses to more than")),
                "load refused what parse accepted: {e}"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(1024))]

    /// Arbitrary bytes, bare or behind an ARPA header or a gzip magic.
    #[test]
    fn arpa_arbitrary_bytes(
        prefix in select(vec![&b""[..], b"\\data\\\n", b"\\data\\\nngram 1=1\n\\1-grams:\n", b"\x1f\x8b"]),
        bytes in vec(any::<u8>(), 0..600),
        via_file in any::<bool>(),
        gzip in any::<bool>(),
    ) {
        let text = [prefix, &bytes[..]].concat();
        let parsed = NgramModel::parse(text.as_slice());
        if let Err(e) = &parsed {
            prop_assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
            names(e, "ARPA text")?;
        }
        if let Ok(lm) = &parsed {
            check_model(lm, &[], &[(vec![0, 1, 2], Some(3)), (vec![], None)])?;
        }
        if via_file {
            // Parsing never sees the gzip magic as such: only `load` recognises it.
            let gzipped_input = text.starts_with(b"\x1f\x8b");
            if !gzipped_input {
                check_load(&text, gzip, parsed.as_ref().ok())?;
            } else {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("junk.gz");
                std::fs::write(&path, &text).unwrap();
                if let Err(e) = NgramModel::load(&path) {
                    names(&e, &path.display().to_string())?;
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(cases(512))]

    /// Near-valid ARPA text: headers, counts (huge, zero, negative), sections in any order,
    /// odd numbers, long lines, missing `\end\`; then the accepted models are queried.
    #[test]
    fn arpa_structured_text(text in arpa_text(), queries in lm_queries(), via_file in 0u8..4) {
        match NgramModel::parse(text.as_bytes()) {
            Err(e) => {
                prop_assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
                names(&e, "ARPA text")?;
            }
            Ok(lm) => {
                let words: Vec<String> = ARPA_WORDS.iter().map(|w| w.to_string()).collect();
                check_model(&lm, &words, &queries)?;
            }
        }
        if via_file == 0 {
            let parsed = NgramModel::parse(text.as_bytes()).ok();
            check_load(text.as_bytes(), true, parsed.as_ref())?;
        }
    }
}

proptest! {
    #![proptest_config(cases(1024))]

    /// Valid models (some mutated): the reader takes every valid one and scores what it
    /// lists exactly; mutated ones load or fail with a message; any loaded one is usable.
    #[test]
    fn arpa_models(case in arpa_model(), queries in lm_queries(), gzip_file in 0u8..8) {
        let parsed = NgramModel::parse(case.text.as_bytes());
        match &parsed {
            Err(e) => {
                prop_assert!(case.listed.is_none(), "valid file refused: {e}\n{}", case.text);
                prop_assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
                names(e, "ARPA text")?;
            }
            Ok(lm) => {
                check_model(lm, &case.words, &queries)?;
                if let Some(listed) = &case.listed {
                    prop_assert_eq!(lm.order(), case.order);
                    prop_assert_eq!(lm.vocabulary_size(), case.words.len());
                    for (key, log10) in listed {
                        let ids: Vec<u32> = key.iter().map(|w| lm.word_id(w).unwrap()).collect();
                        let (word, context) = ids.split_last().unwrap();
                        let lp = lm.log_prob(context, Some(*word));
                        let expected = log10 * std::f32::consts::LN_10;
                        prop_assert!(
                            (lp - expected).abs() <= 1e-5 * expected.abs().max(1.0),
                            "{key:?}: {lp} != {expected}"
                        );
                    }
                }
            }
        }
        if gzip_file == 0 {
            check_load(case.text.as_bytes(), true, parsed.as_ref().ok())?;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Model descriptions and alphabets
// ---------------------------------------------------------------------------------------

/// Anything JSON holds: numbers of every size and sign, and values of the wrong type.
fn json_junk() -> BoxedStrategy<Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // NaN and infinities become null.
        any::<f64>().prop_map(Value::from),
        select(vec![
            json!(null),
            json!(true),
            json!("x"),
            json!([]),
            json!({}),
            json!(-1),
            json!(0),
            json!(1e300),
            json!(-1e300),
            json!(5e-324),
            json!(4_294_967_295u64),
            json!(4_294_967_296u64),
            json!(1e9),
        ]),
    ]
    .boxed()
}

/// One field of a description: a value the reader should take (`None`: left out, for a
/// field with a default), a value it should not (`None`: a required field left out), and
/// a roll that picks between them (see [`description_json`]).
#[derive(Debug, Clone)]
struct Field {
    valid: Option<Value>,
    invalid: Option<Value>,
    roll: u8,
}

impl Field {
    fn get(&self, hostility: u8) -> Option<Value> {
        if self.roll < hostility {
            self.invalid.clone()
        } else {
            self.valid.clone()
        }
    }
}

fn field(valid: Vec<Option<Value>>, mut invalid: Vec<Option<Value>>) -> BoxedStrategy<Field> {
    // Every field can also be junk or missing.
    invalid.push(None);
    let invalid = prop_oneof![
        2 => select(invalid),
        2 => json_junk().prop_map(Some),
    ];
    (select(valid), invalid, any::<u8>())
        .prop_map(|(valid, invalid, roll)| Field {
            valid,
            invalid,
            roll,
        })
        .boxed()
}

/// `Some(json!(v))` for each value.
macro_rules! some {
    ($($v:expr),* $(,)?) => { vec![$(Some(json!($v))),*] };
}

const LABELS: &[&str] = &[
    " ", "a", "b", "c", "ab", "'", "é", "", "  ", "\n", "#", "<s>",
];

fn labels_field() -> BoxedStrategy<Field> {
    let valid = prop_oneof![
        3 => vec(select(LABELS), 1..40).prop_map(|l| Some(json!(l))),
        1 => Just(Some(json!(english_labels()))),
    ];
    let invalid = prop_oneof![
        2 => Just(Some(json!(Vec::<String>::new()))),
        1 => Just(Some(json!(vec!["a"; 65_537]))),
        2 => json_junk().prop_map(Some),
        1 => Just(None),
    ];
    (valid, invalid, any::<u8>())
        .prop_map(|(valid, invalid, roll)| Field {
            valid,
            invalid,
            roll,
        })
        .boxed()
}

fn floats_field() -> BoxedStrategy<Field> {
    (
        prop_oneof![
            3 => vec(-20.0f32..20.0, 64).prop_map(|v| Some(json!(v))),
            1 => vec(0.5f32..5.0, 80).prop_map(|v| Some(json!(v))),
            1 => Just(None),
        ],
        prop_oneof![
            vec(any::<f32>(), 0..70).prop_map(|v| Some(json!(v))),
            json_junk().prop_map(Some),
        ],
        any::<u8>(),
    )
        .prop_map(|(valid, invalid, roll)| Field {
            valid,
            invalid,
            roll,
        })
        .boxed()
}

/// The frontend object: each field drawn with [`field`]; `hostility` is applied later.
fn frontend_fields() -> BoxedStrategy<Vec<(&'static str, Field)>> {
    let none = || vec![None];
    let fields: Vec<(&'static str, BoxedStrategy<Field>)> = vec![
        (
            "window_size",
            field(
                some![0.02, 0.025, 0.032, 0.0625],
                some![0.0, -0.02, 1e300, 5e-324, 1.1],
            ),
        ),
        (
            "window_stride",
            field(
                some![0.01, 0.02, 0.0125],
                some![0.0, -0.01, 1e300, 1e-300, 0.5],
            ),
        ),
        (
            "n_fft",
            field(
                some![512, 1024, 16384],
                some![0, 1, 3, 16386, 1_000_000_000u64, -512],
            ),
        ),
        (
            "features",
            field(some![64, 80, 1, 1024], some![0, 1025, -64, 64.5]),
        ),
        (
            "window",
            field(
                [some!["hann"], none()].concat(),
                some!["hamming", "HANN", ""],
            ),
        ),
        (
            "preemph",
            field(
                [some![0.97, 0.0, -0.5], none()].concat(),
                some![1e39, 1e300],
            ),
        ),
        (
            "lowfreq",
            field(
                [some![0.0, 20.0, 300.0], none()].concat(),
                some![-1.0, 1e39, 7999.0, 8000.0],
            ),
        ),
        (
            "highfreq",
            field(
                [some![8000.0, 4000.0, 7600.0], none()].concat(),
                some![0.0, 0.001, 8000.5, 1e39, -1.0],
            ),
        ),
        (
            "mag_power",
            field([some![2.0], none()].concat(), some![1.0, 0.0]),
        ),
        ("log", field([some![true], none()].concat(), some![false])),
        (
            "log_zero_guard_value",
            field(
                [some![5.960_464_5e-8, 1e-5, 1.0], none()].concat(),
                some![0.0, -1e-5, 1e39, 1e-50],
            ),
        ),
        (
            "normalize",
            field(
                some!["per_feature", "none", "fixed"],
                some!["x", "", "PER_FEATURE"],
            ),
        ),
        ("fixed_mean", floats_field()),
        ("fixed_std", floats_field()),
        (
            "pad_mode",
            field(some!["reflect", "zeros"], some!["edge", "constant", ""]),
        ),
        ("unknown_field", field(none(), some![1, "x"])),
    ];
    fields
        .into_iter()
        .map(|(name, s)| s.prop_map(move |f| (name, f)))
        .collect::<Vec<_>>()
        .boxed()
}

fn object(fields: Vec<(&str, Option<Value>)>) -> Value {
    let map: Map<String, Value> = fields
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_string(), v?)))
        .collect();
    Value::Object(map)
}

/// A sidecar description. `hostility` (out of 256) is how often a field gets its invalid
/// value: 0 for a description that is well formed (though its values together may still be
/// refused, e.g. a band above the Nyquist frequency), more for more damage.
fn description_json() -> BoxedStrategy<Value> {
    let none = || vec![None];
    let top: Vec<(&'static str, BoxedStrategy<Field>)> = vec![
        (
            "format",
            field(some![FORMAT], some!["quartznetstt-model/2", ""]),
        ),
        (
            "description",
            field([some!["a model", ""], none()].concat(), vec![]),
        ),
        ("labels", labels_field()),
        (
            "sample_rate",
            field(
                some![16000, 8000, 192000, 44100],
                some![0, 192001, 4_000_000_000u64, -16000, 16000.5],
            ),
        ),
        (
            "subsampling_factor",
            field(some![2, 1, 4, 8, 64], some![0, 65, 4_294_967_295u64, -2]),
        ),
        (
            "nemo_version",
            field([some!["3.0.0"], none()].concat(), vec![]),
        ),
        (
            "language_model",
            field(
                [some!["lm.arpa", "/abs/lm.arpa.gz", ""], none()].concat(),
                vec![],
            ),
        ),
        (
            "language",
            field([some!["en", "de-AT", ""], none()].concat(), vec![]),
        ),
        ("extra", field(none(), some![1, "x"])),
    ];
    let top = top
        .into_iter()
        .map(|(name, s)| s.prop_map(move |f| (name, f)))
        .collect::<Vec<_>>();
    let frontend = (frontend_fields(), field(vec![None], vec![]));
    (top, frontend, select(vec![0u8, 0, 0, 4, 12, 40]))
        .prop_map(|(top, (frontend, frontend_junk), hostility)| {
            let frontend = object(
                frontend
                    .iter()
                    .map(|(name, f)| (*name, f.get(hostility)))
                    .collect(),
            );
            let mut fields: Vec<(&str, Option<Value>)> = top
                .iter()
                .map(|(name, f)| (*name, f.get(hostility)))
                .collect();
            // The frontend object itself: present, or (hostile) junk or missing.
            let frontend = if frontend_junk.roll < hostility {
                frontend_junk.invalid
            } else {
                Some(frontend)
            };
            fields.push(("frontend", frontend));
            object(fields)
        })
        .boxed()
}

/// The JSON text, sometimes cut short or with a character put in.
fn description_text() -> impl Strategy<Value = String> {
    (
        description_json(),
        proptest::option::weighted(0.15, (any::<Index>(), proptest::option::of(any::<char>()))),
    )
        .prop_map(|(value, edit)| {
            let mut text = value.to_string();
            if let Some((at, c)) = edit {
                let mut at = at.index(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                match c {
                    Some(c) => text.insert(at, c),
                    None => text.truncate(at),
                }
            }
            text
        })
}

const SOURCES: &[&str] = &[
    "model.json",
    "/models/ünï code/m.json",
    "m.onnx (ONNX metadata 'quartznetstt')",
];

/// What must hold for a description `from_json` accepted: it can be used as it is.
fn check_description(d: &ModelDescription, source: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(&d.source, source);
    prop_assert!(!d.labels.is_empty() && d.labels.len() <= 65_536);
    prop_assert!((1..=64).contains(&d.subsampling_factor));
    prop_assert_eq!(d.sample_rate, d.frontend.sample_rate);
    prop_assert!(d.frontend.validate().is_ok(), "{:?}", d.frontend);
    prop_assert!(d.samples_per_output_frame() > 0);
    // Building a frontend costs n_fft x n_mels: build the small ones here, the biggest are
    // the `largest_valid_frontends` test.
    if d.frontend.n_fft * d.frontend.n_mels <= 1 << 17 {
        let mut frontend = FeatureExtractor::new(d.frontend.clone()).unwrap();
        let mut features = Features::default();
        for len in [0, 1, 100, 2 * d.frontend.hop_length] {
            frontend.compute(&vec![0.25; len], &mut features);
            prop_assert_eq!(features.frames, frontend.frame_count(len));
        }
    }
    match CtcDecoder::new(d.labels.clone(), DecoderConfig::default().into()) {
        Ok(decoder) => prop_assert!(!decoder.is_beam_search()),
        Err(e) => {
            prop_assert!(matches!(e, Error::Settings(_)), "{e:?}");
            names(&e, "label")?;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(256))]

    /// Sidecar JSON with every field random: sizes huge, negative, fractional, 1e300, of the
    /// wrong type or missing; labels empty, duplicated, multi-character, 65 537 of them.
    #[test]
    fn description_structured(text in description_text(), source in select(SOURCES)) {
        match ModelDescription::from_json(&text, source) {
            Ok(d) => check_description(&d, source)?,
            Err(e) => {
                prop_assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
                let message = e.to_string();
                let prefix = format!("{source}: ");
                prop_assert!(message.starts_with(&prefix), "{message}");
                prop_assert!(message.len() > source.len() + 2, "{message}");
            }
        }
    }
}

proptest! {
    #![proptest_config(cases(2048))]

    /// Arbitrary text as a description and as a DeepSpeech alphabet.
    #[test]
    fn description_and_alphabet_arbitrary_text(
        text in prop_oneof![any::<String>(), "[\\[\\]{}\":,0-9a-z\\\\#\n\r -]{0,200}"],
        source in select(SOURCES),
    ) {
        match ModelDescription::from_json(&text, source) {
            Ok(d) => check_description(&d, source)?,
            Err(e) => {
                prop_assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
                let prefix = format!("{source}: ");
                prop_assert!(e.to_string().starts_with(&prefix), "{e}");
            }
        }
        match parse_alphabet(&text) {
            Ok(labels) => {
                prop_assert!(!labels.is_empty());
                for label in &labels {
                    prop_assert!(!label.is_empty() && !label.contains('\n'), "{label:?}");
                    prop_assert!(!label.starts_with('#') || label == "#", "{label:?}");
                }
            }
            Err(reason) => prop_assert!(!reason.is_empty()),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The frontend
// ---------------------------------------------------------------------------------------

/// A sample: mostly audio at the int16 / 32768 scale, sometimes anything.
fn sample() -> impl Strategy<Value = f32> {
    prop_oneof![
        8 => -1.0f32..1.0,
        // Raw int16 values: what a caller that forgot to scale pushes.
        2 => -32768.0f32..32768.0,
        1 => select(vec![
            f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MAX, -f32::MAX, 1e30,
            f32::MIN_POSITIVE, 1e-45, 0.0, -0.0,
        ]),
    ]
}

fn hostile_f32(ordinary: Vec<f32>) -> impl Strategy<Value = f32> {
    prop_oneof![
        12 => select(ordinary),
        1 => select(vec![
            0.0, -0.0, -1.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MAX, 1e-45,
            f32::MIN_POSITIVE,
        ]),
        1 => any::<f32>(),
    ]
}

/// The filterbank's band.
#[derive(Debug, Clone)]
enum Band {
    /// `f_min` and `f_max` as fractions of the Nyquist frequency.
    Fraction(f32, f32),
    /// A band this many Hz wide from a fraction of the Nyquist frequency.
    Narrow(f32, f32),
    /// Any values in Hz.
    Hz(f32, f32),
}

/// Frontend settings, many of them out of range; sizes kept small enough to be fast (the
/// largest valid ones are the `largest_valid_frontends` test).
fn frontend_config() -> impl Strategy<Value = FrontendConfig> {
    let sample_rate = prop_oneof![
        8 => select(vec![8000u32, 16000, 22050, 44100, 48000]),
        4 => 1u32..=200_000,
        1 => select(vec![0u32, 1, 2, 3, 192_000, 192_001, u32::MAX]),
    ];
    let n_fft = prop_oneof![
        12 => (1usize..=256).prop_map(|h| 2 * h),
        1 => 0usize..=9,
        1 => select(vec![1024usize, 16_385, 16_386, usize::MAX]),
    ];
    let hop =
        prop_oneof![12 => 1usize..=400, 1 => select(vec![0usize, 16_384, 16_385, usize::MAX])];
    let n_mels = prop_oneof![12 => 1usize..=96, 1 => select(vec![0usize, 1025, usize::MAX])];
    let band = prop_oneof![
        4 => (0.0f32..0.5, 0.5f32..=1.0).prop_map(|(lo, hi)| Band::Fraction(lo, hi)),
        1 => (0.0f32..1.0).prop_map(|lo| Band::Fraction(lo, 1.0)),
        1 => (0.0f32..1.0, select(vec![1e-30f32, 1e-6, 1e-3, 0.1, 1.0, 10.0]))
            .prop_map(|(lo, width)| Band::Narrow(lo, width)),
        1 => (hostile_f32(vec![0.0, 20.0]), hostile_f32(vec![8000.0, 4000.0]))
            .prop_map(|(lo, hi)| Band::Hz(lo, hi)),
    ];
    let normalization = prop_oneof![
        2 => Just(None),
        1 => Just(Some(Normalization::None)),
        // Lengths are set to (about) n_mels below.
        1 => (vec(hostile_f32(vec![-10.0, 0.0, 3.0]), 0..100),
              vec(hostile_f32(vec![0.5, 1.0, 3.0]), 0..100))
            .prop_map(|(mean, std)| Some(Normalization::Fixed { mean, std })),
    ];
    (
        (
            sample_rate,
            n_fft,
            0.0f64..=1.0,
            prop_oneof![8 => Just(0usize), 1 => 1usize..3],
            hop,
            n_mels,
        ),
        (
            hostile_f32(vec![0.97, 0.0, 0.5, -0.97]),
            band,
            hostile_f32(vec![5.960_464_5e-8, 1e-5, 1.0]),
            prop_oneof![Just(PaddingMode::Reflect), Just(PaddingMode::Zeros)],
            normalization,
            prop_oneof![8 => Just(0i32), 1 => Just(-1), 1 => Just(1)],
        ),
    )
        .prop_map(
            |(
                (sample_rate, n_fft, win, win_extra, hop, n_mels),
                (preemph, band, log_guard, padding, norm, delta),
            )| {
                let nyquist = sample_rate as f32 / 2.0;
                let (f_min, f_max) = match band {
                    Band::Fraction(lo, hi) => (lo * nyquist, hi * nyquist),
                    Band::Narrow(lo, width) => (lo * nyquist, lo * nyquist + width),
                    Band::Hz(lo, hi) => (lo, hi),
                };
                let normalization = match norm {
                    None => Normalization::PerFeature,
                    Some(Normalization::Fixed { mean, std }) => {
                        // Usually exactly one value per band, sometimes one off.
                        let len = n_mels.min(200).saturating_add_signed(delta as isize);
                        let fit = |v: Vec<f32>, fill: f32| {
                            let mut v: Vec<f32> = v.into_iter().cycle().take(len).collect();
                            v.resize(len, fill);
                            v
                        };
                        Normalization::Fixed {
                            mean: fit(mean, 0.0),
                            std: fit(std, 1.0),
                        }
                    }
                    Some(other) => other,
                };
                FrontendConfig {
                    sample_rate,
                    win_length: ((n_fft.min(1 << 20) as f64 * win).round() as usize) + win_extra,
                    hop_length: hop,
                    n_fft,
                    n_mels,
                    preemph,
                    f_min,
                    f_max,
                    log_guard,
                    padding,
                    normalization,
                }
            },
        )
}

/// Audio of a length that matters to `config` (empty, one sample, around the reflection
/// limit `n_fft / 2`, whole hops) or any length, cycling through `base`.
fn audio_for(config: &FrontendConfig, base: &[f32], kind: u8, extra: usize) -> Vec<f32> {
    let pad = config.n_fft.min(1 << 16) / 2;
    let hop = config.hop_length.clamp(1, 1 << 16);
    let len = match kind {
        0 => extra % 4,
        1 => (pad + extra % 3).saturating_sub(1),
        2 => hop * (extra % 5) + extra % 2,
        _ => extra,
    };
    if base.is_empty() {
        return vec![0.0; len];
    }
    base.iter().copied().cycle().take(len).collect()
}

fn bits(features: &Features) -> (usize, usize, Vec<u32>) {
    (
        features.n_mels,
        features.frames,
        features.data.iter().map(|v| v.to_bits()).collect(),
    )
}

/// Whether ordinary audio must give finite features under `config`: finite samples at the
/// int16 scale, and fixed statistics that do not overflow (validation takes any finite
/// mean and positive std, so a mean of 3e38 or a std of 1e-45 may give infinities).
fn expect_finite(config: &FrontendConfig, audio: &[f32]) -> bool {
    let ordinary_norm = match &config.normalization {
        Normalization::Fixed { mean, std } => {
            mean.iter().all(|m| m.abs() <= 1e6) && std.iter().all(|&s| s >= 1e-3)
        }
        _ => true,
    };
    ordinary_norm && config.preemph.abs() <= 1.0 && audio.iter().all(|v| v.abs() <= 32768.0)
}

fn check_frontend(
    config: FrontendConfig,
    audio: &[f32],
    prefix: usize,
) -> Result<(), TestCaseError> {
    let validated = config.validate();
    let built = FeatureExtractor::new(config.clone());
    let mut frontend = match (validated, built) {
        (Err(e), Err(built)) => {
            prop_assert!(matches!(e, Error::Settings(_)), "{e:?}");
            prop_assert!(e.to_string().starts_with("frontend: "), "{e}");
            prop_assert_eq!(e.to_string(), built.to_string());
            return Ok(());
        }
        (Ok(()), Ok(frontend)) => frontend,
        (v, b) => {
            let message = format!("validate {v:?} but new {:?}", b.err());
            return Err(TestCaseError::fail(message));
        }
    };
    let mut out = Features::default();
    frontend.compute(audio, &mut out);
    prop_assert_eq!(out.n_mels, config.n_mels);
    prop_assert_eq!(out.frames, frontend.frame_count(audio.len()));
    prop_assert_eq!(out.data.len(), out.n_mels * out.frames);
    if expect_finite(&config, audio) {
        let bad = out.data.iter().position(|v| !v.is_finite());
        prop_assert!(
            bad.is_none(),
            "non-finite feature {:?} at {bad:?}",
            bad.map(|i| out.data[i])
        );
    }
    // Buffers reused from a longer input change nothing: a shorter one on the same
    // extractor equals a fresh extractor's result, bit for bit.
    let short = &audio[..prefix.min(audio.len())];
    frontend.compute(short, &mut out);
    let mut fresh = Features::default();
    FeatureExtractor::new(config)
        .unwrap()
        .compute(short, &mut fresh);
    prop_assert!(
        bits(&out) == bits(&fresh),
        "reused buffers changed the features"
    );
    Ok(())
}

proptest! {
    #![proptest_config(cases(1024))]

    /// Any settings: those that fail validation are errors naming the frontend, those that
    /// pass compute features of any audio (NaN, infinities, huge values, any length).
    #[test]
    fn frontend_any_settings_any_audio(
        config in frontend_config(),
        base in vec(sample(), 0..48),
        kind in 0u8..4,
        extra in 0usize..2500,
        prefix in 0usize..2500,
    ) {
        let audio = audio_for(&config, &base, kind, extra);
        check_frontend(config, &audio, prefix)?;
    }
}

// ---------------------------------------------------------------------------------------
// CTC decoders
// ---------------------------------------------------------------------------------------

/// A language model for the beam search, spelling words from the decoder's labels.
const DECODER_ARPA: &str = "\\data\\
ngram 1=12
ngram 2=3

\\1-grams:
-1.0\t<unk>
-99\t<s>\t-0.5
-0.7\t</s>
-0.8\ta\t-0.2
-1.0\tb\t-0.2
-1.1\tc
-1.2\tab\t-0.1
-1.3\tba
-1.4\tabc
-1.5\tcab
-1.6\té
-1.7\ta'b

\\2-grams:
-0.3\t<s> a
-0.4\ta b
-0.5\tab c

\\end\\
";

/// The same words with odd but accepted scores: impossible words (-inf), positive and
/// infinite back-offs, a declared empty 3-gram order.
const ODD_ARPA: &str = "\\data\\
ngram 1=8
ngram 2=2
ngram 3=0

\\1-grams:
-inf\t<unk>
-99\t<s>\t-inf
-inf\t</s>
-0.8\ta\t2.5
-inf\tb\t-inf
-30\tc
-1.2\tab\t-0.1
-0\tba

\\2-grams:
-inf\t<s> a\t1.0
0\ta b\t-1e30

\\end\\
";

const UNIGRAM_ARPA: &str = "\\data\\
ngram 1=5

\\1-grams:
-1.0\t<s>
-1.0\t</s>
-0.5\ta
-0.6\tb
-0.7\tc

\\end\\
";

static LMS: LazyLock<Vec<Arc<NgramModel>>> = LazyLock::new(|| {
    [DECODER_ARPA, ODD_ARPA, UNIGRAM_ARPA]
        .iter()
        .map(|text| Arc::new(NgramModel::parse(text.as_bytes()).unwrap()))
        .collect()
});

/// A log-prob: mostly ordinary (argmax changes often), sometimes NaN, infinities, huge.
fn logprob() -> impl Strategy<Value = f32> {
    prop_oneof![
        12 => -12.0f32..0.0,
        3 => Just(0.0f32),
        1 => select(vec![
            f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MAX, -f32::MAX, 1e30, -1e-45,
        ]),
    ]
}

#[derive(Debug, Clone)]
struct DecoderCase {
    labels: Vec<String>,
    ctc: DecoderConfig,
    beam: Option<BeamCase>,
    logprobs: Vec<f32>,
    frames: usize,
    /// Frames per `push` call (cycled; 0 is an empty push).
    splits: Vec<usize>,
    /// Stream frame of the first pushed frame (`reset`).
    base: u64,
}

/// Beam-search settings, the language model by its index in [`LMS`] (so a failing case
/// prints short).
#[derive(Debug, Clone)]
struct BeamCase {
    lm: usize,
    beam_width: usize,
    lm_weight: f32,
    word_bonus: f32,
    unk_penalty: Option<f32>,
    commit_delay_frames: u32,
}

impl DecoderCase {
    fn options(&self) -> DecodingOptions {
        DecodingOptions {
            ctc: self.ctc,
            beam: self.beam.as_ref().map(|b| BeamConfig {
                lm: LMS[b.lm].clone(),
                beam_width: b.beam_width,
                lm_weight: b.lm_weight,
                word_bonus: b.word_bonus,
                unk_penalty: b.unk_penalty,
                commit_delay_frames: b.commit_delay_frames,
                lexicon: None,
                smearing: Default::default(),
                hotwords: None,
            }),
        }
    }
}

fn decoder_case() -> impl Strategy<Value = DecoderCase> {
    let labels = prop_oneof![
        6 => (vec(select(&LABELS[1..7]), 1..6), any::<Index>()).prop_map(|(mut l, at)| {
            l.insert(at.index(l.len() + 1), " ");
            l
        }),
        1 => vec(select(LABELS), 0..5),
    ];
    let confidence = prop_oneof![
        4 => Just(ConfidenceConfig::default()),
        1 => Just(ConfidenceConfig::NEMO_DEFAULT),
        2 => (
            0usize..7,
            hostile_f32(vec![0.33, 1.0, 2.0, 0.5]),
            0usize..4
        )
            .prop_map(|(measure, alpha, aggregation)| ConfidenceConfig {
                measure: ConfidenceMeasure::all(alpha)[measure],
                aggregation: ConfidenceAggregation::ALL[aggregation],
            }),
    ];
    let ctc = (
        0u32..6,
        prop_oneof![3 => Just(0u32), 1 => 1u32..8],
        confidence,
    )
        .prop_map(
            |(word_gap_frames, max_word_frames, confidence)| DecoderConfig {
                word_gap_frames,
                max_word_frames,
                confidence,
            },
        );
    let beam = proptest::option::of((
        0usize..3,
        prop_oneof![4 => 1usize..6, 1 => Just(0usize)],
        hostile_f32(vec![0.0, 0.5, 2.0]),
        hostile_f32(vec![0.0, 1.0, -1.0]),
        proptest::option::of(hostile_f32(vec![0.0, 2.0, 10.0])),
        0u32..6,
    ))
    .prop_map(|beam| {
        beam.map(
            |(lm, beam_width, lm_weight, word_bonus, unk_penalty, commit_delay_frames)| BeamCase {
                lm,
                beam_width,
                lm_weight,
                word_bonus,
                unk_penalty,
                commit_delay_frames,
            },
        )
    });
    (
        labels,
        ctc,
        beam,
        vec(logprob(), 0..500),
        vec(0usize..12, 1..8),
        prop_oneof![3 => Just(0u64), 1 => 0u64..(1 << 40)],
    )
        .prop_map(|(labels, ctc, beam, mut logprobs, splits, base)| {
            let labels: Vec<String> = labels.into_iter().map(String::from).collect();
            let vocab = labels.len() + 1;
            let frames = logprobs.len() / vocab;
            logprobs.truncate(frames * vocab);
            DecoderCase {
                labels,
                ctc,
                beam,
                logprobs,
                frames,
                splits,
                base,
            }
        })
}

/// One word as the decoders promise it: text, frames in order within `[from, to]` (empty
/// only at the stream start: a word before it), a confidence in `[0, 1]`.
fn check_word(word: &Word, from: u64, to: u64) -> Result<(), TestCaseError> {
    prop_assert!(!word.text.is_empty(), "{word:?}");
    prop_assert!(
        from <= word.start_frame
            && (word.start_frame < word.end_frame || word.end_frame == 0)
            && word.end_frame <= to,
        "{word:?} outside [{from}, {to}]"
    );
    prop_assert!((0.0..=1.0).contains(&word.confidence), "{word:?}");
    Ok(())
}

/// Decodes the case from `base` in its splits, checking every intermediate promise; returns
/// all final words.
fn decode(
    decoder: &mut CtcDecoder,
    case: &DecoderCase,
    base: u64,
    splits: &[usize],
) -> Result<Vec<Word>, TestCaseError> {
    let vocab = case.labels.len() + 1;
    decoder.reset(base);
    let mut words: Vec<Word> = Vec::new();
    let mut settled_until = base;
    let mut done = 0;
    // Empty pushes are part of the case, but some push must make progress.
    let one = [1];
    let splits = if splits.iter().any(|&n| n > 0) {
        splits
    } else {
        &one[..]
    };
    let mut split = splits.iter().cycle();
    let mut accept = |new: Vec<Word>, settled: u64, now: u64| -> Result<(), TestCaseError> {
        for word in new {
            check_word(&word, base, now)?;
            // Words come out in order and never start in time said to be settled.
            prop_assert!(
                word.start_frame >= settled,
                "{word:?} starts before {settled}"
            );
            if let Some(last) = words.last() {
                prop_assert!(
                    word.start_frame >= last.end_frame,
                    "{word:?} overlaps {last:?}"
                );
            }
            words.push(word);
        }
        Ok(())
    };
    while done < case.frames {
        let n = (*split.next().unwrap()).min(case.frames - done);
        let now = base + (done + n) as u64;
        let new = decoder.push(&case.logprobs[done * vocab..(done + n) * vocab], n);
        done += n;
        accept(new, settled_until, now)?;
        for word in decoder.pending() {
            check_word(&word, base, now)?;
        }
        settled_until = decoder.unsettled_from().unwrap_or(now);
        prop_assert!(settled_until <= now);
    }
    let now = base + case.frames as u64;
    let last = decoder.finish();
    accept(last, settled_until, now)?;
    prop_assert!(decoder.pending().is_empty());
    Ok(words)
}

proptest! {
    #![proptest_config(cases(512))]

    /// Greedy and beam-search decoding of any log-probs (NaN, infinities, huge values) pushed
    /// in any splits: words well formed, in order, never before the settled time, the same
    /// whatever the splits and wherever the stream starts.
    #[test]
    fn decoders_any_logprobs(case in decoder_case()) {
        let mut decoder = match CtcDecoder::new(case.labels.clone(), case.options()) {
            Ok(decoder) => decoder,
            Err(e) => {
                prop_assert!(matches!(e, Error::Settings(_)), "{e:?}");
                names(&e, "")?;
                return Ok(());
            }
        };
        prop_assert_eq!(decoder.is_beam_search(), case.beam.is_some());
        let words = decode(&mut decoder, &case, case.base, &case.splits)?;
        // Reused after `finish` (and reset) on one call with all frames from frame 0: the
        // same words, shifted.
        let whole = decode(&mut decoder, &case, 0, &[case.frames.max(1)])?;
        let shifted: Vec<Word> = whole
            .into_iter()
            .map(|w| Word {
                start_frame: w.start_frame + case.base,
                end_frame: w.end_frame + case.base,
                ..w
            })
            .collect();
        prop_assert_eq!(words, shifted);
    }
}

// ---------------------------------------------------------------------------------------
// Streaming and offline recognition over a model that may misbehave
// ---------------------------------------------------------------------------------------

/// How the stand-in acoustic model answers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ModelBehaviour {
    /// `[ceil(T / subsampling)][vocab]` log-probs, as promised.
    Correct,
    /// One output frame fewer than promised.
    FewerFrames,
    /// The promised frame count, but one value short.
    ShortData,
    /// The promised frame count, and one value too many.
    ExtraData,
    /// An error.
    Fails,
}

struct FakeModel {
    vocab: usize,
    subsampling: usize,
    behaviour: ModelBehaviour,
    values: Vec<f32>,
    next: usize,
}

impl AcousticModel for FakeModel {
    fn vocab_size(&self) -> usize {
        self.vocab
    }

    fn infer(
        &mut self,
        features: &Features,
        out: &mut Vec<f32>,
    ) -> quartznet_engine::Result<usize> {
        let mut frames = features.frames.div_ceil(self.subsampling);
        let mut len = frames * self.vocab;
        match self.behaviour {
            ModelBehaviour::Correct => {}
            ModelBehaviour::FewerFrames => {
                frames = frames.saturating_sub(1);
                len = frames * self.vocab;
            }
            ModelBehaviour::ShortData => len = len.saturating_sub(1),
            ModelBehaviour::ExtraData => len += 1,
            ModelBehaviour::Fails => return Err(Error::Inference("the fake model fails".into())),
        }
        out.clear();
        for _ in 0..len {
            let v = self.values.get(self.next).copied().unwrap_or(-1.0);
            self.next = (self.next + 1) % self.values.len().max(1);
            out.push(v);
        }
        Ok(frames)
    }
}

#[derive(Debug, Clone)]
struct StreamCase {
    subsampling: u32,
    padding: PaddingMode,
    per_feature: bool,
    /// Left, chunk and right in output frames, and a sample added to the chunk (0: whole).
    window: (usize, usize, usize, usize),
    beam: bool,
    vocab_extra: usize,
    /// Buffers trimmed at the stream's edges (the file scheme) instead of NeMo's.
    trimmed: bool,
    behaviour: ModelBehaviour,
    values: Vec<f32>,
    audio: Vec<f32>,
    pieces: Vec<usize>,
}

fn stream_case() -> impl Strategy<Value = StreamCase> {
    (
        (
            select(vec![1u32, 2, 3, 4]),
            prop_oneof![Just(PaddingMode::Reflect), Just(PaddingMode::Zeros)],
            any::<bool>(),
            (
                0usize..4,
                prop_oneof![8 => 1usize..4, 1 => Just(0usize)],
                0usize..4,
                prop_oneof![8 => Just(0usize), 1 => 1usize..3],
            ),
            any::<bool>(),
            prop_oneof![12 => Just(0usize), 1 => Just(1usize)],
            any::<bool>(),
        ),
        prop_oneof![
            8 => Just(ModelBehaviour::Correct),
            1 => Just(ModelBehaviour::FewerFrames),
            1 => Just(ModelBehaviour::ShortData),
            1 => Just(ModelBehaviour::ExtraData),
            1 => Just(ModelBehaviour::Fails),
        ],
        vec(logprob(), 0..64),
        vec(sample(), 0..32),
        0usize..1500,
        vec(0usize..400, 1..6),
    )
        .prop_map(|(shape, behaviour, values, base, len, pieces)| {
            let (subsampling, padding, per_feature, window, beam, vocab_extra, trimmed) = shape;
            let audio = if base.is_empty() {
                vec![0.0; len]
            } else {
                base.iter().copied().cycle().take(len).collect()
            };
            StreamCase {
                subsampling,
                padding,
                per_feature,
                window,
                beam,
                vocab_extra,
                trimmed,
                behaviour,
                values,
                audio,
                pieces,
            }
        })
}

fn stream_description(case: &StreamCase) -> (ModelDescription, FrontendConfig) {
    // A small frontend (8 kHz, 64-point FFT, 8 bands) keeps each case fast.
    let frontend = FrontendConfig {
        sample_rate: 8000,
        win_length: 48,
        hop_length: 32,
        n_fft: 64,
        n_mels: 8,
        f_max: 4000.0,
        padding: case.padding,
        normalization: if case.per_feature {
            Normalization::PerFeature
        } else {
            Normalization::None
        },
        ..FrontendConfig::default()
    };
    let description = ModelDescription {
        labels: [" ", "a", "b", "c", "'"].map(String::from).to_vec(),
        sample_rate: 8000,
        subsampling_factor: case.subsampling,
        frontend: frontend.clone(),
        ..ModelDescription::default()
    };
    (description, frontend)
}

fn stream_options(case: &StreamCase) -> DecodingOptions {
    DecodingOptions {
        ctc: DecoderConfig {
            word_gap_frames: 3,
            ..DecoderConfig::default()
        },
        beam: case.beam.then(|| BeamConfig {
            lm: LMS[0].clone(),
            beam_width: 4,
            lm_weight: 0.5,
            word_bonus: 1.0,
            unk_penalty: Some(5.0),
            commit_delay_frames: 4,
            lexicon: None,
            smearing: Default::default(),
            hotwords: None,
        }),
    }
}

fn fake_model(case: &StreamCase, description: &ModelDescription) -> FakeModel {
    FakeModel {
        vocab: description.vocab_size() + case.vocab_extra,
        subsampling: case.subsampling as usize,
        behaviour: case.behaviour,
        values: case.values.clone(),
        next: 0,
    }
}

/// A model that breaks its promise must give an inference error, never a panic.
fn check_model_error(e: &Error, case: &StreamCase) -> Result<(), TestCaseError> {
    prop_assert!(case.behaviour != ModelBehaviour::Correct, "{e}");
    prop_assert!(matches!(e, Error::Inference(_)), "{e:?}");
    names(e, "model")
}

proptest! {
    #![proptest_config(cases(1024))]

    /// The streaming recogniser over a stand-in model, audio pushed in any pieces: results
    /// cover every output frame once, in order; a model that returns too little, too much
    /// or fails is an inference error. Offline recognition of the same audio likewise.
    #[test]
    fn streaming_and_offline_any_model(case in stream_case()) {
        let (description, frontend) = stream_description(&case);
        let frame = frontend.hop_length * case.subsampling as usize;
        let (left, chunk, right, odd) = case.window;
        let geometry = WindowConfig {
            left: left * frame,
            chunk: chunk * frame + odd,
            right: right * frame,
        };
        let model = fake_model(&case, &description);
        let created = StreamingRecognizer::new(
            model,
            &description,
            frontend.clone(),
            geometry,
            stream_options(&case),
        );
        let mut recognizer = match created {
            Ok(r) => r,
            Err(e) => {
                prop_assert!(odd > 0 || chunk == 0 || case.vocab_extra > 0, "{e}");
                prop_assert!(matches!(e, Error::Settings(_)), "{e:?}");
                names(&e, "")?;
                return Ok(());
            }
        };
        if case.trimmed {
            recognizer.set_edges(StreamEdges::Trimmed);
        }
        let vocab = description.vocab_size();
        let mut results = Vec::new();
        let mut failed = false;
        let mut at = 0;
        'stream: for &piece in case.pieces.iter().cycle() {
            if at >= case.audio.len() {
                break;
            }
            let end = (at + piece.max(1)).min(case.audio.len());
            recognizer.push(&case.audio[at..end]);
            at = end;
            loop {
                match recognizer.next_result() {
                    Ok(Some(result)) => results.push(result),
                    Ok(None) => break,
                    Err(e) => {
                        check_model_error(&e, &case)?;
                        failed = true;
                        break 'stream;
                    }
                }
            }
        }
        if !failed {
            match recognizer.finish() {
                Ok(tail) => {
                    prop_assert!(tail.last().is_some_and(|r| r.last));
                    results.extend(tail);
                }
                Err(e) => {
                    check_model_error(&e, &case)?;
                    failed = true;
                }
            }
        }
        if !failed {
            // Every output frame of the stream once, in order, and at most a chunk and a
            // right context of the silence after it (NeMo's padding; trimmed: none). Each
            // buffer's kept log-probs are a chunk's (the first buffer's start before the
            // stream; trimmed: the frames it covers).
            let extractor = FeatureExtractor::new(frontend.clone()).unwrap();
            let total = extractor
                .frame_count(case.audio.len())
                .div_ceil(case.subsampling as usize) as u64;
            let mut next = 0;
            let mut last_end = 0;
            for (i, result) in results.iter().enumerate() {
                prop_assert_eq!(result.first_frame, next);
                let rows = result.logprobs.len() as u64;
                // The first buffer starts at most the lead-in before the stream: it keeps
                // the lead-in's frames too (trimmed), or fewer than a chunk (live, when the
                // right context is longer than the lead-in), never none.
                let lead = ((f64::from(STREAM_LEAD_IN_MS) * 8.0 / frame as f64).round() as u64)
                    .min(left as u64);
                if case.trimmed {
                    let lead = if i == 0 && !result.last { lead } else { 0 };
                    prop_assert_eq!(rows, (lead + result.frames) * vocab as u64);
                    prop_assert!(result.frames <= chunk as u64);
                } else {
                    let full = chunk as u64 * vocab as u64;
                    prop_assert!(rows == full || (result.last && rows == 0) || (i == 0 && rows > 0 && rows < full));
                    prop_assert!(rows >= result.frames * vocab as u64);
                }
                next += result.frames;
                for word in &result.words {
                    check_word(word, last_end, next)?;
                    last_end = word.end_frame;
                }
                for word in &result.partial {
                    check_word(word, 0, next)?;
                }
            }
            if case.trimmed {
                prop_assert_eq!(next, total);
            } else {
                prop_assert!(next >= total && next <= total + (chunk + right) as u64, "{next} {total}");
            }
        }

        let mut model = fake_model(&case, &description);
        match recognize_offline(&mut model, &description, frontend, stream_options(&case), &case.audio) {
            Ok(offline) => {
                prop_assert_eq!(offline.logprobs.len(), offline.frames * vocab);
                let mut last_end = 0;
                for word in &offline.words {
                    check_word(word, last_end, offline.frames as u64)?;
                    last_end = word.end_frame;
                }
            }
            Err(e) => check_model_error(&e, &case)?,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Fixed cases: the largest valid settings, and the inputs the properties above found
// ---------------------------------------------------------------------------------------

/// The largest frontend validation accepts builds and computes (too slow to draw at random
/// often in a debug build).
#[test]
fn largest_valid_frontends() {
    let largest = FrontendConfig {
        sample_rate: 192_000,
        win_length: MAX_N_FFT,
        hop_length: MAX_N_FFT,
        n_fft: MAX_N_FFT,
        n_mels: MAX_N_MELS,
        f_max: 96_000.0,
        ..FrontendConfig::default()
    };
    for config in [
        largest.clone(),
        FrontendConfig {
            win_length: 1,
            hop_length: 1,
            padding: PaddingMode::Zeros,
            ..largest
        },
    ] {
        let mut frontend = FeatureExtractor::new(config.clone()).unwrap();
        let mut features = Features::default();
        for len in [0, 1, MAX_N_FFT / 2, MAX_N_FFT / 2 + 1] {
            let len = if config.hop_length == 1 {
                len.min(8)
            } else {
                len
            };
            let audio: Vec<f32> = (0..len)
                .map(|n| ((n * 7919) % 200) as f32 - 100.0)
                .collect();
            frontend.compute(&audio, &mut features);
            assert_eq!(features.frames, frontend.frame_count(len));
            assert!(
                features.data.iter().all(|v| v.is_finite()),
                "{config:?} {len}"
            );
        }
    }
}

/// The hostile ARPA inputs of the issue that the reader's own tests do not already cover:
/// a declared but empty highest order scores like the model without it.
#[test]
fn regression_declared_empty_order() {
    let three = NgramModel::parse(DECODER_ARPA.as_bytes()).unwrap();
    let with_empty = DECODER_ARPA.replace("ngram 2=3\n", "ngram 2=3\nngram 3=0\nngram 4=0\n");
    let four = NgramModel::parse(with_empty.as_bytes()).unwrap();
    assert_eq!(four.order(), 4);
    let id = |w: &str| three.word_id(w).unwrap();
    for context in [vec![], vec![id("<s>")], vec![id("<s>"), id("a"), id("b")]] {
        for word in ["a", "b", "c", "ab", "</s>"] {
            assert_eq!(
                three.log_prob(&context, Some(id(word))),
                four.log_prob(&context, Some(id(word))),
                "{context:?} {word}"
            );
        }
    }
    // Declared counts must start at 1 and go up by one.
    let gap = DECODER_ARPA.replace("ngram 2=3\n", "ngram 3=3\n");
    let e = NgramModel::parse(gap.as_bytes()).unwrap_err().to_string();
    assert!(e.contains("must be listed for 1, 2"), "{e}");
}

/// Found by `arpa_models`: a `+inf` back-off (or a probability) met a `-inf` score and the
/// model scored NaN, which poisons the beam search. Values above 10^1000 are refused now.
#[test]
fn regression_infinite_log10_values_are_refused() {
    let text = "\\data\\\nngram 1=4\nngram 2=0\nngram 3=0\n\n\\1-grams:\n0.0000\t</s>\n0.0000\t<s>\n0.0000\ta\n0.0000\tb\tinf\n\n\\end\\\n";
    let e = NgramModel::parse(text.as_bytes()).unwrap_err().to_string();
    assert!(
        e.starts_with("ARPA text: line 10: \"inf\" is above 1000"),
        "{e}"
    );
    // Finite back-offs large enough to overflow when added up are refused the same way.
    let huge = text.replace("\tinf\n", "\t1e37\n");
    let e = NgramModel::parse(huge.as_bytes()).unwrap_err().to_string();
    assert!(e.contains("\"1e37\" is above 1000"), "{e}");
    // Impossible words (-inf) and ordinary positive back-offs still load and score -inf or
    // a finite value.
    let lm = NgramModel::parse(ODD_ARPA.as_bytes()).unwrap();
    let id = |w: &str| lm.word_id(w).unwrap();
    for (context, word) in [
        (vec![id("<s>")], "b"),
        (vec![id("a")], "c"),
        (vec![id("<s>"), id("a")], "b"),
        (vec![id("b")], "ab"),
    ] {
        let lp = lm.log_prob(&context, Some(id(word)));
        assert!(lp.is_finite() || lp == f32::NEG_INFINITY, "{word}: {lp}");
    }
}

/// Found by `decoders_any_logprobs` (with ordinary log-probs): the beam search took two
/// hypotheses to agree on a word when only its text was the same ("a" at frames 5-6 in one,
/// the first "a" of "a a" in another), committed one and kept the other's next word, which
/// came out before the committed one in time (or as the same word twice).
#[test]
fn regression_beam_commits_words_by_time_too() {
    let rows: [[f32; 3]; 25] = [
        [-0.6747422, 0.0, -8.998216],
        [-10.380091, -0.5249579, 0.0],
        [-10.871398, -4.621436, 0.0],
        [-1.0864476, -0.8647237, 0.0],
        [0.0, -7.127607, -11.652197],
        [-8.983634, -1.3560674, -0.54623336],
        [-2.8206527, 0.0, -10.354735],
        [0.0, -2.0938473, -10.198866],
        [0.0, -8.582014, -10.122627],
        [-8.385976, 0.0, -6.1869845],
        [0.0, 0.0, 0.0],
        [0.0, -4.4693065, 0.0],
        [0.0, -7.8743973, 0.0],
        [-6.9385033, -8.658513, 0.0],
        [-4.1868587, -3.9637773, -10.869734],
        [-3.194651, -11.311367, 0.0],
        [-11.940483, -2.6597087, 0.0],
        [-9.66623, 0.0, -5.283918],
        [0.0, -7.9064584, -11.237179],
        [-5.500466, -3.6959107, -4.0555086],
        [0.0, -1.0327755, -11.531031],
        [0.0, -4.7558002, 0.0],
        [0.0, 0.0, 0.0],
        [0.0, -11.933484, -6.396369],
        [0.0, 0.0, 0.0],
    ];
    let options = || DecodingOptions {
        ctc: DecoderConfig {
            word_gap_frames: 2,
            ..DecoderConfig::default()
        },
        beam: Some(BeamConfig {
            lm: LMS[0].clone(),
            beam_width: 4,
            lm_weight: 0.0,
            word_bonus: 0.0,
            unk_penalty: None,
            commit_delay_frames: 0,
            lexicon: None,
            smearing: Default::default(),
            hotwords: None,
        }),
    };
    let labels = || vec![" ".to_string(), "a".to_string()];
    let mut decoder = CtcDecoder::new(labels(), options()).unwrap();
    let mut words = Vec::new();
    for row in &rows {
        words.extend(decoder.push(row, 1));
    }
    words.extend(decoder.finish());
    for pair in words.windows(2) {
        assert!(
            pair[1].start_frame >= pair[0].end_frame,
            "{:?} before {:?}",
            pair[1],
            pair[0]
        );
    }
    let mut whole = CtcDecoder::new(labels(), options()).unwrap();
    let mut expected = whole.push(rows.as_flattened(), rows.len());
    expected.extend(whole.finish());
    assert_eq!(words, expected);
}

/// Found by `streaming_and_offline_any_model`: an `AcousticModel` that returns fewer
/// log-probs than its frame count made the streaming recogniser slice past them (a panic),
/// and one that returns more made offline recognition trip the decoder's length assertion.
#[test]
fn regression_model_output_shorter_or_longer_than_promised() {
    for behaviour in [ModelBehaviour::ShortData, ModelBehaviour::ExtraData] {
        let case = StreamCase {
            subsampling: 1,
            padding: PaddingMode::Reflect,
            per_feature: false,
            window: (0, 1, 0, 0),
            beam: false,
            vocab_extra: 0,
            trimmed: false,
            behaviour,
            values: vec![],
            audio: vec![],
            pieces: vec![0],
        };
        let (description, frontend) = stream_description(&case);
        let frame = frontend.hop_length;
        let geometry = WindowConfig {
            left: 0,
            chunk: frame,
            right: 0,
        };
        let mut recognizer = StreamingRecognizer::new(
            fake_model(&case, &description),
            &description,
            frontend.clone(),
            geometry,
            stream_options(&case),
        )
        .unwrap();
        let e = recognizer.finish().unwrap_err();
        assert!(matches!(e, Error::Inference(_)), "{e:?}");
        assert!(e.to_string().contains("the model returned"), "{e}");
        let mut model = fake_model(&case, &description);
        let e = recognize_offline(
            &mut model,
            &description,
            frontend,
            stream_options(&case),
            &[0.5; 100],
        )
        .err()
        .unwrap();
        assert!(matches!(e, Error::Inference(_)), "{e:?}");
    }
}

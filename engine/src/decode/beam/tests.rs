// SPDX-License-Identifier: MPL-2.0
use super::*;
use crate::model::english_labels;

/// Vocabulary "a", "an", "at", "ban", "cat", "can" with a bigram preferring "a cat".
const ARPA: &str = "\\data\\
ngram 1=9
ngram 2=2

\\1-grams:
-2.0\t<unk>
-99\t<s>\t0
-1.0\t</s>
-1.0\ta\t0
-1.0\tan\t0
-1.0\tat\t0
-1.0\tban\t0
-1.0\tcat\t0
-1.5\tcan\t0

\\2-grams:
-0.1\ta cat
-0.2\t<s> a

\\end\\
";

pub(super) fn lm() -> Arc<NgramModel> {
    Arc::new(NgramModel::parse(ARPA.as_bytes()).unwrap())
}

fn decoder(lm_weight: f32, commit_delay_frames: u32) -> BeamSearchDecoder {
    BeamSearchDecoder::new(
        english_labels(),
        DecoderConfig {
            word_gap_frames: 10,
            ..DecoderConfig::default()
        },
        BeamConfig {
            lm: lm(),
            beam_width: 16,
            lm_weight,
            word_bonus: 0.0,
            unk_penalty: None,
            commit_delay_frames,
            lexicon: None,
            smearing: Smearing::Auto,
            hotwords: None,
        },
    )
    .unwrap()
}

/// Log-prob rows from per-frame `(label, probability)` lists; the rest goes to blank.
pub(super) fn frames(spec: &[&[(char, f32)]]) -> Vec<f32> {
    let labels = english_labels();
    let vocab = labels.len() + 1;
    let mut out = Vec::new();
    for frame in spec {
        let mut p = vec![1e-6f32; vocab];
        let mut rest = 1.0 - 1e-6 * vocab as f32;
        for &(ch, prob) in *frame {
            let i = labels.iter().position(|l| l == &ch.to_string()).unwrap();
            p[i] = prob;
            rest -= prob;
        }
        p[vocab - 1] = rest.max(1e-6);
        out.extend(p.iter().map(|x| x.ln()));
    }
    out
}

fn text(words: &[Word]) -> String {
    words
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn decode(d: &mut BeamSearchDecoder, lp: &[f32]) -> String {
    let n = lp.len() / d.vocab_size();
    let mut words = d.push(lp, n);
    words.extend(d.finish());
    text(&words)
}

#[test]
fn clear_input_decodes_like_greedy() {
    let lp = frames(&[
        &[('a', 0.9)],
        &[],
        &[(' ', 0.9)],
        &[('c', 0.9)],
        &[('a', 0.9)],
        &[('t', 0.9)],
        &[],
    ]);
    assert_eq!(decode(&mut decoder(0.5, 0), &lp), "a cat");
}

#[test]
fn the_language_model_resolves_an_ambiguous_letter() {
    // "a c?": 'o' beats 'a' acoustically but no word starts "co"; then 'n' beats 't'
    // acoustically, and the LM's bigram "a cat" outweighs that.
    let lp = frames(&[
        &[('a', 0.9)],
        &[(' ', 0.9)],
        &[('c', 0.9)],
        &[('o', 0.5), ('a', 0.4)],
        &[('t', 0.45), ('n', 0.5)],
        &[],
    ]);
    assert_eq!(decode(&mut decoder(1.0, 0), &lp), "a cat");
    // Without LM weight only the lexicon acts: "can" wins acoustically.
    assert_eq!(decode(&mut decoder(0.0, 0), &lp), "a can");
}

#[test]
fn out_of_vocabulary_spellings_are_not_output() {
    let lp = frames(&[&[('c', 0.9)], &[('o', 0.6), ('a', 0.3)], &[('t', 0.9)], &[]]);
    assert_eq!(decode(&mut decoder(0.5, 0), &lp), "cat");
}

fn with_unknown_words(lm_weight: f32, unk_penalty: Option<f32>) -> BeamSearchDecoder {
    BeamSearchDecoder::new(
        english_labels(),
        DecoderConfig {
            word_gap_frames: 10,
            ..DecoderConfig::default()
        },
        BeamConfig {
            lm: lm(),
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

#[test]
fn an_unknown_word_is_output_when_the_sound_is_clear() {
    // "a cot": "cot" is not in the vocabulary, but every frame says so clearly.
    let clear = frames(&[
        &[('a', 0.95)],
        &[(' ', 0.95)],
        &[('c', 0.95)],
        &[('o', 0.95)],
        &[('t', 0.95)],
        &[],
    ]);
    // Lexicon only: no vocabulary word sounds like that ('a' is far too unlikely there).
    assert_eq!(decode(&mut decoder(0.5, 0), &clear), "a", "lexicon only");
    assert_eq!(
        decode(&mut with_unknown_words(0.5, Some(2.0)), &clear),
        "a cot"
    );
    // A vocabulary word that the sound nearly matches still wins where the evidence is
    // weak: the penalty outweighs the acoustic difference.
    let weak = frames(&[&[('c', 0.9)], &[('o', 0.5), ('a', 0.4)], &[('t', 0.9)], &[]]);
    assert_eq!(
        decode(&mut with_unknown_words(0.5, Some(2.0)), &weak),
        "cat"
    );
    // (Even without a penalty: `<unk>` is less likely than "cat" in the LM.)
    assert_eq!(
        decode(&mut with_unknown_words(0.5, Some(0.0)), &weak),
        "cat"
    );
    assert_eq!(
        decode(&mut with_unknown_words(0.0, Some(0.0)), &weak),
        "cot"
    );
    // Several unknown words in a row, with words of the vocabulary around them.
    let names = frames(&[
        &[('z', 0.95)],
        &[('o', 0.95)],
        &[('e', 0.95)],
        &[(' ', 0.95)],
        &[('a', 0.95)],
        &[(' ', 0.95)],
        &[('c', 0.95)],
        &[('a', 0.95)],
        &[('t', 0.95)],
        &[],
    ]);
    assert_eq!(
        decode(&mut with_unknown_words(0.5, Some(1.0)), &names),
        "zoe a cat"
    );
}

#[test]
fn a_huge_unknown_word_penalty_is_the_lexicon_only_search() {
    let vocab = english_labels().len() + 1;
    for seed in 0..20u64 {
        let lp = random_frames(seed, 150);
        let run = |mut d: BeamSearchDecoder| {
            let mut words = Vec::new();
            for chunk in lp.chunks(11 * vocab) {
                words.extend(d.push(chunk, chunk.len() / vocab));
            }
            words.extend(d.finish());
            words
        };
        assert_eq!(
            run(with_unknown_words(0.8, Some(1.0e4))),
            run(with_unknown_words(0.8, None)),
            "seed {seed}"
        );
    }
}

#[test]
fn unknown_spellings_are_compacted_without_changing_the_result() {
    let vocab = english_labels().len() + 1;
    let lp = random_frames(7, 400);
    let run = |limit: bool| {
        let mut d = with_unknown_words(0.5, Some(0.5));
        let mut words = Vec::new();
        for row in lp.chunks(vocab) {
            words.extend(d.push(row, 1));
            if limit {
                d.compact_spellings();
            }
        }
        words.extend(d.finish());
        words
    };
    let (compacted, plain) = (run(true), run(false));
    assert!(
        plain.iter().any(|w| lm().word_id(&w.text).is_none()),
        "{plain:?}"
    );
    assert_eq!(compacted, plain);
}

#[test]
fn repeated_letters_need_a_blank_between() {
    // "a" held over three frames is one 'a', not "aaa".
    let lp = frames(&[&[('a', 0.9)], &[('a', 0.9)], &[('a', 0.9)], &[]]);
    let mut d = decoder(0.5, 0);
    assert_eq!(decode(&mut d, &lp), "a");
}

#[test]
fn words_are_timed_and_output_once_final() {
    let mut spec: Vec<&[(char, f32)]> = vec![&[('a', 0.9)], &[(' ', 0.9)]];
    spec.extend(std::iter::repeat_n(&[][..], 30));
    spec.extend([&[('c', 0.9)][..], &[('a', 0.9)], &[('t', 0.9)]]);
    let lp = frames(&spec);
    let vocab = english_labels().len() + 1;
    let mut d = decoder(0.5, 20);
    // The first word is final long before the end (commit delay 20 frames).
    let early = d.push(&lp[..25 * vocab], 25);
    assert_eq!(text(&early), "a");
    assert_eq!((early[0].start_frame, early[0].end_frame), (0, 1));
    let rest = d.push(&lp[25 * vocab..], spec.len() - 25);
    assert!(rest.is_empty());
    assert_eq!(
        d.pending().into_iter().map(|w| w.text).collect::<Vec<_>>(),
        ["cat"]
    );
    let last = d.finish();
    assert_eq!(text(&last), "cat");
    assert_eq!((last[0].start_frame, last[0].end_frame), (32, 35));
    // Every frame of "cat" has the same distribution: its confidence is that frame's.
    let row = &lp[32 * vocab..33 * vocab];
    let measure = crate::decode::ConfidenceConfig::default().measure;
    let expected = crate::decode::frame_confidence(measure, row);
    assert!(
        (last[0].confidence - expected).abs() < 1e-6,
        "{} vs {expected}",
        last[0].confidence
    );
}

/// On input where the search takes the greedy path, every word's confidence is the
/// greedy decoder's (NeMo's): the same frames make each token, whatever the measure and
/// aggregation; frames where blank is the most likely label belong to no token.
#[test]
fn confidence_is_the_greedy_decoders_on_its_path() {
    use crate::decode::{
        ConfidenceAggregation, ConfidenceConfig, ConfidenceMeasure, GreedyCtcDecoder,
    };
    let lp = frames(&[
        &[('a', 0.9)],
        &[('a', 0.6)],
        &[('a', 0.3)], // blank wins: no token's frame
        &[(' ', 0.9)],
        &[('c', 0.8)],
        &[('c', 0.7)],
        &[],
        &[('a', 0.9)],
        &[('t', 0.55)],
        &[('t', 0.95)],
        &[('t', 0.2)],
        &[],
    ]);
    let n = lp.len() / (english_labels().len() + 1);
    for aggregation in ConfidenceAggregation::ALL {
        for measure in [
            ConfidenceMeasure::NEMO_DEFAULT,
            ConfidenceMeasure::MaxProb { alpha: 1.0 },
            ConfidenceConfig::DEFAULT.measure,
        ] {
            let config = DecoderConfig {
                word_gap_frames: 10,
                confidence: ConfidenceConfig {
                    measure,
                    aggregation,
                },
                ..DecoderConfig::default()
            };
            let mut greedy = GreedyCtcDecoder::new(english_labels(), config).unwrap();
            let mut expected = greedy.push(&lp, n);
            expected.extend(greedy.finish());
            let beam = BeamConfig {
                lm: lm(),
                beam_width: 16,
                lm_weight: 0.5,
                word_bonus: 0.0,
                unk_penalty: None,
                commit_delay_frames: 0,
                lexicon: None,
                smearing: Smearing::Auto,
                hotwords: None,
            };
            let mut d = BeamSearchDecoder::new(english_labels(), config, beam).unwrap();
            let mut words = d.push(&lp, n);
            words.extend(d.finish());
            assert_eq!(text(&words), "a cat");
            assert_eq!(text(&expected), "a cat");
            for (w, e) in words.iter().zip(&expected) {
                assert!(
                    (w.confidence - e.confidence).abs() < 1e-6,
                    "{measure} {aggregation}: {w:?} vs greedy {e:?}"
                );
            }
        }
    }
}

#[test]
fn the_result_does_not_depend_on_push_sizes() {
    let spec: Vec<&[(char, f32)]> = vec![
        &[('a', 0.6), ('o', 0.3)],
        &[(' ', 0.8)],
        &[('c', 0.7)],
        &[('a', 0.5), ('o', 0.4)],
        &[('n', 0.5), ('t', 0.4)],
        &[],
        &[(' ', 0.5)],
        &[('a', 0.8)],
        &[('t', 0.6)],
        &[],
    ];
    let lp = frames(&spec);
    let vocab = english_labels().len() + 1;
    let whole = decode(&mut decoder(0.8, 3), &lp);
    for split in 1..spec.len() {
        let mut d = decoder(0.8, 3);
        let mut words = d.push(&lp[..split * vocab], split);
        words.extend(d.push(&lp[split * vocab..], spec.len() - split));
        words.extend(d.finish());
        assert_eq!(text(&words), whole, "split at {split}");
    }
}

#[test]
fn a_silence_completes_the_word_and_nan_is_harmless() {
    let mut spec: Vec<&[(char, f32)]> = vec![&[('a', 0.9)], &[('n', 0.9)]];
    spec.extend(std::iter::repeat_n(&[][..], 12));
    let mut lp = frames(&spec);
    let vocab = english_labels().len() + 1;
    lp[5 * vocab + 3] = f32::NAN;
    let mut d = decoder(0.5, 5);
    let words = d.push(&lp, spec.len());
    assert_eq!(
        text(&words),
        "an",
        "completed by the 10-frame silence, then committed"
    );
    assert!(d.finish().is_empty());
}

#[test]
fn bad_settings_are_errors() {
    let config = |beam_width, lm_weight| BeamConfig {
        lm: lm(),
        beam_width,
        lm_weight,
        word_bonus: 0.0,
        unk_penalty: None,
        commit_delay_frames: 0,
        lexicon: None,
        smearing: Smearing::Auto,
        hotwords: None,
    };
    let d = DecoderConfig::default();
    assert!(BeamSearchDecoder::new(english_labels(), d, config(0, 0.5)).is_err());
    assert!(BeamSearchDecoder::new(english_labels(), d, config(8, f32::NAN)).is_err());
    for penalty in [-1.0, f32::NAN, f32::INFINITY] {
        let beam = BeamConfig {
            unk_penalty: Some(penalty),
            ..config(8, 0.5)
        };
        assert!(BeamSearchDecoder::new(english_labels(), d, beam).is_err());
    }
    let no_space: Vec<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
    assert!(
        BeamSearchDecoder::new(no_space, d, config(8, 0.5))
            .unwrap_err()
            .to_string()
            .contains("space")
    );
}

/// Random frames over the test vocabulary's letters: each frame puts random weights on
/// a few labels and blank (a linear congruential generator keeps it reproducible).
pub(super) fn random_frames(seed: u64, count: usize) -> Vec<f32> {
    let labels = english_labels();
    let vocab = labels.len() + 1;
    let useful: Vec<usize> = ['a', 'n', 't', 'b', 'c', ' ', 'o']
        .iter()
        .map(|ch| labels.iter().position(|l| l == &ch.to_string()).unwrap())
        .collect();
    let mut state = seed;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) as f32) / (1u64 << 31) as f32
    };
    let mut out = Vec::with_capacity(count * vocab);
    for _ in 0..count {
        let mut p = vec![1e-7f32; vocab];
        for &c in &useful {
            let r = next();
            p[c] = if r < 0.5 { 1e-7 } else { r * r * r };
        }
        p[vocab - 1] = next() * 1.5;
        let sum: f32 = p.iter().sum();
        out.extend(p.iter().map(|x| (x / sum).ln()));
    }
    out
}

/// The fast path (one distinct character per label: merges only with hypotheses of the
/// beam, candidates below the floor skipped) gives exactly the general path's words,
/// times and confidences, with small beams (much pruning) and word gaps (completions).
#[test]
fn the_fast_path_is_exactly_the_general_one() {
    let vocab = english_labels().len() + 1;
    for seed in 0..40u64 {
        let lp = random_frames(seed, 120);
        let unknown = [None, Some(0.0), Some(3.0)];
        for (width, gap, delay, unk_penalty) in [
            (1, 0, 0, 0),
            (3, 3, 0, 1),
            (8, 4, 6, 2),
            (32, 2, 3, 0),
            (32, 2, 3, 2),
            (8, 0, 0, 1),
        ]
        .map(|(w, g, d, u)| (w, g, d, unknown[u]))
        {
            let make = || {
                BeamSearchDecoder::new(
                    english_labels(),
                    DecoderConfig {
                        word_gap_frames: gap,
                        ..DecoderConfig::default()
                    },
                    BeamConfig {
                        lm: lm(),
                        beam_width: width,
                        lm_weight: 0.8,
                        word_bonus: 0.5,
                        unk_penalty,
                        commit_delay_frames: delay,
                        lexicon: None,
                        smearing: Smearing::Auto,
                        hotwords: None,
                    },
                )
                .unwrap()
            };
            let mut fast = make();
            assert!(fast.fast_path);
            let mut general = make();
            general.fast_path = false;
            let run = |d: &mut BeamSearchDecoder| {
                let mut words = Vec::new();
                for chunk in lp.chunks(7 * vocab) {
                    words.extend(d.push(chunk, chunk.len() / vocab));
                    let pending = d.pending();
                    words.extend(pending.into_iter().map(|mut w| {
                        w.text.insert(0, '~');
                        w
                    }));
                }
                words.extend(d.finish());
                words
                    .iter()
                    .map(|w| {
                        let c = w.confidence.to_bits();
                        (
                            w.text.clone(),
                            w.spaces_before,
                            w.start_frame,
                            w.end_frame,
                            c,
                        )
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                run(&mut fast),
                run(&mut general),
                "seed {seed}, width {width}, gap {gap}, delay {delay}, unknown words {unk_penalty:?}"
            );
        }
    }
}

#[test]
fn labels_of_several_characters_take_the_general_path() {
    let mut labels = english_labels();
    labels[1] = "ab".into();
    let units = Units::characters(lm(), None);
    assert!(!units.one_spelling_per_text(&labels));
    labels[1] = "b".into();
    assert!(!units.one_spelling_per_text(&labels), "two labels \"b\"");
    assert!(units.one_spelling_per_text(&english_labels()));
}

/// Words, times (exact) and confidences (bits) of a stream decoded in chunks of 7 frames,
/// with the pending words after each chunk (marked `~`).
pub(super) fn stream_words(
    d: &mut BeamSearchDecoder,
    lp: &[f32],
) -> Vec<(String, u32, u64, u64, u32)> {
    let vocab = d.vocab_size();
    let mut words = Vec::new();
    for chunk in lp.chunks(7 * vocab) {
        words.extend(d.push(chunk, chunk.len() / vocab));
        words.extend(d.pending().into_iter().map(|mut w| {
            w.text.insert(0, '~');
            w
        }));
    }
    words.extend(d.finish());
    words
        .iter()
        .map(|w| {
            let c = w.confidence.to_bits();
            (
                w.text.clone(),
                w.spaces_before,
                w.start_frame,
                w.end_frame,
                c,
            )
        })
        .collect()
}

/// Runs `make()`'s decoder on the fast and on the general path and compares everything.
fn assert_paths_agree(make: impl Fn() -> BeamSearchDecoder, lp: &[f32], what: &str) {
    let mut fast = make();
    assert!(fast.fast_path, "{what}");
    let mut general = make();
    general.fast_path = false;
    assert_eq!(
        stream_words(&mut fast, lp),
        stream_words(&mut general, lp),
        "{what}"
    );
}

/// Smearing keeps the fast path exact: spelling never raises a hypothesis's LM score
/// (the look-ahead only falls along a spelling, unknown words' included), which is what its
/// pruning bound needs.
#[test]
fn the_fast_path_is_exactly_the_general_one_with_smearing() {
    for seed in 0..25u64 {
        let lp = random_frames(seed, 120);
        let smearing = if seed % 2 == 0 {
            Smearing::MaxUnigram
        } else {
            Smearing::MaxAfterStart
        };
        for (width, gap, delay, unk_penalty) in [
            (1, 0, 0, None),
            (3, 3, 0, Some(0.0)),
            (8, 4, 6, Some(3.0)),
            (32, 2, 3, None),
            (32, 2, 3, Some(3.0)),
        ] {
            let make = || {
                BeamSearchDecoder::new(
                    english_labels(),
                    DecoderConfig {
                        word_gap_frames: gap,
                        ..DecoderConfig::default()
                    },
                    BeamConfig {
                        lm: lm(),
                        beam_width: width,
                        lm_weight: 0.8,
                        word_bonus: 0.5,
                        unk_penalty,
                        commit_delay_frames: delay,
                        lexicon: None,
                        smearing,
                        hotwords: None,
                    },
                )
                .unwrap()
            };
            assert!(make().lookahead.is_some());
            let what = format!(
                "seed {seed}, width {width}, gap {gap}, unknown {unk_penalty:?}, {smearing:?}"
            );
            assert_paths_agree(make, &lp, &what);
        }
    }
}

/// Smearing is off for characters unless asked for: the default is the search without it.
#[test]
fn smearing_is_off_for_characters_by_default() {
    assert!(decoder(0.5, 0).lookahead.is_none());
}

mod lexicon {
    use super::*;
    use crate::lexicon::PronunciationLexicon;

    const LABELS: [&str; 12] = [
        "k", "æ", "t", "s", " ", "ð", "ɛ", "ɹ", "aɪ", "n", "o", "<wb>",
    ];

    /// Shared prefixes, variants (can, cat), homophones (their, there; sun, son) and a word
    /// the LM does not know (kite).
    const WORDS: [(&str, &str); 11] = [
        ("cat", "k æ t"),
        ("cat", "k ɛ t"),
        ("cats", "k æ t s"),
        ("can", "k æ n"),
        ("can", "k ɛ n"),
        ("kite", "k aɪ t"),
        ("their", "ð ɛ ɹ"),
        ("there", "ð ɛ ɹ"),
        ("sun", "s o n"),
        ("son", "s o n"),
        ("noon", "n o o n"),
    ];

    const ARPA: &str = "\\data\\
ngram 1=11
ngram 2=2

\\1-grams:
-2.0\t<unk>
-99\t<s>\t0
-1.0\t</s>
-1.0\tcat\t-0.2
-1.5\tcats\t0
-1.2\tcan\t0
-1.0\ttheir\t0
-0.8\tthere\t0
-1.4\tsun\t0
-1.3\tson\t0
-1.5\tnoon\t0

\\2-grams:
-0.1\ttheir cat
-0.3\tcat can

\\end\\
";

    fn labels() -> Vec<String> {
        LABELS.map(String::from).to_vec()
    }

    fn make(width: usize, gap: u32, delay: u32, smearing: Smearing) -> BeamSearchDecoder {
        let entries = WORDS.map(|(w, s)| (w.to_string(), s.split(' ').map(String::from).collect()));
        let lexicon = PronunciationLexicon::from_entries(entries, &labels(), "<wb>").unwrap();
        BeamSearchDecoder::new(
            labels(),
            DecoderConfig {
                word_gap_frames: gap,
                ..DecoderConfig::default()
            },
            BeamConfig {
                lm: Arc::new(NgramModel::parse(ARPA.as_bytes()).unwrap()),
                beam_width: width,
                lm_weight: 0.8,
                word_bonus: 0.5,
                unk_penalty: Some(1.0),
                commit_delay_frames: delay,
                lexicon: Some(Arc::new(lexicon)),
                smearing,
                hotwords: None,
            },
        )
        .unwrap()
    }

    /// Random frames: each frame puts random weights on a few tokens and blank.
    fn random_frames(seed: u64, count: usize) -> Vec<f32> {
        let vocab = LABELS.len() + 1;
        let mut state = seed.wrapping_mul(7919).wrapping_add(17);
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) as f32) / (1u64 << 31) as f32
        };
        let mut out = Vec::with_capacity(count * vocab);
        for _ in 0..count {
            let mut p = vec![1e-7f32; vocab];
            for x in p.iter_mut().take(vocab - 1) {
                let r = next();
                *x = if r < 0.55 { 1e-7 } else { r * r * r };
            }
            p[vocab - 1] = next() * 1.5;
            let sum: f32 = p.iter().sum();
            out.extend(p.iter().map(|x| (x / sum).ln()));
        }
        out
    }

    /// The fast path is exact with a lexicon too, variants (one word completed from several
    /// spellings) and homophones (one spelling completed as several words) included.
    #[test]
    fn the_fast_path_is_exactly_the_general_one() {
        for seed in 0..30u64 {
            let lp = random_frames(seed, 120);
            for (width, gap, delay) in [(1, 0, 0), (3, 3, 0), (8, 4, 6), (32, 2, 3), (64, 0, 0)] {
                for smearing in [Smearing::Off, Smearing::MaxUnigram, Smearing::MaxAfterStart] {
                    let what = format!("seed {seed}, width {width}, gap {gap}, {smearing:?}");
                    assert_paths_agree(|| make(width, gap, delay, smearing), &lp, &what);
                }
            }
        }
    }

    /// The decoded words are lexicon words whatever the frames, and the search produces
    /// some (the random frames are not all rejected).
    #[test]
    fn only_lexicon_words_come_out() {
        let mut found = 0;
        for seed in 0..30u64 {
            let lp = random_frames(seed, 120);
            let mut d = make(16, 3, 5, Smearing::Auto);
            for (text, ..) in stream_words(&mut d, &lp) {
                let text = text.trim_start_matches('~');
                assert!(WORDS.iter().any(|(w, _)| *w == text), "{text:?}");
                found += 1;
            }
        }
        assert!(found > 30, "{found}");
    }
}

// SPDX-License-Identifier: MPL-2.0
//! The beam search on a phoneme model with a pronunciation lexicon: words spelled by phoneme
//! tokens, completed by the `<wb>` label, chosen between homophones by the language model.

use std::sync::Arc;

use quartznet_engine::decode::{
    BeamConfig, BeamSearchDecoder, ConfidenceConfig, CtcDecoder, DecoderConfig, DecodingOptions,
    Smearing, Word, frame_confidence, transcript,
};
use quartznet_engine::lexicon::PronunciationLexicon;
use quartznet_engine::lm::NgramModel;

/// Phoneme tokens as the phoneme model has them: multi-codepoint ones, a literal space token
/// (just a token, not a separator) and the word boundary. Blank is last (index 13).
const LABELS: [&str; 13] = [
    "k", "æ", "t", "s", " ", "ð", "ɛ", "ɹ", "aɪ", "n", "o", "d͡ʒ", "<wb>",
];
const WB: &str = "<wb>";

fn labels() -> Vec<String> {
    LABELS.map(String::from).to_vec()
}

/// Words with shared prefixes (cat, cats, can), a variant spelling (can: "k ɛ n"),
/// homophones (their, there), a spelling that repeats a phoneme (noon) and a word the LM
/// does not know (kite).
const LEXICON: [(&str, &str); 10] = [
    ("cat", "k æ t"),
    ("cats", "k æ t s"),
    ("can", "k æ n"),
    ("can", "k ɛ n"),
    ("kite", "k aɪ t"),
    ("their", "ð ɛ ɹ"),
    ("there", "ð ɛ ɹ"),
    ("nine", "n aɪ n"),
    ("noon", "n o o n"),
    ("jet", "d͡ʒ ɛ t"),
];

/// "there" is likelier than "their" alone, "their cat" is likelier than "there cat".
const ARPA: &str = "\\data\\
ngram 1=11
ngram 2=3

\\1-grams:
-2.0\t<unk>
-99\t<s>\t0
-1.0\t</s>
-1.0\tcat\t0
-1.5\tcats\t0
-1.2\tcan\t0
-1.0\ttheir\t0
-0.8\tthere\t0
-1.5\tnine\t0
-1.5\tnoon\t0
-3.0\tjet\t0

\\2-grams:
-0.1\ttheir cat
-2.0\tthere cat
-0.3\t<s> cat

\\end\\
";

fn lm() -> Arc<NgramModel> {
    Arc::new(NgramModel::parse(ARPA.as_bytes()).unwrap())
}

fn lexicon() -> PronunciationLexicon {
    let entries = LEXICON.map(|(w, s)| (w.to_string(), s.split(' ').map(String::from).collect()));
    PronunciationLexicon::from_entries(entries, &labels(), WB).unwrap()
}

fn config(lexicon: PronunciationLexicon, beam_width: usize, lm_weight: f32) -> BeamConfig {
    BeamConfig {
        lm: lm(),
        beam_width,
        lm_weight,
        word_bonus: 1.0,
        unk_penalty: Some(5.0),
        commit_delay_frames: 0,
        lexicon: Some(Arc::new(lexicon)),
        smearing: Smearing::Auto,
        hotwords: None,
    }
}

fn decoder_with(beam: BeamConfig, word_gap_frames: u32) -> BeamSearchDecoder {
    let ctc = DecoderConfig {
        word_gap_frames,
        ..DecoderConfig::default()
    };
    BeamSearchDecoder::new(labels(), ctc, beam).unwrap()
}

fn decoder() -> BeamSearchDecoder {
    decoder_with(config(lexicon(), 16, 1.0), 10)
}

/// Log-prob rows from per-frame `(label, probability)` lists; the rest goes to blank.
fn frames(spec: &[&[(&str, f32)]]) -> Vec<f32> {
    let vocab = LABELS.len() + 1;
    let mut out = Vec::new();
    for frame in spec {
        let mut p = vec![1e-6f32; vocab];
        let mut rest = 1.0 - 1e-6 * vocab as f32;
        for &(token, prob) in *frame {
            let i = LABELS.iter().position(|&l| l == token).unwrap();
            p[i] = prob;
            rest -= prob;
        }
        p[vocab - 1] = rest.max(1e-6);
        out.extend(p.iter().map(|x| x.ln()));
    }
    out
}

/// Clear frames of the given tokens, one frame each ("_" for a blank frame, "␣" for the
/// space token).
fn clear(tokens: &str) -> Vec<f32> {
    let spec: Vec<Vec<(&str, f32)>> = tokens
        .split(' ')
        .map(|t| match t {
            "_" => vec![],
            "␣" => vec![(" ", 0.99)],
            t => vec![(t, 0.99)],
        })
        .collect();
    let spec: Vec<&[(&str, f32)]> = spec.iter().map(Vec::as_slice).collect();
    frames(&spec)
}

fn run(d: &mut BeamSearchDecoder, lp: &[f32]) -> Vec<Word> {
    let n = lp.len() / d.vocab_size();
    let mut words = d.push(lp, n);
    words.extend(d.finish());
    words
}

fn decode(d: &mut BeamSearchDecoder, lp: &[f32]) -> String {
    transcript(&run(d, lp))
}

#[test]
fn words_are_spelled_by_phonemes_and_completed_by_the_boundary() {
    let mut d = decoder();
    assert_eq!(decode(&mut d, &clear("k æ t <wb> k æ n <wb>")), "cat can");
    assert_eq!(
        decode(&mut d, &clear("k æ t s <wb> n aɪ n <wb>")),
        "cats nine"
    );
    // A prefix of longer words completes as itself; a variant spelling is the same word.
    assert_eq!(decode(&mut d, &clear("k æ t <wb> k ɛ n <wb>")), "cat can");
    assert_eq!(decode(&mut d, &clear("d͡ʒ ɛ t <wb>")), "jet");
}

/// Without the boundary the phonemes of two words are no word: were `<wb>` an ordinary
/// label or ignored, "cat can" would merge into nothing (or one word) here.
#[test]
fn the_boundary_separates_words() {
    let mut d = decoder();
    let words = run(&mut d, &clear("k æ t <wb> k æ t <wb> k æ t s <wb>"));
    assert_eq!(transcript(&words), "cat cat cats");
    let times: Vec<(u64, u64, u32)> = words
        .iter()
        .map(|w| (w.start_frame, w.end_frame, w.spaces_before))
        .collect();
    // Each word's frames are its phonemes', not the boundary's.
    assert_eq!(times, [(0, 3, 0), (4, 7, 1), (8, 12, 1)]);
    // Without boundaries, "k æ t k æ t" is no word: only what completes is output.
    assert_eq!(decode(&mut d, &clear("k æ t k æ n")), "cat");
}

#[test]
fn the_space_token_is_no_separator() {
    let mut d = decoder();
    // A literal space token between the words: it spells nothing, so "can" cannot start.
    assert_eq!(decode(&mut d, &clear("k æ t ␣ k æ n <wb>")), "cat");
}

#[test]
fn a_boundary_at_the_root_is_silence() {
    let mut d = decoder();
    assert_eq!(
        decode(
            &mut d,
            &clear("<wb> <wb> _ k æ t <wb> <wb> _ <wb> k æ n <wb> <wb>")
        ),
        "cat can"
    );
    let words = run(&mut decoder(), &clear("<wb> <wb> k æ t <wb>"));
    assert_eq!((words[0].start_frame, words[0].end_frame), (2, 5));
}

#[test]
fn a_repeated_phoneme_needs_a_blank_between() {
    let mut d = decoder();
    assert_eq!(decode(&mut d, &clear("n o _ o n <wb>")), "noon");
    // "o o" without a blank is one "o": "n o n" is no word.
    assert_eq!(decode(&mut d, &clear("n o o n <wb>")), "");
}

#[test]
fn homophones_are_resolved_by_the_language_model() {
    let mut d = decoder();
    assert_eq!(decode(&mut d, &clear("ð ɛ ɹ <wb>")), "there");
    assert_eq!(decode(&mut d, &clear("ð ɛ ɹ <wb> k æ t <wb>")), "their cat");
    // At the end of the stream or after a silence, too.
    assert_eq!(decode(&mut d, &clear("ð ɛ ɹ")), "there");
    assert_eq!(
        decode(&mut d, &clear("ð ɛ ɹ _ _ _ _ _ _ _ _ _ _ _ k æ t")),
        "their cat"
    );
}

#[test]
fn a_silence_completes_a_word() {
    let mut beam = config(lexicon(), 16, 1.0);
    beam.commit_delay_frames = 5;
    let mut d = decoder_with(beam, 10);
    let lp = clear("k æ t _ _ _ _ _ _ _ _ _ _ _ _");
    let words = d.push(&lp, lp.len() / d.vocab_size());
    assert_eq!(
        transcript(&words),
        "cat",
        "completed by the 10-frame silence"
    );
    assert!(d.finish().is_empty());
    // A spelling that is only the start of words is not completed by a silence.
    let lp = clear("k æ _ _ _ _ _ _ _ _ _ _ _ _");
    assert!(d.push(&lp, lp.len() / d.vocab_size()).is_empty());
    assert!(d.finish().is_empty());
}

#[test]
fn the_end_completes_only_a_whole_spelling() {
    let mut d = decoder();
    assert_eq!(decode(&mut d, &clear("k æ t")), "cat");
    assert_eq!(decode(&mut d, &clear("k æ")), "", "a prefix is no word");
    assert_eq!(decode(&mut d, &clear("k æ n <wb> k æ")), "can");
    assert_eq!(decode(&mut d, &clear("k aɪ")), "");
}

#[test]
fn words_outside_the_lexicon_are_never_output() {
    // "k o t" is spelled clearly, but no lexicon word is spelled so.
    let mut d = decoder();
    assert_eq!(decode(&mut d, &clear("k o t <wb>")), "");
    assert_eq!(
        decode(&mut d, &clear("k æ t <wb> k o t <wb> n aɪ n <wb>")),
        "cat nine"
    );
    // Random frames: every word output is a lexicon word.
    let lexicon = lexicon();
    for seed in 0..20 {
        let lp = random_frames(seed, 100);
        for w in run(&mut decoder(), &lp) {
            assert!(lexicon.contains(&w.text), "seed {seed}: {w:?}");
        }
    }
}

#[test]
fn a_word_the_lm_does_not_know_scores_as_unk() {
    // "kite" is in the lexicon but not in the LM: written, with <unk>'s score.
    let mut d = decoder();
    assert_eq!(decode(&mut d, &clear("k aɪ t <wb>")), "kite");
    // A user word added to the lexicon (not in the LM either).
    let mut lexicon = lexicon();
    let spelling: Vec<String> = ["t", "ɛ", "k"].map(String::from).to_vec();
    assert_eq!(decode(&mut d, &clear("t ɛ k <wb> k æ t <wb>")), "cat");
    lexicon.add_word("tech", &spelling).unwrap();
    let mut d = decoder_with(config(lexicon, 16, 1.0), 10);
    assert_eq!(decode(&mut d, &clear("t ɛ k <wb> k æ t <wb>")), "tech cat");
}

#[test]
fn times_and_confidences_are_the_phonemes() {
    let lp = clear("_ k k æ t <wb> _ _ ð ɛ ɹ ɹ <wb>");
    let mut d = decoder();
    let words = run(&mut d, &lp);
    assert_eq!(transcript(&words), "cat there");
    assert_eq!((words[0].start_frame, words[0].end_frame), (1, 5));
    assert_eq!((words[1].start_frame, words[1].end_frame), (8, 12));
    // Every phoneme frame has the same distribution shape: the confidence is that frame's.
    let vocab = LABELS.len() + 1;
    let expected = frame_confidence(ConfidenceConfig::default().measure, &lp[vocab..2 * vocab]);
    for w in &words {
        assert!(
            (w.confidence - expected).abs() < 1e-6,
            "{w:?} vs {expected}"
        );
    }
}

#[test]
fn the_result_does_not_depend_on_push_sizes() {
    let vocab = LABELS.len() + 1;
    for seed in 0..10 {
        let lp = random_frames(seed, 60);
        let n = lp.len() / vocab;
        let whole = run(&mut decoder_with(config(lexicon(), 8, 1.0), 4), &lp);
        for split in [1, 7, 13, 30, 59] {
            let mut d = decoder_with(config(lexicon(), 8, 1.0), 4);
            let mut words = d.push(&lp[..split * vocab], split);
            words.extend(d.push(&lp[split * vocab..], n - split));
            words.extend(d.finish());
            assert_eq!(words, whole, "seed {seed}, split at {split}");
        }
    }
}

/// In a beam of one, the acoustically better start of an unlikely word ("k aɪ": kite) would
/// push out the likelier one ("k æ": cat); the look-ahead keeps the likely one.
#[test]
fn smearing_keeps_likely_words_in_a_narrow_beam() {
    let lp = frames(&[
        &[("k", 0.99)],
        &[("æ", 0.4), ("aɪ", 0.5)],
        &[("t", 0.9)],
        &[(WB, 0.9)],
    ]);
    let narrow = |smearing| {
        let mut beam = config(lexicon(), 1, 1.0);
        beam.smearing = smearing;
        decode(&mut decoder_with(beam, 10), &lp)
    };
    assert_eq!(narrow(Smearing::Off), "kite");
    assert_eq!(narrow(Smearing::MaxUnigram), "cat");
    assert_eq!(
        narrow(Smearing::Auto),
        "cat",
        "on by default with a lexicon"
    );
    // A wide beam finds "cat" either way (the LM decides at the boundary).
    let mut wide = config(lexicon(), 16, 1.0);
    wide.smearing = Smearing::Off;
    assert_eq!(decode(&mut decoder_with(wide, 10), &lp), "cat");
}

#[test]
fn mismatched_settings_are_errors() {
    let other_labels: Vec<String> = LABELS[..12].iter().map(|s| s.to_string()).collect();
    let entries = [("cat".to_string(), vec!["k".into(), "æ".into(), "t".into()])];
    let for_other = PronunciationLexicon::from_entries(entries, &other_labels, "d͡ʒ").unwrap();
    let e = BeamSearchDecoder::new(
        labels(),
        DecoderConfig::default(),
        config(for_other, 8, 1.0),
    )
    .unwrap_err();
    assert!(e.to_string().contains("other labels"), "{e}");
    let empty = PronunciationLexicon::from_entries([], &labels(), WB).unwrap();
    let e = BeamSearchDecoder::new(labels(), DecoderConfig::default(), config(empty, 8, 1.0))
        .unwrap_err();
    assert!(e.to_string().contains("no words"), "{e}");
    // The engine's decoder interface takes the lexicon through the same settings; no space
    // label is needed.
    let options = DecodingOptions {
        ctc: DecoderConfig::default(),
        beam: Some(config(lexicon(), 8, 1.0)),
    };
    let mut d = CtcDecoder::new(labels(), options).unwrap();
    let lp = clear("k æ t <wb>");
    let mut words = d.push(&lp, lp.len() / (LABELS.len() + 1));
    words.extend(d.finish());
    assert_eq!(transcript(&words), "cat");
}

/// Random frames: each frame puts random weights on a few tokens, the boundary and blank (a
/// linear congruential generator keeps it reproducible).
fn random_frames(seed: u64, count: usize) -> Vec<f32> {
    let vocab = LABELS.len() + 1;
    let mut state = seed.wrapping_add(1);
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
            *x = if r < 0.6 { 1e-7 } else { r * r * r };
        }
        p[vocab - 1] = next() * 1.5;
        let sum: f32 = p.iter().sum();
        out.extend(p.iter().map(|x| (x / sum).ln()));
    }
    out
}

// SPDX-License-Identifier: MPL-2.0
//! Pronunciation-lexicon figures on synthetic data the size of the phoneme model's (191
//! classes, a 52,000-word lexicon):
//!
//!     cargo run --release -p quartznet-engine --example lexicon_speed -- [LEXICON.gz]
//!
//! 1. Load time of a gzipped lexicon: the one given, else a synthetic one written to a
//!    temporary file (52,000 words, 1 to 3 spellings each, 3 to 10 tokens a spelling, with
//!    homophones). A given file must be in the synthetic labels, or its load fails: pass
//!    `--labels FILE` (one label per line, the model's order, without the blank) for another
//!    label set; then (or with `--load-only`) only the load is timed.
//! 2. Beam-search time per audio second on synthetic log-probs: random sentences of lexicon
//!    words, each token held 1 to 3 frames at probability 0.3 to 0.9 (the rest spread over
//!    blank and two random other tokens), `<wb>` after each word, a blank frame or two between
//!    tokens; a synthetic unigram + bigram LM over the words. Widths 50 (flashlight's beam) and
//!    128, smearing off and on; also the word error rate against the sentences, as a sanity
//!    check of the search (not of any model).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use quartznet_engine::decode::{BeamConfig, BeamSearchDecoder, DecoderConfig, Smearing};
use quartznet_engine::lexicon::PronunciationLexicon;
use quartznet_engine::lm::NgramModel;
use quartznet_engine::metrics::edit_distance;

const WORDS: usize = 52_000;
const TOKENS: usize = 189;
const FRAME_SECONDS: f64 = 0.02;
const BOUNDARY: &str = "<wb>";

/// A small reproducible random number generator (64-bit LCG, high bits).
struct Random(u64);

impl Random {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        ((self.next() * n as f64) as usize).min(n - 1)
    }
}

/// 189 phoneme-like tokens (IPA letters, some of two code points, one literal space) and
/// `<wb>`: the phoneme model's shape.
fn synthetic_labels() -> Vec<String> {
    let mut labels: Vec<String> = vec![" ".into()];
    let letters = ('a'..='z')
        .chain('ɐ'..='ʯ')
        .chain('α'..='ω')
        .chain('ᴀ'..='ᴢ');
    for c in letters {
        labels.push(c.to_string());
        if labels.len().is_multiple_of(3) {
            labels.push(format!("{c}ː"));
        }
        if labels.len() >= TOKENS {
            break;
        }
    }
    labels.truncate(TOKENS);
    labels.push(BOUNDARY.into());
    labels
}

/// The synthetic lexicon: `(word, spelling)` lines; word `i` is `w<i>`.
fn synthetic_lexicon(labels: &[String], random: &mut Random) -> Vec<(String, Vec<usize>)> {
    // Tokens 1.. (not the space token, never the boundary), a few far more frequent, as
    // phonemes are.
    let token = |random: &mut Random| {
        let r = random.next();
        1 + (r * r * (TOKENS - 1) as f64) as usize
    };
    let mut entries = Vec::new();
    for w in 0..WORDS {
        let word = format!("w{w}");
        let variants = 1 + usize::from(random.next() < 0.25) + usize::from(random.next() < 0.05);
        for _ in 0..variants {
            let len = 3 + random.below(8);
            let spelling: Vec<usize> = (0..len).map(|_| token(random)).collect();
            entries.push((word.clone(), spelling));
        }
        // Homophones: one word in fifty shares the previous word's first spelling.
        if w > 0 && random.next() < 0.02 {
            let previous = entries[entries.len() - 1 - variants].1.clone();
            entries.push((word.clone(), previous));
        }
    }
    debug_assert!(
        entries
            .iter()
            .all(|(_, s)| s.iter().all(|&t| t < labels.len() - 1))
    );
    entries
}

fn write_lexicon(path: &Path, labels: &[String], entries: &[(String, Vec<usize>)]) {
    let file = std::fs::File::create(path).expect("a temporary file");
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    writeln!(gz, "# synthetic lexicon").unwrap();
    for (word, spelling) in entries {
        let tokens: Vec<&str> = spelling.iter().map(|&t| labels[t].as_str()).collect();
        writeln!(gz, "{word}\t{}", tokens.join(" ")).unwrap();
    }
    gz.finish().unwrap();
}

/// A unigram + bigram ARPA model over the words: Zipf-like unigrams, and for each of the
/// 2,000 most frequent words a likely next word.
fn synthetic_lm(random: &mut Random) -> NgramModel {
    let mut arpa = String::new();
    let bigrams = 2000;
    arpa.push_str(&format!(
        "\\data\\\nngram 1={}\nngram 2={bigrams}\n\n\\1-grams:\n",
        WORDS + 3
    ));
    arpa.push_str("-3.0\t<unk>\n-99\t<s>\t0\n-1.5\t</s>\n");
    for w in 0..WORDS {
        let logp = -1.5 - 3.5 * ((w + 1) as f64).log10() / (WORDS as f64).log10();
        arpa.push_str(&format!("{logp:.3}\tw{w}\t-0.3\n"));
    }
    arpa.push_str("\n\\2-grams:\n");
    for w in 0..bigrams {
        arpa.push_str(&format!("-0.7\tw{w} w{}\n", random.below(WORDS)));
    }
    arpa.push_str("\n\\end\\\n");
    NgramModel::parse(arpa.as_bytes()).expect("a valid synthetic LM")
}

/// Log-prob frames of `sentence` (each word's first spelling).
fn frames_of(
    sentence: &[usize],
    spellings: &[Vec<usize>],
    boundary: usize,
    random: &mut Random,
    out: &mut Vec<f32>,
) {
    let vocab = boundary + 2;
    let blank = vocab - 1;
    let frame = |label: usize, p: f64, random: &mut Random, out: &mut Vec<f32>| {
        let mut row = vec![1e-6f64; vocab];
        let rest = 1.0 - p;
        row[label] += p;
        row[blank] += rest * 0.4;
        row[1 + random.below(TOKENS - 1)] += rest * 0.4;
        row[1 + random.below(TOKENS - 1)] += rest * 0.2;
        let sum: f64 = row.iter().sum();
        out.extend(row.iter().map(|x| (x / sum).ln() as f32));
    };
    for &w in sentence {
        for &token in &spellings[w] {
            for _ in 0..1 + random.below(3) {
                frame(token, 0.3 + 0.6 * random.next(), random, out);
            }
            for _ in 0..1 + random.below(2) {
                frame(blank, 0.9, random, out);
            }
        }
        frame(boundary, 0.3 + 0.6 * random.next(), random, out);
        frame(blank, 0.9, random, out);
    }
}

fn labels_from(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("a readable label file")
        .lines()
        .map(String::from)
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let given_labels = args
        .iter()
        .position(|a| a == "--labels")
        .map(|i| labels_from(Path::new(&args[i + 1])));
    let given: Option<PathBuf> = args
        .iter()
        .enumerate()
        .find(|&(i, a)| !a.starts_with("--") && (i == 0 || args[i - 1] != "--labels"))
        .map(|(_, a)| PathBuf::from(a));
    let labels = given_labels.clone().unwrap_or_else(synthetic_labels);
    let mut random = Random(42);
    let entries = synthetic_lexicon(&labels, &mut random);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = given.clone().unwrap_or_else(|| {
        let path = dir.path().join("lexicon.txt.gz");
        write_lexicon(&path, &labels, &entries);
        path
    });
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    let mut best = f64::INFINITY;
    let mut lexicon = None;
    for _ in 0..5 {
        let start = Instant::now();
        let loaded = PronunciationLexicon::load(&path, &labels, BOUNDARY).expect("a lexicon");
        best = best.min(start.elapsed().as_secs_f64());
        lexicon = Some(loaded);
    }
    let lexicon = lexicon.expect("loaded");
    println!(
        "lexicon {}: {} bytes, {} words, {} spellings: load {:.1} ms (best of 5)",
        path.display(),
        size,
        lexicon.len(),
        lexicon.spellings(),
        best * 1000.0
    );
    if given_labels.is_some() || given.is_some() || args.iter().any(|a| a == "--load-only") {
        return;
    }

    let lexicon = Arc::new(lexicon);
    let lm = Arc::new(synthetic_lm(&mut random));
    let mut first = vec![Vec::new(); WORDS];
    for (word, spelling) in entries.iter().rev() {
        let w: usize = word[1..].parse().expect("synthetic word names");
        first[w] = spelling.clone();
    }
    let boundary = labels.len() - 1;
    let mut sentences = Vec::new();
    let mut logprobs = Vec::new();
    for _ in 0..40 {
        // Frequent words more often, as text has them.
        let sentence: Vec<usize> = (0..12)
            .map(|_| {
                let r = random.next();
                (r * r * r * WORDS as f64) as usize
            })
            .collect();
        let mut lp = Vec::new();
        frames_of(&sentence, &first, boundary, &mut random, &mut lp);
        sentences.push(sentence);
        logprobs.push(lp);
    }
    let vocab = labels.len() + 1;
    let frames: usize = logprobs.iter().map(|lp| lp.len() / vocab).sum();
    let audio = frames as f64 * FRAME_SECONDS;
    for width in [50, 128] {
        for smearing in [Smearing::Off, Smearing::MaxUnigram] {
            let beam = BeamConfig {
                lm: Arc::clone(&lm),
                beam_width: width,
                lm_weight: 0.434,
                word_bonus: 1.0,
                unk_penalty: None,
                commit_delay_frames: 50,
                lexicon: Some(Arc::clone(&lexicon)),
                smearing,
                hotwords: None,
            };
            let ctc = DecoderConfig {
                word_gap_frames: 15,
                ..DecoderConfig::default()
            };
            let built = Instant::now();
            let mut d = BeamSearchDecoder::new(labels.clone(), ctc, beam).expect("a decoder");
            let build_ms = built.elapsed().as_secs_f64() * 1000.0;
            let start = Instant::now();
            let (mut errors, mut total) = (0, 0);
            for (sentence, lp) in sentences.iter().zip(&logprobs) {
                let mut words = Vec::new();
                for chunk in lp.chunks(50 * vocab) {
                    words.extend(d.push(chunk, chunk.len() / vocab));
                }
                words.extend(d.finish());
                let hypothesis: Vec<String> = words.into_iter().map(|w| w.text).collect();
                let reference: Vec<String> = sentence.iter().map(|w| format!("w{w}")).collect();
                errors += edit_distance(&reference, &hypothesis);
                total += reference.len();
            }
            let elapsed = start.elapsed().as_secs_f64();
            println!(
                "width {width:3}, smearing {smearing:?}: {:.2} ms per audio second ({audio:.0} s of audio), WER {:.1} %, decoder built in {build_ms:.1} ms",
                elapsed * 1000.0 / audio,
                100.0 * errors as f64 / total as f64,
            );
        }
    }
}

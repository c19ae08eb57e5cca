// SPDX-License-Identifier: MPL-2.0
//! CTC decoding: log-probabilities in, timed words out. Greedy decoding is NeMo's, exactly;
//! beam search adds a word n-gram language model. Both decode frame by frame, so the words
//! never depend on how the frames are split into calls (see `docs/DECODING.md`).

mod beam;
mod confidence;
mod greedy;
pub mod hotwords;
pub mod pieces;
pub mod spotter;

pub use beam::{BeamConfig, BeamSearchDecoder, Smearing};
pub use confidence::{
    ConfidenceAggregation, ConfidenceConfig, ConfidenceMeasure, EntropyKind, EntropyNorm,
    frame_confidence,
};
pub use greedy::{GreedyCtcDecoder, greedy_transcript};

use crate::error::{Error, Result};

/// One decoded word. Frames are the model's output frames counted from the start of the
/// stream (or from the value given to [`GreedyCtcDecoder::reset`]); QuartzNet output frames
/// are 20 ms (10 ms hop x 2 subsampling), so seconds = frame * 0.02.
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    /// The word's labels, concatenated; with a pronunciation lexicon (phoneme models), the
    /// lexicon's word its phonemes spell.
    pub text: String,
    /// Space labels the model emitted between the previous word and this one (before the
    /// first word: since the stream started); for a sub-word model, the spaces its pieces'
    /// `▁` (and the unknown surface) wrote there, as NeMo's text has them. 0 means this word continues the previous
    /// one: the decoder ended that word only for timing (a word gap or the maximum word
    /// length, see [`DecoderConfig`]), the model emitted no space, so the transcript joins
    /// the two. [`transcript`] writes these separators, which is how the text stays the
    /// model's however words are cut.
    pub spaces_before: u32,
    /// First frame of the word's first token (a phoneme model's word boundary `<wb>` is no
    /// token of the word). `start_frame < end_frame`, except for a word
    /// a streaming model put entirely before the stream start (NeMo's buffered inference
    /// decodes those frames too), which lies at `[0, 0)`.
    pub start_frame: u64,
    /// One past the last frame of the word's last token (exclusive).
    pub end_frame: u64,
    /// The word's confidence in `[0, 1]` (0: the model's output was uniform over the
    /// vocabulary; 1: certain): [`DecoderConfig::confidence`]'s measure of each frame,
    /// aggregated over each token's frames, then over the word's tokens (NeMo's word
    /// confidence; see `docs/CONFIDENCE.md` for what the default means and how well it
    /// tells right from wrong words). A word cut for timing (`spaces_before == 0`) has its
    /// own.
    pub confidence: f32,
}

impl Word {
    /// The word as it appears in the transcript: its separator, then its text.
    pub fn write_to(&self, out: &mut String) {
        out.extend(std::iter::repeat_n(' ', self.spaces_before as usize));
        out.push_str(&self.text);
    }
}

/// The text of consecutive words exactly as the model emitted it: each word preceded by its
/// separator ([`Word::spaces_before`]). Over a whole stream decoded greedily this is NeMo's
/// greedy transcript byte for byte, except for spaces after the last word (no word carries
/// them).
pub fn transcript(words: &[Word]) -> String {
    let mut out = String::with_capacity(words.iter().map(|w| w.text.len() + 1).sum());
    for word in words {
        word.write_to(&mut out);
    }
    out
}

/// How words are cut and scored, shared by both decoders.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DecoderConfig {
    /// Complete the pending word once this many consecutive frames whose argmax is blank
    /// have followed its last token. A live stream needs this because speakers often pause
    /// without the model emitting a space. Timing only: with greedy decoding, a word
    /// continued after the gap without a space is output with `spaces_before == 0`, so the
    /// text is unchanged. 0 = never complete a word on silence alone.
    pub word_gap_frames: u32,
    /// Complete a word once it has lasted this many frames, even if it goes on (the rest
    /// is output as its continuation, `spaces_before == 0`). Live output can only advance
    /// past a completed word, so this
    /// bounds how long a model that never stops emitting characters (an untrained one, or
    /// noise) can hold text and gap events back. 0 = no limit.
    pub max_word_frames: u32,
    /// How word confidences are computed (measure and aggregation).
    pub confidence: ConfidenceConfig,
}

/// How to decode: the word-splitting and confidence settings, plus beam-search settings when
/// a language model is used.
#[derive(Debug, Clone, Default)]
pub struct DecodingOptions {
    /// Word cutting and confidence.
    pub ctc: DecoderConfig,
    /// `None`: greedy decoding.
    pub beam: Option<BeamConfig>,
}

impl From<DecoderConfig> for DecodingOptions {
    fn from(ctc: DecoderConfig) -> Self {
        Self { ctc, beam: None }
    }
}

/// The one decoder interface the streaming engine runs: greedy or beam search.
// One per stream: the greedy decoder's size does not matter, an indirection on every frame
// would.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum CtcDecoder {
    /// NeMo's greedy decoding.
    Greedy(GreedyCtcDecoder),
    /// Prefix beam search with a word language model.
    Beam(Box<BeamSearchDecoder>),
}

impl CtcDecoder {
    /// `labels` are the model's vocabulary without the blank (which is last).
    pub fn new(labels: Vec<String>, options: DecodingOptions) -> Result<Self> {
        Ok(match options.beam {
            None => Self::Greedy(GreedyCtcDecoder::new(labels, options.ctc)?),
            Some(beam) => Self::Beam(Box::new(BeamSearchDecoder::new(labels, options.ctc, beam)?)),
        })
    }

    /// The decoder for `description`'s model: its labels, and how they make words
    /// (characters, phonemes through a lexicon, or SentencePiece pieces).
    pub fn for_model(
        description: &crate::model::ModelDescription,
        options: DecodingOptions,
    ) -> Result<Self> {
        let Some(table) = description.units.pieces() else {
            return Self::new(description.labels.clone(), options);
        };
        Ok(match options.beam {
            None => Self::Greedy(GreedyCtcDecoder::with_pieces(table.clone(), options.ctc)?),
            Some(beam) => Self::Beam(Box::new(BeamSearchDecoder::with_pieces(
                table,
                options.ctc,
                beam,
            )?)),
        })
    }

    /// Decodes `frames` rows of log-probs; returns the words that became final.
    pub fn push(&mut self, logprobs: &[f32], frames: usize) -> Vec<Word> {
        match self {
            Self::Greedy(d) => d.push(logprobs, frames),
            Self::Beam(d) => d.push(logprobs, frames),
        }
    }

    /// Words heard but not final yet, each with its own times (greedy decoding: at most
    /// the word being spoken; beam search: the best hypothesis's words that may still
    /// change).
    pub fn pending(&self) -> Vec<Word> {
        match self {
            Self::Greedy(d) => d.pending().into_iter().collect(),
            Self::Beam(d) => d.pending(),
        }
    }

    /// The earliest frame a word not yet output may start at (`None`: all time up to the
    /// last frame pushed is settled).
    pub fn unsettled_from(&self) -> Option<u64> {
        match self {
            Self::Greedy(d) => d.pending().map(|w| w.start_frame),
            Self::Beam(d) => d.unsettled_from(),
        }
    }

    /// End of stream or segment: the remaining words.
    pub fn finish(&mut self) -> Vec<Word> {
        match self {
            Self::Greedy(d) => d.finish().into_iter().collect(),
            Self::Beam(d) => d.finish(),
        }
    }

    /// Space tokens after the last word output (greedy decoding; the beam search spells
    /// words, not spaces): after [`Self::finish`], what the text ends with.
    pub fn trailing_spaces(&self) -> u32 {
        match self {
            Self::Greedy(d) => d.trailing_spaces(),
            Self::Beam(_) => 0,
        }
    }

    /// Whether this is the beam search (which holds words back up to its commit delay).
    pub fn is_beam_search(&self) -> bool {
        matches!(self, Self::Beam(_))
    }

    /// The frame the next pushed row is.
    pub fn next_frame(&self) -> u64 {
        match self {
            Self::Greedy(d) => d.next_frame(),
            Self::Beam(d) => d.next_frame(),
        }
    }

    /// Forgets the stream; the next frame pushed is `next_frame`.
    pub fn reset(&mut self, next_frame: u64) {
        match self {
            Self::Greedy(d) => d.reset(next_frame),
            Self::Beam(d) => d.reset(next_frame),
        }
    }
}

/// The punctuation NeMo finds in a vocabulary (`extract_punctuation_from_vocab`): every
/// character of Unicode category P in a label that is not a special token (`[..]`, `<..>`,
/// `##..`, `▁..` or blank). NeMo's CTC decoding removes one space before each of them
/// (`decode_tokens_to_str_with_strip_punctuation`), so `don 't` becomes `don't`; for the
/// English character models that is the apostrophe.
fn vocabulary_punctuation(labels: &[String]) -> Vec<char> {
    use unicode_general_category::{GeneralCategory as G, get_general_category};
    let special = |l: &str| {
        (l.starts_with('[') && l.ends_with(']') && l.len() >= 2)
            || (l.starts_with('<') && l.ends_with('>') && l.len() >= 2)
            || l.starts_with("##")
            || l.starts_with('\u{2581}')
            || l.trim().is_empty()
    };
    let mut found: Vec<char> = labels
        .iter()
        .filter(|l| !special(l))
        .flat_map(|l| l.chars())
        .filter(|&c| {
            matches!(
                get_general_category(c),
                G::ConnectorPunctuation
                    | G::DashPunctuation
                    | G::OpenPunctuation
                    | G::ClosePunctuation
                    | G::InitialPunctuation
                    | G::FinalPunctuation
                    | G::OtherPunctuation
            )
        })
        .collect();
    found.sort_unstable();
    found.dedup();
    found
}

/// For each label, whether it starts with vocabulary punctuation (a word it opens loses one
/// space before it, as in NeMo's text).
fn opens_with_punctuation(labels: &[String]) -> Vec<bool> {
    let punctuation = vocabulary_punctuation(labels);
    labels
        .iter()
        .map(|l| l.chars().next().is_some_and(|c| punctuation.contains(&c)))
        .collect()
}

/// Labels must exist and none may be empty (it would make words without text).
fn check_labels(labels: &[String]) -> Result<()> {
    if labels.is_empty() {
        return Err(Error::Settings(
            "CTC decoder needs at least one label".into(),
        ));
    }
    if let Some(i) = labels.iter().position(|l| l.is_empty()) {
        return Err(Error::Settings(format!("CTC label {i} is an empty string")));
    }
    Ok(())
}

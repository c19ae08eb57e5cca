// SPDX-License-Identifier: MPL-2.0
//! The CTC decoder a recogniser runs: greedy (NeMo's, exact) or beam search with a word
//! language model. Both decode frame by frame and emit timed words.

use crate::beam::{BeamConfig, BeamSearchDecoder};
use crate::ctc::{DecoderConfig, GreedyCtcDecoder, Word};

/// How to decode: the word-splitting and confidence settings, plus beam-search settings when
/// a language model is used.
#[derive(Debug, Clone, Default)]
pub struct DecodingOptions {
    pub ctc: DecoderConfig,
    /// `None`: greedy decoding.
    pub beam: Option<BeamConfig>,
}

impl From<DecoderConfig> for DecodingOptions {
    fn from(ctc: DecoderConfig) -> Self {
        Self { ctc, beam: None }
    }
}

#[derive(Debug, Clone)]
pub enum CtcDecoder {
    Greedy(GreedyCtcDecoder),
    Beam(Box<BeamSearchDecoder>),
}

impl CtcDecoder {
    /// `labels` are the model's vocabulary without the blank (which is last).
    pub fn new(labels: Vec<String>, options: DecodingOptions) -> Result<Self, String> {
        Ok(match options.beam {
            None => Self::Greedy(GreedyCtcDecoder::new(labels, options.ctc)?),
            Some(beam) => Self::Beam(Box::new(BeamSearchDecoder::new(labels, options.ctc, beam)?)),
        })
    }

    /// Decodes `frames` rows of log-probs; returns the words that became final.
    pub fn push(&mut self, logprobs: &[f32], frames: usize) -> Vec<Word> {
        match self {
            Self::Greedy(d) => d.push(logprobs, frames),
            Self::Beam(d) => d.push(logprobs, frames),
        }
    }

    /// Text heard but not final yet.
    pub fn pending(&self) -> Option<Word> {
        match self {
            Self::Greedy(d) => d.pending(),
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

    pub fn reset(&mut self, next_frame: u64) {
        match self {
            Self::Greedy(d) => d.reset(next_frame),
            Self::Beam(d) => d.reset(next_frame),
        }
    }
}

// SPDX-License-Identifier: MPL-2.0
//! User choices shared by the element and the command-line client, and how they turn a
//! model description into the frontend and decoder settings actually run.

use std::path::PathBuf;

use crate::beam::BeamConfig;
use crate::ctc::DecoderConfig;
use crate::decoder::DecodingOptions;
use crate::description::ModelDescription;
use crate::frontend::{FrontendConfig, Normalization, PaddingMode};
use crate::lm;

/// Feature normalisation as the user asks for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NormalizationChoice {
    /// As the model description says (per-feature models get per-window statistics).
    #[default]
    Auto,
    /// Per-feature statistics over each window (over the utterance offline).
    PerWindow,
    /// The model's fixed statistics, else NeMo's streaming demo constants.
    Fixed,
}

/// Frontend edge padding as the user asks for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PaddingChoice {
    #[default]
    Auto,
    Reflect,
    Zeros,
}

/// Which CTC decoder to run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DecoderChoice {
    /// Beam search when a language model is given or the model's description names one,
    /// greedy otherwise.
    #[default]
    Auto,
    /// NeMo's greedy decoding (exactly NeMo's transcript), even if a language model exists.
    Greedy,
    /// Beam search with a language model (an error without one).
    Beam,
}

/// Beam width of the bundled English model's evaluation (see models/MODEL_CARD.md).
pub const DEFAULT_BEAM_WIDTH: u32 = 64;
/// LM weight and word bonus tuned for the bundled model and LM on the synthetic dev set
/// (tools/lm/tune.py), never on the evaluation sets.
pub const DEFAULT_LM_WEIGHT: f32 = 0.5;
pub const DEFAULT_WORD_BONUS: f32 = 1.0;
/// How long a word of the best beam-search hypothesis waits for the others to agree before
/// it is output anyway.
pub const COMMIT_DELAY_MS: u32 = 1000;

/// How long a word may take to be spoken before the text that holds it is late: words of
/// nearly all speech are shorter. Text is held back after a word starts by the word itself,
/// the silence that completes it (`word-gap-ms`) and, with beam search, the commit delay;
/// the element reports that hold in its latency and moves the timestamp of text held longer
/// forward, so a live sink never receives text late (see `text_hold_ms`).
pub const WORD_HOLD_MS: u32 = 1000;

/// The longest that decoding may hold a word's text back after the word starts, beyond the
/// chunk and right context: part of the latency the element reports.
pub fn text_hold_ms(word_gap_ms: u32, beam_search: bool) -> u32 {
    let commit = if beam_search { COMMIT_DELAY_MS } else { 0 };
    WORD_HOLD_MS + word_gap_ms + commit
}

/// The decoder settings a user chose.
#[derive(Clone, Debug, PartialEq)]
pub struct DecoderChoices {
    pub decoder: DecoderChoice,
    /// Overrides the model description's language model.
    pub lm_path: Option<PathBuf>,
    pub beam_width: u32,
    pub lm_weight: f32,
    pub word_bonus: f32,
    pub word_gap_ms: u32,
}

impl Default for DecoderChoices {
    fn default() -> Self {
        Self {
            decoder: DecoderChoice::Auto,
            lm_path: None,
            beam_width: DEFAULT_BEAM_WIDTH,
            lm_weight: DEFAULT_LM_WEIGHT,
            word_bonus: DEFAULT_WORD_BONUS,
            word_gap_ms: 600,
        }
    }
}

/// The decoder to run for `description` under `choices`; loads (or reuses) the language
/// model. Errors name the file and what is wrong with it.
pub fn decoding_options(
    description: &ModelDescription,
    choices: &DecoderChoices,
) -> Result<DecodingOptions, String> {
    let ctc = decoder_config(description, choices.word_gap_ms);
    let lm_path = choices
        .lm_path
        .clone()
        .or_else(|| description.language_model.clone());
    let lm_path = match (choices.decoder, lm_path) {
        (DecoderChoice::Greedy, _) | (DecoderChoice::Auto, None) => return Ok(ctc.into()),
        (DecoderChoice::Beam, None) => {
            return Err(format!(
                "beam-search decoding needs a word language model (ARPA): set lm-path; the model description ({}) names none",
                description.source
            ));
        }
        (_, Some(path)) => path,
    };
    let lm = lm::load_shared(&lm_path)?;
    Ok(DecodingOptions {
        ctc,
        beam: Some(BeamConfig {
            lm,
            beam_width: choices.beam_width as usize,
            lm_weight: choices.lm_weight,
            word_bonus: choices.word_bonus,
            commit_delay_frames: ms_to_frames(description, COMMIT_DELAY_MS),
        }),
    })
}

fn ms_to_frames(description: &ModelDescription, ms: u32) -> u32 {
    let frame_ms =
        description.samples_per_output_frame() as f64 * 1000.0 / f64::from(description.sample_rate);
    (f64::from(ms) / frame_ms).round() as u32
}

/// The frontend to run: the model's, with the user's normalisation and padding.
pub fn frontend_for(
    description: &ModelDescription,
    normalize: NormalizationChoice,
    padding: PaddingChoice,
) -> FrontendConfig {
    let mut frontend = description.frontend.clone();
    match normalize {
        NormalizationChoice::Auto => {}
        NormalizationChoice::PerWindow => frontend.normalization = Normalization::PerFeature,
        NormalizationChoice::Fixed => {
            if !matches!(frontend.normalization, Normalization::Fixed { .. }) {
                frontend.normalization = Normalization::nemo_streaming_demo();
            }
        }
    }
    match padding {
        PaddingChoice::Auto => {}
        PaddingChoice::Reflect => frontend.padding = PaddingMode::Reflect,
        PaddingChoice::Zeros => frontend.padding = PaddingMode::Zeros,
    }
    frontend
}

/// The longest a word may last before it is completed anyway (see
/// `DecoderConfig::max_word_frames`): far beyond any spoken English word, so it only acts on
/// runaway output, where it bounds how long live text and gap events are held back.
pub const MAX_WORD_MS: u32 = 3000;

/// Decoder settings with the word gap and the word length limit in output frames.
pub fn decoder_config(description: &ModelDescription, word_gap_ms: u32) -> DecoderConfig {
    let frames = |ms: u32| ms_to_frames(description, ms);
    DecoderConfig {
        word_gap_frames: frames(word_gap_ms),
        max_word_frames: frames(MAX_WORD_MS),
        ..DecoderConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_override_the_description() {
        let d = ModelDescription::default();
        assert_eq!(
            frontend_for(&d, NormalizationChoice::Auto, PaddingChoice::Auto),
            d.frontend
        );
        let f = frontend_for(&d, NormalizationChoice::Fixed, PaddingChoice::Zeros);
        assert_eq!(f.padding, PaddingMode::Zeros);
        assert!(
            matches!(f.normalization, Normalization::Fixed { ref mean, .. } if mean.len() == 64)
        );
        assert_eq!(decoder_config(&d, 600).word_gap_frames, 30);
    }
}

// SPDX-License-Identifier: MPL-2.0
//! User choices shared by the element and the command-line client, and how they turn a
//! model description into the frontend and decoder settings actually run.

use crate::ctc::DecoderConfig;
use crate::description::ModelDescription;
use crate::frontend::{FrontendConfig, Normalization, PaddingMode};

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
    let frame_ms =
        description.samples_per_output_frame() as f64 * 1000.0 / f64::from(description.sample_rate);
    let frames = |ms: u32| (f64::from(ms) / frame_ms).round() as u32;
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

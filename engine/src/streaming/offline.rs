// SPDX-License-Identifier: MPL-2.0
//! Whole-utterance recognition: what NeMo's offline `transcribe()` computes.

use crate::decode::{CtcDecoder, DecodingOptions, Word};
use crate::error::Result;
use crate::frontend::{FeatureExtractor, Features, FrontendConfig};
use crate::model::{AcousticModel, ModelDescription, ModelInput};

/// The whole utterance in one window: what NeMo's offline `transcribe()` computes (without
/// its pad_to columns, which an exported graph would treat as audio).
pub struct OfflineResult {
    /// The whole utterance's features, `[n_mels][T]` (a waveform model's: the samples, one
    /// band).
    pub features: Features,
    /// Log-probs, `[frames][vocab]`.
    pub logprobs: Vec<f32>,
    /// Output frames.
    pub frames: usize,
    /// The decoded words.
    pub words: Vec<Word>,
    /// Spaces the model emitted after the last word (the end of NeMo's text).
    pub trailing_spaces: u32,
}

/// Recognises `samples` as one utterance: an [`crate::Error::Settings`] when the utterance is
/// longer than the model's position table ([`ModelDescription::max_output_frames`]), which
/// one run cannot hold (recognise such audio in windows).
pub fn recognize_offline<M: AcousticModel>(
    model: &mut M,
    description: &ModelDescription,
    frontend: FrontendConfig,
    decoder: impl Into<DecodingOptions>,
    samples: &[f32],
) -> Result<OfflineResult> {
    // Refuses what cannot be decoded before the model runs.
    let mut decoder = CtcDecoder::for_model(description, decoder.into())?;
    let mut features = Features::default();
    match description.input {
        ModelInput::LogMel => FeatureExtractor::new(frontend)?.compute(samples, &mut features),
        ModelInput::Waveform => {
            features = Features {
                n_mels: 1,
                frames: samples.len(),
                data: samples.to_vec(),
            }
        }
    }
    // The whole utterance is one run: it must fit the encoder's position table.
    description.check_output_frames(
        features
            .frames
            .div_ceil(description.input_frames_per_output_frame()),
        &format!(
            "an utterance of {:.1} s",
            samples.len() as f64 / f64::from(description.sample_rate)
        ),
        "recognise it in windows (streaming) instead of as one utterance",
    )?;
    let mut logprobs = Vec::new();
    let frames = if features.frames == 0 {
        0
    } else {
        super::infer_checked(model, &features, &mut logprobs)?
    };
    let mut words = decoder.push(&logprobs, frames);
    words.extend(decoder.finish());
    Ok(OfflineResult {
        features,
        logprobs,
        frames,
        words,
        trailing_spaces: decoder.trailing_spaces(),
    })
}

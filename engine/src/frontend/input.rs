// SPDX-License-Identifier: MPL-2.0
//! The model's input frame by frame, whatever the model takes: NeMo's log-mel features
//! computed here ([`FeatureStream`]), or the waveform itself for a model that carries its own
//! frontend, one "frame" per sample. The buffered windows are cut from these frames the same
//! way for both.

use super::{FeatureExtractor, FeatureStream, FrontendConfig};
use crate::error::Result;

/// What the model takes as input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ModelInput {
    /// NeMo's log-mel features, computed by this crate's frontend (the model description's `frontend`).
    #[default]
    LogMel,
    /// The waveform itself, f32 samples in [-1, 1] and its length: the model carries its own
    /// frontend, and no frontend runs here. `subsampling_factor` is then the samples per
    /// output frame.
    Waveform,
}

/// The largest sample (in [-1, 1]) that still counts as digital silence: 16 steps of 16-bit
/// audio, about -66 dBFS, above dither and -90 dB noise and below any room's noise floor in a
/// real recording.
pub const WAVEFORM_SILENCE: f32 = 16.0 / 32768.0;

/// Input frames of an endless signal, computed as the samples arrive.
// One per stream: the size of the waveform variant does not matter, an indirection on every
// push would.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum InputStream {
    /// Raw (unnormalised) log-mel frames, `n_mels` values each.
    LogMel(FeatureStream),
    /// The samples themselves (one value per frame); `pushed` counts them.
    Waveform {
        /// Samples since the stream started.
        pushed: u64,
    },
}

impl InputStream {
    /// The input `kind` takes, with `frontend`'s settings for log-mel features.
    pub fn new(kind: ModelInput, frontend: FrontendConfig) -> Result<Self> {
        Ok(match kind {
            ModelInput::LogMel => {
                Self::LogMel(FeatureStream::new(FeatureExtractor::new(frontend)?))
            }
            ModelInput::Waveform => Self::Waveform { pushed: 0 },
        })
    }

    /// Values per frame: mel bands, or 1.
    pub fn n_mels(&self) -> usize {
        match self {
            Self::LogMel(stream) => stream.n_mels(),
            Self::Waveform { .. } => 1,
        }
    }

    /// Samples a frame reads past its own hop (the FFT's reach beyond the hop; 0 for the
    /// waveform): what a chunk's last frame waits for beyond the chunk.
    pub fn reach(&self) -> usize {
        match self {
            Self::LogMel(stream) => {
                let config = stream.config();
                (config.n_fft / 2).saturating_sub(config.hop_length)
            }
            Self::Waveform { .. } => 0,
        }
    }

    /// Valid frames of a signal of `samples` samples.
    pub fn frame_count(&self, samples: u64) -> usize {
        match self {
            Self::LogMel(stream) => stream.frame_count(samples),
            Self::Waveform { .. } => samples as usize,
        }
    }

    /// Forgets the stream.
    pub fn reset(&mut self) {
        match self {
            Self::LogMel(stream) => stream.reset(),
            Self::Waveform { pushed } => *pushed = 0,
        }
    }

    /// Adds samples and appends every frame they complete to `out`; returns how many.
    pub fn push(&mut self, samples: &[f32], out: &mut Vec<f32>) -> usize {
        match self {
            Self::LogMel(stream) => stream.push(samples, out),
            Self::Waveform { pushed } => {
                *pushed += samples.len() as u64;
                out.extend_from_slice(samples);
                samples.len()
            }
        }
    }

    /// Ends the signal: appends the remaining frames, returns how many, and starts afresh.
    pub fn finish(&mut self, out: &mut Vec<f32>) -> usize {
        match self {
            Self::LogMel(stream) => stream.finish(out),
            Self::Waveform { pushed } => {
                *pushed = 0;
                0
            }
        }
    }

    /// What the window holds before the stream starts: silence in this input's terms
    /// (`log_mel_silence` for log-mel features, 0.0 for samples).
    pub fn silence(&self, log_mel_silence: f32) -> f32 {
        match self {
            Self::LogMel(_) => log_mel_silence,
            Self::Waveform { .. } => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_waveform_is_its_own_frames() {
        let mut input = InputStream::new(ModelInput::Waveform, FrontendConfig::default()).unwrap();
        let mut out = Vec::new();
        assert_eq!(input.push(&[0.5, -0.25], &mut out), 2);
        assert_eq!(input.push(&[0.125], &mut out), 1);
        assert_eq!(input.finish(&mut out), 0);
        assert_eq!(out, vec![0.5, -0.25, 0.125]);
        assert_eq!(
            (input.n_mels(), input.reach(), input.frame_count(7)),
            (1, 0, 7)
        );
        assert_eq!(input.silence(-16.6), 0.0);
    }

    #[test]
    fn log_mel_frames_are_the_feature_stream() {
        let config = FrontendConfig::default();
        let input = InputStream::new(ModelInput::LogMel, config.clone()).unwrap();
        assert_eq!(input.n_mels(), config.n_mels);
        assert_eq!(input.reach(), config.n_fft / 2 - config.hop_length);
        assert_eq!(input.silence(-16.6), -16.6);
    }
}

// SPDX-License-Identifier: MPL-2.0
//! The geometry of a streaming window: left context, chunk and right context, in samples.

use crate::config::RecognizerConfig;
use crate::model::ModelDescription;

/// Window geometry in samples; each a whole number of output frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowConfig {
    /// Left context: audio before the chunk.
    pub left: usize,
    /// The chunk recognised by each window.
    pub chunk: usize,
    /// Right context: audio after the chunk.
    pub right: usize,
}

impl WindowConfig {
    /// Converts durations in milliseconds to samples, rounding each to the nearest whole
    /// output frame (the chunk to at least one frame). Returns the geometry and whether any
    /// value had to be rounded.
    pub fn from_millis(
        left_ms: u32,
        chunk_ms: u32,
        right_ms: u32,
        sample_rate: u32,
        frame_samples: usize,
    ) -> (Self, bool) {
        let mut rounded = false;
        let mut to_samples = |ms: u32, min_frames: usize| {
            let samples = u64::from(ms) * u64::from(sample_rate) / 1000;
            let frames = ((samples as f64 / frame_samples as f64).round() as usize).max(min_frames);
            let exact = frames * frame_samples;
            rounded |=
                exact as u64 != samples || u64::from(ms) * u64::from(sample_rate) % 1000 != 0;
            exact
        };
        let config = Self {
            left: to_samples(left_ms, 0),
            chunk: to_samples(chunk_ms, 1),
            right: to_samples(right_ms, 0),
        };
        (config, rounded)
    }

    /// The window `config` asks for, for `description`'s model: each part rounded to whole
    /// output frames (the chunk to at least one), and made to fit the longest input the
    /// model takes ([`ModelDescription::max_input_samples`]); the flag says whether anything
    /// had to be rounded or shortened.
    pub fn for_model(config: &RecognizerConfig, description: &ModelDescription) -> (Self, bool) {
        let frame = description.samples_per_output_frame();
        let (window, rounded) = Self::from_millis(
            config.left_context_ms,
            config.chunk_ms,
            config.right_context_ms,
            description.sample_rate,
            frame,
        );
        match description.max_input_samples {
            Some(most) if window.window() > most => (window.fit(most, frame), true),
            _ => (window, rounded),
        }
    }

    /// The window shortened to at most `most` samples (but never below one frame of chunk):
    /// the chunk gives way first, as it only sets how often the model runs; then the
    /// contexts, the right one last (it holds the words being finished).
    fn fit(mut self, most: usize, frame: usize) -> Self {
        let whole = |samples: usize| samples / frame * frame;
        let others = self.left + self.right;
        self.chunk = whole(most.saturating_sub(others)).max(frame);
        if self.window() > most {
            self.left = whole(most.saturating_sub(self.chunk + self.right));
        }
        if self.window() > most {
            self.right = whole(most.saturating_sub(self.chunk + self.left));
        }
        self
    }

    /// Samples in a whole window.
    pub fn window(&self) -> usize {
        self.left + self.chunk + self.right
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn windows_fit_the_longest_model_input() {
        use super::WindowConfig;
        let w = WindowConfig {
            left: 40_000,
            chunk: 960_000,
            right: 40_000,
        };
        let fit = w.fit(480_000, 320);
        assert_eq!((fit.left, fit.right), (40_000, 40_000));
        assert_eq!(fit.window(), 480_000 / 320 * 320);
        let tiny = w.fit(1000, 320);
        assert_eq!((tiny.chunk, tiny.left, tiny.right), (320, 0, 640));
        assert!(tiny.window() <= 1000);
    }

    use super::*;

    #[test]
    fn default_window_is_whole_frames() {
        let config = RecognizerConfig::default();
        let (w, rounded) = WindowConfig::for_model(&config, &ModelDescription::default());
        assert_eq!((w.left, w.chunk, w.right), (19_200, 16_000, 9_600));
        assert!(!rounded);
    }
}

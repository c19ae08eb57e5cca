// SPDX-License-Identifier: MPL-2.0
//! The geometry of a streaming window: left context, chunk and right context, in samples.

use crate::config::RecognizerConfig;
use crate::error::Result;
use crate::model::ModelDescription;
use crate::streaming::StreamEdges;

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
    /// output frame, half a frame up (the chunk to at least one frame): at 80 ms frames
    /// 1000 ms is 1040, 600 ms 640 and 500 ms 480. Returns the geometry and whether any value
    /// had to be rounded (the element and the client say so:
    /// [`crate::config::WindowOverrides::warnings`] for the parts a user set).
    pub fn from_millis(
        left_ms: u32,
        chunk_ms: u32,
        right_ms: u32,
        sample_rate: u32,
        frame_samples: usize,
    ) -> (Self, bool) {
        let (left, left_rounded) = Self::part_samples(left_ms, 0, sample_rate, frame_samples);
        let (chunk, chunk_rounded) = Self::part_samples(chunk_ms, 1, sample_rate, frame_samples);
        let (right, right_rounded) = Self::part_samples(right_ms, 0, sample_rate, frame_samples);
        (
            Self { left, chunk, right },
            left_rounded || chunk_rounded || right_rounded,
        )
    }

    /// One window part of `ms` milliseconds in samples, rounded to the nearest whole output frame
    /// of `frame_samples` (half a frame up) and at least `min_frames` frames, and whether that
    /// changed it ([`from_millis`](Self::from_millis)).
    pub fn part_samples(
        ms: u32,
        min_frames: usize,
        sample_rate: u32,
        frame_samples: usize,
    ) -> (usize, bool) {
        let exact = u64::from(ms) * u64::from(sample_rate);
        let frame = frame_samples as u64 * 1000;
        // Nearest frame, half up, in integers: floor((2 x + f) / 2f) with x and f in samples x 1000.
        let frames = ((2 * exact + frame) / (2 * frame)).max(min_frames as u64) as usize;
        let samples = frames * frame_samples;
        (samples, samples as u64 * 1000 != exact)
    }

    /// The window `config` asks for, for `description`'s model: each part rounded to whole
    /// output frames (the chunk to at least one, see [`from_millis`](Self::from_millis)), and
    /// made to fit the longest input the model takes
    /// ([`ModelDescription::max_input_samples`]); the file windows
    /// ([`StreamEdges::Trimmed`], [`RecognizerConfig::for_files`], which nobody chose) also
    /// the model's position table ([`ModelDescription::max_output_frames`]), which any other
    /// window longer than it is refused for ([`check_position_table`](Self::check_position_table)).
    /// The flag says whether anything had to be rounded or shortened.
    pub fn for_model(config: &RecognizerConfig, description: &ModelDescription) -> (Self, bool) {
        let frame = description.samples_per_output_frame();
        let (window, rounded) = Self::from_millis(
            config.left_context_ms,
            config.chunk_ms,
            config.right_context_ms,
            description.sample_rate,
            frame,
        );
        let table = match config.edges {
            StreamEdges::Trimmed => description.max_output_frames.map(|f| f * frame),
            _ => None,
        };
        let most = match (description.max_input_samples, table) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match most {
            Some(most) if window.window() > most => (window.fit(most, frame), true),
            _ => (window, rounded),
        }
    }

    /// Refuses a window longer than the model's position table
    /// ([`ModelDescription::max_output_frames`]; NeMo's `pos_emb_max_len`, 5000 frames for
    /// NeMo's Conformers: 200 s at 40 ms frames, 400 s at 80 ms, more than the longest window
    /// the settings allow, 3 x [`crate::config::MAX_WINDOW_PART_MS`]): an
    /// [`crate::Error::Settings`] naming the window and the limit. Every buffer a stream runs
    /// is at most the window.
    pub fn check_position_table(&self, description: &ModelDescription) -> Result<()> {
        let frame = description.samples_per_output_frame();
        let ms = |samples: usize| samples as u64 * 1000 / u64::from(description.sample_rate);
        description.check_output_frames(
            self.window() / frame,
            &format!(
                "a window of {} ms (left context {} + chunk {} + right context {} ms)",
                ms(self.window()),
                ms(self.left),
                ms(self.chunk),
                ms(self.right)
            ),
            "choose a shorter left context, chunk or right context",
        )
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

    /// Sub-word models' 40 and 80 ms frames: each part to the nearest frame, half a frame up,
    /// the chunk to at least one frame; exact integers also at rates whose ms are not whole
    /// samples.
    #[test]
    fn parts_round_to_the_nearest_frame_half_up() {
        let at = |ms, frame| WindowConfig::part_samples(ms, 0, 16_000, frame);
        assert_eq!(at(1000, 1280), (16_640, true)); // 12.5 frames of 80 ms -> 13
        assert_eq!(at(600, 1280), (10_240, true)); // 7.5 -> 8
        assert_eq!(at(500, 1280), (7_680, true)); // 6.25 -> 6
        assert_eq!(at(300, 1280), (5_120, true)); // 3.75 -> 4
        assert_eq!(at(1200, 1280), (19_200, false));
        assert_eq!(at(1000, 640), (16_000, false)); // 25 frames of 40 ms
        assert_eq!(at(500, 640), (8_320, true)); // 12.5 -> 13
        assert_eq!(at(19, 640), (0, true));
        assert_eq!(WindowConfig::part_samples(19, 1, 16_000, 640), (640, true));
        assert_eq!(WindowConfig::part_samples(0, 1, 16_000, 640), (640, true));
        // 22.05 kHz, 512-sample frames (23.22 ms): 35 ms is 1.507 frames -> 2.
        assert_eq!(WindowConfig::part_samples(35, 0, 22_050, 512), (1024, true));
        let (w, rounded) = WindowConfig::from_millis(1200, 1000, 600, 16_000, 1280);
        assert_eq!((w.left, w.chunk, w.right), (19_200, 16_640, 10_240));
        assert!(rounded);
    }

    /// The file windows, which nobody chose, are fitted to a position table; any other window
    /// is left as asked (and refused by `check_position_table` when too long).
    #[test]
    fn file_windows_fit_the_position_table() {
        let description = ModelDescription {
            subsampling_factor: 4,
            max_output_frames: Some(512),
            ..ModelDescription::default()
        };
        let (files, shortened) =
            WindowConfig::for_model(&RecognizerConfig::for_files(), &description);
        assert!(shortened);
        // 2500 ms is 62.5 frames of 40 ms: 63.
        assert_eq!((files.left, files.right), (40_320, 40_320));
        assert_eq!(files.window(), 512 * 640);
        assert!(files.check_position_table(&description).is_ok());
        let long = RecognizerConfig {
            chunk_ms: 30_000,
            ..RecognizerConfig::default()
        };
        let (window, _) = WindowConfig::for_model(&long, &description);
        assert_eq!(window.chunk, 480_000);
        let e = window
            .check_position_table(&description)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a window of 31800 ms") && e.contains("512 frames = 20480 ms"),
            "{e}"
        );
        assert!(ModelDescription::default().max_output_frames.is_none());
    }

    #[test]
    fn default_window_is_whole_frames() {
        let config = RecognizerConfig::default();
        let (w, rounded) = WindowConfig::for_model(&config, &ModelDescription::default());
        assert_eq!((w.left, w.chunk, w.right), (19_200, 16_000, 9_600));
        assert!(!rounded);
    }
}

// SPDX-License-Identifier: MPL-2.0
//! The element's one conversion between samples and time. Every duration of samples and
//! every sample count of a duration goes through here, so they round the same way
//! everywhere, and saturate instead of overflowing: upstream timestamps and sample counts
//! can be anything, and `gst::ClockTime` arithmetic panics on overflow in debug builds.

use gst::prelude::*;

/// How far timestamps are trusted (see [`super::Sync`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tolerance {
    /// Timestamps this close to the sample clock are in step.
    pub tolerance: gst::ClockTime,
    /// How long a discrepancy beyond the tolerance (but not a jump) must last before the
    /// clock follows the timestamps.
    pub discont_wait: gst::ClockTime,
}

/// The timing constants of a recogniser, in samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    pub sample_rate: u32,
    /// Samples per output frame.
    pub frame_samples: u64,
    /// Samples per chunk: the longest hole filled with silence.
    pub chunk_samples: u64,
    /// Samples of silence after a word that end an utterance (the word gap; 0: only the
    /// end of the stream does).
    pub word_gap_samples: u64,
    /// How far timestamps are trusted.
    pub trust: Tolerance,
}

impl Clock {
    /// Duration of an output frame in seconds.
    pub fn frame_seconds(&self) -> f64 {
        self.frame_samples as f64 / f64::from(self.sample_rate)
    }

    /// Duration of `samples` (rounded down; saturating at `ClockTime::MAX`).
    pub fn time(&self, samples: u64) -> gst::ClockTime {
        Self::time_at(self.sample_rate, samples)
    }

    /// Samples in `time` (rounded to nearest; saturating).
    pub fn samples(&self, time: gst::ClockTime) -> u64 {
        Self::samples_at(self.sample_rate, time)
    }

    /// Samples in `frames` output frames (saturating).
    pub fn frame_samples_of(&self, frames: u64) -> u64 {
        frames.saturating_mul(self.frame_samples)
    }

    /// [`Clock::time`] at `rate` Hz, for callers without a recogniser's clock yet (0 Hz:
    /// `ClockTime::MAX`).
    pub fn time_at(rate: u32, samples: u64) -> gst::ClockTime {
        let ns = match rate {
            0 => u64::MAX,
            rate => samples
                .mul_div_floor(gst::ClockTime::SECOND.nseconds(), u64::from(rate))
                .unwrap_or(u64::MAX),
        };
        gst::ClockTime::from_nseconds(ns.min(gst::ClockTime::MAX.nseconds()))
    }

    /// [`Clock::samples`] at `rate` Hz.
    pub fn samples_at(rate: u32, time: gst::ClockTime) -> u64 {
        time.nseconds()
            .mul_div_round(u64::from(rate), gst::ClockTime::SECOND.nseconds())
            .unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_and_saturate() {
        assert_eq!(
            Clock::time_at(16_000, 16_001),
            gst::ClockTime::from_nseconds(1_000_062_500)
        );
        assert_eq!(
            Clock::time_at(3, 1),
            gst::ClockTime::from_nseconds(333_333_333)
        );
        assert_eq!(
            Clock::samples_at(3, gst::ClockTime::from_nseconds(500_000_000)),
            2
        );
        assert_eq!(
            Clock::samples_at(16_000, gst::ClockTime::from_mseconds(100)),
            1600
        );
        // Beyond what a ClockTime holds: the largest one, not GST_CLOCK_TIME_NONE (a panic).
        assert_eq!(Clock::time_at(1, u64::MAX), gst::ClockTime::MAX);
        assert_eq!(Clock::time_at(0, 1), gst::ClockTime::MAX);
        // More samples than a u64 holds.
        assert_eq!(Clock::samples_at(u32::MAX, gst::ClockTime::MAX), u64::MAX);
    }
}

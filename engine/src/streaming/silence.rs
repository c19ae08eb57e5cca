// SPDX-License-Identifier: MPL-2.0
//! Where a stream is digital silence, decided on its samples, one output frame at a time.
//!
//! The silence gate ([`super::StreamingRecognizer`]) must not depend on what the model takes
//! as input: a log-mel model's features of -90 dB noise are far above the log floor, and once
//! a buffer's statistics normalise them they look like speech to the model. The samples say
//! the same thing for every model family, so silence is decided there: an output frame is
//! silent when every sample of its span lies within [`WAVEFORM_SILENCE`].

use std::collections::VecDeque;

use crate::frontend::WAVEFORM_SILENCE;

/// Which output frames of a stream are digital silence, as its samples arrive.
#[derive(Debug, Clone)]
pub(super) struct SilenceTrack {
    /// Samples per output frame.
    frame_samples: usize,
    /// Whether each complete output frame from `first` on is silent.
    frames: VecDeque<bool>,
    first: i64,
    /// Samples of the output frame being filled, and whether one of them was loud.
    partial: usize,
    partial_loud: bool,
    /// The stream has ended: nothing follows its samples.
    ended: bool,
}

impl SilenceTrack {
    /// An empty stream of `frame_samples`-sample output frames.
    pub(super) fn new(frame_samples: usize) -> Self {
        Self {
            frame_samples,
            frames: VecDeque::new(),
            first: 0,
            partial: 0,
            partial_loud: false,
            ended: false,
        }
    }

    /// Forgets the stream.
    pub(super) fn reset(&mut self) {
        *self = Self::new(self.frame_samples);
    }

    /// Adds the stream's next samples.
    pub(super) fn push(&mut self, samples: &[f32]) {
        for &x in samples {
            self.partial_loud |= x.abs() > WAVEFORM_SILENCE;
            self.partial += 1;
            if self.partial == self.frame_samples {
                self.frames.push_back(!self.partial_loud);
                self.partial = 0;
                self.partial_loud = false;
            }
        }
    }

    /// Ends the stream: its last, incomplete frame is complete, and every frame after it
    /// (the padding the recogniser adds) is silent.
    pub(super) fn finish(&mut self) {
        if self.partial > 0 {
            self.frames.push_back(!self.partial_loud);
            self.partial = 0;
            self.partial_loud = false;
        }
        self.ended = true;
    }

    /// Whether output frame `frame` (of the stream; negative: before it) is known to be
    /// silent. Before the stream there is silence (the window's fill); a frame whose samples
    /// have not all arrived, or that was forgotten, counts as sound.
    pub(super) fn is_silent(&self, frame: i64) -> bool {
        if frame < 0 {
            return true;
        }
        let i = frame - self.first;
        if i < 0 {
            return false;
        }
        match self.frames.get(i as usize) {
            Some(&silent) => silent,
            None => self.ended,
        }
    }

    /// Whether every output frame of `frames` is silent.
    pub(super) fn all_silent(&self, mut frames: std::ops::Range<i64>) -> bool {
        frames.all(|f| self.is_silent(f))
    }

    /// Forgets the frames before `frame`.
    pub(super) fn discard_before(&mut self, frame: i64) {
        let drop = (frame - self.first).clamp(0, self.frames.len() as i64);
        self.frames.drain(..drop as usize);
        self.first += drop;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_silent_when_all_its_samples_are_quiet() {
        let mut track = SilenceTrack::new(4);
        let quiet = 16.0 / 32768.0;
        track.push(&[0.0, quiet, -quiet, 0.0]);
        track.push(&[0.0, 0.0, 17.0 / 32768.0, 0.0, 0.0]);
        assert!(track.is_silent(-1), "before the stream: the fill");
        assert!(track.is_silent(0));
        assert!(!track.is_silent(1), "one sample above the level");
        assert!(!track.is_silent(2), "not complete yet");
        track.finish();
        assert!(
            track.is_silent(2) && track.is_silent(100),
            "after the end: padding"
        );
        track.discard_before(1);
        assert!(!track.is_silent(0), "forgotten");
        assert!(track.all_silent(2..5) && !track.all_silent(1..5));
        track.reset();
        assert!(!track.is_silent(0));
    }
}

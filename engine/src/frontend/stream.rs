// SPDX-License-Identifier: MPL-2.0
//! Raw log-mel features of an endless signal, frame by frame.
//!
//! NeMo's buffered streaming (`FrameBatchASR`) computes the features of the whole signal once
//! and slides a window over them; a live stream gets the same features here: frame `i` is
//! computed as soon as the samples its FFT reads (`[i hop - n_fft/2, i hop + n_fft/2)`) have
//! arrived, from exactly the samples and edge padding the whole-signal frontend would use, so
//! every frame equals [`FeatureExtractor::compute_unnormalized`]'s frame of the whole signal,
//! bit for bit, and is computed once.

use std::collections::VecDeque;

use super::{FeatureExtractor, PaddingMode, reflect_index};

/// Streaming raw log-mel frontend (no normalisation: the buffers normalise).
#[derive(Debug, Clone)]
pub struct FeatureStream {
    extractor: FeatureExtractor,
    /// Preemphasised samples from stream sample `signal_start` on.
    signal: VecDeque<f32>,
    signal_start: u64,
    /// The last raw sample (preemphasis reads one sample back).
    last_raw: Option<f32>,
    pushed: u64,
    next_frame: u64,
}

impl FeatureStream {
    /// A stream with `extractor`'s settings (its normalisation is not used).
    pub fn new(extractor: FeatureExtractor) -> Self {
        Self {
            extractor,
            signal: VecDeque::new(),
            signal_start: 0,
            last_raw: None,
            pushed: 0,
            next_frame: 0,
        }
    }

    /// The frontend settings.
    pub fn config(&self) -> &super::FrontendConfig {
        self.extractor.config()
    }

    /// Mel bands per frame.
    pub fn n_mels(&self) -> usize {
        self.extractor.config.n_mels
    }

    /// Valid frames of a signal of `samples` samples (see [`FeatureExtractor::frame_count`]).
    pub fn frame_count(&self, samples: u64) -> usize {
        self.extractor.frame_count(samples as usize)
    }

    /// Frames computed so far.
    pub fn frames(&self) -> u64 {
        self.next_frame
    }

    /// Forgets the stream.
    pub fn reset(&mut self) {
        self.signal.clear();
        self.signal_start = 0;
        self.last_raw = None;
        self.pushed = 0;
        self.next_frame = 0;
    }

    /// Adds samples and appends every frame they complete to `out`, frame after frame
    /// (`n_mels` values each). Returns the number of frames appended.
    pub fn push(&mut self, samples: &[f32], out: &mut Vec<f32>) -> usize {
        let preemph = self.extractor.config.preemph;
        for &x in samples {
            // y[0] = x[0], y[n] = x[n] - a x[n-1]: two roundings, as torch computes it.
            let y = match self.last_raw {
                Some(prev) if preemph != 0.0 => x - preemph * prev,
                _ => x,
            };
            self.signal.push_back(y);
            self.last_raw = Some(x);
        }
        self.pushed += samples.len() as u64;
        let (hop, pad) = self.hop_and_pad();
        // Frame i reads samples up to i hop + pad (exclusive).
        let complete = if self.pushed >= pad {
            (self.pushed - pad) / hop + 1
        } else {
            0
        };
        // Only frames valid for the signal so far (the count only grows with the signal).
        let complete = complete.min(self.extractor.frame_count(self.pushed as usize) as u64);
        self.emit_until(complete, false, out)
    }

    /// Ends the signal: appends the remaining valid frames (the last ones read the edge
    /// padding, as in the whole-signal frontend) and returns how many; then starts afresh.
    pub fn finish(&mut self, out: &mut Vec<f32>) -> usize {
        let total = self.extractor.frame_count(self.pushed as usize) as u64;
        let n = self.emit_until(total, true, out);
        self.reset();
        n
    }

    fn hop_and_pad(&self) -> (u64, u64) {
        let config = &self.extractor.config;
        (config.hop_length as u64, (config.n_fft / 2) as u64)
    }

    /// Computes frames `[next_frame, end)`; `at_end`: the signal is complete, so samples
    /// past it are edge padding.
    fn emit_until(&mut self, end: u64, at_end: bool, out: &mut Vec<f32>) -> usize {
        if end <= self.next_frame {
            return 0;
        }
        let (hop, pad) = self.hop_and_pad();
        let (first, count) = (self.next_frame, (end - self.next_frame) as usize);
        let n_fft = self.extractor.config.n_fft;
        // The padded signal these frames read: stream samples [first hop - pad, ...).
        let from = first as i64 * hop as i64 - pad as i64;
        let len = (count - 1) * hop as usize + n_fft;
        let mut padded = std::mem::take(&mut self.extractor.padded);
        padded.clear();
        padded.extend((0..len as i64).map(|k| self.sample(from + k, at_end)));
        self.extractor.padded = padded;

        let n_mels = self.n_mels();
        let guard = self.extractor.config.log_guard;
        let base = out.len();
        out.resize(base + count * n_mels, 0.0);
        for t in 0..count {
            let start = t * hop as usize;
            self.extractor.power_spectrum(start..start + n_fft);
            let row = &mut out[base + t * n_mels..base + (t + 1) * n_mels];
            self.extractor
                .sparse_fb
                .apply(&self.extractor.power, |m, energy| {
                    row[m] = (energy + guard).ln();
                });
        }
        self.next_frame = end;
        // Keep what the next frame reads; for reflection also the stream's first samples
        // until no frame reflects them any more, and always the last `pad + 1`, which the
        // frames after the end reflect.
        let mut keep_from = (end * hop).saturating_sub(pad);
        if self.extractor.config.padding == PaddingMode::Reflect {
            keep_from = if keep_from <= pad {
                0
            } else {
                keep_from.min(self.pushed.saturating_sub(pad + 1))
            };
        }
        if keep_from > self.signal_start {
            let drop = ((keep_from - self.signal_start) as usize).min(self.signal.len());
            self.signal.drain(..drop);
            self.signal_start += drop as u64;
        }
        count
    }

    /// Preemphasised stream sample `i`, or the edge padding the whole-signal frontend puts
    /// there (before the start always; after the end only once the signal is complete).
    fn sample(&self, i: i64, at_end: bool) -> f32 {
        let len = self.pushed as i64;
        if i >= 0 && i < len {
            return self.signal[(i - self.signal_start as i64) as usize];
        }
        debug_assert!(i < 0 || at_end, "sample {i} has not arrived");
        match self.extractor.config.padding {
            PaddingMode::Zeros => 0.0,
            PaddingMode::Reflect if len == 0 => 0.0,
            PaddingMode::Reflect => {
                let j = reflect_index(i as isize, len as usize) as i64;
                self.signal[(j - self.signal_start as i64) as usize]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{FeatureExtractor, Features, FrontendConfig, Normalization, PaddingMode};
    use super::FeatureStream;

    fn signal(len: usize) -> Vec<f32> {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        (0..len)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let noise = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                0.3 * (i as f32 * 0.05).sin() + 0.1 * noise
            })
            .collect()
    }

    fn extractor(padding: PaddingMode) -> FeatureExtractor {
        FeatureExtractor::new(FrontendConfig {
            padding,
            normalization: Normalization::None,
            ..FrontendConfig::default()
        })
        .unwrap()
    }

    /// Frame-major copy of whole-signal features.
    fn whole(padding: PaddingMode, samples: &[f32]) -> Vec<f32> {
        let mut features = Features::default();
        extractor(padding).compute_unnormalized(samples, &mut features);
        let mut out = Vec::new();
        for t in 0..features.frames {
            out.extend((0..features.n_mels).map(|m| features.get(m, t)));
        }
        out
    }

    #[test]
    fn streamed_frames_equal_the_whole_signals_bit_for_bit() {
        for padding in [PaddingMode::Zeros, PaddingMode::Reflect] {
            for len in [0, 1, 100, 256, 257, 417, 1000, 16_000 + 77] {
                let samples = signal(len);
                let expected = whole(padding, &samples);
                for piece in [1, 7, 160, 1601, 100_000] {
                    let mut stream = FeatureStream::new(extractor(padding));
                    let mut out = Vec::new();
                    for part in samples.chunks(piece) {
                        stream.push(part, &mut out);
                    }
                    stream.finish(&mut out);
                    assert_eq!(out.len(), expected.len(), "{padding:?} {len} {piece}");
                    let same = out
                        .iter()
                        .zip(&expected)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{padding:?} len {len} piece {piece}");
                }
            }
        }
    }

    /// Any framing: hops longer than half the FFT (found by fuzzing: reflection at the end
    /// read samples already dropped), short FFTs, long ones.
    #[test]
    fn any_framing_streams_bit_for_bit() {
        for (n_fft, win_length, hop_length) in [(64, 64, 48), (32, 20, 40), (1024, 800, 7)] {
            for padding in [PaddingMode::Zeros, PaddingMode::Reflect] {
                let config = FrontendConfig {
                    n_fft,
                    win_length,
                    hop_length,
                    n_mels: 8,
                    padding,
                    normalization: Normalization::None,
                    ..FrontendConfig::default()
                };
                for len in [0, 1, 17, 33, 300, 2049] {
                    let samples = signal(len);
                    let mut features = Features::default();
                    FeatureExtractor::new(config.clone())
                        .unwrap()
                        .compute_unnormalized(&samples, &mut features);
                    let mut expected = Vec::new();
                    for t in 0..features.frames {
                        expected.extend((0..8).map(|m| features.get(m, t).to_bits()));
                    }
                    for piece in [1, 5, 64, 5000] {
                        let mut stream =
                            FeatureStream::new(FeatureExtractor::new(config.clone()).unwrap());
                        let mut out = Vec::new();
                        for part in samples.chunks(piece) {
                            stream.push(part, &mut out);
                        }
                        stream.finish(&mut out);
                        let got: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
                        assert_eq!(
                            got, expected,
                            "{n_fft}/{win_length}/{hop_length} {padding:?} {len} {piece}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn frames_arrive_once_their_samples_have() {
        let mut stream = FeatureStream::new(extractor(PaddingMode::Zeros));
        let mut out = Vec::new();
        assert_eq!(stream.push(&signal(255), &mut out), 0);
        assert_eq!(stream.push(&[0.0], &mut out), 1, "frame 0 reads up to 256");
        assert_eq!(stream.push(&signal(160), &mut out), 1);
        // Memory stays bounded on a long stream.
        for _ in 0..100 {
            stream.push(&signal(16_000), &mut out);
        }
        assert!(stream.signal.len() < 1024, "{}", stream.signal.len());
    }
}

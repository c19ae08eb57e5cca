// SPDX-License-Identifier: MPL-2.0
//! Buffered-window streaming recognition: left context + chunk + right context.
//!
//! NeMo normalises features over time, so a live stream cannot be fed frame by frame. Each
//! chunk is recognised inside a window that adds context on both sides; the window is
//! normalised on its own, run through the model, and only the output frames that belong to
//! the chunk are kept (NeMo's `FrameBatchASR` scheme). The greedy CTC collapse carries across
//! chunks in the decoder.
//!
//! Sample positions are stream samples: 0 is the first sample pushed after `new`/`reset`.
//! Chunk k covers samples `[k C, (k + 1) C)`; its window is `[k C - L, k C + C + R)`, with
//! silence before the stream start. Output frame j of a window is centred on window sample
//! `j * frame` (hop x subsampling), so the chunk's frames are `[L / frame, (L + C) / frame)`,
//! which is why all three durations are whole output frames.
//!
//! At the end of the stream the remainder is recognised in one last window that ends at the
//! last sample (no invented right context), so the emitted frame count equals what an
//! offline run over the whole stream produces and no audio is lost.

use std::collections::VecDeque;

mod offline;
mod window;

pub use offline::{OfflineResult, recognize_offline};
pub use window::WindowConfig;

use crate::config::RecognizerConfig;
use crate::decode::{CtcDecoder, DecodingOptions, Word};
use crate::error::{Error, Result};
use crate::frontend::{FeatureExtractor, Features, FrontendConfig};
use crate::model::{AcousticModel, ModelDescription, OnnxModel};

/// What one recognised chunk (or the final remainder) produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChunkResult {
    /// Output frames covered: `[first_frame, first_frame + frames)` in stream output frames.
    pub first_frame: u64,
    /// Number of output frames covered.
    pub frames: u64,
    /// Words completed in this chunk, in order; their frames are stream output frames.
    pub words: Vec<Word>,
    /// Words not final yet at the end of the chunk, each with its own times: the word still
    /// being spoken (with beam search: the best hypothesis's words that may still change).
    pub partial: Vec<Word>,
    /// Words output later start at or after this frame; `None`: at or after the chunk's end.
    pub unsettled_from: Option<u64>,
    /// The kept log-probs, `[frames][vocab]`: what the decoder saw, for diffing against NeMo.
    pub logprobs: Vec<f32>,
    /// True for the last result of a stream (drained at end of stream or discontinuity).
    pub last: bool,
}

/// The streaming recogniser: frontend, model and decoder over buffered windows.
pub struct StreamingRecognizer<M: AcousticModel> {
    model: M,
    frontend: FeatureExtractor,
    decoder: CtcDecoder,
    geometry: WindowConfig,
    subsampling: usize,
    frame_samples: usize,
    /// Audio from stream sample `buffer_start` on (negative: the leading silence).
    buffer: VecDeque<f32>,
    buffer_start: i64,
    /// Samples pushed since the stream started.
    pushed: u64,
    /// Index of the next chunk to recognise.
    next_chunk: u64,
    // Reused per window so recognition allocates nothing per chunk once warmed up.
    window: Vec<f32>,
    features: Features,
    logprobs: Vec<f32>,
}

impl StreamingRecognizer<OnnxModel> {
    /// The recogniser `config` describes for a loaded model: its frontend with the chosen
    /// normalisation and padding, the window rounded to whole output frames, and the chosen
    /// decoder (loading the language model, or reusing one this process already loaded).
    pub fn from_config(model: OnnxModel, config: &RecognizerConfig) -> Result<Self> {
        config.validate()?;
        let description = model.description().clone();
        let frontend = config.frontend_for(&description);
        let (geometry, _) = WindowConfig::for_model(config, &description);
        let decoding = config.decoding.decoding_options(&description)?;
        Self::new(model, &description, frontend, geometry, decoding)
    }
}

impl<M: AcousticModel> StreamingRecognizer<M> {
    /// `frontend` may differ from the description's (e.g. fixed statistics instead of per
    /// window); the labels and subsampling come from `description`.
    pub fn new(
        model: M,
        description: &ModelDescription,
        frontend: FrontendConfig,
        geometry: WindowConfig,
        decoder: impl Into<DecodingOptions>,
    ) -> Result<Self> {
        let frame_samples = frontend.hop_length * description.subsampling_factor as usize;
        for (name, value) in [
            ("left context", geometry.left),
            ("chunk", geometry.chunk),
            ("right context", geometry.right),
        ] {
            if value % frame_samples != 0 {
                return Err(Error::Settings(format!(
                    "{name} of {value} samples is not a whole number of {frame_samples}-sample output frames"
                )));
            }
        }
        if geometry.chunk == 0 {
            return Err(Error::Settings(
                "the chunk must be at least one output frame".to_string(),
            ));
        }
        if model.vocab_size() != description.vocab_size() {
            return Err(Error::Settings(format!(
                "the model outputs {} classes but there are {} labels + blank",
                model.vocab_size(),
                description.labels.len()
            )));
        }
        let decoder = CtcDecoder::new(description.labels.clone(), decoder.into())?;
        let mut recognizer = Self {
            model,
            frontend: FeatureExtractor::new(frontend)?,
            decoder,
            geometry,
            subsampling: description.subsampling_factor as usize,
            frame_samples,
            buffer: VecDeque::new(),
            buffer_start: 0,
            pushed: 0,
            next_chunk: 0,
            window: Vec::with_capacity(geometry.window()),
            features: Features::default(),
            logprobs: Vec::new(),
        };
        recognizer.reset();
        Ok(recognizer)
    }

    /// The window geometry in samples.
    pub fn geometry(&self) -> WindowConfig {
        self.geometry
    }

    /// Whether words are decoded by beam search (which holds them back up to its commit
    /// delay; see [`crate::config::LatencyPlan`]).
    pub fn uses_beam_search(&self) -> bool {
        self.decoder.is_beam_search()
    }

    /// Samples per output frame (320 = 20 ms for QuartzNet at 16 kHz).
    pub fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    /// Samples pushed since the stream started.
    pub fn samples_pushed(&self) -> u64 {
        self.pushed
    }

    /// The acoustic model.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// Gives the model back (e.g. to reuse a loaded session for another file).
    pub fn into_model(self) -> M {
        self.model
    }

    /// Forgets the stream: the next sample pushed is sample 0 of a new stream.
    pub fn reset(&mut self) {
        self.buffer.clear();
        // The first window's left context is silence (as NeMo's FrameBatchASR starts).
        self.buffer
            .extend(std::iter::repeat_n(0.0, self.geometry.left));
        self.buffer_start = -(self.geometry.left as i64);
        self.pushed = 0;
        self.next_chunk = 0;
        self.decoder.reset(0);
    }

    /// Buffers audio (f32, int16 / 32768 scale).
    pub fn push(&mut self, samples: &[f32]) {
        self.buffer.extend(samples.iter().copied());
        self.pushed += samples.len() as u64;
    }

    /// Recognises the next chunk if its window (with right context) is complete.
    pub fn next_result(&mut self) -> Result<Option<ChunkResult>> {
        let chunk_start = self.next_chunk * self.geometry.chunk as u64;
        let window_end = chunk_start + (self.geometry.chunk + self.geometry.right) as u64;
        if self.pushed < window_end {
            return Ok(None);
        }
        let first_frame = chunk_start / self.frame_samples as u64;
        let keep = self.geometry.chunk / self.frame_samples;
        let (words, logprobs) = self.recognize_window(chunk_start, window_end, keep)?;
        self.next_chunk += 1;
        self.discard_before(self.next_chunk * self.geometry.chunk as u64);
        Ok(Some(ChunkResult {
            first_frame,
            frames: keep as u64,
            words,
            partial: self.decoder.pending(),
            unsettled_from: self.decoder.unsettled_from(),
            logprobs,
            last: false,
        }))
    }

    /// Ends the stream: recognises every remaining sample and completes the last word, then
    /// resets for a new stream. Returns the results in order (the last one has `last` set,
    /// and there is always one so the caller learns the stream ended).
    pub fn finish(&mut self) -> Result<Vec<ChunkResult>> {
        let mut results = Vec::new();
        while let Some(result) = self.next_result()? {
            results.push(result);
        }
        let chunk_start = self.next_chunk * self.geometry.chunk as u64;
        let emitted = chunk_start / self.frame_samples as u64;
        let total = self.output_frames(self.pushed as usize) as u64;
        let mut tail = ChunkResult {
            first_frame: emitted,
            ..Default::default()
        };
        if total > emitted {
            let keep = (total - emitted) as usize;
            (tail.words, tail.logprobs) = self.recognize_window(chunk_start, self.pushed, keep)?;
            tail.frames = keep as u64;
        }
        tail.words.extend(self.decoder.finish());
        tail.last = true;
        results.push(tail);
        self.reset();
        Ok(results)
    }

    /// Output frames the model yields for `samples` of audio: feature frames divided by the
    /// stride of the first convolution, rounded up ("same" padding).
    fn output_frames(&self, samples: usize) -> usize {
        self.frontend
            .frame_count(samples)
            .div_ceil(self.subsampling)
    }

    /// Runs the window `[chunk_start - L, window_end)` and decodes `keep` output frames from
    /// the chunk's first frame on; returns the completed words and the kept log-probs.
    fn recognize_window(
        &mut self,
        chunk_start: u64,
        window_end: u64,
        keep: usize,
    ) -> Result<(Vec<Word>, Vec<f32>)> {
        let window_start = chunk_start as i64 - self.geometry.left as i64;
        let offset = usize::try_from(window_start - self.buffer_start).map_err(|_| {
            Error::Inference("internal error: window starts before the buffered audio".into())
        })?;
        let len = usize::try_from(window_end as i64 - window_start).unwrap_or(0);
        self.window.clear();
        self.window.extend(self.buffer.range(offset..offset + len));

        self.frontend.compute(&self.window, &mut self.features);
        let frames = infer_checked(&mut self.model, &self.features, &mut self.logprobs)?;
        let first = self.geometry.left / self.frame_samples;
        if frames < first + keep {
            return Err(Error::Inference(format!(
                "the model returned {frames} output frames for {} feature frames; expected at least {} (subsampling {})",
                self.features.frames,
                first + keep,
                self.subsampling
            )));
        }
        let vocab = self.model.vocab_size();
        let kept = &self.logprobs[first * vocab..(first + keep) * vocab];
        Ok((self.decoder.push(kept, keep), kept.to_vec()))
    }

    /// Drops audio no future window needs: everything before `next_chunk_start - L`.
    fn discard_before(&mut self, next_chunk_start: u64) {
        let keep_from = next_chunk_start as i64 - self.geometry.left as i64;
        let drop = (keep_from - self.buffer_start).clamp(0, self.buffer.len() as i64) as usize;
        self.buffer.drain(..drop);
        self.buffer_start += drop as i64;
    }
}

/// Runs `model` and checks that it wrote the `[frames][vocab]` log-probs it promised: an
/// [`AcousticModel`] that returns fewer (or more) values than its frame count must be an
/// inference error, not an out-of-range slice or a decoder assertion (found by fuzzing).
fn infer_checked<M: AcousticModel>(
    model: &mut M,
    features: &Features,
    logprobs: &mut Vec<f32>,
) -> Result<usize> {
    let frames = model.infer(features, logprobs)?;
    let vocab = model.vocab_size();
    if frames.checked_mul(vocab) != Some(logprobs.len()) {
        return Err(Error::Inference(format!(
            "the model returned {} log-probs for {frames} output frames of {vocab} classes",
            logprobs.len()
        )));
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::DecoderConfig;
    use crate::frontend::{Normalization, PaddingMode};

    /// A stand-in model whose output at frame j depends only on the features of the two
    /// feature frames it is centred on, so windowing errors show up as wrong labels or times:
    /// it "hears" the letter whose index is the loudness of the input, quantised.
    struct LoudnessModel {
        vocab: usize,
    }

    impl AcousticModel for LoudnessModel {
        fn vocab_size(&self) -> usize {
            self.vocab
        }
        fn infer(&mut self, features: &Features, out: &mut Vec<f32>) -> Result<usize> {
            let frames = features.frames.div_ceil(2);
            out.clear();
            for j in 0..frames {
                let t = 2 * j;
                let energy: f32 = (0..features.n_mels)
                    .map(|m| features.get(m, t))
                    .sum::<f32>()
                    / features.n_mels as f32;
                // Silence (ln 2^-24 = -16.6) maps to blank; louder frames to labels 1..
                let class = if energy < -12.0 {
                    self.vocab - 1
                } else {
                    (((energy + 12.0) / 3.0) as usize + 1).min(self.vocab - 2)
                };
                out.extend((0..self.vocab).map(|c| if c == class { 0.0 } else { -10.0 }));
            }
            Ok(frames)
        }
    }

    fn description() -> ModelDescription {
        ModelDescription::default()
    }

    fn raw_frontend(padding: PaddingMode) -> FrontendConfig {
        FrontendConfig {
            normalization: Normalization::None,
            padding,
            ..FrontendConfig::default()
        }
    }

    /// Bursts of tone at different loudness separated by silence.
    fn bursts(len: usize) -> Vec<f32> {
        (0..len)
            .map(|n| {
                let burst = n / 4000;
                if burst % 2 == 0 {
                    0.0
                } else {
                    let amp = [0.001f32, 0.01, 0.1, 0.5][(burst / 2) % 4];
                    amp * (n as f32 * 0.3).sin()
                }
            })
            .collect()
    }

    /// A recogniser over the stand-in model with the raw frontend and greedy decoding.
    fn loudness_recognizer(
        geometry: WindowConfig,
        padding: PaddingMode,
    ) -> StreamingRecognizer<LoudnessModel> {
        StreamingRecognizer::new(
            LoudnessModel { vocab: 29 },
            &description(),
            raw_frontend(padding),
            geometry,
            DecoderConfig::default(),
        )
        .unwrap()
    }

    fn stream(
        samples: &[f32],
        geometry: WindowConfig,
        padding: PaddingMode,
        piece: usize,
    ) -> (Vec<ChunkResult>, u64) {
        let mut recognizer = loudness_recognizer(geometry, padding);
        let mut results = Vec::new();
        for part in samples.chunks(piece.max(1)) {
            recognizer.push(part);
            while let Some(r) = recognizer.next_result().unwrap() {
                results.push(r);
            }
        }
        results.extend(recognizer.finish().unwrap());
        let frames = results.iter().map(|r| r.frames).sum();
        (results, frames)
    }

    #[test]
    fn geometry_rounds_to_output_frames() {
        let (g, rounded) = WindowConfig::from_millis(2500, 2000, 2500, 16000, 320);
        assert_eq!(
            g,
            WindowConfig {
                left: 40000,
                chunk: 32000,
                right: 40000
            }
        );
        assert!(!rounded);
        let (g, rounded) = WindowConfig::from_millis(1005, 5, 0, 16000, 320);
        assert_eq!(
            g,
            WindowConfig {
                left: 16000,
                chunk: 320,
                right: 0
            }
        );
        assert!(rounded);
    }

    #[test]
    fn frame_count_matches_offline_for_any_length_and_split() {
        for padding in [PaddingMode::Reflect, PaddingMode::Zeros] {
            for len in [0usize, 1, 159, 160, 319, 320, 321, 6399, 6400, 6401, 33333] {
                let samples = bursts(len);
                let g = WindowConfig {
                    left: 3200,
                    chunk: 6400,
                    right: 1600,
                };
                let (results, frames) = stream(&samples, g, padding, 777);
                let extractor = FeatureExtractor::new(raw_frontend(padding)).unwrap();
                let offline = extractor.frame_count(len).div_ceil(2) as u64;
                assert_eq!(frames, offline, "len {len} {padding:?}");
                assert!(results.last().unwrap().last);
                // Chunks tile the output frames without gaps.
                let mut next = 0;
                for r in &results {
                    assert_eq!(r.first_frame, next);
                    next += r.frames;
                }
            }
        }
    }

    #[test]
    fn streaming_equals_offline_with_enough_context() {
        // The stand-in model has a receptive field of one feature frame, so any context
        // covering the frontend's 512-sample frame suffices.
        let samples = bursts(50_000);
        for padding in [PaddingMode::Reflect, PaddingMode::Zeros] {
            let mut model = LoudnessModel { vocab: 29 };
            let offline = recognize_offline(
                &mut model,
                &description(),
                raw_frontend(padding),
                DecoderConfig::default(),
                &samples,
            )
            .unwrap();
            for piece in [1, 160, 999, 50_000] {
                let g = WindowConfig {
                    left: 640,
                    chunk: 3200,
                    right: 640,
                };
                let (results, _) = stream(&samples, g, padding, piece);
                let words: Vec<Word> = results.into_iter().flat_map(|r| r.words).collect();
                assert_eq!(words, offline.words, "{padding:?} piece {piece}");
                assert!(!words.is_empty());
            }
        }
    }

    #[test]
    fn memory_stays_bounded() {
        let g = WindowConfig {
            left: 3200,
            chunk: 3200,
            right: 3200,
        };
        let mut r = loudness_recognizer(g, PaddingMode::Reflect);
        let piece = bursts(1000);
        for _ in 0..2000 {
            r.push(&piece);
            while r.next_result().unwrap().is_some() {}
            assert!(r.buffer.len() <= g.window() + piece.len());
        }
    }

    #[test]
    fn reset_starts_a_new_stream() {
        let g = WindowConfig {
            left: 640,
            chunk: 3200,
            right: 640,
        };
        let samples = bursts(20_000);
        let (first, _) = stream(&samples, g, PaddingMode::Reflect, 500);
        let mut r = loudness_recognizer(g, PaddingMode::Reflect);
        r.push(&bursts(7000));
        r.reset();
        let mut again = Vec::new();
        for part in samples.chunks(500) {
            r.push(part);
            while let Some(x) = r.next_result().unwrap() {
                again.push(x);
            }
        }
        again.extend(r.finish().unwrap());
        assert_eq!(first, again);
    }
}

// SPDX-License-Identifier: MPL-2.0
//! Buffered-window streaming recognition: left context + chunk + right context, NeMo's
//! `FrameBatchASR` scheme (`docs/STREAMING.md`).
//!
//! NeMo normalises features over time, so a live stream cannot be fed frame by frame. The
//! log-mel features of the stream are computed once, frame by frame, as the audio arrives
//! ([`FeatureStream`](crate::frontend::FeatureStream)); each chunk is recognised in a buffer of feature frames that adds
//! context on both sides, normalised with the buffer's own statistics, run through the model,
//! and only the output frames of the chunk are kept. This is NeMo's buffered inference
//! exactly: the same features (the whole signal's, not a window's), the same buffer (filled
//! with NeMo's zero-level value before the stream starts), the same normalisation (mean and
//! population standard deviation over the buffer, plus 1e-5) and the same kept frames.
//!
//! Positions are in output frames (hop x subsampling, 20 ms for QuartzNet) with L, T and R
//! the left context, chunk and right context. Buffer `j` holds the features up to the end of
//! the `j`-th chunk of audio and keeps output frames `[jT - R, (j+1)T - R)`: each kept frame
//! has L frames before it and R after it in the buffer. The first buffer's first R kept
//! frames lie before the stream start (in the fill); NeMo decodes them, and so do we, so a
//! letter the model puts there early is not lost (their times count as the stream start).
//!
//! NeMo's buffer is full from the start: L + R frames of fill before the stream. The
//! element's windows ([`StreamEdges::Silence`], live, and [`StreamEdges::Trimmed`], files)
//! start a stream with [`STREAM_LEAD_IN_MS`] of silence instead, the same in both: the first
//! buffers start at most the lead-in before the stream, so the first R kept frames shrink to
//! the lead-in where it is shorter.
//!
//! At the end of the stream the audio is followed by `T + R - 1` frames of silence, as
//! NeMo's `read_audio_file` pads it, and every buffer that the padded features fill is run.
//! NeMo then runs one more buffer whose missing features it fills with 0.0 (a loud value,
//! not silence) and keeps its frames, all of which lie after the audio; we do not: text the
//! model finds in invented features is not in the audio.

use std::collections::VecDeque;

mod cache_aware;
mod offline;
mod recognizer;
mod silence;
mod window;

pub use cache_aware::{CacheAwareRecognizer, CacheAwareStep};
pub use offline::{OfflineResult, recognize_offline};
pub use recognizer::{
    Recognizer, StreamingModel, cache_aware_delay_samples, cache_aware_look_ahead, text_hold_ms,
};
pub use window::WindowConfig;

use crate::config::RecognizerConfig;
use crate::decode::{CtcDecoder, DecodingOptions, Word};
use crate::error::{Error, Result};
use crate::frontend::{Features, FrontendConfig, InputStream, Normalization};
use crate::model::{AcousticModel, ModelDescription, ModelInput, OnnxModel};
use silence::SilenceTrack;

/// What the buffer holds before the stream starts: silence, NeMo's `ZERO_LEVEL_SPEC_DB_VAL`
/// (about ln 2^-24, the log-mel of a zero signal), the value `FrameBatchASR` means to use.
pub const BUFFER_FILL: f32 = -16.635;

/// What NeMo's `FrameBatchASR` actually fills the buffer with for QuartzNet: it takes
/// `ZERO_LEVEL_SPEC_DB_VAL` only if `asr_model.preprocessor.log` exists, which
/// `AudioToMelSpectrogramPreprocessor` lacks (the flag lives in its featurizer), so it falls
/// back to 0.0, a loud level.
pub const NEMO_QUARTZNET_BUFFER_FILL: f32 = 0.0;

/// Silence before the stream in the element's windows ([`StreamEdges::Silence`] and
/// [`StreamEdges::Trimmed`]), in whole output frames, and no longer than the left context (a
/// buffer never reaches further back). Live and file windows start a stream the same way, so
/// its first word comes out at the same time in both (`docs/STREAMING.md`). Without silence
/// before a clip that starts on speech, QuartzNet missed the onset (the first frames' own
/// edge padding, normalised, looks like speech's loudness): LJ001's "printing" at 0.32 s
/// instead of 0.08 s. With the whole left and right context of silence before a live
/// stream, the phoneme model, which normalises its own input over the window, met its first
/// words in a window of mostly zeros (11.0 % WER live on real-dev, 10.3 % with the lead-in).
/// 600 ms is QuartzNet's default right context, so its first buffer keeps the same frames
/// before the stream as NeMo's.
pub const STREAM_LEAD_IN_MS: u32 = 600;

/// How buffers meet the stream's start and end: the fill before the stream, the padding
/// after it and the statistics that normalise them (`docs/STREAMING.md`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StreamEdges {
    /// Live default: [`STREAM_LEAD_IN_MS`] of silence before the stream, statistics from the
    /// stream's own frames only (the fill is normalised with them), and NeMo's `T + R - 1`
    /// frames of silence after it. With the bundled model 2.9 points of WER better on the held-out voice and
    /// 1.0 on real speech than NeMo's scheme with a silent fill, and 9.5 / 5.5 better than
    /// NeMo's scheme as it runs.
    #[default]
    Silence,
    /// NeMo's `FrameBatchASR` exactly: the buffer filled with [`NEMO_QUARTZNET_BUFFER_FILL`],
    /// the fill counted in the statistics. For comparing with NeMo.
    NemoFrameBatch,
    /// Buffers start [`STREAM_LEAD_IN_MS`] of silence before the stream (as live ones do) and
    /// end where it does, with no padding after it; each buffer is normalised as NeMo's
    /// offline `transcribe()` normalises an utterance (unbiased standard deviation), with the
    /// statistics of the stream's frames only. A stream no longer than the chunk is
    /// recognised as offline with the lead-in before it (the same normalised features); a
    /// longer one in chunks with real context on both sides. For input that is not live
    /// (files), where it wastes little model time on invented audio.
    Trimmed,
}

/// Digital silence on each side of a frame that [`StreamingRecognizer`] makes blank, in ms,
/// rounded up to whole output frames (10 of QuartzNet's 20 ms, 3 of a sub-word model's
/// 80 ms): far more than a CTC label's spike ever sits from the sound it labels.
pub const SILENCE_GATE_MS: u32 = 200;

/// [`SILENCE_GATE_MS`] in output frames of `frame_samples` samples at `sample_rate` Hz.
fn silence_gate_frames(sample_rate: u32, frame_samples: usize) -> i64 {
    let samples = u64::from(SILENCE_GATE_MS) * u64::from(sample_rate) / 1000;
    samples.div_ceil(frame_samples.max(1) as u64) as i64
}
/// The log-probability of every label but the blank in a gated frame (finite, so sums stay
/// defined; far below anything a decoder tries).
const GATED_LOGPROB: f32 = -1.0e4;

/// NeMo's `CONSTANT` added to the buffer's standard deviation.
const BUFFER_STD_EPSILON: f32 = 1e-5;

/// What one recognised chunk (or the final remainder) produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChunkResult {
    /// Output frames covered: `[first_frame, first_frame + frames)` in stream output frames.
    pub first_frame: u64,
    /// Number of output frames covered (frames before the stream start are not counted).
    pub frames: u64,
    /// Words completed in this chunk, in order; their frames are stream output frames.
    pub words: Vec<Word>,
    /// Words not final yet at the end of the chunk, each with its own times: the word still
    /// being spoken (with beam search: the best hypothesis's words that may still change).
    pub partial: Vec<Word>,
    /// Words output later start at or after this frame; `None`: at or after the chunk's end.
    pub unsettled_from: Option<u64>,
    /// The kept log-probs, `[T][vocab]`: what the decoder saw, for diffing against NeMo
    /// (the first chunk's include the frames before the stream start).
    pub logprobs: Vec<f32>,
    /// True for the last result of a stream (drained at end of stream or discontinuity).
    pub last: bool,
    /// Last result only: the spaces the model emitted after the last word, which end its
    /// text (NeMo's transcript keeps them).
    pub trailing_spaces: u32,
}

/// The streaming recogniser: frontend, model and decoder over buffered windows.
pub struct StreamingRecognizer<M: AcousticModel> {
    model: M,
    /// The model's input frames: log-mel features, or the samples of a waveform model.
    features: InputStream,
    normalization: Normalization,
    decoder: CtcDecoder,
    /// A decoder that takes over at the next chunk ([`Self::set_hotwords`]).
    next_decoder: Option<CtcDecoder>,
    geometry: WindowConfig,
    /// Feature frames per output frame.
    subsampling: usize,
    frame_samples: usize,
    /// Window parts in output frames.
    left_frames: usize,
    chunk_frames: usize,
    right_frames: usize,
    /// Output frames of silence before the stream ([`STREAM_LEAD_IN_MS`]).
    lead_in_frames: usize,
    /// How buffers meet the stream's start and end.
    edges: StreamEdges,
    /// Which output frames of the stream are digital silence, from its samples.
    silence: SilenceTrack,
    /// Output frames on each side of a kept frame whose samples its input reads (the FFT's
    /// half window, rounded up; 0 for a waveform model).
    silence_reach: i64,
    /// Output frames of digital silence on each side of a frame that gate it
    /// ([`SILENCE_GATE_MS`]).
    gate_frames: i64,
    /// Raw feature frames, frame after frame, from feature frame `history_start` on
    /// (negative: the fill before the stream).
    history: VecDeque<f32>,
    history_start: i64,
    /// Feature frames in `history` and computed so far (including the fill).
    available: i64,
    /// Samples pushed since the stream started.
    pushed: u64,
    /// Index of the next chunk to recognise.
    next_chunk: u64,
    // Reused per buffer so recognition allocates nothing per chunk once warmed up.
    new_frames: Vec<f32>,
    buffer: Features,
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
        let mut recognizer = Self::new(model, &description, frontend, geometry, decoding)?;
        recognizer.set_edges(config.edges);
        Ok(recognizer)
    }
}

impl<M: AcousticModel> StreamingRecognizer<M> {
    /// `frontend` may differ from the description's (e.g. fixed statistics instead of per
    /// buffer); the labels and subsampling come from `description`. With per-feature
    /// normalisation each buffer is normalised with its own statistics (NeMo's
    /// `FrameBatchASR`); fixed statistics apply to each frame; none leaves them raw.
    pub fn new(
        model: M,
        description: &ModelDescription,
        frontend: FrontendConfig,
        geometry: WindowConfig,
        decoder: impl Into<DecodingOptions>,
    ) -> Result<Self> {
        let subsampling = description.input_frames_per_output_frame();
        let frame_samples = match description.input {
            ModelInput::LogMel => frontend.hop_length * subsampling,
            ModelInput::Waveform => description.samples_per_output_frame(),
        };
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
        // No buffer is longer than the window (the first ones of a stream can be shorter).
        geometry.check_position_table(description)?;
        if model.vocab_size() != description.vocab_size() {
            return Err(Error::Settings(format!(
                "the model outputs {} classes but there are {} labels + blank",
                model.vocab_size(),
                description.labels.len()
            )));
        }
        let decoder = CtcDecoder::for_model(description, decoder.into())?;
        let silence_reach = frontend.n_fft.div_ceil(2).div_ceil(frame_samples) as i64;
        // A waveform model normalises its own input.
        let normalization = match description.input {
            ModelInput::LogMel => frontend.normalization.clone(),
            ModelInput::Waveform => Normalization::None,
        };
        let mut recognizer = Self {
            model,
            features: InputStream::new(description.input, frontend)?,
            normalization,
            decoder,
            next_decoder: None,
            geometry,
            subsampling,
            frame_samples,
            left_frames: geometry.left / frame_samples,
            chunk_frames: geometry.chunk / frame_samples,
            right_frames: geometry.right / frame_samples,
            lead_in_frames: {
                // Whole output frames as the windows round, and no longer than the left
                // context: a buffer never reaches further back.
                let (samples, _) = WindowConfig::part_samples(
                    STREAM_LEAD_IN_MS,
                    0,
                    description.sample_rate,
                    frame_samples,
                );
                (samples / frame_samples).min(geometry.left / frame_samples)
            },
            edges: StreamEdges::default(),
            silence: SilenceTrack::new(frame_samples),
            silence_reach: match description.input {
                ModelInput::LogMel => silence_reach,
                ModelInput::Waveform => 0,
            },
            gate_frames: silence_gate_frames(description.sample_rate, frame_samples),
            history: VecDeque::new(),
            history_start: 0,
            available: 0,
            pushed: 0,
            next_chunk: 0,
            new_frames: Vec::new(),
            buffer: Features::default(),
            logprobs: Vec::new(),
        };
        recognizer.reset();
        Ok(recognizer)
    }

    /// The window geometry in samples.
    pub fn geometry(&self) -> WindowConfig {
        self.geometry
    }

    /// Audio a chunk's first frame waits for before its buffer runs, in samples: the chunk,
    /// the right context and what the last frame's FFT reads past its hop (96 samples for
    /// QuartzNet).
    pub fn lookahead(&self) -> usize {
        self.geometry.chunk + self.geometry.right + self.features.reach()
    }

    /// Whether words are decoded by beam search (which holds them back up to its commit
    /// delay; see [`crate::config::LatencyPlan`]); after [`Self::set_hotwords`] switched to
    /// it, already.
    pub fn uses_beam_search(&self) -> bool {
        self.next_decoder
            .as_ref()
            .unwrap_or(&self.decoder)
            .is_beam_search()
    }

    /// Uses `settings.hotwords` (`None` or empty: none) from the next chunk on, without
    /// losing the stream: a beam search keeps its hypotheses (those in the middle of a phrase
    /// give its boost back), and for a phoneme model the lexicon gains the list's words it
    /// lacks (spelled by the model's G2P; they stay in it until the stream ends). Greedy
    /// decoding gives way to the beam search `settings` make with the list (its words so far
    /// are completed with the next chunk's); `decoder: greedy` refuses a list.
    pub fn set_hotwords(
        &mut self,
        description: &ModelDescription,
        settings: &crate::config::DecoderSettings,
    ) -> Result<()> {
        change_hotwords(
            &mut self.decoder,
            &mut self.next_decoder,
            description,
            settings,
        )
    }

    /// Hands over to the decoder [`Self::set_hotwords`] made, if any.
    fn take_over(&mut self) -> Vec<Word> {
        take_over(&mut self.decoder, &mut self.next_decoder)
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

    /// Sets how buffers meet the stream's edges ([`StreamEdges::NemoFrameBatch`] reproduces
    /// NeMo exactly) and starts a new stream.
    pub fn set_edges(&mut self, edges: StreamEdges) {
        self.edges = edges;
        self.reset();
    }

    /// How buffers meet the stream's edges.
    pub fn edges(&self) -> StreamEdges {
        self.edges
    }

    /// Forgets the stream: the next sample pushed is sample 0 of a new stream.
    pub fn reset(&mut self) {
        self.features.reset();
        // NeMo's buffer is full from the start; the element's windows hold the lead-in.
        let fill = match self.edges {
            StreamEdges::NemoFrameBatch => {
                (self.buffer_feature_frames() - self.chunk_feature_frames()) as i64
            }
            _ => (self.lead_in_frames * self.subsampling) as i64,
        };
        let n_mels = self.features.n_mels();
        self.history.clear();
        let value = match self.edges {
            StreamEdges::NemoFrameBatch => NEMO_QUARTZNET_BUFFER_FILL,
            _ => self.features.silence(BUFFER_FILL),
        };
        self.history
            .extend(std::iter::repeat_n(value, fill as usize * n_mels));
        self.history_start = -fill;
        self.available = 0;
        self.pushed = 0;
        self.next_chunk = 0;
        self.silence.reset();
        if let Some(next) = self.next_decoder.take() {
            self.decoder = next;
        }
        // Decoder frame f is stream output frame f - lead (see `lead`).
        self.decoder.reset(0);
    }

    /// Buffers audio (f32, int16 / 32768 scale).
    pub fn push(&mut self, samples: &[f32]) {
        self.pushed += samples.len() as u64;
        self.add_features(samples, false);
    }

    /// Recognises the next chunk if its buffer is complete.
    pub fn next_result(&mut self) -> Result<Option<ChunkResult>> {
        // A right context longer than the lead-in and a chunk puts the first chunks' kept
        // frames wholly before the first buffer's start: they hold no frame, so they are not
        // run (the decoder's frame 0 is the lead-in's first, see `lead`).
        while self.edges == StreamEdges::Silence
            && self.kept_span(self.next_chunk).1 <= -(self.lead_in_frames as i64)
        {
            self.next_chunk += 1;
        }
        let end = (self.kept_span(self.next_chunk).1 + self.right_frames as i64)
            * self.subsampling as i64;
        if self.available < end {
            return Ok(None);
        }
        self.recognize_chunk().map(Some)
    }

    /// Ends the stream and recognises what is left of it: with NeMo's edges the audio is
    /// padded with silence as NeMo does and every buffer the padded features fill runs; with
    /// trimmed edges the last buffers end with the audio. Completes the last word, then
    /// resets for a new stream. Returns the results in order (the last one has `last` set,
    /// and there is always one so the caller learns the stream ended).
    pub fn finish(&mut self) -> Result<Vec<ChunkResult>> {
        let audio_frames =
            (self.features.frame_count(self.pushed) as u64).div_ceil(self.subsampling as u64);
        let mut results = Vec::new();
        if self.edges == StreamEdges::Trimmed {
            self.add_features(&[], true);
            while self.kept_range(self.next_chunk).0 < audio_frames {
                results.push(self.recognize_chunk()?);
            }
        } else {
            self.finish_padded(audio_frames, &mut results)?;
        }
        let mut next = self.kept_range(self.next_chunk).0;
        if self.edges == StreamEdges::Trimmed {
            // The last buffer's kept frames end with the audio.
            next = next.min(audio_frames);
        }
        let mut tail = ChunkResult {
            first_frame: next,
            ..Default::default()
        };
        let mut words = self.take_over();
        words.extend(self.decoder.finish());
        tail.words = self.stream_words(words);
        tail.trailing_spaces = self.decoder.trailing_spaces();
        tail.last = true;
        results.push(tail);
        self.reset();
        Ok(results)
    }

    /// NeMo's end of stream: `T + R - 1` frames of silence after the audio and every buffer
    /// they fill.
    fn finish_padded(&mut self, audio_frames: u64, results: &mut Vec<ChunkResult>) -> Result<()> {
        let padding =
            (self.chunk_frames + self.right_frames).saturating_sub(1) * self.frame_samples;
        self.add_features(&vec![0.0; padding], true);
        while let Some(result) = self.next_result()? {
            results.push(result);
        }
        // NeMo's padding covers the audio only together with the buffer it fills with 0.0;
        // when the audio's last frame is not kept yet (its frame count is not a multiple of
        // the subsampling), that buffer runs, with silence instead.
        if self.kept_range(self.next_chunk).0 < audio_frames {
            let end = self.buffer_span().1;
            let missing = (end - self.available).max(0) as usize;
            let n_mels = self.features.n_mels();
            let silence = self.features.silence(BUFFER_FILL);
            self.history
                .extend(std::iter::repeat_n(silence, missing * n_mels));
            self.available += missing as i64;
            results.push(self.recognize_chunk()?);
        }
        Ok(())
    }

    fn chunk_feature_frames(&self) -> usize {
        self.chunk_frames * self.subsampling
    }

    fn buffer_feature_frames(&self) -> usize {
        (self.left_frames + self.chunk_frames + self.right_frames) * self.subsampling
    }

    /// Computes the features `samples` complete (all remaining ones at the end).
    fn add_features(&mut self, samples: &[f32], end: bool) {
        self.new_frames.clear();
        let mut frames = self.features.push(samples, &mut self.new_frames);
        self.silence.push(samples);
        if end {
            frames += self.features.finish(&mut self.new_frames);
            self.silence.finish();
        }
        self.history.extend(self.new_frames.iter().copied());
        self.available += frames as i64;
    }

    /// Stream output frames `[start, end)` that chunk `chunk` keeps, with L frames before
    /// them and R after them in its buffer. With a fill before the stream, NeMo's phase:
    /// `[jT - R, (j+1)T - R)`, so the first buffer ends after T frames of audio; trimmed:
    /// `[jT, (j+1)T)`, so a stream no longer than a chunk is one buffer. Neither clamped to
    /// the lead-in ([`buffer_span`](Self::buffer_span) does that).
    fn kept_span(&self, chunk: u64) -> (i64, i64) {
        let t = self.chunk_frames as i64;
        let shift = match self.edges {
            StreamEdges::Trimmed => 0,
            _ => self.right_frames as i64,
        };
        let j = chunk as i64;
        (j * t - shift, (j + 1) * t - shift)
    }

    /// [`kept_span`](Self::kept_span) clamped to the stream start.
    fn kept_range(&self, chunk: u64) -> (u64, u64) {
        let (from, to) = self.kept_span(chunk);
        (from.max(0) as u64, to.max(0) as u64)
    }

    /// Output frames between decoder frame 0 and stream frame 0, which the first buffer keeps
    /// before the stream (decoder frame f is stream frame f - lead): NeMo's R; live, R or
    /// the lead-in if shorter; trimmed, the whole lead-in.
    fn lead(&self) -> u64 {
        match self.edges {
            StreamEdges::NemoFrameBatch => self.right_frames as u64,
            StreamEdges::Silence => self.right_frames.min(self.lead_in_frames) as u64,
            StreamEdges::Trimmed => self.lead_in_frames as u64,
        }
    }

    /// Words with decoder frames turned into stream frames. A word the model put entirely
    /// before the stream start (in the first buffer's frames there) lies at the start,
    /// `[0, 0)`.
    fn stream_words(&self, mut words: Vec<Word>) -> Vec<Word> {
        let lead = self.lead();
        for w in &mut words {
            w.start_frame = w.start_frame.saturating_sub(lead);
            w.end_frame = w.end_frame.saturating_sub(lead);
        }
        words
    }

    /// The buffer of chunk `next_chunk`: its feature frames `[start, end)` (negative: the
    /// fill before the stream, at most the lead-in in the element's windows) and the kept
    /// output frames `[keep_from, keep_to)` relative to its first output frame.
    fn buffer_span(&self) -> (i64, i64, usize, usize) {
        let s = self.subsampling as i64;
        let (l, r) = (self.left_frames as i64, self.right_frames as i64);
        let (mut kept_lo, kept_hi) = self.kept_span(self.next_chunk);
        let (mut start, mut end) = ((kept_lo - l) * s, (kept_hi + r) * s);
        if self.edges != StreamEdges::NemoFrameBatch {
            let lead_in = self.lead_in_frames as i64;
            start = start.max(-lead_in * s);
            kept_lo = kept_lo.max(-lead_in);
            if self.edges == StreamEdges::Trimmed && self.next_chunk == 0 {
                // The lead-in is kept, as the stream's start (see `lead`).
                kept_lo = start / s;
            }
        }
        if self.edges == StreamEdges::Trimmed {
            end = end.min(self.available);
        }
        let first = start / s;
        let outputs = ((end - start).max(0) as u64).div_ceil(s as u64) as i64;
        let keep_from = (kept_lo - first).max(0) as usize;
        let keep_to = (kept_hi.min(first + outputs) - first).max(keep_from as i64) as usize;
        (start, end, keep_from, keep_to)
    }

    /// Runs the buffer of chunk `next_chunk` and decodes its kept frames.
    fn recognize_chunk(&mut self) -> Result<ChunkResult> {
        let n_mels = self.features.n_mels();
        let (start, end, keep_from, keep_to) = self.buffer_span();
        let width = (end - start).max(0) as usize;
        let offset = usize::try_from(start - self.history_start).map_err(|_| {
            Error::Inference("internal error: buffer starts before the kept features".into())
        })? * n_mels;
        fill_buffer(
            &mut self.buffer,
            self.history.range(offset..offset + width * n_mels),
            n_mels,
            width,
        );
        let stream_from = (-start).max(0) as usize;
        match (self.edges, &self.normalization) {
            // A trimmed buffer is an utterance: normalised as offline recognition does.
            (StreamEdges::Trimmed, Normalization::PerFeature) => {
                normalize_per_feature_from(&mut self.buffer, stream_from)
            }
            // Statistics over the stream's frames: the whole buffer once the fill has left it.
            (StreamEdges::Silence, normalization) => {
                normalize_buffer(&mut self.buffer, normalization, stream_from)
            }
            (_, normalization) => normalize_buffer(&mut self.buffer, normalization, 0),
        }

        let frames = if width == 0 {
            self.logprobs.clear();
            0
        } else {
            infer_checked(&mut self.model, &self.buffer, &mut self.logprobs)?
        };
        if frames < keep_to {
            return Err(Error::Inference(format!(
                "the model returned {frames} output frames for {width} feature frames; expected at least {keep_to} (subsampling {})",
                self.subsampling
            )));
        }
        let vocab = self.model.vocab_size();
        let keep = keep_to - keep_from;
        let mut kept = self.logprobs[keep_from * vocab..keep_to * vocab].to_vec();
        if self.edges != StreamEdges::NemoFrameBatch {
            self.gate_digital_silence(start, keep_from, &mut kept);
        }
        let mut words = self.take_over();
        words.extend(self.decoder.push(&kept, keep));
        let (from, mut to) = self.kept_range(self.next_chunk);
        if self.edges == StreamEdges::Trimmed {
            // The last buffers end with the audio.
            to = (start.div_euclid(self.subsampling as i64) + keep_to as i64).max(0) as u64;
        }
        self.next_chunk += 1;
        let lead = self.lead();
        self.discard_features_before(self.buffer_span().0);
        let needed = self.buffer_span().0.div_euclid(self.subsampling as i64)
            - self.gate_frames
            - self.silence_reach;
        self.silence.discard_before(needed);
        Ok(ChunkResult {
            first_frame: from,
            frames: to - from,
            words: self.stream_words(words),
            partial: self.stream_words(self.decoder.pending()),
            unsettled_from: self
                .decoder
                .unsettled_from()
                .map(|f| f.saturating_sub(lead)),
            logprobs: kept,
            last: false,
            trailing_spaces: 0,
        })
    }

    /// Makes every kept output frame in digital silence a certain blank: a frame whose
    /// samples, the samples its input reads and those of [`SILENCE_GATE_MS`] (in whole output
    /// frames) on each side of it all lie within [`crate::frontend::WAVEFORM_SILENCE`] (digital zeros,
    /// dither, -90 dB noise). Decided on the samples, so every model family is gated at the
    /// same level: a log-mel model's features of faint noise are far above the log floor, and
    /// a buffer's statistics blow them up to speech's loudness. Such input holds no sound,
    /// but a model can still give a label some probability there, and the beam search adds
    /// up enough alignments of a short word over a long silence to write it ("it it it" over
    /// seconds of zeros). The margin keeps every frame near sound as the model made it, so
    /// speech is never touched. `start` is the buffer's first input frame; `kept` its frames
    /// from `keep_from` on.
    fn gate_digital_silence(&self, start: i64, keep_from: usize, kept: &mut [f32]) {
        let vocab = self.model.vocab_size();
        let first = start.div_euclid(self.subsampling as i64) + keep_from as i64;
        let margin = self.gate_frames + self.silence_reach;
        for (k, row) in kept.chunks_exact_mut(vocab).enumerate() {
            let frame = first + k as i64;
            if self.silence.all_silent(frame - margin..frame + margin + 1) {
                row.fill(GATED_LOGPROB);
                row[vocab - 1] = 0.0;
            }
        }
    }

    /// Drops feature frames no future buffer needs.
    fn discard_features_before(&mut self, frame: i64) {
        let n_mels = self.features.n_mels();
        let drop = (frame - self.history_start).clamp(0, (self.history.len() / n_mels) as i64);
        self.history.drain(..drop as usize * n_mels);
        self.history_start += drop;
    }
}

/// Copies frame-major `frames` (`width` frames of `n_mels`) into `buffer`'s `[n_mels][T]`
/// layout.
fn fill_buffer<'a>(
    buffer: &mut Features,
    frames: impl Iterator<Item = &'a f32>,
    n_mels: usize,
    width: usize,
) {
    buffer.n_mels = n_mels;
    buffer.frames = width;
    buffer.data.clear();
    buffer.data.resize(n_mels * width, 0.0);
    for (i, &v) in frames.enumerate() {
        buffer.data[(i % n_mels) * width + i / n_mels] = v;
    }
}

/// Normalises a buffer as NeMo's `FrameBatchASR` does for per-feature models (per band,
/// `(x - mean) / (std + 1e-5)` with the population standard deviation), with the statistics
/// of frames `stats_from..` (all frames in NeMo's scheme), or frame by frame with fixed
/// statistics.
fn normalize_buffer(buffer: &mut Features, normalization: &Normalization, stats_from: usize) {
    let width = buffer.frames;
    if width == 0 {
        return;
    }
    let stats_from = stats_from.min(width - 1);
    for (m, row) in buffer.data.chunks_exact_mut(width).enumerate() {
        match normalization {
            Normalization::PerFeature => {
                // numpy's f32 mean and std; f64 is the closest cheap stand-in for their
                // pairwise-summed result.
                let stats = &row[stats_from..];
                let n = stats.len() as f64;
                let mean = stats.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
                let var = stats
                    .iter()
                    .map(|&v| (f64::from(v) - mean).powi(2))
                    .sum::<f64>()
                    / n;
                let (mu, sigma) = (mean as f32, var.sqrt() as f32 + BUFFER_STD_EPSILON);
                for v in row {
                    *v = (*v - mu) / sigma;
                }
            }
            Normalization::Fixed { mean, std } => {
                for v in row {
                    *v = (*v - mean[m]) / std[m];
                }
            }
            Normalization::None => {}
        }
    }
}

/// Normalises a buffer as NeMo's offline `transcribe()` normalises an utterance (per band,
/// `(x - mean) / (std + 1e-5)` with the *unbiased* standard deviation), with the statistics
/// of frames `stats_from..`: the stream's own, so the silence before it does not change how
/// its frames are normalised, and the stream's frames are exactly offline recognition's.
fn normalize_per_feature_from(buffer: &mut Features, stats_from: usize) {
    let width = buffer.frames;
    if width == 0 {
        return;
    }
    let stats_from = stats_from.min(width - 1);
    for row in buffer.data.chunks_exact_mut(width) {
        let stats = &row[stats_from..];
        if stats.len() == 1 {
            // As offline recognition normalises a single frame (see `normalize_per_feature`).
            row.fill(0.0);
            continue;
        }
        // The same sums, in the same order, as `normalize_per_feature`.
        let n = stats.len() as f64;
        let mean = stats.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = stats
            .iter()
            .map(|&v| {
                let d = v as f64 - mean;
                d * d
            })
            .sum::<f64>()
            / (n - 1.0);
        let (mu, sigma) = (mean as f32, var.sqrt() as f32 + BUFFER_STD_EPSILON);
        for v in row {
            *v = (*v - mu) / sigma;
        }
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

/// A stream's hotword change, shared by both streaming strategies
/// ([`StreamingRecognizer::set_hotwords`]): the beam search (the pending one if a change is
/// pending, else `decoder`) takes the list in place; greedy decoding gets a beam search made
/// with the list in `next`, which [`take_over`] installs at the next chunk.
pub(crate) fn change_hotwords(
    decoder: &mut CtcDecoder,
    next: &mut Option<CtcDecoder>,
    description: &ModelDescription,
    settings: &crate::config::DecoderSettings,
) -> Result<()> {
    let hotwords = settings.hotwords.clone().filter(|l| !l.is_empty());
    match next.as_mut().unwrap_or(decoder) {
        CtcDecoder::Beam(search) => {
            let lexicon = match search.lexicon() {
                Some(current) => crate::config::DecoderSettings::lexicon_with_hotwords(
                    description,
                    current,
                    hotwords.as_deref(),
                )?,
                None => None,
            };
            search.set_hotwords(hotwords, lexicon)
        }
        CtcDecoder::Greedy(_) if hotwords.is_none() => Ok(()),
        CtcDecoder::Greedy(_) => {
            let options = settings.decoding_options(description)?;
            *next = Some(CtcDecoder::for_model(description, options)?);
            Ok(())
        }
    }
}

/// Installs the decoder [`change_hotwords`] made, if any: the old one's remaining words are
/// returned, the new one starts at the old one's next frame.
pub(crate) fn take_over(decoder: &mut CtcDecoder, next: &mut Option<CtcDecoder>) -> Vec<Word> {
    let Some(mut replacement) = next.take() else {
        return Vec::new();
    };
    let frame = decoder.next_frame();
    let words = decoder.finish();
    replacement.reset(frame);
    *decoder = replacement;
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::DecoderConfig;
    use crate::frontend::{FeatureExtractor, Normalization, PaddingMode};

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

    /// [`bursts`] with a faint tone (just above the silence gate's level) in the pauses: no
    /// digital silence anywhere, so the gate (which offline recognition does not have) leaves
    /// every frame as the model made it.
    fn sounding_bursts(len: usize) -> Vec<f32> {
        let faint = 20.0 / 32768.0;
        bursts(len)
            .into_iter()
            .enumerate()
            .map(|(n, x)| {
                if x == 0.0 {
                    faint * (n as f32 * 0.3).sin()
                } else {
                    x
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
    fn every_frame_is_covered_for_any_length_and_split() {
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
                // Every frame of the audio is covered, and at most a chunk and a right
                // context of the silence after it (NeMo's padding).
                assert!(
                    frames >= offline,
                    "len {len} {padding:?}: {frames} < {offline}"
                );
                assert!(
                    frames <= offline + 20 + 5,
                    "len {len} {padding:?}: {frames}"
                );
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

    /// Output frames of silence before the stream for window `g` (20 ms frames).
    fn lead_in(g: WindowConfig) -> u64 {
        (u64::from(STREAM_LEAD_IN_MS) / 20).min(g.left as u64 / 320)
    }

    /// Streams `samples` with trimmed edges.
    fn stream_trimmed(
        samples: &[f32],
        geometry: WindowConfig,
        frontend: FrontendConfig,
        piece: usize,
    ) -> Vec<ChunkResult> {
        let mut recognizer = StreamingRecognizer::new(
            LoudnessModel { vocab: 29 },
            &description(),
            frontend,
            geometry,
            DecoderConfig::default(),
        )
        .unwrap();
        recognizer.set_edges(StreamEdges::Trimmed);
        let mut results = Vec::new();
        for part in samples.chunks(piece.max(1)) {
            recognizer.push(part);
            while let Some(r) = recognizer.next_result().unwrap() {
                results.push(r);
            }
        }
        results.extend(recognizer.finish().unwrap());
        results
    }

    #[test]
    fn trimmed_edges_cover_exactly_the_audio() {
        for padding in [PaddingMode::Reflect, PaddingMode::Zeros] {
            for len in [0usize, 1, 159, 160, 319, 320, 321, 6399, 6400, 6401, 33333] {
                // Chunks shorter and longer than the right context.
                for (chunk, right) in [(6400, 1600), (640, 1600), (3200, 0)] {
                    let g = WindowConfig {
                        left: 3200,
                        chunk,
                        right,
                    };
                    let results = stream_trimmed(&bursts(len), g, raw_frontend(padding), 777);
                    let extractor = FeatureExtractor::new(raw_frontend(padding)).unwrap();
                    let audio = extractor.frame_count(len).div_ceil(2) as u64;
                    let mut next = 0;
                    for (i, r) in results.iter().enumerate() {
                        assert_eq!(r.first_frame, next, "len {len} {g:?}");
                        // The first buffer's kept frames include the lead-in.
                        let lead = if i == 0 && !r.last { lead_in(g) } else { 0 };
                        assert_eq!(r.logprobs.len() as u64, (lead + r.frames) * 29);
                        next += r.frames;
                    }
                    assert_eq!(next, audio, "len {len} {padding:?} {g:?}");
                    assert!(results.last().unwrap().last);
                }
            }
        }
    }

    #[test]
    fn trimmed_stream_within_one_buffer_is_offline_recognition_after_the_lead_in() {
        // Normalised per feature as an utterance is, with the statistics of the stream's
        // frames only, so the model sees exactly what offline recognition gives it after the
        // lead-in. (The stand-in model hears a letter in the normalised lead-in, a real one
        // silence, so only the stream's log-probs are compared.)
        let frontend = FrontendConfig::default();
        for len in [1000usize, 16_000, 31_999] {
            let samples = sounding_bursts(len);
            let mut model = LoudnessModel { vocab: 29 };
            let offline = recognize_offline(
                &mut model,
                &description(),
                frontend.clone(),
                DecoderConfig::default(),
                &samples,
            )
            .unwrap();
            let g = WindowConfig {
                left: 3200,
                chunk: 32_000,
                right: 16_000,
            };
            let results = stream_trimmed(&samples, g, frontend.clone(), 1600);
            let logprobs: Vec<f32> = results.iter().flat_map(|r| r.logprobs.clone()).collect();
            let lead = lead_in(g) as usize * 29;
            assert!(logprobs[lead..] == offline.logprobs, "len {len}");
        }
    }

    /// The stand-in model, keeping a copy of every buffer it is given.
    struct RecordingModel {
        inner: LoudnessModel,
        buffers: Vec<Features>,
    }

    impl AcousticModel for RecordingModel {
        fn vocab_size(&self) -> usize {
            self.inner.vocab_size()
        }
        fn infer(&mut self, features: &Features, out: &mut Vec<f32>) -> Result<usize> {
            self.buffers.push(features.clone());
            self.inner.infer(features, out)
        }
    }

    #[test]
    fn live_and_file_windows_start_with_the_same_lead_in() {
        // Before, live buffers started with the whole left and right context of silence
        // (2.5 s for the default phoneme model) and file buffers with none, so the model met
        // a stream's first word differently: QuartzNet missed an onset at the file start in
        // file windows and heard it live, 240 ms apart. Now both start with the lead-in.
        let g = WindowConfig {
            left: 16_000,
            chunk: 6400,
            right: 3200,
        };
        let lead_in = lead_in(g) as usize;
        assert!(lead_in > 0 && lead_in < (g.left + g.right) / 320);
        // Sound from the first sample: the stream's features all differ from the fill.
        let samples = sounding_bursts(48_000);
        let mut first_words = Vec::new();
        for edges in [StreamEdges::Silence, StreamEdges::Trimmed] {
            let mut r = StreamingRecognizer::new(
                RecordingModel {
                    inner: LoudnessModel { vocab: 29 },
                    buffers: Vec::new(),
                },
                &description(),
                FrontendConfig::default(),
                g,
                DecoderConfig::default(),
            )
            .unwrap();
            r.set_edges(edges);
            let mut words = Vec::new();
            for part in samples.chunks(1600) {
                r.push(part);
                while let Some(x) = r.next_result().unwrap() {
                    words.extend(x.words);
                }
            }
            words.extend(r.finish().unwrap().into_iter().flat_map(|x| x.words));
            first_words.push(words[0].start_frame);
            // The first buffer's leading columns equal to its first (the normalised fill):
            // the lead-in, two feature frames per output frame.
            let first = &r.model().buffers[0];
            let column = |t: usize| (0..first.n_mels).map(move |m| first.get(m, t));
            let fill = (0..first.frames)
                .take_while(|&t| column(t).eq(column(0)))
                .count();
            assert_eq!(fill, 2 * lead_in, "{edges:?}");
        }
        // Frames in the lead-in count as the stream start.
        assert_eq!(first_words, [0, 0]);
    }

    #[test]
    fn trimmed_chunks_equal_offline_with_enough_context() {
        let samples = sounding_bursts(50_000);
        let frontend = raw_frontend(PaddingMode::Reflect);
        let mut model = LoudnessModel { vocab: 29 };
        let offline = recognize_offline(
            &mut model,
            &description(),
            frontend.clone(),
            DecoderConfig::default(),
            &samples,
        )
        .unwrap();
        let g = WindowConfig {
            left: 640,
            chunk: 3200,
            right: 640,
        };
        for piece in [1, 999, 50_000] {
            let results = stream_trimmed(&samples, g, frontend.clone(), piece);
            let logprobs: Vec<f32> = results.iter().flat_map(|r| r.logprobs.clone()).collect();
            let lead = lead_in(g) as usize * 29;
            assert!(logprobs[lead..] == offline.logprobs, "piece {piece}");
        }
    }

    #[test]
    fn memory_stays_bounded() {
        for edges in [StreamEdges::Silence, StreamEdges::Trimmed] {
            memory_stays_bounded_with(edges);
        }
    }

    fn memory_stays_bounded_with(edges: StreamEdges) {
        let g = WindowConfig {
            left: 3200,
            chunk: 3200,
            right: 3200,
        };
        let mut r = loudness_recognizer(g, PaddingMode::Reflect);
        r.set_edges(edges);
        let piece = bursts(1000);
        for _ in 0..2000 {
            r.push(&piece);
            while r.next_result().unwrap().is_some() {}
            let frames = r.history.len() / r.features.n_mels();
            assert!(
                frames <= (g.window() + piece.len()) / 160,
                "{edges:?}: {frames}"
            );
        }
    }

    /// Noise of 1 or 2 steps of 16-bit audio (about -90 dBFS), from a fixed seed.
    fn faint_noise(len: usize) -> Vec<f32> {
        let mut state = 0x2545_f491_u32;
        (0..len)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let step = [-2.0f32, -1.0, 1.0, 2.0][(state >> 30) as usize];
                step / 32768.0
            })
            .collect()
    }

    /// Streams `samples` through the stand-in model with per-buffer statistics (as a log-mel
    /// model runs) and `edges`.
    fn stream_normalized(samples: &[f32], edges: StreamEdges) -> Vec<ChunkResult> {
        let g = WindowConfig {
            left: 3200,
            chunk: 6400,
            right: 3200,
        };
        let mut r = StreamingRecognizer::new(
            LoudnessModel { vocab: 29 },
            &description(),
            FrontendConfig::default(),
            g,
            DecoderConfig::default(),
        )
        .unwrap();
        r.set_edges(edges);
        let mut results = Vec::new();
        for part in samples.chunks(1600) {
            r.push(part);
            while let Some(x) = r.next_result().unwrap() {
                results.push(x);
            }
        }
        results.extend(r.finish().unwrap());
        results
    }

    #[test]
    fn faint_noise_is_silence_for_a_log_mel_model() {
        // Its features are far above the log floor, and each buffer's statistics make them
        // as loud as speech: the stand-in model hears letters in every frame.
        let noise = faint_noise(48_000);
        for edges in [StreamEdges::Silence, StreamEdges::Trimmed] {
            let results = stream_normalized(&noise, edges);
            for r in &results {
                assert!(r.words.is_empty(), "{edges:?}: {:?}", r.words);
                for row in r.logprobs.chunks_exact(29) {
                    assert_eq!(row[28], 0.0, "{edges:?}: a frame not gated");
                    assert!(row[..28].iter().all(|&v| v == GATED_LOGPROB));
                }
            }
        }
    }

    #[test]
    fn the_gate_margin_is_a_duration() {
        // QuartzNet's 20 ms frames, a sub-word model's 80 ms (hop 160, subsampling 8), and a
        // frame that does not divide 200 ms: at least 200 ms on each side.
        assert_eq!(silence_gate_frames(16_000, 320), 10);
        assert_eq!(silence_gate_frames(16_000, 1280), 3);
        assert_eq!(silence_gate_frames(16_000, 480), 7);
    }

    #[test]
    fn the_gate_spares_sound_and_its_margin() {
        // One second of faint noise, 200 ms of a tone at -66 dBFS plus one step, one second
        // of noise: the frames within the margin of the tone are the model's own.
        let mut samples = faint_noise(16_000);
        samples.extend((0..3200).map(|n| 17.0 / 32768.0 * if n % 2 == 0 { 1.0 } else { -1.0 }));
        samples.extend(faint_noise(16_000));
        // Output frames 50..60 hold the tone; a frame's FFT reads one frame further each way.
        let margin = silence_gate_frames(16_000, 320) + 1;
        let expected: Vec<i64> = (50 - margin..60 + margin).collect();
        for edges in [StreamEdges::Silence, StreamEdges::Trimmed] {
            // The first buffer's first kept frames lie before the stream: the right context
            // (live) or the lead-in (files), here both the left context (10 frames).
            let first: i64 = -10;
            let rows = stream_normalized(&samples, edges)
                .into_iter()
                .flat_map(|r| r.logprobs)
                .collect::<Vec<_>>();
            let ungated: Vec<i64> = (first..)
                .zip(rows.chunks_exact(29))
                .filter(|(_, row)| row[..28].iter().any(|&v| v != GATED_LOGPROB))
                .map(|(frame, _)| frame)
                .collect();
            assert_eq!(ungated, expected, "{edges:?}");
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

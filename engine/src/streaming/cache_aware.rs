// SPDX-License-Identifier: MPL-2.0
//! Cache-aware streaming: a FastConformer trained for streaming stepped chunk by chunk, each
//! feature frame computed once, the encoder's past carried in caches (`docs/CACHE_AWARE.md`).
//!
//! Features are NeMo's without normalisation, so each frame is final once its samples are
//! there ([`FeatureStream`]). A step runs as soon as its chunk of `chunk_frames` frames is
//! computed: the graph gets the `pre_encode_cache_frames` frames before the chunk (zeros
//! before the first), the chunk and the caches the previous step returned, and its output
//! frames (`encoded_lengths` of them) go to the decoder, whose greedy state carries across
//! steps as NeMo's concatenated predictions do. At the end of the stream every STFT column
//! past the frontend's valid frames is a frame of 0.0 (NeMo's buffer takes the
//! preprocessor's masked last column), and the rest of the stream runs unless it is shorter
//! than `min_chunk_frames`.

use crate::decode::{CtcDecoder, DecodingOptions, Word};
use crate::error::Result;
use crate::frontend::{FeatureExtractor, FeatureStream};
use crate::model::{CacheAwareModel, Caches, LookAhead};

/// What one step produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CacheAwareStep {
    /// Feature frames the graph was given: the pre-encode frames and the chunk.
    pub input_frames: usize,
    /// The stream output frame of the first of this step's frames.
    pub first_frame: u64,
    /// Output frames the step produced.
    pub frames: usize,
    /// Their log-probs, `[frames][vocab]`.
    pub logprobs: Vec<f32>,
    /// Words that became final, in order; their frames are stream output frames.
    pub words: Vec<Word>,
    /// The word still being spoken, which later steps may extend.
    pub partial: Vec<Word>,
    /// Words output later start at or after this frame; `None`: at or after the step's end.
    pub unsettled_from: Option<u64>,
    /// True for the last result of a stream.
    pub last: bool,
    /// Last result only: the spaces after the last word, which end NeMo's text.
    pub trailing_spaces: u32,
}

/// The cache-aware streaming recogniser: frontend, stepped graph and decoder.
pub struct CacheAwareRecognizer {
    model: CacheAwareModel,
    look_ahead: LookAhead,
    features: FeatureStream,
    n_mels: usize,
    /// Feature frames (frame-major) from stream frame `held_from` on: the next step's
    /// pre-encode frames and everything after them.
    held: Vec<f32>,
    held_from: u64,
    /// Feature frames computed so far.
    computed: u64,
    /// Stream frame where the next step's chunk starts.
    next_start: u64,
    /// Steps run in this stream.
    steps: u64,
    /// Output frames produced in this stream.
    output_frames: u64,
    samples: u64,
    caches: Caches,
    decoder: CtcDecoder,
    /// The beam search a hotword change made to replace greedy decoding at the next step.
    next_decoder: Option<CtcDecoder>,
    /// The band-major input of a step, reused.
    input: Vec<f32>,
}

impl CacheAwareRecognizer {
    /// A recogniser for `model` at its look-ahead `look_ahead` (an index into the
    /// description's list, see [`crate::model::CacheAwareStreaming::look_ahead_for_ms`]),
    /// decoding with `options`.
    pub fn new(
        model: CacheAwareModel,
        look_ahead: usize,
        options: DecodingOptions,
    ) -> Result<Self> {
        let description = model.description();
        let look_ahead = model.streaming().look_ahead(look_ahead)?.clone();
        let decoder = CtcDecoder::for_model(description, options)?;
        let extractor = FeatureExtractor::new(description.frontend.clone())?;
        let caches = Caches::initial(model.streaming());
        Ok(Self {
            n_mels: description.frontend.n_mels,
            features: FeatureStream::new(extractor),
            look_ahead,
            held: Vec::new(),
            held_from: 0,
            computed: 0,
            next_start: 0,
            steps: 0,
            output_frames: 0,
            samples: 0,
            caches,
            decoder,
            next_decoder: None,
            input: Vec::new(),
            model,
        })
    }

    /// The model.
    pub fn model(&self) -> &CacheAwareModel {
        &self.model
    }

    /// Gives the model back (e.g. to build a recogniser at another look-ahead).
    pub fn into_model(self) -> CacheAwareModel {
        self.model
    }

    /// The look-ahead the stream runs at.
    pub fn look_ahead(&self) -> &LookAhead {
        &self.look_ahead
    }

    /// Samples pushed since the stream started.
    pub fn samples_pushed(&self) -> u64 {
        self.samples
    }

    /// Whether words are decoded by beam search; after [`Self::set_hotwords`] switched to it,
    /// already.
    pub fn uses_beam_search(&self) -> bool {
        self.next_decoder
            .as_ref()
            .unwrap_or(&self.decoder)
            .is_beam_search()
    }

    /// Uses `settings.hotwords` (`None` or empty: none) from the next step on, as the
    /// buffered recogniser does ([`crate::streaming::StreamingRecognizer::set_hotwords`]): the
    /// model's caches and the stream go on untouched; a beam search takes the list in place,
    /// greedy decoding gives way to the beam search `settings` make (its words so far are
    /// completed with the next step's).
    pub fn set_hotwords(&mut self, settings: &crate::config::DecoderSettings) -> Result<()> {
        super::change_hotwords(
            &mut self.decoder,
            &mut self.next_decoder,
            self.model.description(),
            settings,
        )
    }

    /// Buffers audio (f32, int16 / 32768 scale) and computes the frames it completes.
    pub fn push(&mut self, samples: &[f32]) {
        self.samples += samples.len() as u64;
        self.computed += self.features.push(samples, &mut self.held) as u64;
    }

    /// Runs the next step if its whole chunk has been computed.
    pub fn next_result(&mut self) -> Result<Option<CacheAwareStep>> {
        let chunk = self.look_ahead.chunk_frames as u64;
        if self.computed < self.next_start + chunk {
            return Ok(None);
        }
        self.step(chunk as usize).map(Some)
    }

    /// Ends the stream: appends the 0.0 frames, runs every step left (a last chunk shorter
    /// than `min_chunk_frames` is not run, as in NeMo), completes the last word and resets
    /// for a new stream. The last result has `last` set; there is always one.
    pub fn finish(&mut self) -> Result<Vec<CacheAwareStep>> {
        let mut results = Vec::new();
        if self.samples > 0 {
            self.computed += self.features.finish(&mut self.held) as u64;
            let hop = self.features.config().hop_length as u64;
            let columns = 1 + self.samples / hop;
            let zeros = columns.saturating_sub(self.computed);
            self.held
                .resize(self.held.len() + zeros as usize * self.n_mels, 0.0);
            self.computed += zeros;
            let least = self.model.streaming().min_chunk_frames as u64;
            while self.next_start < self.computed {
                let width =
                    (self.computed - self.next_start).min(self.look_ahead.chunk_frames as u64);
                if self.steps > 0 && width < least {
                    break;
                }
                results.push(self.step(width as usize)?);
            }
        }
        if results.is_empty() {
            results.push(CacheAwareStep {
                first_frame: self.output_frames,
                ..Default::default()
            });
        }
        if let Some(last) = results.last_mut() {
            last.words
                .extend(super::take_over(&mut self.decoder, &mut self.next_decoder));
            last.words.extend(self.decoder.finish());
            last.partial.clear();
            last.unsettled_from = None;
            last.trailing_spaces = self.decoder.trailing_spaces();
            last.last = true;
        }
        self.reset();
        Ok(results)
    }

    /// Forgets the stream: the next sample pushed starts a new one.
    pub fn reset(&mut self) {
        self.features.reset();
        self.held.clear();
        self.held_from = 0;
        self.computed = 0;
        self.next_start = 0;
        self.steps = 0;
        self.output_frames = 0;
        self.samples = 0;
        self.caches = Caches::initial(self.model.streaming());
        if let Some(next) = self.next_decoder.take() {
            self.decoder = next;
        }
        self.decoder.reset(0);
    }

    /// Runs the step whose chunk is the `width` frames from `next_start`.
    fn step(&mut self, width: usize) -> Result<CacheAwareStep> {
        let pre = self.model.streaming().pre_encode_cache_frames;
        self.gather_input(pre, width);
        let mut logprobs = Vec::new();
        let frames = self
            .model
            .step(&self.input, pre + width, &mut self.caches, &mut logprobs)?;
        let mut words = super::take_over(&mut self.decoder, &mut self.next_decoder);
        words.extend(self.decoder.push(&logprobs, frames));
        let result = CacheAwareStep {
            input_frames: pre + width,
            first_frame: self.output_frames,
            frames,
            logprobs,
            words,
            partial: self.decoder.pending(),
            unsettled_from: self.decoder.unsettled_from(),
            last: false,
            trailing_spaces: 0,
        };
        self.steps += 1;
        self.output_frames += frames as u64;
        self.next_start += width as u64;
        self.forget_before(self.next_start.saturating_sub(pre as u64));
        Ok(result)
    }

    /// The step's input, band-major: the `pre` frames before the chunk (0.0 before the
    /// stream: the pad of pad-and-drop), then the chunk's `width` frames.
    fn gather_input(&mut self, pre: usize, width: usize) {
        let total = pre + width;
        let first = self.next_start as i64 - pre as i64;
        self.input.clear();
        self.input.resize(self.n_mels * total, 0.0);
        for t in 0..total {
            let frame = first + t as i64;
            if frame < 0 {
                continue;
            }
            let at = (frame as u64 - self.held_from) as usize * self.n_mels;
            for (m, &v) in self.held[at..at + self.n_mels].iter().enumerate() {
                self.input[m * total + t] = v;
            }
        }
    }

    /// Drops the held frames before stream frame `frame`.
    fn forget_before(&mut self, frame: u64) {
        if frame > self.held_from {
            let drop = (frame - self.held_from) as usize;
            self.held.drain(..drop * self.n_mels);
            self.held_from = frame;
        }
    }
}

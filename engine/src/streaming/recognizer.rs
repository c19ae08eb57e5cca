// SPDX-License-Identifier: MPL-2.0
//! One streaming recogniser over both strategies, chosen by the model's description: a model
//! whose description has a `streaming` section runs cache-aware ([`CacheAwareRecognizer`],
//! `docs/CACHE_AWARE.md`), any other over buffered windows ([`StreamingRecognizer`],
//! `docs/STREAMING.md`). Both give [`ChunkResult`]s, so a client has one path.

use std::path::Path;

use super::{CacheAwareRecognizer, CacheAwareStep, ChunkResult, StreamingRecognizer, WindowConfig};
use crate::config::{DecoderSettings, MIN_LATENCY_MS, RecognizerConfig};
use crate::error::Result;
use crate::model::{
    CacheAwareModel, CacheAwareStreaming, ExecutionProvider, LoadOptions, ModelDescription,
    OnnxModel, RetryPolicy, ServerOptions, SessionPool,
};

/// A loaded model, of the strategy its description asks for.
pub enum StreamingModel {
    /// A whole-utterance graph, streamed over buffered windows.
    Buffered(OnnxModel),
    /// A cache-aware streaming graph, stepped chunk by chunk.
    CacheAware(CacheAwareModel),
}

impl StreamingModel {
    /// Loads `path` as the strategy its description beside it (`model.json`) asks for; a
    /// description only in the graph's metadata is read by [`OnnxModel::load`], which names
    /// a cache-aware one it cannot run.
    pub fn load(path: &Path, options: &LoadOptions) -> Result<Self> {
        Self::load_on(path, options, ExecutionProvider::default())
    }

    /// [`load`](Self::load), with the sessions on `provider` ([`SessionPool::shared_on`]).
    pub fn load_on(
        path: &Path,
        options: &LoadOptions,
        provider: ExecutionProvider,
    ) -> Result<Self> {
        let sidecar = ModelDescription::load_sidecar(path)?;
        if sidecar.is_some_and(|d| d.streaming.is_some()) {
            return CacheAwareModel::load_on(path, options, provider).map(Self::CacheAware);
        }
        OnnxModel::load_on(path, options, provider).map(Self::Buffered)
    }

    /// The model of `path` run by the inference server of `server` (buffered windows; a
    /// cache-aware model is refused: its caches live with the stream). See
    /// [`OnnxModel::load_served`].
    pub fn load_served(path: &Path, options: &LoadOptions, server: &ServerOptions) -> Result<Self> {
        OnnxModel::load_served(path, options, server).map(Self::Buffered)
    }

    /// The model's description.
    pub fn description(&self) -> &ModelDescription {
        match self {
            Self::Buffered(m) => m.description(),
            Self::CacheAware(m) => m.description(),
        }
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        match self {
            Self::Buffered(m) => m.path(),
            Self::CacheAware(m) => m.path(),
        }
    }

    /// The model's ONNX Runtime sessions: which execution provider they run on
    /// ([`SessionPool::provider`]) and, for `auto`, why not the GPU; `None` for a model an
    /// inference server runs.
    pub fn sessions(&self) -> Option<&std::sync::Arc<SessionPool>> {
        match self {
            Self::Buffered(m) => m.sessions(),
            Self::CacheAware(m) => Some(m.sessions()),
        }
    }
}

/// Which look-ahead of a cache-aware model a latency of `latency_ms` picks: `None` (no
/// latency asked), the description's default; else the largest look-ahead whose delay
/// ([`cache_aware_delay_samples`]) plus the decoder's text hold (`hold_ms`,
/// [`text_hold_ms`]) fits, or the shortest delay if none fits.
pub fn cache_aware_look_ahead(
    description: &ModelDescription,
    latency_ms: Option<u32>,
    hold_ms: u32,
) -> usize {
    let Some(streaming) = &description.streaming else {
        return 0;
    };
    let Some(ms) = latency_ms else {
        return streaming.default_look_ahead;
    };
    let asked = u64::from(ms.saturating_sub(hold_ms)) * u64::from(description.sample_rate) / 1000;
    let delay = |i: usize| cache_aware_delay_samples(description, streaming, i);
    let fitting = (0..streaming.look_aheads.len())
        .filter(|&i| delay(i) <= asked)
        .max_by_key(|&i| streaming.look_aheads[i].look_ahead_ms);
    fitting.unwrap_or_else(|| {
        (0..streaming.look_aheads.len())
            .min_by_key(|&i| delay(i))
            .unwrap_or(0)
    })
}

/// How long the decoder holds text back after the step that recognised it, in ms: the
/// silence that completes a word (`word_gap_ms`) and, for a beam search, its commit delay,
/// as a buffered model's [`crate::config::LatencyPlan`] budgets them.
pub fn text_hold_ms(settings: &DecoderSettings, beam_search: bool) -> u32 {
    let commit = if beam_search {
        settings.commit_delay_ms
    } else {
        0
    };
    settings.word_gap_ms.saturating_add(commit)
}

/// The audio a cache-aware step's first output frame waits for, in samples: its chunk of
/// feature frames and what the last frame's FFT reads past its hop (96 samples at 16 kHz
/// with a 512-point FFT).
pub fn cache_aware_delay_samples(
    description: &ModelDescription,
    streaming: &CacheAwareStreaming,
    look_ahead: usize,
) -> u64 {
    let frontend = &description.frontend;
    let reach = (frontend.n_fft / 2).saturating_sub(frontend.hop_length);
    let chunk = streaming
        .look_aheads
        .get(look_ahead)
        .map_or(0, |l| l.chunk_frames);
    (chunk * frontend.hop_length + reach) as u64
}

/// A streaming recogniser of either strategy.
pub enum Recognizer {
    /// Buffered windows around each chunk (NeMo's `FrameBatchASR`).
    Buffered(Box<StreamingRecognizer<OnnxModel>>),
    /// NeMo's cache-aware streaming.
    CacheAware(Box<CacheAwareRecognizer>),
}

impl Recognizer {
    /// The recogniser for `model`: buffered windows as `config` says, or, for a cache-aware
    /// model, the look-ahead `latency_ms` picks ([`cache_aware_look_ahead`], less the
    /// decoder's [`text_hold_ms`] of `config.decoding`; the window
    /// parts of `config` do not apply to it).
    pub fn from_config(
        model: StreamingModel,
        config: &RecognizerConfig,
        latency_ms: Option<u32>,
    ) -> Result<Self> {
        match model {
            StreamingModel::Buffered(m) => {
                StreamingRecognizer::from_config(m, config).map(|r| Self::Buffered(Box::new(r)))
            }
            StreamingModel::CacheAware(m) => {
                let description = m.description().clone();
                let decoding = config.decoding.decoding_options(&description)?;
                let hold = text_hold_ms(&config.decoding, decoding.beam.is_some());
                let look_ahead = cache_aware_look_ahead(&description, latency_ms, hold);
                CacheAwareRecognizer::new(m, look_ahead, decoding)
                    .map(|r| Self::CacheAware(Box::new(r)))
            }
        }
    }

    /// The model's description.
    pub fn description(&self) -> &ModelDescription {
        match self {
            Self::Buffered(r) => r.model().description(),
            Self::CacheAware(r) => r.model().description(),
        }
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        match self {
            Self::Buffered(r) => r.model().path(),
            Self::CacheAware(r) => r.model().path(),
        }
    }

    /// How calls to the inference server that runs the model are retried when they get no
    /// answer (nothing for a model run in this process).
    pub fn set_server_retry(&self, policy: RetryPolicy) {
        if let Self::Buffered(r) = self
            && let Some(served) = r.model().served()
        {
            served.set_retry(policy);
        }
    }

    /// The inference server's URL, when a server runs the model.
    pub fn server_url(&self) -> Option<&str> {
        match self {
            Self::Buffered(r) => r.model().served().map(|s| s.url()),
            Self::CacheAware(_) => None,
        }
    }

    /// Whether this is a cache-aware recogniser.
    pub fn is_cache_aware(&self) -> bool {
        matches!(self, Self::CacheAware(_))
    }

    /// The shortest latency this recogniser is planned for, in ms: a buffered one's windows
    /// for a shorter latency are [`MIN_LATENCY_MS`]'s, so it reports at least that; a
    /// cache-aware one has no floor (the latency picks among its look-aheads, down to the
    /// shortest step).
    pub fn latency_floor_ms(&self) -> u32 {
        match self {
            Self::Buffered(_) => MIN_LATENCY_MS,
            Self::CacheAware(_) => 0,
        }
    }

    /// The window geometry in samples; a cache-aware step's is its chunk alone.
    pub fn geometry(&self) -> WindowConfig {
        match self {
            Self::Buffered(r) => r.geometry(),
            Self::CacheAware(r) => WindowConfig {
                left: 0,
                chunk: r.look_ahead().chunk_frames * r.model().description().frontend.hop_length,
                right: 0,
            },
        }
    }

    /// Audio a chunk's first frame waits for before it is recognised, in samples.
    pub fn lookahead(&self) -> usize {
        match self {
            Self::Buffered(r) => r.lookahead(),
            Self::CacheAware(r) => {
                let streaming = r.model().streaming();
                let index = streaming
                    .look_aheads
                    .iter()
                    .position(|l| l == r.look_ahead())
                    .unwrap_or(0);
                cache_aware_delay_samples(r.model().description(), streaming, index) as usize
            }
        }
    }

    /// Whether words are decoded by beam search.
    pub fn uses_beam_search(&self) -> bool {
        match self {
            Self::Buffered(r) => r.uses_beam_search(),
            Self::CacheAware(r) => r.uses_beam_search(),
        }
    }

    /// Changes the hotword list mid-stream (see [`StreamingRecognizer::set_hotwords`]).
    pub fn set_hotwords(
        &mut self,
        description: &ModelDescription,
        settings: &DecoderSettings,
    ) -> Result<()> {
        match self {
            Self::Buffered(r) => r.set_hotwords(description, settings),
            Self::CacheAware(r) => r.set_hotwords(settings),
        }
    }

    /// Samples per output frame.
    pub fn frame_samples(&self) -> usize {
        match self {
            Self::Buffered(r) => r.frame_samples(),
            Self::CacheAware(r) => {
                let d = r.model().description();
                d.frontend.hop_length * d.input_frames_per_output_frame()
            }
        }
    }

    /// Samples pushed since the stream started.
    pub fn samples_pushed(&self) -> u64 {
        match self {
            Self::Buffered(r) => r.samples_pushed(),
            Self::CacheAware(r) => r.samples_pushed(),
        }
    }

    /// Gives the model back.
    pub fn into_model(self) -> StreamingModel {
        match self {
            Self::Buffered(r) => StreamingModel::Buffered(r.into_model()),
            Self::CacheAware(r) => StreamingModel::CacheAware(r.into_model()),
        }
    }

    /// Forgets the stream.
    pub fn reset(&mut self) {
        match self {
            Self::Buffered(r) => r.reset(),
            Self::CacheAware(r) => r.reset(),
        }
    }

    /// Buffers audio (f32, int16 / 32768 scale).
    pub fn push(&mut self, samples: &[f32]) {
        match self {
            Self::Buffered(r) => r.push(samples),
            Self::CacheAware(r) => r.push(samples),
        }
    }

    /// Recognises the next chunk if its audio is there.
    pub fn next_result(&mut self) -> Result<Option<ChunkResult>> {
        match self {
            Self::Buffered(r) => r.next_result(),
            Self::CacheAware(r) => Ok(r.next_result()?.map(chunk_result)),
        }
    }

    /// Ends the stream and recognises the rest; the last result has `last` set.
    pub fn finish(&mut self) -> Result<Vec<ChunkResult>> {
        match self {
            Self::Buffered(r) => r.finish(),
            Self::CacheAware(r) => Ok(r.finish()?.into_iter().map(chunk_result).collect()),
        }
    }
}

/// A cache-aware step as a chunk's result: its words are final once decoded (greedy), the
/// word still being spoken is the partial.
fn chunk_result(step: CacheAwareStep) -> ChunkResult {
    ChunkResult {
        first_frame: step.first_frame,
        frames: step.frames as u64,
        unsettled_from: step.unsettled_from,
        words: step.words,
        partial: step.partial,
        logprobs: step.logprobs,
        last: step.last,
        trailing_spaces: step.trailing_spaces,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tiny cache-aware fixture's look-aheads (1040, 480, 80, 0 ms: steps of 1120, 560,
    /// 160 and 80 ms, each 6 ms more for the last frame's FFT) by the latency asked.
    #[test]
    fn latency_picks_the_largest_look_ahead_that_fits() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/cache-aware/ctc/model.onnx");
        let description = ModelDescription::load_sidecar(&path).unwrap().unwrap();
        let streaming = description.streaming.clone().unwrap();
        let picked = |latency: Option<u32>| {
            let index = cache_aware_look_ahead(&description, latency, 0);
            streaming.look_aheads[index].look_ahead_ms
        };
        assert_eq!(picked(None), 1040, "the description's default");
        for (latency, look_ahead) in [
            (4000, 1040),
            (1126, 1040),
            (1125, 480),
            (566, 480),
            (565, 80),
            (166, 80),
            (165, 0),
            (86, 0),
            // Nothing fits: the shortest delay.
            (10, 0),
        ] {
            assert_eq!(picked(Some(latency)), look_ahead, "latency {latency} ms");
        }
        assert_eq!(
            cache_aware_delay_samples(&description, &streaming, 1),
            8_960 + 96
        );
        // The decoder's hold comes off the latency first.
        assert_eq!(
            streaming.look_aheads[cache_aware_look_ahead(&description, Some(1226), 100)]
                .look_ahead_ms,
            1040
        );
        assert_eq!(
            streaming.look_aheads[cache_aware_look_ahead(&description, Some(1225), 100)]
                .look_ahead_ms,
            480
        );
        let greedy = DecoderSettings::default();
        assert_eq!(
            text_hold_ms(&greedy, true),
            greedy.word_gap_ms + greedy.commit_delay_ms
        );
        assert_eq!(text_hold_ms(&greedy, false), greedy.word_gap_ms);
    }
}

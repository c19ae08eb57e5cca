// SPDX-License-Identifier: MPL-2.0
//! Loading: the model, its language model and lexicon, the recogniser and output timeline
//! built around them for a plan, the warm-up that measures the latency to report, and what
//! stays loaded between starts.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gst::subclass::prelude::*;
use quartznet_engine::config;
use quartznet_engine::decode::DecodingOptions;
use quartznet_engine::lm::NgramModel;
use quartznet_engine::model::{LoadOptions, ModelDescription, WordUnits, bundled};
use quartznet_engine::streaming::{Recognizer, StreamingModel, WindowConfig};

use super::hotwords::Speller;
use super::imp::{CAT, QuartzNetStt};
use super::messages::{error_message, load_progress, warning};
use super::pacing::Pacer;
use super::settings::{Settings, non_empty};
use super::timeline::{Clock, Timeline, Tolerance};

/// QuartzNet's rate: what the CAPS query answers when no model description says otherwise.
const DEFAULT_SAMPLE_RATE: u32 = 16_000;

/// What loading depends on: a start with the same key reuses what the last one loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct LoadKey {
    model: PathBuf,
    threads: u32,
    execution_provider: super::ExecutionProviderKind,
    lm_path: Option<String>,
    vocabulary_path: Option<String>,
    decoder: super::Decoder,
    /// Where the model runs (a change of server loads afresh).
    server: super::served::ServerSettings,
}

impl LoadKey {
    fn new(model: PathBuf, settings: &Settings) -> Self {
        Self {
            model,
            threads: settings.threads,
            execution_provider: settings.execution_provider,
            lm_path: non_empty(&settings.lm_path).map(String::from),
            vocabulary_path: non_empty(&settings.vocabulary_path).map(String::from),
            decoder: settings.decoder,
            server: settings.server.clone(),
        }
    }
}

/// What the element owns besides the recogniser: the decoder's language model and lexicon
/// and the measured time to recognise a window. They outlive the recogniser, which is
/// rebuilt when the plan changes, and (with the model) the stream, so a stop and a start with
/// the same settings load nothing (transcriberbin takes its transcriber to PAUSED and back
/// to NULL to probe it before it plays).
pub(super) struct Kept {
    key: LoadKey,
    /// The language model loaded beside the acoustic model, until the first decoding
    /// options hold it.
    language_model: Option<Arc<NgramModel>>,
    /// The decoding options of the last build: they hold the language model and lexicon
    /// the decoder uses, so a rebuild finds them in the process's caches.
    decoding: Option<DecodingOptions>,
    /// The time to recognise one window, per window geometry measured on this model.
    window_times: Vec<(WindowConfig, Duration)>,
}

/// What a stop leaves loaded for the next start.
pub(super) struct Loaded {
    model: StreamingModel,
    kept: Kept,
}

/// The recogniser and the input it is fed, owned by the streaming thread while a stream
/// runs. Its lock is held while the model runs; nothing a query needs lives here.
pub(super) struct Stream {
    pub(super) recognizer: Recognizer,
    /// A byte left over from an odd-sized buffer, joined with the next one.
    pub(super) odd_byte: Option<u8>,
    /// Reused conversion buffer, so buffers allocate nothing once warmed up.
    pub(super) samples: Vec<f32>,
    /// The version of the settings whose hotword list the recogniser has (see `hotwords`).
    pub(super) hotwords_version: u64,
    kept: Kept,
}

impl Stream {
    /// The model and what the element keeps, for the next build or start.
    pub(super) fn into_loaded(self) -> Loaded {
        Loaded {
            model: self.recognizer.into_model(),
            kept: self.kept,
        }
    }
}

/// What queries and the output side need, created in `start()` and dropped in `stop()`.
/// Its lock is only ever held briefly, never while the model runs.
pub(super) struct State {
    pub(super) sample_rate: u32,
    pub(super) timeline: Timeline,
    /// The latency reported to the pipeline: the `latency` property, or more when the
    /// windows and the time to recognise one cannot deliver text within it.
    pub(super) latency: gst::ClockTime,
    /// The caps we last refused, so the hint is posted once per caps.
    pub(super) refused_caps: Option<gst::Caps>,
    /// Whether drifting timestamps were reported (once per start).
    pub(super) drift_warned: bool,
    /// `latency` changed after start but before any audio: rebuild at the first buffer.
    pub(super) replan: bool,
    /// The first buffer fixed the plan: `latency` no longer changes it.
    pub(super) plan_frozen: bool,
    /// Whether the recogniser was built for live input (until the first buffer shows
    /// otherwise, it is).
    pub(super) live: bool,
    /// How far behind real time live input may arrive and its text still be on time.
    pub(super) allowed_lag: gst::ClockTime,
    /// Drops live input that recognition cannot keep up with.
    pub(super) pacer: Pacer,
    /// Upstream's liveness and minimum latency, asked once per stream.
    pub(super) upstream: Option<(bool, gst::ClockTime)>,
    /// A phoneme model's G2P and lexicon, which spell a hotword list's new words when it
    /// changes; `None` for other models.
    pub(super) speller: Option<Speller>,
}

impl QuartzNetStt {
    /// The loaded model's rate; before it is loaded, the rate its description beside it
    /// (`model.json`) gives, else QuartzNet's 16 kHz. Looked up once per `model-path`: caps
    /// queries come often.
    pub(super) fn model_rate(&self) -> u32 {
        if let Some(state) = self.state.lock().unwrap().as_ref() {
            return state.sample_rate;
        }
        let mut settings = self.settings.lock().unwrap();
        if let Some(rate) = settings.described_rate {
            return rate;
        }
        let rate = non_empty(&settings.model_path)
            .map(PathBuf::from)
            .or_else(|| bundled::find().ok())
            .and_then(|path| ModelDescription::load_sidecar(&path).ok().flatten())
            .map_or(DEFAULT_SAMPLE_RATE, |d| d.sample_rate);
        settings.described_rate = Some(rate);
        rate
    }

    /// The model file the settings name, else the bundled one.
    fn model_file(&self, settings: &Settings) -> Result<PathBuf, gst::ErrorMessage> {
        if let Some(path) = non_empty(&settings.model_path) {
            return Ok(PathBuf::from(path));
        }
        let path = bundled::find().map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::NotFound,
                ("no model: set the model-path property to an ONNX model exported from NeMo ({e})")
            )
        })?;
        gst::info!(CAT, imp = self, "{}", bundled::explain(&path));
        Ok(path)
    }

    /// Builds the recogniser and the output timeline, around what the last start loaded when
    /// it was loaded for the same settings, else around a fresh load; every failure is an
    /// error message in the domain of its kind, naming the file and the problem, so the state
    /// change fails cleanly.
    pub(super) fn open(
        &self,
        loaded: Option<Loaded>,
        settings: &Settings,
    ) -> Result<(Stream, State), gst::ErrorMessage> {
        let key = LoadKey::new(self.model_file(settings)?, settings);
        // A malformed hotword list fails the start before anything loads.
        settings.hotword_list().map_err(|e| error_message(&e))?;
        let loaded = match loaded {
            Some(loaded) if loaded.kept.key == key => {
                gst::info!(
                    CAT,
                    imp = self,
                    "reusing the loaded {}",
                    key.model.display()
                );
                loaded
            }
            stale => {
                // The old model goes before the new one loads: never both in memory.
                drop(stale);
                self.load(key, settings)?
            }
        };
        // Settings that work against recognition without being errors: said once, at start
        // (with the window parts the model's output frames round).
        let mut advice: Vec<String> = settings
            .recognizer_config(true)
            .warnings(config::available_cores())
            .into_iter()
            .map(|a| a.to_string())
            .collect();
        match &loaded.model {
            StreamingModel::Buffered(model) => advice.extend(
                settings
                    .overrides()
                    .warnings(model.description())
                    .into_iter()
                    .map(|a| a.to_string()),
            ),
            // A cache-aware model's chunk is its look-ahead's, picked by `latency`: the
            // buffered window's parts have nothing to set.
            StreamingModel::CacheAware(model) => advice.extend(ignored_windows(
                settings,
                &model.path().display().to_string(),
            )),
        }
        // `auto` that fell back to the CPU: said, never silent.
        if let Some(reason) = loaded.model.sessions().and_then(|s| s.fallback()) {
            advice.push(format!(
                "execution-provider auto runs the model on the CPU: {reason}"
            ));
        }
        for advice in advice {
            self.notices
                .message(warning(&*self.obj(), gst::LibraryError::Settings, &advice));
        }
        // Until the first buffer shows otherwise, input is taken to be live (see `replan`).
        self.build(loaded, settings, true)
    }

    /// Loads the model and, beside it, its language model, with progress messages.
    fn load(&self, key: LoadKey, settings: &Settings) -> Result<Loaded, gst::ErrorMessage> {
        let path = key.model.clone();
        let what = format!("loading {}", path.display());
        self.notices
            .message(load_progress(&*self.obj(), gst::ProgressType::Start, &what));
        let result = self.load_files(key, settings);
        let (kind, text) = match &result {
            Ok(_) => (
                gst::ProgressType::Complete,
                format!("loaded {}", path.display()),
            ),
            Err(e) => (gst::ProgressType::Error, format!("{what}: {e}")),
        };
        self.notices
            .message(load_progress(&*self.obj(), kind, &text));
        result
    }

    fn load_files(&self, key: LoadKey, settings: &Settings) -> Result<Loaded, gst::ErrorMessage> {
        let config = settings.recognizer_config(true);
        config.validate().map_err(|e| error_message(&e))?;
        // The language model loads while the acoustic model does; its errors surface when
        // the decoder is built, as without the preload.
        let language_model = config.decoding.preload_language_model(&key.model);
        let options = LoadOptions {
            threads: config.threads,
        };
        let server = settings.server.options().map_err(|e| error_message(&e))?;
        let model = match &server {
            None => {
                StreamingModel::load_on(&key.model, &options, settings.execution_provider.into())
            }
            Some(server) => StreamingModel::load_served(&key.model, &options, server),
        }
        .map_err(|e| error_message(&e))?;
        match model.sessions() {
            Some(sessions) => gst::info!(
                CAT,
                imp = self,
                "model runs on execution provider {}",
                sessions.provider()
            ),
            None => gst::info!(CAT, imp = self, "model runs on the inference server"),
        }
        let language_model = language_model.and_then(|loading| loading.wait().ok());
        if let Some(lm) = &language_model {
            gst::info!(
                CAT,
                imp = self,
                "language model loaded {} ({} words)",
                if lm.loaded_from_cache() {
                    "from its compiled copy in the cache"
                } else {
                    "by parsing its ARPA text"
                },
                lm.vocabulary_size()
            );
        }
        Ok(Loaded {
            model,
            kept: Kept {
                key,
                language_model,
                decoding: None,
                window_times: Vec::new(),
            },
        })
    }

    /// The recogniser and timeline for a loaded model, these settings and input that is
    /// `live` or not: windows, decoder, warm-up and the latency figures.
    pub(super) fn build(
        &self,
        loaded: Loaded,
        settings: &Settings,
        live: bool,
    ) -> Result<(Stream, State), gst::ErrorMessage> {
        let Loaded { model, mut kept } = loaded;
        let description = model.description().clone();
        // The windows follow the model's own latency plan (its description's), from now on
        // also in what the window properties read back.
        let mut settings = settings.clone();
        settings.shares = description.latency_shares;
        self.settings.lock().unwrap().shares = description.latency_shares;
        let settings = &settings;
        let mut config = settings.recognizer_config(live);
        config.validate().map_err(|e| error_message(&e))?;
        config.decoding.hotwords = settings.hotword_list().map_err(|e| error_message(&e))?;
        if let Some(list) = &config.decoding.hotwords {
            gst::info!(
                CAT,
                imp = self,
                "hotwords: {} phrases ({})",
                list.len(),
                list.source()
            );
        }
        if let Some(code) = non_empty(&settings.language_code) {
            description
                .check_language(code)
                .map_err(|e| error_message(&e))?;
        }
        let (window, rounded) = WindowConfig::for_model(&config, &description);
        if rounded && description.streaming.is_none() {
            gst::warning!(
                CAT,
                imp = self,
                "window durations rounded to whole output frames: {window:?} samples"
            );
        }
        kept.decoding = Some(
            config
                .decoding
                .decoding_options(&description)
                .map_err(|e| error_message(&e))?,
        );
        // The decoding options hold the language model from now on.
        kept.language_model.take();
        let speller = speller(&description, kept.decoding.as_ref());
        let latency_asked = settings.overrides().latency_ms;
        let mut recognizer = Recognizer::from_config(model, &config, latency_asked)
            .map_err(|e| error_message(&e))?;
        recognizer.set_server_retry(super::served::retry_policy(live));
        if let Recognizer::CacheAware(r) = &recognizer {
            let l = r.look_ahead();
            gst::info!(
                CAT,
                imp = self,
                "cache-aware streaming: look-ahead {} ms (attention context {:?}), steps of \
                 {} ms",
                l.look_ahead_ms,
                l.att_context_size,
                recognizer.geometry().chunk as u64 * 1000 / u64::from(description.sample_rate)
            );
        }
        let beam = recognizer.uses_beam_search();
        if beam {
            let d = &config.decoding;
            let (width, weight, bonus) = config::beam_settings(d, &description);
            gst::info!(
                CAT,
                imp = self,
                "beam search: width {width}, LM weight {weight}, word bonus {bonus}, unknown-word penalty {}",
                d.unk_penalty
            );
        }

        let geometry = recognizer.geometry();
        let clock = Clock {
            sample_rate: description.sample_rate,
            frame_samples: recognizer.frame_samples() as u64,
            chunk_samples: geometry.chunk as u64,
            word_gap_samples: Clock::samples_at(
                description.sample_rate,
                gst::ClockTime::from_mseconds(u64::from(config.decoding.word_gap_ms)),
            ),
            trust: Tolerance {
                tolerance: gst::ClockTime::from_nseconds(settings.tolerance),
                discont_wait: gst::ClockTime::from_nseconds(settings.discont_wait),
            },
        };
        let (latency, text_hold) = if live {
            self.live_latency(
                &mut recognizer,
                &mut kept.window_times,
                &clock,
                settings.latency_ms,
            )?
        } else {
            // Nobody waits for a file's text in real time: no warm-up, no latency to keep,
            // and no timestamp is ever moved.
            let ms = |samples: usize| clock.time(samples as u64).mseconds();
            gst::info!(
                CAT,
                imp = self,
                "input is not live: chunks of {} ms with {} ms / {} ms of context, trimmed \
                 at the stream's edges (set latency or a window property to recognise it as \
                 live input)",
                ms(geometry.chunk),
                ms(geometry.left),
                ms(geometry.right),
            );
            (
                clock.time(recognizer.lookahead() as u64),
                gst::ClockTime::MAX,
            )
        };
        let state = State {
            sample_rate: description.sample_rate,
            timeline: Timeline::new(clock, text_hold, settings.style()),
            latency,
            refused_caps: None,
            drift_warned: false,
            replan: false,
            plan_frozen: false,
            live,
            allowed_lag: text_hold.max(clock.time(geometry.chunk as u64)),
            pacer: Pacer::default(),
            upstream: None,
            speller,
        };
        let stream = Stream {
            recognizer,
            odd_byte: None,
            samples: Vec::new(),
            hotwords_version: settings.hotwords_version,
            kept,
        };
        Ok((stream, state))
    }

    /// The latency to report
    /// (the `latency` property, or more when the windows and recognition need it) and how
    /// long before its chunk a word may start and its text still be on time.
    fn live_latency(
        &self,
        recognizer: &mut Recognizer,
        window_times: &mut Vec<(WindowConfig, Duration)>,
        clock: &Clock,
        latency_ms: u32,
    ) -> Result<(gst::ClockTime, gst::ClockTime), gst::ErrorMessage> {
        let geometry = recognizer.geometry();
        let elapsed = match window_times.iter().find(|(g, _)| *g == geometry) {
            Some(&(_, elapsed)) => elapsed,
            None => {
                let elapsed = window_time(recognizer)?;
                window_times.push((geometry, elapsed));
                elapsed
            }
        };
        // Text leaves once the chunk and its right context have arrived and been recognised;
        // what the latency leaves beyond that is how long before the chunk a word may start
        // and still be on time (text held longer has its timestamp moved forward).
        let lookahead = clock.time(recognizer.lookahead() as u64);
        let processing = gst::ClockTime::from_nseconds(elapsed.as_nanos() as u64 * 2);
        // Buffered windows are planned for no less than their floor, so that is the least
        // they report; a cache-aware model takes any latency.
        let floor = recognizer.latency_floor_ms();
        if latency_ms < floor {
            let text = format!(
                "latency of {latency_ms} ms is shorter than buffered windows are planned for: \
                 {floor} ms's windows, reporting at least {floor} ms (only cache-aware \
                 streaming models go lower)"
            );
            self.notices
                .message(warning(&*self.obj(), gst::LibraryError::Settings, &text));
        }
        let asked = gst::ClockTime::from_mseconds(u64::from(latency_ms.max(floor)));
        let latency = asked.max(lookahead.saturating_add(processing));
        // Windows longer than the latency are a setting to fix; recognition time pushing
        // past it (a loaded machine) is only logged.
        if lookahead > asked && recognizer.is_cache_aware() {
            let text = format!(
                "latency of {} ms is too short for the model's shortest look-ahead, a {} ms \
                 step (recognised in {} ms): reporting {} ms",
                asked.mseconds(),
                clock.time(geometry.chunk as u64).mseconds(),
                processing.mseconds(),
                latency.mseconds()
            );
            self.notices
                .message(warning(&*self.obj(), gst::LibraryError::Settings, &text));
        } else if lookahead > asked {
            let text = format!(
                "latency of {} ms is too short for a {} ms chunk and {} ms right context \
                 (recognised in {} ms): reporting {} ms",
                asked.mseconds(),
                clock.time(geometry.chunk as u64).mseconds(),
                clock.time(geometry.right as u64).mseconds(),
                processing.mseconds(),
                latency.mseconds()
            );
            self.notices
                .message(warning(&*self.obj(), gst::LibraryError::Settings, &text));
        } else if latency > asked {
            gst::info!(
                CAT,
                imp = self,
                "recognising a window takes {processing}: reporting {latency} of latency"
            );
        }
        let text_hold = latency.saturating_sub(lookahead).saturating_sub(processing);
        gst::info!(
            CAT,
            imp = self,
            "latency {latency}: chunk + right context {lookahead}, recognition {processing}, \
             words may start {text_hold} before their chunk"
        );
        Ok((latency, text_hold))
    }

    /// The `latency` property, or what the windows and recognition need if that is more
    /// (known once started).
    pub(super) fn latency(&self) -> gst::ClockTime {
        if let Some(state) = self.state.lock().unwrap().as_ref() {
            return state.latency;
        }
        let s = self.settings.lock().unwrap();
        let plan = s.plan();
        let asked = u64::from(s.latency_ms);
        let lookahead = u64::from(plan.chunk_ms) + u64::from(plan.right_context_ms);
        gst::ClockTime::from_mseconds(asked.max(lookahead))
    }
}

/// What spells new hotwords for `description`'s model, decoded with `decoding`: its G2P and
/// lexicon, when it is a phoneme model that has both.
fn speller(description: &ModelDescription, decoding: Option<&DecodingOptions>) -> Option<Speller> {
    let WordUnits::Phonemes { g2p: Some(g2p), .. } = &description.units else {
        return None;
    };
    let lexicon = decoding?.beam.as_ref()?.lexicon.clone()?;
    Some(Speller {
        g2p: g2p.clone(),
        lexicon,
    })
}

/// The window properties set for a cache-aware model, which they do not apply to: one
/// warning saying they are ignored and what sets its chunk instead.
fn ignored_windows(settings: &Settings, model: &str) -> Option<String> {
    let o = settings.overrides();
    let set: Vec<&str> = [
        ("left-context-ms", o.left_context_ms),
        ("chunk-ms", o.chunk_ms),
        ("right-context-ms", o.right_context_ms),
    ]
    .into_iter()
    .filter_map(|(name, v)| v.map(|_| name))
    .collect();
    (!set.is_empty()).then(|| {
        format!(
            "{model} is a cache-aware streaming model: {} ignored (its chunk is the look-ahead \
             that the latency property picks)",
            set.join(", ")
        )
    })
}

/// Warms ONNX Runtime up with a window of silence (its first run allocates and is much the
/// slowest) and measures the time to recognise a second one.
fn window_time(recognizer: &mut Recognizer) -> Result<Duration, gst::ErrorMessage> {
    let silence = vec![0.0; recognizer.lookahead()];
    let mut elapsed = Duration::ZERO;
    for _ in 0..2 {
        let started = Instant::now();
        recognizer.push(&silence);
        let run = recognizer.next_result();
        elapsed = started.elapsed();
        recognizer.reset();
        run.map_err(|e| {
            let path = recognizer.path().display();
            gst::error_msg!(gst::LibraryError::Failed, ("{path}: {e}"))
        })?;
    }
    Ok(elapsed)
}

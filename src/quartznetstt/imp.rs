// SPDX-License-Identifier: MPL-2.0

/**
 * SECTION:element-quartznetstt
 *
 * Transcribes speech with a CTC model run by ONNX Runtime: by default the bundled English
 * phoneme model (words from its pronunciation lexicon and language model; add words with
 * `vocabulary-path`), or any NVIDIA NeMo character CTC model (QuartzNet, Jasper) exported to
 * ONNX, exactly as NeMo computes it. Raw S16LE mono audio at the model's rate goes in; timestamped UTF-8 text
 * buffers come out, and an element message named `quartznetstt` is posted on the bus for
 * every recognised chunk (final words and the word still being spoken).
 *
 * The audio is recognised in windows of left context + chunk + right context (NeMo's
 * buffered streaming), so the text of a chunk is known `chunk-ms + right-context-ms` after its
 * start. The `latency` property (default 4 s) sets the windows and word rules and is the
 * latency the element reports (more only if the windows and the time to recognise one need
 * it); text of a word that started so long before its chunk that it would be late is
 * timestamped no earlier than that latency allows, so a live sink never receives it late.
 * Live input that recognition slower than real time cannot keep up with is dropped with QoS
 * messages and a warning. `hotwords` and `hotwords-path` name phrases the beam search
 * favours (names, terms); they may change while PLAYING and are used from the next chunk.
 * `latency`, `lateness`, `language-code` and the `rstranscribe/final-transcript` event make
 * it usable as the transcriber of gst-plugins-rs's `transcriberbin`.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 -q filesrc location=samples/LJ001-0001.wav ! wavparse ! audioconvert ! audioresample ! quartznetstt separator=newline ! fdsink fd=1
 * ]|
 */
use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_transform::GenerateOutputSuccess;
use gst_base::subclass::prelude::*;
use quartznet_engine::model::runtime;

use super::hotwords::Handover;
use super::input::catch_panic;
use super::loading::{Loaded, State, Stream};
use super::messages::{Notices, output_event, report_message, warning};
use super::settings::{self, Settings, non_empty};
use super::timeline::Output;

pub(super) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "quartznetstt",
        gst::DebugColorFlags::empty(),
        Some("QuartzNet speech-to-text"),
    )
});

/// The element. Locks, always taken in this order (a thread holding a later one never takes
/// an earlier one; docs/ARCHITECTURE.md): `stream`, then `settings`, then `state`. Only the
/// streaming thread takes `stream`, and it holds it while the model runs; queries (caps,
/// latency, properties) take only `settings` or `state`, so they never wait for inference.
/// `loaded`, `notices` and `hotword_handover` are leaves, held only to move something in or
/// out. `hotword_setter` comes before all of them and only property setters take it (one
/// hotword change at a time, see `hotwords.rs`). No message is posted, event pushed or query
/// sent while any of `stream`, `settings` and `state` is held: messages wait in `notices`.
#[derive(Default)]
pub struct QuartzNetStt {
    pub(super) settings: Mutex<Settings>,
    pub(super) stream: Mutex<Option<Stream>>,
    pub(super) state: Mutex<Option<State>>,
    /// What the last start loaded, while no stream holds it (between stop and start).
    pub(super) loaded: Mutex<Option<Loaded>>,
    pub(super) notices: Notices,
    /// Serialises the `hotwords` and `hotwords-path` setters.
    pub(super) hotword_setter: Mutex<()>,
    /// A hotword list set while the element runs, for the streaming thread.
    pub(super) hotword_handover: Handover,
}

#[glib::object_subclass]
impl ObjectSubclass for QuartzNetStt {
    const NAME: &'static str = "GstQuartzNetStt";
    type Type = super::QuartzNetStt;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for QuartzNetStt {
    fn properties() -> &'static [glib::ParamSpec] {
        settings::properties()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        self.apply_property(pspec, value);
        self.notices.post(&*self.obj());
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        self.settings.lock().unwrap().get(pspec.name())
    }
}

impl GstObjectImpl for QuartzNetStt {}

impl ElementImpl for QuartzNetStt {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "QuartzNet speech-to-text",
                "Audio/Text/Filter",
                "Transcribes speech with CTC models run by ONNX Runtime (a bundled English phoneme model, NeMo QuartzNet and other character models)",
                "The quartznetstt developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            // Mono S16LE at any rate: the model's rate is only known once it is chosen, so the
            // CAPS query answers it (from the model's description before it is loaded), and
            // accept_caps explains a wrong rate.
            let sink_caps = gst_audio::AudioCapsBuilder::new_interleaved()
                .format(gst_audio::AudioFormat::S16le)
                .channels(1)
                .build();
            let src_caps = text_caps();
            vec![
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &sink_caps,
                )
                .unwrap(),
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &src_caps,
                )
                .unwrap(),
            ]
        });
        PAD_TEMPLATES.as_ref()
    }
}

fn text_caps() -> gst::Caps {
    gst::Caps::builder("text/x-raw")
        .field("format", "utf8")
        .build()
}

fn audio_caps(rate: u32) -> gst::Caps {
    gst_audio::AudioCapsBuilder::new_interleaved()
        .format(gst_audio::AudioFormat::S16le)
        .rate(rate as i32)
        .channels(1)
        .build()
}

impl BaseTransformImpl for QuartzNetStt {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::NeverInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let loaded = self.loaded.lock().unwrap().take();
        let opened = catch_panic(|| self.open(loaded, &settings));
        self.notices.post(&*self.obj());
        let (stream, state) = opened.map_err(|panic| {
            gst::error_msg!(
                gst::LibraryError::Failed,
                (
                    "internal error while loading model {}: {panic}",
                    non_empty(&settings.model_path).unwrap_or("(bundled)")
                )
            )
        })??;
        gst::info!(
            CAT,
            imp = self,
            "started with {} ({}); window {:?}; ONNX Runtime {:?}",
            stream.recognizer.path().display(),
            stream.recognizer.description().source,
            stream.recognizer.geometry(),
            runtime::loaded_library()
        );
        *self.stream.lock().unwrap() = Some(stream);
        *self.state.lock().unwrap() = Some(state);
        Ok(())
    }

    /// Keeps what was loaded (see `Loaded`): taking the element to PAUSED and back, as
    /// transcriberbin does, must not load the model twice.
    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        let stream = self.stream.lock().unwrap().take();
        *self.state.lock().unwrap() = None;
        if let Some(stream) = stream {
            *self.loaded.lock().unwrap() = Some(stream.into_loaded());
        }
        Ok(())
    }

    fn transform_caps(
        &self,
        direction: gst::PadDirection,
        _caps: &gst::Caps,
        filter: Option<&gst::Caps>,
    ) -> Option<gst::Caps> {
        let caps = match direction {
            gst::PadDirection::Src => audio_caps(self.model_rate()),
            _ => text_caps(),
        };
        Some(match filter {
            Some(filter) => filter.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
            None => caps,
        })
    }

    fn accept_caps(&self, direction: gst::PadDirection, caps: &gst::Caps) -> bool {
        if direction != gst::PadDirection::Sink {
            return self.parent_accept_caps(direction, caps);
        }
        let rate = self.model_rate();
        if caps.can_intersect(&audio_caps(rate)) {
            return true;
        }
        // Wrong rate, channels or format: say what to add, once per caps.
        let first_time = self.state.lock().unwrap().as_mut().is_none_or(|s| {
            let new = s.refused_caps.as_ref() != Some(caps);
            s.refused_caps = Some(caps.clone());
            new
        });
        if first_time {
            let text = format!(
                "quartznetstt takes S16LE mono audio at {rate} Hz: add 'audioconvert ! audioresample' before it"
            );
            let message = gst::message::Warning::builder(gst::CoreError::Negotiation, &text)
                .details(
                    gst::Structure::builder("details")
                        .field("refused-caps", caps)
                        .build(),
                )
                .src(&*self.obj())
                .build();
            let _ = self.obj().post_message(message);
        }
        false
    }

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_audio::AudioInfo::from_caps(incaps)
            .map_err(|_| gst::loggable_error!(CAT, "cannot parse input caps {}", incaps))?;
        let rate = self.model_rate();
        if info.rate() != rate
            || info.channels() != 1
            || info.format() != gst_audio::AudioFormat::S16le
        {
            return Err(gst::loggable_error!(
                CAT,
                "caps {} are not S16LE mono at {} Hz",
                incaps,
                rate
            ));
        }
        Ok(())
    }

    fn query(&self, direction: gst::PadDirection, query: &mut gst::QueryRef) -> bool {
        if direction == gst::PadDirection::Src
            && let gst::QueryViewMut::Latency(q) = query.view_mut()
        {
            let mut upstream = gst::query::Latency::new();
            if !self.obj().sink_pad().peer_query(&mut upstream) {
                return false;
            }
            let (live, min, max) = upstream.result();
            let ours = self.latency();
            gst::debug!(
                CAT,
                imp = self,
                "latency: upstream {min} - {max:?}, ours {ours}"
            );
            q.set(
                live,
                min.saturating_add(ours),
                max.map(|m| m.saturating_add(ours)),
            );
            return true;
        }
        BaseTransformImplExt::parent_query(self, direction, query)
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        match event.view() {
            gst::EventView::Eos(_) => {
                // The tail (audio shorter than a window) is recognised before EOS goes on.
                if let Err(err) = self.guard("recognising the end of the stream", || self.drain()) {
                    gst::warning!(CAT, imp = self, "drain at EOS failed: {err:?}");
                }
            }
            gst::EventView::Segment(segment) => {
                // Text of the old segment must go out before the new segment event.
                if let Err(err) = self.guard("recognising the end of a segment", || self.drain()) {
                    gst::warning!(CAT, imp = self, "drain at new segment failed: {err:?}");
                }
                if let Some(late) = self.with_lateness(segment.segment(), event.seqnum()) {
                    return self.parent_sink_event(late);
                }
            }
            gst::EventView::Gap(gap) => {
                let (start, duration) = gap.get();
                match self.guard("recognising a gap", || self.fill_gap(start, duration)) {
                    Ok(true) => return true,
                    Ok(false) => {}
                    Err(err) => gst::warning!(CAT, imp = self, "upstream gap failed: {err:?}"),
                }
            }
            gst::EventView::FlushStop(_) => self.reset(),
            _ => {}
        }
        self.parent_sink_event(event)
    }

    fn generate_output(&self) -> Result<GenerateOutputSuccess, gst::FlowError> {
        if let Some(buffer) = self.take_queued_buffer() {
            self.guard("recognising", || self.process_buffer(&buffer))?;
        }
        // Gaps are events, so push them here and hand the next text buffer to the base class.
        loop {
            let (output, reports) = {
                let mut state = self.state.lock().unwrap();
                let state = state.as_mut().ok_or(gst::FlowError::Flushing)?;
                (state.timeline.next_output(), state.timeline.take_reports())
            };
            self.post_reports(reports);
            match output {
                None => return Ok(GenerateOutputSuccess::NoOutput),
                Some(Output::Text(buffer)) => return Ok(GenerateOutputSuccess::Buffer(buffer)),
                Some(event) => {
                    self.obj().src_pad().push_event(output_event(event));
                }
            }
        }
    }
}

impl QuartzNetStt {
    /// The segment event with `lateness` added to its base, so the text's running time is
    /// that much later (as the gst-plugins-rs transcribers do); `None` without lateness.
    fn with_lateness(&self, segment: &gst::Segment, seqnum: gst::Seqnum) -> Option<gst::Event> {
        let lateness = self.settings.lock().unwrap().lateness_ms;
        let mut segment = segment.downcast_ref::<gst::ClockTime>()?.clone();
        if lateness == 0 {
            return None;
        }
        let base = segment.base().unwrap_or(gst::ClockTime::ZERO);
        segment.set_base(base.saturating_add(gst::ClockTime::from_mseconds(u64::from(lateness))));
        Some(
            gst::event::Segment::builder(&segment)
                .seqnum(seqnum)
                .build(),
        )
    }

    /// Runs `f` for `stage`: a panic in it (a bug, or input no check foresaw) becomes an
    /// error message naming the stage and the model instead of unwinding into GStreamer, and
    /// the recogniser, whose state it may have left half-changed, is dropped. The messages
    /// `f` queued are posted once it returns (it holds no lock then).
    pub(super) fn guard<T>(
        &self,
        stage: &str,
        f: impl FnOnce() -> Result<T, gst::FlowError>,
    ) -> Result<T, gst::FlowError> {
        let result = catch_panic(f);
        self.notices.post(&*self.obj());
        let panic = match result {
            Ok(result) => return result,
            Err(panic) => panic,
        };
        self.stream.clear_poison();
        self.settings.clear_poison();
        self.state.clear_poison();
        let model = self
            .stream
            .lock()
            .unwrap()
            .take()
            .map(|s| s.recognizer.path().display().to_string())
            .unwrap_or_default();
        gst::element_imp_error!(
            self,
            gst::StreamError::Failed,
            ("internal error while {stage} with model {model}: {panic}")
        );
        Err(gst::FlowError::Error)
    }

    /// Stores a property value. The check whether it may change now and the change itself
    /// happen under one hold of `settings` and `state`, so a `latency` set while the first
    /// buffer arrives is either applied by that buffer's replan or refused with a warning,
    /// never stored and ignored. The model, threads, window and frontend are fixed while a
    /// stream runs (read at start); `latency` is still taken until the first buffer
    /// (transcriberbin may set it after the element started). The hotword lists are read
    /// and checked outside the locks (`hotwords.rs`).
    fn apply_property(&self, pspec: &glib::ParamSpec, value: &glib::Value) {
        let name = pspec.name();
        if matches!(name, "hotwords" | "hotwords-path") {
            // Read and checked outside the locks: a file and the G2P take time.
            return self.change_hotwords(name, value);
        }
        let mut settings = self.settings.lock().unwrap();
        let mut state = self.state.lock().unwrap();
        let replan = name == "latency" && state.as_ref().is_some_and(|s| !s.plan_frozen);
        if !pspec.flags().contains(gst::PARAM_FLAG_MUTABLE_PLAYING) && state.is_some() && !replan {
            // An application must learn that its change did nothing.
            self.notices.message(warning(
                &*self.obj(),
                gst::LibraryError::Settings,
                &format!(
                    "property '{name}' can only be changed in the NULL or READY state: the change is ignored"
                ),
            ));
            return;
        }
        settings.set(name, value);
        // The output style may change while streaming.
        if let Some(state) = state.as_mut() {
            state.timeline.set_style(settings.style());
            state.replan |= replan;
        }
    }

    /// Fixes the plan at the first buffer, rebuilding the recogniser around the loaded model
    /// first when it changed since start: `latency` was set, or upstream turned out not to be
    /// live (a file gets the file windows). The pipeline is then told to ask for the latency
    /// again. `upstream_live` is upstream's answer, asked before the stream lock was taken.
    pub(super) fn replan(
        &self,
        stream: &mut Option<Stream>,
        upstream_live: bool,
    ) -> Result<(), gst::FlowError> {
        let (settings, live) = {
            let settings = self.settings.lock().unwrap();
            let mut state = self.state.lock().unwrap();
            let Some(state) = state.as_mut() else {
                return Ok(());
            };
            if std::mem::replace(&mut state.plan_frozen, true) {
                return Ok(());
            }
            // A latency or window set by the user: recognised as live input would be.
            let live = settings.overrides().recognised_live(upstream_live);
            let pending = std::mem::take(&mut state.replan) || state.live != live;
            if !pending {
                return Ok(());
            }
            (settings.clone(), live)
        };
        let Some(current) = stream.take() else {
            return Ok(());
        };
        let (new_stream, mut new_state) = self
            .build(current.into_loaded(), &settings, live)
            .map_err(|e| {
                self.notices.error(e);
                gst::FlowError::Error
            })?;
        new_state.plan_frozen = true;
        gst::info!(CAT, imp = self, "latency now {}", new_state.latency);
        *stream = Some(new_stream);
        *self.state.lock().unwrap() = Some(new_state);
        self.notices
            .message(gst::message::Latency::builder().src(&*self.obj()).build());
        Ok(())
    }

    /// Posts the reports the timeline holds (no lock held).
    pub(super) fn post_reports(&self, reports: Vec<super::timeline::Report>) {
        if reports.is_empty() {
            return;
        }
        let segment = self.obj().segment();
        let segment = segment.downcast_ref::<gst::ClockTime>();
        for report in &reports {
            let _ = self
                .obj()
                .post_message(report_message(&*self.obj(), report, segment));
        }
    }
}

// SPDX-License-Identifier: MPL-2.0
//! Live pipelines in real time: a capture device is never held up (the README's live
//! pipelines lose no audio), and recognition slower than real time drops late input with a
//! warning and QoS messages instead of falling further and further behind.
//!
//! The capture device is simulated as ALSA and PulseAudio sources behave: a thread produces
//! a 20 ms period on a real-time schedule into a 200 ms ring buffer (the default
//! `buffer-time` of `alsasrc` and `pulsesrc`), here appsrc's queue; a period that finds the
//! ring full is lost (an overrun) and counted.

mod common;
mod plugin;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;
use plugin::init;

const RATE: u64 = 16_000;
const PERIOD_SAMPLES: usize = 320;
const RING_BYTES: u64 = 200 * RATE / 1000 * 2;

/// The live caption pipeline the README documents, with the capture device and video sink
/// replaced by test doubles: a queue lets capture go on while the model runs, and one after
/// the element lets recognition go on while `textoverlay` holds text back until the video
/// reaches it.
const DOCUMENTED: &str = "appsrc name=capture ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=10000000000 ! audioconvert ! audioresample ! quartznetstt name=stt threads=1 ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=0 ! txt.text_sink videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=10/1 ! textoverlay name=txt ! fakesink sync=true";

/// A simulated capture device feeding the appsrc named `capture`.
struct Capture {
    stop: Arc<AtomicBool>,
    overruns: Arc<AtomicU64>,
    periods: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Capture {
    /// Sets the appsrc named `capture` up as a live source (before the pipeline starts).
    fn configure(pipeline: &gst::Pipeline) -> gst_app::AppSrc {
        let src = pipeline
            .by_name("capture")
            .unwrap()
            .downcast::<gst_app::AppSrc>()
            .unwrap();
        src.set_caps(Some(
            &gst_audio::AudioCapsBuilder::new_interleaved()
                .format(gst_audio::AudioFormat::S16le)
                .rate(RATE as i32)
                .channels(1)
                .build(),
        ));
        src.set_is_live(true);
        src.set_format(gst::Format::Time);
        // appsrc's own limit is not the device's: the ring is checked in `start`.
        src.set_max_bytes(0);
        src
    }

    /// Starts capturing `speech` in a loop into `src`, timestamped as a device does: the
    /// running time of the first period plus the sample count.
    fn start(src: gst_app::AppSrc, speech: Vec<f32>) -> Self {
        let (stop, overruns, periods) = Default::default();
        let capture = Self {
            stop: Arc::clone(&stop),
            overruns: Arc::clone(&overruns),
            periods: Arc::clone(&periods),
            thread: None,
        };
        let bytes: Vec<u8> = speech
            .iter()
            .flat_map(|&s| ((s * 32768.0).clamp(-32768.0, 32767.0) as i16).to_le_bytes())
            .collect();
        let period = Duration::from_micros(PERIOD_SAMPLES as u64 * 1_000_000 / RATE);
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let first = src
                .clock()
                .zip(src.base_time())
                .map_or(gst::ClockTime::ZERO, |(clock, base)| {
                    clock.time().saturating_sub(base)
                });
            let mut n = 0u64;
            let mut offset = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let due = started + period * n as u32;
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                let mut chunk = Vec::with_capacity(PERIOD_SAMPLES * 2);
                while chunk.len() < PERIOD_SAMPLES * 2 {
                    let take = (PERIOD_SAMPLES * 2 - chunk.len()).min(bytes.len() - offset);
                    chunk.extend_from_slice(&bytes[offset..offset + take]);
                    offset = (offset + take) % bytes.len();
                }
                periods.fetch_add(1, Ordering::Relaxed);
                if src.current_level_bytes() + chunk.len() as u64 > RING_BYTES {
                    overruns.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let mut buffer = gst::Buffer::from_mut_slice(chunk);
                {
                    let buffer = buffer.get_mut().unwrap();
                    let samples = (n - 1) * PERIOD_SAMPLES as u64;
                    buffer.set_pts(
                        first + gst::ClockTime::from_nseconds(samples * 1_000_000_000 / RATE),
                    );
                    buffer.set_duration(gst::ClockTime::from_nseconds(
                        PERIOD_SAMPLES as u64 * 1_000_000_000 / RATE,
                    ));
                }
                if src.push_buffer(buffer).is_err() {
                    break;
                }
            }
        });
        Self {
            thread: Some(thread),
            ..capture
        }
    }

    /// Stops capturing; returns (periods, overruns).
    fn stop(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        (
            self.periods.load(Ordering::Relaxed),
            self.overruns.load(Ordering::Relaxed),
        )
    }
}

/// What a live run produced.
#[derive(Debug, Default)]
struct Run {
    periods: u64,
    overruns: u64,
    /// Text buffers that reached `textoverlay` (or the element's src pad).
    texts: u64,
    warnings: Vec<String>,
    /// QoS messages from the element: (processed, dropped) samples of the last one.
    qos: Vec<(u64, u64)>,
    /// The most the input was behind real time on reaching the element.
    max_lag: gst::ClockTime,
}

/// Runs `description` for `seconds` of real time with the capture device feeding it speech
/// (one at a time: they measure real time on a small machine).
fn run_live(description: &str, seconds: u64) -> Run {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    init();
    let pipeline = gst::parse::launch(description)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let stt = pipeline.by_name("stt").unwrap();
    let texts = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&texts);
    stt.static_pad("src")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            counter.fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    let max_lag = Arc::new(AtomicU64::new(0));
    let lag = Arc::clone(&max_lag);
    let weak = stt.downgrade();
    stt.static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            if let (Some(element), Some(buffer)) = (weak.upgrade(), info.buffer())
                && let (Some(clock), Some(base), Some(pts)) =
                    (element.clock(), element.base_time(), buffer.pts())
            {
                let now = clock.time().saturating_sub(base);
                let segment = pad.sticky_event::<gst::event::Segment>(0);
                let running = segment.and_then(|s| {
                    s.segment()
                        .downcast_ref::<gst::ClockTime>()?
                        .to_running_time(pts)
                });
                if let Some(running) = running {
                    lag.fetch_max(now.saturating_sub(running).nseconds(), Ordering::Relaxed);
                }
            }
            gst::PadProbeReturn::Ok
        });
    let speech = read_wav(&repository().join("samples/LJ001-0001.wav"));
    let src = Capture::configure(&pipeline);
    pipeline.set_state(gst::State::Playing).unwrap();
    let capture = Capture::start(src, speech);
    let bus = pipeline.bus().unwrap();
    let mut run = Run::default();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        let Some(message) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        match message.view() {
            gst::MessageView::Error(e) => panic!("{} ({:?})", e.error(), e.debug()),
            gst::MessageView::Warning(w) => run.warnings.push(w.error().to_string()),
            gst::MessageView::Qos(q) if message.src() == Some(stt.upcast_ref()) => {
                let (processed, dropped) = q.stats();
                run.qos
                    .push((processed.value() as u64, dropped.value() as u64));
            }
            _ => {}
        }
    }
    (run.periods, run.overruns) = capture.stop();
    pipeline.set_state(gst::State::Null).unwrap();
    run.texts = texts.load(Ordering::Relaxed);
    run.max_lag = gst::ClockTime::from_nseconds(max_lag.load(Ordering::Relaxed));
    run
}

/// The README's live caption pipeline loses no capture period, although `textoverlay`
/// blocks the text until the video reaches it and the model runs in bursts.
#[test]
fn live_captions_lose_no_capture_audio() {
    let run = run_live(DOCUMENTED, 12);
    eprintln!("{run:?}");
    assert!(run.periods > 500, "{run:?}");
    assert_eq!(run.overruns, 0, "{run:?}");
    assert!(run.texts > 0, "no text reached textoverlay: {run:?}");
    assert!(run.warnings.is_empty(), "{:?}", run.warnings);
}

/// A recogniser much slower than real time (one 20 ms chunk per window of up to 20 s: the
/// windows grow from the lead-in of silence as the stream arrives, and after the first
/// seconds they take several times real time on any CPU) behind the documented queue: the
/// element drops what it cannot recognise on time, says how much, and the input never falls
/// more than the latency behind; capture still loses nothing.
#[test]
fn slow_recognition_drops_late_audio_and_stays_within_the_latency() {
    let slow = DOCUMENTED.replace(
        "quartznetstt name=stt threads=1",
        "quartznetstt name=stt threads=1 left-context-ms=20000 chunk-ms=20 right-context-ms=0",
    );
    let run = run_live(&slow, 15);
    eprintln!("{run:?}");
    assert_eq!(run.overruns, 0, "{run:?}");
    let latency =
        gst::ClockTime::from_mseconds(u64::from(quartznet_engine::config::DEFAULT_LATENCY_MS));
    assert!(
        run.max_lag < latency + gst::ClockTime::from_seconds(2),
        "input fell {} behind real time",
        run.max_lag
    );
    assert!(
        run.warnings
            .iter()
            .any(|w| w.contains("slower than real time: dropped")),
        "{:?}",
        run.warnings
    );
    assert!(
        run.qos.iter().any(|&(_, dropped)| dropped > 0),
        "{:?}",
        run.qos
    );
}

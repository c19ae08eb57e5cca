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
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;
use plugin::capture::{Capture, DOCUMENTED};
use plugin::init;

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

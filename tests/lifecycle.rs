// SPDX-License-Identifier: MPL-2.0
//! The element's life around the stream: loading once across state changes, messages an
//! application may answer from a synchronous bus handler, and timestamps at the end of time.

mod common;
mod plugin;

use std::sync::mpsc;
use std::time::Duration;

use common::*;
use gst::prelude::*;
use gst_check::Harness;
use plugin::init;

const RATE: u32 = 16_000;

/// The hand-made stand-in recogniser (tools/make_test_models.py): quick to load and run.
fn energy_model() -> std::path::PathBuf {
    fixtures().join("models/energy-letters.onnx")
}

fn element() -> gst::Element {
    init();
    gst::ElementFactory::make("quartznetstt")
        .property("model-path", energy_model().to_str().unwrap())
        .property("threads", 1u32)
        .property("chunk-ms", 1000u32)
        .property("right-context-ms", 600u32)
        .property("left-context-ms", 1000u32)
        .build()
        .unwrap()
}

fn harness_around(element: &gst::Element) -> Harness {
    let mut h = Harness::with_element(element, Some("sink"), Some("src"));
    h.set_src_caps_str(&format!(
        "audio/x-raw,format=S16LE,rate={RATE},channels=1,layout=interleaved"
    ));
    h
}

fn s16(samples: &[f32]) -> Vec<u8> {
    samples
        .iter()
        .flat_map(|&s| ((s * 32768.0).round().clamp(-32768.0, 32767.0) as i16).to_le_bytes())
        .collect()
}

fn clip(name: &str) -> Vec<f32> {
    read_wav(&fixtures().join(format!("audio/{name}.wav")))
}

fn buffer(bytes: &[u8], pts: gst::ClockTime) -> gst::Buffer {
    let mut buffer = gst::Buffer::from_slice(bytes.to_vec());
    {
        let b = buffer.get_mut().unwrap();
        b.set_pts(pts);
        b.set_duration(gst::ClockTime::from_nseconds(
            bytes.len() as u64 / 2 * 1_000_000_000 / u64::from(RATE),
        ));
    }
    buffer
}

/// Counts the loads announced on `bus` (PROGRESS messages of code "load" that start), as
/// they are posted: a pipeline's bus drops what it holds when the pipeline goes to NULL.
fn count_loads(bus: &gst::Bus) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = count.clone();
    bus.set_sync_handler(move |_, message| {
        if let gst::MessageView::Progress(p) = message.view() {
            let (kind, code, _) = p.get();
            if code == "load" && kind == gst::ProgressType::Start {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        gst::BusSyncReply::Pass
    });
    count
}

/// transcriberbin probes its transcriber by taking it to PAUSED and back to NULL before it
/// plays: the model (and its language model, lexicon and warm-up) load once, not twice; a
/// changed model loads afresh.
#[test]
fn probing_and_playing_loads_the_model_once() {
    init();
    let pipeline = gst::parse::launch(&format!(
        "audiotestsrc num-buffers=20 samplesperbuffer=1600 wave=silence \
         ! audio/x-raw,format=S16LE,rate={RATE},channels=1 \
         ! quartznetstt name=stt model-path={} threads=1 ! fakesink",
        energy_model().display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let bus = pipeline.bus().unwrap();
    let loads = count_loads(&bus);
    let loaded = || loads.swap(0, std::sync::atomic::Ordering::SeqCst);
    let settle = |state: gst::State| {
        pipeline.set_state(state).unwrap();
        let (result, ..) = pipeline.state(gst::ClockTime::from_seconds(60));
        result.unwrap();
    };
    settle(gst::State::Paused);
    settle(gst::State::Null);
    pipeline.set_state(gst::State::Playing).unwrap();
    let eos = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(60),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    assert!(
        matches!(
            eos.as_ref().map(|m| m.view()),
            Some(gst::MessageView::Eos(_))
        ),
        "{eos:?}"
    );
    settle(gst::State::Null);
    assert_eq!(loaded(), 1, "probe and play load once");

    // Another model: loaded afresh at the next start.
    let stt = pipeline.by_name("stt").unwrap();
    stt.set_property(
        "model-path",
        repository()
            .join("models/quartznet-en.onnx")
            .to_str()
            .unwrap(),
    );
    settle(gst::State::Paused);
    settle(gst::State::Null);
    assert_eq!(loaded(), 1, "a new model loads");
}

/// An application may answer a message from a synchronous bus handler, on the thread that
/// posted it, by calling back into the element: here, ending the stream on the warning a
/// timestamp jump gives. The element posts nothing while it holds a lock, so this cannot
/// deadlock.
#[test]
fn a_synchronous_bus_handler_may_call_back_into_the_element() {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let element = element();
        let bus = gst::Bus::new();
        element.set_bus(Some(&bus));
        let sink = element.static_pad("sink").unwrap();
        let warned = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = warned.clone();
        bus.set_sync_handler(move |_, message| {
            if let gst::MessageView::Warning(_) = message.view()
                && !seen.swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                sink.send_event(gst::event::Eos::new());
            }
            gst::BusSyncReply::Drop
        });
        let mut h = harness_around(&element);
        let audio = s16(&clip("espeak_fox"));
        let half = audio.len() / 4 * 2;
        h.push(buffer(&audio[..half], gst::ClockTime::ZERO)).ok();
        // A jump of 30 s: the stream so far ends with a warning (posted from process_buffer).
        h.push(buffer(&audio[half..], gst::ClockTime::from_seconds(30)))
            .ok();
        done.send(warned.load(std::sync::atomic::Ordering::SeqCst))
            .unwrap();
    });
    let warned = finished
        .recv_timeout(Duration::from_secs(120))
        .expect("the element deadlocked on a callback from its own message");
    assert!(warned, "the timestamp jump posts a warning");
}

/// Timestamps and segments at the end of time: the latency answer, the lateness added to a
/// segment's base and buffers stamped near `u64::MAX` saturate instead of overflowing
/// (a panic in debug builds, a wrap in release ones).
#[test]
fn times_near_the_end_of_time_saturate() {
    let element = element();
    element.set_property("lateness", 5000u32);
    let mut h = harness_around(&element);
    h.set_upstream_latency(gst::ClockTime::MAX - gst::ClockTime::SECOND);
    h.play();
    let mut q = gst::query::Latency::new();
    assert!(element.static_pad("src").unwrap().query(&mut q));
    let (_, min, _) = q.result();
    assert_eq!(min, gst::ClockTime::MAX);

    let mut segment = gst::FormattedSegment::<gst::ClockTime>::new();
    segment.set_base(gst::ClockTime::MAX - gst::ClockTime::MSECOND);
    assert!(h.push_event(gst::event::Segment::new(&segment)));
    let audio = s16(&clip("short_yes"));
    let end = gst::ClockTime::MAX - gst::ClockTime::from_mseconds(10);
    for (i, piece) in audio.chunks(3200).enumerate() {
        let pts = end.saturating_sub(gst::ClockTime::from_mseconds(100 * (20 - i as u64)));
        h.push(buffer(piece, pts)).ok();
    }
    h.push_event(gst::event::Eos::new());
    while let Some(buffer) = h.try_pull() {
        let pts = buffer.pts().unwrap();
        let duration = buffer.duration().unwrap();
        assert!(pts.checked_add(duration).is_some(), "{pts} + {duration}");
    }
}

/// Settings that cannot work well but are not errors are a WARNING when the element starts:
/// windows too short to hold a word, more threads than cores, a window part that is not a
/// whole number of the model's output frames.
#[test]
fn settings_that_cannot_work_well_are_warned_about_at_start() {
    let warnings = |properties: &[(&str, u32)]| -> Vec<String> {
        let element = element();
        for (name, value) in properties {
            element.set_property(name, *value);
        }
        let bus = gst::Bus::new();
        element.set_bus(Some(&bus));
        let mut h = harness_around(&element);
        h.play();
        let mut texts = Vec::new();
        while let Some(message) = bus.pop_filtered(&[gst::MessageType::Warning]) {
            if let gst::MessageView::Warning(w) = message.view() {
                texts.push(w.error().to_string());
            }
        }
        texts
    };
    assert!(warnings(&[]).is_empty(), "{:?}", warnings(&[]));
    // One output frame of the bundled model (20 ms): too short, but not rounded.
    let short = warnings(&[
        ("chunk-ms", 20),
        ("left-context-ms", 0),
        ("right-context-ms", 0),
    ]);
    assert_eq!(short.len(), 1, "{short:?}");
    let rounded = warnings(&[("chunk-ms", 1010)]);
    assert!(
        rounded.len() == 1 && rounded[0].contains("1010 ms") && rounded[0].contains("1020 ms"),
        "{rounded:?}"
    );
    let cores = quartznet_engine::config::available_cores() as u32;
    let threads = warnings(&[("threads", (cores * 4).min(256))]);
    assert!(
        threads.len() == 1 && threads[0].contains("thread"),
        "{threads:?}"
    );
}

// SPDX-License-Identifier: MPL-2.0
//! Cache-aware streaming models through the element (issue 26): the random-weight
//! FastConformer CTC fixture (`tests/fixtures/cache-aware/ctc/`, built by
//! `tools/cache_aware_fixtures.py`), whose description's `streaming` section makes the
//! element step it chunk by chunk with caches instead of over buffered windows. Live input
//! with partials and a file pipeline give the engine's `CacheAwareRecognizer` text at the
//! look-ahead the `latency` property picks; the latency reported is the property's.

mod common;
mod plugin;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use common::*;
use gst::prelude::*;
use plugin::{init, play_live};
use quartznet_engine::config::{RecognizerConfig, WindowOverrides};
use quartznet_engine::decode::transcript;
use quartznet_engine::model::{CacheAwareModel, LoadOptions};
use quartznet_engine::streaming::{CacheAwareRecognizer, cache_aware_look_ahead, text_hold_ms};

const RATE: u64 = 16_000;
/// Samples per output frame: a 160-sample hop, subsampled 8 times (80 ms).
const FRAME_SAMPLES: u64 = 1280;
const CLIP: &str = "LJ001-0001";

fn model() -> PathBuf {
    fixtures()
        .join("cache-aware")
        .join("ctc")
        .join("model.onnx")
}

fn samples() -> Vec<f32> {
    read_wav(&fixtures().join("audio").join(format!("{CLIP}.wav")))
}

/// The engine's `CacheAwareRecognizer` on `samples`, pushed in 100 ms pieces as the live
/// harness sends them, at the look-ahead `latency_ms` picks, with the element's decoding
/// defaults: its text (separators as the model wrote them) and its look-ahead in ms.
fn engine_text(samples: &[f32], latency_ms: Option<u32>) -> (String, u32) {
    let model = CacheAwareModel::load(&model(), &LoadOptions { threads: 1 }).unwrap();
    let description = model.description().clone();
    let overrides = WindowOverrides {
        latency_ms,
        ..WindowOverrides::default()
    };
    let config = RecognizerConfig::for_input(&overrides, &description.latency_shares, true);
    let options = config.decoding.decoding_options(&description).unwrap();
    let hold = text_hold_ms(&config.decoding, options.beam.is_some());
    let index = cache_aware_look_ahead(&description, latency_ms, hold);
    let mut recognizer = CacheAwareRecognizer::new(model, index, options).unwrap();
    let look_ahead_ms = recognizer.look_ahead().look_ahead_ms;
    let mut steps = Vec::new();
    for piece in samples.chunks(RATE as usize / 10) {
        recognizer.push(piece);
        while let Some(step) = recognizer.next_result().unwrap() {
            steps.push(step);
        }
    }
    steps.extend(recognizer.finish().unwrap());
    let words: Vec<_> = steps.iter().flat_map(|s| s.words.clone()).collect();
    let trailing = steps.last().map_or(0, |s| s.trailing_spaces);
    (
        transcript(&words) + &" ".repeat(trailing as usize),
        look_ahead_ms,
    )
}

/// Something the element sent downstream.
#[derive(Clone, Debug)]
enum Out {
    Text {
        text: String,
        pts: gst::ClockTime,
        duration: gst::ClockTime,
        partial: bool,
    },
    Gap {
        start: gst::ClockTime,
        duration: gst::ClockTime,
    },
}

fn record(element: &gst::Element) -> Arc<Mutex<Vec<Out>>> {
    let outputs = Arc::new(Mutex::new(Vec::new()));
    let store = outputs.clone();
    element.static_pad("src").unwrap().add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            if let Some(buffer) = info.buffer() {
                let map = buffer.map_readable().unwrap();
                store.lock().unwrap().push(Out::Text {
                    text: std::str::from_utf8(&map).expect("UTF-8 text").to_string(),
                    pts: buffer.pts().expect("text has a timestamp"),
                    duration: buffer.duration().expect("text has a duration"),
                    partial: buffer.flags().contains(gst::BufferFlags::DROPPABLE),
                });
            } else if let Some(event) = info.event()
                && let gst::EventView::Gap(gap) = event.view()
            {
                let (start, duration) = gap.get();
                store.lock().unwrap().push(Out::Gap {
                    start,
                    duration: duration.expect("a gap has a duration"),
                });
            }
            gst::PadProbeReturn::Ok
        },
    );
    outputs
}

/// The final text: the final buffers concatenated.
fn final_text(outputs: &[Out]) -> String {
    outputs
        .iter()
        .filter_map(|o| match o {
            Out::Text {
                text,
                partial: false,
                ..
            } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

/// Outputs never go back in time and never overlap, end by the end of the audio (rounded
/// up to a frame), and include gaps.
fn check_timeline(outputs: &[Out], audio_samples: u64, what: &str) {
    let mut until = gst::ClockTime::ZERO;
    for output in outputs {
        let (start, duration) = match output {
            Out::Text { pts, duration, .. } => (*pts, *duration),
            Out::Gap { start, duration } => (*start, *duration),
        };
        assert!(start >= until, "{what}: {output:?} starts before {until}");
        until = start + duration;
    }
    let end = gst::ClockTime::from_nseconds(
        audio_samples.div_ceil(FRAME_SAMPLES) * FRAME_SAMPLES * 1_000_000_000 / RATE,
    );
    assert!(until <= end, "{what}: output until {until}, past {end}");
    assert!(
        outputs.iter().any(|o| matches!(o, Out::Gap { .. })),
        "{what}: no GAP event"
    );
}

/// The clip as live input with partial results and `latency` (unset: the default), then
/// the LATENCY query: the outputs, the latency reported and the warnings posted.
fn live_run(latency: Option<&str>) -> (Vec<Out>, gst::ClockTime, Vec<String>) {
    init();
    let element = gst::ElementFactory::make("quartznetstt")
        .property("model-path", model().to_str().unwrap())
        .property("threads", 1u32)
        .build()
        .unwrap();
    element.set_property_from_str("separator", "model");
    element.set_property_from_str("granularity", "word");
    element.set_property("partial-results", true);
    if let Some(ms) = latency {
        element.set_property_from_str("latency", ms);
    }
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    let outputs = record(&element);
    let samples: Vec<i16> = samples().iter().map(|&x| (x * 32768.0) as i16).collect();
    let mut h = play_live(&element, &samples);
    while h.try_pull().is_some() {}
    let mut query = gst::query::Latency::new();
    assert!(element.static_pad("src").unwrap().query(&mut query));
    let (live, reported, _) = query.result();
    assert!(live, "the harness is a live source");
    let mut warnings = Vec::new();
    while let Some(message) = bus.pop() {
        match message.view() {
            gst::MessageView::Error(e) => panic!("{e:?}"),
            gst::MessageView::Warning(w) => warnings.push(w.error().to_string()),
            _ => {}
        }
    }
    let outputs = outputs.lock().unwrap().clone();
    (outputs, reported, warnings)
}

/// Live input with partials: the final text is the engine's cache-aware text at the
/// look-ahead the latency picks (the largest whose step, plus the word gap, fits: 1040 ms in
/// a 1.5 s latency, 480 ms in 0.7 s, 0 ms in 186 ms, the description's default 1040 ms when unset), partial buffers come
/// between, the timeline moves forward with gaps, and the latency reported is the
/// property's (4 s when unset). Two look-aheads give two different texts of this
/// random-weight model, so the look-ahead really changed.
#[test]
fn live_text_is_the_cache_aware_engines_at_the_latencys_look_ahead() {
    let samples = samples();
    let n = samples.len() as u64;
    let mut texts = Vec::new();
    for (latency, look_ahead_ms, reported_ms) in [
        (None, 1040, 4000),
        (Some(1500), 1040, 1500),
        (Some(700), 480, 700),
        // Below the 500 ms that buffered windows are planned for: the 0 ms look-ahead.
        (Some(186), 0, 186),
    ] {
        let what = format!("latency {latency:?}");
        let (expected, picked) = engine_text(&samples, latency);
        assert_eq!(picked, look_ahead_ms, "{what}");
        let (outputs, reported, warnings) = live_run(latency.map(|l| l.to_string()).as_deref());
        assert!(warnings.is_empty(), "{what}: {warnings:?}");
        assert_eq!(
            reported,
            gst::ClockTime::from_mseconds(reported_ms),
            "{what}"
        );
        assert!(
            !expected.trim().is_empty(),
            "{what}: the engine says nothing"
        );
        assert_eq!(final_text(&outputs), expected, "{what}");
        assert!(
            outputs
                .iter()
                .any(|o| matches!(o, Out::Text { partial: true, .. })),
            "{what}: no partial text"
        );
        check_timeline(&outputs, n, &what);
        texts.push(expected);
    }
    assert_ne!(texts[1], texts[2], "the look-ahead makes no difference");
}

/// Window properties do not apply to a cache-aware model: setting one is a warning that
/// says so, and the text is the same as without it.
#[test]
fn window_properties_are_ignored_with_a_warning() {
    init();
    let element = gst::ElementFactory::make("quartznetstt")
        .property("model-path", model().to_str().unwrap())
        .property("threads", 1u32)
        .property("chunk-ms", 2000u32)
        .build()
        .unwrap();
    element.set_property_from_str("separator", "model");
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    let outputs = record(&element);
    let samples = samples();
    let pcm: Vec<i16> = samples.iter().map(|&x| (x * 32768.0) as i16).collect();
    let mut h = play_live(&element, &pcm);
    while h.try_pull().is_some() {}
    let warnings: Vec<String> =
        std::iter::from_fn(|| bus.pop_filtered(&[gst::MessageType::Warning]))
            .map(|m| match m.view() {
                gst::MessageView::Warning(w) => w.error().to_string(),
                _ => unreachable!(),
            })
            .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("cache-aware streaming model: chunk-ms ignored")),
        "{warnings:?}"
    );
    let outputs = outputs.lock().unwrap().clone();
    assert_eq!(final_text(&outputs), engine_text(&samples, None).0);
}

/// A file pipeline (input that is not live) runs the same steps at the default look-ahead:
/// the engine's text, with a timeline that moves forward.
#[test]
fn file_text_is_the_cache_aware_engines() {
    init();
    let path = fixtures().join("audio").join(format!("{CLIP}.wav"));
    let pipeline = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! wavparse ! audioconvert ! audioresample ! \
         quartznetstt name=stt model-path=\"{}\" threads=1 separator=model ! fakesink sync=false",
        path.display(),
        model().display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let outputs = record(&pipeline.by_name("stt").unwrap());
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    for message in bus.iter_timed(gst::ClockTime::from_seconds(120)) {
        match message.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{e:?}"),
            gst::MessageView::Warning(w) => panic!("{w:?}"),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let outputs = outputs.lock().unwrap().clone();
    let samples = samples();
    assert_eq!(final_text(&outputs), engine_text(&samples, None).0);
    check_timeline(&outputs, samples.len() as u64, "file");
}

/// The latency a live pipeline (an `is-live` source of 100 ms buffers) with the element on
/// `model` at `latency` ms settles on, less the source's 100 ms, and the warnings posted (an
/// error fails the test).
fn live_pipeline_latency(model: &std::path::Path, latency: u64) -> (gst::ClockTime, Vec<String>) {
    let settled = plugin::live_latency(
        "wave=silence",
        &format!(
            "quartznetstt model-path=\"{}\" threads=1 latency={latency} partial-results=true",
            model.display()
        ),
    );
    assert!(settled.live);
    (settled.latency, settled.warnings)
}

/// An `is-live` source through the element in a pipeline: the latency the sink's LATENCY
/// query gets is the source's buffer (100 ms) plus the element's, which is the `latency`
/// property at every look-ahead: 0 ms (186 ms asked: an 86 ms step and the 100 ms word gap,
/// below the 500 ms that buffered windows are planned for), 80 ms (266 ms), 480 ms (700 ms)
/// and 1040 ms (1500 ms).
#[test]
fn a_live_pipeline_reports_the_latency_asked() {
    for latency in [186u64, 266, 700, 1500] {
        let (reported, problems) = live_pipeline_latency(&model(), latency);
        assert!(problems.is_empty(), "latency {latency}: {problems:?}");
        assert_eq!(
            reported,
            gst::ClockTime::from_mseconds(latency),
            "latency {latency}"
        );
    }
}

/// The 500 ms floor of the latency is the buffered windows' (their shortest plan), not a
/// cache-aware model's: a buffered model asked for 200 ms plans and reports 500 ms and says
/// so, while the cache-aware model runs its 0 ms look-ahead at 200 ms.
#[test]
fn only_buffered_windows_have_a_latency_floor() {
    let buffered = fixtures().join("models/energy-letters.onnx");
    let (reported, problems) = live_pipeline_latency(&buffered, 200);
    assert_eq!(reported, gst::ClockTime::from_mseconds(500));
    assert!(
        problems
            .iter()
            .any(|w| w.contains("latency of 200 ms is shorter than buffered windows")),
        "{problems:?}"
    );
    let (reported, problems) = live_pipeline_latency(&model(), 200);
    assert_eq!(reported, gst::ClockTime::from_mseconds(200));
    assert!(problems.is_empty(), "{problems:?}");
    let description = quartznet_engine::model::ModelDescription::load_sidecar(&model())
        .unwrap()
        .unwrap();
    let streaming = description.streaming.as_ref().unwrap();
    let settings = RecognizerConfig::for_input(
        &WindowOverrides {
            latency_ms: Some(200),
            ..Default::default()
        },
        &description.latency_shares,
        true,
    )
    .decoding;
    let picked = cache_aware_look_ahead(&description, Some(200), text_hold_ms(&settings, false));
    assert_eq!(streaming.look_aheads[picked].look_ahead_ms, 0);
}

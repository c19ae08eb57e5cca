// SPDX-License-Identifier: MPL-2.0
//! A stream's first word comes out at the same time live and from a file: both windows start
//! a stream with the same lead-in of silence (`STREAM_LEAD_IN_MS`), so the model meets a word
//! at the very start of the audio the same way in both.
//!
//! Before, live windows filled their whole left and right context before the stream with
//! silence and file windows had none: on `samples/LJ001-0001.wav`, whose "printing" starts
//! 20 ms into the file, QuartzNet's first word was at 0.08 s live and at 0.32 s from the file
//! (the model, seeing no silence before the onset, missed it).

mod common;
mod plugin;

use common::*;
use gst::prelude::*;
use plugin::{init, play_live};

/// How far apart the first word's start may be, live and from the file: two output frames.
const TOLERANCE_S: f64 = 0.040;

fn sample() -> std::path::PathBuf {
    repository().join("samples").join("LJ001-0001.wav")
}

fn model_path(model: &str) -> String {
    repository()
        .join("models")
        .join(model)
        .to_str()
        .unwrap()
        .to_string()
}

/// The first final word of the element's messages (text and start in seconds).
fn first_word(messages: impl IntoIterator<Item = gst::Message>) -> Option<(String, f64)> {
    for message in messages {
        let Some(s) = message.structure().filter(|s| s.name() == "quartznetstt") else {
            continue;
        };
        if !s.get::<bool>("final").unwrap_or(false) {
            continue;
        }
        let list = s.get::<gst::Array>("words").expect("a words field");
        if let Some(word) = list.iter().next() {
            let word = word.get::<gst::Structure>().unwrap();
            return Some((
                word.get::<String>("text").unwrap(),
                word.get::<f64>("start").unwrap(),
            ));
        }
    }
    None
}

/// The sample as a file: `filesrc ! wavparse`, input that is not live, so the element uses
/// its file windows.
fn from_file(model: &str, props: &[(&str, &str)]) -> Option<(String, f64)> {
    init();
    let mut launch = format!(
        "filesrc location=\"{}\" ! wavparse ! audioconvert ! audioresample ! \
         quartznetstt model-path=\"{}\" threads=1",
        sample().display(),
        model_path(model)
    );
    for (name, value) in props {
        launch.push_str(&format!(" {name}={value}"));
    }
    launch.push_str(" ! fakesink");
    let pipeline = gst::parse::launch(&launch).unwrap();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut messages = Vec::new();
    for message in bus.iter_timed(gst::ClockTime::from_seconds(120)) {
        match message.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{model}: {e:?}"),
            gst::MessageView::Element(_) => messages.push(message),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    first_word(messages)
}

/// The sample as live input in 100 ms buffers (the harness answers the LATENCY query as a
/// live source), at the default latency's live windows.
fn live(model: &str, props: &[(&str, &str)]) -> Option<(String, f64)> {
    init();
    let element = gst::ElementFactory::make("quartznetstt")
        .property("model-path", model_path(model))
        .property("threads", 1u32)
        .build()
        .unwrap();
    for (name, value) in props {
        element.set_property_from_str(name, value);
    }
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    let samples: Vec<i16> = read_wav(&sample())
        .iter()
        .map(|&x| (x * 32768.0) as i16)
        .collect();
    let mut h = play_live(&element, &samples);
    while h.try_pull().is_some() {}
    first_word(std::iter::from_fn(|| {
        bus.pop_filtered(&[gst::MessageType::Element])
    }))
}

/// Every model family the element runs: the phoneme model on the waveform (beam search with
/// its lexicon and LM), QuartzNet on log-mel features with greedy decoding and with beam
/// search and its LM.
const MODELS: [(&str, &[(&str, &str)]); 3] = [
    ("hama-en.onnx", &[]),
    ("quartznet-en.onnx", &[("decoder", "greedy")]),
    ("quartznet-en.onnx", &[("decoder", "beam")]),
];

#[test]
fn the_first_word_starts_at_the_same_time_live_and_from_a_file() {
    for (model, props) in MODELS {
        let file = from_file(model, props).expect("a word from the file");
        let live = live(model, props).expect("a word live");
        assert!(
            (live.1 - file.1).abs() <= TOLERANCE_S + 1e-9,
            "{model} {props:?}: live {live:?}, file {file:?}"
        );
        // "Printing" starts 20 ms into the sample: both hear its onset (QuartzNet's file
        // windows put the first word at 0.32 s when they had no silence before the stream).
        assert!(file.1 < 0.2, "{model} {props:?}: file {file:?}");
    }
}

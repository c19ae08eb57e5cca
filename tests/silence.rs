// SPDX-License-Identifier: MPL-2.0
//! Silent live input stays silent: a muted microphone (digital zeros) or a silent track
//! (noise of a step or two of 16-bit audio, about -90 dBFS) gives no text, only GAP events,
//! and no words on the bus, with every bundled model family the element runs.

mod common;
mod plugin;

use common::*;
use gst::prelude::*;
use plugin::{init, play_live};

/// Three seconds: several chunks of the live windows of both models, and their drain.
const SECONDS: usize = 3;

/// Noise of one or two steps of 16-bit audio either way, from a fixed seed.
fn faint_noise(len: usize) -> Vec<i16> {
    let mut state = 0x2545_f491_u32;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            [-2, -1, 1, 2][(state >> 30) as usize]
        })
        .collect()
}

/// The element on a bundled model, with the settings `props` names (the default latency's
/// live windows: the harness answers the LATENCY query as a live source).
fn element(model: &str, props: &[(&str, &str)]) -> gst::Element {
    init();
    let element = gst::ElementFactory::make("quartznetstt")
        .property(
            "model-path",
            repository().join("models").join(model).to_str().unwrap(),
        )
        .property("threads", 1u32)
        .build()
        .unwrap();
    for (name, value) in props {
        element.set_property_from_str(name, value);
    }
    element
}

/// What the element sent for live `samples` in 100 ms buffers, then EOS: the text of its
/// buffers, whether it sent a GAP event, and every word of its bus messages.
fn run_live(element: &gst::Element, samples: &[i16]) -> (Vec<String>, bool, Vec<String>) {
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    let mut h = play_live(element, samples);
    let mut texts = Vec::new();
    while let Some(buffer) = h.try_pull() {
        let map = buffer.map_readable().unwrap();
        texts.push(String::from_utf8_lossy(&map).into_owned());
    }
    let mut gaps = false;
    while let Some(event) = h.try_pull_event() {
        gaps |= matches!(event.view(), gst::EventView::Gap(_));
    }
    let mut words = Vec::new();
    while let Some(message) = bus.pop_filtered(&[gst::MessageType::Element]) {
        let Some(s) = message.structure().filter(|s| s.name() == "quartznetstt") else {
            continue;
        };
        let list = s.get::<gst::Array>("words").expect("a words field");
        for word in list.iter() {
            let word = word.get::<gst::Structure>().unwrap();
            words.push(word.get::<String>("text").unwrap());
        }
    }
    (texts, gaps, words)
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
fn digital_zeros_give_gaps_only() {
    for (model, props) in MODELS {
        let (texts, gaps, words) = run_live(&element(model, props), &vec![0; SECONDS * 16_000]);
        assert!(texts.is_empty(), "{model} {props:?}: {texts:?}");
        assert!(words.is_empty(), "{model} {props:?}: {words:?}");
        assert!(gaps, "{model} {props:?}: no GAP event");
    }
}

/// Before the silence gate looked at the samples, QuartzNet wrote "needed retribution",
/// "in the" and more over this noise: its log-mel features are far above the log floor, and
/// each buffer's statistics scale them up to speech.
#[test]
fn faint_noise_gives_gaps_only() {
    for (model, props) in MODELS {
        let (texts, gaps, words) = run_live(&element(model, props), &faint_noise(SECONDS * 16_000));
        assert!(texts.is_empty(), "{model} {props:?}: {texts:?}");
        assert!(words.is_empty(), "{model} {props:?}: {words:?}");
        assert!(gaps, "{model} {props:?}: no GAP event");
    }
}

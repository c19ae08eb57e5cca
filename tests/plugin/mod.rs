// SPDX-License-Identifier: MPL-2.0
//! What the element's integration tests share (the engine's tests use `tests/common` only,
//! which knows nothing of the plugin).
// Each test binary uses some of these.
#![allow(dead_code)]

pub mod capture;

use gst::prelude::*;
use gst_check::Harness;

/// The sample rate of the bundled models and the test audio.
pub const RATE: u32 = 16_000;

/// GStreamer initialised and the plugin registered, once per test binary.
pub fn init() {
    use std::sync::Once;
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstquartznetstt::plugin_register_static().expect("plugin registers");
    });
}

/// Plays `samples` into `element` as a live source sends them: 100 ms buffers stamped from 0,
/// then EOS. Returns the harness, holding what the element sent.
pub fn play_live(element: &gst::Element, samples: &[i16]) -> Harness {
    play_live_with(element, samples, |_| {})
}

/// [`play_live`], calling `before(i)` before the `i`th buffer is pushed (on the thread that
/// pushes: the element's streaming thread), e.g. to change a property while PLAYING.
pub fn play_live_with(
    element: &gst::Element,
    samples: &[i16],
    mut before: impl FnMut(usize),
) -> Harness {
    let mut h = Harness::with_element(element, Some("sink"), Some("src"));
    h.set_src_caps_str(&format!(
        "audio/x-raw,format=S16LE,rate={RATE},channels=1,layout=interleaved"
    ));
    let piece = RATE as usize / 10;
    for (i, part) in samples.chunks(piece).enumerate() {
        before(i);
        let bytes: Vec<u8> = part.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut buffer = gst::Buffer::from_slice(bytes);
        {
            let b = buffer.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_mseconds(100 * i as u64));
            b.set_duration(gst::ClockTime::from_mseconds(100));
        }
        assert_eq!(h.push(buffer), Ok(gst::FlowSuccess::Ok));
    }
    assert!(h.push_event(gst::event::Eos::new()));
    h
}

/// What a live pipeline settled on: the latency reported downstream of the element (less the
/// source's own, one 100 ms buffer) and the warnings it posted.
pub struct LiveLatency {
    /// Whether the pipeline is live.
    pub live: bool,
    /// The pipeline's minimum latency less the source's 100 ms.
    pub latency: gst::ClockTime,
    /// The WARNING messages posted, as text.
    pub warnings: Vec<String>,
}

/// Plays `audiotestsrc is-live=true samplesperbuffer=1600 SOURCE ! audio/x-raw,rate=16000,
/// channels=1 ! ELEMENT ! fakesink` (`source`: more source properties, e.g. `wave=silence`;
/// `element`: the element's launch description, `quartznetstt model-path=... latency=...`)
/// and answers the sink pad's latency query once PLAYING.
pub fn live_latency(source: &str, element: &str) -> LiveLatency {
    init();
    let pipeline = gst::parse::launch(&format!(
        "audiotestsrc is-live=true samplesperbuffer=1600 {source} \
         ! audio/x-raw,rate={RATE},channels=1 ! {element} ! fakesink name=sink"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let (result, _, _) = pipeline.state(gst::ClockTime::from_seconds(30));
    result.unwrap();
    let mut query = gst::query::Latency::new();
    assert!(
        pipeline
            .by_name("sink")
            .unwrap()
            .static_pad("sink")
            .unwrap()
            .peer_query(&mut query)
    );
    let bus = pipeline.bus().unwrap();
    let mut warnings = Vec::new();
    while let Some(message) =
        bus.pop_filtered(&[gst::MessageType::Warning, gst::MessageType::Error])
    {
        match message.view() {
            gst::MessageView::Warning(w) => warnings.push(w.error().to_string()),
            gst::MessageView::Error(e) => panic!("{element}: {}", e.error()),
            _ => unreachable!(),
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let (live, min, _) = query.result();
    LiveLatency {
        live,
        latency: min.saturating_sub(gst::ClockTime::from_mseconds(100)),
        warnings,
    }
}

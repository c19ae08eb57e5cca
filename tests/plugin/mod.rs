// SPDX-License-Identifier: MPL-2.0
//! What the element's integration tests share (the engine's tests use `tests/common` only,
//! which knows nothing of the plugin).
// Each test binary uses some of these.
#![allow(dead_code)]

pub mod capture;

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

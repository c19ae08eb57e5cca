// SPDX-License-Identifier: MPL-2.0
//! The element's `execution-provider` property: the CPU by default; `cuda` where it cannot
//! start stops the element at start with an error naming what is missing; `auto` starts on
//! the CPU and warns why. With the CPU-only ONNX Runtime `tools/setup.sh` installs (a GPU
//! build with a working GPU runs instead, which the tests accept).

mod common;
mod plugin;

use common::*;
use gst::prelude::*;
use plugin::init;
use quartznet_engine::model::provider::available_providers;

/// Takes `audiotestsrc ! quartznetstt execution-provider=PROVIDER ! fakesink` to PAUSED:
/// the error it posted if it failed, and the warnings it posted.
fn start(provider: &str) -> (Option<gst::glib::Error>, Vec<String>) {
    init();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("audiotestsrc").build().unwrap();
    let stt = gst::ElementFactory::make("quartznetstt")
        .property("model-path", model_path().to_str().unwrap())
        .build()
        .unwrap();
    stt.set_property_from_str("execution-provider", provider);
    let sink = gst::ElementFactory::make("fakesink").build().unwrap();
    pipeline.add_many([&src, &stt, &sink]).unwrap();
    gst::Element::link_many([&src, &stt, &sink]).unwrap();
    let started = pipeline.set_state(gst::State::Paused).is_ok()
        && pipeline.state(gst::ClockTime::from_seconds(30)).0.is_ok();
    let bus = pipeline.bus().unwrap();
    let mut error = None;
    let mut warnings = Vec::new();
    while let Some(message) = bus.pop() {
        match message.view() {
            gst::MessageView::Error(e) => error = Some(e.error()),
            gst::MessageView::Warning(w) => warnings.push(w.error().to_string()),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(started, error.is_none(), "{error:?}");
    (error, warnings)
}

fn cuda_built_in() -> bool {
    // The element loads the runtime first; the test asks the same library.
    available_providers()
        .unwrap()
        .iter()
        .any(|p| p == "CUDAExecutionProvider")
}

#[test]
fn the_property_defaults_to_the_cpu() {
    init();
    let stt = gst::ElementFactory::make("quartznetstt").build().unwrap();
    let value = stt.property_value("execution-provider");
    let (_, nick) = gst::glib::EnumValue::from_value(&value).unwrap();
    assert_eq!(nick.nick(), "cpu");
    let (error, warnings) = start("cpu");
    assert!(error.is_none(), "{error:?}");
    assert!(
        warnings.iter().all(|w| !w.contains("execution-provider")),
        "{warnings:?}"
    );
}

#[test]
fn cuda_that_cannot_start_is_an_error_at_start() {
    let (error, _) = start("cuda");
    let Some(error) = error else {
        // Started: only a GPU build with a working GPU may do that.
        assert!(cuda_built_in());
        return;
    };
    assert!(error.matches(gst::LibraryError::Init), "{error:?}");
    let text = error.to_string();
    assert!(text.starts_with("execution provider cuda: "), "{text}");
    assert!(text.contains("tools/setup.sh --gpu"), "{text}");
}

#[test]
fn auto_starts_on_the_cpu_and_says_why() {
    let (error, warnings) = start("auto");
    assert!(error.is_none(), "{error:?}");
    let fell_back = warnings
        .iter()
        .any(|w| w.starts_with("execution-provider auto runs the model on the CPU: "));
    if !cuda_built_in() {
        assert!(fell_back, "{warnings:?}");
    }
}

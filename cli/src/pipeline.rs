// SPDX-License-Identifier: MPL-2.0
//! One input through a GStreamer pipeline: `uridecodebin ! audioconvert ! audioresample !
//! quartznetstt ! fakesink`, the words read from the element's bus messages as they come.

use std::path::Path;
use std::sync::{Arc, Mutex};

use gst::glib;
use gst::prelude::*;

use crate::output::TimedWord;
use crate::progress::Progress;

/// An input's URI: `-` is standard input, a string with a scheme is a URI already, anything
/// else a file name (which must exist, so a typo is named as such).
pub fn uri_of(input: &str) -> Result<String, String> {
    if input == "-" {
        return Ok("fd://0".to_string());
    }
    if has_scheme(input) {
        return Ok(input.to_string());
    }
    let path = Path::new(input);
    if !path.exists() {
        return Err("No such file or directory".to_string());
    }
    let absolute = std::path::absolute(path).map_err(|e| e.to_string())?;
    glib::filename_to_uri(&absolute, None)
        .map(|uri| uri.to_string())
        .map_err(|e| e.to_string())
}

/// `scheme://...` with a scheme as RFC 3986 spells it.
fn has_scheme(input: &str) -> bool {
    input.split_once("://").is_some_and(|(scheme, _)| {
        scheme.len() > 1
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    })
}

/// A decoding front end: `uridecodebin` for `uri` whose first audio stream is linked to
/// `audioconvert ! audioresample ! <tail>`, every other stream to a fakesink. Returns the
/// element the audio goes into (the `audioconvert`) and whether audio was found, so a
/// caller can tell "no audio" from other failures.
pub fn decoder(
    pipeline: &gst::Pipeline,
    uri: &str,
    tail: &gst::Element,
) -> Result<Arc<Mutex<bool>>, String> {
    let source = gst::ElementFactory::make("uridecodebin")
        .property("uri", uri)
        .build()
        .map_err(|_| missing("uridecodebin (gst-plugins-base)"))?;
    let convert = gst::ElementFactory::make("audioconvert")
        // No dither: the same input always gives the same samples, hence the same text.
        .property_from_str("dithering", "none")
        .property_from_str("noise-shaping", "none")
        .build()
        .map_err(|_| missing("audioconvert (gst-plugins-base)"))?;
    let resample = gst::ElementFactory::make("audioresample")
        .build()
        .map_err(|_| missing("audioresample (gst-plugins-base)"))?;
    pipeline
        .add_many([&source, &convert, &resample])
        .map_err(|e| e.to_string())?;
    gst::Element::link_many([&convert, &resample, tail]).map_err(|e| e.to_string())?;
    let audio_found = Arc::new(Mutex::new(false));
    let found = audio_found.clone();
    let weak_pipeline = pipeline.downgrade();
    source.connect_pad_added(move |_, pad| {
        let Some(pipeline) = weak_pipeline.upgrade() else {
            return;
        };
        let is_audio = pad
            .current_caps()
            .or_else(|| Some(pad.query_caps(None)))
            .and_then(|caps| caps.structure(0).map(|s| s.name().starts_with("audio/")))
            .unwrap_or(false);
        let mut found = found.lock().unwrap();
        let sink = convert
            .static_pad("sink")
            .expect("audioconvert has a sink pad");
        if is_audio && !*found && pad.link(&sink).is_ok() {
            *found = true;
            return;
        }
        // Video, subtitles, a second audio track: consumed so the demuxer keeps going.
        if let Ok(discard) = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .property("async", false)
            .build()
            && pipeline.add(&discard).is_ok()
        {
            let _ = discard.sync_state_with_parent();
            if let Some(discard_pad) = discard.static_pad("sink") {
                let _ = pad.link(&discard_pad);
            }
        }
    });
    // A file without sound would otherwise never end: nothing reaches the recogniser, so
    // no end of stream either.
    let found = audio_found.clone();
    source.connect_no_more_pads(move |source| {
        if !*found.lock().unwrap() {
            let message = gst::message::Error::builder(
                gst::StreamError::WrongType,
                "the input has no audio stream",
            )
            .src(source)
            .build();
            let _ = source.post_message(message);
        }
    });
    Ok(audio_found)
}

fn missing(what: &str) -> String {
    format!("the GStreamer element {what} is not installed")
}

/// Runs `pipeline` to its end: `on_message` sees every element message, `progress` is
/// updated with the audio's position; an ERROR is returned as its text (with the decoding
/// front end's "no audio" made plain).
pub fn run(
    pipeline: &gst::Pipeline,
    audio_found: &Arc<Mutex<bool>>,
    progress: &mut Progress,
    mut on_message: impl FnMut(&gst::StructureRef) -> Result<(), String>,
) -> Result<(), String> {
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let outcome = (|| {
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| first_error(&bus).unwrap_or_else(|| "could not start".to_string()))?;
        loop {
            let Some(message) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
                progress.update(
                    pipeline.query_position::<gst::ClockTime>(),
                    pipeline.query_duration::<gst::ClockTime>(),
                );
                continue;
            };
            match message.view() {
                gst::MessageView::Element(m) => {
                    if let Some(s) = m.structure() {
                        progress.suspend(|| on_message(s))?;
                    }
                }
                gst::MessageView::Error(e) => return Err(error_text(e)),
                gst::MessageView::Eos(_) => return Ok(()),
                _ => {}
            }
        }
    })();
    let _ = pipeline.set_state(gst::State::Null);
    progress.finish();
    match outcome {
        Err(e) if !*audio_found.lock().unwrap() && !e.contains("no audio stream") => {
            Err(format!("no audio stream found ({e})"))
        }
        other => other,
    }
}

fn first_error(bus: &gst::Bus) -> Option<String> {
    let message = bus.timed_pop_filtered(
        gst::ClockTime::from_mseconds(10),
        &[gst::MessageType::Error],
    )?;
    match message.view() {
        gst::MessageView::Error(e) => Some(error_text(e)),
        _ => None,
    }
}

fn error_text(e: &gst::message::Error) -> String {
    let mut text = e.error().to_string();
    if let Some(debug) = e.debug().filter(|d| !d.is_empty()) {
        // The debug string's first line is the source location; the rest explains.
        let detail = debug.lines().skip(1).collect::<Vec<_>>().join(" ");
        if !detail.is_empty() && !text.contains(&detail) {
            text = format!("{text} ({detail})");
        }
    }
    text
}

/// The final words of a `quartznetstt` message (none for partial ones and other messages).
pub fn final_words(s: &gst::StructureRef) -> Vec<TimedWord> {
    if s.name() != "quartznetstt" || !s.get::<bool>("final").unwrap_or(false) {
        return Vec::new();
    }
    let Ok(words) = s.get::<gst::Array>("words") else {
        return Vec::new();
    };
    words
        .iter()
        .filter_map(|value| value.get::<gst::Structure>().ok())
        .map(|w| TimedWord {
            text: w.get("text").unwrap_or_default(),
            separator: w.get("separator").unwrap_or_default(),
            start: w.get("start").unwrap_or_default(),
            end: w.get("end").unwrap_or_default(),
            confidence: w.get("confidence").unwrap_or_default(),
            confidences: Vec::new(),
            emitted: None,
        })
        .collect()
}

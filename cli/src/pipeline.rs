// SPDX-License-Identifier: MPL-2.0
//! One input through a GStreamer pipeline: `uridecodebin ! audioconvert ! audioresample !
//! quartznetstt ! fakesink` (one audio stream of the input, chosen by `--audio-stream`), the
//! words read from the element's bus messages as they come.

use std::path::Path;
use std::sync::{Arc, Mutex};

use gst::glib;
use gst::prelude::*;

use crate::args::NAME;
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

/// What the decoding front end found of an input's streams, shared with its callbacks.
#[derive(Debug, Default)]
struct Streams {
    /// Audio streams exposed so far, counted in the order `uridecodebin` exposes them.
    audio: usize,
    /// Whether the chosen audio stream is linked to the recogniser.
    linked: bool,
    /// Whether the streams were counted (at `no-more-pads`), so the note is said once.
    counted: bool,
}

/// The decoding front end of one input (see [`decoder`]).
pub struct Decoding {
    uri: String,
    decodebin: gst::Element,
    streams: Arc<Mutex<Streams>>,
}

/// The name of the application message that carries a note for the user.
const NOTE: &str = "quartznet-transcribe-note";

/// A decoding front end: `uridecodebin` for `uri` whose audio stream number `audio_stream`
/// (from 0, among the input's audio streams) is linked to `audioconvert ! audioresample !
/// <tail>`, every other stream to a fakesink. An input with several audio streams gets a
/// note saying which is transcribed; one without the chosen stream fails with an error
/// saying how many there are.
pub fn decoder(
    pipeline: &gst::Pipeline,
    uri: &str,
    audio_stream: usize,
    tail: &gst::Element,
) -> Result<Decoding, String> {
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
    let streams = Arc::new(Mutex::new(Streams::default()));
    let found = streams.clone();
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
        let mut streams = found.lock().unwrap();
        if is_audio {
            let index = streams.audio;
            streams.audio += 1;
            let sink = convert
                .static_pad("sink")
                .expect("audioconvert has a sink pad");
            if index == audio_stream && pad.link(&sink).is_ok() {
                streams.linked = true;
                return;
            }
        }
        // Video, subtitles, the other audio streams: consumed so the demuxer keeps going.
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
    // An input without the chosen stream would otherwise never end: nothing reaches the
    // recogniser, so no end of stream either.
    let found = streams.clone();
    source.connect_no_more_pads(move |source| {
        let mut streams = found.lock().unwrap();
        if std::mem::replace(&mut streams.counted, true) {
            return;
        }
        let count = streams.audio;
        let problem = match count {
            0 => Some("the input has no audio stream".to_string()),
            _ if audio_stream >= count => Some(format!(
                "--audio-stream {audio_stream}: the input has {}, numbered from 0",
                audio_streams(count)
            )),
            _ if !streams.linked => Some(format!(
                "audio stream {audio_stream} could not be linked to the recogniser"
            )),
            _ => None,
        };
        drop(streams);
        let message = match problem {
            Some(problem) => {
                gst::message::Error::builder(gst::StreamError::WrongType, &problem)
                    .src(source)
                    .build()
            }
            // Only the chosen stream is transcribed: say so when there was a choice.
            None if count > 1 => gst::message::Application::builder(
                gst::Structure::builder(NOTE)
                    .field(
                        "text",
                        format!(
                            "the input has {}: transcribing stream {audio_stream} (--audio-stream picks another)",
                            audio_streams(count)
                        ),
                    )
                    .build(),
            )
            .src(source)
            .build(),
            None => return,
        };
        let _ = source.post_message(message);
    });
    Ok(Decoding {
        uri: uri.to_string(),
        decodebin: source,
        streams,
    })
}

/// "1 audio stream", "2 audio streams".
fn audio_streams(count: usize) -> String {
    format!("{count} audio stream{}", if count == 1 { "" } else { "s" })
}

fn missing(what: &str) -> String {
    format!("the GStreamer element {what} is not installed")
}

/// Runs `pipeline` to its end: `on_message` sees every element message, `progress` is
/// updated with the audio's position, notes about `input` go to standard error; an ERROR is
/// returned as its text (see [`failure`]).
pub fn run(
    pipeline: &gst::Pipeline,
    decoding: &Decoding,
    input: &str,
    progress: &mut Progress,
    mut on_message: impl FnMut(&gst::StructureRef) -> Result<(), String>,
) -> Result<(), String> {
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let outcome = (|| {
        if pipeline.set_state(gst::State::Playing).is_err() {
            return Err(bus
                .timed_pop_filtered(
                    gst::ClockTime::from_mseconds(10),
                    &[gst::MessageType::Error],
                )
                .map_or_else(
                    || "could not start".to_string(),
                    |first| failure(&bus, decoding, &first),
                ));
        }
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
                gst::MessageView::Application(m) => {
                    if let Some(s) = m.structure().filter(|s| s.name() == NOTE) {
                        let text = s.get::<String>("text").unwrap_or_default();
                        progress.suspend(|| eprintln!("{NAME}: {input}: note: {text}"));
                    }
                }
                gst::MessageView::Error(_) => return Err(failure(&bus, decoding, &message)),
                gst::MessageView::Eos(_) => return Ok(()),
                _ => {}
            }
        }
    })();
    let _ = pipeline.set_state(gst::State::Null);
    progress.finish();
    outcome
}

/// What went wrong, from the first ERROR message and any already queued behind it. The
/// source's own error (a refused connection, an unreadable file) wins: the decoders' errors
/// and the front end's conclusions about streams follow from it. Otherwise, before the
/// chosen audio stream was linked, the failure is a decoding one and says so.
fn failure(bus: &gst::Bus, decoding: &Decoding, first: &gst::Message) -> String {
    let reader = decoding
        .decodebin
        .property::<Option<gst::Element>>("source");
    let from_reader = |message: &gst::Message| {
        reader
            .as_ref()
            .is_some_and(|r| message.src() == Some(r.upcast_ref::<gst::Object>()))
    };
    let mut chosen = first.clone();
    while !from_reader(&chosen) {
        match bus.pop_filtered(&[gst::MessageType::Error]) {
            Some(next) if from_reader(&next) => chosen = next,
            Some(_) => {}
            None => break,
        }
    }
    let gst::MessageView::Error(e) = chosen.view() else {
        return "an error without a message".to_string();
    };
    if from_reader(&chosen) {
        return reader_failure(&decoding.uri, reader.as_ref(), e).unwrap_or_else(|| error_text(e));
    }
    let ours = chosen.src() == Some(decoding.decodebin.upcast_ref::<gst::Object>())
        && e.error().matches(gst::StreamError::WrongType);
    if ours || decoding.streams.lock().unwrap().linked {
        error_text(e)
    } else {
        format!("no audio stream found ({})", error_text(e))
    }
}

/// Why an HTTP source failed when it does not say: souphttpsrc over libsoup 3 (GStreamer
/// 1.22) keeps the reason a connection failed to its debug log and posts only "Internal
/// data stream error", so the client connects once to the same place (the source's proxy,
/// if it has one) to learn it. `None` for other sources and errors, and when the place
/// answers after all.
fn reader_failure(
    uri: &str,
    reader: Option<&gst::Element>,
    e: &gst::message::Error,
) -> Option<String> {
    use std::net::{TcpStream, ToSocketAddrs};
    use std::time::Duration;
    if !e.error().matches(gst::StreamError::Failed) {
        return None;
    }
    let proxy = reader
        .filter(|r| r.has_property("proxy"))
        .and_then(|r| r.property::<Option<String>>("proxy"))
        .filter(|p| !p.is_empty());
    let (host, port) = host_and_port(proxy.as_deref().unwrap_or(uri))?;
    let addresses = match (host.as_str(), port).to_socket_addrs() {
        Ok(addresses) => addresses.collect::<Vec<_>>(),
        Err(e) => return Some(format!("cannot resolve {host}: {e}")),
    };
    let mut last = None;
    for address in addresses {
        match TcpStream::connect_timeout(&address, Duration::from_secs(5)) {
            Ok(_) => return None,
            Err(e) => last = Some(e),
        }
    }
    last.map(|e| format!("cannot connect to {host}:{port}: {e}"))
}

/// The host and port an `http://` or `https://` URI connects to (a proxy without a scheme
/// is HTTP, as souphttpsrc takes it); `None` for other schemes.
fn host_and_port(uri: &str) -> Option<(String, u16)> {
    let (scheme, rest) = uri.split_once("://").unwrap_or(("http", uri));
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match host_port.strip_prefix('[') {
        // An IPv6 address: [::1]:8080.
        Some(v6) => {
            let (host, after) = v6.split_once(']')?;
            (host, after.strip_prefix(':'))
        }
        None => match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    let port = match port.filter(|p| !p.is_empty()) {
        Some(port) => port.parse().ok()?,
        None => default_port,
    };
    (!host.is_empty()).then(|| (host.to_string(), port))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_uris_name_their_host_and_port() {
        let of = |uri: &str| host_and_port(uri);
        let at = |host: &str, port| Some((host.to_string(), port));
        assert_eq!(of("http://127.0.0.1:9/x.wav"), at("127.0.0.1", 9));
        assert_eq!(of("https://example.com/a?b#c"), at("example.com", 443));
        assert_eq!(of("HTTP://user:pw@example.com"), at("example.com", 80));
        assert_eq!(of("http://[::1]:8080/x"), at("::1", 8080));
        assert_eq!(of("proxy.lan:3128"), at("proxy.lan", 3128));
        assert_eq!(of("file:///tmp/a.wav"), None);
        assert_eq!(of("http://host:port/"), None);
    }
}

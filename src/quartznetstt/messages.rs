// SPDX-License-Identifier: MPL-2.0
//! What the element tells the application and downstream besides text: bus messages (the
//! `quartznetstt` reports, warnings, errors, QoS, latency), the GStreamer error domain of each
//! engine error, and the events of non-text outputs.
//!
//! Messages are never posted while one of the element's locks is held (a bus handler may call
//! back into the element, and a synchronous one runs on the posting thread): code that holds
//! a lock queues them in [`Notices`], and the vfunc posts them once it has let go.

use std::sync::Mutex;

use gst::prelude::*;

use super::timeline::{Output, Report};

/// The custom downstream event gst-plugins-rs transcribers send when an utterance ends.
pub(super) const FINAL_TRANSCRIPT_EVENT: &str = "rstranscribe/final-transcript";

/// A message waiting to be posted.
#[derive(Debug)]
pub(super) enum Notice {
    /// Any message, built when it was queued.
    Message(gst::Message),
    /// An ERROR (`post_error_message` keeps its domain, code and source location).
    Error(gst::ErrorMessage),
}

/// Messages queued while a lock was held. Its own lock is a leaf: held only to push or take.
#[derive(Debug, Default)]
pub(super) struct Notices(Mutex<Vec<Notice>>);

impl Notices {
    pub(super) fn push(&self, notice: Notice) {
        self.0.lock().unwrap().push(notice);
    }

    pub(super) fn message(&self, message: gst::Message) {
        self.push(Notice::Message(message));
    }

    pub(super) fn error(&self, error: gst::ErrorMessage) {
        self.push(Notice::Error(error));
    }

    /// Posts everything queued, in order, from `element`. Call with no lock held.
    pub(super) fn post(&self, element: &impl IsA<gst::Element>) {
        let queued = std::mem::take(&mut *self.0.lock().unwrap());
        for notice in queued {
            match notice {
                Notice::Message(message) => {
                    let _ = element.post_message(message);
                }
                Notice::Error(error) => element.post_error_message(error),
            }
        }
    }
}

/// A WARNING message from `src`.
pub(super) fn warning<T: gst::MessageErrorDomain>(
    src: &impl IsA<gst::Object>,
    error: T,
    text: &str,
) -> gst::Message {
    gst::message::Warning::builder(error, text).src(src).build()
}

/// Maps an engine error onto the GStreamer error domain for its kind.
pub(super) fn error_message(error: &quartznet_engine::Error) -> gst::ErrorMessage {
    use quartznet_engine::Error;
    match error {
        Error::Runtime(_) => gst::error_msg!(gst::LibraryError::Init, ("{error}")),
        Error::NotFound { .. } => gst::error_msg!(gst::ResourceError::NotFound, ("{error}")),
        Error::Read { .. } => gst::error_msg!(gst::ResourceError::OpenRead, ("{error}")),
        Error::Invalid { .. } => gst::error_msg!(gst::ResourceError::Read, ("{error}")),
        Error::Settings(_) => gst::error_msg!(gst::LibraryError::Settings, ("{error}")),
        Error::Inference(_) => gst::error_msg!(gst::StreamError::Failed, ("{error}")),
        // A GPU that cannot start is the library failing to initialise, like a missing runtime.
        Error::ExecutionProvider { .. } => gst::error_msg!(gst::LibraryError::Init, ("{error}")),
        // The inference server that runs the model cannot be reached or did not answer.
        Error::Unavailable(_) => gst::error_msg!(gst::ResourceError::OpenRead, ("{error}")),
        _ => gst::error_msg!(gst::LibraryError::Failed, ("{error}")),
    }
}

/// The `quartznetstt` element message of a report (the README's *Bus messages*; the
/// client's `--format json` uses the same fields): text, finality, the span in seconds of
/// input stream time (rounded to the millisecond), its running and stream time in `segment`,
/// and the words, each with its separator, span and confidence.
pub(super) fn report_message(
    src: &impl IsA<gst::Object>,
    report: &Report,
    segment: Option<&gst::FormattedSegment<gst::ClockTime>>,
) -> gst::Message {
    let seconds = |time: gst::ClockTime| (time.nseconds() as f64 / 1e6).round() / 1e3;
    let running_time = segment.and_then(|s| s.to_running_time(report.start));
    let stream_time = segment.and_then(|s| s.to_stream_time(report.start));
    let words = report.words.iter().map(|w| {
        gst::Structure::builder("word")
            .field("text", &w.text)
            .field("separator", " ".repeat(w.spaces_before as usize))
            .field("start", seconds(w.start))
            .field("end", seconds(w.end))
            .field("confidence", f64::from(w.confidence))
            .build()
            .to_send_value()
    });
    let structure = gst::Structure::builder("quartznetstt")
        .field("text", report.text())
        .field("final", report.is_final)
        .field("start", seconds(report.start))
        .field("end", seconds(report.end))
        .field("running-time", running_time)
        .field("stream-time", stream_time)
        .field("words", gst::Array::from_values(words))
        .build();
    gst::message::Element::builder(structure).src(src).build()
}

/// The event for a non-text output.
pub(super) fn output_event(output: Output) -> gst::Event {
    match output {
        Output::Gap { start, duration } => {
            gst::event::Gap::builder(start).duration(duration).build()
        }
        Output::FinalTranscript => {
            gst::event::CustomDownstream::builder(gst::Structure::new_empty(FINAL_TRANSCRIPT_EVENT))
                .build()
        }
        Output::Text(_) => unreachable!("text goes downstream as a buffer"),
    }
}

/// The element message `quartznetstt-hotwords`: a hotword list set while the element runs
/// is in use from the next chunk on (`phrases` 0: no list any more; `source` names it).
pub(super) fn hotwords_message(
    src: &impl IsA<gst::Object>,
    phrases: usize,
    source: &str,
) -> gst::Message {
    let structure = gst::Structure::builder(HOTWORDS_MESSAGE)
        .field("phrases", u32::try_from(phrases).unwrap_or(u32::MAX))
        .field("source", source)
        .build();
    gst::message::Element::builder(structure).src(src).build()
}

/// The name of the message [`hotwords_message`] posts.
pub(super) const HOTWORDS_MESSAGE: &str = "quartznetstt-hotwords";

/// A progress message about loading (`code` "load"): a long start shows what it is doing,
/// and an application can count loads.
pub(super) fn load_progress(
    src: &impl IsA<gst::Object>,
    kind: gst::ProgressType,
    text: &str,
) -> gst::Message {
    gst::message::Progress::builder(kind, "load", text)
        .src(src)
        .build()
}

// SPDX-License-Identifier: MPL-2.0
//! Transcribes a file (or any URI GStreamer can read) with the quartznetstt element and
//! prints every final word with its start and end (seconds of the input's stream time) and
//! its confidence, read from the element's `quartznetstt` bus messages (README, "Bus
//! messages"):
//!
//! ```text
//!   1.380   1.700  0.93  hello
//! ```
//!
//! ```sh
//! cargo run --example bus_words -- FILE_OR_URI [MODEL.onnx]
//! ```
//!
//! Without a model the element uses the bundled English one. The plugin is registered
//! statically from this crate (`gstquartznetstt::plugin_register_static`), so neither an
//! installed plugin nor GST_PLUGIN_PATH is needed. Exits with status 1 and the error on
//! stderr on an ERROR message.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use gst::prelude::*;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`| head`): stop quietly, as command-line tools do.
        Err(error)
            if error
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (source, model) = match &args[..] {
        [source] => (source, None),
        [source, model] => (source, Some(model)),
        _ => return Err("usage: bus_words FILE_OR_URI [MODEL.onnx]".into()),
    };
    gst::init()?;
    gstquartznetstt::plugin_register_static()?;

    // A URI has a scheme (file://, http://, ...); anything else is a file name.
    let uri = if source.contains("://") {
        source.clone()
    } else {
        gst::glib::filename_to_uri(std::path::absolute(Path::new(source))?, None)?.to_string()
    };
    let pipeline = gst::parse::launch(
        "uridecodebin name=source ! audioconvert ! audioresample ! quartznetstt name=stt ! fakesink",
    )?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline")?;
    let element = |name: &str| pipeline.by_name(name).expect("named in the description");
    element("source").set_property("uri", &uri);
    if let Some(model) = model {
        element("stt").set_property("model-path", model);
    }

    let bus = pipeline.bus().expect("a pipeline has a bus");
    let result = match pipeline.set_state(gst::State::Playing) {
        Ok(_) => print_words(&bus, gst::ClockTime::NONE),
        // The element that failed (a missing file, a bad model) posted an ERROR saying why.
        Err(failed) => print_words(&bus, Some(gst::ClockTime::ZERO)).and(Err(failed.into())),
    };
    pipeline.set_state(gst::State::Null)?;
    result
}

/// Prints the final words of the `quartznetstt` messages until EOS (or until no message
/// comes within `timeout`); an ERROR message is the error.
fn print_words(
    bus: &gst::Bus,
    timeout: impl Into<Option<gst::ClockTime>>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut out = std::io::stdout().lock();
    for message in bus.iter_timed(timeout) {
        match message.view() {
            gst::MessageView::Error(err) => {
                let source = err.src().map(|s| s.name().to_string()).unwrap_or_default();
                let debug = err.debug().map(|d| format!("\n{d}")).unwrap_or_default();
                return Err(format!("error from {source}: {}{debug}", err.error()).into());
            }
            gst::MessageView::Eos(_) => return Ok(()),
            gst::MessageView::Element(element) => {
                let Some(s) = element.structure().filter(|s| s.name() == "quartznetstt") else {
                    continue;
                };
                // Words not final yet are left out: the final message repeats them.
                if !s.get::<bool>("final")? {
                    continue;
                }
                let words = s.get::<gst::Array>("words")?;
                if words.is_empty() {
                    // A final message without words ends a stream (EOS, new segment,
                    // timestamp jump).
                    writeln!(out, "(end of stream at {:.3} s)", s.get::<f64>("end")?)?;
                    continue;
                }
                for word in words.iter() {
                    let word = word.get::<&gst::StructureRef>()?;
                    writeln!(
                        out,
                        "{:7.3} {:7.3}  {:.2}  {}",
                        word.get::<f64>("start")?,
                        word.get::<f64>("end")?,
                        word.get::<f64>("confidence")?,
                        word.get::<&str>("text")?,
                    )?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

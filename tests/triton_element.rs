// SPDX-License-Identifier: MPL-2.0
//! The element with its model on a real Triton Inference Server (PyTriton on loopback,
//! `tests/common/triton.rs`): the same text as the model run in the element; a server that
//! is not there fails the start with its URL; a file outlasts a server killed and restarted
//! under it (retries); live capture loses nothing while the server is gone, the element
//! drops that span with GAP events, QoS and a warning, and text resumes once it is back.

mod common;
mod plugin;
#[path = "common/triton.rs"]
mod triton;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{read_wav, repository};
use gst::prelude::*;
use plugin::capture::Capture;
use plugin::init;

/// One at a time: a live run measures real time on a small machine.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn hama() -> std::path::PathBuf {
    repository().join("models/hama-en.onnx")
}

/// The clip as S16LE bytes.
fn clip_bytes() -> Vec<u8> {
    read_wav(&repository().join("samples/LJ001-0001.wav"))
        .iter()
        .flat_map(|&s| ((s * 32768.0).clamp(-32768.0, 32767.0) as i16).to_le_bytes())
        .collect()
}

/// A file-like pipeline (appsrc, not live) into the element; `between` runs after it is
/// PLAYING (the model loaded) and before the audio is pushed. Returns the text.
fn transcribe(server: Option<&str>, between: impl FnOnce()) -> Result<String, String> {
    init();
    let pipeline = gst::parse::launch(
        "appsrc name=src format=time ! audioconvert ! audioresample ! \
         quartznetstt name=stt threads=1 ! fakesink name=sink",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let stt = pipeline.by_name("stt").unwrap();
    if let Some(url) = server {
        stt.set_property("inference-server", url);
        stt.set_property("inference-timeout", 3000u32);
    }
    let text = Arc::new(Mutex::new(String::new()));
    let sink_text = Arc::clone(&text);
    stt.static_pad("src")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(buffer) = info.buffer()
                && let Ok(map) = buffer.map_readable()
            {
                let mut text = sink_text.lock().unwrap();
                text.push_str(&String::from_utf8_lossy(&map));
                text.push(' ');
            }
            gst::PadProbeReturn::Ok
        });
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    src.set_caps(Some(
        &gst::Caps::builder("audio/x-raw")
            .field("format", "S16LE")
            .field("rate", 16_000i32)
            .field("channels", 1i32)
            .field("layout", "interleaved")
            .build(),
    ));
    let bus = pipeline.bus().unwrap();
    let result = (|| {
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| first_error(&bus))?;
        between();
        let mut buffer = gst::Buffer::from_slice(clip_bytes());
        buffer.get_mut().unwrap().set_pts(gst::ClockTime::ZERO);
        src.push_buffer(buffer).map_err(|e| e.to_string())?;
        src.end_of_stream().map_err(|e| e.to_string())?;
        let message = bus
            .timed_pop_filtered(
                gst::ClockTime::from_seconds(120),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
            .ok_or("no EOS in 120 s")?;
        match message.view() {
            gst::MessageView::Error(e) => Err(e.error().to_string()),
            _ => Ok(()),
        }
    })();
    pipeline.set_state(gst::State::Null).unwrap();
    result.map(|()| {
        text.lock()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// The first error on `bus`.
fn first_error(bus: &gst::Bus) -> String {
    bus.timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
        .and_then(|m| match m.view() {
            gst::MessageView::Error(e) => Some(e.error().to_string()),
            _ => None,
        })
        .unwrap_or_else(|| "the state change failed without an error message".into())
}

#[test]
fn a_server_that_is_not_there_fails_the_start_with_its_url() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let error = transcribe(Some(&url), || {}).unwrap_err();
    assert!(
        error.contains("cannot reach the inference server") && error.contains(&url),
        "{error}"
    );
}

#[test]
fn files_get_the_local_text_and_outlast_a_server_restart() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(server) = triton::Server::start(&[&hama()], &["--threads", "1"]) else {
        return;
    };
    let local = transcribe(None, || {}).unwrap();
    assert!(local.contains("printing"), "{local}");
    assert_eq!(transcribe(Some(&server.url), || {}).unwrap(), local);

    // Killed once the model is loaded, before the audio: the window waits for the restart.
    let server = Arc::new(Mutex::new(server));
    let restarted = Arc::new(Mutex::new(None));
    let url = server.lock().unwrap().url.clone();
    let text = transcribe(Some(&url), || {
        server.lock().unwrap().kill();
        let server = Arc::clone(&server);
        let done = Arc::clone(&restarted);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(1));
            server.lock().unwrap().launch();
            *done.lock().unwrap() = Some(Instant::now());
        });
    })
    .unwrap();
    assert!(
        restarted.lock().unwrap().is_some(),
        "recognised before the restart"
    );
    assert_eq!(text, local);
}

/// Texts that left the element, with when.
#[derive(Default)]
struct Seen {
    texts: Vec<Instant>,
    gaps: u64,
}

#[test]
fn live_capture_keeps_flowing_while_the_server_is_gone_and_text_resumes() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut server) = triton::Server::start(&[&hama()], &["--threads", "1"]) else {
        return;
    };
    init();
    let pipeline = gst::parse::launch(
        "appsrc name=capture ! queue max-size-buffers=0 max-size-bytes=0 \
         max-size-time=10000000000 ! audioconvert ! audioresample ! quartznetstt name=stt \
         threads=1 inference-timeout=2000 ! queue max-size-buffers=0 max-size-bytes=0 \
         max-size-time=0 ! fakesink sync=true",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let stt = pipeline.by_name("stt").unwrap();
    stt.set_property("inference-server", &server.url);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let probe_seen = Arc::clone(&seen);
    stt.static_pad("src").unwrap().add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            let mut seen = probe_seen.lock().unwrap();
            match &info.data {
                Some(gst::PadProbeData::Buffer(b)) if b.size() > 0 => {
                    seen.texts.push(Instant::now())
                }
                Some(gst::PadProbeData::Event(e)) if e.type_() == gst::EventType::Gap => {
                    seen.gaps += 1
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
    let speech = read_wav(&repository().join("samples/LJ001-0001.wav"));
    let src = Capture::configure(&pipeline);
    pipeline.set_state(gst::State::Playing).unwrap();
    let capture = Capture::start(src, speech);
    let bus = pipeline.bus().unwrap();
    let (warnings, qos_dropped) = (
        Arc::new(Mutex::new(Vec::new())),
        Arc::new(AtomicU64::new(0)),
    );
    let watch = |seconds: u64| {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        while Instant::now() < deadline {
            let Some(message) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
                continue;
            };
            match message.view() {
                gst::MessageView::Error(e) => panic!("{} ({:?})", e.error(), e.debug()),
                gst::MessageView::Warning(w) => {
                    warnings.lock().unwrap().push(w.error().to_string())
                }
                gst::MessageView::Qos(q) if message.src() == Some(stt.upcast_ref()) => {
                    qos_dropped.fetch_max(q.stats().1.value() as u64, Ordering::Relaxed);
                }
                _ => {}
            }
        }
    };
    watch(8);
    let before = seen.lock().unwrap().texts.len();
    assert!(before > 0, "no text before the server went away");
    server.kill();
    let killed = Instant::now();
    watch(5);
    // Restarting takes PyTriton 10 to 30 s here; capture goes on meanwhile.
    let restart = std::thread::spawn(move || {
        server.launch();
        (server, Instant::now())
    });
    while !restart.is_finished() {
        watch(1);
    }
    let (_server, back) = restart.join().unwrap();
    watch(12);
    let (periods, overruns) = capture.stop();
    pipeline.set_state(gst::State::Null).unwrap();
    let seen = seen.lock().unwrap();
    let warnings = warnings.lock().unwrap();
    eprintln!(
        "periods {periods}, overruns {overruns}, texts {} ({before} before the kill), gaps {}, \
         dropped {} samples, warnings {warnings:?}, outage {:?}",
        seen.texts.len(),
        seen.gaps,
        qos_dropped.load(Ordering::Relaxed),
        back - killed
    );
    assert_eq!(overruns, 0, "capture lost audio");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("dropped until the server answers")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("while the inference server did not answer")),
        "{warnings:?}"
    );
    assert!(
        qos_dropped.load(Ordering::Relaxed) > 0,
        "no QoS for the dropped span"
    );
    assert!(seen.gaps > 0);
    assert!(
        seen.texts.iter().any(|&t| t > back),
        "no text after the server came back"
    );
}

// SPDX-License-Identifier: MPL-2.0
//! A simulated capture device, as ALSA and PulseAudio sources behave: a thread produces a 20
//! ms period on a real-time schedule into a 200 ms ring buffer (the default `buffer-time` of
//! `alsasrc` and `pulsesrc`), here appsrc's queue; a period that finds the ring full is lost
//! (an overrun) and counted. (The same device as `tests/live.rs`'s.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gst::prelude::*;

const RATE: u64 = 16_000;
const PERIOD_SAMPLES: usize = 320;
const RING_BYTES: u64 = 200 * RATE / 1000 * 2;

/// The live caption pipeline the README documents, with the capture device and video sink
/// replaced by test doubles: a queue lets capture go on while the model runs, and one after
/// the element lets recognition go on while `textoverlay` holds text back until the video
/// reaches it.
pub const DOCUMENTED: &str = "appsrc name=capture ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=10000000000 ! audioconvert ! audioresample ! quartznetstt name=stt threads=1 ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=0 ! txt.text_sink videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=10/1 ! textoverlay name=txt ! fakesink sync=true";

/// A simulated capture device feeding the appsrc named `capture`.
pub struct Capture {
    stop: Arc<AtomicBool>,
    overruns: Arc<AtomicU64>,
    periods: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Capture {
    /// Sets the appsrc named `capture` up as a live source (before the pipeline starts).
    pub fn configure(pipeline: &gst::Pipeline) -> gst_app::AppSrc {
        let src = pipeline
            .by_name("capture")
            .unwrap()
            .downcast::<gst_app::AppSrc>()
            .unwrap();
        src.set_caps(Some(
            &gst_audio::AudioCapsBuilder::new_interleaved()
                .format(gst_audio::AudioFormat::S16le)
                .rate(RATE as i32)
                .channels(1)
                .build(),
        ));
        src.set_is_live(true);
        src.set_format(gst::Format::Time);
        // appsrc's own limit is not the device's: the ring is checked in `start`.
        src.set_max_bytes(0);
        src
    }

    /// Starts capturing `speech` in a loop into `src`, timestamped as a device does: the
    /// running time of the first period plus the sample count.
    pub fn start(src: gst_app::AppSrc, speech: Vec<f32>) -> Self {
        let (stop, overruns, periods) = Default::default();
        let capture = Self {
            stop: Arc::clone(&stop),
            overruns: Arc::clone(&overruns),
            periods: Arc::clone(&periods),
            thread: None,
        };
        let bytes: Vec<u8> = speech
            .iter()
            .flat_map(|&s| ((s * 32768.0).clamp(-32768.0, 32767.0) as i16).to_le_bytes())
            .collect();
        let period = Duration::from_micros(PERIOD_SAMPLES as u64 * 1_000_000 / RATE);
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let first = src
                .clock()
                .zip(src.base_time())
                .map_or(gst::ClockTime::ZERO, |(clock, base)| {
                    clock.time().saturating_sub(base)
                });
            let mut n = 0u64;
            let mut offset = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let due = started + period * n as u32;
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                let mut chunk = Vec::with_capacity(PERIOD_SAMPLES * 2);
                while chunk.len() < PERIOD_SAMPLES * 2 {
                    let take = (PERIOD_SAMPLES * 2 - chunk.len()).min(bytes.len() - offset);
                    chunk.extend_from_slice(&bytes[offset..offset + take]);
                    offset = (offset + take) % bytes.len();
                }
                periods.fetch_add(1, Ordering::Relaxed);
                if src.current_level_bytes() + chunk.len() as u64 > RING_BYTES {
                    overruns.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let mut buffer = gst::Buffer::from_mut_slice(chunk);
                {
                    let buffer = buffer.get_mut().unwrap();
                    let samples = (n - 1) * PERIOD_SAMPLES as u64;
                    buffer.set_pts(
                        first + gst::ClockTime::from_nseconds(samples * 1_000_000_000 / RATE),
                    );
                    buffer.set_duration(gst::ClockTime::from_nseconds(
                        PERIOD_SAMPLES as u64 * 1_000_000_000 / RATE,
                    ));
                }
                if src.push_buffer(buffer).is_err() {
                    break;
                }
            }
        });
        Self {
            thread: Some(thread),
            ..capture
        }
    }

    /// Stops capturing; returns (periods, overruns).
    pub fn stop(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        (
            self.periods.load(Ordering::Relaxed),
            self.overruns.load(Ordering::Relaxed),
        )
    }
}

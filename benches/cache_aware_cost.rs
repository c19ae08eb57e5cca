// SPDX-License-Identifier: MPL-2.0
//! What live streaming costs and how late its text comes, for one model file at one ONNX
//! Runtime thread setting: the CPU time per second of audio and the delay from a word's (or
//! an output frame's) end to the moment its text leaves the recogniser, with the audio
//! arriving in real time. Run for a cache-aware model (`tools/export_nemo.py --cache-aware`:
//! NeMo's cache-aware steps) and for the same weights exported as a whole-utterance graph
//! (buffered windows) to compare the two strategies: `benches/cache_aware.py` does that,
//! interleaved, and prints the table of `docs/CACHE_AWARE.md` section 11.
//!
//! `cargo bench --bench cache_aware_cost -- [--threads N] [--seconds S] [--push-ms MS]
//! [--latencies MS,MS,...] MODEL.onnx` prints a readable line per latency on standard error
//! and one JSON object on standard output.
//!
//! For each latency (the element's `latency`: the recogniser is built as the element builds
//! it, [`Recognizer::from_config`] over [`RecognizerConfig::for_input`] for live input, greedy
//! decoding, the plan's word gap), after a warm-up of a few seconds pushed at once, the audio
//! is pushed in `--push-ms` buffers (default 20 ms, a capture device's period), each at the
//! moment its last sample would have been captured, results drained after each push:
//!
//! - `cpu_s`: the process's CPU time (user + system, every thread: `/proc/self/stat`, 10 ms
//!   ticks) over the paced stream: frontend, model and decoder. `cpu_per_audio_s` is that over
//!   the audio's length; one core runs `1 / cpu_per_audio_s` such streams (`streams_per_core`);
//! - `frame_delay_*`: for every output frame of the model, the wall time its log-probs came
//!   out less the time its audio ended ((frame + 1) x frame length after the stream start):
//!   what a word ending on that frame waits at least, weights or no weights;
//! - `word_delay_*`: for every word the decoder made final, the wall time it came out less the
//!   end of its last frame: the text's delay (a word is final once the next one starts or the
//!   word gap of silence follows it). On a random-weight model the words are gibberish but the
//!   decoder and its hold are the real ones;
//! - `step_*_ms`: the time a push that completed a chunk (a window, a step) took.
//!
//! Results of the end of the stream (`finish`) are not counted: a live stream does not end
//! after each word. Medians and 95th percentiles over the stream.

// Shared with throughput.rs and model_cost.rs, which use the rest of it.
#[allow(dead_code)]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use quartznet_engine::config::{RecognizerConfig, WindowOverrides, available_cores};
use quartznet_engine::model::LoadOptions;
use quartznet_engine::streaming::{ChunkResult, Recognizer, StreamingModel};
use support::Result;

const SAMPLE_RATE: u32 = 16_000;
/// Audio pushed at once before each paced stream, so that ONNX Runtime's first runs
/// (allocation, tuning) are not timed.
const WARM_UP_S: f64 = 4.0;
const USAGE: &str = "usage: cargo bench --bench cache_aware_cost -- [--threads N] \
     [--seconds S] [--push-ms MS] [--latencies MS,MS,...] MODEL.onnx";

fn main() {
    if let Err(e) = run() {
        eprintln!("cache_aware_cost: {e}");
        std::process::exit(1);
    }
}

/// This process's CPU time (user + system, all threads) in seconds.
fn process_cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses: state is the
    // first, utime and stime the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    // USER_HZ is 100 on every Linux ABI this runs on.
    fields.iter().sum::<u64>() as f64 / 100.0
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// The `p` quantile (0 to 1) of `values`, sorted in place; 0 when empty.
fn quantile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let last = values.len() - 1;
    values[(last as f64 * p).round() as usize]
}

/// Delays and step times of one paced stream.
#[derive(Default)]
struct Paced {
    frame_delays: Vec<f64>,
    word_delays: Vec<f64>,
    step_ms: Vec<f64>,
    words: usize,
    cpu_s: f64,
    wall_s: f64,
}

impl Paced {
    /// Records `result`, out at `at` seconds after the stream start.
    fn record(&mut self, result: &ChunkResult, at: f64, frame_s: f64) {
        for f in result.first_frame..result.first_frame + result.frames {
            self.frame_delays.push(at - (f + 1) as f64 * frame_s);
        }
        for w in &result.words {
            self.word_delays.push(at - w.end_frame as f64 * frame_s);
        }
        self.words += result.words.len();
    }
}

/// Pushes `audio` in `push` buffers, each when its last sample would have been captured.
fn paced(recognizer: &mut Recognizer, audio: &[f32], push: usize, frame_s: f64) -> Result<Paced> {
    recognizer.reset();
    let mut out = Paced::default();
    let cpu_start = process_cpu_s();
    let start = Instant::now();
    let mut pushed = 0usize;
    for piece in audio.chunks(push) {
        pushed += piece.len();
        let due = start + Duration::from_secs_f64(pushed as f64 / f64::from(SAMPLE_RATE));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let began = Instant::now();
        recognizer.push(piece);
        let mut completed = false;
        while let Some(result) = recognizer.next_result()? {
            out.record(&result, start.elapsed().as_secs_f64(), frame_s);
            completed = true;
        }
        if completed {
            out.step_ms.push(began.elapsed().as_secs_f64() * 1e3);
        }
    }
    out.wall_s = start.elapsed().as_secs_f64();
    out.cpu_s = process_cpu_s() - cpu_start;
    recognizer.finish()?;
    Ok(out)
}

fn latencies(text: &str) -> Result<Vec<u32>> {
    text.split(',')
        .map(|v| {
            v.trim()
                .parse::<u32>()
                .map_err(|_| format!("--latencies {text}: not a list of milliseconds").into())
        })
        .collect()
}

/// What a recogniser streams: the cache-aware look-ahead, or the buffered windows.
fn describe(recognizer: &Recognizer) -> serde_json::Value {
    let ms = |samples: usize| samples as f64 * 1000.0 / f64::from(SAMPLE_RATE);
    let g = recognizer.geometry();
    match recognizer {
        Recognizer::CacheAware(r) => serde_json::json!({
            "strategy": "cache-aware",
            "look_ahead_ms": r.look_ahead().look_ahead_ms,
            "att_context_size": r.look_ahead().att_context_size,
            "chunk_ms": ms(g.chunk),
            "waits_ms": ms(recognizer.lookahead()),
        }),
        Recognizer::Buffered(_) => serde_json::json!({
            "strategy": "buffered",
            "left_ms": ms(g.left), "chunk_ms": ms(g.chunk), "right_ms": ms(g.right),
            "waits_ms": ms(recognizer.lookahead()),
        }),
    }
}

fn run() -> Result<()> {
    let args = support::Args::parse(
        &["--threads", "--seconds", "--push-ms", "--latencies"],
        &[],
        USAGE,
    )?;
    let [path] = args.positional.as_slice() else {
        return Err(format!("one model, please\n{USAGE}").into());
    };
    let threads = args.number("--threads", 1.0)? as usize;
    let seconds = args.number("--seconds", 20.0)?;
    let push = (args.number("--push-ms", 20.0)? * f64::from(SAMPLE_RATE) / 1000.0) as usize;
    let latencies = latencies(args.value("--latencies").unwrap_or("186,266,666,1226"))?;
    let repository = Path::new(env!("CARGO_MANIFEST_DIR"));
    let samples = (seconds * f64::from(SAMPLE_RATE)) as usize;
    let (_, audio) = support::looped_audio(
        &repository.join("tests/fixtures/audio"),
        SAMPLE_RATE,
        samples,
    )?;
    let warm_up = &audio[..audio
        .len()
        .min((WARM_UP_S * f64::from(SAMPLE_RATE)) as usize)];
    let load_average_start = load_average();
    let mut model = Some(StreamingModel::load(path, &LoadOptions { threads })?);
    let description = model.as_ref().expect("loaded").description().clone();
    if description.sample_rate != SAMPLE_RATE {
        return Err(format!("{}: not a {SAMPLE_RATE} Hz model", path.display()).into());
    }
    let frame_s = (description.frontend.hop_length * description.input_frames_per_output_frame())
        as f64
        / f64::from(SAMPLE_RATE);

    let mut runs = Vec::new();
    for latency in latencies {
        let overrides = WindowOverrides {
            latency_ms: Some(latency),
            ..Default::default()
        };
        let config = RecognizerConfig {
            threads,
            ..RecognizerConfig::for_input(&overrides, &description.latency_shares, true)
        };
        let loaded = model
            .take()
            .expect("the model is given back after each latency");
        let mut recognizer = Recognizer::from_config(loaded, &config, Some(latency))?;
        recognizer.push(warm_up);
        while recognizer.next_result()?.is_some() {}
        recognizer.finish()?;
        let mut p = paced(&mut recognizer, &audio, push.max(1), frame_s)?;
        let cpu_per_audio_s = p.cpu_s / seconds;
        let entry = serde_json::json!({
            "latency_ms": latency,
            "setup": describe(&recognizer),
            "cpu_s": p.cpu_s,
            "wall_s": p.wall_s,
            "cpu_per_audio_s": cpu_per_audio_s,
            "streams_per_core": if cpu_per_audio_s > 0.0 { 1.0 / cpu_per_audio_s } else { f64::INFINITY },
            "frame_delay_median_s": quantile(&mut p.frame_delays, 0.5),
            "frame_delay_p95_s": quantile(&mut p.frame_delays, 0.95),
            "word_delay_median_s": quantile(&mut p.word_delays, 0.5),
            "word_delay_p95_s": quantile(&mut p.word_delays, 0.95),
            "words": p.words,
            "step_median_ms": quantile(&mut p.step_ms, 0.5),
            "step_p99_ms": quantile(&mut p.step_ms, 0.99),
            "steps": p.step_ms.len(),
            "load_average": load_average(),
        });
        eprintln!(
            "  latency {latency} ms, {}: CPU {:.3} s per audio s ({:.1} streams per core), \
             frame delay {:.2} / {:.2} s, word delay {:.2} / {:.2} s ({} words), step {:.0} / {:.0} ms",
            entry["setup"],
            cpu_per_audio_s,
            1.0 / cpu_per_audio_s.max(1e-9),
            entry["frame_delay_median_s"].as_f64().unwrap_or(0.0),
            entry["frame_delay_p95_s"].as_f64().unwrap_or(0.0),
            entry["word_delay_median_s"].as_f64().unwrap_or(0.0),
            entry["word_delay_p95_s"].as_f64().unwrap_or(0.0),
            p.words,
            entry["step_median_ms"].as_f64().unwrap_or(0.0),
            entry["step_p99_ms"].as_f64().unwrap_or(0.0),
        );
        runs.push(entry);
        model = Some(recognizer.into_model());
    }
    let report = serde_json::json!({
        "model": path.display().to_string(),
        "threads": threads,
        "cores": available_cores(),
        "audio_s": seconds,
        "push_ms": push as f64 * 1000.0 / f64::from(SAMPLE_RATE),
        "runs": runs,
        "load_average_start": load_average_start,
        "load_average_end": load_average(),
    });
    println!("{report}");
    Ok(())
}

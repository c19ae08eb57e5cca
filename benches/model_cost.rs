// SPDX-License-Identifier: MPL-2.0
//! What one model costs on this machine, in one process: loading, memory, and the real-time
//! factor of files and of live input, at one ONNX Runtime thread setting.
//!
//! `cargo bench --bench model_cost -- [--threads N] [--runs N] [--seconds S] [--budget S]
//! [--latencies MS,MS,...] MODEL.onnx` prints a few readable lines on standard error and one
//! JSON object on standard output. One model and one thread setting per process, so that the
//! peak resident memory is that model's: `benches/fullsize.py` runs it for several models
//! and settings, interleaved, and prints the table of `docs/SUBWORD.md` *Full-size models on
//! CPU*.
//!
//! Measured (the engine as the element and the client drive it, default settings):
//! - `load_s`: [`OnnxModel::load`]: ONNX Runtime session creation (graph optimisation,
//!   weight prepacking) and the interface check's trial run;
//! - `offline`: the whole audio as one utterance (`quartznet-transcribe --offline`);
//! - `file`: the file windows ([`RecognizerConfig::for_files`]: 60 s chunks, 2.5 s context,
//!   what the element does with input that is not live), pushed in 100 ms buffers;
//! - `live_<MS>`: the live windows of latency MS (the model's latency plan, as the element's
//!   `latency`), pushed in 100 ms buffers as fast as they are taken, with the time each
//!   window takes (median and 99th percentile): live input keeps up when the real-time
//!   factor is below 1, and text comes late when a window takes longer than its chunk;
//! - `rss_*_mb`: resident memory (VmRSS) before loading, the peak (VmHWM) after loading,
//!   and the peak of the whole run;
//! - the load average (1 min) at the start and the end, and the share of the machine's CPU
//!   time other processes took meanwhile.
//!
//! Each timing: one warm-up run, then `--runs` runs (default 3; fewer when the warm-up shows
//! they would take more than `--budget` seconds, default 60); median and minimum reported.
//! Decoding is the model's default (greedy without a language model, else beam search with
//! it). The audio is `tests/fixtures/audio/*.wav` joined and repeated to `--seconds`
//! (default 60).

// Shared with throughput.rs, which uses the rest of it.
#[allow(dead_code)]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use quartznet_engine::config::{
    DEFAULT_LATENCY_MS, RecognizerConfig, WindowOverrides, available_cores,
};
use quartznet_engine::model::{LoadOptions, OnnxModel};
use quartznet_engine::streaming::{StreamingRecognizer, recognize_offline};
use support::{CpuWatch, Result, Stats, Timer};

const PUSH_MS: usize = 100;
const SAMPLE_RATE: u32 = 16_000;
const USAGE: &str = "usage: cargo bench --bench model_cost -- [--threads N] [--runs N] \
     [--seconds S] [--budget S] [--latencies MS,MS,...] MODEL.onnx";

fn main() {
    if let Err(e) = run() {
        eprintln!("model_cost: {e}");
        std::process::exit(1);
    }
}

/// A field of /proc/self/status in MB (VmRSS, VmHWM), 0 when unreadable.
fn memory_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok());
    kb.unwrap_or(0.0) / 1024.0
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// `{"median_s", "min_s", "rtf", "runs"}` of a timing over `seconds` of audio.
fn timing(stats: &Stats, seconds: f64) -> serde_json::Value {
    let median = stats.median().as_secs_f64();
    serde_json::json!({
        "median_s": median,
        "min_s": stats.min().as_secs_f64(),
        "rtf": median / seconds,
        "runs": stats.runs_label(),
    })
}

/// Pushes `audio` in 100 ms buffers through `recognizer`, results drained after each push;
/// returns the time each completed window took (a push's time shared among the windows it
/// completed).
fn stream(recognizer: &mut StreamingRecognizer<OnnxModel>, audio: &[f32]) -> Result<Vec<Duration>> {
    recognizer.reset();
    let mut per_window = Vec::new();
    for piece in audio.chunks(SAMPLE_RATE as usize * PUSH_MS / 1000) {
        let start = Instant::now();
        recognizer.push(piece);
        let mut windows = 0u32;
        while recognizer.next_result()?.is_some() {
            windows += 1;
        }
        if windows > 0 {
            per_window.push(start.elapsed() / windows);
        }
    }
    recognizer.finish()?;
    Ok(per_window)
}

fn latencies(text: Option<&str>) -> Result<Vec<u32>> {
    let Some(text) = text else {
        return Ok(vec![DEFAULT_LATENCY_MS]);
    };
    text.split(',')
        .map(|v| {
            v.trim()
                .parse::<u32>()
                .map_err(|_| format!("--latencies {text}: not a list of milliseconds").into())
        })
        .collect()
}

fn run() -> Result<()> {
    let args = support::Args::parse(
        &[
            "--runs",
            "--threads",
            "--budget",
            "--seconds",
            "--latencies",
        ],
        &[],
        USAGE,
    )?;
    let [path] = args.positional.as_slice() else {
        return Err(format!("one model, please\n{USAGE}").into());
    };
    let threads = args.number("--threads", 0.0)? as usize;
    let seconds = args.number("--seconds", 60.0)?;
    let timer = Timer {
        runs: args.number("--runs", 3.0)? as usize,
        budget: Duration::from_secs_f64(args.number("--budget", 60.0)?),
    };
    let latencies = latencies(args.value("--latencies"))?;
    let repository = Path::new(env!("CARGO_MANIFEST_DIR"));
    let samples = (seconds * f64::from(SAMPLE_RATE)) as usize;
    let (_, audio) = support::looped_audio(
        &repository.join("tests/fixtures/audio"),
        SAMPLE_RATE,
        samples,
    )?;
    let watch = CpuWatch::start();
    let load_average_start = load_average();

    let rss_before = memory_mb("VmRSS");
    let start = Instant::now();
    let mut model = OnnxModel::load(path, &LoadOptions { threads })?;
    let load_s = start.elapsed().as_secs_f64();
    let rss_loaded = memory_mb("VmHWM");
    let d = model.description().clone();
    if d.sample_rate != SAMPLE_RATE {
        return Err(format!("{}: not a {SAMPLE_RATE} Hz model", path.display()).into());
    }
    eprintln!(
        "{}: {threads} thread(s), loaded in {load_s:.2} s, {rss_loaded:.0} MB",
        path.display()
    );

    let with_threads = |config: RecognizerConfig| RecognizerConfig { threads, ..config };
    let files = with_threads(RecognizerConfig::for_files());
    let decoding = files.decoding.decoding_options(&d)?;
    let frontend = files.frontend_for(&d);
    let offline = timer.time(|| {
        recognize_offline(&mut model, &d, frontend.clone(), decoding.clone(), &audio)?;
        Ok(())
    })?;
    eprintln!(
        "  offline RTF {:.3}",
        offline.median().as_secs_f64() / seconds
    );

    let mut recognizer = StreamingRecognizer::from_config(model, &files)?;
    let decoder = if recognizer.uses_beam_search() {
        "beam"
    } else {
        "greedy"
    };
    let file = timer.time(|| stream(&mut recognizer, &audio).map(drop))?;
    eprintln!(
        "  file windows RTF {:.3}",
        file.median().as_secs_f64() / seconds
    );
    let mut model = recognizer.into_model();

    let mut live = serde_json::Map::new();
    for latency in latencies {
        let overrides = WindowOverrides {
            latency_ms: Some(latency),
            ..Default::default()
        };
        let config = with_threads(RecognizerConfig::for_input(
            &overrides,
            &d.latency_shares,
            true,
        ));
        let mut recognizer = StreamingRecognizer::from_config(model, &config)?;
        let mut windows = Vec::new();
        let stats = timer.measure(|| {
            let start = Instant::now();
            windows = stream(&mut recognizer, &audio)?;
            Ok(start.elapsed())
        })?;
        windows.sort();
        let at = |p: f64| {
            let last = windows.len().saturating_sub(1);
            windows
                .get((last as f64 * p).round() as usize)
                .map_or(0.0, |w| w.as_secs_f64() * 1e3)
        };
        let g = recognizer.geometry();
        let ms = |samples: usize| samples as f64 * 1000.0 / f64::from(SAMPLE_RATE);
        let mut entry = timing(&stats, seconds);
        let extra = serde_json::json!({
            "left_ms": ms(g.left), "chunk_ms": ms(g.chunk), "right_ms": ms(g.right),
            "window_median_ms": at(0.5), "window_p99_ms": at(0.99), "windows": windows.len(),
        });
        entry
            .as_object_mut()
            .expect("timing is an object")
            .extend(extra.as_object().expect("an object").clone());
        eprintln!(
            "  live {latency} ms (windows {:.0}+{:.0}+{:.0} ms): RTF {:.3}, a window {:.0} ms median, {:.0} ms p99",
            ms(g.left),
            ms(g.chunk),
            ms(g.right),
            stats.median().as_secs_f64() / seconds,
            at(0.5),
            at(0.99)
        );
        live.insert(latency.to_string(), entry);
        model = recognizer.into_model();
    }
    drop(model);

    let report = serde_json::json!({
        "model": path.display().to_string(),
        "onnx_bytes": std::fs::metadata(path)?.len(),
        "threads": threads,
        "cores": available_cores(),
        "audio_s": seconds,
        "decoder": decoder,
        "load_s": load_s,
        "rss_before_load_mb": rss_before,
        "rss_loaded_peak_mb": rss_loaded,
        "rss_peak_mb": memory_mb("VmHWM"),
        "offline": timing(&offline, seconds),
        "file": timing(&file, seconds),
        "live": live,
        "load_average_start": load_average_start,
        "load_average_end": load_average(),
        "others": watch.others(),
    });
    println!("{report}");
    Ok(())
}

// SPDX-License-Identifier: MPL-2.0
//! Words, real-time factor and concurrent live streams of a model on one execution provider:
//! the engine alone (no GStreamer), so that `tools/gpu_check.sh` can run it on a machine that
//! has a GPU but no GStreamer.
//!
//! ```sh
//! cargo run --release -p quartznet-engine --example provider_bench -- \
//!     [--provider cpu|cuda|tensorrt|auto] [--threads N] [--streams 1,8,32|none] MODEL.onnx FILE.wav
//! ```
//!
//! Prints, each on a line of its own, `provider:` (the provider the sessions run on and, for
//! `auto`, why not the GPU), `words:` (the file recognised as the element recognises a file),
//! `file:` (its real-time factor, best of three after a warm-up) and, per stream count N,
//! `streams N:` (N recognisers with the live default windows, each in its own thread, fed
//! the file as fast as they take it: audio seconds recognised per wall second in all, which is
//! how many live streams the machine keeps up with when that is above N).

use std::path::PathBuf;
use std::time::Instant;

use quartznet_engine::config::RecognizerConfig;
use quartznet_engine::decode::{Word, transcript};
use quartznet_engine::model::{ExecutionProvider, LoadOptions};
use quartznet_engine::streaming::{Recognizer, StreamingModel};

#[path = "support/wav.rs"]
mod wav;
use wav::read_wav;

struct Args {
    provider: ExecutionProvider,
    threads: usize,
    streams: Vec<usize>,
    model: PathBuf,
    wav: PathBuf,
}

fn parse() -> Result<Args, Box<dyn std::error::Error>> {
    let usage =
        "usage: provider_bench [--provider P] [--threads N] [--streams 1,8,32] MODEL.onnx FILE.wav";
    let mut provider = ExecutionProvider::Cpu;
    let mut threads = 0;
    let mut streams = vec![1, 8, 32];
    let mut positional = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--provider" => provider = args.next().ok_or(usage)?.parse()?,
            "--threads" => threads = args.next().ok_or(usage)?.parse()?,
            "--streams" => {
                let list = args.next().ok_or(usage)?;
                streams = match list.as_str() {
                    "none" => Vec::new(),
                    _ => list.split(',').map(str::parse).collect::<Result<_, _>>()?,
                }
            }
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    let [model, wav] = <[PathBuf; 2]>::try_from(positional).map_err(|_| usage)?;
    Ok(Args {
        provider,
        threads,
        streams,
        model,
        wav,
    })
}

/// Recognises `samples` in 100 ms pieces; the words.
fn recognise(
    recognizer: &mut Recognizer,
    samples: &[f32],
    piece: usize,
) -> quartznet_engine::Result<Vec<Word>> {
    recognizer.reset();
    let mut words = Vec::new();
    for chunk in samples.chunks(piece) {
        recognizer.push(chunk);
        while let Some(result) = recognizer.next_result()? {
            words.extend(result.words);
        }
    }
    for result in recognizer.finish()? {
        words.extend(result.words);
    }
    Ok(words)
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("provider_bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse()?;
    let options = LoadOptions {
        threads: args.threads,
    };
    let load = || StreamingModel::load_on(&args.model, &options, args.provider);
    let started = Instant::now();
    let model = load()?;
    let load_s = started.elapsed().as_secs_f64();
    // Loaded here, never served: it has sessions.
    let sessions = model.sessions().ok_or("a local model has sessions")?;
    match sessions.fallback() {
        Some(reason) => println!(
            "provider: {} (asked {}: {reason})",
            sessions.provider(),
            args.provider
        ),
        None => println!(
            "provider: {} (loaded in {load_s:.2} s)",
            sessions.provider()
        ),
    }
    let rate = model.description().sample_rate;
    let samples = read_wav(&args.wav, rate)?;
    let seconds = samples.len() as f64 / f64::from(rate);
    let piece = rate as usize / 10;

    // The file, as the element recognises input that is not live.
    let mut recognizer = Recognizer::from_config(model, &RecognizerConfig::for_files(), None)?;
    let words = recognise(&mut recognizer, &samples, piece)?;
    println!("words: {}", transcript(&words));
    let best = (0..3)
        .map(|_| {
            let t = Instant::now();
            recognise(&mut recognizer, &samples, piece).map(|_| t.elapsed().as_secs_f64())
        })
        .collect::<quartznet_engine::Result<Vec<f64>>>()?
        .into_iter()
        .fold(f64::INFINITY, f64::min);
    println!(
        "file: {seconds:.2} s of audio in {best:.4} s: real-time factor {:.5}",
        best / seconds
    );
    drop(recognizer);

    // Live streams: each its own recogniser with the live default windows, all on the one
    // shared model (its session pool).
    for &n in &args.streams {
        let mut recognizers = (0..n)
            .map(|_| {
                load().and_then(|m| Recognizer::from_config(m, &RecognizerConfig::default(), None))
            })
            .collect::<quartznet_engine::Result<Vec<_>>>()?;
        // Warm-up: every recogniser once (GPU kernels, arenas).
        for r in &mut recognizers {
            recognise(r, &samples[..samples.len().min(rate as usize * 5)], piece)?;
        }
        let t = Instant::now();
        std::thread::scope(|scope| {
            let handles: Vec<_> = recognizers
                .iter_mut()
                .map(|r| scope.spawn(|| recognise(r, &samples, piece).map(|_| ())))
                .collect();
            handles
                .into_iter()
                .try_for_each(|h| h.join().expect("a stream thread panicked"))
        })?;
        let wall = t.elapsed().as_secs_f64();
        let throughput = n as f64 * seconds / wall;
        println!(
            "streams {n}: {:.1} audio s in {wall:.2} s wall: {throughput:.1} audio s per s (keeps up with {} live streams if that is >= {n})",
            n as f64 * seconds,
            throughput.floor()
        );
    }
    Ok(())
}

// SPDX-License-Identifier: MPL-2.0
//! Throughput benchmark: where the time of live recognition goes, and how far the streaming
//! windows are from the cheapest possible run (one ONNX Runtime call over the whole
//! utterance). A second section measures how much the buffered-window scheme changes the
//! model's output as the context around each chunk shrinks.
//!
//! Run with `cargo bench --bench throughput -- [MODEL.onnx ...]` (default: the bundled
//! `models/quartznet-en.onnx`). A plain `main` (`harness = false`) rather than a statistics
//! framework, because the quantities wanted are real-time factors of whole passes over a
//! minute of audio, not nanosecond loops. Windows and decoders are the element's defaults
//! (`quartznet_engine::config`).
//!
//! Options after `--` (each `--name N` may instead be set as `QUARTZNETSTT_BENCH_NAME=N`):
//! - `--runs N`: timed runs after one warm-up (default 3);
//! - `--threads N`: ONNX Runtime intra-op threads (default 0: ONNX Runtime decides);
//! - `--budget S`: a measurement whose warm-up shows that N runs would take longer than S
//!   seconds (default 60) gets fewer runs, and says so;
//! - `--seconds S`: length of the benchmark audio (default 60);
//! - `--no-element`, `--no-sweep` skip those sections.

mod support;

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use quartznet_engine::config::{self, DecoderKind, NormalizationKind, RecognizerConfig};
use quartznet_engine::decode::{CtcDecoder, greedy_transcript};
use quartznet_engine::frontend::{FeatureExtractor, Features, Normalization};
use quartznet_engine::metrics::edit_distance;
use quartznet_engine::model::{AcousticModel, LoadOptions, OnnxModel, bundled, runtime};
use quartznet_engine::streaming::{StreamingRecognizer, WindowConfig, recognize_offline};
use support::{Report, Result, Timer};

/// The element receives buffers of this size from a typical live source.
const PUSH_MS: usize = 100;
/// The rate of the benchmark audio (tests/fixtures/audio) and of the models.
const SAMPLE_RATE: u32 = 16_000;
/// Left = right context of the sweep, from the element's default down to none.
const SWEEP_CONTEXTS_MS: [u32; 6] = [config::DEFAULT_LEFT_CONTEXT_MS, 1500, 1000, 500, 250, 0];
const USAGE: &str = "usage: cargo bench --bench throughput -- [--runs N] [--threads N] \
     [--budget SECONDS] [--seconds AUDIO_SECONDS] [--no-element] [--no-sweep] [MODEL.onnx ...]";

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn model_name(path: &Path) -> String {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    stem.unwrap_or_else(|| path.display().to_string())
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-12)
}

/// Drives a recogniser as the element does: 100 ms buffers, results drained after each,
/// then end of stream. Returns the kept log-probs of every result, in order.
fn run_stream<M: AcousticModel>(
    recognizer: &mut StreamingRecognizer<M>,
    samples: &[f32],
) -> Result<Vec<f32>> {
    let mut logprobs = Vec::new();
    for chunk in samples.chunks(SAMPLE_RATE as usize * PUSH_MS / 1000) {
        recognizer.push(chunk);
        while let Some(result) = recognizer.next_result()? {
            logprobs.extend(result.logprobs);
        }
    }
    for result in recognizer.finish()? {
        logprobs.extend(result.logprobs);
    }
    Ok(logprobs)
}

/// Times every stage for one model with the element's default settings; returns the model
/// for the sweep.
fn bench_model(
    path: &Path,
    audio: &[f32],
    wav: Option<&Path>,
    timer: &Timer,
    threads: usize,
    report: &mut Report,
) -> Result<OnnxModel> {
    let name = model_name(path);
    let (start, shown) = (Instant::now(), path.display());
    let mut model = OnnxModel::load(path, &LoadOptions { threads })?;
    let load = start.elapsed().as_secs_f64();
    report.note(format!("{name}: loaded in {load:.2} s ({shown})"));
    let d = model.description().clone();
    if d.sample_rate != SAMPLE_RATE {
        let rate = d.sample_rate;
        return Err(format!("model expects {rate} Hz, the audio is {SAMPLE_RATE} Hz").into());
    }
    let config = RecognizerConfig {
        threads,
        ..Default::default()
    };
    let frontend = config.frontend_for(&d);
    let (window, _) = WindowConfig::for_model(&config, &d);
    let mut extractor = FeatureExtractor::new(frontend.clone())?;

    // The windows the recogniser forms: chunk k is [k C, k C + C), its window
    // [k C - L, k C + C + R) with silence before the start; the last window ends at the last
    // sample and keeps the frames still missing. The check after the recogniser's run below
    // proves these are its windows.
    let subsampling = d.subsampling_factor as usize;
    let frame = frontend.hop_length * subsampling;
    let total_frames = extractor.frame_count(audio.len()).div_ceil(subsampling);
    let (first, chunk_frames) = (window.left / frame, window.chunk / frame);
    let (l, c, r) = (window.left, window.chunk, window.right);
    let mut windows: Vec<(Vec<f32>, usize)> = Vec::new();
    for start in (0..).map(|k| k * c) {
        let full = start + c + r <= audio.len();
        let rest = total_frames.saturating_sub(start / frame);
        let keep = if full { chunk_frames } else { rest };
        let mut samples = vec![0.0; l.saturating_sub(start)];
        samples
            .extend_from_slice(&audio[start.saturating_sub(l)..(start + c + r).min(audio.len())]);
        if keep > 0 {
            windows.push((samples, keep));
        }
        if !full {
            break;
        }
    }
    let count = windows.len();

    // Frontend alone: every window's features, one extractor reused as in the recogniser.
    let mut features = Features::default();
    let stats = timer.time(|| {
        for (samples, _) in &windows {
            extractor.compute(samples, &mut features);
        }
        Ok(())
    })?;
    report.row(&name, format!("frontend ({count} windows)"), stats);

    // Inference alone: the same windows' features, computed beforehand.
    let window_features: Vec<Features> = windows
        .iter()
        .map(|(samples, _)| {
            let mut f = Features::default();
            extractor.compute(samples, &mut f);
            f
        })
        .collect();
    let mut outputs = vec![Vec::new(); count];
    let stats = timer.time(|| {
        for (f, out) in window_features.iter().zip(&mut outputs) {
            model.infer(f, out)?;
        }
        Ok(())
    })?;
    let inference = stats.median();
    report.row(&name, format!("inference ({count} windows)"), stats);

    // Decoding alone, over the frames the recogniser keeps, chunk by chunk: greedy, and the
    // beam search with the model's language model (the element's default for such models).
    let vocab = model.vocab_size();
    let kept: Vec<&[f32]> = (windows.iter().zip(&outputs))
        .map(|((_, keep), out)| &out[first * vocab..(first + keep) * vocab])
        .collect();
    let width = quartznet_engine::config::beam_settings(&config.decoding, model.description()).0;
    let beam = (
        DecoderKind::Beam,
        format!("beam search + LM (width {width})"),
    );
    let greedy = (
        DecoderKind::Greedy,
        format!("CTC decoding ({total_frames} frames)"),
    );
    for (kind, stage) in std::iter::once(greedy).chain(d.language_model.as_ref().map(|_| beam)) {
        let mut chosen = config.decoding.clone();
        chosen.decoder = Some(kind);
        let mut decoder = CtcDecoder::for_model(&d, chosen.decoding_options(&d)?)?;
        let stats = timer.time(|| {
            decoder.reset(0);
            for (lp, (_, keep)) in kept.iter().zip(&windows) {
                black_box(decoder.push(lp, *keep));
            }
            black_box(decoder.finish());
            Ok(())
        })?;
        report.row(&name, stage, stats);
    }

    // The whole recogniser as the element builds it: 100 ms pushes, results drained.
    let mut recognizer = StreamingRecognizer::from_config(model, &config)?;
    let mut streamed = Vec::new();
    let stats = timer.time(|| {
        streamed = run_stream(&mut recognizer, audio)?;
        Ok(())
    })?;
    if streamed != kept.concat() {
        report.note(format!(
            "{name}: WARNING: the separately timed windows are not the recogniser's; the stage \
             figures may not add up"
        ));
    }
    let recognizer_median = stats.median();
    let decoder = if recognizer.uses_beam_search() {
        "beam"
    } else {
        "greedy"
    };
    let stage = format!("StreamingRecognizer ({PUSH_MS} ms, {decoder})");
    report.row(&name, stage, stats);
    report.note(live_cost(
        &name,
        decoder,
        &mut recognizer,
        audio,
        window.chunk,
    )?);
    model = recognizer.into_model();

    // The floor: the whole utterance in one run (features computed once, untimed).
    FeatureExtractor::new(frontend)?.compute(audio, &mut features);
    let mut out = Vec::new();
    let stats = timer.time(|| {
        model.infer(&features, &mut out)?;
        Ok(())
    })?;
    let floor = stats.median();
    let shape = format!("[1,{},{}]", features.n_mels, features.frames);
    report.row(&name, format!("floor: one ORT run {shape}"), stats);
    report.note(format!(
        "{name}: window overhead (inference over windows / floor) = {:.2}x; recogniser / floor \
         = {:.2}x",
        ratio(inference, floor),
        ratio(recognizer_median, floor)
    ));

    // The whole element in a file pipeline: the model loads in NULL->PAUSED, so PLAYING->EOS
    // covers all of the recognition and none of the loading. A file is not live, so the
    // element recognises it in its file windows (`RecognizerConfig::for_files`), not the live
    // windows timed above.
    if let Some(wav) = wav {
        let quote = |p: &Path| format!("{:?}", p.display().to_string());
        let (wav, model) = (quote(wav), quote(path));
        let pipeline = format!(
            "filesrc location={wav} ! wavparse ! audioconvert ! audioresample ! quartznetstt \
             name=stt model-path={model} threads={threads} ! fakesink async=false sync=false"
        );
        let mut load = Duration::ZERO;
        let result = timer.measure(|| {
            let (paused, playing) = support::time_pipeline(&pipeline, "stt")?;
            load = paused;
            Ok(playing)
        });
        match result {
            Ok(stats) => {
                report.note(format!(
                    "{name}: element (file windows) / floor = {:.2}x; element / live recogniser \
                     = {:.2}x; NULL->PAUSED (model load + warm-up window) took {:.2} s, not counted",
                    ratio(stats.median(), floor),
                    ratio(stats.median(), recognizer_median),
                    load.as_secs_f64()
                ));
                report.row(&name, "element file pipeline, PLAYING->EOS", stats);
            }
            Err(e) => report.note(format!("{name}: element pipeline skipped: {e}")),
        }
    }
    Ok(model)
}

/// What one live stream costs at these windows: the time to recognise each window as the
/// element meets it (a push and the windows it completes), its median and 99th percentile,
/// the real-time factor, and so about how many real-time streams a core holds.
fn live_cost<M: AcousticModel>(
    name: &str,
    decoder: &str,
    recognizer: &mut StreamingRecognizer<M>,
    audio: &[f32],
    chunk_samples: usize,
) -> Result<String> {
    recognizer.reset();
    let mut per_window = Vec::new();
    let mut total = Duration::ZERO;
    for piece in audio.chunks(SAMPLE_RATE as usize * PUSH_MS / 1000) {
        let start = Instant::now();
        recognizer.push(piece);
        let mut windows = 0u32;
        while recognizer.next_result()?.is_some() {
            windows += 1;
        }
        let took = start.elapsed();
        total += took;
        if windows > 0 {
            per_window.push(took / windows);
        }
    }
    recognizer.finish()?;
    per_window.sort();
    let Some(last) = per_window.len().checked_sub(1) else {
        return Ok(format!("{name}: live cost: no window completed"));
    };
    let at = |p: f64| per_window[(last as f64 * p).round() as usize].as_secs_f64() * 1e3;
    let rtf = total.as_secs_f64() / (audio.len() as f64 / f64::from(SAMPLE_RATE));
    Ok(format!(
        "{name}: live, {decoder}, {} ms chunks: a window takes {:.1} ms median, {:.1} ms 99th \
         percentile ({} windows); real-time factor {rtf:.3}, so one core holds about {:.0} live \
         streams",
        chunk_samples * 1000 / SAMPLE_RATE as usize,
        at(0.5),
        at(0.99),
        per_window.len(),
        1.0 / rtf.max(1e-9)
    ))
}

/// Streaming vs offline output for shrinking context, under both normalisations, decoded
/// greedily: one printed line per normalisation and context.
fn sweep_model(name: &str, mut model: OnnxModel, audio: &[f32]) -> Result<Vec<String>> {
    let d = model.description().clone();
    let vocab = model.vocab_size();
    let argmax = |lp: &[f32], t: usize| {
        // Ties to the lowest index, like the decoder, so a tie is not counted as a change.
        let row = &lp[t * vocab..(t + 1) * vocab];
        (0..vocab).fold(0, |best, i| if row[i] > row[best] { i } else { best })
    };
    let fixed = match d.frontend.normalization {
        Normalization::Fixed { .. } => "fixed (model's statistics)",
        _ => "fixed (NeMo demo statistics)",
    };
    let mut lines = Vec::new();
    for (label, kind) in [
        ("per-window", NormalizationKind::PerWindow),
        (fixed, NormalizationKind::Fixed),
    ] {
        let normalization = Some(kind);
        let mut base = RecognizerConfig {
            normalization,
            ..Default::default()
        };
        base.decoding.decoder = Some(DecoderKind::Greedy);
        let decoding = base.decoding.decoding_options(&d)?;
        let offline = recognize_offline(&mut model, &d, base.frontend_for(&d), decoding, audio)?;
        let transcript = |lp: &[f32]| greedy_transcript(lp, vocab, &d.labels).chars().collect();
        let reference: Vec<char> = transcript(&offline.logprobs);
        for context in SWEEP_CONTEXTS_MS {
            let mut config = base.clone();
            (config.left_context_ms, config.right_context_ms) = (context, context);
            let mut recognizer = StreamingRecognizer::from_config(model, &config)?;
            let streamed = run_stream(&mut recognizer, audio)?;
            let context_ms = recognizer.geometry().left as f64 * 1000.0 / f64::from(SAMPLE_RATE);
            model = recognizer.into_model();

            let (frames, offline_frames) = (streamed.len() / vocab, offline.frames);
            let differing = (0..frames.min(offline_frames))
                .filter(|&t| argmax(&streamed, t) != argmax(&offline.logprobs, t))
                .count()
                + frames.abs_diff(offline_frames);
            let differing = 100.0 * differing as f64 / frames.max(offline_frames).max(1) as f64;
            let text: Vec<char> = transcript(&streamed);
            let cer =
                100.0 * edit_distance(&text, &reference) as f64 / reference.len().max(1) as f64;
            let frames = format!("{frames}/{offline_frames}");
            let chars = format!("{}/{}", text.len(), reference.len());
            lines.push(format!(
                "{name:<16} {label:<30} {context_ms:>7.0} {frames:>11} {differing:>14.2} {cer:>8.2} \
                 {chars:>11}"
            ));
        }
    }
    Ok(lines)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("throughput: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let valued = ["--runs", "--threads", "--budget", "--seconds"];
    let args = support::Args::parse(&valued, &["--no-element", "--no-sweep"], USAGE)?;
    let runs = args.number("--runs", 3.0)? as usize;
    let timer = Timer {
        runs,
        budget: Duration::from_secs_f64(args.number("--budget", 60.0)?),
    };
    let threads = args.number("--threads", config::DEFAULT_THREADS as f64)? as usize;
    let seconds = args.number("--seconds", 60.0)?;
    let sweep = !args.switch("--no-sweep");
    let mut models = args.positional.clone();
    if models.is_empty() {
        models.push(repository().join("models").join(bundled::FILE_NAME));
    }
    let library = match runtime::environment() {
        Ok(_) => runtime::loaded_library().map_or("?".into(), |p| p.display().to_string()),
        Err(e) => format!("NOT LOADED: {e}"),
    };
    let shown_threads = match threads {
        0 => "0 (ONNX Runtime decides: one per physical core)".to_string(),
        n => n.to_string(),
    };
    let (budget, machine) = (timer.budget.as_secs_f64(), support::machine());
    let (left, chunk, right) = (
        config::DEFAULT_LEFT_CONTEXT_MS,
        config::DEFAULT_CHUNK_MS,
        config::DEFAULT_RIGHT_CONTEXT_MS,
    );
    let gap = config::DEFAULT_WORD_GAP_MS;
    println!(
        "quartznetstt throughput benchmark\n{machine} | ONNX Runtime: {library}\n\
         ORT intra-op threads: {shown_threads}; inter-op 1 | runs: 1 warm-up + median of {runs} (fewer \
         if N runs would exceed {budget:.0} s) | audio: {seconds} s at {SAMPLE_RATE} Hz\n\
         streaming geometry: left {left} / chunk {chunk} / right {right} ms (element defaults), \
         word gap {gap} ms; RTF = processing time / {seconds} s"
    );
    let dir = repository().join("tests/fixtures/audio");
    let length = (seconds * f64::from(SAMPLE_RATE)) as usize;
    let (pcm, audio) = support::looped_audio(&dir, SAMPLE_RATE, length)?;
    let length = audio.len();
    println!(
        "audio: tests/fixtures/audio/*.wav in name order, repeated, cut to {length} samples\n"
    );

    let wav = if !args.switch("--no-element") {
        let wav = (gst::init().map_err(Into::into))
            .and_then(|()| gstquartznetstt::plugin_register_static().map_err(Into::into))
            .and_then(|()| support::temporary_wav(&pcm, SAMPLE_RATE));
        wav.map_err(|e| println!("element pipeline skipped for all models: {e}"))
            .ok()
    } else {
        None
    };

    let mut report = Report::default();
    let mut sweeps = Vec::new();
    for path in &models {
        let name = model_name(path);
        eprintln!("[{name}] timing...");
        let (started, watch) = (Instant::now(), support::CpuWatch::start());
        match bench_model(path, &audio, wav.as_deref(), &timer, threads, &mut report) {
            Ok(model) => {
                if let Some(others) = watch.others() {
                    report.note(format!("{name}, while it was timed: {others}"));
                }
                if sweep {
                    eprintln!("[{name}] context sweep...");
                    match sweep_model(&name, model, &audio) {
                        Ok(lines) => sweeps.extend(lines),
                        Err(e) => report.note(format!("{name}: sweep failed: {e}")),
                    }
                }
            }
            Err(e) => report.note(format!("{name}: skipped: {e}")),
        }
        eprintln!("[{name}] done in {:.1} s", started.elapsed().as_secs_f64());
    }

    println!("== throughput ==");
    report.print(seconds);
    if sweep {
        println!(
            "\n== context sweep: streaming vs offline whole-utterance output ==\n\
             chunk {chunk} ms, left = right context as listed; offline uses the same normalisation \
             over the whole {seconds} s.\n\
             NOTE: for a model with RANDOM weights this measures how sensitive the windowing \
             machinery is, not recognition accuracy. With fixed statistics the output can only \
             match offline once the context covers the model's receptive field.\n\
             {:<16} {:<30} {:>7} {:>11} {:>14} {:>8} {:>11}",
            "model", "normalisation", "ctx ms", "frames s/o", "argmax diff %", "CER %", "chars s/o"
        );
        sweeps.iter().for_each(|line| println!("{line}"));
        println!(
            "(argmax diff: output frames whose most likely class differs from offline; CER: \
             character edit distance of the streaming greedy transcript to the offline one, / \
             offline length, so above 100 % when streaming emits more; s/o = streaming/offline; \
             ctx ms as run, after rounding to whole output frames)"
        );
    }
    Ok(())
}

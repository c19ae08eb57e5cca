// SPDX-License-Identifier: MPL-2.0
//! Throughput benchmark: where the time of live recognition goes, and how far the streaming
//! windows are from the cheapest possible run (one ONNX Runtime call over the whole
//! utterance). A second section measures how much the buffered-window scheme changes the
//! model's output as the context around each chunk shrinks.
//!
//! Run with `cargo bench --bench throughput` (bench profile = optimised). A plain `main`
//! (`harness = false`) rather than a statistics framework, because the quantities wanted are
//! real-time factors of whole 60 s passes that take seconds each, not nanosecond loops.
//!
//! Settings (arguments after `--` take precedence over the variables):
//! - model paths as positional arguments, or `QUARTZNETSTT_BENCH_MODELS=a.onnx:b.onnx`;
//! - `--runs N` / `QUARTZNETSTT_BENCH_RUNS` (timed runs after one warm-up, default 3);
//! - `--threads N` / `QUARTZNETSTT_BENCH_THREADS` (ORT intra-op threads, default 0 = ORT
//!   decides);
//! - `--budget S` / `QUARTZNETSTT_BENCH_BUDGET_S`: a measurement whose warm-up shows that N
//!   runs would take longer than S seconds (default 60) gets fewer runs, and says so;
//! - `--no-element`, `--no-sweep` skip those sections.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gstquartznetstt::ctc::{GreedyCtcDecoder, greedy_transcript};
use gstquartznetstt::decoder::CtcDecoder;
use gstquartznetstt::description::ModelDescription;
use gstquartznetstt::frontend::{FeatureExtractor, Features, FrontendConfig, Normalization};
use gstquartznetstt::model::{AcousticModel, LoadOptions, OnnxModel};
use gstquartznetstt::options::{
    DecoderChoices, NormalizationChoice, PaddingChoice, decoder_config, decoding_options,
    frontend_for,
};
use gstquartznetstt::streaming::{StreamingRecognizer, WindowConfig, recognize_offline};

/// The element's defaults, so the streaming figures describe what a user gets out of the box.
const LEFT_MS: u32 = 2500;
const CHUNK_MS: u32 = 2000;
const RIGHT_MS: u32 = 2500;
const WORD_GAP_MS: u32 = 600;
/// The element receives buffers of this size from a typical live source.
const PUSH_MS: usize = 100;
const AUDIO_SECONDS: usize = 60;
const SAMPLE_RATE: u32 = 16_000;
const SWEEP_CONTEXTS_MS: [u32; 6] = [2500, 1500, 1000, 500, 250, 0];

type Result<T> = std::result::Result<T, String>;

struct Settings {
    models: Vec<PathBuf>,
    runs: usize,
    threads: usize,
    budget: Duration,
    element: bool,
    sweep: bool,
}

fn env_number(name: &str) -> Result<Option<f64>> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<f64>()
            .map(Some)
            .map_err(|_| format!("{name}={v} is not a number")),
        _ => Ok(None),
    }
}

fn settings() -> Result<Settings> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut models: Vec<PathBuf> = match std::env::var("QUARTZNETSTT_BENCH_MODELS") {
        Ok(list) if !list.trim().is_empty() => list
            .split(':')
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect(),
        _ => vec![
            PathBuf::from("/opt/models/quartznet5x5.onnx"),
            PathBuf::from("/opt/models/quartznet15x5.onnx"),
            root.join("tests/fixtures/models/quartznet-tiny.onnx"),
            root.join("models/quartznet-en.onnx"),
        ],
    };
    let mut runs = env_number("QUARTZNETSTT_BENCH_RUNS")?.map_or(3, |v| v as usize);
    let mut threads = env_number("QUARTZNETSTT_BENCH_THREADS")?.map_or(0, |v| v as usize);
    let mut budget = env_number("QUARTZNETSTT_BENCH_BUDGET_S")?.unwrap_or(60.0);
    let (mut element, mut sweep) = (true, true);

    let mut positional = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| -> Result<f64> {
            let v = args.next().ok_or(format!("{flag} needs a value"))?;
            v.parse().map_err(|_| format!("{flag} {v}: not a number"))
        };
        match arg.as_str() {
            // cargo bench passes --bench to harness = false targets; it means nothing here.
            "--bench" => {}
            "--runs" => runs = value("--runs")? as usize,
            "--threads" => threads = value("--threads")? as usize,
            "--budget" => budget = value("--budget")?,
            "--no-element" => element = false,
            "--no-sweep" => sweep = false,
            "-h" | "--help" => {
                println!(
                    "usage: cargo bench --bench throughput -- [--runs N] [--threads N] \
                     [--budget SECONDS] [--no-element] [--no-sweep] [MODEL.onnx ...]"
                );
                std::process::exit(0);
            }
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            other => positional.push(PathBuf::from(other)),
        }
    }
    if !positional.is_empty() {
        models = positional;
    }
    Ok(Settings {
        models,
        runs: runs.max(1),
        threads,
        budget: Duration::from_secs_f64(budget.max(0.0)),
        element,
        sweep,
    })
}

/// Timings of one measurement: the warm-up and the timed runs.
struct Stats {
    runs: Vec<Duration>,
    /// Set when the budget cut the run count, so the table can say so.
    reduced_from: Option<usize>,
}

impl Stats {
    fn median(&self) -> Duration {
        let mut v = self.runs.clone();
        v.sort();
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2
        }
    }
    fn min(&self) -> Duration {
        *self.runs.iter().min().unwrap()
    }
    fn max(&self) -> Duration {
        *self.runs.iter().max().unwrap()
    }
}

/// One untimed-for-the-result warm-up (ORT allocates and tunes on its first runs, the
/// frontend grows its buffers), then up to `runs` timed runs. `f` returns the time it wants
/// counted, so set-up work inside a run (building a pipeline, loading a model) stays out.
fn measure(
    runs: usize,
    budget: Duration,
    mut f: impl FnMut() -> Result<Duration>,
) -> Result<Stats> {
    let warm = f()?;
    let mut n = runs;
    let mut reduced_from = None;
    if warm * runs as u32 > budget && runs > 1 {
        n = ((budget.as_secs_f64() / warm.as_secs_f64().max(1e-9)) as usize).clamp(1, runs);
        if n < runs {
            reduced_from = Some(runs);
        }
    }
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        times.push(f()?);
    }
    Ok(Stats {
        runs: times,
        reduced_from,
    })
}

fn timed(f: impl FnOnce() -> Result<()>) -> Result<Duration> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed())
}

/// The test clips, concatenated in name order and repeated until exactly 60 s. Returns the
/// int16 samples (for the WAV the pipeline reads) and their f32 form (int16 / 32768, what the
/// element converts to), so both paths see bit-identical audio.
fn build_audio() -> Result<(Vec<i16>, Vec<f32>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audio");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    files.sort();
    let mut clips = Vec::new();
    for path in &files {
        let mut reader =
            hound::WavReader::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let spec = reader.spec();
        if (spec.channels, spec.sample_rate, spec.bits_per_sample) != (1, SAMPLE_RATE, 16) {
            return Err(format!(
                "{}: need 16 kHz mono 16-bit, found {spec:?}",
                path.display()
            ));
        }
        let samples = reader
            .samples::<i16>()
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        clips.push(samples);
    }
    let total = AUDIO_SECONDS * SAMPLE_RATE as usize;
    if clips.iter().all(|c| c.is_empty()) {
        return Err(format!("no audio in {}", dir.display()));
    }
    let mut pcm = Vec::with_capacity(total);
    'fill: loop {
        for clip in &clips {
            for &s in clip {
                if pcm.len() == total {
                    break 'fill;
                }
                pcm.push(s);
            }
        }
    }
    let samples = pcm.iter().map(|&s| f32::from(s) / 32768.0).collect();
    Ok((pcm, samples))
}

/// Removes the temporary WAV however the benchmark ends.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn write_wav(pcm: &[i16]) -> Result<TempFile> {
    let path = std::env::temp_dir().join(format!(
        "quartznetstt-throughput-{}.wav",
        std::process::id()
    ));
    let file = TempFile(path.clone());
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer =
        hound::WavWriter::create(&path, spec).map_err(|e| format!("{}: {e}", path.display()))?;
    for &s in pcm {
        writer.write_sample(s).map_err(|e| e.to_string())?;
    }
    writer.finalize().map_err(|e| e.to_string())?;
    Ok(file)
}

/// One window exactly as `StreamingRecognizer` forms it: `[k C - L, k C + C + R)` with
/// silence before the stream start, and a last window that ends at the last sample.
struct Window {
    audio: Vec<f32>,
    /// Output frames kept from `first` on.
    first: usize,
    keep: usize,
}

fn stream_windows(
    samples: &[f32],
    geometry: WindowConfig,
    frame_samples: usize,
    extractor: &FeatureExtractor,
    subsampling: usize,
) -> Vec<Window> {
    let n = samples.len() as i64;
    let (l, c, r) = (
        geometry.left as i64,
        geometry.chunk as i64,
        geometry.right as i64,
    );
    let slice = |start: i64, end: i64| -> Vec<f32> {
        (start..end)
            .map(|i| if i < 0 { 0.0 } else { samples[i as usize] })
            .collect()
    };
    let first = geometry.left / frame_samples;
    let keep = geometry.chunk / frame_samples;
    let mut windows = Vec::new();
    let mut k = 0i64;
    while k * c + c + r <= n {
        windows.push(Window {
            audio: slice(k * c - l, k * c + c + r),
            first,
            keep,
        });
        k += 1;
    }
    let emitted = (k * c) as usize / frame_samples;
    let total = extractor.frame_count(samples.len()).div_ceil(subsampling);
    if total > emitted {
        windows.push(Window {
            audio: slice(k * c - l, n),
            first,
            keep: total - emitted,
        });
    }
    windows
}

/// Passes through to the real model and keeps a copy of every input, to prove that the
/// windows timed on their own are the ones the recogniser really runs.
struct Tap<M> {
    inner: M,
    seen: Vec<Features>,
}

impl<M: AcousticModel> AcousticModel for Tap<M> {
    fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }
    fn infer(&mut self, features: &Features, out: &mut Vec<f32>) -> Result<usize> {
        self.seen.push(features.clone());
        self.inner.infer(features, out)
    }
}

/// Drives a recogniser as the element does: 100 ms buffers, results drained after each,
/// then end of stream. Returns the kept log-probs of every result, in order.
fn run_stream<M: AcousticModel>(
    recognizer: &mut StreamingRecognizer<M>,
    samples: &[f32],
) -> Result<Vec<f32>> {
    let piece = SAMPLE_RATE as usize * PUSH_MS / 1000;
    let mut logprobs = Vec::new();
    for chunk in samples.chunks(piece) {
        recognizer.push(chunk);
        while let Some(result) = recognizer.next_result()? {
            logprobs.extend_from_slice(&result.logprobs);
        }
    }
    for result in recognizer.finish()? {
        logprobs.extend_from_slice(&result.logprobs);
    }
    Ok(logprobs)
}

/// A row of the timing table.
struct Row {
    model: String,
    stage: String,
    stats: Stats,
}

struct Report {
    rows: Vec<Row>,
    notes: Vec<String>,
}

fn audio_seconds() -> f64 {
    AUDIO_SECONDS as f64
}

fn model_name(path: &Path) -> String {
    path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into(),
    )
}

fn bench_model(
    path: &Path,
    samples: &[f32],
    wav: Option<&Path>,
    s: &Settings,
    report: &mut Report,
) -> Result<OnnxModel> {
    let name = model_name(path);
    let options = LoadOptions { threads: s.threads };
    let load_start = Instant::now();
    let mut model = OnnxModel::load(path, &options)?;
    report.notes.push(format!(
        "{name}: loaded in {:.2} s ({})",
        load_start.elapsed().as_secs_f64(),
        path.display()
    ));
    let description = model.description().clone();
    if description.sample_rate != SAMPLE_RATE {
        return Err(format!(
            "{name}: model expects {} Hz, the benchmark audio is {SAMPLE_RATE} Hz",
            description.sample_rate
        ));
    }
    let frontend = frontend_for(&description, NormalizationChoice::Auto, PaddingChoice::Auto);
    let subsampling = description.subsampling_factor as usize;
    let frame_samples = frontend.hop_length * subsampling;
    let (geometry, _) =
        WindowConfig::from_millis(LEFT_MS, CHUNK_MS, RIGHT_MS, SAMPLE_RATE, frame_samples);
    let decoder = decoder_config(&description, WORD_GAP_MS);
    let mut extractor = FeatureExtractor::new(frontend.clone())?;
    let windows = stream_windows(samples, geometry, frame_samples, &extractor, subsampling);
    let kept_frames: usize = windows.iter().map(|w| w.keep).sum();

    // Frontend alone: every window's features, one extractor reused as in the recogniser.
    let mut features = Features::default();
    let stats = measure(s.runs, s.budget, || {
        timed(|| {
            for w in &windows {
                extractor.compute(&w.audio, &mut features);
            }
            Ok(())
        })
    })?;
    report.rows.push(Row {
        model: name.clone(),
        stage: format!("frontend ({} windows)", windows.len()),
        stats,
    });

    // Inference alone: the same windows' features, computed beforehand.
    let window_features: Vec<Features> = windows
        .iter()
        .map(|w| {
            let mut f = Features::default();
            extractor.compute(&w.audio, &mut f);
            f
        })
        .collect();
    let mut outputs: Vec<Vec<f32>> = vec![Vec::new(); windows.len()];
    let stats = measure(s.runs, s.budget, || {
        timed(|| {
            for (f, out) in window_features.iter().zip(outputs.iter_mut()) {
                model.infer(f, out)?;
            }
            Ok(())
        })
    })?;
    let inference_median = stats.median();
    report.rows.push(Row {
        model: name.clone(),
        stage: format!("inference ({} windows)", windows.len()),
        stats,
    });

    // CTC decoding alone, over the frames the recogniser keeps, chunk by chunk.
    let vocab = model.vocab_size();
    let kept: Vec<&[f32]> = windows
        .iter()
        .zip(&outputs)
        .map(|(w, out)| &out[w.first * vocab..(w.first + w.keep) * vocab])
        .collect();
    let mut ctc = GreedyCtcDecoder::new(description.labels.clone(), decoder)?;
    let stats = measure(s.runs, s.budget, || {
        timed(|| {
            ctc.reset(0);
            for (w, lp) in windows.iter().zip(&kept) {
                std::hint::black_box(ctc.push(lp, w.keep));
            }
            std::hint::black_box(ctc.finish());
            Ok(())
        })
    })?;
    report.rows.push(Row {
        model: name.clone(),
        stage: format!("CTC decoding ({kept_frames} frames)"),
        stats,
    });

    // Beam search with the model's language model (the element's default for such models).
    if description.language_model.is_some() {
        let options = decoding_options(&description, &DecoderChoices::default())?;
        let width = options.beam.as_ref().map_or(0, |b| b.beam_width);
        let mut beam = CtcDecoder::new(description.labels.clone(), options)?;
        let stats = measure(s.runs, s.budget, || {
            timed(|| {
                beam.reset(0);
                for (w, lp) in windows.iter().zip(&kept) {
                    std::hint::black_box(beam.push(lp, w.keep));
                }
                std::hint::black_box(beam.finish());
                Ok(())
            })
        })?;
        report.rows.push(Row {
            model: name.clone(),
            stage: format!("beam search + LM (width {width})"),
            stats,
        });
    }

    // Prove the windows above are the recogniser's own: run it once through a tap.
    let mut tapped = StreamingRecognizer::new(
        Tap {
            inner: model,
            seen: Vec::new(),
        },
        &description,
        frontend.clone(),
        geometry,
        decoder,
    )?;
    let streamed = run_stream(&mut tapped, samples)?;
    let tap = tapped.into_model();
    model = tap.inner;
    let same_windows = tap.seen.len() == window_features.len()
        && tap
            .seen
            .iter()
            .zip(&window_features)
            .all(|(a, b)| a.frames == b.frames && a.data == b.data);
    let expected: Vec<f32> = kept.concat();
    if !same_windows || streamed != expected {
        report.notes.push(format!(
            "{name}: WARNING: the separately timed windows differ from the recogniser's \
             ({} vs {} windows); the stage figures may not add up",
            window_features.len(),
            tap.seen.len()
        ));
    }

    // The whole recogniser: 100 ms pushes, results drained, finish.
    let mut recognizer =
        StreamingRecognizer::new(model, &description, frontend.clone(), geometry, decoder)?;
    let stats = measure(s.runs, s.budget, || {
        timed(|| run_stream(&mut recognizer, samples).map(drop))
    })?;
    let recognizer_median = stats.median();
    report.rows.push(Row {
        model: name.clone(),
        stage: format!("StreamingRecognizer ({PUSH_MS} ms pushes)"),
        stats,
    });
    model = recognizer.into_model();

    // The floor: the whole utterance in one run (features computed once, untimed).
    let mut offline_features = Features::default();
    FeatureExtractor::new(frontend.clone())?.compute(samples, &mut offline_features);
    let mut out = Vec::new();
    let stats = measure(s.runs, s.budget, || {
        timed(|| model.infer(&offline_features, &mut out).map(drop))
    })?;
    let floor = stats.median();
    report.rows.push(Row {
        model: name.clone(),
        stage: format!(
            "floor: one ORT run [1,{},{}]",
            offline_features.n_mels, offline_features.frames
        ),
        stats,
    });
    report.notes.push(format!(
        "{name}: window overhead (inference over windows / floor) = {:.2}x; \
         recogniser / floor = {:.2}x",
        ratio(inference_median, floor),
        ratio(recognizer_median, floor)
    ));

    // The whole element in a file pipeline.
    if let Some(wav) = wav {
        match bench_element(path, wav, s) {
            Ok((stats, load)) => {
                report.notes.push(format!(
                    "{name}: element / floor = {:.2}x; element / recogniser = {:.2}x; \
                     NULL->PAUSED (model load + warm-up window) took {:.2} s, not counted",
                    ratio(stats.median(), floor),
                    ratio(stats.median(), recognizer_median),
                    load.as_secs_f64()
                ));
                report.rows.push(Row {
                    model: name.clone(),
                    stage: "element pipeline, PLAYING->EOS".into(),
                    stats,
                });
            }
            Err(e) => report
                .notes
                .push(format!("{name}: element pipeline skipped: {e}")),
        }
    }
    Ok(model)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-12)
}

/// Runs `filesrc ! wavparse ! audioconvert ! audioresample ! quartznetstt ! fakesink` over
/// the WAV. The model loads in NULL->PAUSED; audio is held at the element's sink pad until
/// PLAYING (a blocking probe, with a non-prerolling sink), so PLAYING->EOS covers all 60 s of
/// recognition and none of the loading. Returns the stats and the last NULL->PAUSED time.
fn bench_element(model: &Path, wav: &Path, s: &Settings) -> Result<(Stats, Duration)> {
    let mut load = Duration::ZERO;
    let quote = |p: &Path| {
        p.display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
    };
    let description = format!(
        "filesrc location=\"{}\" ! wavparse ! audioconvert ! audioresample ! \
         quartznetstt name=stt model-path=\"{}\" threads={} ! fakesink async=false sync=false",
        quote(wav),
        quote(model),
        s.threads
    );
    let stats = measure(s.runs, s.budget, || {
        let pipeline = gst::parse::launch(&description)
            .map_err(|e| format!("cannot build the pipeline: {e}"))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| "the description is not a pipeline".to_string())?;
        let result = run_pipeline(&pipeline, &mut load);
        let _ = pipeline.set_state(gst::State::Null);
        result
    })?;
    Ok((stats, load))
}

fn run_pipeline(pipeline: &gst::Pipeline, load: &mut Duration) -> Result<Duration> {
    let stt = pipeline
        .by_name("stt")
        .ok_or("no quartznetstt in the pipeline")?;
    let sink = stt
        .static_pad("sink")
        .ok_or("quartznetstt has no sink pad")?;
    // Buffers only: caps and segment events must pass so the element is configured.
    let probe = sink
        .add_probe(
            gst::PadProbeType::BLOCK | gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
            |_, _| gst::PadProbeReturn::Ok,
        )
        .ok_or("cannot block the element's sink pad")?;
    let bus = pipeline.bus().ok_or("pipeline without a bus")?;
    let bus_error = |bus: &gst::Bus| -> Option<String> {
        bus.pop_filtered(&[gst::MessageType::Error])
            .map(|m| match m.view() {
                gst::MessageView::Error(e) => format!("{} ({:?})", e.error(), e.debug()),
                _ => unreachable!(),
            })
    };

    let start = Instant::now();
    let change = pipeline.set_state(gst::State::Paused);
    let (state_result, _, _) = pipeline.state(gst::ClockTime::NONE);
    if change.is_err() || state_result.is_err() {
        return Err(bus_error(&bus).unwrap_or_else(|| "the pipeline did not pause".into()));
    }
    *load = start.elapsed();

    let start = Instant::now();
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| bus_error(&bus).unwrap_or_else(|| "the pipeline did not play".into()))?;
    sink.remove_probe(probe);
    let message = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(600),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .ok_or("no EOS within 600 s")?;
    let elapsed = start.elapsed();
    match message.view() {
        gst::MessageView::Eos(_) => Ok(elapsed),
        gst::MessageView::Error(e) => Err(format!("{} ({:?})", e.error(), e.debug())),
        _ => unreachable!(),
    }
}

/// Character edit distance (insertions, deletions, substitutions all cost 1).
fn levenshtein(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

fn argmax(row: &[f32]) -> usize {
    // Ties to the lowest index, like the decoder, so a tie is not counted as a change.
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

struct SweepRow {
    normalization: &'static str,
    context_ms: f64,
    frames: (usize, usize),
    argmax_differs: f64,
    cer: f64,
    reference_chars: usize,
    streamed_chars: usize,
}

/// Streaming vs offline output for shrinking context, under both normalisations.
fn sweep_model(mut model: OnnxModel, samples: &[f32]) -> Result<Vec<SweepRow>> {
    let description: ModelDescription = model.description().clone();
    let vocab = model.vocab_size();
    let subsampling = description.subsampling_factor as usize;
    let decoder = decoder_config(&description, WORD_GAP_MS);
    let fixed_label = if matches!(
        description.frontend.normalization,
        Normalization::Fixed { .. }
    ) {
        "fixed (model's statistics)"
    } else {
        "fixed (NeMo demo statistics)"
    };
    let mut rows = Vec::new();
    for (label, choice) in [
        ("per-window", NormalizationChoice::PerWindow),
        (fixed_label, NormalizationChoice::Fixed),
    ] {
        let frontend: FrontendConfig = frontend_for(&description, choice, PaddingChoice::Auto);
        let offline =
            recognize_offline(&mut model, &description, frontend.clone(), decoder, samples)?;
        let reference = greedy_transcript(&offline.logprobs, vocab, &description.labels);
        let reference: Vec<char> = reference.chars().collect();
        let frame_samples = frontend.hop_length * subsampling;
        for &context in &SWEEP_CONTEXTS_MS {
            let (geometry, _) =
                WindowConfig::from_millis(context, CHUNK_MS, context, SAMPLE_RATE, frame_samples);
            let mut recognizer =
                StreamingRecognizer::new(model, &description, frontend.clone(), geometry, decoder)?;
            let streamed = run_stream(&mut recognizer, samples)?;
            model = recognizer.into_model();

            let frames = streamed.len() / vocab;
            let common = frames.min(offline.frames);
            let differing = (0..common)
                .filter(|&t| {
                    let row = |lp: &[f32]| argmax(&lp[t * vocab..(t + 1) * vocab]);
                    row(&streamed) != row(&offline.logprobs)
                })
                .count()
                + frames.abs_diff(offline.frames);
            let text: Vec<char> = greedy_transcript(&streamed, vocab, &description.labels)
                .chars()
                .collect();
            rows.push(SweepRow {
                normalization: label,
                context_ms: geometry.left as f64 * 1000.0 / f64::from(SAMPLE_RATE),
                frames: (frames, offline.frames),
                argmax_differs: differing as f64 / frames.max(offline.frames).max(1) as f64,
                cer: levenshtein(&text, &reference) as f64 / reference.len().max(1) as f64,
                reference_chars: reference.len(),
                streamed_chars: text.len(),
            });
        }
    }
    Ok(rows)
}

/// Jiffies from /proc: the whole machine's busy and total time, and this process's own.
/// Other engineers' builds share these cores, so the benchmark says how much of the machine
/// it did not have; a figure well above 0 means the timings are inflated and noisy.
#[derive(Clone, Copy)]
struct CpuSample {
    busy: u64,
    total: u64,
    own: u64,
}

fn cpu_sample() -> Option<CpuSample> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|v| v.parse().ok())
        .collect();
    if fields.len() < 8 {
        return None;
    }
    let total: u64 = fields.iter().sum();
    // idle + iowait
    let busy = total - fields[3] - fields[4];
    let own_stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name: state is the first, utime the 12th.
    let after = own_stat.rsplit_once(')')?.1;
    let own_fields: Vec<&str> = after.split_whitespace().collect();
    let own = own_fields.get(11)?.parse::<u64>().ok()? + own_fields.get(12)?.parse::<u64>().ok()?;
    Some(CpuSample { busy, total, own })
}

/// Share of all the machine's CPU time between two samples spent outside this process.
fn others_share(from: Option<CpuSample>, to: Option<CpuSample>) -> Option<f64> {
    let (a, b) = (from?, to?);
    let total = b.total.checked_sub(a.total).filter(|&t| t > 0)?;
    let others = (b.busy - a.busy).saturating_sub(b.own - a.own);
    Some(others as f64 / total as f64)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(String::from))
        .unwrap_or_else(|| "?".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("throughput: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let s = settings()?;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let library = gstquartznetstt::runtime::environment()
        .map(|_| {
            gstquartznetstt::runtime::loaded_library()
                .map_or_else(|| "?".into(), |p| p.display().to_string())
        })
        .unwrap_or_else(|e| format!("NOT LOADED: {e}"));
    println!("quartznetstt throughput benchmark");
    println!(
        "CPU: {} | cores: {cores} | load average (1 min): {} | ONNX Runtime: {library}",
        cpu_model(),
        load_average()
    );
    let threads = if s.threads == 0 {
        "0 (ONNX Runtime decides: one per physical core)".to_string()
    } else {
        s.threads.to_string()
    };
    println!(
        "ORT intra-op threads: {threads}; inter-op 1 | runs: 1 warm-up + median of {} \
         (fewer if N runs would exceed {:.0} s) | audio: {AUDIO_SECONDS} s at {SAMPLE_RATE} Hz",
        s.runs,
        s.budget.as_secs_f64()
    );
    println!(
        "streaming geometry: left {LEFT_MS} / chunk {CHUNK_MS} / right {RIGHT_MS} ms \
         (element defaults), word gap {WORD_GAP_MS} ms; RTF = processing time / {AUDIO_SECONDS} s"
    );
    let (pcm, samples) = build_audio()?;
    println!(
        "audio: tests/fixtures/audio/*.wav concatenated in name order, repeated, cut to {} samples",
        samples.len()
    );
    println!();

    let wav = if s.element {
        match gst::init()
            .map_err(|e| e.to_string())
            .and_then(|()| gstquartznetstt::plugin_register_static().map_err(|e| e.to_string()))
            .and_then(|()| write_wav(&pcm))
        {
            Ok(file) => Some(file),
            Err(e) => {
                println!("element pipeline skipped for all models: {e}");
                None
            }
        }
    } else {
        None
    };

    let mut report = Report {
        rows: Vec::new(),
        notes: Vec::new(),
    };
    let mut sweeps = Vec::new();
    for path in &s.models {
        let name = model_name(path);
        if !path.is_file() {
            report.notes.push(format!(
                "{name}: skipped, {} does not exist",
                path.display()
            ));
            continue;
        }
        eprintln!("[{name}] timing...");
        let started = Instant::now();
        let before = cpu_sample();
        match bench_model(
            path,
            &samples,
            wav.as_ref().map(|w| w.0.as_path()),
            &s,
            &mut report,
        ) {
            Ok(model) => {
                if let Some(share) = others_share(before, cpu_sample()) {
                    report.notes.push(format!(
                        "{name}: other processes used {:.0} % of the machine's CPU time while \
                         it was timed{}",
                        100.0 * share,
                        if share > 0.05 {
                            " -- timings inflated and noisy; min is the better estimate"
                        } else {
                            ""
                        }
                    ));
                }
                if s.sweep {
                    eprintln!("[{name}] context sweep...");
                    match sweep_model(model, &samples) {
                        Ok(rows) => sweeps.push((name.clone(), rows)),
                        Err(e) => report.notes.push(format!("{name}: sweep failed: {e}")),
                    }
                }
            }
            Err(e) => report.notes.push(format!("{name}: skipped: {e}")),
        }
        eprintln!("[{name}] done in {:.1} s", started.elapsed().as_secs_f64());
    }

    println!("== throughput ==");
    println!(
        "{:<16} {:<38} {:>4} {:>10} {:>19} {:>9} {:>8}",
        "model", "stage", "runs", "median s", "min..max s", "RTF", "x RT"
    );
    for row in &report.rows {
        let median = row.stats.median().as_secs_f64();
        let rtf = median / audio_seconds();
        let runs = match row.stats.reduced_from {
            Some(n) => format!("{}<{n}", row.stats.runs.len()),
            None => row.stats.runs.len().to_string(),
        };
        println!(
            "{:<16} {:<38} {:>4} {:>10.4} {:>19} {:>9.5} {:>8.1}",
            row.model,
            row.stage,
            runs,
            median,
            format!(
                "{:.4}..{:.4}",
                row.stats.min().as_secs_f64(),
                row.stats.max().as_secs_f64()
            ),
            rtf,
            1.0 / rtf.max(1e-12)
        );
    }
    println!("(runs \"a<b\": the budget cut b runs to a; x RT = audio seconds per second of work)");
    for note in &report.notes {
        println!("- {note}");
    }

    if s.sweep {
        println!();
        println!("== context sweep: streaming vs offline whole-utterance output ==");
        println!(
            "chunk {CHUNK_MS} ms, left = right context as listed; offline uses the same \
             normalisation over the whole {AUDIO_SECONDS} s."
        );
        println!(
            "NOTE: these models have RANDOM weights, so this measures how sensitive the \
             windowing machinery is, not recognition accuracy. With fixed statistics the \
             output can only match offline once the context covers the model's receptive field."
        );
        println!(
            "{:<16} {:<30} {:>7} {:>11} {:>14} {:>8} {:>11}",
            "model", "normalisation", "ctx ms", "frames s/o", "argmax diff %", "CER %", "chars s/o"
        );
        for (name, rows) in &sweeps {
            for r in rows {
                println!(
                    "{:<16} {:<30} {:>7.0} {:>11} {:>14.2} {:>8.2} {:>11}",
                    name,
                    r.normalization,
                    r.context_ms,
                    format!("{}/{}", r.frames.0, r.frames.1),
                    100.0 * r.argmax_differs,
                    100.0 * r.cer,
                    format!("{}/{}", r.streamed_chars, r.reference_chars)
                );
            }
        }
        println!(
            "(argmax diff: output frames whose most likely class differs from offline; CER: \
             character edit distance of the streaming greedy transcript to the offline one, \
             / offline length, so above 100 % when streaming emits more; s/o = streaming/offline; \
             ctx ms as run, after rounding to whole output frames)"
        );
    }
    Ok(())
}

// SPDX-License-Identifier: MPL-2.0
//! `quartznet-transcribe`: speech in any file, URI or standard input to text, JSON or
//! subtitles, through the `quartznetstt` element, so its results are the element's.
//!
//! - [`args`]: the options and what they map onto;
//! - [`pipeline`]: one input through `uridecodebin ! audioconvert ! audioresample !
//!   quartznetstt`, words read from the element's bus messages;
//! - [`output`]: lines, JSON, SRT and WebVTT from the timed words;
//! - [`parity`]: the NeMo-parity options, which run the engine directly;
//! - [`progress`]: the progress bar.

mod args;
mod output;
mod parity;
mod pipeline;
mod progress;
mod served;

use std::error::Error;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use gst::glib;
use gst::prelude::*;
use quartznet_engine::config::{ConfigWarning, RecognizerConfig, available_cores};
use quartznet_engine::model::{LoadOptions, ModelDescription, bundled};
use quartznet_engine::streaming::{StreamingModel, WindowConfig};

use args::{Args, Format, NAME, nick};
use output::Writer;
use progress::Progress;

fn main() -> ExitCode {
    let args = Args::parse();
    check_usage(&args);
    if let Err(e) = gst::init() {
        eprintln!("{NAME}: cannot initialise GStreamer: {e}");
        return ExitCode::FAILURE;
    }
    // The element is compiled in: no plugin path to set, and no other build of it is used.
    let _ = gstquartznetstt::plugin_register_static();
    let model_path = match &args.model {
        Some(path) => path.clone(),
        None => match bundled::find() {
            Ok(path) => path,
            Err(e) => {
                eprintln!("{NAME}: no --model given, and {e}");
                return ExitCode::from(2);
            }
        },
    };
    // A panic (a bug, or input no check foresaw) is reported like any error, naming the
    // model, rather than as a raw backtrace.
    match std::panic::catch_unwind(|| run(&args, &model_path)) {
        Ok(Ok(true)) => ExitCode::SUCCESS,
        Ok(Ok(false)) => ExitCode::FAILURE,
        Ok(Err(e)) => {
            eprintln!("{NAME}: {e}");
            ExitCode::FAILURE
        }
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            eprintln!(
                "{NAME}: internal error while recognising with {}: {message}",
                model_path.display()
            );
            ExitCode::FAILURE
        }
    }
}

/// Refuses option combinations that cannot work, as clap refuses malformed ones (exit 2).
fn check_usage(args: &Args) {
    let fail = |kind: ErrorKind, message: &str| Args::command().error(kind, message).exit();
    let several = args.inputs.len() > 1;
    if several && (args.dump_features.is_some() || args.dump_logprobs.is_some()) {
        fail(
            ErrorKind::ArgumentConflict,
            "--dump-features/--dump-logprobs take a single input",
        );
    }
    if several && args.output.is_some() {
        fail(
            ErrorKind::ArgumentConflict,
            "--output takes a single input (--output-dir writes one file per input)",
        );
    }
    let subtitles = matches!(args.format(), Format::Srt | Format::Vtt);
    if several && subtitles && args.output_dir.is_none() {
        fail(
            ErrorKind::ArgumentConflict,
            "subtitles of several inputs need --output-dir (one file each)",
        );
    }
    if args.output_dir.is_some() && args.inputs.iter().any(|i| i == "-") {
        fail(
            ErrorKind::ArgumentConflict,
            "standard input has no name to give its output in --output-dir (use --output)",
        );
    }
    if let Err(e) = parity::config(args).validate() {
        fail(ErrorKind::ValueValidation, &e.to_string());
    }
}

/// Recognises every input; Ok(false) when some failed (each was reported).
fn run(args: &Args, model_path: &Path) -> Result<bool, Box<dyn Error>> {
    let config = parity::config(args);
    // Loaded once here: a broken model fails before any input, and the element of every
    // input shares this model's sessions and language model instead of loading them again.
    let language_model = config.decoding.preload_language_model(model_path);
    let server = args.server.options()?;
    let load = || {
        let options = LoadOptions {
            threads: config.threads,
        };
        match &server {
            None => StreamingModel::load_on(model_path, &options, args.execution_provider.into()),
            // Connected here too, so a server that is not there fails before any input.
            Some(server) => StreamingModel::load_served(model_path, &options, server),
        }
    };
    let mut model = Some(load()?);
    // `--execution-provider auto` that fell back: said once, before the inputs.
    if let Some(reason) = model
        .as_ref()
        .and_then(|m| m.sessions())
        .and_then(|s| s.fallback())
    {
        eprintln!("{NAME}: warning: --execution-provider auto runs the model on the CPU: {reason}");
    }
    let description = model.as_ref().expect("just loaded").description().clone();
    let mut config = parity::config_for(args, &description.latency_shares);
    // Read here too, so a malformed list or one the model cannot use fails before any input.
    config.decoding.hotwords = args.hotword_list()?;
    let _language_model = language_model.map(|loading| loading.wait());
    let decoding = config.decoding.decoding_options(&description)?;
    if args.wants_parity() && !args.offline {
        let (window, rounded) = WindowConfig::for_model(&config, &description);
        if rounded {
            let ms = |samples: usize| samples as f64 * 1000.0 / f64::from(description.sample_rate);
            eprintln!(
                "{NAME}: note: window rounded to whole output frames: left context {} ms, chunk {} ms, right context {} ms",
                ms(window.left),
                ms(window.chunk),
                ms(window.right)
            );
        }
    }
    warn(args, &config, &description);
    let mut all_ok = true;
    for input in &args.inputs {
        let outcome = if args.wants_parity() {
            let mut progress = Progress::new(input, !args.quiet);
            parity::decode_audio(
                input,
                description.sample_rate,
                args.audio_stream,
                &mut progress,
            )
            .map_err(Into::into)
            .and_then(|samples| {
                // A failed input took the model with it: the next one loads it again.
                let loaded = match model.take() {
                    Some(loaded) => loaded,
                    None => load()?,
                };
                // The parity modes reproduce NeMo's buffered and offline inference, which a
                // cache-aware streaming model does not run.
                let StreamingModel::Buffered(loaded) = loaded else {
                    return Err(format!(
                        "{} is a cache-aware streaming model: the NeMo parity options \
                         (--offline, --nemo-frame-batch, --dump-features, --dump-logprobs) \
                         run buffered models only; leave them out",
                        model_path.display()
                    )
                    .into());
                };
                let (words, returned) =
                    parity::recognise(args, &config, &decoding, loaded, &samples)?;
                model = Some(StreamingModel::Buffered(returned));
                write_all(args, input, &words)
            })
        } else {
            transcribe(args, model_path, input)
        };
        if let Err(e) = outcome {
            eprintln!("{NAME}: {input}: {e}");
            all_ok = false;
        }
    }
    Ok(all_ok)
}

/// Says on standard error, once before the inputs, what in the settings works against
/// recognition without being an error (the engine's judgement, which the element posts as
/// warnings): of the settings the inputs will run with, the element's for files (input that
/// is not live) or the parity streaming's.
fn warn(args: &Args, config: &RecognizerConfig, description: &ModelDescription) {
    let running = if args.wants_parity() {
        config.clone()
    } else {
        RecognizerConfig {
            threads: config.threads,
            ..RecognizerConfig::for_input(
                &args.window_overrides(),
                &description.latency_shares,
                false,
            )
        }
    };
    let rounded = args.window_overrides().warnings(description);
    for warning in running
        .warnings(available_cores())
        .into_iter()
        .chain(rounded)
    {
        // One utterance has no windows.
        if args.offline
            && matches!(
                warning,
                ConfigWarning::WindowTooShort { .. } | ConfigWarning::WindowRounded { .. }
            )
        {
            continue;
        }
        eprintln!("{NAME}: warning: {warning}");
    }
}

/// Where an input's output goes.
fn destination(args: &Args, input: &str) -> io::Result<Box<dyn Write>> {
    let path = match (&args.output, &args.output_dir) {
        (Some(path), _) => Some(path.clone()),
        (None, Some(dir)) => {
            let stem = Path::new(input)
                .file_stem()
                .map_or_else(|| "output".into(), |s| s.to_os_string());
            Some(dir.join(PathBuf::from(stem).with_extension(args.format().extension())))
        }
        (None, None) => None,
    };
    Ok(match path {
        Some(path) => {
            Box::new(BufWriter::new(File::create(&path).map_err(|e| {
                io::Error::new(e.kind(), format!("{}: {e}", path.display()))
            })?))
        }
        None => Box::new(io::stdout().lock()),
    })
}

/// Lines on standard output name their input when there are several.
fn line_prefix(args: &Args, input: &str) -> Option<String> {
    let shared = args.output.is_none() && args.output_dir.is_none();
    (shared && args.inputs.len() > 1 && args.format() == Format::Txt).then(|| format!("{input}: "))
}

fn write_all(args: &Args, input: &str, words: &[output::TimedWord]) -> Result<(), Box<dyn Error>> {
    let mut out = destination(args, input)?;
    let mut writer = Writer::new(&mut out, args.format(), input, line_prefix(args, input))?;
    writer.push(&mut out, words)?;
    writer.finish(&mut out)?;
    Ok(())
}

/// One input through the element, its words written as they are recognised.
fn transcribe(args: &Args, model_path: &Path, input: &str) -> Result<(), Box<dyn Error>> {
    let uri = pipeline::uri_of(input)?;
    let pipe = gst::Pipeline::new();
    let stt = element(args, model_path)?;
    let sink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .build()?;
    pipe.add_many([&stt, &sink])?;
    stt.link(&sink)?;
    let decoding = pipeline::decoder(&pipe, &uri, args.audio_stream, &stt)?;
    let mut out = destination(args, input)?;
    let mut writer = Writer::new(&mut out, args.format(), input, line_prefix(args, input))?;
    let mut progress = Progress::new(input, !args.quiet);
    let mut failure: Option<io::Error> = None;
    let result = pipeline::run(&pipe, &decoding, input, &mut progress, |s| {
        let words = pipeline::final_words(s);
        if words.is_empty() {
            return Ok(());
        }
        writer.push(&mut out, &words).map_err(|e| {
            let text = e.to_string();
            failure = Some(e);
            text
        })
    });
    if let Some(e) = failure {
        return Err(e.into());
    }
    result?;
    writer.finish(&mut out)?;
    Ok(())
}

/// The element, configured from the options.
fn element(args: &Args, model_path: &Path) -> Result<gst::Element, Box<dyn Error>> {
    let stt: gst::Element = glib::Object::builder::<gstquartznetstt::QuartzNetStt>()
        .build()
        .upcast();
    stt.set_property("model-path", model_path.to_string_lossy().as_ref());
    stt.set_property("threads", u32::try_from(args.threads)?);
    stt.set_property_from_str("execution-provider", &nick(&args.execution_provider));
    args.server.configure(&stt);
    if let Some(latency) = args.latency_ms {
        stt.set_property("latency", latency);
    }
    for (name, value) in [
        ("left-context-ms", args.left_context_ms),
        ("chunk-ms", args.chunk_ms),
        ("right-context-ms", args.right_context_ms),
        ("word-gap-ms", args.word_gap_ms),
    ] {
        if let Some(ms) = value {
            stt.set_property(name, ms);
        }
    }
    stt.set_property_from_str("decoder", &nick(&args.decoder));
    if let Some(lm) = &args.lm {
        stt.set_property("lm-path", lm.to_string_lossy().as_ref());
    }
    if let Some(words) = &args.vocabulary {
        stt.set_property("vocabulary-path", words.to_string_lossy().as_ref());
    }
    if let Some(list) = &args.hotwords {
        stt.set_property("hotwords-path", list.to_string_lossy().as_ref());
    }
    if !args.hotword.is_empty() {
        stt.set_property("hotwords", args.hotword.join("\n"));
    }
    // Unset: the element takes the model's tuned values.
    if let Some(width) = args.beam_width {
        stt.set_property("beam-width", width);
    }
    if let Some(weight) = args.lm_weight {
        stt.set_property("lm-weight", weight);
    }
    if let Some(bonus) = args.word_bonus {
        stt.set_property("word-bonus", bonus);
    }
    stt.set_property("unk-penalty", args.unk_penalty);
    stt.set_property_from_str("normalization", &nick(&args.normalization));
    stt.set_property_from_str("padding", &nick(&args.padding));
    let confidence = args.confidences()[0];
    stt.set_property_from_str("confidence-method", confidence.measure.name());
    stt.set_property("confidence-alpha", confidence.measure.alpha());
    stt.set_property_from_str("confidence-aggregation", confidence.aggregation.name());
    Ok(stt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quartznet_engine::config::{DecoderKind, LatencyPlan};
    use quartznet_engine::decode::{ConfidenceAggregation, ConfidenceConfig, ConfidenceMeasure};

    #[test]
    fn command_is_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn defaults_are_the_engine_defaults() {
        let args = Args::try_parse_from([NAME, "a.wav"]).unwrap();
        assert_eq!(parity::config(&args), RecognizerConfig::default());
        assert!(!args.wants_parity());
    }

    #[test]
    fn options_that_need_the_engine() {
        for extra in [
            &["--offline"][..],
            &["--nemo-frame-batch"],
            &["--dump-features", "f.npy"],
            &["--confidence", "max-prob,gibbs-exp"],
        ] {
            let args = Args::try_parse_from([&[NAME], extra, &["a.wav"]].concat()).unwrap();
            assert!(args.wants_parity(), "{extra:?}");
        }
        let live = Args::try_parse_from([NAME, "--latency-ms", "2000", "a.wav"]).unwrap();
        assert!(!live.wants_parity());
    }

    #[test]
    fn confidence_choices() {
        let args = Args::try_parse_from([
            NAME,
            "--confidence",
            "max-prob:1,tsallis-exp",
            "--confidence-aggregation",
            "min,mean",
            "a.wav",
        ])
        .unwrap();
        let all = args.confidences();
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].measure, ConfidenceMeasure::MaxProb { alpha: 1.0 });
        assert_eq!(all[0].aggregation, ConfidenceAggregation::Min);
        assert_eq!(all[3].measure, ConfidenceMeasure::NEMO_DEFAULT);
        let default = Args::try_parse_from([NAME, "a.wav"]).unwrap();
        assert_eq!(default.confidences(), [ConfidenceConfig::DEFAULT]);
        for bad in ["entropy", "max-prob:0", "gibbs-lin:nan"] {
            let parsed = Args::try_parse_from([NAME, "--confidence", bad, "a.wav"]);
            assert_eq!(
                parsed.unwrap_err().kind(),
                ErrorKind::ValueValidation,
                "{bad}"
            );
        }
    }

    #[test]
    fn choices_map_onto_the_engine() {
        let args = Args::try_parse_from([
            NAME,
            "--decoder",
            "beam",
            "--word-bonus",
            "-2.5",
            "--unk-penalty",
            "7",
            "a.wav",
        ])
        .unwrap();
        let config = parity::config(&args);
        assert_eq!(config.decoding.decoder, Some(DecoderKind::Beam));
        assert_eq!(config.decoding.word_bonus, Some(-2.5));
        assert_eq!(config.decoding.unk_penalty, 7.0);
        assert_eq!(nick(&args.decoder), "beam");
        assert_eq!(nick(&args.normalization), "auto");
    }

    #[test]
    fn window_options_are_the_engine_overrides() {
        let args = Args::try_parse_from([
            NAME,
            "--latency-ms",
            "2000",
            "--chunk-ms",
            "320",
            "--word-gap-ms",
            "0",
            "a.wav",
        ])
        .unwrap();
        let overrides = args.window_overrides();
        assert_eq!(
            (
                overrides.latency_ms,
                overrides.chunk_ms,
                overrides.word_gap_ms
            ),
            (Some(2000), Some(320), Some(0))
        );
        assert_eq!(overrides.left_context_ms, None);
        let config = parity::config(&args);
        let plan = LatencyPlan::for_latency(2000);
        assert_eq!(
            (
                config.chunk_ms,
                config.left_context_ms,
                config.decoding.word_gap_ms
            ),
            (320, plan.left_context_ms, 0)
        );
        assert_eq!(config.decoding.commit_delay_ms, plan.commit_delay_ms);
        assert_eq!(args.audio_stream, 0);
    }

    #[test]
    fn weights_must_be_finite() {
        for value in ["nan", "inf", "1e39", "x"] {
            let parsed = Args::try_parse_from([NAME, "--lm-weight", value, "a.wav"]);
            assert_eq!(
                parsed.unwrap_err().kind(),
                ErrorKind::ValueValidation,
                "{value}"
            );
        }
    }
}

// SPDX-License-Identifier: MPL-2.0
//! Runs the built `quartznet-transcribe` as a user would: argument handling, output formats
//! and the `.npy` dumps. The tiny fixture model has random weights, so transcripts are
//! checked for shape, never for their text.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_quartznet-transcribe");
const AUDIO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/audio/short_yes.wav"
);
const MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/models/quartznet-tiny.onnx"
);

fn transcribe(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run quartznet-transcribe")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The shape and element count of a `.npy` file, checking it is what the client promises:
/// C-ordered little-endian float32.
fn npy_shape(path: &Path) -> (Vec<u64>, usize) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).expect("a valid .npy header");
    assert_eq!(npy.order(), npyz::Order::C);
    assert_eq!(npy.dtype(), npyz::DType::new_scalar("<f4".parse().unwrap()));
    let shape = npy.shape().to_vec();
    let data = npy.into_vec::<f32>().expect("float32 data");
    assert!(data.iter().all(|x| x.is_finite()), "{}", path.display());
    (shape, data.len())
}

#[test]
fn help_lists_the_options() {
    let output = transcribe(&["--help"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let help = String::from_utf8_lossy(&output.stdout);
    for option in ["--decoder", "--model", "--dump-logprobs", "beam"] {
        assert!(help.contains(option), "{option} missing from:\n{help}");
    }
}

#[test]
fn an_unknown_decoder_is_a_usage_error() {
    let output = transcribe(&["--model", MODEL, "--decoder", "foo", AUDIO]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("foo"), "{}", stderr(&output));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["--model", MODEL],
        vec!["--model", MODEL, "--lm-weight", "nan", AUDIO],
        vec!["--model", MODEL, "--word-bonus", "inf", AUDIO],
        vec!["--model", MODEL, "--beam-width", "0", AUDIO],
        vec!["--model", MODEL, "--no-such-option", AUDIO],
    ] {
        let output = transcribe(&args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn dumps_take_a_single_file() {
    let dir = tempfile::tempdir().unwrap();
    let features = dir.path().join("f.npy");
    let output = transcribe(&[
        "--model",
        MODEL,
        "--dump-features",
        features.to_str().unwrap(),
        AUDIO,
        AUDIO,
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("single WAV file"),
        "{}",
        stderr(&output)
    );
    assert!(!features.exists());
}

#[test]
fn transcribes_a_file() {
    let output = transcribe(&["--model", MODEL, AUDIO]);
    assert!(output.status.success(), "{}", stderr(&output));
    // One line per file, without the file name when there is only one.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(!stdout.contains("short_yes"), "{stdout}");
}

#[test]
fn several_files_are_named() {
    let output = transcribe(&["--model", MODEL, AUDIO, AUDIO]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    // The same audio through the reused model gives the same transcript.
    assert_eq!(lines[0], lines[1]);
    assert!(lines[0].starts_with(&format!("{AUDIO}: ")), "{stdout}");
}

#[test]
fn json_has_timed_words() {
    for mode in [&[][..], &["--offline"][..]] {
        let mut args = vec!["--model", MODEL, "--json"];
        args.extend_from_slice(mode);
        args.push(AUDIO);
        let output = transcribe(&args);
        assert!(output.status.success(), "{mode:?}: {}", stderr(&output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        let line: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON");
        assert_eq!(line["file"], AUDIO);
        let text = line["text"].as_str().expect("text");
        let words = line["words"].as_array().expect("a words array");
        let joined: Vec<&str> = words.iter().map(|w| w["word"].as_str().unwrap()).collect();
        assert_eq!(joined.join(" "), text);
        for word in words {
            let (start, end) = (
                word["start"].as_f64().unwrap(),
                word["end"].as_f64().unwrap(),
            );
            assert!(0.0 <= start && start <= end, "{word}");
            let confidence = word["confidence"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&confidence), "{word}");
            // Streaming says when the word came out: never before its end (the last output
            // frame is centred on the last sample, so a word may end up to a 20 ms frame past
            // it), and offline (one utterance, nothing streamed) it says nothing.
            match word.get("emitted").and_then(|e| e.as_f64()) {
                Some(emitted) => assert!(mode.is_empty() && emitted >= end - 0.02, "{word}"),
                None => assert!(!mode.is_empty(), "{mode:?}: {word}"),
            }
        }
    }
}

#[test]
fn dumps_have_nemo_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let features: PathBuf = dir.path().join("features.npy");
    let logprobs: PathBuf = dir.path().join("logprobs.npy");
    let output = transcribe(&[
        "--model",
        MODEL,
        "--offline",
        "--dump-features",
        features.to_str().unwrap(),
        "--dump-logprobs",
        logprobs.to_str().unwrap(),
        AUDIO,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));

    let (shape, len) = npy_shape(&features);
    assert_eq!(&shape[..2], &[1, 64], "{shape:?}");
    let frames = shape[2];
    assert!(frames > 0);
    assert_eq!(len as u64, 64 * frames);

    let (shape, len) = npy_shape(&logprobs);
    assert_eq!(shape[0], 1, "{shape:?}");
    assert_eq!(shape[2], 29, "{shape:?}");
    // The first convolution has stride 2, "same" padding.
    assert_eq!(shape[1], frames.div_ceil(2), "{shape:?}");
    assert_eq!(len as u64, shape[1] * 29);
}

/// The streaming dump holds what NeMo's buffered inference keeps: the first buffer's frames
/// before the stream start (the right context, 30 at the default windows), every frame of
/// the audio, and at most a chunk and a right context of its silence padding.
#[test]
fn streaming_dumps_cover_every_frame() {
    let dir = tempfile::tempdir().unwrap();
    let offline = dir.path().join("offline.npy");
    let streaming = dir.path().join("streaming.npy");
    for (path, mode) in [(&offline, Some("--offline")), (&streaming, None)] {
        let mut args = vec!["--model", MODEL, "--dump-logprobs", path.to_str().unwrap()];
        args.extend(mode);
        args.push(AUDIO);
        let output = transcribe(&args);
        assert!(output.status.success(), "{mode:?}: {}", stderr(&output));
    }
    let (offline, streaming) = (npy_shape(&offline).0, npy_shape(&streaming).0);
    assert_eq!((offline[0], offline[2]), (streaming[0], streaming[2]));
    let (lead, chunk) = (30, 50);
    assert!(
        streaming[1] >= offline[1] + lead && streaming[1] <= offline[1] + lead + chunk + lead,
        "{offline:?} {streaming:?}"
    );
}

#[test]
fn a_missing_file_is_a_runtime_failure() {
    let output = transcribe(&["--model", MODEL, "/nonexistent/audio.wav"]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.starts_with("quartznet-transcribe: /nonexistent/audio.wav"),
        "{message}"
    );
}

#[test]
fn a_missing_default_model_is_named() {
    let output = Command::new(BIN)
        .arg(AUDIO)
        .env("QUARTZNETSTT_MODEL", "/nonexistent/model.onnx")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no --model given"),
        "{}",
        stderr(&output)
    );
}

/// Loading and running a model writes nothing under `$HOME` (ONNX Runtime's Linux builds
/// otherwise store a telemetry device id and event database in ~/.cache).
#[test]
fn running_a_model_writes_nothing_in_home() {
    let home = tempfile::tempdir().unwrap();
    let runtime = quartznet_engine::model::runtime::find_library().expect("ONNX Runtime installed");
    let output = Command::new(BIN)
        .args(["--model", MODEL, AUDIO])
        .env("HOME", home.path())
        .env_remove("XDG_CACHE_HOME")
        .env_remove("XDG_DATA_HOME")
        .env_remove("ORT_DISABLE_TELEMETRY")
        .env("QUARTZNETSTT_ONNXRUNTIME", &runtime)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let written: Vec<PathBuf> = walk(home.path());
    assert!(written.is_empty(), "written under $HOME: {written:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flat_map(|entry| {
            let path = entry.unwrap().path();
            if path.is_dir() {
                let mut inner = walk(&path);
                inner.push(path);
                inner
            } else {
                vec![path]
            }
        })
        .collect()
}

// SPDX-License-Identifier: MPL-2.0
//! Runs the built `quartznet-transcribe` as a user would: argument handling, inputs of every
//! kind, output formats and the `.npy` dumps. The tiny fixture model has random weights, so
//! its transcripts are checked for shape, never for their text; the bundled English model
//! checks that media of every kind give the words of the WAV.

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
        vec!["--model", MODEL, "--unk-penalty", "101", AUDIO],
        vec!["--model", MODEL, "--beam-width", "0", AUDIO],
        vec!["--model", MODEL, "--no-such-option", AUDIO],
        vec!["--model", MODEL, "--chunk-ms", "0", AUDIO],
        vec!["--model", MODEL, "--format", "srt", AUDIO, AUDIO],
        vec!["--model", MODEL, "-o", "/tmp/x.txt", AUDIO, AUDIO],
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
        stderr(&output).contains("single input"),
        "{}",
        stderr(&output)
    );
    assert!(!features.exists());
}

#[test]
fn transcribes_a_file() {
    let output = transcribe(&["--model", MODEL, AUDIO]);
    assert!(output.status.success(), "{}", stderr(&output));
    // Lines of text, without the file name when there is only one.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("short_yes"), "{stdout}");
    assert!(stdout.lines().all(|l| !l.trim().is_empty()), "{stdout:?}");
}

/// A cache-aware streaming model (its description has a `streaming` section) runs through
/// the element like any other; the parity options, which reproduce NeMo's buffered and
/// offline inference, refuse it with a clear error.
#[test]
fn transcribes_with_a_cache_aware_model() {
    let model = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/cache-aware/ctc/model.onnx"
    );
    let audio = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/audio/LJ001-0001.wav"
    );
    let output = transcribe(&["--model", model, audio]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.trim().is_empty(), "no text");
    let output = transcribe(&["--model", model, "--offline", audio]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("cache-aware streaming model: the NeMo parity options"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn several_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.wav");
    std::fs::copy(AUDIO, &copy).unwrap();
    let copy = copy.to_str().unwrap();
    let output = transcribe(&["--model", MODEL, AUDIO, copy]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let of = |name: &str| -> Vec<String> {
        let prefix = format!("{name}: ");
        stdout
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix).map(String::from))
            .collect()
    };
    // Every line names its input, and the same audio gives the same text.
    assert_eq!(of(AUDIO).len() + of(copy).len(), stdout.lines().count());
    assert_eq!(of(AUDIO), of(copy), "{stdout}");
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
        // The message's `text`: every word after its separator.
        let joined: String = words
            .iter()
            .map(|w| {
                format!(
                    "{}{}",
                    w["separator"].as_str().unwrap(),
                    w["text"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(joined, text);
        for word in words {
            let (start, end) = (
                word["start"].as_f64().unwrap(),
                word["end"].as_f64().unwrap(),
            );
            assert!(0.0 <= start && start <= end, "{word}");
            // Milliseconds, as the bus message.
            for t in [start, end] {
                assert_eq!((t * 1000.0).round() / 1000.0, t, "{word}");
            }
            let confidence = word["confidence"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&confidence), "{word}");
            // Only the engine's streaming (NeMo parity) says when a word came out.
            assert!(word.get("emitted").is_none(), "{mode:?}: {word}");
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
    // GStreamer's registry cache is what every GStreamer application keeps there.
    let registry = home.path().join(".cache/gstreamer-1.0");
    let written: Vec<PathBuf> = walk(home.path())
        .into_iter()
        .filter(|p| !p.starts_with(&registry) && *p != home.path().join(".cache"))
        .collect();
    assert!(written.is_empty(), "written under $HOME: {written:?}");
}

/// With a language model, the one thing written under `$HOME` is the LM's compiled copy in
/// `~/.cache/quartznetstt/lm` (README *Security and limits*), once: the next run reads it.
#[test]
fn a_language_model_writes_only_its_compiled_copy() {
    let home = tempfile::tempdir().unwrap();
    let runtime = quartznet_engine::model::runtime::find_library().expect("ONNX Runtime installed");
    let run = || {
        let output = Command::new(BIN)
            .args(["--model", ENGLISH, "--decoder", "beam", AUDIO])
            .env("HOME", home.path())
            .env_remove("XDG_CACHE_HOME")
            .env_remove(quartznet_engine::lm::CACHE_VARIABLE)
            .env("QUARTZNETSTT_ONNXRUNTIME", &runtime)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        let registry = home.path().join(".cache/gstreamer-1.0");
        let mut files: Vec<PathBuf> = walk(home.path())
            .into_iter()
            .filter(|p| p.is_file() && !p.starts_with(&registry))
            .collect();
        files.sort();
        files
    };
    let first = run();
    let cache = home.path().join(".cache/quartznetstt/lm");
    assert!(
        first.len() == 1
            && first[0].starts_with(&cache)
            && first[0].extension().is_some_and(|e| e == "qlm"),
        "written under $HOME: {first:?}"
    );
    let modified = std::fs::metadata(&first[0]).unwrap().modified().unwrap();
    assert_eq!(run(), first);
    assert_eq!(
        std::fs::metadata(&first[0]).unwrap().modified().unwrap(),
        modified,
        "the second run reads the copy, it does not write it again"
    );
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

/// The bundled English model and sample: real words to compare.
const ENGLISH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/quartznet-en.onnx");
const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/LJ001-0001.wav");

/// Encodes the sample with a gst-launch pipeline tail (after `wavparse ! audioconvert !
/// audioresample`), e.g. `flacenc`.
fn encode(dir: &Path, name: &str, tail: &str) -> PathBuf {
    let out = dir.join(name);
    let line = format!(
        "filesrc location={SAMPLE} ! wavparse ! audioconvert ! audioresample ! {tail} ! filesink location={}",
        out.display()
    );
    let status = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(line.split_whitespace())
        .status()
        .expect("run gst-launch-1.0");
    assert!(status.success(), "{line}");
    out
}

/// The words of each JSON line of `--format json` output.
fn json_words(stdout: &[u8]) -> Vec<Vec<String>> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON");
            value["words"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["text"].as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

/// Word-level edit distance.
fn word_errors(reference: &[String], hypothesis: &[String]) -> usize {
    let mut row: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut previous = row.clone();
        previous[0] = i;
        row[0] = i + 1;
        for (j, h) in hypothesis.iter().enumerate() {
            row[j + 1] = (previous[j + 1] + 1)
                .min(row[j] + 1)
                .min(previous[j] + usize::from(r != h));
        }
    }
    row[hypothesis.len()]
}

/// Media of every kind give the words of the 16 kHz WAV, up to what their encoding changes.
/// Measured with the bundled model on this 26-word sample (word errors against the WAV's
/// words): FLAC 0, Ogg/Opus 0, 48 kHz stereo WAV 2, MP3 10-15 (LAME's 1105-sample encoder
/// delay, which GStreamer's mpg123 decoder keeps, shifts the audio 69 ms; shifting the WAV
/// by 10 ms alone changes 12 words of this undertrained model), 8 kHz WAV 12 (telephone
/// band: nothing above 4 kHz). The bounds leave room for other encoder versions.
#[test]
fn media_of_every_kind_give_the_words_of_the_wav() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = [
        (encode(dir.path(), "a.flac", "flacenc"), 0),
        (
            encode(dir.path(), "a.opus", "opusenc bitrate=64000 ! oggmux"),
            3,
        ),
        (
            encode(
                dir.path(),
                "a48.wav",
                "audio/x-raw,rate=48000,channels=2 ! wavenc",
            ),
            4,
        ),
        (encode(dir.path(), "a.mp3", "lamemp3enc ! id3v2mux"), 18),
        (
            encode(dir.path(), "a8k.wav", "audio/x-raw,rate=8000 ! wavenc"),
            18,
        ),
    ];
    let mut args = vec!["--model", ENGLISH, "--format", "json", SAMPLE];
    args.extend(inputs.iter().map(|(p, _)| p.to_str().unwrap()));
    let output = transcribe(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    let words = json_words(&output.stdout);
    assert_eq!(words.len(), 1 + inputs.len());
    let reference = &words[0];
    assert!(reference.len() >= 20, "{reference:?}");
    for ((path, bound), hypothesis) in inputs.iter().zip(&words[1..]) {
        let errors = word_errors(reference, hypothesis);
        eprintln!("{}: {errors} word errors against the WAV", path.display());
        assert!(
            errors <= *bound,
            "{}: {errors} > {bound}: {hypothesis:?} vs {reference:?}",
            path.display()
        );
    }
}

/// Standard input, a URI and a video file's sound track all work; a file without audio is
/// an error for that file only.
#[test]
fn stdin_uris_and_video_files() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: Option<&Path>| {
        let mut command = Command::new(BIN);
        command
            .args(["--model", ENGLISH, "--format", "json"])
            .args(args);
        if let Some(path) = stdin {
            command.stdin(std::fs::File::open(path).unwrap());
        }
        command.output().unwrap()
    };
    let reference = json_words(&run(&[SAMPLE], None).stdout);
    let flac = encode(dir.path(), "a.flac", "flacenc");
    let piped = run(&["-"], Some(&flac));
    assert!(piped.status.success(), "{}", stderr(&piped));
    assert_eq!(json_words(&piped.stdout), reference);
    let uri = format!("file://{SAMPLE}");
    assert_eq!(json_words(&run(&[&uri], None).stdout), reference);

    let video = dir.path().join("video.ogg");
    let line = format!(
        "videotestsrc num-buffers=50 ! theoraenc ! oggmux name=mux ! filesink location={} \
         filesrc location={SAMPLE} ! wavparse ! audioconvert ! vorbisenc ! mux.",
        video.display()
    );
    let status = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(line.split_whitespace())
        .status()
        .unwrap();
    assert!(status.success(), "{line}");
    let video_only = dir.path().join("video-only.ogg");
    let status = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(
            format!(
                "videotestsrc num-buffers=10 ! theoraenc ! oggmux ! filesink location={}",
                video_only.display()
            )
            .split_whitespace(),
        )
        .status()
        .unwrap();
    assert!(status.success());
    let output = run(
        &[video_only.to_str().unwrap(), video.to_str().unwrap()],
        None,
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("no audio stream"),
        "{}",
        stderr(&output)
    );
    let words = json_words(&output.stdout);
    assert_eq!(words.len(), 1, "the video with sound still transcribed");
    // Vorbis is lossy: the words are close to the WAV's, not equal.
    assert!(word_errors(&reference[0], &words[0]) <= 6, "{words:?}");
}

#[test]
fn the_version_is_printed() {
    let output = transcribe(&["--version"]);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.trim(),
        format!("quartznet-transcribe {}", env!("CARGO_PKG_VERSION"))
    );
}

/// The Python packages that parse subtitles (pysrt, webvtt-py), as `tools/setup.sh`
/// installs them.
fn subtitle_python() -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME");
    let python = PathBuf::from(home).join(".cache/quartznetstt/subtitle-venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run tools/setup.sh (it installs pysrt and webvtt-py there)",
        python.display()
    );
    python
}

/// SRT and WebVTT output read back by independent parsers (pysrt, webvtt-py): the same
/// words as the JSON, in cues of at most two lines of 42 characters and 7 s.
#[test]
fn subtitles_parse_with_independent_parsers() {
    let python = subtitle_python();
    let dir = tempfile::tempdir().unwrap();
    let json = transcribe(&["--model", ENGLISH, "--format", "json", SAMPLE]);
    let words = json_words(&json.stdout).remove(0);
    for format in ["srt", "vtt"] {
        let path = dir.path().join(format!("out.{format}"));
        let output = transcribe(&[
            "--model",
            ENGLISH,
            "--format",
            format,
            "-o",
            path.to_str().unwrap(),
            SAMPLE,
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        let script = r#"
import json, sys
path = sys.argv[1]
if path.endswith(".srt"):
    import pysrt
    subs = pysrt.open(path, error_handling=pysrt.ERROR_RAISE)
    cues = [(s.start.ordinal / 1000, s.end.ordinal / 1000, s.text) for s in subs]
else:
    import webvtt
    cues = [(c.start_in_seconds, c.end_in_seconds, c.text) for c in webvtt.read(path)]
print(json.dumps(cues))
"#;
        let parsed = Command::new(&python)
            .args(["-c", script, path.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(parsed.status.success(), "{format}: {}", stderr(&parsed));
        let cues: Vec<(f64, f64, String)> = serde_json::from_slice(&parsed.stdout).unwrap();
        assert!(cues.len() >= 2, "{format}: {cues:?}");
        let mut cue_words = Vec::new();
        let mut previous_end = 0.0;
        for (start, end, text) in &cues {
            assert!(previous_end <= *start && start < end, "{format}: {cues:?}");
            assert!(end - start <= 7.0, "{format}: {cues:?}");
            let lines: Vec<&str> = text.lines().collect();
            assert!(lines.len() <= 2, "{format}: {text:?}");
            assert!(lines.iter().all(|l| l.chars().count() <= 42), "{text:?}");
            cue_words.extend(text.split_whitespace().map(String::from));
            previous_end = *end;
        }
        assert_eq!(cue_words, words, "{format}");
    }
}

/// An input that fails does not stop the others; the exit status says one failed.
#[test]
fn a_failing_input_does_not_stop_the_others() {
    let output = transcribe(&["--model", MODEL, "/nonexistent/a.wav", AUDIO]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("/nonexistent/a.wav: No such file"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.lines().all(|l| l.starts_with(&format!("{AUDIO}: "))),
        "{stdout}"
    );
}

/// The bundled default model (hama's phonemes + lexicon) and a real clip whose words include
/// one outside its lexicon ("gutenberg"): LJSpeech 1.1, public domain (eval/real-dev).
const DEFAULT_MODEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/hama-en.onnx");
const GUTENBERG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../eval/real-dev/LJ001-0007.wav"
);

/// A user vocabulary adds words to the lexicon at load time, spelled by the model's G2P:
/// without it the lexicon search cannot write "gutenberg", with it the word comes out. The
/// spellings are cached under the cache folder once, and a second run reads them.
#[test]
fn a_vocabulary_adds_words_the_lexicon_lacks() {
    let cache = tempfile::tempdir().unwrap();
    let words = cache.path().join("words.txt");
    std::fs::write(&words, "# names of the show\ngutenberg\n\ntypography\n").unwrap();
    let run = |extra: &[&str]| {
        let output = Command::new(BIN)
            .args(["--model", DEFAULT_MODEL])
            .args(extra)
            .arg(GUTENBERG)
            .env("QUARTZNETSTT_G2P_CACHE", cache.path().join("g2p"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let without = run(&[]);
    assert!(!without.contains("gutenberg"), "{without}");
    let with = run(&["--vocabulary", words.to_str().unwrap()]);
    assert!(with.contains("gutenberg"), "{with}");
    let cached: Vec<PathBuf> = walk(&cache.path().join("g2p"));
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert_eq!(run(&["--vocabulary", words.to_str().unwrap()]), with);
}

/// Vocabulary mistakes are clear errors naming the file (and the line), never ignored: a
/// phrase instead of a word, a missing file, and a character model, which has no lexicon.
#[test]
fn vocabulary_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let phrase = dir.path().join("phrase.txt");
    std::fs::write(&phrase, "gutenberg\nnew york\n").unwrap();
    let missing = dir.path().join("missing.txt");
    for (model, file, expected) in [
        (DEFAULT_MODEL, &phrase, "line 2"),
        (DEFAULT_MODEL, &missing, "missing.txt"),
        (ENGLISH, &phrase, "no lexicon"),
    ] {
        let output = Command::new(BIN)
            .args([
                "--model",
                model,
                "--vocabulary",
                file.to_str().unwrap(),
                AUDIO,
            ])
            .env("QUARTZNETSTT_G2P_CACHE", "off")
            .output()
            .unwrap();
        let text = stderr(&output);
        assert!(!output.status.success(), "{model}: {text}");
        assert!(
            text.contains(expected) && text.contains(file.file_name().unwrap().to_str().unwrap()),
            "{model}: {text}"
        );
    }
}

/// Hotwords (`--hotwords FILE`, `--hotword PHRASE`) favour phrases: the default model writes
/// "Gutenberg", which its lexicon lacks, once a list names it (its G2P spells it), from the
/// file or the option alike; a sub-word model (no language model: the open-vocabulary beam
/// search instead of greedy decoding) takes a list too.
#[test]
fn hotwords_favour_phrases() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("names.txt");
    std::fs::write(
        &list,
        "# names of the show
Gutenberg
",
    )
    .unwrap();
    let run = |model: &str, extra: &[&str], input: &str| {
        let output = Command::new(BIN)
            .args(["--model", model])
            .args(extra)
            .arg(input)
            .env("QUARTZNETSTT_G2P_CACHE", dir.path().join("g2p"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{extra:?}: {}", stderr(&output));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let without = run(DEFAULT_MODEL, &[], GUTENBERG);
    assert!(!without.to_lowercase().contains("gutenberg"), "{without}");
    let with = run(
        DEFAULT_MODEL,
        &["--hotwords", list.to_str().unwrap()],
        GUTENBERG,
    );
    assert!(with.contains("Gutenberg"), "{with}");
    assert_eq!(
        run(DEFAULT_MODEL, &["--hotword", "Gutenberg"], GUTENBERG),
        with
    );
    // Random weights: its text is gibberish either way, but it runs with a list.
    let subword = run(
        &subword_model("fastconformer"),
        &["--hotword", "zyx :50"],
        &fixture_audio("espeak_fox"),
    );
    assert!(!subword.trim().is_empty(), "no text");
}

/// Hotword mistakes fail before any input, naming the file and line: a malformed boost, a
/// missing file, and a list with greedy decoding, which cannot favour phrases.
#[test]
fn hotword_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.txt");
    std::fs::write(
        &bad,
        "Gutenberg
Kubernetes :lots
",
    )
    .unwrap();
    let missing = dir.path().join("missing.txt");
    for (extra, expected) in [
        (vec!["--hotwords", bad.to_str().unwrap()], "line 2"),
        (vec!["--hotwords", missing.to_str().unwrap()], "missing.txt"),
        (vec!["--hotword", "a :0"], "--hotword"),
        (
            vec!["--hotword", "zyx", "--decoder", "greedy"],
            "beam search",
        ),
    ] {
        let mut args = vec!["--model", ENGLISH];
        args.extend(&extra);
        args.push(AUDIO);
        let output = transcribe(&args);
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{extra:?}: {text}");
        assert!(text.contains(expected), "{extra:?}: {text}");
        assert!(output.stdout.is_empty(), "{extra:?}");
    }
    let file_error = stderr(&transcribe(&[
        "--model",
        ENGLISH,
        "--hotwords",
        bad.to_str().unwrap(),
        AUDIO,
    ]));
    assert!(file_error.contains("bad.txt"), "{file_error}");
}

/// Greedy decoding cannot make words of phonemes: asking for it with the default model is an
/// error that says what to use instead.
#[test]
fn greedy_decoding_of_phonemes_is_refused() {
    let output = transcribe(&["--model", DEFAULT_MODEL, "--decoder", "greedy", SAMPLE]);
    let text = stderr(&output);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains("phonemes") && text.contains("decoder=beam"),
        "{text}"
    );
}

/// A mono 16-bit 16 kHz WAV of `samples`.
fn write_wav(path: &Path, samples: &[i16]) {
    let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut wav = Vec::with_capacity(44 + data.len());
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&16_000u32.to_le_bytes());
    wav.extend_from_slice(&32_000u32.to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(data.len() as u32).to_le_bytes());
    wav.extend_from_slice(&data);
    std::fs::write(path, wav).unwrap();
}

/// Silent input gives no words, for files and live input, with both bundled models: 10 s of
/// digital zeros, and 10 s of dither, +-1 step of 16-bit audio as sox writes "silence".
/// Before the silence gate the phoneme model wrote "it it it it it it" over the dither, and
/// the beam search finds a short word in any long silence the model gives a label some
/// probability in; before the gate looked at the samples, QuartzNet wrote words over the
/// dither, whose log-mel features each buffer's statistics scale up to speech.
#[test]
fn silence_gives_no_words() {
    let dir = tempfile::tempdir().unwrap();
    let zeros = dir.path().join("zeros.wav");
    write_wav(&zeros, &[0; 160_000]);
    let dither = dir.path().join("dither.wav");
    // A fixed pseudo-random sequence of -1, 0, +1.
    let mut state = 22u32;
    let noise: Vec<i16> = (0..160_000)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 30) as i16 % 3 - 1
        })
        .collect();
    write_wav(&dither, &noise);
    for (model, file) in [
        (DEFAULT_MODEL, &zeros),
        (DEFAULT_MODEL, &dither),
        (ENGLISH, &zeros),
        (ENGLISH, &dither),
    ] {
        for live in [&[][..], &["--latency-ms", "4000"][..]] {
            let output = Command::new(BIN)
                .args(["--model", model, "--json"])
                .args(live)
                .arg(file)
                .output()
                .unwrap();
            assert!(output.status.success(), "{}", stderr(&output));
            let words = json_words(&output.stdout);
            assert!(
                words.iter().all(|w| w.is_empty()),
                "{model} {file:?} {live:?}: {words:?}"
            );
        }
    }
}

/// A file with two audio streams (silence, then the sample's speech) is transcribed from the
/// stream `--audio-stream` picks, with a note saying which and how many; a stream beyond
/// them is an error for that input naming how many there are.
#[test]
fn audio_stream_picks_one_of_several() {
    let dir = tempfile::tempdir().unwrap();
    let two = dir.path().join("two.mka");
    let line = format!(
        "matroskamux name=mux ! filesink location={} \
         audiotestsrc wave=silence num-buffers=100 samplesperbuffer=1600 ! \
         audio/x-raw,rate=16000,channels=1 ! flacenc ! mux.audio_0 \
         filesrc location={SAMPLE} ! wavparse ! audioconvert ! flacenc ! mux.audio_1",
        two.display()
    );
    let status = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(line.split_whitespace())
        .status()
        .expect("run gst-launch-1.0");
    assert!(status.success(), "{line}");
    let two = two.to_str().unwrap();
    let run = |extra: &[&str], input: &str| {
        Command::new(BIN)
            .args(["--model", ENGLISH, "--format", "json"])
            .args(extra)
            .arg(input)
            .output()
            .unwrap()
    };
    let reference = json_words(&run(&[], SAMPLE).stdout);
    assert!(reference[0].len() >= 20, "{reference:?}");

    let first = run(&[], two);
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(json_words(&first.stdout), [Vec::<String>::new()]);
    let note = stderr(&first);
    assert_eq!(note.matches("note:").count(), 1, "{note}");
    assert!(
        note.contains("2 audio streams") && note.contains("transcribing stream 0"),
        "{note}"
    );

    for parity in [&[][..], &["--offline"][..]] {
        let second = run(&[&["--audio-stream", "1"][..], parity].concat(), two);
        assert!(second.status.success(), "{}", stderr(&second));
        assert!(
            stderr(&second).contains("transcribing stream 1"),
            "{}",
            stderr(&second)
        );
        let words = json_words(&second.stdout);
        if parity.is_empty() {
            // FLAC is lossless: the WAV's words.
            assert_eq!(words, reference);
        } else {
            assert!(words[0].len() >= 20, "{words:?}");
        }
    }

    let beyond = run(&["--audio-stream", "2"], two);
    assert_eq!(beyond.status.code(), Some(1), "{}", stderr(&beyond));
    let text = stderr(&beyond);
    assert!(
        text.contains(&format!(
            "{two}: --audio-stream 2: the input has 2 audio streams"
        )),
        "{text}"
    );
    // One stream: no note, and stream 1 is beyond it.
    let single = run(&[], SAMPLE);
    assert!(!stderr(&single).contains("note:"), "{}", stderr(&single));
    let missing = run(&["--audio-stream", "1"], SAMPLE);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("the input has 1 audio stream,"),
        "{}",
        stderr(&missing)
    );
}

/// A URI whose server refuses the connection is reported as such, not as an input without
/// audio (souphttpsrc over libsoup 3 gives no reason of its own).
#[test]
fn a_refused_connection_is_named() {
    let installed = Command::new("gst-inspect-1.0")
        .arg("souphttpsrc")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        eprintln!("skipped: souphttpsrc (gst-plugins-good's soup) is not installed");
        return;
    }
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let uri = format!("http://127.0.0.1:{port}/x.wav");
    let output = transcribe(&["--model", MODEL, &uri]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(
        text.contains(&format!("{uri}: cannot connect to 127.0.0.1:{port}"))
            && text.to_lowercase().contains("refused"),
        "{text}"
    );
    assert!(!text.contains("no audio stream"), "{text}");
}

/// Settings that are valid but work against recognition are warned about, once: windows too
/// short to hold a word, a window part that is not whole output frames, and more threads than
/// cores. Defaults give no warning.
#[test]
fn settings_that_cannot_work_well_are_warned_about() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores + 1).to_string();
    let output = transcribe(&[
        "--model",
        MODEL,
        "--chunk-ms",
        "1",
        "--left-context-ms",
        "0",
        "--right-context-ms",
        "0",
        "--threads",
        &threads,
        AUDIO,
        AUDIO,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stderr(&output);
    assert_eq!(text.matches("warning:").count(), 3, "{text}");
    assert!(text.contains("windows of 1 ms"), "{text}");
    assert!(
        text.contains("a chunk of 1 ms is not a whole number of the model's 20 ms output frames")
            && text.contains(", 20 ms"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{threads} threads on {cores} cores")),
        "{text}"
    );
    let plain = transcribe(&["--model", MODEL, AUDIO]);
    assert!(!stderr(&plain).contains("warning"), "{}", stderr(&plain));
    // One utterance has no windows to warn about.
    let offline = transcribe(&["--model", MODEL, "--offline", "--chunk-ms", "1", AUDIO]);
    assert!(
        !stderr(&offline).contains("warning"),
        "{}",
        stderr(&offline)
    );
}

// Sub-word (SentencePiece) models: the random-weight Citrinet and FastConformer fixtures
// (tests/fixtures/subword-models/, tools/subword_models.py). Their greedy text is gibberish of
// many pieces, FastConformer's with byte-fallback pieces: U+FFFD, control characters, even a
// line break (VT) and a space inside a word. Every format must carry it.

const SUBWORD_MODELS: [&str; 2] = ["citrinet", "fastconformer"];

fn subword_model(name: &str) -> String {
    format!(
        "{}/../tests/fixtures/subword-models/{name}/model.onnx",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn fixture_audio(clip: &str) -> String {
    format!(
        "{}/../tests/fixtures/audio/{clip}.wav",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// 16-bit mono WAV samples as the engine takes them (int16 / 32768).
fn wav_samples(path: &str) -> Vec<f32> {
    hound::WavReader::open(path)
        .unwrap()
        .samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect()
}

/// The engine's own words for `samples`: as the client recognises a file (the element's
/// file windows), or with `offline` as one utterance (`--offline`).
fn engine_words(
    model: &str,
    samples: &[f32],
    offline: bool,
) -> Vec<quartznet_engine::decode::Word> {
    use quartznet_engine::config::{RecognizerConfig, WindowOverrides};
    use quartznet_engine::model::{LoadOptions, OnnxModel};
    use quartznet_engine::streaming::{StreamingRecognizer, recognize_offline};
    let mut model = OnnxModel::load(Path::new(model), &LoadOptions { threads: 1 }).unwrap();
    let description = model.description().clone();
    if offline {
        let config = RecognizerConfig::default();
        let decoding = config.decoding.decoding_options(&description).unwrap();
        let frontend = config.frontend_for(&description);
        return recognize_offline(&mut model, &description, frontend, decoding, samples)
            .unwrap()
            .words;
    }
    let config = RecognizerConfig::for_input(
        &WindowOverrides::default(),
        &description.latency_shares,
        false,
    );
    let mut recognizer = StreamingRecognizer::from_config(model, &config).unwrap();
    recognizer.push(samples);
    let mut words = Vec::new();
    while let Some(result) = recognizer.next_result().unwrap() {
        words.extend(result.words);
    }
    for result in recognizer.finish().unwrap() {
        words.extend(result.words);
    }
    words
}

/// A word's text as the line-based formats write it (line and paragraph ends as spaces, NUL
/// as U+FFFD; the client's rule, README *Command-line client*).
fn as_line(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n'
            | '\r'
            | '\u{0B}'
            | '\u{0C}'
            | '\u{1C}'..='\u{1E}'
            | '\u{85}'
            | '\u{2028}'
            | '\u{2029}' => ' ',
            '\0' => char::REPLACEMENT_CHARACTER,
            c => c,
        })
        .collect()
}

/// The words as lines and cues lay them out: a continued word joined to the one before,
/// words separated by one space.
fn laid_out(words: &[quartznet_engine::decode::Word]) -> String {
    let mut units: Vec<String> = Vec::new();
    for (i, w) in words.iter().enumerate() {
        match units.last_mut() {
            Some(last) if i > 0 && w.spaces_before == 0 => last.push_str(&as_line(&w.text)),
            _ => units.push(as_line(&w.text)),
        }
    }
    units.join(" ")
}

/// A subtitle timestamp (`HH:MM:SS,mmm` or `HH:MM:SS.mmm`) in milliseconds.
fn subtitle_ms(stamp: &str, separator: char) -> u64 {
    let (hms, ms) = stamp.split_once(separator).expect("milliseconds");
    let parts: Vec<u64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
    assert_eq!((parts.len(), ms.len()), (3, 3), "{stamp}");
    (parts[0] * 3600 + parts[1] * 60 + parts[2]) * 1000 + ms.parse::<u64>().unwrap()
}

/// The cues of an SRT or WebVTT file, checked strictly: numbered from 1 (SRT), a timing
/// line, one or two lines of text, a blank line; WebVTT's markup characters only as
/// references (unescaped here). Returns (start, end, lines), times in milliseconds.
fn strict_cues(text: &str, format: &str) -> Vec<(u64, u64, Vec<String>)> {
    let (body, separator) = match format {
        "vtt" => (
            text.strip_prefix("WEBVTT\n\n").expect("the WebVTT header"),
            '.',
        ),
        _ => (text, ','),
    };
    assert!(body.is_empty() || body.ends_with("\n\n"), "{text:?}");
    let mut cues = Vec::new();
    for (i, block) in body.split_terminator("\n\n").enumerate() {
        let mut lines = block.split('\n');
        if format == "srt" {
            assert_eq!(
                lines.next(),
                Some((i + 1).to_string().as_str()),
                "{block:?}"
            );
        }
        let timing = lines.next().expect("a timing line");
        let (start, end) = timing.split_once(" --> ").expect("a timing line");
        let text: Vec<String> = lines
            .map(|line| {
                assert!(!line.trim().is_empty() && !line.contains('\r'), "{block:?}");
                if format != "vtt" {
                    return line.to_string();
                }
                let bare = line
                    .replace("&lt;", "")
                    .replace("&gt;", "")
                    .replace("&amp;", "");
                assert!(
                    !bare.contains(['<', '>', '&']),
                    "unescaped markup: {line:?}"
                );
                line.replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&amp;", "&")
            })
            .collect();
        assert!((1..=2).contains(&text.len()), "{block:?}");
        cues.push((
            subtitle_ms(start, separator),
            subtitle_ms(end, separator),
            text,
        ));
    }
    cues
}

/// The cues as pysrt and webvtt-py read them: (start, end, text), WebVTT's text unescaped.
fn parsed_cues(path: &Path) -> Vec<(f64, f64, String)> {
    let script = r#"
import html, json, sys
path = sys.argv[1]
if path.endswith(".srt"):
    import pysrt
    subs = pysrt.open(path, encoding="utf-8", error_handling=pysrt.ERROR_RAISE)
    cues = [(s.start.ordinal / 1000, s.end.ordinal / 1000, s.text) for s in subs]
else:
    import webvtt
    cues = [(c.start_time.in_milliseconds() / 1000, c.end_time.in_milliseconds() / 1000,
             html.unescape(c.raw_text))
            for c in webvtt.read(path)]
print(json.dumps(cues))
"#;
    let parsed = Command::new(subtitle_python())
        .args(["-c", script, path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(parsed.status.success(), "{}", stderr(&parsed));
    serde_json::from_slice(&parsed.stdout).unwrap()
}

/// Text without what Python's `str.split()` takes for whitespace (pysrt strips it from the
/// ends of lines and reads some of it as line ends).
fn without_python_whitespace(text: &str) -> String {
    text.chars()
        .filter(|&c| !(c.is_whitespace() || ('\u{1C}'..='\u{1F}').contains(&c)))
        .collect()
}

/// Both sub-word models through the client in every format, as it recognises a file (the
/// element's file windows) and with `--offline` (the engine on the whole clip): JSON carries
/// the engine's words exactly (text, separators, times in whole 80 ms frames, confidences),
/// with JSON's escapes; txt lines and SRT / WebVTT cues lay out the same words, valid for a
/// strict reading and for independent parsers, with every character the model wrote but
/// line breaks (written as spaces) and WebVTT's markup (escaped). `--offline` is NeMo's own
/// text.
#[test]
fn subword_models_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let ms = |seconds: f64| (seconds * 1000.0).round() / 1000.0;
    // The clips whose texts hold, for FastConformer, a line break inside a word (element)
    // and WebVTT's markup characters (offline).
    let cases = [("LJ001-0001", false), ("phone_espeak", true)];
    let mut fastconformer_text = String::new();
    for name in SUBWORD_MODELS {
        let model = subword_model(name);
        for (clip, offline) in cases {
            let what = format!("{name} {clip}{}", if offline { " --offline" } else { "" });
            let path = fixture_audio(clip);
            let samples = wav_samples(&path);
            let words = engine_words(&model, &samples, offline);
            assert!(words.len() > 3, "{what}: {words:?}");
            if name == "fastconformer" {
                fastconformer_text += &quartznet_engine::decode::transcript(&words);
            }
            let run = |format: &str, out: Option<&Path>| -> String {
                let mut args = vec!["--model", &model, "-q", "--format", format];
                if offline {
                    args.push("--offline");
                }
                if let Some(out) = out {
                    args.extend(["-o", out.to_str().unwrap()]);
                }
                args.push(&path);
                let output = transcribe(&args);
                assert!(output.status.success(), "{what}: {}", stderr(&output));
                match out {
                    Some(out) => std::fs::read_to_string(out).expect("UTF-8 output"),
                    None => String::from_utf8(output.stdout).expect("UTF-8 output"),
                }
            };

            // JSON: the engine's words (through the element: its bus messages', clamped to
            // the end of the audio).
            let stdout = run("json", None);
            assert_eq!(stdout.lines().count(), 1, "{what}: {stdout}");
            assert!(
                !stdout.trim_end().chars().any(char::is_control),
                "{what}: JSON escapes control characters: {stdout:?}"
            );
            let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
            let text = quartznet_engine::decode::transcript(&words);
            assert_eq!(json["text"], text.as_str(), "{what}");
            let got = json["words"].as_array().unwrap();
            assert_eq!(got.len(), words.len(), "{what}");
            let end = if offline {
                f64::INFINITY
            } else {
                samples.len() as f64 / 16_000.0
            };
            let at = |frame: u64| ms((frame as f64 * 0.08).min(end));
            for (g, w) in got.iter().zip(&words) {
                assert_eq!(g["text"], w.text.as_str(), "{what}");
                assert_eq!(
                    g["separator"],
                    " ".repeat(w.spaces_before as usize),
                    "{what}"
                );
                assert_eq!(
                    g["start"].as_f64().unwrap(),
                    at(w.start_frame),
                    "{what}: {g}"
                );
                assert_eq!(g["end"].as_f64().unwrap(), at(w.end_frame), "{what}: {g}");
                assert_eq!(
                    g["confidence"].as_f64().unwrap() as f32,
                    w.confidence,
                    "{what}"
                );
            }

            // txt: a line per phrase, together the words.
            let stdout = run("txt", None);
            assert!(
                stdout.ends_with('\n') && !stdout.contains('\r'),
                "{stdout:?}"
            );
            let lines: Vec<&str> = stdout.lines().collect();
            assert!(
                lines.iter().all(|l| !l.trim().is_empty()),
                "{what}: {stdout:?}"
            );
            assert_eq!(lines.join(" "), laid_out(&words), "{what} txt");

            // SRT and WebVTT: valid, read alike by independent parsers, the words again.
            for format in ["srt", "vtt"] {
                let out = dir.path().join(format!("{name}-{clip}.{format}"));
                let text = run(format, Some(&out));
                let cues = strict_cues(&text, format);
                let all: Vec<String> = cues.iter().flat_map(|(.., l)| l.clone()).collect();
                assert_eq!(all.join(" "), laid_out(&words), "{what} {format}");
                let mut previous_end = 0;
                for (start, end, _) in &cues {
                    assert!(
                        previous_end <= *start && start < end,
                        "{what} {format}: {cues:?}"
                    );
                    assert!(end - start <= 7000, "{what} {format}: {cues:?}");
                    previous_end = *end;
                }
                let parsed = parsed_cues(&out);
                assert_eq!(parsed.len(), cues.len(), "{what} {format}: {parsed:?}");
                for ((start, end, lines), (p_start, p_end, p_text)) in cues.iter().zip(&parsed) {
                    let p_ms = |s: &f64| (s * 1000.0).round() as u64;
                    assert_eq!(
                        (*start, *end),
                        (p_ms(p_start), p_ms(p_end)),
                        "{what} {format}"
                    );
                    assert_eq!(
                        without_python_whitespace(p_text),
                        without_python_whitespace(&lines.join("\n")),
                        "{what} {format}"
                    );
                }
            }
        }

        // --offline is NeMo's greedy text, byte for byte (tools/subword_models.py's manifest).
        let clip = fixture_audio("espeak_fox");
        let output = transcribe(&["--model", &model, "--offline", "--json", &clip]);
        assert!(output.status.success(), "{name}: {}", stderr(&output));
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
        let manifest: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(model.replace("model.onnx", "manifest.json")).unwrap(),
        )
        .unwrap();
        let nemo = manifest["clips"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "espeak_fox")
            .unwrap();
        assert_eq!(json["text"], nemo["text"], "{name}: NeMo's text");
    }
    // What the formats must carry was there to carry.
    for c in ['\u{FFFD}', '\u{0B}', '>', '&'] {
        assert!(
            fastconformer_text.contains(c),
            "{c:?} in {fastconformer_text:?}"
        );
    }
}

/// `--execution-provider`: cuda where it cannot start fails before any input with the
/// engine's error naming what is missing; auto transcribes on the CPU and warns why. With the
/// CPU-only ONNX Runtime the tests install.
#[test]
fn execution_provider_cuda_fails_clearly_and_auto_falls_back() {
    let output = transcribe(&["--model", MODEL, "--execution-provider", "cuda", AUDIO]);
    let text = stderr(&output);
    if output.status.success() {
        // Only a GPU build of ONNX Runtime with a working GPU gets here.
        return;
    }
    assert!(text.contains("execution provider cuda: "), "{text}");
    assert!(text.contains("tools/setup.sh --gpu"), "{text}");
    assert!(output.stdout.is_empty());

    let output = transcribe(&["--model", MODEL, "--execution-provider", "auto", AUDIO]);
    let text = stderr(&output);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains(
            "warning: --execution-provider auto runs the model on the CPU: execution provider cuda: "
        ),
        "{text}"
    );
    let unknown = transcribe(&["--model", MODEL, "--execution-provider", "gpu", AUDIO]);
    assert_eq!(unknown.status.code(), Some(2), "{}", stderr(&unknown));
}

#[path = "../../tests/common/triton.rs"]
mod triton;

/// `--inference-server`: the model on a real Triton server (PyTriton, `tests/common/triton.rs`)
/// gives the text the model gives here; a server that is not there fails before any input,
/// naming its URL.
#[test]
fn the_model_served_by_triton_gives_the_same_text() {
    let hama = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/hama-en.onnx");
    let audio = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/LJ001-0001.wav");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let absent = format!("http://127.0.0.1:{port}");
    let output = transcribe(&["--model", hama, "--inference-server", &absent, audio]);
    assert!(!output.status.success());
    let error = stderr(&output);
    assert!(
        error.contains("cannot reach the inference server") && error.contains(&absent),
        "{error}"
    );

    let Some(server) = triton::Server::start(&[Path::new(hama)], &["--threads", "1"]) else {
        return;
    };
    let local = transcribe(&["--model", hama, "--threads", "1", audio]);
    assert!(local.status.success(), "{}", stderr(&local));
    let served = transcribe(&["--model", hama, "--inference-server", &server.url, audio]);
    assert!(served.status.success(), "{}", stderr(&served));
    assert!(!local.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&served.stdout),
        String::from_utf8_lossy(&local.stdout)
    );
}

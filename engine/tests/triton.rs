// SPDX-License-Identifier: MPL-2.0
//! The model served by a real Triton Inference Server (PyTriton on loopback,
//! `tests/common/triton.rs`): the same log-probs and words as the same model run here, a
//! wrong model or name refused at load from the server's metadata, credentials through
//! Triton's restricted API, a server that is not there or too slow an error naming it, and
//! retries that outlast a restart.

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "../../tests/common/triton.rs"]
mod triton;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use quartznet_engine::Error;
use quartznet_engine::config::RecognizerConfig;
use quartznet_engine::decode::transcript;
use quartznet_engine::frontend::Features;
use quartznet_engine::model::{
    AcousticModel, LoadOptions, OnnxModel, RetryPolicy, ServerOptions, TokenSource,
};
use quartznet_engine::streaming::StreamingRecognizer;

/// The header Triton's restricted API checks for the inference endpoint, and its value.
const HEADER: &str = "x-stt-key";
const TOKEN_VAR: &str = "QUARTZNET_TEST_TRITON_TOKEN";
const TOKEN: &str = "correct-horse-battery-staple";

fn hama() -> PathBuf {
    common::repository().join("models/hama-en.onnx")
}

/// One server for the tests that only read from it: the bundled phoneme model (waveform
/// input with lengths) and the tiny QuartzNet fixture (log-mel input, no lengths).
fn shared() -> Option<&'static triton::Server> {
    static SERVER: OnceLock<Option<triton::Server>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            let require = format!("{HEADER}={TOKEN}");
            triton::Server::start(
                &[&hama(), &common::model_path()],
                &["--require-header", &require, "--threads", "1"],
            )
        })
        .as_ref()
}

fn options(server: &triton::Server) -> ServerOptions {
    // SAFETY: every test sets the same value; nothing reads it concurrently with a change.
    unsafe { std::env::set_var(TOKEN_VAR, TOKEN) };
    let mut options = ServerOptions::new(server.url.clone());
    options.token = Some(TokenSource::Env(TOKEN_VAR.into()));
    options.auth_header = Some(HEADER.into());
    options
}

/// The error of a load that must fail.
fn refused(path: &Path, options: &ServerOptions) -> Error {
    match OnnxModel::load_served(path, &LoadOptions::default(), options) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(e) => e,
    }
}

/// The model run here as the server runs it: one ONNX Runtime thread (results differ in the
/// last bits between thread counts: hama's log-probs by up to 0.025 between 1 and 2).
fn load_local(path: &Path) -> OnnxModel {
    OnnxModel::load(path, &LoadOptions { threads: 1 }).unwrap()
}

/// Streams `samples` through `model` with the file windows: (kept log-probs, text).
fn stream(model: OnnxModel, samples: &[f32]) -> (Vec<f32>, String) {
    let mut recognizer =
        StreamingRecognizer::from_config(model, &RecognizerConfig::for_files()).unwrap();
    let (mut logprobs, mut words) = (Vec::new(), Vec::new());
    for part in samples.chunks(4000) {
        recognizer.push(part);
        while let Some(r) = recognizer.next_result().unwrap() {
            logprobs.extend(r.logprobs);
            words.extend(r.words);
        }
    }
    for r in recognizer.finish().unwrap() {
        logprobs.extend(r.logprobs);
        words.extend(r.words);
    }
    (logprobs, transcript(&words))
}

#[test]
fn served_models_give_the_local_log_probs_and_words() {
    let Some(server) = shared() else { return };
    let samples = common::read_wav(&common::repository().join("samples/LJ001-0001.wav"));
    for path in [hama(), common::model_path()] {
        let served = OnnxModel::load_served(&path, &LoadOptions::default(), &options(server))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(served.sessions().is_none());
        assert_eq!(served.served().unwrap().name(), path.file_stem().unwrap());
        let (remote, remote_text) = stream(served, &samples);
        let (local, local_text) = stream(load_local(&path), &samples);
        assert_eq!(remote.len(), local.len(), "{}", path.display());
        // The same ONNX Runtime release, threads and graph optimisations on both sides
        // (serve.py builds its sessions as the element does): the same numbers.
        let diff = common::max_abs_diff(&remote, &local);
        assert!(
            diff <= 1e-6,
            "{}: log-probs differ by {diff}",
            path.display()
        );
        assert!(!local_text.is_empty());
        assert_eq!(remote_text, local_text, "{}", path.display());
    }
}

#[test]
fn a_wrong_or_missing_model_is_refused_at_load_from_the_metadata() {
    let Some(server) = shared() else { return };
    // The QuartzNet fixture's description (29 classes, log-mel) against hama's graph.
    let mut wrong = options(server);
    wrong.model = Some("hama-en".into());
    let error = refused(&common::model_path(), &wrong).to_string();
    assert!(
        error.contains(&server.url)
            && error.contains("hama-en")
            && error.contains("no input audio_signal"),
        "{error}"
    );
    let mut missing = options(server);
    missing.model = Some("parakeet".into());
    let error = refused(&hama(), &missing).to_string();
    assert!(error.contains("no such model served"), "{error}");
}

#[test]
fn credentials_are_checked_by_the_server_and_never_shown() {
    let Some(server) = shared() else { return };
    let mut none = options(server);
    none.token = None;
    let error = refused(&hama(), &none);
    assert!(matches!(error, Error::Settings(_)), "{error:?}");
    assert!(
        error.to_string().contains("refused the credentials"),
        "{error}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "wrong-token\n").unwrap();
    let mut wrong = options(server);
    wrong.token = Some(TokenSource::File(file.clone()));
    let error = refused(&hama(), &wrong).to_string();
    assert!(error.contains("refused the credentials"), "{error}");
    assert!(!error.contains("wrong-token"), "{error}");

    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let mut right = options(server);
    right.token = Some(TokenSource::File(file));
    let model = OnnxModel::load_served(&hama(), &LoadOptions::default(), &right).unwrap();
    assert!(!format!("{:?}", model.served().unwrap()).contains(TOKEN));
}

#[test]
fn a_server_that_is_not_there_is_named_at_load() {
    // A port nobody listens on (bound, then let go).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let error = refused(&hama(), &ServerOptions::new(&url));
    assert!(matches!(error, Error::Unavailable(_)), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains("cannot reach the inference server") && text.contains(&url),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_slow_server_times_out_and_a_restarted_one_is_waited_for() {
    let Some(mut server) =
        triton::Server::start(&[&hama()], &["--delay-ms", "1500", "--threads", "1"])
    else {
        return;
    };
    let samples = common::read_wav(&common::repository().join("samples/LJ001-0001.wav"));
    let mut options = ServerOptions::new(server.url.clone());
    // Loading waits for the trial run: a deadline longer than the delay.
    options.timeout = Duration::from_secs(20);
    let model = OnnxModel::load_served(&hama(), &LoadOptions::default(), &options).unwrap();
    drop(model);
    options.timeout = Duration::from_millis(300);
    let error = refused(&hama(), &options);
    assert!(matches!(error, Error::Unavailable(_)), "{error:?}");
    assert!(error.to_string().contains(&server.url), "{error}");

    // Killed and restarted while a file is recognised: the calls in between are retried.
    options.timeout = Duration::from_secs(20);
    let model = OnnxModel::load_served(&hama(), &LoadOptions::default(), &options).unwrap();
    model.served().unwrap().set_retry(RetryPolicy::WAIT);
    let mut recognizer =
        StreamingRecognizer::from_config(model, &RecognizerConfig::for_files()).unwrap();
    // A model whose tries run out first: the error names the server and the tries.
    let mut impatient = OnnxModel::load_served(&hama(), &LoadOptions::default(), &options).unwrap();
    impatient.served().unwrap().set_retry(RetryPolicy {
        attempts: 3,
        first_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(100),
    });
    let half = samples.len() / 2;
    recognizer.push(&samples[..half]);
    let mut words = Vec::new();
    while let Some(r) = recognizer.next_result().unwrap() {
        words.extend(r.words);
    }
    server.kill();
    let second = Features {
        n_mels: 1,
        frames: 16_000,
        data: vec![0.0; 16_000],
    };
    let error = impatient.infer(&second, &mut Vec::new()).unwrap_err();
    assert!(matches!(error, Error::Unavailable(_)), "{error:?}");
    assert!(
        error.to_string().contains("(3 tries)") && error.to_string().contains(&server.url),
        "{error}"
    );
    let restart = std::thread::spawn(move || {
        server.launch();
        server
    });
    recognizer.push(&samples[half..]);
    while let Some(r) = recognizer.next_result().unwrap() {
        words.extend(r.words);
    }
    for r in recognizer.finish().unwrap() {
        words.extend(r.words);
    }
    let _server = restart.join().unwrap();
    let (_, local) = stream(load_local(&hama()), &samples);
    assert_eq!(transcript(&words), local);
}

/// An authenticating TLS proxy in front (nginx: https, `Authorization: Bearer` checked, the
/// server's own header added upstream): the bearer token from a file, the proxy's authority
/// from `ca_file`; a wrong token, or no trust in the authority, is refused at load.
#[test]
fn a_tls_proxy_in_front_takes_the_bearer_token() {
    let Some(server) = shared() else { return };
    let Some(proxy) = triton::Proxy::start(server, "proxy-token", (HEADER, TOKEN)) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "proxy-token\n").unwrap();
    let mut options = ServerOptions::new(proxy.url.clone());
    options.token = Some(TokenSource::File(file.clone()));
    options.ca_file = Some(proxy.ca_file.clone());
    let samples = common::read_wav(&common::repository().join("samples/LJ001-0001.wav"));
    let model = OnnxModel::load_served(&hama(), &LoadOptions::default(), &options).unwrap();
    let (_, text) = stream(model, &samples);
    assert_eq!(text, stream(load_local(&hama()), &samples).1);

    std::fs::write(&file, "guessed\n").unwrap();
    let error = refused(&hama(), &options).to_string();
    assert!(
        error.contains("refused the credentials") && error.contains("401"),
        "{error}"
    );
    assert!(!error.contains("guessed"), "{error}");

    std::fs::write(&file, "proxy-token\n").unwrap();
    options.ca_file = None;
    let error = refused(&hama(), &options).to_string();
    assert!(error.contains(&proxy.url), "{error}");
}

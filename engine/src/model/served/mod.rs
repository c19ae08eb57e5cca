// SPDX-License-Identifier: MPL-2.0
//! Where the model runs, when it is not in this process: a model served by NVIDIA Triton
//! Inference Server (or any server of the KServe v2 protocol), which runs it for many
//! pipelines at once and batches their windows.
//!
//! Everything but the model stays here: the frontend, the windows, the decoder and the
//! timestamps. Each window's model input (the tensor a local ONNX Runtime session gets, with
//! a batch axis of 1) goes to the server; its log-probs come back. The served model has the
//! ONNX graph's interface (Triton's onnxruntime backend serves the graph as it is;
//! `tools/triton/serve.py` binds the same names), which is checked against the model's
//! description from the server's model metadata when the model loads.
//!
//! HTTP/REST rather than gRPC: the binary tensor extension makes a window one POST of raw
//! bytes (no JSON numbers), a blocking client with a deadline per call (`ureq`, rustls) needs
//! no async runtime and no protobuf compiler, and an authenticating proxy or load balancer in
//! front is plain HTTP. A window is 10 to 100 ms of compute; the protocol's cost beside it is
//! a fraction of a millisecond on loopback.

mod kserve;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

pub use kserve::CallError;
use kserve::{Client, Data, Input, Values};

use super::{ModelDescription, ModelInput};
use crate::error::{Error, Result};

/// The default deadline of one call to the server (the element's `inference-timeout`).
pub const DEFAULT_TIMEOUT_MS: u32 = 5_000;
/// The longest deadline a user may set.
pub const MAX_TIMEOUT_MS: u32 = 600_000;
/// The header credentials go in unless another is named: `Authorization: Bearer <token>`.
pub const DEFAULT_AUTH_HEADER: &str = "Authorization";

/// Where a credential is read from; the credential itself is never a setting, so it never
/// shows in a property dump, a command line or a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// An environment variable of the process.
    Env(String),
    /// A file; its content less surrounding white space.
    File(PathBuf),
}

impl TokenSource {
    /// `env:NAME` or `file:PATH`.
    pub fn parse(text: &str) -> Result<Self> {
        if let Some(name) = text.strip_prefix("env:").filter(|n| !n.is_empty()) {
            return Ok(Self::Env(name.to_string()));
        }
        if let Some(path) = text.strip_prefix("file:").filter(|p| !p.is_empty()) {
            return Ok(Self::File(PathBuf::from(path)));
        }
        Err(Error::Settings(format!(
            "inference token '{text}': say where to read it, env:NAME or file:PATH (the token itself is never a setting)"
        )))
    }

    /// The credential (never in an error message).
    fn read(&self) -> Result<String> {
        let token = match self {
            Self::Env(name) => std::env::var(name).map_err(|_| {
                Error::Settings(format!(
                    "inference token: environment variable {name} is not set (or not UTF-8)"
                ))
            })?,
            Self::File(path) => std::fs::read_to_string(path)
                .map_err(|e| Error::io("inference token file", path, e))?,
        };
        let token = token.trim().to_string();
        if token.is_empty() || token.contains(['\r', '\n']) {
            return Err(Error::Settings(format!(
                "inference token from {}: empty, or more than one line",
                self.describe()
            )));
        }
        Ok(token)
    }

    fn describe(&self) -> String {
        match self {
            Self::Env(name) => format!("environment variable {name}"),
            Self::File(path) => format!("file {}", path.display()),
        }
    }
}

/// How often a call that got no answer is tried again, and how long to wait in between
/// (doubling from `first_backoff` up to `max_backoff`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, at least 1.
    pub attempts: u32,
    /// Wait before the second try.
    pub first_backoff: Duration,
    /// Longest wait between two tries.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// Input that waits (a file): a server restarted or failed over within about half a
    /// minute (0.5 + 1 + 2 + 4 + 8 + 8 + 8 s of waits, plus the calls' deadlines) loses nothing.
    pub const WAIT: Self = Self {
        attempts: 8,
        first_backoff: Duration::from_millis(500),
        max_backoff: Duration::from_secs(8),
    };
    /// Live input does not wait: one try, and the element drops what it cannot recognise.
    pub const ONCE: Self = Self {
        attempts: 1,
        first_backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
    };

    /// The wait before try `attempt` (1-based, the first retry is 2).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(2).min(30);
        self.first_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
    }
}

/// Where the model runs when a server runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerOptions {
    /// `http://host:port` or `https://host:port` (a path prefix is kept: a proxy may route by
    /// it).
    pub url: String,
    /// The served model's name; `None`: the model file's stem (`hama-en` for
    /// `hama-en.onnx`), as `deploy/triton/` names it.
    pub model: Option<String>,
    /// Deadline of each call.
    pub timeout: Duration,
    /// Credentials for a server behind an authenticating proxy (or Triton's restricted API).
    pub token: Option<TokenSource>,
    /// The header the token goes in; `None`: `Authorization: Bearer <token>`; another name
    /// gets the token as it is.
    pub auth_header: Option<String>,
    /// PEM file of the certificate authorities to trust for https (`None`: the public web
    /// PKI's roots).
    pub ca_file: Option<PathBuf>,
}

impl ServerOptions {
    /// Options for `url` with the defaults.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            model: None,
            timeout: Duration::from_millis(u64::from(DEFAULT_TIMEOUT_MS)),
            token: None,
            auth_header: None,
            ca_file: None,
        }
    }

    /// The served model's name for the model file `path`.
    pub fn model_name(&self, path: &Path) -> String {
        self.model.clone().unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
    }

    /// Checks the URL, the model name and the timeout.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let url = &self.url;
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(|| {
                Error::Settings(format!(
                    "inference server '{url}': not an http:// or https:// URL"
                ))
            })?;
        if rest.is_empty() || rest.starts_with('/') || rest.contains(['?', '#', ' ']) {
            return Err(Error::Settings(format!(
                "inference server '{url}': expected http(s)://host:port"
            )));
        }
        let name = self.model_name(path);
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(Error::Settings(format!(
                "inference model name '{name}': letters, digits, '-', '_' and '.' only"
            )));
        }
        let ms = self.timeout.as_millis();
        if ms == 0 || ms > u128::from(MAX_TIMEOUT_MS) {
            return Err(Error::Settings(format!(
                "inference timeout {ms} ms: from 1 to {MAX_TIMEOUT_MS} ms"
            )));
        }
        if let Some(header) = &self.auth_header
            && (header.is_empty()
                || !header
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            return Err(Error::Settings(format!(
                "inference auth header '{header}': letters, digits and '-' only"
            )));
        }
        Ok(())
    }

    /// The header and value credentials travel in.
    fn credentials(&self) -> Result<Option<(String, String)>> {
        let Some(source) = &self.token else {
            return Ok(None);
        };
        let token = source.read()?;
        Ok(Some(match &self.auth_header {
            None => (DEFAULT_AUTH_HEADER.to_string(), format!("Bearer {token}")),
            Some(name) if name.eq_ignore_ascii_case(DEFAULT_AUTH_HEADER) => {
                (name.clone(), format!("Bearer {token}"))
            }
            Some(name) => (name.clone(), token),
        }))
    }

    fn roots(&self) -> Result<Option<Vec<ureq::tls::Certificate<'static>>>> {
        let Some(path) = &self.ca_file else {
            return Ok(None);
        };
        let pem = std::fs::read(path).map_err(|e| Error::io("CA file", path, e))?;
        let roots: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if roots.is_empty() {
            return Err(Error::invalid("CA file", path, "no PEM certificate in it"));
        }
        Ok(Some(roots))
    }
}

/// The served model's tensors, as its metadata names them.
#[derive(Debug, Clone)]
struct Interface {
    input: String,
    /// The length input and whether it is `[batch, 1]` (else `[batch]`).
    length: Option<(String, bool)>,
    output: String,
    out_length: Option<String>,
}

/// A model run by a server: the connection, the served model's name and interface.
pub struct ServedModel {
    client: Client,
    url: String,
    name: String,
    interface: Interface,
    input: ModelInput,
    retry: Mutex<RetryPolicy>,
}

impl std::fmt::Debug for ServedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedModel")
            .field("url", &self.url)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ServedModel {
    /// Connects to the server of `options` and checks that the model it serves for `path`
    /// takes `description`'s input and gives its labels plus blank (from the server's model
    /// metadata). Every error names the URL and the model.
    pub fn connect(
        path: &Path,
        description: &ModelDescription,
        options: &ServerOptions,
    ) -> Result<Self> {
        options.validate(path)?;
        let name = options.model_name(path);
        let client = Client::new(
            &options.url,
            options.timeout,
            options.roots()?,
            options.credentials()?,
        );
        let url = options.url.trim_end_matches('/').to_string();
        let place = format!("inference server {url} model '{name}'");
        let metadata = client
            .get_json(&format!("/v2/models/{name}"))
            .map_err(|e| match e {
                CallError::Unavailable(why) => Error::Unavailable(format!(
                    "cannot reach the inference server at {url}: {why}"
                )),
                CallError::Refused(why) => Error::Settings(format!(
                    "the inference server at {url} refused the credentials ({why}); check the token and its header"
                )),
                CallError::NotServed(why) => Error::Invalid {
                    what: "inference server",
                    name: place.clone(),
                    reason: format!(
                        "no such model served ({why}); name it with the model-name setting"
                    ),
                },
                // TLS (an authority not trusted), a malformed answer, another HTTP error.
                CallError::Failed(why) => Error::Invalid {
                    what: "inference server",
                    name: place.clone(),
                    reason: why,
                },
            })?;
        let interface =
            Interface::from_metadata(&metadata, description).map_err(|reason| Error::Invalid {
                what: "inference server",
                name: place.clone(),
                reason,
            })?;
        // Loaded is not ready (Triton loads models in the background): ask.
        client
            .get_json(&format!("/v2/models/{name}/ready"))
            .or_else(|e| match e {
                // Triton answers an empty body to a ready model; no JSON is fine.
                CallError::Failed(why) if why.contains("not JSON") => Ok(Value::Null),
                other => Err(other),
            })
            .map_err(|e| Error::Unavailable(format!("{place} is not ready: {e}")))?;
        Ok(Self {
            client,
            url,
            name,
            interface,
            input: description.input,
            retry: Mutex::new(RetryPolicy::WAIT),
        })
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The served model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How calls that get no answer are retried from now on.
    pub fn set_retry(&self, policy: RetryPolicy) {
        *self.retry.lock().unwrap_or_else(|e| e.into_inner()) = policy;
    }

    /// Runs the served model on `data` (`bands` per frame, `frames` valid frames: data may be
    /// padded past them), writing the log-probs into `out`; returns (width, output frames).
    pub fn run(
        &self,
        data: &[f32],
        bands: usize,
        frames: usize,
        out: &mut Vec<f32>,
    ) -> Result<(usize, usize)> {
        let width = data.len() / bands.max(1);
        let shape = match self.input {
            ModelInput::LogMel => vec![1, bands as i64, width as i64],
            ModelInput::Waveform => vec![1, width as i64],
        };
        let lengths = [frames as i64];
        let mut inputs = vec![Input {
            name: &self.interface.input,
            shape,
            data: Data::F32(data),
        }];
        if let Some((name, two_axes)) = &self.interface.length {
            inputs.push(Input {
                name,
                shape: if *two_axes { vec![1, 1] } else { vec![1] },
                data: Data::I64(&lengths),
            });
        }
        let mut wanted = vec![self.interface.output.as_str()];
        wanted.extend(self.interface.out_length.as_deref());
        let policy = *self.retry.lock().unwrap_or_else(|e| e.into_inner());
        let mut attempt = 1;
        let outputs = loop {
            // The model was there when it loaded: a 404 now is a server that restarted and
            // is loading it again, worth the same retries as no answer.
            match self.client.infer(&self.name, &inputs, &wanted) {
                Err(CallError::Unavailable(_) | CallError::NotServed(_))
                    if attempt < policy.attempts =>
                {
                    attempt += 1;
                    std::thread::sleep(policy.backoff(attempt));
                }
                Err(CallError::Unavailable(why) | CallError::NotServed(why)) => {
                    let tries = if attempt > 1 {
                        format!(" ({attempt} tries)")
                    } else {
                        String::new()
                    };
                    return Err(Error::Unavailable(format!(
                        "inference server {} model '{}' did not answer{tries}: {why}",
                        self.url, self.name
                    )));
                }
                Err(CallError::Refused(why)) => {
                    return Err(Error::Settings(format!(
                        "the inference server at {} refused the credentials ({why}); check the token and its header",
                        self.url
                    )));
                }
                Err(e) => {
                    return Err(Error::Inference(format!(
                        "inference server {} model '{}': {e}",
                        self.url, self.name
                    )));
                }
                Ok(outputs) => break outputs,
            }
        };
        self.read_outputs(outputs, out)
    }

    fn read_outputs(
        &self,
        outputs: Vec<kserve::Output>,
        out: &mut Vec<f32>,
    ) -> Result<(usize, usize)> {
        let bad = |why: String| {
            Error::Inference(format!(
                "inference server {} model '{}': {why}",
                self.url, self.name
            ))
        };
        let mut logprobs = None;
        let mut valid = None;
        for output in outputs {
            if output.name == self.interface.output {
                logprobs = Some(output);
            } else if Some(&output.name) == self.interface.out_length.as_ref()
                && let Values::I64(lengths) = &output.values
            {
                valid = lengths.first().map(|&n| n.max(0) as usize);
            }
        }
        let logprobs =
            logprobs.ok_or_else(|| bad(format!("no output '{}'", self.interface.output)))?;
        let (shape, Values::F32(values)) = (&logprobs.shape, logprobs.values) else {
            return Err(bad(format!(
                "output '{}' is not FP32",
                self.interface.output
            )));
        };
        if shape.len() != 3 || shape[0] != 1 {
            return Err(bad(format!(
                "output '{}' has shape {shape:?}, expected [1, T, V]",
                self.interface.output
            )));
        }
        let (mut frames, width) = (shape[1] as usize, shape[2] as usize);
        if let Some(valid) = valid {
            frames = frames.min(valid);
        }
        out.clear();
        out.extend_from_slice(&values[..frames * width]);
        Ok((width, frames))
    }
}

impl Interface {
    /// The served model's tensors from its KServe v2 metadata, checked against what
    /// `description` says the model takes and gives, the way a local graph is checked.
    fn from_metadata(metadata: &Value, description: &ModelDescription) -> Result<Self, String> {
        let tensors = |key: &str| -> Vec<(String, String, Vec<i64>)> {
            metadata[key]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    (
                        t["name"].as_str().unwrap_or_default().to_string(),
                        t["datatype"].as_str().unwrap_or_default().to_string(),
                        t["shape"]
                            .as_array()
                            .map(|d| d.iter().filter_map(Value::as_i64).collect())
                            .unwrap_or_default(),
                    )
                })
                .collect()
        };
        let describe = |list: &[(String, String, Vec<i64>)]| {
            list.iter()
                .map(|(n, t, s)| format!("{n} {t} {s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (inputs, outputs) = (tensors("inputs"), tensors("outputs"));
        let (rank, wanted, length_wanted) = match description.input {
            ModelInput::LogMel => (3, "audio_signal", "length"),
            ModelInput::Waveform => (2, "waveform", "waveform_lengths"),
        };
        let pick = |list: &[(String, String, Vec<i64>)], names: &[&str], rank: usize| {
            let fits = |t: &(String, String, Vec<i64>)| t.1 == "FP32" && t.2.len() == rank;
            if let Some(i) = list.iter().position(|t| names.contains(&t.0.as_str())) {
                return fits(&list[i]).then_some(i);
            }
            let candidates: Vec<usize> = (0..list.len()).filter(|&i| fits(&list[i])).collect();
            (candidates.len() == 1).then(|| candidates[0])
        };
        let input = pick(&inputs, &[wanted], rank).ok_or_else(|| {
            format!(
                "serves no input {wanted} (FP32, {rank} axes with the batch); inputs are: {}",
                describe(&inputs)
            )
        })?;
        let output = pick(&outputs, &["logprobs", "log_probs"], 3).ok_or_else(|| {
            format!(
                "serves no output logprobs (FP32 [batch, time, classes]); outputs are: {}",
                describe(&outputs)
            )
        })?;
        let is_lengths = |t: &(String, String, Vec<i64>)| {
            t.1 == "INT64" && (t.2.len() == 1 || (t.2.len() == 2 && t.2[1] == 1))
        };
        let mut length = None;
        for (i, tensor) in inputs.iter().enumerate() {
            if i == input {
                continue;
            }
            if !([length_wanted, "length"].contains(&tensor.0.as_str()) && is_lengths(tensor)) {
                return Err(format!(
                    "serves an unexpected input {} {} {:?}; expected {wanted} and optionally {length_wanted} (INT64 [batch] or [batch, 1])",
                    tensor.0, tensor.1, tensor.2
                ));
            }
            length = Some((tensor.0.clone(), tensor.2.len() == 2));
        }
        let out_length = outputs
            .iter()
            .find(|t| ["out_lengths", "encoded_lengths"].contains(&t.0.as_str()) && is_lengths(t))
            .map(|t| t.0.clone());
        if description.input == ModelInput::LogMel {
            let mels = inputs[input].2[1];
            if mels > 0 && mels as usize != description.frontend.n_mels {
                return Err(format!(
                    "input {} takes {mels} features but the description ({}) says {}",
                    inputs[input].0, description.source, description.frontend.n_mels
                ));
            }
        }
        let classes = outputs[output].2[2];
        if classes > 0 && classes as usize != description.vocab_size() {
            return Err(format!(
                "output {} has {classes} classes but the description ({}) has {} labels + blank = {}: the server runs another model",
                outputs[output].0,
                description.source,
                description.labels.len(),
                description.vocab_size()
            ));
        }
        Ok(Self {
            input: inputs[input].0.clone(),
            length,
            output: outputs[output].0.clone(),
            out_length,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn token_sources_name_where_never_what() {
        assert_eq!(
            TokenSource::parse("env:STT_TOKEN").unwrap(),
            TokenSource::Env("STT_TOKEN".into())
        );
        assert_eq!(
            TokenSource::parse("file:/run/secrets/stt").unwrap(),
            TokenSource::File("/run/secrets/stt".into())
        );
        let error = TokenSource::parse("s3cr3t").unwrap_err().to_string();
        assert!(error.contains("env:NAME or file:PATH"), "{error}");
        // The variable's value is never in the message.
        // SAFETY: the variable is this test's own; no other test reads or writes it.
        unsafe { std::env::set_var("QUARTZNET_TEST_TOKEN_LINES", "abc\ndef") };
        let error = TokenSource::Env("QUARTZNET_TEST_TOKEN_LINES".into())
            .read()
            .unwrap_err()
            .to_string();
        assert!(!error.contains("abc"), "{error}");
    }

    #[test]
    fn bearer_unless_another_header_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "t0k3n\n").unwrap();
        let mut options = ServerOptions::new("http://127.0.0.1:8000");
        options.token = Some(TokenSource::File(file));
        assert_eq!(
            options.credentials().unwrap(),
            Some(("Authorization".into(), "Bearer t0k3n".into()))
        );
        options.auth_header = Some("x-api-key".into());
        assert_eq!(
            options.credentials().unwrap(),
            Some(("x-api-key".into(), "t0k3n".into()))
        );
    }

    #[test]
    fn settings_are_checked() {
        let path = Path::new("models/hama-en.onnx");
        assert!(
            ServerOptions::new("http://localhost:8000")
                .validate(path)
                .is_ok()
        );
        assert_eq!(ServerOptions::new("x").model_name(path), "hama-en");
        for bad in ["localhost:8000", "ftp://x", "http://", "http://a b"] {
            assert!(ServerOptions::new(bad).validate(path).is_err(), "{bad}");
        }
        let mut options = ServerOptions::new("https://triton.example:443/stt");
        options.model = Some("../admin".into());
        assert!(options.validate(path).is_err());
        options.model = None;
        options.timeout = Duration::ZERO;
        assert!(options.validate(path).is_err());
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let waits: Vec<u64> = (2..=8)
            .map(|a| RetryPolicy::WAIT.backoff(a).as_millis() as u64)
            .collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 8000, 8000]);
    }

    fn hama() -> ModelDescription {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/hama-en.onnx");
        ModelDescription::load_sidecar(&path).unwrap().unwrap()
    }

    #[test]
    fn the_server_metadata_must_match_the_description() {
        let description = hama();
        let served = |classes: i64| {
            json!({"name": "hama-en", "inputs": [
                {"name": "waveform", "datatype": "FP32", "shape": [-1, -1]},
                {"name": "waveform_lengths", "datatype": "INT64", "shape": [-1, 1]}],
             "outputs": [
                {"name": "log_probs", "datatype": "FP32", "shape": [-1, -1, classes]},
                {"name": "out_lengths", "datatype": "INT64", "shape": [-1, 1]}]})
        };
        let interface =
            Interface::from_metadata(&served(description.vocab_size() as i64), &description)
                .unwrap();
        assert_eq!(interface.length, Some(("waveform_lengths".into(), true)));
        assert_eq!(interface.out_length.as_deref(), Some("out_lengths"));
        let error = Interface::from_metadata(&served(29), &description).unwrap_err();
        assert!(
            error.contains("29 classes") && error.contains("another model"),
            "{error}"
        );
        let quartznet = json!({"inputs": [
            {"name": "audio_signal", "datatype": "FP32", "shape": [-1, 64, -1]}],
            "outputs": [{"name": "logprobs", "datatype": "FP32", "shape": [-1, -1, 29]}]});
        let error = Interface::from_metadata(&quartznet, &description).unwrap_err();
        assert!(error.contains("no input waveform"), "{error}");
    }
}

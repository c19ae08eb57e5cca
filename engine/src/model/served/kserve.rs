// SPDX-License-Identifier: MPL-2.0
//! The KServe v2 inference protocol over HTTP/REST, as Triton Inference Server speaks it, with
//! Triton's binary tensor extension: a request is a JSON header (its length in the
//! `Inference-Header-Content-Length` header) followed by the tensors' raw little-endian
//! bytes, and so is the answer, so log-probs travel as bytes, never as JSON numbers.
//!
//! Every call has a deadline (the agent's global timeout); a call that cannot reach the server
//! or gets no answer in time is [`CallError::Unavailable`], which the caller may retry.

use std::time::Duration;

use serde_json::{Value, json};

/// The header that carries the JSON part's length (Triton's binary tensor extension).
const HEADER_LENGTH: &str = "Inference-Header-Content-Length";

/// The largest answer read: a long utterance's log-probs (70 s of a 1025-piece model at 12.5
/// frames a second are 3.6 MB) are far below it; a broken server cannot exhaust memory.
const MAX_ANSWER_BYTES: u64 = 512 << 20;

/// Why a call failed.
#[derive(Debug)]
pub enum CallError {
    /// No answer: the server cannot be reached, the connection broke, the deadline passed, or
    /// a proxy or load balancer in front says the server is unavailable (502, 503, 504).
    /// Worth trying again later.
    Unavailable(String),
    /// The server (or a proxy in front) refused the credentials (401, 403).
    Refused(String),
    /// The server does not serve the model (404): not at all, or not yet (Triton answers so
    /// while it loads the model after a restart).
    NotServed(String),
    /// The server answered with an error, or an answer that is not what it promised.
    Failed(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unavailable(m) | Self::Refused(m) | Self::NotServed(m) | Self::Failed(m) => {
                f.write_str(m)
            }
        }
    }
}

/// A tensor's values.
#[derive(Debug, Clone, PartialEq)]
pub enum Data<'a> {
    /// FP32.
    F32(&'a [f32]),
    /// INT64.
    I64(&'a [i64]),
}

/// An input tensor of a request.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// The served model's input name.
    pub name: &'a str,
    /// Its shape, batch axis included.
    pub shape: Vec<i64>,
    /// Its values, row-major.
    pub data: Data<'a>,
}

/// An output tensor of an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The output's name.
    pub name: String,
    /// Its shape, batch axis included.
    pub shape: Vec<i64>,
    /// Its values, row-major.
    pub values: Values,
}

/// An output tensor's values.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// FP32.
    F32(Vec<f32>),
    /// INT64.
    I64(Vec<i64>),
}

/// One HTTP connection pool to one server, with the headers every request carries.
pub struct Client {
    agent: ureq::Agent,
    /// `http(s)://host:port`, no trailing slash.
    base: String,
    /// Extra header (credentials): name and value; never printed.
    auth: Option<(String, String)>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field(
                "auth",
                &self.auth.as_ref().map(|(name, _)| (name, "<redacted>")),
            )
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of `base` whose every call ends within `timeout`, trusting `roots` for https
    /// (`None`: the public web PKI roots), sending `auth` (header name and value) with each
    /// request.
    pub fn new(
        base: &str,
        timeout: Duration,
        roots: Option<Vec<ureq::tls::Certificate<'static>>>,
        auth: Option<(String, String)>,
    ) -> Self {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(roots) = roots {
            tls = tls.root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(roots)));
        }
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            // Connecting gets the same deadline: a black-holed address fails in time too.
            .timeout_connect(Some(timeout))
            .http_status_as_error(false)
            .tls_config(tls.build())
            .user_agent(concat!("quartznetstt/", env!("CARGO_PKG_VERSION")))
            .build();
        Self {
            agent: config.into(),
            base: base.trim_end_matches('/').to_string(),
            auth,
        }
    }

    /// `GET {base}{path}`: the JSON answer.
    pub fn get_json(&self, path: &str) -> Result<Value, CallError> {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        if let Some((name, value)) = &self.auth {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request.call().map_err(transport)?;
        let (status, body) = read(response)?;
        check_status(status, &body)?;
        serde_json::from_slice(&body)
            .map_err(|e| CallError::Failed(format!("the answer to GET {path} is not JSON: {e}")))
    }

    /// `POST {base}/v2/models/{model}/infer` with `inputs` as binary tensors, asking for
    /// `outputs` as binary tensors.
    pub fn infer(
        &self,
        model: &str,
        inputs: &[Input<'_>],
        outputs: &[&str],
    ) -> Result<Vec<Output>, CallError> {
        let (header, payload) = encode_request(inputs, outputs);
        let mut request = self
            .agent
            .post(format!("{}/v2/models/{model}/infer", self.base))
            .header("Content-Type", "application/octet-stream")
            .header(HEADER_LENGTH, header.len().to_string());
        if let Some((name, value)) = &self.auth {
            request = request.header(name.as_str(), value.as_str());
        }
        let mut body = header;
        body.extend_from_slice(&payload);
        let response = request.send(&body[..]).map_err(transport)?;
        let json_length = response
            .headers()
            .get(HEADER_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<usize>().ok());
        let (status, body) = read(response)?;
        check_status(status, &body)?;
        decode_answer(&body, json_length)
    }
}

/// The JSON header and the concatenated binary data of a request.
pub fn encode_request(inputs: &[Input<'_>], outputs: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let mut payload = Vec::new();
    let mut described = Vec::new();
    for input in inputs {
        let start = payload.len();
        let datatype = match input.data {
            Data::F32(values) => {
                payload.reserve(values.len() * 4);
                values
                    .iter()
                    .for_each(|v| payload.extend_from_slice(&v.to_le_bytes()));
                "FP32"
            }
            Data::I64(values) => {
                values
                    .iter()
                    .for_each(|v| payload.extend_from_slice(&v.to_le_bytes()));
                "INT64"
            }
        };
        described.push(json!({
            "name": input.name,
            "shape": input.shape,
            "datatype": datatype,
            "parameters": {"binary_data_size": payload.len() - start},
        }));
    }
    let outputs: Vec<Value> = outputs
        .iter()
        .map(|name| json!({"name": name, "parameters": {"binary_data": true}}))
        .collect();
    let header = json!({"inputs": described, "outputs": outputs}).to_string();
    (header.into_bytes(), payload)
}

/// The outputs of an answer: binary tensors after a JSON header of `json_length` bytes, or
/// (no length: a server without the extension) one JSON document with `data` arrays.
pub fn decode_answer(body: &[u8], json_length: Option<usize>) -> Result<Vec<Output>, CallError> {
    let bad = |why: String| CallError::Failed(format!("malformed inference answer: {why}"));
    let json_length = json_length.unwrap_or(body.len());
    if json_length > body.len() {
        return Err(bad(format!(
            "its JSON header is said to be {json_length} bytes but the answer has {}",
            body.len()
        )));
    }
    let header: Value =
        serde_json::from_slice(&body[..json_length]).map_err(|e| bad(e.to_string()))?;
    let mut binary = &body[json_length..];
    let mut outputs = Vec::new();
    for output in header["outputs"].as_array().into_iter().flatten() {
        let name = output["name"].as_str().unwrap_or_default().to_string();
        let shape: Vec<i64> = output["shape"]
            .as_array()
            .map(|dims| dims.iter().filter_map(Value::as_i64).collect())
            .ok_or_else(|| bad(format!("output '{name}' has no shape")))?;
        if shape.iter().any(|&d| d < 0) {
            return Err(bad(format!("output '{name}' has shape {shape:?}")));
        }
        let count = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d as usize))
            .ok_or_else(|| bad(format!("output '{name}' has shape {shape:?}")))?;
        let datatype = output["datatype"].as_str().unwrap_or_default();
        let width = match datatype {
            "FP32" => 4,
            "INT64" => 8,
            other => {
                return Err(bad(format!(
                    "output '{name}' is {other}, not FP32 or INT64"
                )));
            }
        };
        let values = match output["parameters"]["binary_data_size"].as_u64() {
            Some(size) => {
                let size = size as usize;
                if size != count * width || size > binary.len() {
                    return Err(bad(format!(
                        "output '{name}' {shape:?} {datatype} says {size} bytes, {} are left",
                        binary.len()
                    )));
                }
                let (bytes, rest) = binary.split_at(size);
                binary = rest;
                match width {
                    4 => Values::F32(
                        bytes
                            .chunks_exact(4)
                            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                            .collect(),
                    ),
                    _ => Values::I64(
                        bytes
                            .chunks_exact(8)
                            .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                            .collect(),
                    ),
                }
            }
            None => {
                let data = output["data"]
                    .as_array()
                    .ok_or_else(|| bad(format!("output '{name}' has no data")))?;
                if data.len() != count {
                    return Err(bad(format!(
                        "output '{name}' {shape:?} has {} values",
                        data.len()
                    )));
                }
                match width {
                    4 => Values::F32(
                        data.iter()
                            .map(|v| v.as_f64().unwrap_or(f64::NAN) as f32)
                            .collect(),
                    ),
                    _ => Values::I64(data.iter().map(|v| v.as_i64().unwrap_or(0)).collect()),
                }
            }
        };
        outputs.push(Output {
            name,
            shape,
            values,
        });
    }
    Ok(outputs)
}

/// A failed exchange as a [`CallError`]: no answer at all is worth a retry, a bad address or
/// TLS setup is not.
fn transport(error: ureq::Error) -> CallError {
    match error {
        ureq::Error::Timeout(what) => {
            CallError::Unavailable(format!("no answer within the timeout ({what})"))
        }
        ureq::Error::Io(e) => CallError::Unavailable(e.to_string()),
        ureq::Error::ConnectionFailed => {
            CallError::Unavailable("the connection failed".to_string())
        }
        ureq::Error::HostNotFound => CallError::Unavailable("host not found".to_string()),
        ureq::Error::Protocol(e) => CallError::Unavailable(format!("HTTP protocol error: {e}")),
        other => CallError::Failed(other.to_string()),
    }
}

/// Reads an answer's status and body (at most [`MAX_ANSWER_BYTES`]).
fn read(response: ureq::http::Response<ureq::Body>) -> Result<(u16, Vec<u8>), CallError> {
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .into_with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_vec()
        .map_err(transport)?;
    Ok((status, body))
}

/// A status other than 200 as a [`CallError`] with the server's own message.
fn check_status(status: u16, body: &[u8]) -> Result<(), CallError> {
    if status == 200 {
        return Ok(());
    }
    // Triton answers {"error": "..."}; a proxy may answer anything: a short excerpt.
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(String::from))
        .unwrap_or_else(|| {
            String::from_utf8_lossy(&body[..body.len().min(200)])
                .trim()
                .to_string()
        });
    let text = if message.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {message}")
    };
    Err(match status {
        401 | 403 => CallError::Refused(text),
        404 => CallError::NotServed(text),
        502..=504 => CallError::Unavailable(text),
        _ => CallError::Failed(text),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_round_trip_through_the_binary_extension() {
        let audio = [0.5f32, -1.25, 3.0];
        let (header, payload) = encode_request(
            &[
                Input {
                    name: "waveform",
                    shape: vec![1, 3],
                    data: Data::F32(&audio),
                },
                Input {
                    name: "waveform_lengths",
                    shape: vec![1, 1],
                    data: Data::I64(&[3]),
                },
            ],
            &["log_probs"],
        );
        let header: Value = serde_json::from_slice(&header).unwrap();
        assert_eq!(header["inputs"][0]["parameters"]["binary_data_size"], 12);
        assert_eq!(header["inputs"][1]["datatype"], "INT64");
        assert_eq!(header["outputs"][0]["parameters"]["binary_data"], true);
        assert_eq!(payload.len(), 20);

        // An answer as Triton writes it: the same bytes back as two outputs.
        let answer = json!({"outputs": [
            {"name": "log_probs", "datatype": "FP32", "shape": [1, 1, 3],
             "parameters": {"binary_data_size": 12}},
            {"name": "out_lengths", "datatype": "INT64", "shape": [1, 1],
             "parameters": {"binary_data_size": 8}},
        ]})
        .to_string();
        let mut body = answer.clone().into_bytes();
        body.extend_from_slice(&payload);
        let outputs = decode_answer(&body, Some(answer.len())).unwrap();
        assert_eq!(outputs[0].values, Values::F32(audio.to_vec()));
        assert_eq!(outputs[0].shape, vec![1, 1, 3]);
        assert_eq!(outputs[1].values, Values::I64(vec![3]));

        // Bytes missing: an error, never a panic or a short tensor.
        let short = &body[..body.len() - 1];
        assert!(decode_answer(short, Some(answer.len())).is_err());
        assert!(decode_answer(&body, Some(body.len() + 1)).is_err());
    }

    #[test]
    fn json_answers_without_the_extension_are_read_too() {
        let body = json!({"outputs": [
            {"name": "logprobs", "datatype": "FP32", "shape": [1, 2, 1], "data": [-0.5, -2.0]},
        ]})
        .to_string();
        let outputs = decode_answer(body.as_bytes(), None).unwrap();
        assert_eq!(outputs[0].values, Values::F32(vec![-0.5, -2.0]));
        let wrong = json!({"outputs": [
            {"name": "logprobs", "datatype": "FP32", "shape": [1, 3, 1], "data": [-0.5]},
        ]})
        .to_string();
        assert!(decode_answer(wrong.as_bytes(), None).is_err());
    }

    #[test]
    fn statuses_say_whether_to_retry() {
        assert!(matches!(
            check_status(503, b"<html>down</html>"),
            Err(CallError::Unavailable(m)) if m.contains("503")
        ));
        assert!(matches!(
            check_status(401, br#"{"error": "This API is restricted"}"#),
            Err(CallError::Refused(m)) if m.contains("restricted")
        ));
        assert!(matches!(check_status(400, b""), Err(CallError::Failed(m)) if m == "HTTP 400"));
        assert!(check_status(200, b"").is_ok());
    }
}

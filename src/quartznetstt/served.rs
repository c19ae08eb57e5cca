// SPDX-License-Identifier: MPL-2.0
//! Where the model runs: the inference-server properties (the model served by Triton
//! Inference Server, `quartznet_engine::model::ServedModel`), and what the element does when
//! the server is lost mid-stream. Live input keeps flowing: the audio that could not be
//! recognised, and the input until the next try, is dropped as `pacing` drops input it
//! cannot keep up with (GAP events, a QoS message per episode, a WARNING), and text resumes
//! once the server answers. Input that waits (a file) retries each call with backoff
//! (`RetryPolicy::WAIT`), then fails with an error naming the server.

use std::path::PathBuf;
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use quartznet_engine::model::{
    DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS, RetryPolicy, ServerOptions, TokenSource,
};

use super::imp::{CAT, QuartzNetStt};
use super::loading::Stream;
use super::messages::warning;

/// The first wait of live input after the server was lost, before a buffer tries it again;
/// doubled at each failure in a row up to [`MAX_RETRY_WAIT`].
pub(super) const FIRST_RETRY_WAIT: gst::ClockTime = gst::ClockTime::from_mseconds(500);
/// The longest wait between two tries of live input.
pub(super) const MAX_RETRY_WAIT: gst::ClockTime = gst::ClockTime::from_seconds(4);

/// The inference-server properties, as set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ServerSettings {
    pub(super) url: Option<String>,
    pub(super) model: Option<String>,
    pub(super) timeout_ms: u32,
    /// Where the token is read from (`env:NAME`, `file:PATH`), never the token.
    pub(super) token: Option<String>,
    pub(super) auth_header: Option<String>,
    pub(super) ca_file: Option<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            url: None,
            model: None,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            token: None,
            auth_header: None,
            ca_file: None,
        }
    }
}

fn set(value: &Option<String>) -> Option<String> {
    value.as_deref().filter(|s| !s.is_empty()).map(String::from)
}

impl ServerSettings {
    /// The engine's options, `None` when the model runs here.
    pub(super) fn options(&self) -> quartznet_engine::Result<Option<ServerOptions>> {
        let Some(url) = set(&self.url) else {
            return Ok(None);
        };
        let mut options = ServerOptions::new(url);
        options.model = set(&self.model);
        options.timeout = Duration::from_millis(u64::from(self.timeout_ms));
        options.token = set(&self.token)
            .map(|t| TokenSource::parse(&t))
            .transpose()?;
        options.auth_header = set(&self.auth_header);
        options.ca_file = set(&self.ca_file).map(PathBuf::from);
        Ok(Some(options))
    }

    /// Sets the property `name` if it is one of these; returns whether it was.
    pub(super) fn set(&mut self, name: &str, value: &glib::Value) -> bool {
        let typed = "type checked upstream";
        match name {
            "inference-server" => self.url = value.get().expect(typed),
            "inference-model" => self.model = value.get().expect(typed),
            "inference-timeout" => self.timeout_ms = value.get().expect(typed),
            "inference-token" => self.token = value.get().expect(typed),
            "inference-auth-header" => self.auth_header = value.get().expect(typed),
            "inference-ca-file" => self.ca_file = value.get().expect(typed),
            _ => return false,
        }
        true
    }

    /// The value of the property `name` if it is one of these.
    pub(super) fn get(&self, name: &str) -> Option<glib::Value> {
        Some(match name {
            "inference-server" => self.url.to_value(),
            "inference-model" => self.model.to_value(),
            "inference-timeout" => self.timeout_ms.to_value(),
            "inference-token" => self.token.to_value(),
            "inference-auth-header" => self.auth_header.to_value(),
            "inference-ca-file" => self.ca_file.to_value(),
            _ => return None,
        })
    }
}

/// The properties' specs (changed in NULL or READY only: they take effect at the next load).
pub(super) fn properties() -> Vec<glib::ParamSpec> {
    let ready = glib::ParamFlags::READWRITE | gst::PARAM_FLAG_MUTABLE_READY;
    vec![
        glib::ParamSpecString::builder("inference-server")
            .nick("Inference Server")
            .blurb(
                "URL of a Triton Inference Server (KServe v2 over HTTP/REST, http:// or \
                 https://) that runs the model, shared by many pipelines (unset: ONNX Runtime \
                 in this process); the frontend, windows, decoding and timestamps stay here, \
                 and model-path still gives the model's description",
            )
            .flags(ready)
            .build(),
        glib::ParamSpecString::builder("inference-model")
            .nick("Inference Model")
            .blurb("The served model's name (unset: the model file's stem, e.g. hama-en)")
            .flags(ready)
            .build(),
        glib::ParamSpecUInt::builder("inference-timeout")
            .nick("Inference Timeout")
            .blurb(
                "Deadline of each call to the inference server, in ms (a live stream drops \
                 what it cannot recognise in time; a file retries with backoff, then fails)",
            )
            .minimum(1)
            .maximum(MAX_TIMEOUT_MS)
            .default_value(DEFAULT_TIMEOUT_MS)
            .flags(ready)
            .build(),
        glib::ParamSpecString::builder("inference-token")
            .nick("Inference Token")
            .blurb(
                "Where the credential for an authenticating proxy or Triton's restricted API \
                 is read: env:NAME or file:PATH (never the token itself; it is never shown)",
            )
            .flags(ready)
            .build(),
        glib::ParamSpecString::builder("inference-auth-header")
            .nick("Inference Auth Header")
            .blurb(
                "The header the token goes in (unset: Authorization: Bearer <token>; another \
                 header gets the token as it is)",
            )
            .flags(ready)
            .build(),
        glib::ParamSpecString::builder("inference-ca-file")
            .nick("Inference CA File")
            .blurb(
                "PEM certificates of the authorities to trust for an https inference server \
                 (unset: the public web's roots)",
            )
            .flags(ready)
            .build(),
    ]
}

/// How calls are retried for input that is `live` or not.
pub(super) fn retry_policy(live: bool) -> RetryPolicy {
    if live {
        RetryPolicy::ONCE
    } else {
        RetryPolicy::WAIT
    }
}

impl QuartzNetStt {
    /// The server did not answer for live input at `pts` (`duration` long): the stream so far
    /// ends (its unrecognised audio is lost), a GAP covers the buffer, and input is dropped
    /// until the next try (see `pacing`); the first failure of an outage is a WARNING.
    pub(super) fn server_lost(
        &self,
        stream: &mut Stream,
        pts: gst::ClockTime,
        duration: gst::ClockTime,
        error: &quartznet_engine::Error,
    ) -> Result<(), gst::FlowError> {
        stream.recognizer.reset();
        stream.odd_byte = None;
        let samples = stream.samples.len() as u64;
        let (first, wait) = {
            let mut state = self.state.lock().unwrap();
            let state = state.as_mut().ok_or(gst::FlowError::Flushing)?;
            state.timeline.end_stream();
            state.timeline.skip(pts, duration);
            state.pacer.server_lost(pts, duration, samples)
        };
        gst::debug!(
            CAT,
            imp = self,
            "server lost at {pts}: {error}; next try in {wait}"
        );
        if first {
            let text = format!(
                "{error}: live input is dropped until the server answers again (tried again \
                 after {} ms of input, doubling up to {} ms); text resumes then",
                FIRST_RETRY_WAIT.mseconds(),
                MAX_RETRY_WAIT.mseconds()
            );
            self.notices
                .message(warning(&*self.obj(), gst::ResourceError::Read, &text));
        }
        Ok(())
    }
}

// SPDX-License-Identifier: MPL-2.0
//! The options that put the model on a Triton Inference Server: each is the element
//! property of the same name (README, *Many streams, many machines*).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use gst::prelude::*;
use quartznet_engine::model::{DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS, ServerOptions, TokenSource};

/// Where the model runs.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Inference server (the model served by Triton)")]
pub struct ServerArgs {
    /// Run the model on this Triton Inference Server (KServe v2 over HTTP/REST,
    /// http://host:port or https://); the frontend, windows and decoding stay here, and
    /// --model still gives the model's description
    #[arg(long, value_name = "URL")]
    pub inference_server: Option<String>,

    /// The served model's name (default: the model file's stem, e.g. hama-en)
    #[arg(long, value_name = "NAME", requires = "inference_server")]
    pub inference_model: Option<String>,

    /// Deadline of each call to the server (a file retries with backoff, then fails)
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_TIMEOUT_MS,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_TIMEOUT_MS)))]
    pub inference_timeout: u32,

    /// Where the credential for an authenticating proxy is read: env:NAME or file:PATH
    /// (never the token itself)
    #[arg(long, value_name = "env:NAME|file:PATH", requires = "inference_server")]
    pub inference_token: Option<String>,

    /// The header the token goes in (default: Authorization: Bearer <token>)
    #[arg(long, value_name = "HEADER", requires = "inference_token")]
    pub inference_auth_header: Option<String>,

    /// PEM certificates of the authorities to trust for an https server
    #[arg(long, value_name = "FILE", requires = "inference_server")]
    pub inference_ca_file: Option<PathBuf>,
}

impl ServerArgs {
    /// The engine's options, `None` when the model runs here.
    pub fn options(&self) -> quartznet_engine::Result<Option<ServerOptions>> {
        let Some(url) = &self.inference_server else {
            return Ok(None);
        };
        let mut options = ServerOptions::new(url.clone());
        options.model = self.inference_model.clone();
        options.timeout = Duration::from_millis(u64::from(self.inference_timeout));
        options.token = self
            .inference_token
            .as_deref()
            .map(TokenSource::parse)
            .transpose()?;
        options.auth_header = self.inference_auth_header.clone();
        options.ca_file = self.inference_ca_file.clone();
        Ok(Some(options))
    }

    /// Sets the element's properties of the same names.
    pub fn configure(&self, stt: &gst::Element) {
        let Some(url) = &self.inference_server else {
            return;
        };
        stt.set_property("inference-server", url);
        stt.set_property("inference-model", self.inference_model.as_deref());
        stt.set_property("inference-timeout", self.inference_timeout);
        stt.set_property("inference-token", self.inference_token.as_deref());
        stt.set_property(
            "inference-auth-header",
            self.inference_auth_header.as_deref(),
        );
        stt.set_property(
            "inference-ca-file",
            self.inference_ca_file
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned()),
        );
    }
}

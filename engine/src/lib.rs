// SPDX-License-Identifier: MPL-2.0
//! Speech recognition with NVIDIA NeMo CTC models (QuartzNet first) run through ONNX
//! Runtime, exact to NeMo, offline and streaming. No GStreamer here: the `quartznetstt`
//! element and the `quartznet-transcribe` client are both built on this crate.
//!
//! The parts, in the order audio flows through them:
//! - [`frontend`]: NeMo's log-mel features (`FilterbankFeatures`), computed in Rust;
//! - [`model`]: the ONNX model, its description and where files are found;
//! - [`streaming`]: buffered windows (left context + chunk + right context) over the
//!   frontend, the model and a decoder, and whole-utterance recognition;
//! - [`decode`]: greedy (NeMo's) or beam-search CTC decoding into timed words with
//!   confidences, the beam search scored by a word n-gram language model from [`lm`];
//! - [`captions`]: words cut into captions (phrases, lines, subtitle cues) that read well;
//! - [`config`]: what a user chooses, with every default defined once.
//!
//! ```no_run
//! use quartznet_engine::config::RecognizerConfig;
//! use quartznet_engine::model::{bundled, LoadOptions, OnnxModel};
//! use quartznet_engine::decode::transcript;
//! use quartznet_engine::streaming::StreamingRecognizer;
//!
//! # fn main() -> Result<(), quartznet_engine::Error> {
//! let config = RecognizerConfig::default();
//! let model = OnnxModel::load(&bundled::find()?, &LoadOptions { threads: config.threads })?;
//! let mut recognizer = StreamingRecognizer::from_config(model, &config)?;
//! let samples: Vec<f32> = vec![0.0; 16_000]; // mono, model rate, int16 / 32768 scale
//! recognizer.push(&samples);
//! let mut words = Vec::new();
//! while let Some(result) = recognizer.next_result()? {
//!     words.extend(result.words);
//! }
//! for result in recognizer.finish()? {
//!     words.extend(result.words);
//! }
//! println!("{}", transcript(&words));
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod cache_dir;
pub mod captions;
pub mod config;
pub mod decode;
mod error;
pub mod frontend;
pub mod g2p;
pub mod lexicon;
pub mod lm;
pub mod metrics;
pub mod model;
pub mod streaming;

pub use error::{Error, Result};

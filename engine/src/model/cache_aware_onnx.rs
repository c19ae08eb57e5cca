// SPDX-License-Identifier: MPL-2.0
//! A cache-aware streaming graph (NeMo's `cache_support` export) run one step at a time:
//! the step's feature frames and the caches in, the step's log-probs and the next caches
//! out (`docs/CACHE_AWARE.md` sections 1 and 3). Inputs and outputs are bound by the names
//! the description gives, each checked against what the session reports.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ort::session::Session;
use ort::session::SessionInputValue;
use ort::value::{Tensor, TensorElementType, ValueType};

use super::cache_aware::{CacheAwareStreaming, CacheSpec, CacheType};
use super::pool::SessionPool;
use super::provider::ExecutionProvider;
use super::{LoadOptions, ModelDescription};
use crate::error::{Error, Result};

const WHAT: &str = "model file";

/// The values of every cache between two steps, in the description's order.
#[derive(Clone, Debug, PartialEq)]
pub struct Caches(Vec<CacheValue>);

/// One cache tensor's values.
#[derive(Clone, Debug, PartialEq)]
enum CacheValue {
    Float32(Vec<f32>),
    Int64(Vec<i64>),
}

impl Caches {
    /// The first step's caches: every value the description's `initial`.
    pub fn initial(streaming: &CacheAwareStreaming) -> Self {
        Self(
            streaming
                .caches
                .iter()
                .map(|spec| match spec.dtype {
                    CacheType::Float32 => {
                        CacheValue::Float32(vec![spec.initial as f32; spec.values()])
                    }
                    CacheType::Int64 => CacheValue::Int64(vec![spec.initial as i64; spec.values()]),
                })
                .collect(),
        )
    }
}

/// A cache-aware streaming model: its sessions and its description.
pub struct CacheAwareModel {
    sessions: Arc<SessionPool>,
    path: PathBuf,
    description: ModelDescription,
    streaming: CacheAwareStreaming,
}

impl CacheAwareModel {
    /// Loads `path` with its description, which must have a `streaming` section, and checks
    /// that the graph has every input and output the section names, of the right type.
    pub fn load(path: &Path, options: &LoadOptions) -> Result<Self> {
        Self::load_on(path, options, ExecutionProvider::default())
    }

    /// [`load`](Self::load), with the sessions on `provider` ([`SessionPool::shared_on`]).
    pub fn load_on(
        path: &Path,
        options: &LoadOptions,
        provider: ExecutionProvider,
    ) -> Result<Self> {
        let sessions = SessionPool::shared_on(path, options.threads, provider)?;
        let description = sessions.with_session(|session| {
            let metadata = session.metadata().ok();
            let lookup = |key: &str| metadata.as_ref().and_then(|m| m.custom(key));
            ModelDescription::resolve(path, &lookup)
        })?;
        let Some(streaming) = description.streaming.clone() else {
            return Err(Error::invalid(
                WHAT,
                path,
                format!(
                    "the description ({}) has no streaming section: not a cache-aware streaming model",
                    description.source
                ),
            ));
        };
        sessions
            .with_session(|session| check_interface(session, &streaming))
            .map_err(|e| Error::invalid(WHAT, path, e))?;
        Ok(Self {
            sessions,
            path: path.to_path_buf(),
            description,
            streaming,
        })
    }

    /// The description this model was loaded with.
    pub fn description(&self) -> &ModelDescription {
        &self.description
    }

    /// Its `streaming` section.
    pub fn streaming(&self) -> &CacheAwareStreaming {
        &self.streaming
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The ONNX Runtime sessions this model shares with every other model of this process
    /// loaded from the same file with the same options.
    pub fn sessions(&self) -> &Arc<SessionPool> {
        &self.sessions
    }

    /// Runs one step on `frames` feature frames, band-major (`features[m * frames + t]`,
    /// the pre-encode frames first), with `caches`, which become the next step's. Writes the
    /// step's own output frames (`[T][vocab]`, `encoded_lengths` of them) into `out` and
    /// returns their count.
    pub fn step(
        &self,
        features: &[f32],
        frames: usize,
        caches: &mut Caches,
        out: &mut Vec<f32>,
    ) -> Result<usize> {
        let n_mels = self.description.frontend.n_mels;
        if features.len() != n_mels * frames || caches.0.len() != self.streaming.caches.len() {
            return Err(Error::Inference(format!(
                "a step takes {n_mels} x {frames} features and {} caches, given {} values and {} caches",
                self.streaming.caches.len(),
                features.len(),
                caches.0.len()
            )));
        }
        self.sessions
            .with_session(|session| self.run(session, features, frames, caches, out))
            .map_err(Error::Inference)
    }

    fn run(
        &self,
        session: &mut Session,
        features: &[f32],
        frames: usize,
        caches: &mut Caches,
        out: &mut Vec<f32>,
    ) -> Result<usize, String> {
        let s = &self.streaming;
        let n_mels = self.description.frontend.n_mels;
        let err = |e: ort::Error| e.to_string();
        let mut inputs: Vec<(String, SessionInputValue<'_>)> = vec![
            (
                s.features_input.clone(),
                Tensor::from_array(([1, n_mels, frames], features.to_vec()))
                    .map_err(err)?
                    .into(),
            ),
            (
                s.length_input.clone(),
                Tensor::from_array(([1usize], vec![frames as i64]))
                    .map_err(err)?
                    .into(),
            ),
        ];
        for (spec, value) in s.caches.iter().zip(&caches.0) {
            let shape = spec.shape.clone();
            let tensor: SessionInputValue<'_> = match value {
                CacheValue::Float32(v) => {
                    Tensor::from_array((shape, v.clone())).map_err(err)?.into()
                }
                CacheValue::Int64(v) => Tensor::from_array((shape, v.clone())).map_err(err)?.into(),
            };
            inputs.push((spec.input.clone(), tensor));
        }
        let outputs = session.run(inputs).map_err(err)?;
        let extract = |name: &str| -> Result<Vec<i64>, String> {
            let (_, v) = outputs[name]
                .try_extract_tensor::<i64>()
                .map_err(|e| format!("output '{name}': {e}"))?;
            Ok(v.to_vec())
        };
        let (shape, logprobs) = outputs[s.logprobs_output.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(|e| format!("output '{}': {e}", s.logprobs_output))?;
        let vocab = self.description.vocab_size();
        if shape.len() != 3 || shape[0] != 1 || shape[2] as usize != vocab {
            return Err(format!(
                "output '{}' has shape {:?}, expected [1, T, {vocab}]",
                s.logprobs_output,
                &shape[..]
            ));
        }
        let available = shape[1] as usize;
        let kept = extract(&s.length_output)?
            .first()
            .copied()
            .unwrap_or(0)
            .clamp(0, available as i64) as usize;
        out.clear();
        out.extend_from_slice(&logprobs[..kept * vocab]);
        let mut next = Vec::with_capacity(s.caches.len());
        for spec in &s.caches {
            next.push(read_cache(&outputs, spec)?);
        }
        caches.0 = next;
        Ok(kept)
    }
}

/// The next step's value of `spec`, which must come back in its shape.
fn read_cache(
    outputs: &ort::session::SessionOutputs<'_>,
    spec: &CacheSpec,
) -> Result<CacheValue, String> {
    let name = spec.output.as_str();
    let wrong = |shape: &[i64]| {
        format!(
            "output '{name}' has shape {shape:?}, expected {:?} (the input '{}')",
            spec.shape, spec.input
        )
    };
    let same = |shape: &[i64]| {
        shape
            .iter()
            .map(|&d| d as usize)
            .eq(spec.shape.iter().copied())
    };
    Ok(match spec.dtype {
        CacheType::Float32 => {
            let (shape, v) = outputs[name]
                .try_extract_tensor::<f32>()
                .map_err(|e| format!("output '{name}': {e}"))?;
            if !same(shape) {
                return Err(wrong(shape));
            }
            CacheValue::Float32(v.to_vec())
        }
        CacheType::Int64 => {
            let (shape, v) = outputs[name]
                .try_extract_tensor::<i64>()
                .map_err(|e| format!("output '{name}': {e}"))?;
            if !same(shape) {
                return Err(wrong(shape));
            }
            CacheValue::Int64(v.to_vec())
        }
    })
}

/// Every name of the section must be an input or output of the graph with the right
/// element type and rank, and the graph must take no other input.
fn check_interface(session: &Session, s: &CacheAwareStreaming) -> Result<(), String> {
    let find = |outlets: &[ort::value::Outlet], kind: &str, name: &str, ty, rank: usize| {
        let outlet = outlets.iter().find(|o| o.name() == name).ok_or_else(|| {
            format!(
                "the graph has no {kind} '{name}' (the description's streaming section names it)"
            )
        })?;
        match outlet.dtype() {
            ValueType::Tensor {
                ty: found, shape, ..
            } if *found == ty && shape.len() == rank => Ok(()),
            other => Err(format!(
                "{kind} '{name}' is {other:?}, expected {ty:?} of rank {rank}"
            )),
        }
    };
    let (inputs, outputs) = (session.inputs(), session.outputs());
    find(
        inputs,
        "input",
        &s.features_input,
        TensorElementType::Float32,
        3,
    )?;
    find(
        inputs,
        "input",
        &s.length_input,
        TensorElementType::Int64,
        1,
    )?;
    find(
        outputs,
        "output",
        &s.logprobs_output,
        TensorElementType::Float32,
        3,
    )?;
    find(
        outputs,
        "output",
        &s.length_output,
        TensorElementType::Int64,
        1,
    )?;
    for spec in &s.caches {
        let ty = match spec.dtype {
            CacheType::Float32 => TensorElementType::Float32,
            CacheType::Int64 => TensorElementType::Int64,
        };
        find(inputs, "input", &spec.input, ty, spec.shape.len())?;
        find(outputs, "output", &spec.output, ty, spec.shape.len())?;
    }
    let known = 2 + s.caches.len();
    if inputs.len() != known {
        let names: Vec<&str> = inputs.iter().map(|o| o.name()).collect();
        return Err(format!(
            "the graph takes {} inputs ({}), the description's streaming section names {known}",
            inputs.len(),
            names.join(", ")
        ));
    }
    Ok(())
}

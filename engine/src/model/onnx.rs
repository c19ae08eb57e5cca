// SPDX-License-Identifier: MPL-2.0
//! A NeMo CTC acoustic model exported to ONNX, run with ONNX Runtime.
//!
//! NeMo's `export()` gives input `audio_signal` f32 `[B, n_mels, T]` and output `logprobs`
//! f32 `[B, T', V]`; most exports have no `length` input because export disables the masked
//! convolutions, so the graph treats every frame it is given as audio. We therefore feed one
//! utterance (or window) at a time with only its valid frames, and pass `length` only when the
//! graph has it.
//!
//! A waveform model (the description's [`ModelInput::Waveform`], e.g. hama's phoneme CTC) takes
//! the samples themselves: input f32 `[B, S]` (`waveform`) and its length (int64 `[B]`), and
//! may return its output lengths (`out_lengths`), of which only the first frames are used. The
//! engine hands it the samples as [`Features`] of one band, one frame per sample.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ort::session::Session;
use ort::value::{Tensor, TensorElementType, TensorRef, ValueType};

use super::pool::SessionPool;
use super::provider::ExecutionProvider;
use super::served::{ServedModel, ServerOptions};
use super::{AcousticModel, ModelDescription, ModelInput};
use crate::error::{Error, Result};
use crate::frontend::Features;

const WHAT: &str = "model file";

/// Options for loading a model.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// ONNX Runtime intra-op threads; 0 lets ONNX Runtime choose (one per core).
    pub threads: usize,
}

/// Where the model runs.
enum Runner {
    /// In this process: ONNX Runtime sessions shared by every model loaded from the file.
    Local(Arc<SessionPool>),
    /// On an inference server (`model::served`).
    Served(Box<ServedModel>),
}

/// An ONNX QuartzNet (or any NeMo char-CTC model) checked against its description. Models
/// loaded from the same file with the same options share their ONNX Runtime sessions
/// ([`SessionPool`]); a model loaded with [`OnnxModel::load_served`] runs on an inference
/// server instead, with everything else (frontend, windows, decoding) here.
pub struct OnnxModel {
    runner: Runner,
    path: PathBuf,
    input_name: String,
    output_name: String,
    /// Name of the optional `length` input (int64 `[B]`), fed when the graph has it.
    length_name: Option<String>,
    /// Name of the optional output lengths (int64 `[B]`): frames past it are not output.
    out_length_name: Option<String>,
    input: ModelInput,
    /// Bands per input frame: mel bands, or 1 (a sample) for a waveform model.
    n_mels: usize,
    /// Shortest input run as it is (waveform models: one output frame; graphs with their own
    /// frontend often refuse less); shorter input is padded with zeros.
    min_input_frames: usize,
    vocab_size: usize,
    description: ModelDescription,
}

/// The graph's tensor names the model feeds and reads.
struct Names {
    input: String,
    output: String,
    length: Option<String>,
    out_length: Option<String>,
}

impl OnnxModel {
    /// The model of `description` run by `runner`, with what follows from the description
    /// (input kind, feature bands, the shortest input, the output width) derived once here.
    fn assemble(runner: Runner, path: &Path, names: Names, description: ModelDescription) -> Self {
        Self {
            runner,
            path: path.to_path_buf(),
            input_name: names.input,
            output_name: names.output,
            length_name: names.length,
            out_length_name: names.out_length,
            input: description.input,
            n_mels: match description.input {
                ModelInput::LogMel => description.frontend.n_mels,
                ModelInput::Waveform => 1,
            },
            min_input_frames: match description.input {
                ModelInput::LogMel => 1,
                ModelInput::Waveform => description.input_frames_per_output_frame(),
            },
            vocab_size: description.vocab_size(),
            description,
        }
    }

    /// Loads `path`, resolves its description (sidecar, ONNX metadata or defaults) and checks
    /// the graph's interface against it, including one trial run that proves the output width
    /// equals the label count plus blank. Every error names the file and the problem.
    pub fn load(path: &Path, options: &LoadOptions) -> Result<Self> {
        Self::load_on(path, options, ExecutionProvider::default())
    }

    /// [`load`](Self::load), with the sessions on `provider` (see
    /// [`SessionPool::shared_on`]: a GPU provider that cannot start is an error, `auto` falls
    /// back to the CPU).
    pub fn load_on(
        path: &Path,
        options: &LoadOptions,
        provider: ExecutionProvider,
    ) -> Result<Self> {
        let sessions = SessionPool::shared_on(path, options.threads, provider)?;
        let (description, interface) = sessions.with_session(|session| {
            let metadata = session.metadata().ok();
            let lookup = |key: &str| metadata.as_ref().and_then(|m| m.custom(key));
            let description = ModelDescription::resolve(path, &lookup);
            let input = description.as_ref().map_or(ModelInput::LogMel, |d| d.input);
            (description, Interface::inspect(session, input))
        });
        let description = description?;
        if description.streaming.is_some() {
            // Its graph drops frames at the start of every run and needs caches: run as a
            // whole utterance it would be silently wrong, or fail on its inputs.
            return Err(Error::invalid(
                WHAT,
                path,
                format!(
                    "a cache-aware streaming model (streaming section in {}): it runs chunk by chunk with caches (CacheAwareModel), not as a whole-utterance model",
                    description.source
                ),
            ));
        }
        let interface = interface.map_err(|e| Error::invalid(WHAT, path, e))?;
        if let Some(mels) = interface.n_mels
            && description.input == ModelInput::LogMel
            && mels != description.frontend.n_mels
        {
            return Err(Error::invalid(
                WHAT,
                path,
                format!(
                    "input '{}' takes {mels} features but the description ({}) says {}",
                    interface.input_name, description.source, description.frontend.n_mels
                ),
            ));
        }
        let mut model = Self::assemble(
            Runner::Local(sessions),
            path,
            Names {
                input: interface.input_name,
                output: interface.output_name,
                length: interface.length_name,
                out_length: interface.out_length_name,
            },
            description,
        );
        model.check_output_width(interface.vocab)?;
        Ok(model)
    }

    /// The description this model was loaded with.
    pub fn description(&self) -> &ModelDescription {
        &self.description
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The ONNX Runtime sessions this model shares with every other model of this process
    /// loaded from the same file with the same options; `None` for a served model.
    pub fn sessions(&self) -> Option<&Arc<SessionPool>> {
        match &self.runner {
            Runner::Local(sessions) => Some(sessions),
            Runner::Served(_) => None,
        }
    }

    /// The server that runs this model, if a server does.
    pub fn served(&self) -> Option<&ServedModel> {
        match &self.runner {
            Runner::Local(_) => None,
            Runner::Served(served) => Some(served),
        }
    }

    /// Loads the description of `path` and connects to the inference server of `server`,
    /// which runs the model: its model metadata is checked against the description (input,
    /// features, labels + blank) and one trial run proves the output width, as for a local
    /// graph. The description comes from the sidecar (`model.json`), so the ONNX file itself
    /// need not be on this machine; without a sidecar, its ONNX metadata is read from the
    /// file. Errors name the server's URL and the served model.
    pub fn load_served(path: &Path, options: &LoadOptions, server: &ServerOptions) -> Result<Self> {
        let description = match ModelDescription::load_sidecar(path)? {
            Some(description) => description,
            None => {
                let sessions = SessionPool::shared(path, options.threads)?;
                sessions.with_session(|session| {
                    let metadata = session.metadata().ok();
                    let lookup = |key: &str| metadata.as_ref().and_then(|m| m.custom(key));
                    ModelDescription::resolve(path, &lookup)
                })?
            }
        };
        if description.streaming.is_some() {
            return Err(Error::invalid(
                WHAT,
                path,
                "a cache-aware streaming model runs with its caches in this process; an inference server runs buffered-window models only",
            ));
        }
        let served = ServedModel::connect(path, &description, server)?;
        let names = Names {
            input: String::new(),
            output: "logprobs".to_string(),
            length: None,
            out_length: None,
        };
        let mut model = Self::assemble(Runner::Served(Box::new(served)), path, names, description);
        model.check_output_width(None)?;
        Ok(model)
    }

    /// Proves the output width with a short run on silence-like input: a static width in the
    /// graph can lie (or be symbolic), the tensor that comes back cannot.
    fn check_output_width(&mut self, static_vocab: Option<usize>) -> Result<()> {
        let path = self.path.clone();
        let labels = self.description.labels.len();
        let (output, source) = (self.output_name.clone(), self.description.source.clone());
        let mismatch = |width: usize| {
            Error::invalid(
                WHAT,
                &path,
                format!(
                    "output '{output}' has {width} classes but the description ({source}) has {labels} labels + blank = {}",
                    labels + 1
                ),
            )
        };
        if let Some(width) = static_vocab
            && width != self.vocab_size
        {
            return Err(mismatch(width));
        }
        // 33 frames (a second for a waveform model): enough for any convolution stack with
        // "same" padding; the values do not matter, only the shape that comes back.
        let frames = match self.input {
            ModelInput::LogMel => 33,
            ModelInput::Waveform => self.description.sample_rate as usize,
        };
        let features = Features {
            n_mels: self.n_mels,
            frames,
            data: vec![0.0; self.n_mels * frames],
        };
        let (width, _) = self
            .run_raw(&features, &mut Vec::new())
            .map_err(|e| match e {
                // A server that refuses or does not answer says so; anything else is the model.
                Error::Inference(e) => {
                    Error::invalid(WHAT, &path, format!("trial run failed: {e}"))
                }
                other => other,
            })?;
        if width != self.vocab_size {
            return Err(mismatch(width));
        }
        Ok(())
    }

    /// Runs the session, or the server; returns (output width, output frames).
    fn run_raw(&mut self, features: &Features, out: &mut Vec<f32>) -> Result<(usize, usize)> {
        if features.n_mels != self.n_mels
            || features.data.len() != features.n_mels * features.frames
        {
            return Err(Error::Inference(format!(
                "features are [{} x {}] with {} values; the model takes {} bands",
                features.n_mels,
                features.frames,
                features.data.len(),
                self.n_mels
            )));
        }
        match &self.runner {
            Runner::Local(sessions) => sessions
                .with_session(|session| self.run_session(session, features, out))
                .map_err(Error::Inference),
            Runner::Served(served) => served.run(
                &padded(features, self.min_input_frames),
                features.n_mels,
                features.frames,
                out,
            ),
        }
    }

    /// One run of `session` on `features`; the log-probs are copied into `out` before the
    /// session goes back to the pool.
    fn run_session(
        &self,
        session: &mut Session,
        features: &Features,
        out: &mut Vec<f32>,
    ) -> Result<(usize, usize), String> {
        let data = padded(features, self.min_input_frames);
        let width = data.len() / features.n_mels.max(1);
        let audio = match self.input {
            ModelInput::LogMel => {
                TensorRef::from_array_view(([1usize, features.n_mels, width], &*data))
            }
            ModelInput::Waveform => TensorRef::from_array_view(([1usize, width], &*data)),
        }
        .map_err(|e| e.to_string())?;
        let outputs = match &self.length_name {
            None => session.run(ort::inputs![self.input_name.as_str() => audio]),
            Some(length_name) => {
                let length = Tensor::from_array(([1usize], vec![features.frames as i64]))
                    .map_err(|e| e.to_string())?;
                session.run(
                    ort::inputs![self.input_name.as_str() => audio, length_name.as_str() => length],
                )
            }
        }
        .map_err(|e| e.to_string())?;
        let (shape, data) = outputs[self.output_name.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(|e| format!("output '{}': {e}", self.output_name))?;
        if shape.len() != 3 || shape[0] != 1 {
            return Err(format!(
                "output '{}' has shape {:?}, expected [1, T, V]",
                self.output_name,
                &shape[..]
            ));
        }
        let (mut frames, width) = (shape[1] as usize, shape[2] as usize);
        if let Some(name) = &self.out_length_name {
            let (_, lengths) = outputs[name.as_str()]
                .try_extract_tensor::<i64>()
                .map_err(|e| format!("output '{name}': {e}"))?;
            let valid = lengths.first().copied().unwrap_or(0).max(0) as usize;
            frames = frames.min(valid);
        }
        out.clear();
        out.extend_from_slice(&data[..frames * width]);
        Ok((width, frames))
    }
}

impl AcousticModel for OnnxModel {
    fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    fn infer(&mut self, features: &Features, out: &mut Vec<f32>) -> Result<usize> {
        let (width, frames) = self.run_raw(features, out)?;
        if width != self.vocab_size {
            return Err(Error::Inference(format!(
                "model returned {width} classes, expected {}",
                self.vocab_size
            )));
        }
        Ok(frames)
    }
}

/// `features`' values, zero-padded to `min_frames` frames: only a waveform (one band) is ever
/// shorter than its minimum.
fn padded(features: &Features, min_frames: usize) -> std::borrow::Cow<'_, [f32]> {
    if features.frames < min_frames {
        let mut v = features.data.clone();
        v.resize(min_frames * features.n_mels, 0.0);
        v.into()
    } else {
        features.data.as_slice().into()
    }
}

/// Input/output names and static sizes found in the graph.
struct Interface {
    input_name: String,
    output_name: String,
    length_name: Option<String>,
    out_length_name: Option<String>,
    n_mels: Option<usize>,
    vocab: Option<usize>,
}

impl Interface {
    /// The graph's interface for `input`, or what is wrong with it.
    fn inspect(session: &Session, input: ModelInput) -> Result<Self, String> {
        let describe = |outlets: &[ort::value::Outlet]| {
            outlets
                .iter()
                .map(|o| format!("{} {}", o.name(), describe_type(o.dtype())))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let inputs = session.inputs();
        let outputs = session.outputs();
        let tensor = |t: &ValueType, ty: TensorElementType, rank: usize| matches!(t, ValueType::Tensor { ty: found, shape, .. } if *found == ty && shape.len() == rank);
        let (input_rank, input_wanted, input_shape, length_wanted) = match input {
            ModelInput::LogMel => (3, "audio_signal", "[batch, features, time]", "length"),
            ModelInput::Waveform => (2, "waveform", "[batch, samples]", "waveform_lengths"),
        };
        // NeMo names them audio_signal/logprobs; accept another name only when it is the one
        // candidate, so an unrelated model is refused rather than guessed at.
        let pick =
            |outlets: &[ort::value::Outlet], wanted: &[&str], rank: usize| -> Option<usize> {
                if let Some(i) = outlets.iter().position(|o| wanted.contains(&o.name())) {
                    return tensor(outlets[i].dtype(), TensorElementType::Float32, rank)
                        .then_some(i);
                }
                let candidates: Vec<usize> = (0..outlets.len())
                    .filter(|&i| tensor(outlets[i].dtype(), TensorElementType::Float32, rank))
                    .collect();
                (candidates.len() == 1).then(|| candidates[0])
            };
        let input_index = pick(inputs, &[input_wanted], input_rank).ok_or_else(|| {
            format!(
                "no input named {input_wanted} (float32 {input_shape}); inputs are: {}",
                describe(inputs)
            )
        })?;
        let output = pick(outputs, &["logprobs", "log_probs"], 3).ok_or_else(|| {
            format!(
                "no output named logprobs (float32 [batch, time, classes]); outputs are: {}",
                describe(outputs)
            )
        })?;
        let is_lengths = |o: &ort::value::Outlet| tensor(o.dtype(), TensorElementType::Int64, 1);
        let mut length_name = None;
        for (i, outlet) in inputs.iter().enumerate() {
            if i == input_index {
                continue;
            }
            if !([length_wanted, "length"].contains(&outlet.name()) && is_lengths(outlet)) {
                return Err(format!(
                    "unexpected input '{}' {}; expected {input_wanted} and optionally {length_wanted} (int64 [batch])",
                    outlet.name(),
                    describe_type(outlet.dtype())
                ));
            }
            length_name = Some(outlet.name().to_string());
        }
        let out_length_name = outputs
            .iter()
            .find(|o| ["out_lengths", "encoded_lengths"].contains(&o.name()) && is_lengths(o))
            .map(|o| o.name().to_string());
        let static_dim = |t: &ValueType, axis: usize| match t {
            ValueType::Tensor { shape, .. } => usize::try_from(shape[axis]).ok(),
            _ => None,
        };
        Ok(Self {
            n_mels: match input {
                ModelInput::LogMel => static_dim(inputs[input_index].dtype(), 1),
                ModelInput::Waveform => None,
            },
            vocab: static_dim(outputs[output].dtype(), 2),
            input_name: inputs[input_index].name().to_string(),
            output_name: outputs[output].name().to_string(),
            length_name,
            out_length_name,
        })
    }
}

fn describe_type(t: &ValueType) -> String {
    match t {
        ValueType::Tensor { ty, shape, .. } => format!("{ty:?} {:?}", &shape[..]),
        other => format!("{other:?}"),
    }
}

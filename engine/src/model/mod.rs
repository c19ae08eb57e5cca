// SPDX-License-Identifier: MPL-2.0
//! The acoustic model: the [`AcousticModel`] interface the streaming engine runs, its ONNX
//! Runtime implementation, the description of what is not in the graph (labels, frontend,
//! subsampling), and where the runtime library and the bundled model are found.

pub mod bundled;
mod cache_aware;
mod cache_aware_onnx;
mod description;
mod locate;
mod onnx;
mod pool;
pub mod provider;
pub mod runtime;
mod served;

pub use crate::frontend::ModelInput;
pub use cache_aware::{
    CacheAwareStreaming, CacheSpec, CacheType, LookAhead, MAX_CACHE_VALUES, MAX_STREAMING_FRAMES,
};
pub use cache_aware_onnx::{CacheAwareModel, Caches};
pub use description::{
    DecodingDefaults, FORMAT, FORMAT_V1, LatencyShares, METADATA_KEY, ModelDescription, WordUnits,
    english_labels, parse_alphabet,
};
pub use onnx::{LoadOptions, OnnxModel};
pub use pool::SessionPool;
pub use provider::{DEFAULT_EXECUTION_PROVIDER, ExecutionProvider};
pub use served::{
    DEFAULT_AUTH_HEADER, DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS, RetryPolicy, ServedModel,
    ServerOptions, TokenSource,
};

/// Records the folder the GStreamer plugin file was loaded from (its `plugin_init` calls
/// this): an ONNX Runtime installed in `<folder>/quartznetstt/` and the bundled model
/// installed under the same prefix are then found without variables.
pub fn set_plugin_dir(dir: std::path::PathBuf) {
    locate::set_plugin_dir(dir);
}

use crate::error::Result;
use crate::frontend::Features;

/// Something that turns features into per-frame log-probabilities. The streaming engine is
/// written against this so it can be tested without ONNX Runtime.
pub trait AcousticModel {
    /// Output width: labels plus blank.
    fn vocab_size(&self) -> usize;
    /// Runs the model on `features`, writing `[T'][vocab]` log-probs into `out` (reusing its
    /// allocation) and returning T'.
    fn infer(&mut self, features: &Features, out: &mut Vec<f32>) -> Result<usize>;
}

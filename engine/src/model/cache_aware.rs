// SPDX-License-Identifier: MPL-2.0
//! The description's `streaming` section: how a cache-aware streaming FastConformer (NeMo's
//! `cache_support` export) is stepped chunk by chunk (`docs/CACHE_AWARE.md` section 1). Every
//! number is NeMo's own, written by `tools/export_nemo.py --cache-aware`; the engine only
//! checks that they make sense together.

use serde::Deserialize;

use crate::error::{Error, Result};

/// Most feature frames of one look-ahead's chunk, of the pre-encode cache, or of any cache
/// axis (NeMo's largest look-ahead is 1040 ms: 112 frames).
pub const MAX_STREAMING_FRAMES: usize = 100_000;
/// Most values of one cache tensor (NeMo's large models: 17 layers x 70 frames x 512 =
/// 0.6 M).
pub const MAX_CACHE_VALUES: usize = 64 << 20;

/// The element type of a cache tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheType {
    /// `float32` (the attention and convolution caches).
    Float32,
    /// `int64` (the attention cache's length).
    Int64,
}

/// One cache the graph takes as an input and returns, updated, as an output.
#[derive(Clone, Debug, PartialEq)]
pub struct CacheSpec {
    /// The graph input (`cache_last_channel`).
    pub input: String,
    /// The graph output that is the next step's input (`cache_last_channel_next`).
    pub output: String,
    /// Its shape, batch first (`[1, layers, left, d_model]`).
    pub shape: Vec<usize>,
    /// Its element type.
    pub dtype: CacheType,
    /// Every value of the first step's cache (NeMo's `get_initial_cache_state`: 0).
    pub initial: f64,
}

impl CacheSpec {
    /// Values in the tensor.
    pub fn values(&self) -> usize {
        self.shape.iter().product()
    }
}

/// One look-ahead the model was trained with: how many feature frames each step takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookAhead {
    /// NeMo's `att_context_size`: left and right context in output frames.
    pub att_context_size: [u32; 2],
    /// The look-ahead, right context x output frame (0, 80, 480, 1040 ms).
    pub look_ahead_ms: u32,
    /// Feature frames per step (8 (r + 1)).
    pub chunk_frames: usize,
    /// Feature frames from one step's chunk to the next's (the engine requires the chunk).
    pub shift_frames: usize,
    /// Output frames of a full step (r + 1).
    pub output_frames: usize,
}

/// How a cache-aware graph is stepped: the description's `streaming` section, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct CacheAwareStreaming {
    /// The look-ahead the graph was exported at (the largest: one graph runs them all).
    pub exported_att_context_size: [u32; 2],
    /// Index into [`look_aheads`](Self::look_aheads) of the model's default look-ahead.
    pub default_look_ahead: usize,
    /// Feature frames before each chunk that the causal subsampling reads (zeros before
    /// the first chunk).
    pub pre_encode_cache_frames: usize,
    /// The subsampled frames those produce, which the graph itself drops (informative).
    pub drop_extra_pre_encoded: usize,
    /// A last chunk shorter than this many feature frames is not run.
    pub min_chunk_frames: usize,
    /// Graph input for the step's features (f32 `[1, features, frames]`).
    pub features_input: String,
    /// Graph input for their count (i64 `[1]`).
    pub length_input: String,
    /// Graph output with the step's log-probs (f32 `[1, T', V]`).
    pub logprobs_output: String,
    /// Graph output with how many of those frames are the step's (i64 `[1]`).
    pub length_output: String,
    /// The caches fed back from each step to the next.
    pub caches: Vec<CacheSpec>,
    /// The look-aheads, as the description lists them.
    pub look_aheads: Vec<LookAhead>,
}

impl CacheAwareStreaming {
    /// The look-ahead at `index` in the description's list, or an [`Error::Settings`] that
    /// lists them.
    pub fn look_ahead(&self, index: usize) -> Result<&LookAhead> {
        self.look_aheads.get(index).ok_or_else(|| {
            Error::Settings(format!(
                "look-ahead {index} does not exist: the model has {} ({})",
                self.look_aheads.len(),
                self.list_ms()
            ))
        })
    }

    /// The index of the look-ahead of exactly `ms` milliseconds, or an [`Error::Settings`]
    /// that lists the model's.
    pub fn look_ahead_for_ms(&self, ms: u32) -> Result<usize> {
        self.look_aheads
            .iter()
            .position(|l| l.look_ahead_ms == ms)
            .ok_or_else(|| {
                Error::Settings(format!(
                    "the model has no look-ahead of {ms} ms; it has {}",
                    self.list_ms()
                ))
            })
    }

    fn list_ms(&self) -> String {
        let all: Vec<String> = self
            .look_aheads
            .iter()
            .map(|l| format!("{} ms", l.look_ahead_ms))
            .collect();
        all.join(", ")
    }
}

/// The `streaming` section as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStreaming {
    strategy: String,
    exported_att_context_size: [u32; 2],
    default_att_context_size: [u32; 2],
    first_step: String,
    pre_encode_cache_frames: usize,
    drop_extra_pre_encoded: usize,
    min_chunk_frames: usize,
    features_input: String,
    length_input: String,
    logprobs_output: String,
    length_output: String,
    caches: Vec<RawCache>,
    look_aheads: Vec<RawLookAhead>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCache {
    input: String,
    output: String,
    shape: Vec<usize>,
    dtype: String,
    initial: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLookAhead {
    att_context_size: [u32; 2],
    look_ahead_ms: u32,
    chunk_frames: usize,
    shift_frames: usize,
    output_frames: usize,
    /// Informative: the chunk in milliseconds.
    #[serde(default)]
    #[allow(dead_code)]
    chunk_ms: Option<u32>,
    /// Informative: NeMo's chunk sizes, the first for its other first step.
    #[serde(default)]
    #[allow(dead_code)]
    nemo_chunk_size: Option<[u32; 2]>,
    #[serde(default)]
    #[allow(dead_code)]
    nemo_shift_size: Option<[u32; 2]>,
}

impl RawStreaming {
    /// The section, or what is wrong with it; `subsampling` is the description's factor,
    /// `position_table` its `pos_emb_max_len`.
    pub(super) fn parse(
        self,
        subsampling: usize,
        position_table: Option<usize>,
    ) -> Result<CacheAwareStreaming, String> {
        if self.strategy != "cache-aware" {
            return Err(format!(
                "streaming: strategy '{}' is not supported (cache-aware)",
                self.strategy
            ));
        }
        if self.first_step != "pad-and-drop" {
            return Err(format!(
                "streaming: first_step '{}' is not supported (pad-and-drop: every step alike, docs/CACHE_AWARE.md section 6)",
                self.first_step
            ));
        }
        let frames = |what: &str, n: usize, least: usize| {
            if (least..=MAX_STREAMING_FRAMES).contains(&n) {
                Ok(n)
            } else {
                Err(format!(
                    "streaming: {what} {n} is not between {least} and {MAX_STREAMING_FRAMES}"
                ))
            }
        };
        let pre_encode_cache_frames =
            frames("pre_encode_cache_frames", self.pre_encode_cache_frames, 0)?;
        let drop_extra_pre_encoded =
            frames("drop_extra_pre_encoded", self.drop_extra_pre_encoded, 0)?;
        let min_chunk_frames = frames("min_chunk_frames", self.min_chunk_frames, 1)?;
        let names = [
            self.features_input,
            self.length_input,
            self.logprobs_output,
            self.length_output,
        ];
        let caches = self
            .caches
            .into_iter()
            .map(parse_cache)
            .collect::<Result<Vec<_>, _>>()?;
        check_names(&names, &caches)?;
        let look_aheads = self
            .look_aheads
            .into_iter()
            .map(|l| parse_look_ahead(l, subsampling, min_chunk_frames, position_table))
            .collect::<Result<Vec<_>, _>>()?;
        if look_aheads.is_empty() {
            return Err("streaming: look_aheads is empty".to_string());
        }
        let default_look_ahead = look_aheads
            .iter()
            .position(|l| l.att_context_size == self.default_att_context_size)
            .ok_or_else(|| {
                format!(
                    "streaming: default_att_context_size {:?} is not one of the look_aheads",
                    self.default_att_context_size
                )
            })?;
        let [features_input, length_input, logprobs_output, length_output] = names;
        Ok(CacheAwareStreaming {
            exported_att_context_size: self.exported_att_context_size,
            default_look_ahead,
            pre_encode_cache_frames,
            drop_extra_pre_encoded,
            min_chunk_frames,
            features_input,
            length_input,
            logprobs_output,
            length_output,
            caches,
            look_aheads,
        })
    }
}

fn parse_cache(raw: RawCache) -> Result<CacheSpec, String> {
    let dtype = match raw.dtype.as_str() {
        "float32" => CacheType::Float32,
        "int64" => CacheType::Int64,
        other => {
            return Err(format!(
                "streaming: cache '{}' has dtype '{other}' (float32 or int64)",
                raw.input
            ));
        }
    };
    let values = raw
        .shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .unwrap_or(usize::MAX);
    if raw.shape.is_empty() || raw.shape.contains(&0) || values > MAX_CACHE_VALUES {
        return Err(format!(
            "streaming: cache '{}' has shape {:?}: every axis must be positive, at most {MAX_CACHE_VALUES} values",
            raw.input, raw.shape
        ));
    }
    if !raw.initial.is_finite() || (dtype == CacheType::Int64 && raw.initial.fract() != 0.0) {
        return Err(format!(
            "streaming: cache '{}' has initial value {}, not a finite {}",
            raw.input,
            raw.initial,
            if dtype == CacheType::Int64 {
                "integer"
            } else {
                "number"
            }
        ));
    }
    Ok(CacheSpec {
        input: raw.input,
        output: raw.output,
        shape: raw.shape,
        dtype,
        initial: raw.initial,
    })
}

/// Every graph name must be given and used once: a name used twice would feed one tensor
/// where two are meant.
fn check_names(names: &[String], caches: &[CacheSpec]) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    let all = names
        .iter()
        .chain(caches.iter().flat_map(|c| [&c.input, &c.output]));
    for name in all {
        if name.is_empty() {
            return Err("streaming: a graph input or output name is empty".to_string());
        }
        if !seen.insert(name.as_str()) {
            return Err(format!("streaming: the name '{name}' is used twice"));
        }
    }
    Ok(())
}

fn parse_look_ahead(
    raw: RawLookAhead,
    subsampling: usize,
    min_chunk_frames: usize,
    position_table: Option<usize>,
) -> Result<LookAhead, String> {
    let [left, right] = raw.att_context_size;
    let what = format!("streaming: look-ahead {:?}", raw.att_context_size);
    if raw.chunk_frames < min_chunk_frames || raw.chunk_frames > MAX_STREAMING_FRAMES {
        return Err(format!(
            "{what}: chunk_frames {} is not between min_chunk_frames ({min_chunk_frames}) and {MAX_STREAMING_FRAMES}",
            raw.chunk_frames
        ));
    }
    if raw.shift_frames != raw.chunk_frames {
        return Err(format!(
            "{what}: shift_frames {} differs from chunk_frames {} (the engine steps whole chunks)",
            raw.shift_frames, raw.chunk_frames
        ));
    }
    if raw.output_frames != raw.chunk_frames.div_ceil(subsampling) {
        return Err(format!(
            "{what}: output_frames {} is not chunk_frames {} / subsampling_factor {subsampling}",
            raw.output_frames, raw.chunk_frames
        ));
    }
    // A step attends to `left` cached frames and its own chunk (docs/CACHE_AWARE.md
    // section 1): all of them must fit the exported position table.
    if let Some(table) = position_table
        && left as usize + raw.output_frames > table
    {
        return Err(format!(
            "{what}: a step attends to {left} + {} output frames, more than pos_emb_max_len {table}",
            raw.output_frames
        ));
    }
    Ok(LookAhead {
        att_context_size: [left, right],
        look_ahead_ms: raw.look_ahead_ms,
        chunk_frames: raw.chunk_frames,
        shift_frames: raw.shift_frames,
        output_frames: raw.output_frames,
    })
}

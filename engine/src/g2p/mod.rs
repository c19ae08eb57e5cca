// SPDX-License-Identifier: MPL-2.0
//! Grapheme-to-phoneme spelling of words with hama's G2P model (PyPI `hama` 1.3.13), run
//! through ONNX Runtime and giving the same phoneme tokens as hama's Python
//! `G2PModel()(word)`.
//!
//! The phoneme acoustic model decodes words through a pronunciation lexicon; words a user adds
//! (a vocabulary file, [`read_word_list`]) are spelled here when the lexicon is loaded, and
//! the spellings kept in the user's cache ([`spell_cached`]) so each word is spelled once per
//! G2P model.
//!
//! The model is three files in one folder: [`ENCODER_FILE`] (characters to encoder states),
//! [`DECODER_FILE`] (one greedy attention-decoder step) and [`VOCABULARY_FILE`] (the
//! encoder's input characters and the decoder's 189 output tokens). A word is spelled as
//! `G2PModel._predict_single_split` does it: lowercased character by character, Hangul split
//! into jamo, padded to [`MAX_INPUT_LEN`] ids, then at most [`MAX_OUTPUT_LEN`] decoder steps
//! from `<sos>` until `<eos>`.
//!
//! ```no_run
//! use quartznet_engine::g2p::G2p;
//! # fn main() -> Result<(), quartznet_engine::Error> {
//! let mut g2p = G2p::load(std::path::Path::new("models/hama-g2p"), 1)?;
//! assert_eq!(g2p.spell("hello")?, ["h", "ɛ", "l", "oʊ"]);
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{DynValue, Tensor, TensorElementType, ValueType};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::model::runtime;

mod cache;
mod text;
mod words;

pub use cache::{CACHE_VARIABLE, G2pCache, Spellings, spell_cached, spell_with_cache};
pub use words::{MAX_WORD_LIST_BYTES, MAX_WORDS, read_word_list};

use text::InputVocabulary;

/// The encoder graph's file name in a G2P folder.
pub const ENCODER_FILE: &str = "encoder.onnx";
/// The decoder-step graph's file name in a G2P folder.
pub const DECODER_FILE: &str = "decoder_step.onnx";
/// The vocabularies' file name in a G2P folder.
pub const VOCABULARY_FILE: &str = "g2p_vocab.json";
/// Encoder ids per word: hama's `max_input_len`. Longer words are cut; the decoder sees every
/// word padded to it, as in hama (the encoder itself runs only as long as the longest word of
/// a batch, which gives the same values; see `G2p::encode`).
pub const MAX_INPUT_LEN: usize = 128;
/// Decoder steps per word: hama's `max_output_len`, `<eos>` included.
pub const MAX_OUTPUT_LEN: usize = 32;
/// Words per batch in [`G2p::spell_many`]. A batch costs as many decoder steps as its
/// longest spelling, so the gain of sharing each step's run levels off early: words per
/// second on the fixture words, one thread, words sorted by length, batches of 1: 830,
/// 4: 1,290, 8: 1,340, 16: 1,260, 32: 1,100.
const BATCH: usize = 8;

const ENCODER_WHAT: &str = "G2P encoder";
const DECODER_WHAT: &str = "G2P decoder";
const VOCABULARY_WHAT: &str = "G2P vocabulary";

/// hama's G2P model, ready to spell words. See the module documentation.
pub struct G2p {
    encoder: Session,
    decoder: Session,
    names: Names,
    input: InputVocabulary,
    output: OutputVocabulary,
    /// Whether every batch axis the graphs are fed through is dynamic.
    batches: bool,
    dir: PathBuf,
    /// Words run through the model so far.
    spelled: u64,
}

impl std::fmt::Debug for G2p {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("G2p")
            .field("dir", &self.dir)
            .field("batches", &self.batches)
            .field("spelled", &self.spelled)
            .finish_non_exhaustive()
    }
}

/// The decoder's output tokens and its special ids.
#[derive(Debug)]
struct OutputVocabulary {
    tokens: Vec<String>,
    pad: i64,
    sos: i64,
    eos: i64,
}

#[derive(Deserialize)]
struct VocabularyFile {
    encoder: Vec<String>,
    decoder: Vec<String>,
}

impl G2p {
    /// Loads the G2P model in `dir` ([`ENCODER_FILE`], [`DECODER_FILE`], [`VOCABULARY_FILE`])
    /// with `threads` ONNX Runtime intra-op threads per graph (0: the process's shared pool,
    /// one thread per core). The graphs' inputs and outputs are checked against what hama
    /// feeds and reads, so a wrong or swapped file is refused here, named in the error.
    pub fn load(dir: &Path, threads: usize) -> Result<Self> {
        let vocabulary_path = dir.join(VOCABULARY_FILE);
        let text = std::fs::read_to_string(&vocabulary_path)
            .map_err(|e| Error::io(VOCABULARY_WHAT, &vocabulary_path, e))?;
        let vocabulary: VocabularyFile = serde_json::from_str(&text).map_err(|e| {
            Error::invalid(
                VOCABULARY_WHAT,
                &vocabulary_path,
                format!("not hama's g2p_vocab.json (an object of 'encoder' and 'decoder' token lists): {e}"),
            )
        })?;
        let input = InputVocabulary::new(&vocabulary.encoder)
            .map_err(|e| Error::invalid(VOCABULARY_WHAT, &vocabulary_path, e))?;
        let output = OutputVocabulary::new(vocabulary.decoder)
            .map_err(|e| Error::invalid(VOCABULARY_WHAT, &vocabulary_path, e))?;

        let encoder_path = dir.join(ENCODER_FILE);
        let decoder_path = dir.join(DECODER_FILE);
        let encoder = open_session(&encoder_path, ENCODER_WHAT, threads)?;
        let decoder = open_session(&decoder_path, DECODER_WHAT, threads)?;
        let (names, batches) = Names::inspect(&encoder, &decoder, &encoder_path, &decoder_path)?;
        Ok(Self {
            encoder,
            decoder,
            names,
            input,
            output,
            batches,
            dir: dir.to_path_buf(),
            spelled: 0,
        })
    }

    /// The folder the model was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether [`spell_many`](Self::spell_many) runs words in batches (the graphs take any
    /// batch size) rather than one at a time.
    pub fn batches(&self) -> bool {
        self.batches
    }

    /// How many words (whitespace-separated pieces of the texts given) this instance has run
    /// through the model.
    pub fn words_spelled(&self) -> u64 {
        self.spelled
    }

    /// The phoneme tokens of `word`, as the token list of hama's `G2PModel()(word)` (its
    /// alignments' phonemes; joined they give its `ipa`). Tokens are the decoder's, some of
    /// several code points; one of them is a space, which the model itself emits.
    ///
    /// As in Python, text with whitespace inside is spelled piece by piece and the pieces
    /// joined with a `" "` token, and text of only whitespace (or empty) is spelled as one
    /// unknown character, which is not empty.
    pub fn spell(&mut self, word: &str) -> Result<Vec<String>> {
        let pieces = self.encode_pieces(word);
        let mut ids = Vec::with_capacity(pieces.len());
        for piece in &pieces {
            ids.extend(self.run(std::slice::from_ref(piece))?);
        }
        self.join(&ids)
    }

    /// [`spell`](Self::spell) of each word, in order, with the same result; in batches when
    /// the graphs allow it (each word is computed on its own row, so a batch does not change
    /// any word's spelling).
    pub fn spell_many(&mut self, words: &[String]) -> Result<Vec<Vec<String>>> {
        if !self.batches {
            return words.iter().map(|word| self.spell(word)).collect();
        }
        // Every whitespace-separated piece of every word is one row.
        let mut rows: Vec<Vec<i64>> = Vec::new();
        let mut counts = Vec::with_capacity(words.len());
        for word in words {
            let pieces = self.encode_pieces(word);
            counts.push(pieces.len());
            rows.extend(pieces);
        }
        // A batch runs until its longest spelling ends: rows of similar length together
        // waste fewer steps. The order does not change any row's result.
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by_key(|&i| rows[i].len());
        let mut decoded = vec![Vec::new(); rows.len()];
        for chunk in order.chunks(BATCH) {
            let batch: Vec<Vec<i64>> = chunk
                .iter()
                .map(|&i| std::mem::take(&mut rows[i]))
                .collect();
            for (&i, ids) in chunk.iter().zip(self.run(&batch)?) {
                decoded[i] = ids;
            }
        }
        let mut decoded = decoded.into_iter();
        counts
            .into_iter()
            .map(|count| self.join(&decoded.by_ref().take(count).collect::<Vec<_>>()))
            .collect()
    }

    /// The encoder ids of each piece `G2PModel.predict` spells separately.
    fn encode_pieces(&self, word: &str) -> Vec<Vec<i64>> {
        let pieces = text::segments(word);
        if pieces.is_empty() {
            return vec![self.input.encode(word)];
        }
        pieces
            .iter()
            .map(|piece| self.input.encode(piece))
            .collect()
    }

    /// The pieces' tokens joined by `" "`, as `predict` joins them with its output delimiter.
    fn join(&self, pieces: &[Vec<i64>]) -> Result<Vec<String>> {
        let mut tokens = Vec::new();
        for (i, ids) in pieces.iter().enumerate() {
            if i > 0 {
                tokens.push(" ".to_string());
            }
            self.output.decode(ids, &mut tokens)?;
        }
        Ok(tokens)
    }

    /// Runs the encoder once and the decoder step up to [`MAX_OUTPUT_LEN`] times on `rows`
    /// (encoder ids, one word each); the decoder's ids per row, up to its `<eos>`.
    fn run(&mut self, rows: &[Vec<i64>]) -> Result<Vec<Vec<i64>>> {
        let batch = rows.len();
        let lengths: Vec<usize> = rows.iter().map(|r| r.len().min(MAX_INPUT_LEN)).collect();
        let [states, keys, mut hidden, mask, mut attention] = self.encode(rows, &lengths)?;
        let names = &self.names;
        let source_len = match states.dtype() {
            ValueType::Tensor { shape, .. } if shape.len() == 3 => usize::try_from(shape[1]).ok(),
            _ => None,
        }
        .ok_or_else(|| {
            Error::Inference(format!(
                "G2P encoder: output '{}' is {}, expected float32 [batch, length, width]",
                names.encoder_outputs[0],
                describe_type(states.dtype())
            ))
        })?;
        // hama feeds positions 0..length as one row for the whole batch.
        let positions: Vec<f32> = (0..source_len).map(|p| p as f32).collect();
        let positions = Tensor::from_array(([1, source_len], positions)).map_err(inference)?;

        let mut previous = vec![self.output.sos; batch];
        let mut decoded: Vec<Vec<i64>> = vec![Vec::new(); batch];
        let mut done = vec![false; batch];
        for _ in 0..MAX_OUTPUT_LEN {
            let step_ids = Tensor::from_array(([batch, 1], previous.clone())).map_err(inference)?;
            let [
                step,
                states_in,
                keys_in,
                mask_in,
                attention_in,
                hidden_in,
                positions_in,
            ] = &names.decoder_inputs;
            let mut outputs = self
                .decoder
                .run(ort::inputs![
                    step.as_str() => step_ids,
                    states_in.as_str() => &states,
                    keys_in.as_str() => &keys,
                    mask_in.as_str() => &mask,
                    attention_in.as_str() => &attention,
                    hidden_in.as_str() => &hidden,
                    positions_in.as_str() => &positions,
                ])
                .map_err(|e| Error::Inference(format!("G2P decoder: {e}")))?;
            let [next_name, hidden_name, attention_name, _] = &names.decoder_outputs;
            let (shape, next) = outputs[next_name.as_str()]
                .try_extract_tensor::<i64>()
                .map_err(|e| Error::Inference(format!("G2P decoder: output '{next_name}': {e}")))?;
            if next.len() != batch {
                return Err(Error::Inference(format!(
                    "G2P decoder: output '{next_name}' has shape {:?} for a batch of {batch}",
                    &shape[..]
                )));
            }
            for (row, &token) in next.iter().enumerate() {
                if !done[row] {
                    decoded[row].push(token);
                    done[row] = token == self.output.eos;
                }
            }
            previous.copy_from_slice(next);
            let mut take = |name: &str| {
                outputs.remove(name).ok_or_else(|| {
                    Error::Inference(format!("G2P decoder: no output '{name}' came back"))
                })
            };
            hidden = take(hidden_name)?;
            attention = take(attention_name)?;
            if done.iter().all(|&d| d) {
                break;
            }
        }
        self.spelled += batch as u64;
        Ok(decoded)
    }

    /// The encoder's five outputs for `rows` as hama computes them: each row padded to
    /// [`MAX_INPUT_LEN`] ids. The encoder runs only over the longest row's ids (most of its
    /// time went into the padding), and its outputs are then padded to hama's length with
    /// zeros: the padding positions are masked, so the
    /// decoder gives them exactly zero attention and their values never reach a result,
    /// while the decoder still sees tensors of hama's length (its attention sums over all
    /// positions, and a shorter sum rounds differently). The encoder's first positions do
    /// not depend on how many pads follow (a recurrent encoder given each row's length).
    /// Checked with Python's onnxruntime: every decoder output of every step, batches of 8 by
    /// length, equal bit for bit to hama's one-word runs on 6,800 words; the fixture test
    /// checks the spellings. An encoder whose output length is not its input length is run
    /// on hama's padding as is.
    fn encode(&mut self, rows: &[Vec<i64>], lengths: &[usize]) -> Result<[DynValue; 5]> {
        let longest = lengths.iter().copied().max().unwrap_or(0).max(1);
        let outputs = self.run_encoder(rows, lengths, longest)?;
        if longest == MAX_INPUT_LEN {
            return Ok(outputs);
        }
        let [states, keys, hidden, mask, attention] = outputs;
        let (Some(states), Some(keys), Some(mask), Some(attention)) = (
            pad_rows::<f32>(&states, lengths, longest, 0.0),
            pad_rows::<f32>(&keys, lengths, longest, 0.0),
            pad_rows::<bool>(&mask, lengths, longest, true),
            pad_rows::<f32>(&attention, lengths, longest, 0.0),
        ) else {
            return self.run_encoder(rows, lengths, MAX_INPUT_LEN);
        };
        Ok([states?, keys?, hidden, mask?, attention?])
    }

    /// One encoder run on `rows`, each padded to `width` ids.
    fn run_encoder(
        &mut self,
        rows: &[Vec<i64>],
        lengths: &[usize],
        width: usize,
    ) -> Result<[DynValue; 5]> {
        let batch = rows.len();
        let mut ids = vec![self.input.pad; batch * width];
        for ((row, tokens), &length) in ids.chunks_exact_mut(width).zip(rows).zip(lengths) {
            row[..length].copy_from_slice(&tokens[..length]);
        }
        let ids = Tensor::from_array(([batch, width], ids)).map_err(inference)?;
        let lengths: Vec<i64> = lengths.iter().map(|&l| l as i64).collect();
        let lengths = Tensor::from_array(([batch], lengths)).map_err(inference)?;
        let mut encoded = self
            .encoder
            .run(ort::inputs![
                INPUT_IDS => ids,
                INPUT_LENGTHS => lengths,
            ])
            .map_err(|e| Error::Inference(format!("G2P encoder: {e}")))?;
        let mut take = |name: &str| {
            encoded.remove(name).ok_or_else(|| {
                Error::Inference(format!("G2P encoder: no output '{name}' came back"))
            })
        };
        let names = &self.names.encoder_outputs;
        Ok([
            take(&names[0])?,
            take(&names[1])?,
            take(&names[2])?,
            take(&names[3])?,
            take(&names[4])?,
        ])
    }
}

/// `value` (`[batch, width, ...]`) with its second axis padded to [`MAX_INPUT_LEN`]: each
/// row's first `lengths[row]` positions kept, every other position `fill`. `None` when the
/// value is not of that shape (then hama's padding is used instead).
fn pad_rows<T>(
    value: &DynValue,
    lengths: &[usize],
    width: usize,
    fill: T,
) -> Option<Result<DynValue>>
where
    T: ort::value::PrimitiveTensorElementType + Copy + std::fmt::Debug + 'static,
{
    let (shape, data) = value.try_extract_tensor::<T>().ok()?;
    if shape.len() < 2 || shape[0] != lengths.len() as i64 || shape[1] != width as i64 {
        return None;
    }
    let inner: usize = shape[2..].iter().map(|&d| d as usize).product();
    let mut padded = vec![fill; lengths.len() * MAX_INPUT_LEN * inner];
    for (row, &length) in lengths.iter().enumerate() {
        let from = row * width * inner;
        let to = row * MAX_INPUT_LEN * inner;
        padded[to..to + length * inner].copy_from_slice(&data[from..from + length * inner]);
    }
    let mut dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    dims[1] = MAX_INPUT_LEN;
    Some(
        Tensor::from_array((dims, padded))
            .map(Tensor::into_dyn)
            .map_err(inference),
    )
}

fn inference(e: ort::Error) -> Error {
    Error::Inference(format!("G2P: {e}"))
}

impl OutputVocabulary {
    /// From `g2p_vocab.json`'s `decoder` list; the special ids are each token's last index,
    /// as Python's `{token: index}` map gives them.
    fn new(tokens: Vec<String>) -> Result<Self, String> {
        let last = |wanted: &str| {
            tokens
                .iter()
                .rposition(|t| t == wanted)
                .map(|i| i as i64)
                .ok_or_else(|| format!("the decoder vocabulary has no {wanted}"))
        };
        Ok(Self {
            pad: last("<pad>")?,
            sos: last("<sos>")?,
            eos: last("<eos>")?,
            tokens,
        })
    }

    /// `G2PModel._decode`: stop at `<eos>`, skip `<pad>`, skip `<sos>` only before the first
    /// token; every other id is its token.
    fn decode(&self, ids: &[i64], out: &mut Vec<String>) -> Result<()> {
        let start = out.len();
        for &id in ids {
            if id == self.eos {
                break;
            }
            if id == self.pad || (id == self.sos && out.len() == start) {
                continue;
            }
            let token = usize::try_from(id)
                .ok()
                .and_then(|i| self.tokens.get(i))
                .ok_or_else(|| {
                    Error::Inference(format!(
                        "G2P decoder: token id {id} is outside its vocabulary of {}",
                        self.tokens.len()
                    ))
                })?;
            out.push(token.clone());
        }
        Ok(())
    }
}

/// An ONNX Runtime session of `path`, with `threads` intra-op threads of its own (0: the
/// process's shared pool), as the acoustic model's sessions are built but for the
/// optimisation level.
fn open_session(path: &Path, what: &'static str, threads: usize) -> Result<Session> {
    let metadata = std::fs::metadata(path).map_err(|e| Error::io(what, path, e))?;
    if !metadata.is_file() {
        return Err(Error::invalid(what, path, "not a regular file"));
    }
    let env = runtime::environment()?;
    Session::builder(env)
        // ORT_ENABLE_ALL, what Python's onnxruntime uses by default (`ort`'s Level3 is
        // ORT_ENABLE_LAYOUT): other fusions round differently, and a near tie can then pick
        // another token than hama does.
        .and_then(|b| {
            b.with_optimization_level(GraphOptimizationLevel::All)
                .map_err(Into::into)
        })
        .and_then(|b| match threads {
            0 => Ok(b),
            n => b
                .with_independent_thread_pool()
                .map_err(Into::into)
                .and_then(|b| b.with_intra_threads(n).map_err(Into::into))
                .and_then(|b| b.with_inter_threads(1).map_err(Into::into)),
        })
        .map_err(|e| {
            Error::Runtime(format!(
                "{what} {}: cannot configure ONNX Runtime: {e}",
                path.display()
            ))
        })?
        .commit_from_file(path)
        .map_err(|e| Error::invalid(what, path, format!("not a loadable ONNX model: {e}")))
}

/// The encoder's inputs, which hama feeds by these exact names.
const INPUT_IDS: &str = "input_ids";
const INPUT_LENGTHS: &str = "input_lengths";

/// One tensor hama reads or feeds: the name it asks for, the names it falls back to, and
/// the element type and rank it must have.
struct Wanted {
    primary: &'static str,
    fallbacks: &'static [&'static str],
    ty: TensorElementType,
    rank: usize,
    /// The batch axis, or `None` for a tensor hama shares across the batch.
    batch_axis: Option<usize>,
}

const fn wanted(
    primary: &'static str,
    fallbacks: &'static [&'static str],
    ty: TensorElementType,
    rank: usize,
    batch_axis: Option<usize>,
) -> Wanted {
    Wanted {
        primary,
        fallbacks,
        ty,
        rank,
        batch_axis,
    }
}

use TensorElementType::{Bool, Float32, Int64};

const ENCODER_INPUTS: [Wanted; 2] = [
    wanted(INPUT_IDS, &[], Int64, 2, Some(0)),
    wanted(INPUT_LENGTHS, &[], Int64, 1, Some(0)),
];
/// `_ensure_split_name_maps`' encoder outputs, in the order [`Names`] keeps them.
const ENCODER_OUTPUTS: [Wanted; 5] = [
    wanted("encoder_outputs", &[], Float32, 3, Some(0)),
    wanted("projected_keys", &[], Float32, 3, Some(0)),
    wanted("hidden", &[], Float32, 3, Some(1)),
    wanted("encoder_mask", &[], Bool, 2, Some(0)),
    wanted("prev_attn", &[], Float32, 2, Some(0)),
];
const DECODER_INPUTS: [Wanted; 7] = [
    wanted("decoder_input_ids", &[], Int64, 2, Some(0)),
    wanted("encoder_outputs", &[], Float32, 3, Some(0)),
    wanted("projected_keys", &[], Float32, 3, Some(0)),
    wanted("encoder_mask", &[], Bool, 2, Some(0)),
    wanted("prev_attn", &["prev_attn_in"], Float32, 2, Some(0)),
    wanted("hidden", &["hidden_in"], Float32, 3, Some(1)),
    wanted("positions", &[], Float32, 2, None),
];
const DECODER_OUTPUTS: [Wanted; 4] = [
    wanted("next_token_ids", &[], Int64, 1, Some(0)),
    wanted("hidden_out", &["hidden"], Float32, 3, Some(1)),
    wanted("prev_attn_out", &["prev_attn"], Float32, 2, Some(0)),
    wanted("attn_argmax", &[], Int64, 1, Some(0)),
];
/// Which encoder output feeds which decoder input (indices into the lists above), whose
/// fixed sizes must agree for the two files to belong together.
const FED: [(usize, usize); 5] = [(0, 1), (1, 2), (2, 5), (3, 3), (4, 4)];

/// The graphs' tensor names as hama resolves them.
struct Names {
    encoder_outputs: [String; 5],
    decoder_inputs: [String; 7],
    decoder_outputs: [String; 4],
}

impl Names {
    /// Resolves every name hama uses, checks each tensor's type and rank and that the two
    /// graphs fit together; also whether every batch axis is dynamic.
    fn inspect(
        encoder: &Session,
        decoder: &Session,
        encoder_path: &Path,
        decoder_path: &Path,
    ) -> Result<(Self, bool)> {
        let mut batches = true;
        let mut check = |outlets: &[ort::value::Outlet],
                         wanted: &[Wanted],
                         kind: &str,
                         what: &'static str,
                         path: &Path|
         -> Result<Vec<usize>> {
            let names: Vec<&str> = outlets.iter().map(|o| o.name()).collect();
            let mut found = Vec::with_capacity(wanted.len());
            for w in wanted {
                let index = resolve_name(&names, w.primary, w.fallbacks)
                    .filter(|&i| matches_type(outlets[i].dtype(), w))
                    .ok_or_else(|| {
                        Error::invalid(
                            what,
                            path,
                            format!(
                                "no {kind} '{}' ({}); its {kind}s are: {}",
                                w.primary,
                                describe_wanted(w),
                                describe(outlets)
                            ),
                        )
                    })?;
                if let (Some(axis), ValueType::Tensor { shape, .. }) =
                    (w.batch_axis, outlets[index].dtype())
                {
                    batches &= shape[axis] < 0;
                }
                found.push(index);
            }
            Ok(found)
        };
        let encoder_inputs = check(
            encoder.inputs(),
            &ENCODER_INPUTS,
            "input",
            ENCODER_WHAT,
            encoder_path,
        )?;
        let encoder_outputs = check(
            encoder.outputs(),
            &ENCODER_OUTPUTS,
            "output",
            ENCODER_WHAT,
            encoder_path,
        )?;
        let decoder_inputs = check(
            decoder.inputs(),
            &DECODER_INPUTS,
            "input",
            DECODER_WHAT,
            decoder_path,
        )?;
        let decoder_outputs = check(
            decoder.outputs(),
            &DECODER_OUTPUTS,
            "output",
            DECODER_WHAT,
            decoder_path,
        )?;
        // hama feeds exactly these; an input it does not know would be missing from its run.
        for (session, used, what, path) in [
            (encoder, &encoder_inputs, ENCODER_WHAT, encoder_path),
            (decoder, &decoder_inputs, DECODER_WHAT, decoder_path),
        ] {
            if let Some((_, extra)) = session
                .inputs()
                .iter()
                .enumerate()
                .find(|(i, _)| !used.contains(i))
            {
                return Err(Error::invalid(
                    what,
                    path,
                    format!(
                        "unexpected input '{}' {}; hama's G2P feeds only {}",
                        extra.name(),
                        describe_type(extra.dtype()),
                        used.iter()
                            .map(|&i| session.inputs()[i].name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        for (from, to) in FED {
            let produced = encoder.outputs()[encoder_outputs[from]].dtype();
            let fed = decoder.inputs()[decoder_inputs[to]].dtype();
            if let (ValueType::Tensor { shape: a, .. }, ValueType::Tensor { shape: b, .. }) =
                (produced, fed)
                && a.iter()
                    .zip(b.iter())
                    .any(|(&x, &y)| x >= 0 && y >= 0 && x != y)
            {
                return Err(Error::invalid(
                    DECODER_WHAT,
                    decoder_path,
                    format!(
                        "input '{}' is {:?} but the encoder {} gives '{}' as {:?}: not the decoder of this encoder",
                        decoder.inputs()[decoder_inputs[to]].name(),
                        &b[..],
                        encoder_path.display(),
                        encoder.outputs()[encoder_outputs[from]].name(),
                        &a[..]
                    ),
                ));
            }
        }
        let names = |outlets: &[ort::value::Outlet], found: &[usize]| -> Vec<String> {
            found
                .iter()
                .map(|&i| outlets[i].name().to_string())
                .collect()
        };
        Ok((
            Self {
                encoder_outputs: names(encoder.outputs(), &encoder_outputs)
                    .try_into()
                    .expect("five encoder outputs"),
                decoder_inputs: names(decoder.inputs(), &decoder_inputs)
                    .try_into()
                    .expect("seven decoder inputs"),
                decoder_outputs: names(decoder.outputs(), &decoder_outputs)
                    .try_into()
                    .expect("four decoder outputs"),
            },
            batches,
        ))
    }
}

/// hama's `_resolve_name`: the primary name, else the first fallback present, else the names
/// starting with the primary (the one, or the one starting with `primary.`, or the first).
fn resolve_name(available: &[&str], primary: &str, fallbacks: &[&str]) -> Option<usize> {
    let position = |wanted: &str| available.iter().position(|&name| name == wanted);
    if let Some(i) = position(primary) {
        return Some(i);
    }
    if let Some(i) = fallbacks.iter().find_map(|f| position(f)) {
        return Some(i);
    }
    // `startswith(f"{primary}.") or startswith(primary)` is just `startswith(primary)`.
    let prefixed: Vec<usize> = (0..available.len())
        .filter(|&i| available[i].starts_with(primary))
        .collect();
    if prefixed.len() <= 1 {
        return prefixed.first().copied();
    }
    let dotted = format!("{primary}.");
    let numeric: Vec<usize> = prefixed
        .iter()
        .copied()
        .filter(|&i| available[i].starts_with(&dotted))
        .collect();
    Some(if numeric.len() == 1 {
        numeric[0]
    } else {
        prefixed[0]
    })
}

fn matches_type(t: &ValueType, w: &Wanted) -> bool {
    matches!(t, ValueType::Tensor { ty, shape, .. } if *ty == w.ty && shape.len() == w.rank)
}

fn describe_wanted(w: &Wanted) -> String {
    let ty = match w.ty {
        Int64 => "int64",
        Float32 => "float32",
        Bool => "bool",
        _ => "?",
    };
    format!("{ty}, {} dimensions", w.rank)
}

fn describe(outlets: &[ort::value::Outlet]) -> String {
    outlets
        .iter()
        .map(|o| format!("{} {}", o.name(), describe_type(o.dtype())))
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe_type(t: &ValueType) -> String {
    match t {
        ValueType::Tensor { ty, shape, .. } => format!("{ty:?} {:?}", &shape[..]),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_as_hama_resolves_them() {
        let names = [
            "hidden_out",
            "prev_attn_out",
            "next_token_ids",
            "attn_argmax",
        ];
        assert_eq!(resolve_name(&names, "hidden_out", &["hidden"]), Some(0));
        assert_eq!(resolve_name(&names, "next_token_ids", &[]), Some(2));
        assert_eq!(
            resolve_name(&["hidden"], "hidden_out", &["hidden"]),
            Some(0)
        );
        assert_eq!(
            resolve_name(&["a", "hidden_in"], "hidden", &["hidden_in"]),
            Some(1)
        );
        // Prefix matches: the only one, else the only `primary.` one, else the first.
        assert_eq!(resolve_name(&["x", "hidden.1"], "hidden", &[]), Some(1));
        assert_eq!(
            resolve_name(&["hiddenx", "hidden.1"], "hidden", &[]),
            Some(1)
        );
        assert_eq!(
            resolve_name(&["hiddenx", "hiddeny"], "hidden", &[]),
            Some(0)
        );
        assert_eq!(
            resolve_name(&["hidden.1", "hidden.2", "hiddenx"], "hidden", &[]),
            Some(0)
        );
        assert_eq!(resolve_name(&["other"], "hidden", &[]), None);
    }

    #[test]
    fn decoding_skips_and_stops_as_hama_does() {
        let tokens: Vec<String> = ["<pad>", "<sos>", "<eos>", "<unk>", " ", "a", "b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let v = OutputVocabulary::new(tokens).unwrap();
        let decode = |ids: &[i64]| {
            let mut out = Vec::new();
            v.decode(ids, &mut out).map(|()| out)
        };
        assert_eq!(decode(&[1, 5, 0, 4, 6, 2, 5]).unwrap(), ["a", " ", "b"]);
        // <sos> after the first token is a token like any other; <unk> too.
        assert_eq!(decode(&[5, 1, 3]).unwrap(), ["a", "<sos>", "<unk>"]);
        assert_eq!(decode(&[1, 1, 2]).unwrap(), Vec::<String>::new());
        assert!(decode(&[7]).is_err());
        assert!(decode(&[-1]).is_err());
    }
}

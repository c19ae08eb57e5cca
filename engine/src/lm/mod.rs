// SPDX-License-Identifier: MPL-2.0
//! Word n-gram language model in ARPA format (plain or gzip), for the beam-search decoder.
//!
//! ARPA is the interchange format of KenLM (`lmplz`), SRILM and `tools/lm/build_lm.py`:
//! sections `\N-grams:` of lines `log10(p) <tab> w1 .. wN [<tab> log10(backoff)]`. Scores
//! follow the usual back-off rule: `p(w | h) = p(h w)` if that n-gram is listed, otherwise
//! `backoff(h) * p(w | h minus its oldest word)`, down to the unigram (or `<unk>`).
//!
//! The model also holds a character trie of its vocabulary, so the decoder can keep only
//! hypotheses that spell (the start of) a known word.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, OnceLock, Weak};

use crate::error::{Error, Result};

mod arpa;
mod cache;
mod hash;
mod table;

use arpa::Tables;
pub use arpa::{MAX_LINE_BYTES, MAX_ORDER};
pub use cache::{CACHE_VARIABLE, LmCache};
pub(crate) use hash::FastMap;
use table::NgramTable;

/// ARPA stores log10; the decoder adds natural logs (CTC log-probs).
const LN_10: f32 = std::f32::consts::LN_10;
/// A gzipped ARPA file may decompress to at most this many times its size.
pub const MAX_GZIP_RATIO: u64 = 64;
/// Score of a word when the model has no `<unk>` entry: practically impossible (log10 -100,
/// like KenLM's default for `<s>` as a predicted word).
const MISSING_UNK_LOG10: f32 = -100.0;

/// The sentence-start marker (a context, never predicted).
pub const SENTENCE_START: &str = "<s>";
/// The sentence-end marker, scored at the end of a stream.
pub const SENTENCE_END: &str = "</s>";
/// The unknown word, the score of any word outside the vocabulary.
pub const UNKNOWN: &str = "<unk>";

/// Word index in the model's vocabulary.
pub type WordId = u32;

/// A language model that knows no word (`<unk>`, `<s>` and `</s>` only): the beam search's
/// LM when it runs without one (hotwords alone bias it), every word an unknown word.
pub fn empty() -> Arc<NgramModel> {
    static EMPTY: std::sync::LazyLock<Arc<NgramModel>> = std::sync::LazyLock::new(|| {
        let arpa = "\\data\\\nngram 1=3\n\n\\1-grams:\n0\t<unk>\n-99\t<s>\n0\t</s>\n\n\\end\\\n";
        Arc::new(NgramModel::parse(arpa.as_bytes()).expect("the empty ARPA model parses"))
    });
    Arc::clone(&EMPTY)
}

/// Loads `path`, or returns the copy already loaded by this process (element instances
/// share one: a model takes tens of megabytes and a second to load).
pub fn load_shared(path: &Path) -> Result<Arc<NgramModel>> {
    static LOADED: LazyLock<Mutex<HashMap<PathBuf, Weak<NgramModel>>>> =
        LazyLock::new(Default::default);
    let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    // A poisoned lock only means another thread panicked while loading: the map is intact.
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(model) = loaded.get(&key).and_then(Weak::upgrade) {
        return Ok(model);
    }
    let model = Arc::new(NgramModel::load(path)?);
    loaded.retain(|_, weak| weak.strong_count() > 0);
    loaded.insert(key, Arc::downgrade(&model));
    Ok(model)
}

/// A language model loading on a thread of its own, so that it loads while the acoustic model
/// does (the bundled LM takes about as long as the ONNX Runtime session).
#[derive(Debug)]
pub struct Loading(std::thread::JoinHandle<Result<Arc<NgramModel>>>);

impl Loading {
    /// Starts loading `path` into the process's cache ([`load_shared`]); `None` when no
    /// thread can be started (then it loads when first needed, as without this).
    pub fn start(path: PathBuf) -> Option<Self> {
        std::thread::Builder::new()
            .name("quartznetstt-lm".into())
            .spawn(move || load_shared(&path))
            .ok()
            .map(Self)
    }

    /// The loaded model (hold it until the decoder is built, so the cache keeps it), or why
    /// it could not be loaded.
    pub fn wait(self) -> Result<Arc<NgramModel>> {
        self.0.join().unwrap_or_else(|_| {
            Err(Error::Runtime(
                "internal error: the language model's loading thread panicked".into(),
            ))
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Natural log of the probability.
    logprob: f32,
    /// Natural log of the back-off weight (0 when absent).
    backoff: f32,
}

/// Node of the spelling trie: the word ending here, its children
/// (`NgramModel::children[first_child..first_child + children]`), and the node one character
/// shorter with that character, so a prefix's text can be recovered without storing it in
/// every hypothesis.
#[derive(Debug, Default, Clone)]
struct TrieNode {
    word: Option<WordId>,
    first_child: u32,
    children: u32,
    parent: TrieState,
    last: char,
}

/// Position in the spelling trie (the root is the empty prefix).
pub type TrieState = u32;

/// A back-off word n-gram model with a spelling trie of its vocabulary.
#[derive(Debug)]
pub struct NgramModel {
    order: usize,
    ids: FastMap<String, WordId>,
    /// Each id's word (`ids` inverted).
    words: Vec<Box<str>>,
    /// `grams[n - 1]`: the n-grams, keyed by word ids (oldest first).
    grams: Vec<NgramTable>,
    unknown_logprob: f32,
    sentence_start: WordId,
    sentence_end: WordId,
    nodes: Vec<TrieNode>,
    /// Every node's children as (character, node), grouped by parent.
    children: Vec<(char, TrieState)>,
    /// Whether the tables came from a compiled copy rather than the ARPA text.
    from_cache: bool,
    /// [`Self::trie_lookahead`] without and with `<s>` as the context, each made when first
    /// asked for.
    lookahead: [OnceLock<Box<[f32]>>; 2],
}

impl NgramModel {
    /// Loads an ARPA file; gzip-compressed files (any name) are recognised by their magic.
    /// Goes through the user's cache of parsed models ([`LmCache::user`]).
    pub fn load(path: &Path) -> Result<Self> {
        Self::load_cached(path, LmCache::user().as_ref())
    }

    /// Loads an ARPA file from its compiled copy in `cache` when that copy is of this version
    /// of the file, else parses the file and (best effort) writes the copy.
    pub fn load_cached(path: &Path, cache: Option<&LmCache>) -> Result<Self> {
        const WHAT: &str = "language model";
        let describe = |e: std::io::Error| Error::io(WHAT, path, e);
        // A FIFO would block forever and a device would never end: only regular files.
        let metadata = std::fs::metadata(path).map_err(describe)?;
        if !metadata.is_file() {
            return Err(Error::invalid(WHAT, path, "not a regular file"));
        }
        if let Some(tables) = cache.and_then(|c| c.read(path, &metadata))
            && let Ok(mut model) = Self::from_tables(tables)
        {
            model.from_cache = true;
            return Ok(model);
        }
        let tables = Self::read_file(path, &metadata)?;
        if let Some(cache) = cache {
            // A copy that cannot be written only costs the next load this parse.
            let _ = cache.write(path, &metadata, &tables);
        }
        Self::from_tables(tables).map_err(|e| Error::invalid(WHAT, path, e))
    }

    /// The n-gram tables of an ARPA file, plain or gzipped.
    fn read_file(path: &Path, metadata: &std::fs::Metadata) -> Result<Tables> {
        const WHAT: &str = "language model";
        let describe = |e: std::io::Error| Error::io(WHAT, path, e);
        let invalid = |reason: String| Error::invalid(WHAT, path, reason);
        let mut file = BufReader::new(File::open(path).map_err(describe)?);
        let gzip = file
            .fill_buf()
            .map_err(describe)?
            .starts_with(&[0x1f, 0x8b]);
        if !gzip {
            return arpa::read(file).map_err(invalid);
        }
        // ARPA text compresses about 4 to 10 times; a file that inflates far beyond that is
        // not a language model, so stop reading it there rather than fill the memory.
        let limit = metadata.len().saturating_mul(MAX_GZIP_RATIO);
        let mut inflated = flate2::bufread::GzDecoder::new(file).take(limit.saturating_add(1));
        let result = arpa::read(BufReader::new(&mut inflated));
        if inflated.limit() == 0 {
            return Err(invalid(format!(
                "decompresses to more than {MAX_GZIP_RATIO} times its size"
            )));
        }
        result.map_err(invalid)
    }

    /// Parses ARPA text.
    pub fn parse(reader: impl Read) -> Result<Self> {
        Self::parse_arpa(reader).map_err(|reason| Error::Invalid {
            what: "language model",
            name: "ARPA text".into(),
            reason,
        })
    }

    fn parse_arpa(reader: impl Read) -> Result<Self, String> {
        Self::from_tables(arpa::read(reader)?)
    }

    fn from_tables(tables: Tables) -> Result<Self, String> {
        let Tables { ids, grams } = tables;
        let id_of = |w: &str| ids.get(w).copied();
        let unknown_logprob = id_of(UNKNOWN)
            .and_then(|id| grams[0].get(&[id]))
            .map_or(MISSING_UNK_LOG10 * LN_10, |e| e.logprob);
        let sentence_start = id_of(SENTENCE_START).ok_or("no <s> unigram")?;
        let sentence_end = id_of(SENTENCE_END).ok_or("no </s> unigram")?;
        let mut words: Vec<Box<str>> = vec![Box::from(""); ids.len()];
        for (word, &id) in &ids {
            words[id as usize] = word.as_str().into();
        }

        let mut model = Self {
            order: grams.len(),
            ids,
            words,
            grams,
            unknown_logprob,
            sentence_start,
            sentence_end,
            nodes: vec![TrieNode::default()],
            children: Vec::new(),
            from_cache: false,
            lookahead: Default::default(),
        };
        model.build_trie();
        Ok(model)
    }

    fn build_trie(&mut self) {
        // Words in id order (the file's), so states do not depend on hashing.
        let mut edges: FastMap<(TrieState, char), TrieState> = FastMap::default();
        for (id, word) in self.words.iter().enumerate() {
            if word.starts_with('<') {
                continue;
            }
            let mut state: TrieState = 0;
            for c in word.chars() {
                state = *edges.entry((state, c)).or_insert_with(|| {
                    self.nodes.push(TrieNode {
                        parent: state,
                        last: c,
                        ..TrieNode::default()
                    });
                    (self.nodes.len() - 1) as TrieState
                });
            }
            self.nodes[state as usize].word = Some(id as WordId);
        }
        // Each node's children side by side, sorted by character: a step scans a few
        // neighbouring entries instead of hashing.
        let mut sorted: Vec<(TrieState, char, TrieState)> = edges
            .into_iter()
            .map(|((from, c), to)| (from, c, to))
            .collect();
        sorted.sort_unstable();
        self.children = sorted.iter().map(|&(_, c, to)| (c, to)).collect();
        for (i, &(from, _, _)) in sorted.iter().enumerate() {
            let node = &mut self.nodes[from as usize];
            if node.children == 0 {
                node.first_child = i as u32;
            }
            node.children += 1;
        }
    }

    /// Whether this model was read from its compiled copy in an [`LmCache`] (a fast load)
    /// rather than parsed from the ARPA text.
    pub fn loaded_from_cache(&self) -> bool {
        self.from_cache
    }

    /// The highest n-gram order.
    pub fn order(&self) -> usize {
        self.order
    }

    /// Words in the vocabulary (including `<s>`, `</s>` and `<unk>` if listed).
    pub fn vocabulary_size(&self) -> usize {
        self.ids.len()
    }

    /// The id of `word`, if it is in the vocabulary.
    pub fn word_id(&self, word: &str) -> Option<WordId> {
        self.ids.get(word).copied()
    }

    /// The id of `<s>`.
    pub fn sentence_start(&self) -> WordId {
        self.sentence_start
    }

    /// The id of `</s>`.
    pub fn sentence_end(&self) -> WordId {
        self.sentence_end
    }

    /// Number of spelling prefixes (trie states are `0..trie_size()`).
    pub fn trie_size(&self) -> usize {
        self.nodes.len()
    }

    /// The empty spelling prefix.
    pub fn trie_root(&self) -> TrieState {
        0
    }

    /// Extends a spelling prefix by `text`; `None` if no vocabulary word starts that way.
    pub fn trie_step(&self, mut state: TrieState, text: &str) -> Option<TrieState> {
        for c in text.chars() {
            let node = self.nodes.get(state as usize)?;
            let first = node.first_child as usize;
            let children = self.children.get(first..first + node.children as usize)?;
            state = children.iter().find(|&&(label, _)| label == c)?.1;
        }
        Some(state)
    }

    /// The word spelled by exactly this prefix, if any.
    pub fn trie_word(&self, state: TrieState) -> Option<WordId> {
        self.nodes.get(state as usize).and_then(|n| n.word)
    }

    /// For every spelling prefix, the highest log-probability (natural log) of a vocabulary
    /// word it starts, as a unigram or, with `after_start`, after `<s>` (minus infinity where
    /// no word is: the root of an empty vocabulary). The beam search's look-ahead
    /// ("smearing"); computed once per model and context.
    pub fn trie_lookahead(&self, after_start: bool) -> &[f32] {
        self.lookahead[usize::from(after_start)].get_or_init(|| {
            let context: &[WordId] = if after_start {
                &[self.sentence_start]
            } else {
                &[]
            };
            let mut best = vec![f32::NEG_INFINITY; self.nodes.len()];
            for (state, node) in self.nodes.iter().enumerate() {
                if let Some(word) = node.word {
                    best[state] = self.log_prob(context, Some(word));
                }
            }
            // Nodes are numbered after their parents: one pass from the end carries each
            // node's best up to its parent after all of its children have.
            for state in (1..self.nodes.len()).rev() {
                let parent = self.nodes[state].parent as usize;
                best[parent] = best[parent].max(best[state]);
            }
            best.into()
        })
    }

    /// The text of a spelling prefix (empty for the root or a state not in the trie).
    pub(crate) fn trie_text(&self, mut state: TrieState) -> String {
        let mut chars = Vec::new();
        while state != 0
            && let Some(node) = self.nodes.get(state as usize)
        {
            chars.push(node.last);
            state = node.parent;
        }
        chars.iter().rev().collect()
    }

    /// The word with this id (empty for an id not in the vocabulary).
    pub(crate) fn word_text(&self, id: WordId) -> &str {
        self.words.get(id as usize).map_or("", |w| w)
    }

    /// Natural log of `p(word | context)`; `context` holds the preceding words, oldest first
    /// (only the last `order - 1` matter). `None` as the word means `<unk>`.
    pub fn log_prob(&self, context: &[WordId], word: Option<WordId>) -> f32 {
        let Some(word) = word else {
            return self.unknown_logprob;
        };
        let context = &context[context.len().saturating_sub(self.order - 1)..];
        // On the stack: this runs for every word every hypothesis completes.
        let mut buffer = [0 as WordId; MAX_ORDER];
        let n = context.len() + 1;
        buffer[..context.len()].copy_from_slice(context);
        buffer[context.len()] = word;
        let mut backoff = 0.0;
        for start in 0..n {
            let key = &buffer[start..n];
            if let Some(e) = self.grams[key.len() - 1].get(key) {
                return backoff + e.logprob;
            }
            // Not listed: back off from this history (its weight, if the history is listed).
            let history = &key[..key.len() - 1];
            if !history.is_empty()
                && let Some(h) = self.grams[history.len() - 1].get(history)
            {
                backoff += h.backoff;
            }
        }
        backoff + self.unknown_logprob
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const TOY: &str = "\\data\\
ngram 1=6
ngram 2=4
ngram 3=1

\\1-grams:
-1.0\t<unk>
-99\t<s>\t-0.5
-0.5\t</s>
-0.7\tthe\t-0.3
-1.2\tcat\t-0.2
-1.5\tcar

\\2-grams:
-0.4\t<s> the\t-0.1
-0.3\tthe cat
-0.6\tcat </s>
-0.9\tthe car

\\3-grams:
-0.05\t<s> the cat

\\end\\
";

    fn toy() -> NgramModel {
        NgramModel::parse(TOY.as_bytes()).unwrap()
    }

    fn close(a: f32, b: f32) {
        assert!((a - b).abs() < 1e-5, "{a} != {b}");
    }

    #[test]
    fn listed_ngrams_score_directly() {
        let m = toy();
        let id = |w| m.word_id(w).unwrap();
        assert_eq!(m.order(), 3);
        close(
            m.log_prob(&[id("<s>"), id("the")], Some(id("cat"))),
            -0.05 * LN_10,
        );
        close(m.log_prob(&[id("the")], Some(id("car"))), -0.9 * LN_10);
        close(m.log_prob(&[], Some(id("cat"))), -1.2 * LN_10);
    }

    #[test]
    fn unlisted_ngrams_back_off() {
        let m = toy();
        let id = |w| m.word_id(w).unwrap();
        // "<s> the car": trigram missing -> backoff(<s> the) + p(car | the).
        close(
            m.log_prob(&[id("<s>"), id("the")], Some(id("car"))),
            (-0.1 - 0.9) * LN_10,
        );
        // "cat the": bigram missing -> backoff(cat) + p(the).
        close(
            m.log_prob(&[id("cat")], Some(id("the"))),
            (-0.2 - 0.7) * LN_10,
        );
        // A context longer than order - 1 only uses its last two words.
        close(
            m.log_prob(&[id("car"), id("<s>"), id("the")], Some(id("cat"))),
            -0.05 * LN_10,
        );
        close(m.log_prob(&[], None), -LN_10);
    }

    #[test]
    fn spelling_trie_knows_words_and_prefixes() {
        let m = toy();
        let ca = m.trie_step(m.trie_root(), "ca").unwrap();
        assert_eq!(m.trie_word(ca), None);
        let cat = m.trie_step(ca, "t").unwrap();
        assert_eq!(m.trie_word(cat), m.word_id("cat"));
        assert!(m.trie_step(ca, "x").is_none());
        assert!(
            m.trie_step(m.trie_root(), "<").is_none(),
            "markers are not spellable"
        );
    }

    #[test]
    fn the_lookahead_is_the_best_unigram_below() {
        let m = toy();
        let look = m.trie_lookahead(false);
        assert_eq!(look.len(), m.trie_size());
        let at = |text: &str| look[m.trie_step(m.trie_root(), text).unwrap() as usize];
        close(at(""), -0.7 * LN_10);
        close(at("ca"), -1.2 * LN_10);
        close(at("car"), -1.5 * LN_10);
        close(at("th"), -0.7 * LN_10);
        // After <s>: "the" is listed (-0.4), "cat" backs off (-0.5 + -1.2).
        let look = m.trie_lookahead(true);
        let at = |text: &str| look[m.trie_step(m.trie_root(), text).unwrap() as usize];
        close(at("th"), -0.4 * LN_10);
        close(at("ca"), -1.7 * LN_10);
    }

    #[test]
    fn a_preamble_before_the_header_is_skipped() {
        // CMU Sphinx's converter writes a line before `\data\`.
        let sphinx = format!("This is an ARPA-format language model file\n{TOY}");
        let m = NgramModel::parse(sphinx.as_bytes()).unwrap();
        assert_eq!(m.vocabulary_size(), 6);
    }

    #[test]
    fn malformed_files_are_clear_errors() {
        let err = |text: &str| NgramModel::parse(text.as_bytes()).unwrap_err().to_string();
        assert!(err("hello world\n").contains("not an ARPA file"));
        assert!(err(&TOY.replace("\\end\\\n", "")).contains("truncated"));
        assert!(err(&TOY.replace("ngram 2=4", "ngram 2=5")).contains("declares 5 2-grams"));
        assert!(err(&TOY.replace("-0.3\tthe cat", "x\tthe cat")).contains("is not a number"));
        assert!(err(&TOY.replace("-0.9\tthe car", "-0.9\tthe dog")).contains("no unigram"));
        assert!(err(&TOY.replace("-0.05\t<s> the cat", "-0.05\tthe cat")).contains("expected"));
    }

    #[test]
    fn gzip_files_load() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("toy.arpa.gz");
        let mut gz = flate2::write::GzEncoder::new(
            File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(TOY.as_bytes()).unwrap();
        gz.finish().unwrap();
        let m = NgramModel::load(&path).unwrap();
        assert_eq!(m.vocabulary_size(), 6);
        let missing = NgramModel::load(&dir.path().join("missing.arpa"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("cannot read language model"), "{missing}");
    }

    /// Files users download from anywhere: every size they declare is checked before use.
    #[test]
    fn hostile_files_are_clear_errors() {
        let err = |text: &str| NgramModel::parse(text.as_bytes()).unwrap_err().to_string();
        // A count line after the sections began (used to index past the tables).
        let late = TOY.replace("\\2-grams:", "ngram 4=0\n\\2-grams:");
        assert!(
            err(&late).contains("after the n-gram sections began"),
            "{}",
            err(&late)
        );
        // A huge declared count allocates nothing up front: the file is simply short.
        let huge = TOY.replace("ngram 1=6", "ngram 1=1000000000");
        assert!(
            err(&huge).contains("declares 1000000000 1-grams"),
            "{}",
            err(&huge)
        );
        let deep: String = (1..=17).map(|n| format!("ngram {n}=1\n")).collect();
        assert!(err(&format!("\\data\\\n{deep}")).contains("order 17"));
        let long = format!("\\data\\\nngram 1={}\n", "9".repeat(MAX_LINE_BYTES + 10));
        assert!(err(&long).contains("longer than"), "{}", err(&long));
    }

    #[test]
    fn only_regular_files_and_no_gzip_bombs() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let error = |path: &Path| NgramModel::load(path).unwrap_err().to_string();
        assert!(error(Path::new("/dev/zero")).contains("not a regular file"));
        let fifo = dir.path().join("fifo.arpa");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            assert!(error(&fifo).contains("not a regular file"));
        }
        // 8 MiB of one repeated line compresses about a thousand times.
        let bomb = dir.path().join("bomb.arpa.gz");
        let mut gz = flate2::write::GzEncoder::new(
            File::create(&bomb).unwrap(),
            flate2::Compression::best(),
        );
        gz.write_all(b"\\data\\\nngram 1=1\n\n\\1-grams:\n")
            .unwrap();
        let line = b"-1.0\tword\n".repeat(1024);
        for _ in 0..(8 << 20) / line.len() {
            gz.write_all(&line).unwrap();
        }
        gz.finish().unwrap();
        let e = error(&bomb);
        assert!(e.contains("decompresses to more than 64 times"), "{e}");
    }
}

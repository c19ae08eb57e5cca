// SPDX-License-Identifier: MPL-2.0
//! Pronunciation lexicon: the words a phoneme CTC model can write, each spelled by one or more
//! sequences of the model's labels (`docs/DECODING.md`).
//!
//! A phoneme model emits phoneme tokens and a word-boundary label (`<wb>`), not text: the beam
//! search follows this lexicon's trie of spellings, and a word is written when the boundary
//! follows one of its complete spellings. Words that share a spelling (homophones) are all
//! candidates there, and the language model chooses between them.
//!
//! File format (UTF-8, gzip-compressed if it starts with the gzip magic, any name): one
//! spelling per line, `word<TAB>token token ...`, tokens separated by single spaces, each
//! equal to one of the model's labels; a word may have several lines (its variants); lines
//! starting with `#` and empty lines are skipped.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, Weak};

use crate::error::{Error, Result};
use crate::lm::{FastMap, MAX_GZIP_RATIO};

/// How error messages name the file.
const WHAT: &str = "pronunciation lexicon";
/// Marks a node without words.
const NO_WORDS: u32 = u32::MAX;

/// Position in the spelling trie (0 is the root, the empty spelling).
pub(crate) type LexiconState = u32;

/// Node of the spelling trie. Nodes are numbered in the order they were made, so a node's
/// parent always has a smaller number (what [`PronunciationLexicon::lookahead`] relies on).
#[derive(Debug, Clone, Copy)]
struct Node {
    /// Index in `PronunciationLexicon::homophones` of the words spelled exactly here, or
    /// [`NO_WORDS`].
    words: u32,
    /// The node one label shorter ([`NO_WORDS`] for the root).
    parent: LexiconState,
    /// The label that leads here from `parent` (0 for the root).
    label: u32,
}

/// The words of a phoneme model and their spellings in its labels. Read-only once built and
/// shared between decoders ([`load_shared`]); [`Self::add_word`] adds user vocabulary before
/// that.
#[derive(Debug, Clone)]
pub struct PronunciationLexicon {
    labels: Vec<String>,
    boundary: usize,
    /// Each word's text, by word index.
    words: Vec<Box<str>>,
    ids: FastMap<Box<str>, u32>,
    nodes: Vec<Node>,
    /// Child of a node by label: key `node << 32 | label`.
    edges: FastMap<u64, LexiconState>,
    /// The words of each node that has some (several: homophones).
    homophones: Vec<Vec<u32>>,
    spellings: usize,
}

/// Loads `path` for `labels`, or returns the copy this process already loaded for the same
/// canonical path, labels and boundary (element instances share one).
pub fn load_shared(
    path: &Path,
    labels: &[String],
    boundary: &str,
) -> Result<Arc<PronunciationLexicon>> {
    type Key = (PathBuf, Vec<String>, String);
    static LOADED: LazyLock<Mutex<HashMap<Key, Weak<PronunciationLexicon>>>> =
        LazyLock::new(Default::default);
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let key = (canonical, labels.to_vec(), boundary.to_owned());
    // A poisoned lock only means another thread panicked while loading: the map is intact.
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(lexicon) = loaded.get(&key).and_then(Weak::upgrade) {
        return Ok(lexicon);
    }
    let lexicon = Arc::new(PronunciationLexicon::load(path, labels, boundary)?);
    loaded.retain(|_, weak| weak.strong_count() > 0);
    loaded.insert(key, Arc::downgrade(&lexicon));
    Ok(lexicon)
}

impl PronunciationLexicon {
    /// An empty lexicon for `labels` (the model's, without the blank) whose word boundary is
    /// the label `boundary`.
    fn empty(labels: &[String], boundary: &str) -> Result<Self> {
        let Some(boundary_index) = labels.iter().position(|l| l == boundary) else {
            return Err(Error::Settings(format!(
                "the word-boundary label {boundary:?} of the pronunciation lexicon is not one of the model's labels"
            )));
        };
        Ok(Self {
            labels: labels.to_vec(),
            boundary: boundary_index,
            words: Vec::new(),
            ids: FastMap::default(),
            nodes: vec![Node {
                words: NO_WORDS,
                parent: NO_WORDS,
                label: 0,
            }],
            edges: FastMap::default(),
            homophones: Vec::new(),
            spellings: 0,
        })
    }

    /// Reads a lexicon file (see the module's documentation for the format) for a model with
    /// `labels` (without the blank) and word-boundary label `boundary`.
    pub fn load(path: &Path, labels: &[String], boundary: &str) -> Result<Self> {
        let mut lexicon = Self::empty(labels, boundary)?;
        let bytes = read_text(path)?;
        let invalid = |line: usize, reason: String| {
            Error::invalid(WHAT, path, format!("line {line}: {reason}"))
        };
        // One validation of the whole text is much faster than one per line.
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            let line = 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            invalid(line, "not valid UTF-8".into())
        })?;
        // About one token per three bytes: room for the trie up front, not rehashed.
        lexicon.edges.reserve(text.len() / 3);
        lexicon.nodes.reserve(text.len() / 3);
        let tokens = lexicon.token_index();
        let mut spelling = Vec::new();
        for (n, line) in text.split('\n').enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((word, tokens_text)) = line.split_once('\t') else {
                return Err(invalid(
                    n + 1,
                    "expected `word<TAB>tokens`, found no tab".into(),
                ));
            };
            lexicon
                .parse_spelling(&tokens, tokens_text.split(' '), &mut spelling)
                .map_err(|reason| invalid(n + 1, reason))?;
            lexicon
                .insert(word, &spelling)
                .map_err(|reason| invalid(n + 1, reason))?;
        }
        // The guess above is generous (tokens share trie nodes): give the rest back.
        lexicon.edges.shrink_to_fit();
        lexicon.nodes.shrink_to_fit();
        Ok(lexicon)
    }

    /// A lexicon from `(word, spelling)` pairs, each spelling a list of labels (tests, or
    /// vocabulary that does not come from a file).
    pub fn from_entries(
        entries: impl IntoIterator<Item = (String, Vec<String>)>,
        labels: &[String],
        boundary: &str,
    ) -> Result<Self> {
        let mut lexicon = Self::empty(labels, boundary)?;
        let tokens = lexicon.token_index();
        for (n, (word, spelling)) in entries.into_iter().enumerate() {
            let invalid = |reason: String| Error::Invalid {
                what: WHAT,
                name: "pronunciation lexicon entries".into(),
                reason: format!("entry {} ({word:?}): {reason}", n + 1),
            };
            let mut labels = Vec::new();
            lexicon
                .parse_spelling(&tokens, spelling.iter().map(String::as_str), &mut labels)
                .map_err(invalid)?;
            lexicon.insert(&word, &labels).map_err(invalid)?;
        }
        Ok(lexicon)
    }

    /// Adds `word` spelled by `spelling` (labels); a word may have several spellings, and
    /// adding one it already has changes nothing. For user vocabulary, before the lexicon is
    /// shared.
    pub fn add_word(&mut self, word: &str, spelling: &[String]) -> Result<()> {
        let tokens = self.token_index();
        let invalid = |reason: String| {
            Error::Settings(format!(
                "cannot add the word {word:?} to the pronunciation lexicon: {reason}"
            ))
        };
        let mut labels = Vec::new();
        self.parse_spelling(&tokens, spelling.iter().map(String::as_str), &mut labels)
            .map_err(invalid)?;
        self.insert(word, &labels).map_err(invalid)
    }

    /// Each label's index, to read spellings.
    fn token_index(&self) -> FastMap<String, u32> {
        let mut index = FastMap::default();
        for (i, label) in self.labels.iter().enumerate().rev() {
            // The first of equal labels wins, as `position` would find it.
            index.insert(label.clone(), i as u32);
        }
        index
    }

    /// Sets `labels` to the labels of a spelling, or says why it is not one.
    fn parse_spelling<'a>(
        &self,
        tokens: &FastMap<String, u32>,
        spelling: impl Iterator<Item = &'a str>,
        labels: &mut Vec<u32>,
    ) -> Result<(), String> {
        labels.clear();
        for token in spelling {
            if token.is_empty() {
                return Err("empty token (tokens are separated by single spaces)".into());
            }
            let Some(&label) = tokens.get(token) else {
                return Err(format!(
                    "unknown token {token:?} (not one of the model's labels)"
                ));
            };
            if label as usize == self.boundary {
                return Err(format!(
                    "the word boundary {token:?} cannot be part of a spelling"
                ));
            }
            labels.push(label);
        }
        if labels.is_empty() {
            return Err("empty spelling".into());
        }
        Ok(())
    }

    /// Adds `word` with a checked spelling.
    fn insert(&mut self, word: &str, spelling: &[u32]) -> Result<(), String> {
        let word = word.trim();
        if word.is_empty() {
            return Err("empty word".into());
        }
        let id = match self.ids.get(word) {
            Some(&id) => id,
            None => {
                let id = u32::try_from(self.words.len())
                    .ok()
                    .filter(|&id| id < NO_WORDS)
                    .ok_or("too many words")?;
                self.words.push(word.into());
                self.ids.insert(word.into(), id);
                id
            }
        };
        let mut state = 0;
        for &label in spelling {
            let next = self.nodes.len() as LexiconState;
            state = *self
                .edges
                .entry(edge_key(state, label as usize))
                .or_insert_with(|| {
                    self.nodes.push(Node {
                        words: NO_WORDS,
                        parent: state,
                        label,
                    });
                    next
                });
        }
        let node = &mut self.nodes[state as usize];
        if node.words == NO_WORDS {
            node.words = self.homophones.len() as u32;
            self.homophones.push(Vec::new());
        }
        let words = &mut self.homophones[node.words as usize];
        if !words.contains(&id) {
            words.push(id);
            self.spellings += 1;
        }
        Ok(())
    }

    /// Number of distinct words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether the lexicon has no word.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Number of distinct (word, spelling) pairs.
    pub fn spellings(&self) -> usize {
        self.spellings
    }

    /// Whether `word` is in the lexicon.
    pub fn contains(&self, word: &str) -> bool {
        self.ids.contains_key(word)
    }

    /// The labels the spellings are written in (the model's, without the blank).
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Index of the word-boundary label.
    pub fn boundary(&self) -> usize {
        self.boundary
    }

    /// The empty spelling.
    pub(crate) fn root(&self) -> LexiconState {
        0
    }

    /// `state` extended by `label`, if some word is spelled that way.
    #[inline]
    pub(crate) fn step(&self, state: LexiconState, label: usize) -> Option<LexiconState> {
        self.edges.get(&edge_key(state, label)).copied()
    }

    /// The words spelled exactly by `state` (several: homophones).
    #[inline]
    pub(crate) fn words(&self, state: LexiconState) -> &[u32] {
        match self.nodes.get(state as usize) {
            Some(node) if node.words != NO_WORDS => &self.homophones[node.words as usize],
            _ => &[],
        }
    }

    /// The spellings of each of `words` (labels; none for a word not in the lexicon), found
    /// in one pass over the trie.
    pub(crate) fn spellings_of(&self, words: &[&str]) -> Vec<Vec<Vec<u32>>> {
        let mut wanted: FastMap<u32, Vec<usize>> = FastMap::default();
        for (i, word) in words.iter().enumerate() {
            if let Some(&id) = self.ids.get(*word) {
                wanted.entry(id).or_default().push(i);
            }
        }
        let mut found = vec![Vec::new(); words.len()];
        if wanted.is_empty() {
            return found;
        }
        for (state, node) in self.nodes.iter().enumerate() {
            if node.words == NO_WORDS {
                continue;
            }
            for id in &self.homophones[node.words as usize] {
                for &i in wanted.get(id).into_iter().flatten() {
                    found[i].push(self.spelling(state as LexiconState));
                }
            }
        }
        found
    }

    /// The labels that spell `state`.
    fn spelling(&self, mut state: LexiconState) -> Vec<u32> {
        let mut labels = Vec::new();
        while state != 0 {
            let node = self.nodes[state as usize];
            labels.push(node.label);
            state = node.parent;
        }
        labels.reverse();
        labels
    }

    /// The text of word `id` (empty for an id not in the lexicon).
    pub(crate) fn word_text(&self, id: u32) -> &str {
        self.words.get(id as usize).map_or("", |w| w)
    }

    /// Number of trie states (states are `0..state_count()`).
    #[cfg(test)]
    pub(crate) fn state_count(&self) -> usize {
        self.nodes.len()
    }

    /// For every state, the highest `score` of a word spelled by it or by a longer spelling
    /// through it, and that word (`None` only where no word is: never, but for an empty
    /// lexicon's root). The decoder's language-model look-ahead (smearing).
    pub(crate) fn lookahead(&self, score: impl Fn(u32) -> f32) -> (Vec<f32>, Vec<Option<u32>>) {
        let mut best = vec![f32::NEG_INFINITY; self.nodes.len()];
        let mut best_word = vec![None; self.nodes.len()];
        for (state, node) in self.nodes.iter().enumerate() {
            if node.words != NO_WORDS {
                for &id in &self.homophones[node.words as usize] {
                    let s = score(id);
                    if best_word[state].is_none() || s > best[state] {
                        best[state] = s;
                        best_word[state] = Some(id);
                    }
                }
            }
        }
        // Children are numbered after their parents: one pass from the end carries each
        // node's best up to its parent after all of its own children have.
        for state in (1..self.nodes.len()).rev() {
            let parent = self.nodes[state].parent as usize;
            if best_word[state].is_some()
                && (best_word[parent].is_none() || best[state] > best[parent])
            {
                best[parent] = best[state];
                best_word[parent] = best_word[state];
            }
        }
        (best, best_word)
    }
}

fn edge_key(state: LexiconState, label: usize) -> u64 {
    (u64::from(state) << 32) | label as u64
}

/// The bytes of a lexicon file, decompressed if it is gzipped.
fn read_text(path: &Path) -> Result<Vec<u8>> {
    let describe = |e: std::io::Error| Error::io(WHAT, path, e);
    // A FIFO would block forever and a device would never end: only regular files.
    let metadata = std::fs::metadata(path).map_err(describe)?;
    if !metadata.is_file() {
        return Err(Error::invalid(WHAT, path, "not a regular file"));
    }
    let bytes = std::fs::read(path).map_err(describe)?;
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes);
    }
    // A file that inflates far beyond what text compresses to is not a lexicon: stop reading
    // it there rather than fill the memory.
    let limit = (bytes.len() as u64).saturating_mul(MAX_GZIP_RATIO);
    let mut text = Vec::with_capacity(bytes.len().saturating_mul(4));
    flate2::read::GzDecoder::new(&bytes[..])
        .take(limit.saturating_add(1))
        .read_to_end(&mut text)
        .map_err(describe)?;
    if text.len() as u64 > limit {
        return Err(Error::invalid(
            WHAT,
            path,
            format!("decompresses to more than {MAX_GZIP_RATIO} times its size"),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests;

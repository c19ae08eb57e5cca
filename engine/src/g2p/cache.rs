// SPDX-License-Identifier: MPL-2.0
//! Spellings of a user's words kept in the user's cache folder, so each word is run through
//! the G2P once per model rather than at every load (a word costs about a millisecond, a
//! vocabulary can list 100,000 of them, and loading the G2P itself costs more than reading
//! a cached spelling).
//!
//! One file per G2P model, named by a hash of the model's three files (their content, not
//! their path or time: a model copied elsewhere keeps its spellings, a changed one gets a
//! new file), holding every word spelled with it so far. A file that is unreadable,
//! truncated, fails its checksum or belongs to other files is ignored and rewritten: the
//! cache can cost a G2P run, never give a wrong spelling. Files are written to a temporary
//! file and renamed, so a concurrent load never reads half a file. Same conventions as the
//! compiled language models (`lm/cache.rs`).

use std::collections::HashMap;
use std::ffi::OsString;
use std::hash::Hasher;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{DECODER_FILE, ENCODER_FILE, G2p, MAX_INPUT_LEN, MAX_OUTPUT_LEN, VOCABULARY_FILE};
use crate::cache_dir::Cursor;
use crate::error::{Error, Result};

/// Names the format; a file in any other format (an older build's) is rewritten.
const MAGIC: &[u8; 8] = b"QZNG2Pv1";
/// Environment variable: the cache folder, or `off` (also `0` or empty) for no cache.
pub const CACHE_VARIABLE: &str = "QUARTZNETSTT_G2P_CACHE";
/// Most words one file keeps. Past this the file is rewritten with only the words of the
/// current load, so a cache fed with ever-changing lists stays bounded.
const MAX_CACHED_WORDS: usize = 4 * super::MAX_WORDS;
/// Seed of the model hash and the checksum (fixed: both must agree between processes).
const SEED: u64 = 0x5155_4732_5043_4143;
/// Bump when the spelling rules in this module change, so older spellings are not reused.
const RULES_VERSION: u64 = 1;

/// Where spellings of users' words are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct G2pCache {
    dir: PathBuf,
}

/// The spellings of a list of words and how they were obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spellings {
    /// Each word given, in order, with its phoneme tokens.
    pub words: Vec<(String, Vec<String>)>,
    /// How many of them were run through the G2P now (the rest came from the cache).
    pub spelled: usize,
    /// The cache file, when a cache is used.
    pub file: Option<PathBuf>,
}

impl G2pCache {
    /// A cache in `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The user's cache: `$QUARTZNETSTT_G2P_CACHE` if set (`off`, `0` or empty: none), else
    /// `$XDG_CACHE_HOME/quartznetstt/g2p` (default `~/.cache/quartznetstt/g2p`). `None`
    /// without any of these variables.
    pub fn user() -> Option<Self> {
        Self::from_env(|name| std::env::var_os(name))
    }

    fn from_env(var: impl Fn(&str) -> Option<OsString>) -> Option<Self> {
        let dir = crate::cache_dir::user_cache_dir(var, CACHE_VARIABLE, "g2p")?;
        Some(Self { dir })
    }

    /// The cache folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cache file of the G2P model in `g2p_dir` (whether or not it exists yet). Reads
    /// the model's files to identify them.
    pub fn file(&self, g2p_dir: &Path) -> Result<PathBuf> {
        Ok(self.entry(&Identity::of(g2p_dir)?))
    }

    fn entry(&self, identity: &Identity) -> PathBuf {
        self.dir.join(format!("{:016x}.g2p", identity.hash))
    }

    /// The spellings in the file of `identity`; empty when there is no valid one.
    fn read(&self, identity: &Identity) -> HashMap<String, Vec<String>> {
        std::fs::read(self.entry(identity))
            .ok()
            .and_then(|bytes| decode(&bytes, identity))
            .unwrap_or_default()
    }

    /// Writes the file of `identity`. Best effort: a cache that cannot be written only means
    /// the next load spells the words again.
    fn write(
        &self,
        identity: &Identity,
        spellings: &HashMap<String, Vec<String>>,
    ) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let file = tempfile::NamedTempFile::new_in(&self.dir)?;
        let mut out = BufWriter::new(file);
        out.write_all(&encode(identity, spellings)?)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.persist(self.entry(identity))
            .map(drop)
            .map_err(|e| e.error)
    }
}

/// The spellings of `words` by the G2P model in `g2p_dir`, from the user's cache
/// ([`G2pCache::user`]) where it has them; only the others are spelled (with `threads`
/// ONNX Runtime threads, 0: one per core), and then added to the cache.
pub fn spell_cached(
    g2p_dir: &Path,
    words: &[String],
    threads: usize,
) -> Result<Vec<(String, Vec<String>)>> {
    spell_with_cache(g2p_dir, words, threads, G2pCache::user().as_ref()).map(|s| s.words)
}

/// [`spell_cached`] with the cache given (`None`: no cache, every word spelled), reporting
/// how many words were spelled now. The G2P model is loaded only when a word is missing from
/// the cache; its files are always read, to identify them.
pub fn spell_with_cache(
    g2p_dir: &Path,
    words: &[String],
    threads: usize,
    cache: Option<&G2pCache>,
) -> Result<Spellings> {
    let identity = match cache {
        Some(_) => Some(Identity::of(g2p_dir)?),
        None => None,
    };
    let mut known = match (cache, &identity) {
        (Some(cache), Some(identity)) => cache.read(identity),
        _ => HashMap::new(),
    };
    let mut missing: Vec<String> = Vec::new();
    {
        let mut seen = std::collections::HashSet::new();
        for word in words {
            if !known.contains_key(word) && seen.insert(word.as_str()) {
                missing.push(word.clone());
            }
        }
    }
    if !missing.is_empty() {
        let mut g2p = G2p::load(g2p_dir, threads)?;
        let spelled = g2p.spell_many(&missing)?;
        if known.len() + missing.len() > MAX_CACHED_WORDS {
            let wanted: std::collections::HashSet<&String> = words.iter().collect();
            known.retain(|word, _| wanted.contains(word));
        }
        known.extend(missing.iter().cloned().zip(spelled));
        if let (Some(cache), Some(identity)) = (cache, &identity) {
            let _ = cache.write(identity, &known);
        }
    }
    Ok(Spellings {
        words: words
            .iter()
            .map(|word| (word.clone(), known[word].clone()))
            .collect(),
        spelled: missing.len(),
        file: match (cache, &identity) {
            (Some(cache), Some(identity)) => Some(cache.entry(identity)),
            _ => None,
        },
    })
}

/// What a cache file is valid for: the model's three files (sizes and a hash of their
/// content) and the spelling rules.
#[derive(Debug, PartialEq, Eq)]
struct Identity {
    hash: u64,
    sizes: [u64; 3],
}

impl Identity {
    fn of(g2p_dir: &Path) -> Result<Self> {
        let mut hasher = FastHasher::new();
        for value in [RULES_VERSION, MAX_INPUT_LEN as u64, MAX_OUTPUT_LEN as u64] {
            hasher.write_u64(value);
        }
        let mut sizes = [0; 3];
        for (size, (name, what)) in sizes.iter_mut().zip([
            (ENCODER_FILE, "G2P encoder"),
            (DECODER_FILE, "G2P decoder"),
            (VOCABULARY_FILE, "G2P vocabulary"),
        ]) {
            let path = g2p_dir.join(name);
            let bytes = std::fs::read(&path).map_err(|e| Error::io(what, &path, e))?;
            *size = bytes.len() as u64;
            hasher.write_u64(*size);
            hasher.write(&bytes);
        }
        Ok(Self {
            hash: hasher.finish(),
            sizes,
        })
    }
}

/// Layout (little-endian): magic; model hash u64; the three file sizes u64; word count u64;
/// per word (sorted, so equal caches are equal files): length u32 and UTF-8 bytes, token count
/// u32, each token as length u32 and UTF-8 bytes; checksum u64 of everything before it.
fn encode(
    identity: &Identity,
    spellings: &HashMap<String, Vec<String>>,
) -> std::io::Result<Vec<u8>> {
    let too_big = || std::io::Error::other("too large for the cache format");
    let mut out = Vec::new();
    let put_str = |out: &mut Vec<u8>, s: &str| -> std::io::Result<()> {
        out.extend_from_slice(&u32::try_from(s.len()).map_err(|_| too_big())?.to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        Ok(())
    };
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&identity.hash.to_le_bytes());
    for size in identity.sizes {
        out.extend_from_slice(&size.to_le_bytes());
    }
    out.extend_from_slice(&(spellings.len() as u64).to_le_bytes());
    let mut sorted: Vec<_> = spellings.iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (word, tokens) in sorted {
        put_str(&mut out, word)?;
        out.extend_from_slice(
            &u32::try_from(tokens.len())
                .map_err(|_| too_big())?
                .to_le_bytes(),
        );
        for token in tokens {
            put_str(&mut out, token)?;
        }
    }
    let sum = checksum(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    Ok(out)
}

/// The spellings of a file made for `identity`, or `None` for anything else (another model,
/// another format, a damaged file).
fn decode(bytes: &[u8], identity: &Identity) -> Option<HashMap<String, Vec<String>>> {
    let body_len = bytes.len().checked_sub(8)?;
    let (body, sum) = bytes.split_at(body_len);
    if checksum(body) != u64::from_le_bytes(sum.try_into().ok()?) {
        return None;
    }
    let mut r = Cursor { bytes: body };
    if r.take(MAGIC.len())? != MAGIC {
        return None;
    }
    let recorded = Identity {
        hash: r.u64()?,
        sizes: [r.u64()?, r.u64()?, r.u64()?],
    };
    if recorded != *identity {
        return None;
    }
    let count = usize::try_from(r.u64()?).ok()?;
    // Each word takes at least its two 4-byte counts: a count the file cannot hold is damage.
    if count > r.bytes.len() / 8 {
        return None;
    }
    let mut spellings = HashMap::with_capacity(count);
    for _ in 0..count {
        let word = r.string()?;
        let tokens = r.u32()? as usize;
        if tokens > r.bytes.len() / 4 {
            return None;
        }
        let tokens = (0..tokens)
            .map(|_| r.string())
            .collect::<Option<Vec<_>>>()?;
        if spellings.insert(word, tokens).is_some() {
            return None;
        }
    }
    r.bytes.is_empty().then_some(spellings)
}

fn checksum(bytes: &[u8]) -> u64 {
    let mut hasher = FastHasher::new();
    hasher.write(bytes);
    hasher.finish()
}

/// The language model's file hash (`lm/hash.rs`, private to that module): 8 bytes at a time,
/// one 128-bit multiplication each, fixed seed. Fast enough to hash the 4.4 MB model at
/// every load; not meant to resist crafted input, only to notice change and damage.
struct FastHasher {
    state: u64,
}

impl FastHasher {
    fn new() -> Self {
        Self { state: SEED }
    }

    fn add(&mut self, word: u64) {
        // 2^64 / golden ratio; high and low product halves folded.
        let product = u128::from(self.state ^ word) * 0x9e37_79b9_7f4a_7c15_u128;
        self.state = (product as u64) ^ ((product >> 64) as u64);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        // The length keeps "a" and "a\0" apart.
        self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 56));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn finish(&self) -> u64 {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            hash: 0x1234,
            sizes: [1, 2, 3],
        }
    }

    fn sample() -> HashMap<String, Vec<String>> {
        HashMap::from([
            (
                "hello".to_string(),
                vec!["h".into(), "ɛ".into(), "l".into(), "oʊ".into()],
            ),
            ("x".to_string(), vec!["ɛ".into(), " ".into(), "k".into()]),
            ("empty".to_string(), Vec::new()),
        ])
    }

    #[test]
    fn a_file_reads_back_for_its_model_only() {
        let bytes = encode(&identity(), &sample()).unwrap();
        assert_eq!(decode(&bytes, &identity()), Some(sample()));
        let other = Identity {
            hash: 0x1235,
            ..identity()
        };
        assert_eq!(decode(&bytes, &other), None);
        let resized = Identity {
            sizes: [1, 2, 4],
            ..identity()
        };
        assert_eq!(decode(&bytes, &resized), None);
        // The same spellings give the same bytes, whatever the map's order.
        assert_eq!(encode(&identity(), &sample()).unwrap(), bytes);
    }

    #[test]
    fn damage_is_never_read() {
        let good = encode(&identity(), &sample()).unwrap();
        for cut in 0..good.len() {
            assert_eq!(decode(&good[..cut], &identity()), None, "cut at {cut}");
        }
        for i in 0..good.len() {
            let mut flipped = good.clone();
            flipped[i] ^= 0x04;
            assert_eq!(decode(&flipped, &identity()), None, "flipped byte {i}");
        }
        let mut foreign = good.clone();
        foreign[..MAGIC.len()].copy_from_slice(b"QZNG2Pv0");
        let sum = checksum(&foreign[..foreign.len() - 8]);
        let at = foreign.len() - 8;
        foreign[at..].copy_from_slice(&sum.to_le_bytes());
        assert_eq!(decode(&foreign, &identity()), None);
    }

    /// The rule itself is `cache_dir`'s (tested there); the G2P's folder and variable.
    #[test]
    fn the_user_cache_follows_the_environment() {
        let dir_with = |pairs: &[(&str, &str)]| {
            G2pCache::from_env(|name| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            })
            .map(|c| c.dir)
        };
        let home = ("HOME", "/home/u");
        assert_eq!(
            dir_with(&[home]),
            Some(PathBuf::from("/home/u/.cache/quartznetstt/g2p"))
        );
        assert_eq!(
            dir_with(&[home, (CACHE_VARIABLE, "/fast")]),
            Some(PathBuf::from("/fast"))
        );
        assert_eq!(dir_with(&[home, (CACHE_VARIABLE, "off")]), None);
    }

    #[test]
    fn the_model_identity_follows_content() {
        let dir = tempfile::tempdir().unwrap();
        for name in [ENCODER_FILE, DECODER_FILE, VOCABULARY_FILE] {
            std::fs::write(dir.path().join(name), name).unwrap();
        }
        let first = Identity::of(dir.path()).unwrap();
        assert_eq!(Identity::of(dir.path()).unwrap(), first);
        // Same size, other content.
        std::fs::write(dir.path().join(DECODER_FILE), "decoder_step.onny").unwrap();
        assert_ne!(Identity::of(dir.path()).unwrap().hash, first.hash);
        std::fs::remove_file(dir.path().join(VOCABULARY_FILE)).unwrap();
        let err = Identity::of(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("G2P vocabulary") && err.contains(VOCABULARY_FILE),
            "{err}"
        );
    }
}

// SPDX-License-Identifier: MPL-2.0
//! A compiled copy of each parsed ARPA file in the user's cache folder, so that later loads
//! read binary tables instead of decompressing and parsing text. Parsing is most of an ARPA
//! load (about three quarters of the bundled LM's 0.4 s, and it grows with the file), and a
//! file pipeline cannot start decoding before its LM is loaded.
//!
//! One copy per source path, named by a hash of that path; it records the source's path, size
//! and modification time and is used only while all three match, so an edited LM is parsed
//! again and its copy replaced. A copy that is unreadable, truncated or fails its checksum is
//! ignored and rewritten: the cache can cost a parse, never give a wrong model. Copies are
//! written to a temporary file and renamed, so a concurrent load never reads half a file.

use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::hash::Hasher;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::arpa::{MAX_LOG10, MAX_ORDER, Tables};
use super::hash::FastHasher;
use super::table::NgramTable;
use super::{Entry, FastMap, LN_10, WordId};
use crate::cache_dir::Cursor;

/// Names the format; a copy in any other format (an older build's) is parsed again.
const MAGIC: &[u8; 8] = b"QZNLMv01";
/// Environment variable: the cache folder, or `off` (also `0` or empty) for no cache.
pub const CACHE_VARIABLE: &str = "QUARTZNETSTT_LM_CACHE";
/// Sources smaller than this load from text about as fast as from a copy: not cached.
const MIN_SOURCE_BYTES: u64 = 1 << 20;
/// Seed of the path hash and the checksum (fixed: both must be the same in every process).
const SEED: u64 = 0x5155_4152_545a_4e45;

/// Where compiled copies of language models are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LmCache {
    dir: PathBuf,
    min_source_bytes: u64,
}

impl LmCache {
    /// A cache in `dir` (created when first written) for sources of any size.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            min_source_bytes: 0,
        }
    }

    /// The user's cache: `$QUARTZNETSTT_LM_CACHE` if set (`off`, `0` or empty: none), else
    /// `$XDG_CACHE_HOME/quartznetstt/lm` (default `~/.cache/quartznetstt/lm`); only sources
    /// of 1 MiB or more. `None` without any of these variables.
    pub fn user() -> Option<Self> {
        Self::from_env(|name| std::env::var_os(name))
    }

    fn from_env(var: impl Fn(&str) -> Option<OsString>) -> Option<Self> {
        let dir = crate::cache_dir::user_cache_dir(var, CACHE_VARIABLE, "lm")?;
        Some(Self {
            dir,
            min_source_bytes: MIN_SOURCE_BYTES,
        })
    }

    /// The cache folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The copy of `source` (whether or not it exists yet).
    pub fn entry(&self, source: &Path) -> PathBuf {
        let mut hasher = FastHasher::with_seed(SEED);
        hasher.write(source.as_os_str().as_encoded_bytes());
        self.dir.join(format!("{:016x}.qlm", hasher.finish()))
    }

    /// The tables of `source` from its copy, if there is a valid copy of this version of it.
    pub(super) fn read(&self, source: &Path, metadata: &Metadata) -> Option<Tables> {
        if metadata.len() < self.min_source_bytes {
            return None;
        }
        let bytes = fs::read(self.entry(source)).ok()?;
        decode(&bytes, &Stamp::of(source, metadata)?)
    }

    /// Writes the copy of `source`. Best effort: a cache that cannot be written only means
    /// the next load parses the text again.
    pub(super) fn write(
        &self,
        source: &Path,
        metadata: &Metadata,
        tables: &Tables,
    ) -> std::io::Result<()> {
        if metadata.len() < self.min_source_bytes {
            return Ok(());
        }
        let Some(stamp) = Stamp::of(source, metadata) else {
            return Ok(());
        };
        fs::create_dir_all(&self.dir)?;
        let file = tempfile::NamedTempFile::new_in(&self.dir)?;
        let mut out = ChecksumWriter {
            inner: BufWriter::new(file),
            hasher: FastHasher::with_seed(SEED),
            pending: Vec::new(),
        };
        encode(&mut out, &stamp, tables)?;
        let file = out.finish()?.into_inner().map_err(|e| e.into_error())?;
        file.persist(self.entry(source))
            .map(drop)
            .map_err(|e| e.error)
    }
}

/// The version of a source a copy was made from.
#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    path: Vec<u8>,
    len: u64,
    modified_ns: u64,
}

impl Stamp {
    fn of(source: &Path, metadata: &Metadata) -> Option<Self> {
        let modified = metadata.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
        Some(Self {
            path: source.as_os_str().as_encoded_bytes().to_vec(),
            len: metadata.len(),
            modified_ns: u64::try_from(modified.as_nanos()).ok()?,
        })
    }
}

/// Hashes every byte written (in the order written, 8 at a time), for the trailing checksum.
struct ChecksumWriter<W: Write> {
    inner: W,
    hasher: FastHasher,
    /// Bytes not yet hashed (fewer than 8), so the hash does not depend on how writes split.
    pending: Vec<u8>,
}

impl<W: Write> ChecksumWriter<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(bytes)?;
        self.pending.extend_from_slice(bytes);
        let whole = self.pending.len() / 8 * 8;
        self.hasher.write(&self.pending[..whole]);
        self.pending.drain(..whole);
        Ok(())
    }

    /// Writes the checksum and returns the writer.
    fn finish(mut self) -> std::io::Result<W> {
        self.hasher.write(&self.pending);
        let sum = self.hasher.finish();
        self.inner.write_all(&sum.to_le_bytes())?;
        Ok(self.inner)
    }
}

/// The same checksum over a whole byte slice (what `ChecksumWriter` computes piecewise).
fn checksum(bytes: &[u8]) -> u64 {
    let mut hasher = FastHasher::with_seed(SEED);
    let whole = bytes.len() / 8 * 8;
    hasher.write(&bytes[..whole]);
    hasher.write(&bytes[whole..]);
    hasher.finish()
}

/// Layout (little-endian): magic; stamp (path length u32 and bytes, size u64, mtime u64);
/// order u32; vocabulary size u32 then each word (length u32, UTF-8 bytes) in id order; per
/// order n: packed keys (count u64, then key u64, log-prob f32, back-off f32 each) and wide
/// keys (count u64, then n ids u32, log-prob f32, back-off f32 each); checksum u64.
fn encode<W: Write>(
    out: &mut ChecksumWriter<W>,
    stamp: &Stamp,
    tables: &Tables,
) -> std::io::Result<()> {
    let too_big = || std::io::Error::other("too large for the cache format");
    let u32_of = |n: usize| u32::try_from(n).map_err(|_| too_big());
    out.put(MAGIC)?;
    out.put(&u32_of(stamp.path.len())?.to_le_bytes())?;
    out.put(&stamp.path)?;
    out.put(&stamp.len.to_le_bytes())?;
    out.put(&stamp.modified_ns.to_le_bytes())?;
    out.put(&u32_of(tables.grams.len())?.to_le_bytes())?;
    let mut words = vec![""; tables.ids.len()];
    for (word, &id) in &tables.ids {
        words[id as usize] = word;
    }
    out.put(&u32_of(words.len())?.to_le_bytes())?;
    for word in words {
        out.put(&u32_of(word.len())?.to_le_bytes())?;
        out.put(word.as_bytes())?;
    }
    let mut record = Vec::with_capacity(16);
    for table in &tables.grams {
        out.put(&(table.packed().len() as u64).to_le_bytes())?;
        for (&key, entry) in table.packed() {
            record.clear();
            record.extend_from_slice(&key.to_le_bytes());
            push_entry(&mut record, entry);
            out.put(&record)?;
        }
        out.put(&(table.wide().len() as u64).to_le_bytes())?;
        for (key, entry) in table.wide() {
            record.clear();
            for id in key.iter() {
                record.extend_from_slice(&id.to_le_bytes());
            }
            push_entry(&mut record, entry);
            out.put(&record)?;
        }
    }
    Ok(())
}

fn push_entry(record: &mut Vec<u8>, entry: &Entry) {
    record.extend_from_slice(&entry.logprob.to_le_bytes());
    record.extend_from_slice(&entry.backoff.to_le_bytes());
}

/// The tables of a copy made from `stamp`'s source, or `None` for anything else (another
/// version, another format, a damaged file).
fn decode(bytes: &[u8], stamp: &Stamp) -> Option<Tables> {
    let body_len = bytes.len().checked_sub(8)?;
    let (body, sum) = bytes.split_at(body_len);
    if checksum(body) != u64::from_le_bytes(sum.try_into().ok()?) {
        return None;
    }
    let mut r = Cursor { bytes: body };
    if r.take(MAGIC.len())? != MAGIC {
        return None;
    }
    let path_len = r.u32()? as usize;
    let recorded = Stamp {
        path: r.take(path_len)?.to_vec(),
        len: r.u64()?,
        modified_ns: r.u64()?,
    };
    if recorded != *stamp {
        return None;
    }
    let order = r.u32()? as usize;
    if order == 0 || order > MAX_ORDER {
        return None;
    }
    let vocabulary = r.u32()? as usize;
    // Each word takes at least its 4-byte length: a count the file cannot hold is damage.
    if vocabulary > r.bytes.len() / 4 {
        return None;
    }
    let mut ids = FastMap::with_capacity_and_hasher(vocabulary, Default::default());
    for id in 0..vocabulary {
        let len = r.u32()? as usize;
        let word = std::str::from_utf8(r.take(len)?).ok()?;
        if ids.insert(word.to_owned(), id as WordId).is_some() {
            return None;
        }
    }
    let mut grams = Vec::with_capacity(order);
    for n in 1..=order {
        let packed = r.count(16)?;
        let mut table = NgramTable::with_capacity(packed);
        for _ in 0..packed {
            let key = r.u64()?;
            table.insert_packed(key, r.entry()?);
        }
        let wide = r.count(4 * n + 8)?;
        let mut key = [0 as WordId; MAX_ORDER];
        for _ in 0..wide {
            for slot in &mut key[..n] {
                *slot = r.u32()?;
                if *slot as usize >= vocabulary {
                    return None;
                }
            }
            table.insert(&key[..n], r.entry()?);
        }
        grams.push(table);
    }
    r.bytes.is_empty().then_some(Tables { ids, grams })
}

/// The compiled copy's records ([`Cursor`] reads the rest).
impl Cursor<'_> {
    /// A log value the ARPA reader would also accept (never NaN, never above its bound).
    fn log_value(&mut self) -> Option<f32> {
        let value = f32::from_le_bytes(self.take(4)?.try_into().ok()?);
        (!value.is_nan() && value <= MAX_LOG10 * LN_10).then_some(value)
    }

    fn entry(&mut self) -> Option<Entry> {
        Some(Entry {
            logprob: self.log_value()?,
            backoff: self.log_value()?,
        })
    }

    /// A record count, if that many records of `record_len` bytes can follow.
    fn count(&mut self, record_len: usize) -> Option<usize> {
        let count = usize::try_from(self.u64()?).ok()?;
        (count <= self.bytes.len() / record_len).then_some(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lm::NgramModel;
    use crate::lm::tests::TOY;

    /// Same words, same spelling trie and bit-identical scores for every trigram of words.
    fn assert_same(a: &NgramModel, b: &NgramModel) {
        assert_eq!(a.vocabulary_size(), b.vocabulary_size());
        assert_eq!(a.trie_size(), b.trie_size());
        let ids: Vec<WordId> = (0..a.vocabulary_size() as WordId).collect();
        for &x in &ids {
            assert_eq!(a.word_text(x), b.word_text(x));
            for &y in &ids {
                for z in ids.iter().copied().map(Some).chain([None]) {
                    let (pa, pb) = (a.log_prob(&[x, y], z), b.log_prob(&[x, y], z));
                    assert_eq!(pa.to_bits(), pb.to_bits(), "{x} {y} {z:?}");
                }
            }
        }
    }

    fn write(path: &Path, text: &str) {
        fs::write(path, text).unwrap();
    }

    #[test]
    fn a_copy_loads_the_same_model_and_follows_its_source() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("toy.arpa");
        write(&source, TOY);
        let cache = LmCache::new(dir.path().join("cache"));
        let parsed = NgramModel::load_cached(&source, None).unwrap();
        let first = NgramModel::load_cached(&source, Some(&cache)).unwrap();
        assert!(!first.loaded_from_cache());
        assert!(cache.entry(&source).is_file());
        let second = NgramModel::load_cached(&source, Some(&cache)).unwrap();
        assert!(second.loaded_from_cache());
        assert_same(&parsed, &second);

        // An edited source is parsed again, and its copy replaced.
        write(&source, &TOY.replace("-0.9\tthe car", "-0.95\tthe car"));
        let edited = NgramModel::load_cached(&source, Some(&cache)).unwrap();
        assert!(!edited.loaded_from_cache());
        let again = NgramModel::load_cached(&source, Some(&cache)).unwrap();
        assert!(again.loaded_from_cache());
        let id = |w| again.word_id(w).unwrap();
        let p = again.log_prob(&[id("the")], Some(id("car")));
        assert!((p - -0.95 * LN_10).abs() < 1e-6, "{p}");
        assert_same(&edited, &again);
    }

    #[test]
    fn a_damaged_copy_is_parsed_again_and_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("toy.arpa");
        write(&source, TOY);
        let cache = LmCache::new(dir.path().join("cache"));
        let parsed = NgramModel::load_cached(&source, Some(&cache)).unwrap();
        let good = fs::read(cache.entry(&source)).unwrap();
        let mut flipped = good.clone();
        flipped[good.len() / 2] ^= 0x10;
        let mut foreign = good.clone();
        foreign[..MAGIC.len()].copy_from_slice(b"QZNLMv00");
        for damaged in [
            good[..good.len() / 2].to_vec(),
            flipped,
            foreign,
            Vec::new(),
            vec![0xff; 7],
        ] {
            fs::write(cache.entry(&source), &damaged).unwrap();
            let model = NgramModel::load_cached(&source, Some(&cache)).unwrap();
            assert!(!model.loaded_from_cache());
            assert_same(&parsed, &model);
            let rewritten = NgramModel::load_cached(&source, Some(&cache)).unwrap();
            assert!(rewritten.loaded_from_cache());
            assert_same(&parsed, &rewritten);
        }
    }

    #[test]
    fn an_unusable_cache_folder_only_costs_time() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("toy.arpa");
        write(&source, TOY);
        // A regular file where the folder should be: nothing can be written under it.
        let blocked = dir.path().join("not-a-folder");
        write(&blocked, "");
        let cache = LmCache::new(&blocked);
        for _ in 0..2 {
            let model = NgramModel::load_cached(&source, Some(&cache)).unwrap();
            assert!(!model.loaded_from_cache());
        }
        // A broken source is the source's error, whatever the cache holds.
        write(&source, "not a language model");
        let err = NgramModel::load_cached(&source, Some(&LmCache::new(dir.path())))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not an ARPA file"), "{err}");
    }

    #[test]
    fn small_sources_stay_out_of_the_user_cache() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("toy.arpa");
        write(&source, TOY);
        let cache = LmCache {
            dir: dir.path().join("cache"),
            min_source_bytes: MIN_SOURCE_BYTES,
        };
        let model = NgramModel::load_cached(&source, Some(&cache)).unwrap();
        assert!(!model.loaded_from_cache());
        assert!(!cache.entry(&source).exists());
    }

    #[test]
    fn the_user_cache_follows_the_environment() {
        let dir_with = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            LmCache::from_env(|name| {
                pairs
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| OsString::from(v))
            })
            .map(|c| c.dir)
        };
        let home = ("HOME", "/home/u");
        assert_eq!(
            dir_with(&[home]),
            Some(PathBuf::from("/home/u/.cache/quartznetstt/lm"))
        );
        assert_eq!(
            dir_with(&[home, ("XDG_CACHE_HOME", "/c")]),
            Some(PathBuf::from("/c/quartznetstt/lm"))
        );
        assert_eq!(
            dir_with(&[home, (CACHE_VARIABLE, "/fast")]),
            Some(PathBuf::from("/fast"))
        );
        for off in ["off", "0", ""] {
            assert_eq!(dir_with(&[home, (CACHE_VARIABLE, off)]), None, "{off:?}");
        }
        assert_eq!(dir_with(&[]), None);
    }
}

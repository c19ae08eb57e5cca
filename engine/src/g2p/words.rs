// SPDX-License-Identifier: MPL-2.0
//! A user's vocabulary file: words the pronunciation lexicon lacks, one per line.

use std::io::Read;
use std::path::Path;

use super::text::is_python_space;
use crate::error::{Error, Result};

/// Most words a vocabulary file may list. Each new word costs a G2P run (about a millisecond)
/// the first time, and every word grows the decoder's lexicon; a list longer than this is
/// more likely a mistake (a corpus instead of a word list) than a vocabulary.
pub const MAX_WORDS: usize = 100_000;
/// Largest vocabulary file read, in bytes (8 MiB: 100,000 words of 80 bytes).
pub const MAX_WORD_LIST_BYTES: u64 = 8 << 20;

const WHAT: &str = "word list";

/// The words of the vocabulary file `path`: UTF-8, one word per line, surrounding whitespace
/// trimmed, blank lines and lines starting with `#` skipped, a leading byte-order mark
/// ignored, each word kept once (its first line). A line with whitespace inside is an error
/// naming the line: it is a phrase, and the G2P would spell its words apart. Whitespace is
/// what hama's G2P splits on (Python's `str.isspace`).
pub fn read_word_list(path: &Path) -> Result<Vec<String>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(WHAT, path, e))?;
    let mut bytes = Vec::new();
    // One byte more than allowed tells a file at the limit from one over it, without trusting
    // the size the file claims (a pipe or a growing file has none).
    file.take(MAX_WORD_LIST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(WHAT, path, e))?;
    if bytes.len() as u64 > MAX_WORD_LIST_BYTES {
        return Err(Error::invalid(
            WHAT,
            path,
            format!(
                "larger than {} MiB; a vocabulary file lists at most {MAX_WORDS} words",
                MAX_WORD_LIST_BYTES >> 20
            ),
        ));
    }
    let bytes = bytes.strip_prefix("\u{FEFF}".as_bytes()).unwrap_or(&bytes);
    let mut words = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (number, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let number = number + 1;
        let line = std::str::from_utf8(line).map_err(|e| {
            Error::invalid(WHAT, path, format!("line {number} is not UTF-8 text ({e})"))
        })?;
        let word = line.trim_matches(is_python_space);
        if word.is_empty() || word.starts_with('#') {
            continue;
        }
        if word.contains(is_python_space) {
            return Err(Error::invalid(
                WHAT,
                path,
                format!(
                    "line {number} ({word:?}) has whitespace inside: a vocabulary file lists one word per line, not phrases"
                ),
            ));
        }
        if seen.insert(word) {
            if words.len() == MAX_WORDS {
                return Err(Error::invalid(
                    WHAT,
                    path,
                    format!("more than {MAX_WORDS} words (line {number})"),
                ));
            }
            words.push(word.to_string());
        }
    }
    Ok(words)
}

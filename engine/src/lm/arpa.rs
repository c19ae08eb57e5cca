// SPDX-License-Identifier: MPL-2.0
//! Reading ARPA text: the `\data\` header with its n-gram counts, one `\N-grams:` section
//! per order with lines `log10(p) <tab> w1 .. wN [<tab> log10(backoff)]`, and `\end\`.
//! Every malformed line is an error naming its line number; counts must match the header.

use std::io::{BufRead, BufReader, Read};

use super::table::NgramTable;
use super::{Entry, FastMap, LN_10, WordId};

/// Highest n-gram order accepted (KenLM's default build stops at 6).
pub const MAX_ORDER: usize = 16;
/// Longest line accepted, in bytes: an ARPA line holds a few numbers and `order` words.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Largest log10 probability or back-off accepted. Scores add back-offs to a probability;
/// with a `+inf` value (or positive ones large enough to overflow) meeting a `-inf` one they
/// would be NaN, which poisons the beam search. No model has a weight of 10^1000.
pub(super) const MAX_LOG10: f32 = 1000.0;
/// Declared counts reserve at most this many entries up front, so a header cannot make the
/// reader allocate more than the file's lines fill.
const MAX_RESERVED: usize = 1 << 20;

/// The n-gram tables of an ARPA file: `grams[n - 1]` holds the n-grams, keyed by word ids
/// (oldest first), with natural-log probabilities and back-offs.
pub(super) struct Tables {
    pub ids: FastMap<String, WordId>,
    pub grams: Vec<NgramTable>,
}

pub(super) fn read(reader: impl Read) -> Result<Tables, String> {
    let mut reader = BufReader::new(reader);
    let mut declared: Vec<usize> = Vec::new();
    let mut section: Option<usize> = None; // n of the current \n-grams: section
    let mut ended = false;
    let mut ids: FastMap<String, WordId> = FastMap::default();
    let mut grams: Vec<NgramTable> = Vec::new();
    let mut recent = RecentWords::default();
    let mut line = Vec::new();
    let mut line_no = 0usize;
    let mut seen_data = false;
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("line {}: {e}", line_no + 1))?;
        if read == 0 {
            break;
        }
        line_no += 1;
        if read > MAX_LINE_BYTES {
            return Err(format!(
                "line {line_no} is longer than {MAX_LINE_BYTES} bytes"
            ));
        }
        let text = std::str::from_utf8(&line)
            .map_err(|_| format!("line {line_no}: stream did not contain valid UTF-8"))?
            .trim();
        if text.is_empty() {
            continue;
        }
        if text == "\\data\\" {
            seen_data = true;
            continue;
        }
        if !seen_data {
            // Text before `\data\` is a preamble (CMU Sphinx writes a line there; the
            // format allows comments before the header).
            continue;
        }
        if text == "\\end\\" {
            ended = true;
            break;
        }
        if let Some(rest) = text.strip_prefix("ngram ") {
            let (n, count) = rest
                .split_once('=')
                .and_then(|(n, c)| {
                    Some((
                        n.trim().parse::<usize>().ok()?,
                        c.trim().parse::<usize>().ok()?,
                    ))
                })
                .ok_or_else(|| format!("line {line_no}: malformed count line {text:?}"))?;
            if section.is_some() {
                return Err(format!(
                    "line {line_no}: n-gram count {text:?} after the n-gram sections began"
                ));
            }
            if n != declared.len() + 1 {
                return Err(format!(
                    "line {line_no}: n-gram counts must be listed for 1, 2, ...; got {n}"
                ));
            }
            if n > MAX_ORDER {
                return Err(format!(
                    "line {line_no}: order {n} is higher than the most this reader takes ({MAX_ORDER})"
                ));
            }
            declared.push(count);
            continue;
        }
        if let Some(n) = text
            .strip_prefix('\\')
            .and_then(|t| t.strip_suffix("-grams:"))
        {
            let n: usize = n
                .parse()
                .map_err(|_| format!("line {line_no}: malformed section header {text:?}"))?;
            if n == 0 || n > declared.len() {
                return Err(format!(
                    "line {line_no}: section for {n}-grams, but the header declares orders 1..{}",
                    declared.len()
                ));
            }
            if grams.is_empty() {
                grams = declared
                    .iter()
                    .map(|&c| NgramTable::with_capacity(c.min(MAX_RESERVED)))
                    .collect();
            }
            section = Some(n);
            continue;
        }
        let n = section
            .ok_or_else(|| format!("line {line_no}: n-gram before any \\N-grams: section"))?;
        let (key, entry) = ngram_line(text, n, line_no, &mut ids, &mut recent)?;
        grams[n - 1].insert(&key[..n], entry);
    }
    if !seen_data || declared.is_empty() {
        return Err("not an ARPA file (no \\data\\ header with n-gram counts)".into());
    }
    if !ended {
        return Err("truncated: no \\end\\ marker".into());
    }
    for (i, (table, &count)) in grams.iter().zip(&declared).enumerate() {
        if table.len() != count {
            return Err(format!(
                "the header declares {count} {}-grams but {} were read",
                i + 1,
                table.len()
            ));
        }
    }
    Ok(Tables { ids, grams })
}

/// The words of the previous n-gram line with their ids. ARPA files list n-grams sorted, so
/// most words repeat the previous line's word at the same position, and comparing with it
/// is cheaper than looking the word up among all words.
#[derive(Default)]
struct RecentWords {
    words: Vec<(String, WordId)>,
}

impl RecentWords {
    /// The id of `word` at `position` of an n-gram (not a unigram: those assign ids).
    fn id(&mut self, position: usize, word: &str, ids: &FastMap<String, WordId>) -> Option<WordId> {
        if self.words.len() <= position {
            self.words
                .resize_with(position + 1, || (String::new(), WordId::MAX));
        }
        let (recent, recent_id) = &mut self.words[position];
        if *recent_id != WordId::MAX && recent == word {
            return Some(*recent_id);
        }
        let id = *ids.get(word)?;
        recent.clear();
        recent.push_str(word);
        *recent_id = id;
        Some(id)
    }
}

/// One line of an `n`-grams section: its key (the first `n` ids) and entry. Unigrams add
/// their word to `ids`.
fn ngram_line(
    text: &str,
    n: usize,
    line_no: usize,
    ids: &mut FastMap<String, WordId>,
    recent: &mut RecentWords,
) -> Result<([WordId; MAX_ORDER], Entry), String> {
    let mut fields = [""; MAX_ORDER + 2];
    let mut count = 0;
    for field in text.split_whitespace() {
        if count == n + 2 {
            count += 1;
            break;
        }
        fields[count] = field;
        count += 1;
    }
    if count != n + 1 && count != n + 2 {
        return Err(format!(
            "line {line_no}: expected log10 probability, {n} words and an optional back-off, got {text:?}"
        ));
    }
    let number = |s: &str| {
        let value = s
            .parse::<f32>()
            .ok()
            .filter(|v| !v.is_nan())
            .ok_or_else(|| format!("line {line_no}: {s:?} is not a number"))?;
        // `-inf` (probability 0) is fine: sums of finite and -inf values are never NaN.
        if value > MAX_LOG10 {
            return Err(format!(
                "line {line_no}: {s:?} is above {MAX_LOG10}, not a log10 probability or back-off"
            ));
        }
        Ok(value)
    };
    let logprob = number(fields[0])? * LN_10;
    let backoff = if count == n + 2 {
        number(fields[n + 1])? * LN_10
    } else {
        0.0
    };
    let mut key = [0 as WordId; MAX_ORDER];
    for (position, word) in fields[1..=n].iter().enumerate() {
        key[position] = if n == 1 {
            match ids.get(*word) {
                Some(&id) => id,
                None => {
                    let id = ids.len() as WordId;
                    ids.insert((*word).to_string(), id);
                    id
                }
            }
        } else {
            recent
                .id(position, word, ids)
                .ok_or_else(|| format!("line {line_no}: word {word:?} has no unigram"))?
        };
    }
    Ok((key, Entry { logprob, backoff }))
}

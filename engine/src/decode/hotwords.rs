// SPDX-License-Identifier: MPL-2.0
//! Hotword lists: phrases the beam search favours (names, terms), one per line.
//!
//! Format (UTF-8): one phrase per line, words separated by spaces, optionally followed by
//! ` :BOOST` (whitespace, a colon, a positive number: the phrase's boost, see
//! [`Hotword::boost`]); lines whose first non-blank character is `#` are comments; blank
//! lines are skipped. A `#` or `:` elsewhere belongs to the phrase (`C#`, `Star Trek: Picard`).
//! How the search uses the list: `docs/DECODING.md`, *Hotwords*.

use std::path::Path;

use crate::error::{Error, Result};

/// The boost of a phrase that gives none: what each of its words scores more than it would
/// without the list (natural log, the scale of `lm-weight * ln p`), when the whole phrase is
/// matched. Chosen on the hotword development set (`tools/hotwords/README.md`).
pub const DEFAULT_HOTWORD_BOOST: f32 = 3.0;

/// The largest boost a line may give (larger would drown the acoustics entirely).
pub const MAX_HOTWORD_BOOST: f32 = 100.0;

/// The most words a phrase may have.
pub const MAX_HOTWORD_WORDS: usize = 16;

/// The most phrases a list may hold.
pub const MAX_HOTWORDS: usize = 100_000;

/// The largest list file read (bytes).
const MAX_LIST_BYTES: u64 = 16 << 20;

/// One phrase of a hotword list.
#[derive(Debug, Clone, PartialEq)]
pub struct Hotword {
    /// Its words, as written in the list.
    pub words: Vec<String>,
    /// What each of its words scores more when the whole phrase is matched (natural log).
    /// While a phrase is being matched, its letters (or phonemes) already score their share;
    /// a partial match that is abandoned gives it back, so only whole phrases gain.
    pub boost: f32,
    /// Its line in the list (1-based), for error messages.
    pub line: usize,
}

impl Hotword {
    /// The phrase, its words one space apart.
    pub fn phrase(&self) -> String {
        self.words.join(" ")
    }
}

/// A parsed hotword list (possibly empty: no list).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HotwordList {
    hotwords: Vec<Hotword>,
    /// Where it came from, for error messages (a path, or "hotwords" for inline text).
    source: String,
}

impl HotwordList {
    /// Parses `text`; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Self> {
        let mut hotwords = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let content = raw.trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let invalid = |reason: String| Error::Invalid {
                what: "hotword list",
                name: source.to_string(),
                reason: format!("line {line} ({content:?}): {reason}"),
            };
            let (phrase, boost) = split_boost(content).map_err(invalid)?;
            let words: Vec<String> = phrase.split_whitespace().map(str::to_string).collect();
            if words.is_empty() {
                return Err(invalid("no phrase before the boost".into()));
            }
            if words.len() > MAX_HOTWORD_WORDS {
                return Err(invalid(format!(
                    "{} words; a phrase has at most {MAX_HOTWORD_WORDS}",
                    words.len()
                )));
            }
            if hotwords.len() == MAX_HOTWORDS {
                return Err(invalid(format!("more than {MAX_HOTWORDS} phrases")));
            }
            hotwords.push(Hotword {
                words,
                boost: boost.unwrap_or(DEFAULT_HOTWORD_BOOST),
                line,
            });
        }
        Ok(Self {
            hotwords,
            source: source.to_string(),
        })
    }

    /// Reads and parses the list file `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let io = |e: std::io::Error| Error::io("hotword list", path, e);
        let size = std::fs::metadata(path).map_err(io)?.len();
        if size > MAX_LIST_BYTES {
            return Err(Error::Invalid {
                what: "hotword list",
                name,
                reason: format!("{size} bytes; the most read is {MAX_LIST_BYTES}"),
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        let text = String::from_utf8(bytes).map_err(|e| Error::Invalid {
            what: "hotword list",
            name: name.clone(),
            reason: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        })?;
        Self::parse(&text, &name)
    }

    /// The phrases, in list order.
    pub fn hotwords(&self) -> &[Hotword] {
        &self.hotwords
    }

    /// Where the list came from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the list has no phrase (it then changes nothing).
    pub fn is_empty(&self) -> bool {
        self.hotwords.is_empty()
    }

    /// Number of phrases.
    pub fn len(&self) -> usize {
        self.hotwords.len()
    }

    /// The list with `other`'s phrases after its own (the element's inline list and file).
    pub fn merged(mut self, other: Self) -> Self {
        if self.hotwords.is_empty() {
            return other;
        }
        if !other.hotwords.is_empty() {
            self.source = format!("{} and {}", self.source, other.source);
            self.hotwords.extend(other.hotwords);
        }
        self
    }
}

/// Splits a trailing ` :BOOST` from a line: the phrase and the boost if there is one.
fn split_boost(content: &str) -> std::result::Result<(&str, Option<f32>), String> {
    let Some(colon) = content.rfind(':') else {
        return Ok((content, None));
    };
    let (phrase, value) = (&content[..colon], content[colon + 1..].trim());
    // A colon inside the phrase ("Star Trek: Picard") is text: a boost is a colon after
    // whitespace (or at the start) with a number after it.
    let after_space = phrase.is_empty() || phrase.ends_with(char::is_whitespace);
    let numeric = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
    if !after_space || !numeric {
        if after_space && !value.is_empty() && value.split_whitespace().count() == 1 {
            // "phrase :abc": meant as a boost, not a number.
            return Err(format!(
                "the boost {value:?} is not a number (write `phrase :BOOST`, BOOST a positive number)"
            ));
        }
        return Ok((content, None));
    }
    let boost: f32 = value
        .parse()
        .map_err(|_| format!("the boost {value:?} is not a number"))?;
    if !(boost.is_finite() && boost > 0.0 && boost <= MAX_HOTWORD_BOOST) {
        return Err(format!(
            "the boost {value} must be a positive number up to {MAX_HOTWORD_BOOST}"
        ));
    }
    Ok((phrase.trim_end(), Some(boost)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phrases(list: &HotwordList) -> Vec<(String, f32, usize)> {
        list.hotwords()
            .iter()
            .map(|h| (h.phrase(), h.boost, h.line))
            .collect()
    }

    #[test]
    fn lines_comments_and_boosts() {
        let list = HotwordList::parse(
            "# guests tonight\n\nSiobhan  O'Malley :7.5\n  Kubernetes\nC#\nStar Trek: Picard :2\n",
            "inline",
        )
        .unwrap();
        assert_eq!(
            phrases(&list),
            [
                ("Siobhan O'Malley".to_string(), 7.5, 3),
                ("Kubernetes".to_string(), DEFAULT_HOTWORD_BOOST, 4),
                ("C#".to_string(), DEFAULT_HOTWORD_BOOST, 5),
                ("Star Trek: Picard".to_string(), 2.0, 6),
            ]
        );
        assert!(HotwordList::parse("# nothing\n\n", "x").unwrap().is_empty());
    }

    #[test]
    fn a_malformed_line_is_an_error_naming_it() {
        for (text, expected) in [
            (
                "ok\nbad :-1\n",
                "line 2 (\"bad :-1\"): the boost -1 must be a positive",
            ),
            (
                "ok\n\nbad :x\n",
                "line 3 (\"bad :x\"): the boost \"x\" is not a number",
            ),
            (" :3\n", "line 1 (\":3\"): no phrase before the boost"),
            (
                "nan :NaN\n",
                "line 1 (\"nan :NaN\"): the boost \"NaN\" is not a number",
            ),
            ("big :1e9\n", "must be a positive number up to 100"),
        ] {
            let e = HotwordList::parse(text, "list.txt")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("list.txt") && e.contains(expected),
                "{text:?}: {e}"
            );
        }
        let long = vec!["w"; MAX_HOTWORD_WORDS + 1].join(" ");
        let e = HotwordList::parse(&long, "x").unwrap_err().to_string();
        assert!(e.contains("a phrase has at most"), "{e}");
    }

    #[test]
    fn lists_merge_in_order() {
        let a = HotwordList::parse("one\n", "a").unwrap();
        let b = HotwordList::parse("two\n", "b").unwrap();
        let merged = a.clone().merged(b.clone());
        assert_eq!(merged.len(), 2);
        assert_eq!(merged.source(), "a and b");
        assert_eq!(HotwordList::default().merged(b.clone()), b);
        assert_eq!(a.clone().merged(HotwordList::default()), a);
    }
}

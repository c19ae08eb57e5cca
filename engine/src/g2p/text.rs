// SPDX-License-Identifier: MPL-2.0
//! Text to G2P encoder ids, character for character as hama's Python does it
//! (`hama/jamo.py` `split_text_to_jamo`, `hama/tokenizer.py` `TextTokenizer.encode`,
//! `hama/inference.py` `G2PModel._segment_text`). Every rule here is Python's, including the
//! odd ones, because the point is the same spelling, not a better one.

use std::collections::HashMap;

/// Hangul syllable block and conjoining jamo bases (Unicode chapter 3.12), as `jamo.py` names them.
const S_BASE: u32 = 0xAC00;
const L_BASE: u32 = 0x1100;
const V_BASE: u32 = 0x1161;
const T_BASE: u32 = 0x11A7;
const V_COUNT: u32 = 21;
const T_COUNT: u32 = 28;
const N_COUNT: u32 = V_COUNT * T_COUNT;
const S_COUNT: u32 = 19 * N_COUNT;

/// Python's `str.isspace()` (and so its `re` `\s` on `str`): Unicode bidirectional classes
/// WS, B and S plus category Zs. Rust's `char::is_whitespace` (the White_Space property)
/// lacks U+001C..U+001F, which Python splits words on and drops from words.
pub(crate) fn is_python_space(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | '\u{1C}'..='\u{20}'
            | '\u{85}'
            | '\u{A0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200A}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202F}'
            | '\u{205F}'
            | '\u{3000}'
    )
}

/// `G2PModel._segment_text` with the default delimiter `\s+`: the maximal runs of
/// non-whitespace. None for text of only whitespace (or empty), which Python then spells
/// whole (as one `<unk>`).
pub(crate) fn segments(text: &str) -> Vec<&str> {
    text.split(is_python_space)
        .filter(|s| !s.is_empty())
        .collect()
}

/// The encoder's input vocabulary: one id per character token, plus the two specials.
#[derive(Debug, Clone)]
pub(crate) struct InputVocabulary {
    ids: HashMap<char, i64>,
    pub(crate) pad: i64,
    pub(crate) unk: i64,
}

impl InputVocabulary {
    /// From `g2p_vocab.json`'s `encoder` list (index = id). Python builds `{token: index}`, so
    /// a token listed twice takes its last index; tokens of more than one character can never
    /// be looked up (the tokenizer makes single characters) and are left out.
    pub(crate) fn new(tokens: &[String]) -> Result<Self, String> {
        let mut ids = HashMap::with_capacity(tokens.len());
        let (mut pad, mut unk) = (None, None);
        for (id, token) in tokens.iter().enumerate() {
            let id = id as i64;
            match token.as_str() {
                "<pad>" => pad = Some(id),
                "<unk>" => unk = Some(id),
                _ => {}
            }
            let mut chars = token.chars();
            if let (Some(c), None) = (chars.next(), chars.next()) {
                ids.insert(c, id);
            }
        }
        Ok(Self {
            ids,
            pad: pad.ok_or("the encoder vocabulary has no <pad>")?,
            unk: unk.ok_or("the encoder vocabulary has no <unk>")?,
        })
    }

    /// `TextTokenizer.encode(text)`'s ids before truncation and padding: whitespace dropped,
    /// each other character lowercased on its own (`ch.lower()`, which can give several
    /// characters, e.g. U+0130 gives `i` + U+0307), Hangul syllables split into conjoining
    /// jamo, unknown characters `<unk>`; a text with no token at all is one `<unk>`.
    pub(crate) fn encode(&self, text: &str) -> Vec<i64> {
        let mut out = Vec::with_capacity(text.len());
        for c in text.chars().filter(|&c| !is_python_space(c)) {
            for lower in c.to_lowercase() {
                for part in split_syllable(lower) {
                    out.push(self.ids.get(&part).copied().unwrap_or(self.unk));
                }
            }
        }
        if out.is_empty() {
            out.push(self.unk);
        }
        out
    }
}

/// `jamo.split_syllable`: a precomposed Hangul syllable as its leading consonant, vowel and
/// (unless none) trailing consonant; any other character as itself.
fn split_syllable(c: char) -> impl Iterator<Item = char> {
    let code = c as u32;
    let parts: [Option<char>; 3] = if (S_BASE..S_BASE + S_COUNT).contains(&code) {
        let index = code - S_BASE;
        let t = index % T_COUNT;
        [
            char::from_u32(L_BASE + index / N_COUNT),
            char::from_u32(V_BASE + (index % N_COUNT) / T_COUNT),
            (t != 0).then(|| char::from_u32(T_BASE + t)).flatten(),
        ]
    } else {
        [Some(c), None, None]
    };
    parts.into_iter().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocabulary() -> InputVocabulary {
        let tokens: Vec<String> = ["<pad>", "<unk>", "a", "b", "i", "\u{307}", "ᄒ", "ᅡ", "ᆫ"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        InputVocabulary::new(&tokens).unwrap()
    }

    #[test]
    fn python_whitespace_includes_the_separators() {
        for c in [
            '\t', '\n', '\u{1C}', '\u{1F}', ' ', '\u{85}', '\u{A0}', '\u{3000}',
        ] {
            assert!(is_python_space(c), "{:?}", c);
        }
        for c in ['a', '\u{200B}', '\u{180E}', '\u{1B}', '\u{FEFF}'] {
            assert!(!is_python_space(c), "{:?}", c);
        }
        assert_eq!(segments(" ab\u{1D}c  d\t"), ["ab", "c", "d"]);
        assert!(segments(" \u{3000} ").is_empty());
    }

    #[test]
    fn encoding_lowercases_splits_hangul_and_marks_unknowns() {
        let v = vocabulary();
        assert_eq!(v.encode("AB"), [2, 3]);
        // U+0130 lowercases to two characters.
        assert_eq!(v.encode("\u{130}"), [4, 5]);
        // 한 = ᄒ + ᅡ + ᆫ; 하 has no trailing consonant.
        assert_eq!(v.encode("한하"), [6, 7, 8, 6, 7]);
        assert_eq!(v.encode("a?b"), [2, 1, 3]);
        assert_eq!(v.encode(" a b "), [2, 3]);
        assert_eq!(v.encode(""), [1]);
        assert_eq!(v.encode("  "), [1]);
    }

    #[test]
    fn a_token_listed_twice_takes_its_last_index() {
        let tokens: Vec<String> = ["<pad>", "<unk>", "a", "a", "ab"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let v = InputVocabulary::new(&tokens).unwrap();
        assert_eq!(v.encode("a"), [3]);
        assert!(InputVocabulary::new(&tokens[1..]).is_err());
    }
}

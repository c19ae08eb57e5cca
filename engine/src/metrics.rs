// SPDX-License-Identifier: MPL-2.0
//! Transcript error metrics: edit distance, word error rate and character error rate, the
//! one definition the tests, the bench and the tools measure with.
//!
//! Both rates are the Levenshtein distance from the reference to the hypothesis (every
//! insertion, deletion and substitution costs one), divided by the reference length, so they
//! exceed one when the hypothesis adds more than the reference holds. An empty reference
//! counts as length one, so the rate is then the hypothesis length.
//!
//! ```
//! use quartznet_engine::metrics::{character_error_rate, edit_distance, word_error_rate};
//!
//! assert_eq!(edit_distance(b"kitten", b"sitting"), 3);
//! assert_eq!(word_error_rate("the cat sat", "the cat sat down"), 1.0 / 3.0);
//! assert_eq!(character_error_rate("ab  c", " ab c "), 0.0);
//! ```

/// Levenshtein distance between two sequences with unit costs, in `O(|a| |b|)` time and
/// `O(|b|)` memory (two rows of the dynamic programme). Symmetric in its arguments.
pub fn edit_distance<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, x) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(x != y);
            current[j + 1] = substitute.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// Word error rate of `hypothesis` against `reference`: the edit distance between their
/// whitespace-separated words over the number of reference words (at least 1).
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let reference: Vec<&str> = reference.split_whitespace().collect();
    let hypothesis: Vec<&str> = hypothesis.split_whitespace().collect();
    rate(edit_distance(&reference, &hypothesis), reference.len())
}

/// Character error rate of `hypothesis` against `reference`: the edit distance between
/// their characters over the number of reference characters (at least 1), both texts taken
/// with leading and trailing whitespace removed and every run of whitespace inside made one
/// space, so spaces between words count as characters but layout does not.
pub fn character_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let reference = normalized_chars(reference);
    let hypothesis = normalized_chars(hypothesis);
    rate(edit_distance(&reference, &hypothesis), reference.len())
}

/// The characters of `text`'s words joined by single spaces.
fn normalized_chars(text: &str) -> Vec<char> {
    let mut chars = Vec::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !chars.is_empty() {
            chars.push(' ');
        }
        chars.extend(word.chars());
    }
    chars
}

fn rate(errors: usize, reference_len: usize) -> f64 {
    errors as f64 / reference_len.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn known_distances() {
        for (a, b, d) in [
            ("kitten", "sitting", 3),
            ("flaw", "lawn", 2),
            ("same", "same", 0),
            ("abc", "", 3),
            ("", "abc", 3),
            ("", "", 0),
            ("intention", "execution", 5),
            ("ab", "ba", 2),
            ("héllo", "hello", 1),
        ] {
            assert_eq!(edit_distance(&chars(a), &chars(b)), d, "{a:?} {b:?}");
        }
        assert_eq!(edit_distance::<u8>(&[], &[]), 0);
        assert_eq!(edit_distance(&["a", "b", "c"], &["a", "x", "c", "d"]), 2);
    }

    #[test]
    fn distance_is_symmetric() {
        let words = [
            "", "a", "ab", "ba", "abc", "cab", "kitten", "sitting", "aaaa", "abab",
        ];
        for a in words {
            for b in words {
                assert_eq!(
                    edit_distance(a.as_bytes(), b.as_bytes()),
                    edit_distance(b.as_bytes(), a.as_bytes()),
                    "{a:?} {b:?}"
                );
            }
        }
    }

    #[test]
    fn word_error_rate_counts_words() {
        assert_eq!(word_error_rate("the cat sat", "the cat sat"), 0.0);
        assert_eq!(word_error_rate("the cat sat", "the dog sat"), 1.0 / 3.0);
        assert_eq!(word_error_rate("the cat sat", "  the\tcat \n sat "), 0.0);
        assert_eq!(word_error_rate("the cat sat", ""), 1.0);
        assert_eq!(word_error_rate("a b", "a b c d e"), 1.5);
        // Empty reference: the rate is the number of hypothesis words.
        assert_eq!(word_error_rate("", ""), 0.0);
        assert_eq!(word_error_rate(" ", "one two"), 2.0);
    }

    #[test]
    fn character_error_rate_normalises_whitespace() {
        assert_eq!(character_error_rate("hello world", "hello world"), 0.0);
        assert_eq!(
            character_error_rate("hello world", " hello \n\t world  "),
            0.0
        );
        // One substitution in 11 characters (the space counts).
        assert_eq!(
            character_error_rate("hello world", "hallo world"),
            1.0 / 11.0
        );
        // A missing space between words is one deletion.
        assert_eq!(
            character_error_rate("hello world", "helloworld"),
            1.0 / 11.0
        );
        assert_eq!(character_error_rate("abc", ""), 1.0);
        assert_eq!(character_error_rate("", ""), 0.0);
        assert_eq!(character_error_rate("", "  ab "), 2.0);
    }
}

// SPDX-License-Identifier: MPL-2.0
//! Text formatting: which of a chunk's words make one text buffer (caption-sized phrases, or
//! single words together with the pieces that continue them), the text of a buffer for each
//! separator, and the buffers themselves, partial ones marked by [`PARTIAL_META`].

use std::borrow::Cow;

use quartznet_engine::captions::{CaptionRules, CaptionWord, captions};
use quartznet_engine::decode::{Word, transcript};

use super::{PARTIAL_META, register_partial_meta};
use crate::quartznetstt::Separator;

/// Whether `word` continues the word before it: the decoder cut the word only for timing
/// (after a word gap of silence or the longest word), the model wrote no space.
fn continues(word: &Word) -> bool {
    word.spaces_before == 0
}

/// A chunk's final words in the groups that go out as one buffer each: caption-sized
/// phrases, or (`per_word`) words. Either way a piece that continues a word stays in the
/// buffer of the word it continues, so both granularities cut the text at the same places
/// (a continuation can only start a buffer when its first part went out in an earlier
/// chunk).
pub(super) fn buffer_groups(words: &[Word], per_word: bool, frame_seconds: f64) -> Vec<&[Word]> {
    if words.is_empty() {
        Vec::new()
    } else if per_word {
        words.chunk_by(|_, next| continues(next)).collect()
    } else {
        phrases(words, frame_seconds)
    }
}

/// A decoded word as the caption rules see it.
#[derive(Clone, Copy)]
struct FramedWord<'a> {
    word: &'a Word,
    frame_seconds: f64,
}

impl CaptionWord for FramedWord<'_> {
    fn text(&self) -> &str {
        &self.word.text
    }
    fn continues(&self) -> bool {
        continues(self.word)
    }
    fn start(&self) -> f64 {
        self.word.start_frame as f64 * self.frame_seconds
    }
    fn end(&self) -> f64 {
        self.word.end_frame as f64 * self.frame_seconds
    }
}

/// A chunk's final words cut into phrases as captions are cut (a file's chunk holds a
/// minute of words: one buffer of them would be one minute-long caption).
fn phrases(words: &[Word], frame_seconds: f64) -> Vec<&[Word]> {
    let framed: Vec<FramedWord> = words
        .iter()
        .map(|word| FramedWord {
            word,
            frame_seconds,
        })
        .collect();
    let mut out = Vec::new();
    let mut from = 0;
    for caption in captions(&framed, CaptionRules::DEFAULT) {
        out.push(&words[from..from + caption.len()]);
        from += caption.len();
    }
    out
}

/// The text of a buffer of words, as `separator` says: the model's separators before each
/// word ([`Separator::Model`]), or the words as the model joined them and then a space or a
/// line break.
pub(super) fn buffer_text(words: &[Word], separator: Separator) -> String {
    let end = match separator {
        Separator::Model => return transcript(words),
        Separator::Space => ' ',
        Separator::Newline => '\n',
    };
    let mut text = String::new();
    if let Some((first, rest)) = words.split_first() {
        text.push_str(&first.text);
        for word in rest {
            word.write_to(&mut text);
        }
        text.push(end);
    }
    text
}

/// `words` as they go downstream: when text went out before this stream (`after_text`: a
/// new segment without a flush), its first word is separated from that text by a space even
/// when the decoder, which started afresh, gives it none.
pub(super) fn separated(words: &[Word], after_text: bool) -> Cow<'_, [Word]> {
    match words.first() {
        Some(first) if after_text && continues(first) => {
            let mut words = words.to_vec();
            words[0].spaces_before = 1;
            Cow::Owned(words)
        }
        _ => Cow::Borrowed(words),
    }
}

/// A text buffer over `[start, end)` (empty when `end` is not after `start`).
pub(super) fn text_buffer(text: String, start: gst::ClockTime, end: gst::ClockTime) -> gst::Buffer {
    let mut buffer = gst::Buffer::from_mut_slice(text.into_bytes());
    {
        let buffer = buffer.get_mut().expect("a new buffer is writable");
        buffer.set_pts(start);
        buffer.set_duration(end.saturating_sub(start));
    }
    buffer
}

/// A partial text buffer: marked by [`PARTIAL_META`] and the DROPPABLE flag (a consumer that
/// wants only final text drops it), at `at` and zero long. It covers no time, so it never
/// overlaps the final text and gaps that later cover its words' time: `at` is where the
/// output already stands.
pub(super) fn partial_buffer(text: String, at: gst::ClockTime) -> gst::Buffer {
    let mut buffer = text_buffer(text, at, at);
    {
        let buffer = buffer.get_mut().expect("a new buffer is writable");
        buffer.set_flags(gst::BufferFlags::DROPPABLE);
        register_partial_meta();
        gst::meta::CustomMeta::add(buffer, PARTIAL_META).expect("registered above");
    }
    buffer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &str, spaces_before: u32) -> Word {
        Word {
            text: text.to_string(),
            spaces_before,
            start_frame: 0,
            end_frame: 1,
            confidence: 1.0,
        }
    }

    fn texts(groups: &[&[Word]], separator: Separator) -> Vec<String> {
        groups.iter().map(|g| buffer_text(g, separator)).collect()
    }

    #[test]
    fn a_buffer_ends_with_its_separator_and_joins_continued_words() {
        let words = [word("pra", 1), word("s", 0), word("ab", 2)];
        assert_eq!(buffer_text(&words, Separator::Model), " pras  ab");
        assert_eq!(buffer_text(&words, Separator::Space), "pras  ab ");
        assert_eq!(buffer_text(&words, Separator::Newline), "pras  ab\n");
        assert_eq!(buffer_text(&[], Separator::Space), "");
    }

    #[test]
    fn a_word_buffer_holds_the_pieces_that_continue_it() {
        gst::init().unwrap();
        let words = [
            word("s", 0), // continues a word sent before: it opens the chunk's first buffer
            word("pra", 1),
            word("s", 0),
            word("i", 0),
            word("ab", 1),
        ];
        let groups = buffer_groups(&words, true, 0.02);
        assert_eq!(texts(&groups, Separator::Space), ["s ", "prasi ", "ab "]);
        assert_eq!(
            texts(&buffer_groups(&words, false, 0.02), Separator::Space),
            ["s prasi ab "]
        );
    }

    #[test]
    fn only_a_stream_after_earlier_text_gets_a_space_first() {
        let words = [word("new", 0)];
        assert_eq!(separated(&words, true)[0].spaces_before, 1);
        assert_eq!(separated(&words, false)[0].spaces_before, 0);
        assert!(matches!(separated(&[], true), Cow::Borrowed(_)));
    }

    #[test]
    fn partial_buffers_are_marked_and_cover_no_time() {
        gst::init().unwrap();
        let at = gst::ClockTime::MAX;
        let b = partial_buffer("hel".to_string(), at);
        assert_eq!(
            (b.pts(), b.duration()),
            (Some(at), Some(gst::ClockTime::ZERO))
        );
        assert!(b.flags().contains(gst::BufferFlags::DROPPABLE));
        assert!(gst::meta::CustomMeta::from_buffer(&b, PARTIAL_META).is_ok());
        let b = text_buffer(String::new(), at, gst::ClockTime::ZERO);
        assert_eq!(b.duration(), Some(gst::ClockTime::ZERO));
    }
}

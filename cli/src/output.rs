// SPDX-License-Identifier: MPL-2.0
//! What is written for each input: lines of text, a JSON object, or SRT / WebVTT cues, all
//! built from the same timed words (the fields of the element's `quartznetstt` message).

use std::io::{self, Write};

use quartznet_engine::captions::{
    CaptionBuilder, CaptionRules, CaptionWord, caption_lines, display_times,
};

use crate::args::Format;

/// A recognised word: the `word` structure of the element's bus message (and of the JSON
/// output), times in seconds rounded to the millisecond.
#[derive(Clone, Debug, PartialEq)]
pub struct TimedWord {
    pub text: String,
    /// The spaces the model put before the word ("": it continues the word before).
    pub separator: String,
    pub start: f64,
    pub end: f64,
    pub confidence: f64,
    /// NeMo parity only: other confidences, keyed `MEASURE:ALPHA AGGREGATION`.
    pub confidences: Vec<(String, f64)>,
    /// NeMo parity only (streaming): seconds of audio given before the word came out.
    pub emitted: Option<f64>,
}

impl CaptionWord for TimedWord {
    fn text(&self) -> &str {
        &self.text
    }
    fn continues(&self) -> bool {
        self.separator.is_empty()
    }
    fn start(&self) -> f64 {
        self.start
    }
    fn end(&self) -> f64 {
        self.end
    }
}

/// Seconds rounded to the millisecond, the precision of every time written.
pub fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// The words as the model wrote them, each after its separator (the message's `text`).
pub fn model_text(words: &[TimedWord]) -> String {
    words
        .iter()
        .map(|w| format!("{}{}", w.separator, w.text))
        .collect()
}

/// Writes one input's words in one format as they arrive.
pub struct Writer {
    format: Format,
    /// `NAME: ` before each line of text (several inputs on one output).
    prefix: Option<String>,
    /// The input as the JSON object names it.
    input: String,
    rules: CaptionRules,
    builder: CaptionBuilder<TimedWord>,
    /// A cue waits for the next one's start, which bounds how long it may stay on screen.
    waiting_cue: Option<Vec<TimedWord>>,
    cues_written: usize,
    words: Vec<TimedWord>,
}

impl Writer {
    /// A writer for `input`; SRT and WebVTT headers are written at once, so an input
    /// without speech still gives a valid (empty) subtitle file.
    pub fn new(
        out: &mut dyn Write,
        format: Format,
        input: &str,
        prefix: Option<String>,
    ) -> io::Result<Self> {
        if format == Format::Vtt {
            out.write_all(b"WEBVTT\n\n")?;
        }
        Ok(Self {
            format,
            prefix,
            input: input.to_string(),
            rules: CaptionRules::DEFAULT,
            builder: CaptionBuilder::new(CaptionRules::DEFAULT),
            waiting_cue: None,
            cues_written: 0,
            words: Vec::new(),
        })
    }

    /// Final words, in order.
    pub fn push(&mut self, out: &mut dyn Write, words: &[TimedWord]) -> io::Result<()> {
        for word in words {
            if self.format == Format::Json {
                self.words.push(word.clone());
            } else if let Some(caption) = self.builder.push(word.clone()) {
                self.caption(out, caption)?;
            }
        }
        out.flush()
    }

    /// The end of the input: what is still held back.
    pub fn finish(mut self, out: &mut dyn Write) -> io::Result<()> {
        if let Some(caption) = self.builder.finish() {
            self.caption(out, caption)?;
        }
        if let Some(cue) = self.waiting_cue.take() {
            self.write_cue(out, &cue, f64::INFINITY)?;
        }
        if self.format == Format::Json {
            let line = serde_json::json!({
                "file": self.input,
                "text": model_text(&self.words),
                "words": self.words.iter().map(word_json).collect::<Vec<_>>(),
            });
            writeln!(out, "{line}")?;
        }
        out.flush()
    }

    fn caption(&mut self, out: &mut dyn Write, caption: Vec<TimedWord>) -> io::Result<()> {
        match self.format {
            Format::Txt => {
                let line = line_text(&caption_lines(&caption, &self.rules).join(" "));
                match &self.prefix {
                    Some(prefix) => writeln!(out, "{prefix}{line}"),
                    None => writeln!(out, "{line}"),
                }
            }
            Format::Srt | Format::Vtt => {
                let next_start = caption[0].start;
                if let Some(cue) = self.waiting_cue.replace(caption) {
                    self.write_cue(out, &cue, next_start)?;
                }
                Ok(())
            }
            Format::Json => Ok(()),
        }
    }

    fn write_cue(
        &mut self,
        out: &mut dyn Write,
        cue: &[TimedWord],
        next_start: f64,
    ) -> io::Result<()> {
        let span = (cue[0].start, cue[cue.len() - 1].end);
        let mut spans = vec![span];
        if next_start.is_finite() {
            spans.push((next_start, next_start));
        }
        let (start, end) = display_times(&spans, &self.rules)[0];
        self.cues_written += 1;
        let lines = caption_lines(cue, &self.rules).into_iter().map(|line| {
            let line = line_text(&line);
            match self.format {
                Format::Vtt => vtt_escape(&line),
                _ => line,
            }
        });
        let text = lines.collect::<Vec<_>>().join("\n");
        match self.format {
            Format::Srt => writeln!(
                out,
                "{}\n{} --> {}\n{text}\n",
                self.cues_written,
                timestamp(start, ','),
                timestamp(end, ',')
            ),
            _ => writeln!(
                out,
                "{} --> {}\n{text}\n",
                timestamp(start, '.'),
                timestamp(end, '.')
            ),
        }
    }
}

/// A line of text as the line-based formats (txt, SRT, WebVTT) write it. A byte-fallback
/// piece of a sub-word model can write any character into a word: the ones readers take for
/// the end of a line or paragraph (LF, CR, VT, FF, the separators FS, GS and RS, NEL, U+2028,
/// U+2029: Python's `str.splitlines`, Unicode's line and paragraph separators) are written as
/// spaces, or they would end the line or, doubled, the cue; NUL as U+FFFD, as WebVTT parsers
/// read it and because C readers stop at it. Everything else, other control characters
/// included, is written as the model wrote it (JSON keeps the exact text).
fn line_text(line: &str) -> String {
    line.chars()
        .map(|c| match c {
            '\n'
            | '\r'
            | '\u{0B}'
            | '\u{0C}'
            | '\u{1C}'..='\u{1E}'
            | '\u{85}'
            | '\u{2028}'
            | '\u{2029}' => ' ',
            '\0' => char::REPLACEMENT_CHARACTER,
            c => c,
        })
        .collect()
}

/// WebVTT cue text: `&`, `<` and `>` as character references (a bare `<` opens a cue tag,
/// `&` a reference, and `-->` may not appear in a cue).
fn vtt_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// A word as JSON: the message's `word` fields (and the parity extras when present).
pub fn word_json(w: &TimedWord) -> serde_json::Value {
    let mut word = serde_json::json!({
        "text": w.text,
        "separator": w.separator,
        "start": round_ms(w.start),
        "end": round_ms(w.end),
        "confidence": w.confidence,
    });
    if let Some(emitted) = w.emitted {
        word["emitted"] = serde_json::json!(round_ms(emitted));
    }
    if !w.confidences.is_empty() {
        let all: serde_json::Map<String, serde_json::Value> = w
            .confidences
            .iter()
            .map(|(name, value)| (name.clone(), serde_json::json!(value)))
            .collect();
        word["confidences"] = all.into();
    }
    word
}

/// `HH:MM:SS,mmm` (SRT) or `HH:MM:SS.mmm` (WebVTT).
fn timestamp(seconds: f64, separator: char) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}{separator}{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &str, start: f64, end: f64) -> TimedWord {
        TimedWord {
            text: text.to_string(),
            separator: " ".to_string(),
            start,
            end,
            confidence: 0.5,
            confidences: Vec::new(),
            emitted: None,
        }
    }

    fn render(format: Format, words: &[TimedWord]) -> String {
        let mut out = Vec::new();
        let mut writer = Writer::new(&mut out, format, "a.wav", None).unwrap();
        writer.push(&mut out, words).unwrap();
        writer.finish(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(3723.4567, ','), "01:02:03,457");
        assert_eq!(timestamp(0.0, '.'), "00:00:00.000");
    }

    #[test]
    fn subtitles_and_lines() {
        let words = [
            word("hello", 0.5, 0.9),
            word("world", 1.0, 1.3),
            word("again", 3.0, 3.4),
        ];
        assert_eq!(render(Format::Txt, &words), "hello world\nagain\n");
        assert_eq!(
            render(Format::Srt, &words),
            "1\n00:00:00,500 --> 00:00:01,333\nhello world\n\n\
             2\n00:00:03,000 --> 00:00:03,833\nagain\n\n"
        );
        assert_eq!(
            render(Format::Vtt, &words),
            "WEBVTT\n\n00:00:00.500 --> 00:00:01.333\nhello world\n\n\
             00:00:03.000 --> 00:00:03.833\nagain\n\n"
        );
        assert_eq!(render(Format::Vtt, &[]), "WEBVTT\n\n");
        assert_eq!(render(Format::Srt, &[]), "");
    }

    /// Byte-fallback pieces of sub-word models write any character: line breaks in a word
    /// must not end a line or a cue, WebVTT's markup characters are escaped, and the rest
    /// (non-ASCII, other control characters) is written as it is; JSON keeps all of it.
    #[test]
    fn any_character_a_model_writes_keeps_the_formats_valid() {
        let words = [
            word("a\nb<i>&", 0.5, 0.9),
            word("é\u{FFFD}\u{5}\r\0c\u{1E}-->", 1.0, 1.3),
        ];
        let line = "a b<i>& é\u{FFFD}\u{5} \u{FFFD}c -->";
        assert_eq!(render(Format::Txt, &words), format!("{line}\n"));
        assert_eq!(
            render(Format::Srt, &words),
            format!("1\n00:00:00,500 --> 00:00:01,333\n{line}\n\n")
        );
        assert_eq!(
            render(Format::Vtt, &words),
            "WEBVTT\n\n00:00:00.500 --> 00:00:01.333\n\
             a b&lt;i&gt;&amp; é\u{FFFD}\u{5} \u{FFFD}c --&gt;\n\n"
        );
        let json: serde_json::Value = serde_json::from_str(&render(Format::Json, &words)).unwrap();
        assert_eq!(json["text"], " a\nb<i>& é\u{FFFD}\u{5}\r\0c\u{1E}-->");
    }

    #[test]
    fn json_is_the_message_shape() {
        let line = render(Format::Json, &[word("hi", 0.1234, 0.5)]);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["text"], " hi");
        assert_eq!(value["words"][0]["text"], "hi");
        assert_eq!(value["words"][0]["start"], 0.123);
        assert_eq!(value["words"][0]["end"], 0.5);
    }
}

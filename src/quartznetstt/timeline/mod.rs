// SPDX-License-Identifier: MPL-2.0
//! The element's output timeline: where the recogniser's stream stands in buffer time, and
//! what goes downstream for each recognised chunk.
//!
//! The recogniser counts samples and output frames from the start of its stream; this maps
//! them onto the input's timestamps (`sync`: what a buffer's timestamp means, a pure
//! decision), keeps the output gapless (text buffers plus GAP events up to where text that is
//! not final yet may start), holds no text past the latency the element reports, ends
//! utterances and writes the bus reports. `clock` is the one conversion between samples and
//! time; `text` shapes the words into buffers.
//!
//! Every time computed here saturates (at zero and at `ClockTime::MAX`): upstream timestamps
//! can be anything, and `gst::ClockTime` arithmetic panics on overflow in debug builds.
//! Within a stream outputs never go back in time and never overlap: each starts where the
//! one before ended or later (partial text buffers are zero long).

mod clock;
mod sync;
mod text;

use std::collections::VecDeque;

use quartznet_engine::decode::Word;
use quartznet_engine::streaming::ChunkResult;

pub use clock::{Clock, Tolerance};
pub use sync::Sync;

use super::Separator;
use sync::Resync;

/// Name of the custom meta that marks a text buffer as partial: words not final yet, which
/// the final words that follow may change (see the README's *Partial results*).
pub const PARTIAL_META: &str = "QuartzNetSttPartialMeta";

/// Registers [`PARTIAL_META`] (once per process).
pub fn register_partial_meta() {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| gst::meta::CustomMeta::register(PARTIAL_META, &[]));
}

/// What goes downstream, in stream order.
#[derive(Debug)]
pub enum Output {
    /// A text buffer, timestamped.
    Text(gst::Buffer),
    /// A GAP event: nothing to say over `[start, start + duration)`.
    Gap {
        start: gst::ClockTime,
        duration: gst::ClockTime,
    },
    /// An utterance ended (its last word was followed by a word gap of silence, or the
    /// stream ended): the `rstranscribe/final-transcript` event of gst-plugins-rs
    /// transcribers, on which caption accumulators flush.
    FinalTranscript,
}

/// A word on the output timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct TimedWord {
    pub text: String,
    /// Spaces before the word ([`Word::spaces_before`]; 0: it continues the word before).
    pub spaces_before: u32,
    pub start: gst::ClockTime,
    pub end: gst::ClockTime,
    pub confidence: f32,
}

/// What a bus message says: words, their span (the chunk's when there are none) and
/// whether they are final. Every chunk gives a final report of the words completed in it (if
/// any), then a report that is not final of the words that are not final yet (often none:
/// nothing is being spoken); the last chunk of a stream gives, instead of the latter, the end
/// of the stream: a final report without words spanning the stream's last chunk.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub words: Vec<TimedWord>,
    /// End of a stream: the spaces the model emitted after the last word.
    pub trailing_spaces: u32,
    pub is_final: bool,
    pub start: gst::ClockTime,
    pub end: gst::ClockTime,
}

impl Report {
    /// The words as the model wrote them, each after its separator (the first one's too),
    /// so the texts of successive final reports concatenate into the transcript.
    pub fn text(&self) -> String {
        let mut text = String::new();
        for w in &self.words {
            text.extend(std::iter::repeat_n(' ', w.spaces_before as usize));
            text.push_str(&w.text);
        }
        text.extend(std::iter::repeat_n(' ', self.trailing_spaces as usize));
        text
    }
}

/// How the output is shaped; may change while streaming.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    /// One text buffer per word (a word cut only for timing stays one buffer) instead of
    /// one per phrase.
    pub per_word: bool,
    /// What ends (or, [`Separator::Model`], opens) each buffer's words.
    pub separator: Separator,
    /// Keep reports for the bus.
    pub reports: bool,
    /// Send the words that are not final yet downstream too, marked as partial.
    pub partials: bool,
}

/// A span of output time, `[start, end)`.
type Span = (gst::ClockTime, gst::ClockTime);

/// The output timeline of one element.
#[derive(Debug)]
pub struct Timeline {
    clock: Clock,
    /// How long decoding may hold a word back after it starts; text held longer is moved
    /// forward so a live sink never receives it after timestamp + reported latency.
    text_hold: gst::ClockTime,
    style: Style,
    /// Where the current stream's sample clock is tied to the timestamps.
    resync: Resync,
    /// Everything up to here has been covered downstream by text or a gap.
    emitted_until: Option<gst::ClockTime>,
    /// End frame of the last word sent since the last final-transcript event.
    utterance_end: Option<u64>,
    /// Text of the last partial buffer sent, so an unchanged partial is not sent again.
    last_partial: Option<String>,
    /// Text was sent since the last flush (a later stream's first word needs a separator).
    spoken: bool,
    /// A final word was sent in the current stream.
    stream_spoken: bool,
    /// The span of the current stream's last chunk that covered any time (the end of the
    /// stream spans it: the stream's very last result covers no frames).
    last_chunk: Option<Span>,
    pending: VecDeque<Output>,
    reports: Vec<Report>,
}

impl Timeline {
    /// A timeline without a stream, with `clock`'s constants, holding text at most
    /// `text_hold` after its words start.
    pub fn new(clock: Clock, text_hold: gst::ClockTime, style: Style) -> Self {
        Self {
            clock,
            text_hold,
            style,
            resync: Resync::default(),
            emitted_until: None,
            utterance_end: None,
            last_partial: None,
            spoken: false,
            stream_spoken: false,
            last_chunk: None,
            pending: VecDeque::new(),
            reports: Vec::new(),
        }
    }

    /// The timing constants.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Shapes the output from now on.
    pub fn set_style(&mut self, style: Style) {
        self.style = style;
    }

    /// Whether a stream is running (it starts at the first buffer after a start or drain).
    pub fn is_started(&self) -> bool {
        self.resync.is_started()
    }

    /// Where a buffer stamped `pts` stands against the sample clock, `pushed` samples into
    /// the stream (see [`Sync`]); `discont` is the buffer's DISCONT flag, which makes a
    /// discrepancy beyond the tolerance act at once.
    pub fn sync(&mut self, pts: gst::ClockTime, pushed: u64, discont: bool) -> Sync {
        self.resync.sync(&self.clock, pts, pushed, discont)
    }

    /// Ties the clock of the current stream to `pts` at stream sample `pushed` (after a
    /// `Sync::Reanchor`).
    pub fn reanchor(&mut self, pts: gst::ClockTime, pushed: u64) {
        self.resync.reanchor(pts, pushed);
    }

    /// Starts the output timeline of a new stream at `base` (it may even lie before the old
    /// one). An empty gap tells downstream at once where the text stream stands, so sinks
    /// preroll and live pipelines settle their latency before the first chunk is recognised.
    pub fn start(&mut self, base: gst::ClockTime) {
        self.resync.start(base);
        self.emitted_until = Some(base);
        self.last_chunk = None;
        self.pending.push_back(Output::Gap {
            start: base,
            duration: gst::ClockTime::ZERO,
        });
    }

    /// The time just after the last of `pushed` samples of the current stream.
    pub fn stream_end(&self, pushed: u64) -> gst::ClockTime {
        self.resync.time(&self.clock, pushed)
    }

    /// Ends the current stream; the next buffer starts a new one (drain, EOS, new segment).
    pub fn end_stream(&mut self) {
        self.resync.end();
        self.emitted_until = None;
        self.utterance_end = None;
        self.stream_spoken = false;
        self.last_chunk = None;
    }

    /// A GAP event over `[start, start + duration)` of input that is not recognised (it was
    /// dropped), so downstream keeps moving; nothing is being recognised meanwhile. The
    /// duration is cut short where it would run past the largest timestamp.
    pub fn skip(&mut self, start: gst::ClockTime, duration: gst::ClockTime) {
        let duration = duration.min(gst::ClockTime::MAX - start);
        self.pending.push_back(Output::Gap { start, duration });
    }

    /// Forgets the stream and everything not yet sent (flush).
    pub fn clear(&mut self) {
        self.end_stream();
        self.spoken = false;
        self.pending.clear();
        self.reports.clear();
    }

    /// The next output to send, if any.
    pub fn next_output(&mut self) -> Option<Output> {
        self.pending.pop_front()
    }

    /// All outputs not yet sent.
    pub fn take_outputs(&mut self) -> VecDeque<Output> {
        std::mem::take(&mut self.pending)
    }

    /// The reports not yet posted.
    pub fn take_reports(&mut self) -> Vec<Report> {
        std::mem::take(&mut self.reports)
    }

    /// Queues the text buffers, gaps and reports of a recognised chunk. `end` is the end of
    /// the stream once it is known: the last output frame is centred on the last sample, so
    /// frame times are clamped to it rather than run half a frame past the audio. Returns
    /// whether text was held beyond the reported latency (its timestamp then moved forward).
    pub fn push_result(&mut self, result: &ChunkResult, end: Option<gst::ClockTime>) -> bool {
        let finals = text::separated(&result.words, self.follows_text()).into_owned();
        let held_too_long = self.push_finals(result, &finals, end);
        if !finals.is_empty() {
            self.spoken = true;
            self.stream_spoken = true;
        }
        let chunk = self.chunk_span(result, end);
        if chunk.0 < chunk.1 {
            self.last_chunk = Some(chunk);
        }
        // Downstream may advance to where text that is not final yet may start (the word
        // still being spoken; with beam search, any hypothesis's), else to the chunk's end.
        let covered = result
            .unsettled_from
            .map_or(chunk.1, |frame| self.frame_time(frame, end));
        self.gap_until(covered);
        if result.last && result.trailing_spaces > 0 && self.style.separator == Separator::Model {
            // The model's text ends with spaces (NeMo's transcript keeps them).
            let at = self.emitted_until.unwrap_or(covered);
            let spaces = " ".repeat(result.trailing_spaces as usize);
            self.push_text(spaces, at, at);
        }
        let partial = text::separated(&result.partial, self.follows_text()).into_owned();
        if self.style.partials {
            self.push_partial(&partial);
        }
        self.end_utterance(result);
        if self.style.reports {
            self.queue_reports(result, &finals, &partial, chunk, end);
        }
        held_too_long
    }

    /// Whether the current stream's first word follows text sent before it (a new segment
    /// without a flush), so it needs a separator of its own.
    fn follows_text(&self) -> bool {
        self.spoken && !self.stream_spoken
    }

    /// Queues a chunk's final words as text buffers (and the gaps before them). Returns
    /// whether any was held beyond the reported latency.
    fn push_finals(
        &mut self,
        result: &ChunkResult,
        finals: &[Word],
        end: Option<gst::ClockTime>,
    ) -> bool {
        // This result goes downstream once the chunk's right context has arrived; text that
        // starts more than the reported hold before the chunk would reach a live sink after
        // its timestamp + latency, so its timestamp moves forward to the earliest on-time one
        // (only for words held unusually long; the bus report keeps the true times).
        let on_time_from = self
            .frame_time(result.first_frame, end)
            .saturating_sub(self.text_hold);
        let mut held_too_long = false;
        let groups = text::buffer_groups(finals, self.style.per_word, self.clock.frame_seconds());
        for words in groups {
            let (first, last) = (&words[0], &words[words.len() - 1]);
            let first_time = self.frame_time(first.start_frame, end);
            held_too_long |= first_time < on_time_from;
            let emitted = self.emitted_until.unwrap_or(gst::ClockTime::ZERO);
            let mut start = first_time.max(on_time_from).max(emitted);
            let stop = self.frame_time(last.end_frame, end).max(start);
            if stop == start && last.end_frame > first.start_frame {
                // Words the model found in the padding after the audio are clamped to its
                // end, zero long; caption encoders (tttocea608/708) drop such a buffer, so
                // they take the last frame before the end, where nothing was sent yet.
                start = stop.saturating_sub(self.frame_duration()).max(emitted);
            }
            self.gap_until(start);
            let text = text::buffer_text(words, self.style.separator);
            self.push_text(text, start, stop);
        }
        held_too_long
    }

    /// Sends the final-transcript event once the words sent are followed by a word gap of
    /// settled silence (nothing is being spoken), or at the end of the stream.
    fn end_utterance(&mut self, result: &ChunkResult) {
        if let Some(last) = result.words.last() {
            self.utterance_end = Some(last.end_frame);
        }
        let Some(end_frame) = self.utterance_end else {
            return;
        };
        let settled = result.partial.is_empty() && result.unsettled_from.is_none();
        let chunk_end = result.first_frame.saturating_add(result.frames);
        let silence = self
            .clock
            .frame_samples_of(chunk_end.saturating_sub(end_frame));
        let gap = self.clock.word_gap_samples;
        if result.last || (settled && gap > 0 && silence >= gap) {
            self.pending.push_back(Output::FinalTranscript);
            self.utterance_end = None;
        }
    }

    /// One output frame's duration.
    fn frame_duration(&self) -> gst::ClockTime {
        gst::ClockTime::from_nseconds((self.clock.frame_seconds() * 1e9).round() as u64)
    }

    /// The timestamp of output frame `frame` of the current stream, no later than the
    /// stream's `end` once known.
    fn frame_time(&self, frame: u64, end: Option<gst::ClockTime>) -> gst::ClockTime {
        let t = self
            .resync
            .time(&self.clock, self.clock.frame_samples_of(frame));
        end.map_or(t, |end| t.min(end))
    }

    /// The output time of a chunk's frames.
    fn chunk_span(&self, result: &ChunkResult, end: Option<gst::ClockTime>) -> Span {
        let after = result.first_frame.saturating_add(result.frames);
        (
            self.frame_time(result.first_frame, end),
            self.frame_time(after, end),
        )
    }

    fn push_text(&mut self, text: String, start: gst::ClockTime, end: gst::ClockTime) {
        self.pending
            .push_back(Output::Text(text::text_buffer(text, start, end)));
        self.emitted_until = Some(end);
        self.last_partial = None;
    }

    /// Sends the words not final yet as one partial buffer (see [`text::partial_buffer`]),
    /// unless it says what the last one said. It is zero long, at the time the output has
    /// reached: the final words that follow cover their time (the bus report has the
    /// partial words' own times).
    fn push_partial(&mut self, words: &[Word]) {
        if words.is_empty() {
            return;
        }
        let text = text::buffer_text(words, self.style.separator);
        if self.last_partial.as_deref() == Some(text.as_str()) {
            return;
        }
        self.last_partial = Some(text.clone());
        let at = self
            .emitted_until
            .unwrap_or_else(|| self.resync.time(&self.clock, 0));
        self.pending
            .push_back(Output::Text(text::partial_buffer(text, at)));
    }

    fn gap_until(&mut self, until: gst::ClockTime) {
        let from = self
            .emitted_until
            .unwrap_or_else(|| self.resync.time(&self.clock, 0));
        if until > from {
            self.pending.push_back(Output::Gap {
                start: from,
                duration: until - from,
            });
            self.emitted_until = Some(until);
        } else if self.emitted_until.is_none() {
            self.emitted_until = Some(from);
        }
    }

    /// The reports of a chunk (see [`Report`]): its final words, then its words not final
    /// yet (possibly none), or, for the stream's last chunk, the end of the stream.
    fn queue_reports(
        &mut self,
        result: &ChunkResult,
        finals: &[Word],
        partial: &[Word],
        chunk: Span,
        end: Option<gst::ClockTime>,
    ) {
        if !finals.is_empty() {
            let report = self.report(finals, true, chunk, end);
            self.reports.push(report);
        }
        let report = if result.last {
            // The spaces the model wrote after the last word are the end's text.
            let span = self.last_chunk.unwrap_or(chunk);
            Report {
                trailing_spaces: result.trailing_spaces,
                ..self.report(&[], true, span, end)
            }
        } else {
            self.report(partial, false, chunk, end)
        };
        self.reports.push(report);
    }

    /// A report of `words`, spanning them, else `chunk`.
    fn report(
        &self,
        words: &[Word],
        is_final: bool,
        chunk: Span,
        end: Option<gst::ClockTime>,
    ) -> Report {
        let words: Vec<TimedWord> = words
            .iter()
            .map(|w| TimedWord {
                text: w.text.clone(),
                spaces_before: w.spaces_before,
                start: self.frame_time(w.start_frame, end),
                end: self.frame_time(w.end_frame, end),
                confidence: w.confidence,
            })
            .collect();
        let (start, stop) = match (words.first(), words.last()) {
            (Some(first), Some(last)) => (first.start, last.end),
            _ => chunk,
        };
        Report {
            words,
            trailing_spaces: 0,
            is_final,
            start,
            end: stop,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 16_000;
    const FRAME: u64 = 320;

    fn ms(ms: u64) -> gst::ClockTime {
        gst::ClockTime::from_mseconds(ms)
    }

    fn timeline(per_word: bool) -> Timeline {
        gst::init().unwrap();
        let clock = Clock {
            sample_rate: RATE,
            frame_samples: FRAME,
            chunk_samples: 32_000,
            word_gap_samples: 4800,
            trust: Tolerance {
                tolerance: ms(40),
                discont_wait: ms(1000),
            },
        };
        let style = Style {
            per_word,
            separator: Separator::Model,
            reports: true,
            partials: false,
        };
        Timeline::new(clock, ms(1600), style)
    }

    fn word(text: &str, start_frame: u64, end_frame: u64) -> Word {
        Word {
            text: text.to_string(),
            spaces_before: 1,
            start_frame,
            end_frame,
            confidence: 0.5,
        }
    }

    fn chunk(first_frame: u64, frames: u64, words: Vec<Word>) -> ChunkResult {
        ChunkResult {
            first_frame,
            frames,
            words,
            ..ChunkResult::default()
        }
    }

    /// (text or "", start ms, duration ms) of every output.
    fn drain(t: &mut Timeline) -> Vec<(String, u64, u64)> {
        t.take_outputs()
            .into_iter()
            .map(|o| match o {
                Output::Text(b) => (
                    String::from_utf8(b.map_readable().unwrap().to_vec()).unwrap(),
                    b.pts().unwrap().mseconds(),
                    b.duration().unwrap().mseconds(),
                ),
                Output::Gap { start, duration } => {
                    (String::new(), start.mseconds(), duration.mseconds())
                }
                Output::FinalTranscript => ("<final>".to_string(), 0, 0),
            })
            .collect()
    }

    #[test]
    fn utterances_end_after_a_word_gap_of_settled_silence() {
        let mut t = timeline(false);
        t.start(ms(0));
        let finals = |t: &mut Timeline| {
            drain(t)
                .into_iter()
                .filter(|(text, ..)| !text.is_empty())
                .map(|(text, ..)| text)
                .collect::<Vec<_>>()
        };
        // A word ending 200 ms before the chunk's end: not yet an utterance's end (300 ms gap).
        t.push_result(&chunk(0, 50, vec![word("hello", 10, 40)]), None);
        assert_eq!(finals(&mut t), [" hello"]);
        // The next chunk is silent: the gap is reached.
        t.push_result(&chunk(50, 50, vec![]), None);
        assert_eq!(finals(&mut t), ["<final>"]);
        // Silence without new words sends nothing more.
        t.push_result(&chunk(100, 50, vec![]), None);
        assert!(finals(&mut t).is_empty());
        // Speech still going on at the chunk's end holds the event back.
        let mut speaking = chunk(150, 50, vec![word("there", 150, 160)]);
        speaking.partial = vec![word("wor", 190, 200)];
        speaking.unsettled_from = Some(190);
        t.push_result(&speaking, None);
        assert_eq!(finals(&mut t), [" there"]);
        // The end of the stream ends the utterance at once.
        let mut last = chunk(200, 10, vec![word("world", 190, 205)]);
        last.last = true;
        t.push_result(&last, Some(ms(4200)));
        assert_eq!(finals(&mut t), [" world", "<final>"]);
    }

    #[test]
    fn partials_go_downstream_marked_and_finals_follow() {
        let mut t = timeline(false);
        t.set_style(Style {
            partials: true,
            ..t.style
        });
        t.start(ms(0));
        let texts = |t: &mut Timeline| -> Vec<(String, u64, bool)> {
            t.take_outputs()
                .into_iter()
                .filter_map(|o| match o {
                    Output::Text(b) => Some((
                        String::from_utf8(b.map_readable().unwrap().to_vec()).unwrap(),
                        b.pts().unwrap().mseconds(),
                        gst::meta::CustomMeta::from_buffer(&b, PARTIAL_META).is_ok()
                            && b.flags().contains(gst::BufferFlags::DROPPABLE),
                    )),
                    _ => None,
                })
                .collect()
        };
        let mut r = chunk(0, 50, vec![word("one", 5, 15)]);
        r.partial = vec![word("two", 20, 30), word("thr", 35, 50)];
        r.unsettled_from = Some(20);
        t.push_result(&r, None);
        assert_eq!(
            texts(&mut t),
            [
                (" one".to_string(), 100, false),
                (" two thr".to_string(), 400, true)
            ]
        );
        // The same partial again is not repeated; a changed one is.
        let mut same = chunk(50, 10, vec![]);
        same.partial = r.partial.clone();
        same.unsettled_from = Some(20);
        t.push_result(&same, None);
        assert!(texts(&mut t).is_empty());
        let mut r = chunk(60, 40, vec![word("two", 20, 30)]);
        r.partial = vec![word("three", 35, 60)];
        r.unsettled_from = Some(35);
        t.push_result(&r, None);
        assert_eq!(
            texts(&mut t),
            [
                (" two".to_string(), 400, false),
                (" three".to_string(), 700, true)
            ]
        );
    }

    #[test]
    fn text_and_gaps_tile_the_stream_from_its_base() {
        let mut t = timeline(false);
        assert_eq!(t.sync(ms(5000), 0, false), Sync::Start);
        t.start(ms(5000));
        t.push_result(
            &chunk(0, 100, vec![word("hello", 10, 30), word("world", 40, 60)]),
            None,
        );
        t.push_result(&chunk(100, 100, vec![]), None);
        assert_eq!(
            drain(&mut t),
            vec![
                (String::new(), 5000, 0),
                (String::new(), 5000, 200),
                (" hello world".to_string(), 5200, 1000),
                (String::new(), 6200, 800),
                ("<final>".to_string(), 0, 0),
                (String::new(), 7000, 2000),
            ]
        );
    }

    /// Buffers carry the model's separators, so they concatenate into its text: a word cut
    /// for timing continues without a space, and a new stream after earlier text (a new
    /// segment without a flush) starts with one even though its decoder started afresh.
    #[test]
    fn buffers_concatenate_into_the_models_text() {
        let mut t = timeline(false);
        let texts =
            |t: &mut Timeline| -> String { drain(t).into_iter().map(|(text, ..)| text).collect() };
        t.start(ms(0));
        let mut first = word("cilf", 0, 150);
        first.spaces_before = 0;
        t.push_result(&chunk(0, 150, vec![first]), None);
        let mut cont = word("sifix", 150, 170);
        cont.spaces_before = 0;
        t.push_result(&chunk(150, 50, vec![cont, word("ab", 180, 190)]), None);
        assert_eq!(texts(&mut t), "cilfsifix ab");
        t.end_stream();
        t.start(ms(5000));
        let mut again = word("new", 0, 10);
        again.spaces_before = 0;
        t.push_result(&chunk(0, 20, vec![again.clone()]), None);
        let reports = t.take_reports();
        let finals: Vec<&Report> = reports.iter().filter(|r| r.is_final).collect();
        assert_eq!(finals.last().unwrap().text(), " new");
        assert_eq!(texts(&mut t), " new");
        // Spaces after the last word end the stream's text.
        let mut end = chunk(20, 10, vec![]);
        (end.last, end.trailing_spaces) = (true, 2);
        t.push_result(&end, None);
        assert_eq!(texts(&mut t), "  <final>");
        assert_eq!(t.take_reports().last().unwrap().text(), "  ");
        // After a flush nothing came before.
        t.clear();
        t.start(ms(0));
        t.push_result(&chunk(0, 20, vec![again]), None);
        assert_eq!(texts(&mut t), "new");
    }

    #[test]
    fn per_word_buffers_and_newlines() {
        let mut t = timeline(true);
        t.set_style(Style {
            per_word: true,
            separator: Separator::Newline,
            reports: false,
            partials: false,
        });
        t.start(ms(0));
        let mut c = word("c", 30, 40);
        c.spaces_before = 0;
        let mut r = chunk(0, 100, vec![word("a", 0, 5), word("b", 10, 20), c]);
        (r.last, r.trailing_spaces) = (true, 1);
        t.push_result(&r, None);
        let texts: Vec<(String, u64, u64)> = drain(&mut t)
            .into_iter()
            .filter(|(s, _, _)| !s.is_empty())
            .collect();
        // Every buffer ends with a line break; a piece that continues a word (cut only for
        // timing) is in its word's buffer, which spans both; the model's spaces after the
        // last word are not written.
        assert_eq!(
            texts,
            vec![
                ("a\n".to_string(), 0, 100),
                ("bc\n".to_string(), 200, 600),
                ("<final>".to_string(), 0, 0)
            ]
        );
        assert!(t.take_reports().is_empty());
    }

    /// By default a phrase is its words and a space, so buffers concatenate into prose
    /// even where the model wrote no space between two phrases.
    #[test]
    fn phrases_end_with_a_space_by_default() {
        let mut t = timeline(false);
        t.set_style(Style {
            separator: Separator::default(),
            ..t.style
        });
        t.start(ms(0));
        let mut and = word("and", 60, 70);
        and.spaces_before = 0;
        t.push_result(&chunk(0, 50, vec![word("grace", 0, 20)]), None);
        t.push_result(&chunk(50, 50, vec![and, word("the", 72, 80)]), None);
        let text: String = drain(&mut t)
            .into_iter()
            .map(|(text, ..)| text)
            .filter(|text| text != "<final>")
            .collect();
        assert_eq!(text, "grace and the ");
    }

    /// A chunk's words (a file's chunk holds a minute) go out as caption-sized phrases:
    /// after a pause, or when two lines of 42 characters or 7 s are full.
    #[test]
    fn a_long_chunk_is_cut_into_phrases() {
        let mut t = timeline(false);
        t.start(ms(0));
        // Words of 5 letters every 300 ms: 7 per line of 42, so 14 per phrase.
        let words: Vec<Word> = (0..30)
            .map(|i| word("abcde", i * 15, i * 15 + 10))
            .collect();
        // ... and one after a pause of a second.
        let mut all = words;
        all.push(word("late", 30 * 15 + 50, 30 * 15 + 60));
        t.push_result(&chunk(0, 600, all), None);
        let texts: Vec<String> = drain(&mut t)
            .into_iter()
            .map(|(text, ..)| text)
            .filter(|s| !s.is_empty() && s != "<final>")
            .collect();
        let sizes: Vec<usize> = texts.iter().map(|s| s.split_whitespace().count()).collect();
        assert_eq!(sizes, [14, 14, 2, 1], "{texts:?}");
        assert_eq!(texts[3], " late");
    }

    #[test]
    fn unsettled_text_holds_the_gap_back() {
        let mut t = timeline(false);
        t.start(ms(0));
        let mut r = chunk(0, 100, vec![]);
        r.unsettled_from = Some(80);
        r.partial = vec![word("hel", 80, 100)];
        t.push_result(&r, None);
        assert_eq!(
            drain(&mut t),
            vec![(String::new(), 0, 0), (String::new(), 0, 1600)]
        );
        let reports = t.take_reports();
        assert_eq!(reports.len(), 1);
        assert!(!reports[0].is_final);
        assert_eq!(reports[0].text(), " hel");
        assert_eq!((reports[0].start, reports[0].end), (ms(1600), ms(2000)));
    }

    #[test]
    fn text_held_beyond_the_hold_moves_forward() {
        let mut t = timeline(false);
        t.start(ms(0));
        t.push_result(&chunk(0, 100, vec![]), None);
        drain(&mut t);
        t.take_reports();
        // A word that started 3 s before its chunk (frame 200 = 4 s): hold is 1.6 s.
        let r = chunk(200, 100, vec![word("long", 50, 210)]);
        assert!(t.push_result(&r, None), "held too long");
        let out = drain(&mut t);
        assert_eq!(out[0], (String::new(), 2000, 400));
        assert_eq!(out[1], (" long".to_string(), 2400, 1800));
        // The report keeps the true time.
        assert_eq!(t.take_reports()[0].start, ms(1000));
    }

    #[test]
    fn end_of_stream_clamps_to_the_last_sample_and_reports_the_end() {
        let mut t = timeline(false);
        t.start(ms(0));
        let mut r = chunk(0, 3, vec![word("x", 0, 3)]);
        r.last = true;
        let end = t.stream_end(800); // 50 ms: the third frame is centred past it
        t.push_result(&r, Some(end));
        let out = drain(&mut t);
        assert_eq!(out[1], (" x".to_string(), 0, 50));
        // The last chunk's words, then the end of the stream on its own.
        let reports = t.take_reports();
        assert_eq!(reports.len(), 2);
        assert!(reports[0].is_final && reports[0].words.len() == 1);
        assert!(reports[1].is_final && reports[1].words.is_empty());
        let mut empty = chunk(3, 0, vec![]);
        empty.last = true;
        t.push_result(&empty, Some(end));
        let reports = t.take_reports();
        assert_eq!(reports.len(), 1);
        assert!(reports[0].is_final && reports[0].words.is_empty());
    }

    /// A word found wholly in the padding after the audio would be clamped to a zero-long
    /// buffer at the end, which caption encoders drop: it takes the last frame instead.
    #[test]
    fn a_word_past_the_end_keeps_a_duration() {
        let mut t = timeline(false);
        t.start(ms(0));
        let mut r = chunk(0, 60, vec![word("a", 10, 20), word("b", 52, 55)]);
        r.last = true;
        let end = t.stream_end(50 * FRAME); // 1 s: word "b" lies past it
        t.push_result(&r, Some(end));
        let out = drain(&mut t);
        let out: Vec<_> = out.into_iter().filter(|o| o.0 != "<final>").collect();
        let text: Vec<_> = out.iter().filter(|o| !o.0.is_empty()).collect();
        assert_eq!(text.len(), 2, "{out:?}");
        assert_eq!(*text[1], (" b".to_string(), 980, 20));
        // Output runs on without a hole to the end.
        let mut until = 0;
        for (_, start, duration) in &out {
            assert_eq!(*start, until, "{out:?}");
            until = start + duration;
        }
        assert_eq!(until, 1000);
    }

    #[test]
    fn clear_and_end_stream_start_afresh() {
        let mut t = timeline(false);
        t.start(ms(0));
        t.push_result(&chunk(0, 100, vec![word("a", 0, 5)]), None);
        t.clear();
        assert!(!t.is_started());
        assert!(t.next_output().is_none());
        assert!(t.take_reports().is_empty());
        t.start(ms(500));
        t.end_stream();
        assert!(!t.is_started());
        assert_eq!(
            t.next_output().map(|o| matches!(o, Output::Gap { .. })),
            Some(true)
        );
    }

    /// The text buffers' texts, concatenated.
    fn text_of(outputs: &[(String, u64, u64)]) -> String {
        outputs
            .iter()
            .map(|(text, ..)| text.as_str())
            .filter(|text| *text != "<final>")
            .collect()
    }

    /// The words of a text.
    fn words_of(text: &str) -> Vec<&str> {
        text.split_whitespace().collect()
    }

    /// A word cut only for timing (a piece with no space before it) is one word: word
    /// buffers hold it whole, as phrase buffers, the bus and the client do, so the buffers
    /// of both granularities concatenate into the same text for every separator. Across
    /// chunks (the first part already sent) a continuation starts a buffer in both.
    #[test]
    fn word_buffers_concatenate_to_the_same_words_as_phrase_buffers() {
        let cont = |text: &str, start, end| Word {
            spaces_before: 0,
            ..word(text, start, end)
        };
        let first = chunk(
            0,
            50,
            vec![
                word("grace", 0, 10),
                word("pra", 12, 20),
                cont("s", 20, 25),
                cont("i", 25, 27),
                word("ab", 28, 35),
            ],
        );
        let second = chunk(50, 50, vec![cont("ly", 50, 55), word("the", 57, 65)]);
        for separator in [Separator::Model, Separator::Space, Separator::Newline] {
            let run = |per_word: bool| {
                let mut t = timeline(per_word);
                t.set_style(Style {
                    separator,
                    ..t.style
                });
                t.start(ms(0));
                t.push_result(&first, None);
                t.push_result(&second, None);
                text_of(&drain(&mut t))
            };
            let (phrases, words) = (run(false), run(true));
            assert_eq!(words_of(&words), words_of(&phrases), "{separator:?}");
            if separator != Separator::Newline {
                // A line per word instead of per phrase; otherwise the same text.
                assert_eq!(words, phrases, "{separator:?}");
            }
            let expected = match separator {
                Separator::Model => " grace prasi ably the",
                Separator::Space => "grace prasi ab ly the ",
                Separator::Newline => "grace prasi ab\nly the\n",
            };
            assert_eq!(phrases, expected, "{separator:?}");
        }
        // Word buffers are words, each timed from its first piece's start to its last's end.
        let mut t = timeline(true);
        t.start(ms(0));
        t.push_result(&first, None);
        let words: Vec<_> = drain(&mut t)
            .into_iter()
            .filter(|(text, ..)| !text.is_empty() && text != "<final>")
            .collect();
        assert_eq!(
            words,
            [
                (" grace".to_string(), 0, 200),
                (" prasi".to_string(), 240, 300),
                (" ab".to_string(), 560, 140)
            ]
        );
    }

    /// The end of a stream spans the stream's last chunk that covered any time: the very
    /// last result covers no frames, and chunks of padding after the audio are clamped to
    /// its end.
    #[test]
    fn the_end_message_spans_the_last_chunk() {
        let mut t = timeline(false);
        t.start(ms(1000));
        t.push_result(&chunk(0, 100, vec![word("a", 10, 20)]), None);
        let end = t.stream_end(140 * FRAME); // 2.8 s of audio
        assert_eq!(end, ms(3800));
        t.push_result(&chunk(100, 50, vec![]), Some(end)); // [3 s, 3.8 s)
        t.push_result(&chunk(150, 50, vec![]), Some(end)); // padding only
        let mut tail = chunk(200, 0, vec![]);
        tail.last = true;
        t.push_result(&tail, Some(end));
        let reports = t.take_reports();
        let last = reports.last().unwrap();
        assert!(last.is_final && last.words.is_empty(), "{reports:?}");
        assert_eq!((last.start, last.end), (ms(3000), ms(3800)));
    }

    /// Every chunk posts a report that is not final: its words not final yet, or none
    /// (nothing is being spoken: an application clears the partial it shows); the final
    /// words come first. The stream's last chunk ends the stream instead.
    #[test]
    fn every_chunk_reports_its_words_not_final_yet() {
        let mut t = timeline(false);
        t.start(ms(0));
        t.push_result(&chunk(0, 50, vec![]), None);
        t.push_result(&chunk(50, 50, vec![word("a", 60, 70)]), None);
        let summary: Vec<(bool, usize, u64, u64)> = t
            .take_reports()
            .iter()
            .map(|r| {
                let (start, end) = (r.start.mseconds(), r.end.mseconds());
                (r.is_final, r.words.len(), start, end)
            })
            .collect();
        assert_eq!(
            summary,
            [
                (false, 0, 0, 1000),
                (true, 1, 1200, 1400),
                (false, 0, 1000, 2000)
            ]
        );
        let mut last = chunk(100, 0, vec![]);
        last.last = true;
        t.push_result(&last, Some(ms(2000)));
        let reports = t.take_reports();
        assert_eq!(reports.len(), 1);
        assert!(reports[0].is_final && reports[0].words.is_empty());
    }

    /// Where the previous outputs ended; checks that outputs never go back in time or
    /// overlap (zero-long ones may share a time) and that no output ends past the largest
    /// timestamp.
    fn check_tiled(outputs: &VecDeque<Output>, until: &mut Option<gst::ClockTime>) {
        for output in outputs {
            let (start, duration) = match output {
                Output::Text(b) => (b.pts().expect("a PTS"), b.duration().expect("a duration")),
                Output::Gap { start, duration } => (*start, *duration),
                Output::FinalTranscript => continue,
            };
            let end = start
                .checked_add(duration)
                .unwrap_or_else(|| panic!("{output:?} ends past the largest timestamp"));
            if let Some(until) = *until {
                assert!(
                    start >= until,
                    "{output:?} starts before {until}: {outputs:?}"
                );
            }
            *until = Some(end);
        }
    }

    /// A partial buffer is zero long at the time the output has reached, so the final text
    /// and gaps that then cover its words' time never overlap it.
    #[test]
    fn partial_buffers_overlap_nothing() {
        let mut t = timeline(false);
        t.set_style(Style {
            partials: true,
            ..t.style
        });
        t.start(ms(0));
        let mut r = chunk(0, 50, vec![word("one", 5, 15)]);
        r.partial = vec![word("two", 20, 30), word("thr", 35, 50)];
        r.unsettled_from = Some(20);
        t.push_result(&r, None);
        let mut r = chunk(50, 50, vec![word("two", 20, 30), word("three", 35, 60)]);
        r.partial = vec![word("fo", 90, 100)];
        r.unsettled_from = Some(90);
        t.push_result(&r, None);
        let outputs = t.take_outputs();
        let mut until = None;
        check_tiled(&outputs, &mut until);
        let partials: Vec<(u64, u64)> = outputs
            .iter()
            .filter_map(|o| match o {
                Output::Text(b) if b.flags().contains(gst::BufferFlags::DROPPABLE) => Some((
                    b.pts().unwrap().mseconds(),
                    b.duration().unwrap().mseconds(),
                )),
                _ => None,
            })
            .collect();
        assert_eq!(partials, [(400, 0), (1800, 0)]);
    }

    /// Timestamps up to the largest one, sample and frame counts up to `u64::MAX`: nothing
    /// overflows (a panic in debug builds), times saturate at the largest timestamp.
    #[test]
    fn timestamps_near_the_end_of_time_saturate() {
        let mut t = timeline(true);
        t.set_style(Style {
            partials: true,
            ..t.style
        });
        let near_end = gst::ClockTime::MAX - gst::ClockTime::SECOND;
        assert_eq!(t.sync(near_end, 0, false), Sync::Start);
        t.start(near_end);
        let mut until = None;
        assert_eq!(t.sync(gst::ClockTime::MAX, 16_000, false), Sync::InStep);
        let mut r = chunk(40, 100, vec![word("a", 40, 60), word("b", 90, 120)]);
        r.partial = vec![word("c", 130, u64::MAX)];
        r.unsettled_from = Some(130);
        t.push_result(&r, None);
        let huge = u64::MAX - 10;
        let mut r = chunk(huge, u64::MAX, vec![word("d", huge, u64::MAX)]);
        (r.last, r.trailing_spaces) = (true, 1);
        t.push_result(&r, Some(gst::ClockTime::MAX));
        check_tiled(&t.take_outputs(), &mut until);
        assert_eq!(until, Some(gst::ClockTime::MAX));
        let reports = t.take_reports();
        assert_eq!(reports.last().unwrap().end, gst::ClockTime::MAX);
        t.reanchor(gst::ClockTime::MAX, u64::MAX);
        assert_eq!(t.stream_end(u64::MAX), gst::ClockTime::MAX);
        t.end_stream();
        t.skip(near_end, gst::ClockTime::MAX);
        check_tiled(&t.take_outputs(), &mut None);
    }

    mod random {
        //! Random timestamps, chunk results and styles through the timeline.

        use super::*;
        use proptest::prelude::*;

        /// Cases per run: `QUARTZNETSTT_FUZZ_CASES` or 256; no regression files.
        fn config() -> ProptestConfig {
            let cases = std::env::var("QUARTZNETSTT_FUZZ_CASES")
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(256);
            ProptestConfig {
                cases,
                failure_persistence: None,
                ..ProptestConfig::default()
            }
        }

        /// A timestamp: near zero, near the largest one, or anywhere.
        fn time() -> impl Strategy<Value = gst::ClockTime> {
            let max = gst::ClockTime::MAX.nseconds();
            prop_oneof![0..20_000_000_000u64, (max - 20_000_000_000)..=max, 0..=max,]
                .prop_map(gst::ClockTime::from_nseconds)
        }

        /// A sample or frame count: small, or anywhere up to `u64::MAX`.
        fn count() -> impl Strategy<Value = u64> {
            prop_oneof![4 => 0..2000u64, 1 => any::<u64>()]
        }

        /// Words in order from `first_frame`, some continuing the word before.
        fn words(max: usize) -> impl Strategy<Value = Vec<Word>> {
            (
                count(),
                prop::collection::vec((0..4u32, 0..30u64, 0..60u64, "[a-z]{1,4}"), 0..max),
            )
                .prop_map(|(mut at, specs)| {
                    specs
                        .into_iter()
                        .map(|(spaces_before, before, len, text)| {
                            let start_frame = at.saturating_add(before);
                            at = start_frame.saturating_add(len);
                            Word {
                                text,
                                spaces_before,
                                start_frame,
                                end_frame: at,
                                confidence: 0.5,
                            }
                        })
                        .collect()
                })
        }

        fn result() -> impl Strategy<Value = ChunkResult> {
            (
                count(),
                count(),
                words(6),
                words(3),
                prop::option::of(count()),
                any::<bool>(),
                0..3u32,
            )
                .prop_map(
                    |(
                        first_frame,
                        frames,
                        words,
                        partial,
                        unsettled_from,
                        last,
                        trailing_spaces,
                    )| {
                        ChunkResult {
                            first_frame,
                            frames,
                            words,
                            partial,
                            unsettled_from,
                            last,
                            trailing_spaces,
                            ..ChunkResult::default()
                        }
                    },
                )
        }

        fn style() -> impl Strategy<Value = Style> {
            (
                any::<bool>(),
                prop_oneof![
                    Just(Separator::Model),
                    Just(Separator::Space),
                    Just(Separator::Newline)
                ],
                any::<bool>(),
                any::<bool>(),
            )
                .prop_map(|(per_word, separator, reports, partials)| Style {
                    per_word,
                    separator,
                    reports,
                    partials,
                })
        }

        #[derive(Clone, Debug)]
        enum Op {
            Sync(gst::ClockTime, u64, bool),
            Reanchor(gst::ClockTime, u64),
            Start(gst::ClockTime),
            Push(ChunkResult, Option<gst::ClockTime>),
            Skip(gst::ClockTime, gst::ClockTime),
            EndStream,
            Clear,
            Style(Style),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                3 => (time(), count(), any::<bool>()).prop_map(|(p, n, d)| Op::Sync(p, n, d)),
                1 => (time(), count()).prop_map(|(p, n)| Op::Reanchor(p, n)),
                2 => time().prop_map(Op::Start),
                6 => (result(), prop::option::of(time())).prop_map(|(r, e)| Op::Push(r, e)),
                1 => (time(), time()).prop_map(|(s, d)| Op::Skip(s, d)),
                1 => Just(Op::EndStream),
                1 => Just(Op::Clear),
                1 => style().prop_map(Op::Style),
            ]
        }

        proptest! {
            #![proptest_config(config())]

            /// Any sequence: no panic (debug builds check every addition), and within a
            /// stream (from a start to its end, a clear or an upstream skip) outputs never
            /// go back in time or overlap, no text buffer ends past the largest timestamp,
            /// and no report ends before it starts.
            #[test]
            fn any_timestamps_keep_the_output_in_order(
                style in style(),
                ops in prop::collection::vec(op(), 1..40),
            ) {
                let mut t = timeline(false);
                t.set_style(style);
                let mut until = None;
                for op in ops {
                    match op {
                        Op::Sync(pts, pushed, discont) => {
                            if let Sync::Reanchor(_) = t.sync(pts, pushed, discont) {
                                t.reanchor(pts, pushed);
                            }
                        }
                        Op::Reanchor(pts, pushed) => t.reanchor(pts, pushed),
                        Op::Start(base) => {
                            until = None;
                            t.start(base);
                        }
                        Op::Push(result, end) => {
                            t.push_result(&result, end);
                        }
                        Op::Skip(start, duration) => {
                            t.skip(start, duration);
                            check_tiled(&t.take_outputs(), &mut None);
                            continue;
                        }
                        Op::EndStream => {
                            t.end_stream();
                            check_tiled(&t.take_outputs(), &mut until);
                            until = None;
                            continue;
                        }
                        Op::Clear => {
                            until = None;
                            t.clear();
                        }
                        Op::Style(style) => t.set_style(style),
                    }
                    check_tiled(&t.take_outputs(), &mut until);
                    for report in t.take_reports() {
                        prop_assert!(report.start <= report.end, "{report:?}");
                    }
                }
            }
        }
    }
}

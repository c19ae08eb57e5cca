// SPDX-License-Identifier: MPL-2.0
//! The element's output timeline: where the recogniser's stream stands in buffer time, and
//! what goes downstream for each recognised chunk.
//!
//! The recogniser counts samples and output frames from the start of its stream; this maps
//! them onto the input's timestamps (an anchor ties one stream sample to one timestamp, and
//! the sample count is the clock from there), keeps the output gapless (text buffers plus GAP
//! events up to where text that is not final yet may start), holds no text past the latency
//! the element reports, and decides what a buffer's timestamp means for the stream.
//!
//! Timestamps are trusted to within a tolerance, as `audiobasesink` trusts them (its
//! `alignment-threshold` and `discont-wait`): jitter inside the tolerance changes nothing; a
//! discrepancy beyond it that persists for `discont-wait` (clock drift, a source whose clock
//! runs fast or slow) moves the anchor to the timestamps without touching the audio; a sudden
//! jump of more than twice the tolerance is a discontinuity: a hole of up to a chunk is filled
//! with silence, anything larger (or a step back) ends the stream and starts a new one.

use std::collections::VecDeque;

use gst::prelude::*;
use std::borrow::Cow;

use quartznet_engine::captions::{CaptionRules, CaptionWord, captions};
use quartznet_engine::decode::{Word, transcript};
use quartznet_engine::streaming::ChunkResult;

use super::Separator;

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

/// What the bus message of a chunk says: its words, their span (the chunk's when there are
/// none) and whether they are final. The end of a stream is a final report without words.
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
    /// One text buffer per word instead of one per phrase.
    pub per_word: bool,
    /// What ends (or, [`Separator::Model`], opens) each buffer's words.
    pub separator: Separator,
    /// Keep reports for the bus.
    pub reports: bool,
    /// Send the words that are not final yet downstream too, marked as partial.
    pub partials: bool,
}

/// Name of the custom meta that marks a text buffer as partial: words not final yet, which
/// the final words that follow may change (see the README's *Partial results*).
pub const PARTIAL_META: &str = "QuartzNetSttPartialMeta";

/// Registers [`PARTIAL_META`] (once per process).
pub fn register_partial_meta() {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| gst::meta::CustomMeta::register(PARTIAL_META, &[]));
}

/// What a buffer's timestamp means for the current stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sync {
    /// No stream yet: it starts at this buffer.
    Start,
    /// Within the tolerance of the sample clock (or not beyond it for long): the sample count
    /// stays the clock.
    InStep,
    /// The timestamps have drifted this far (ns; positive: ahead of the sample count) for
    /// longer than `discont-wait`: the clock now follows them, the audio is untouched.
    Reanchor(i64),
    /// A hole this many samples long, short enough to fill with silence.
    Fill(u64),
    /// A long hole or a step back of this many ns: end the stream (as at EOS) and start a
    /// new one here.
    Restart(i64),
}

/// How far timestamps are trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tolerance {
    /// Timestamps this close to the sample clock are in step.
    pub tolerance: gst::ClockTime,
    /// How long a discrepancy beyond the tolerance (but not a jump) must last before the
    /// clock follows the timestamps.
    pub discont_wait: gst::ClockTime,
}

/// The timing constants of a recogniser, in samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    pub sample_rate: u32,
    /// Samples per output frame.
    pub frame_samples: u64,
    /// Samples per chunk: the longest hole filled with silence.
    pub chunk_samples: u64,
    /// Samples of silence after a word that end an utterance (the word gap; 0: only the
    /// end of the stream does).
    pub word_gap_samples: u64,
    /// How far timestamps are trusted.
    pub trust: Tolerance,
}

impl Clock {
    /// Duration of an output frame in seconds.
    pub fn frame_seconds(&self) -> f64 {
        self.frame_samples as f64 / f64::from(self.sample_rate)
    }

    /// Duration of `samples` (rounded down; saturating).
    pub fn time(&self, samples: u64) -> gst::ClockTime {
        gst::ClockTime::from_nseconds(
            samples
                .mul_div_floor(
                    gst::ClockTime::SECOND.nseconds(),
                    u64::from(self.sample_rate),
                )
                .unwrap_or(u64::MAX),
        )
    }

    /// Samples in `time` (rounded to nearest).
    pub fn samples(&self, time: gst::ClockTime) -> u64 {
        time.nseconds()
            .mul_div_round(
                u64::from(self.sample_rate),
                gst::ClockTime::SECOND.nseconds(),
            )
            .unwrap_or(0)
    }
}

/// The output timeline of one element.
#[derive(Debug)]
pub struct Timeline {
    clock: Clock,
    /// How long decoding may hold a word back after it starts; text held longer is moved
    /// forward so a live sink never receives it after timestamp + reported latency.
    text_hold: gst::ClockTime,
    style: Style,
    /// Where the current stream's sample clock is tied to the timestamps.
    anchor: Option<Anchor>,
    /// The stream sample from which timestamps have been beyond the tolerance (but not a
    /// jump), while they stay so.
    drifting_since: Option<u64>,
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
    pending: VecDeque<Output>,
    reports: Vec<Report>,
}

impl Timeline {
    pub fn new(clock: Clock, text_hold: gst::ClockTime, style: Style) -> Self {
        Self {
            clock,
            text_hold,
            style,
            anchor: None,
            drifting_since: None,
            emitted_until: None,
            utterance_end: None,
            last_partial: None,
            spoken: false,
            stream_spoken: false,
            pending: VecDeque::new(),
            reports: Vec::new(),
        }
    }

    /// The timing constants.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn set_style(&mut self, style: Style) {
        self.style = style;
    }

    /// Whether a stream is running (it starts at the first buffer after a start or drain).
    pub fn is_started(&self) -> bool {
        self.anchor.is_some()
    }

    /// Where a buffer stamped `pts` stands against the sample clock, `pushed` samples into
    /// the stream (see the module docs); `discont` is the buffer's DISCONT flag, which makes
    /// a discrepancy beyond the tolerance act at once.
    pub fn sync(&mut self, pts: gst::ClockTime, pushed: u64, discont: bool) -> Sync {
        let Some(anchor) = self.anchor else {
            return Sync::Start;
        };
        let expected = anchor.time(&self.clock, pushed);
        let diff = (i128::from(pts.nseconds()) - i128::from(expected.nseconds()))
            .clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
        let trust = self.clock.trust;
        let tolerance = trust.tolerance.nseconds() as i64;
        if diff.unsigned_abs() <= tolerance.unsigned_abs() {
            self.drifting_since = None;
            return Sync::InStep;
        }
        let jump = diff.unsigned_abs() > 2 * tolerance.unsigned_abs();
        if !jump && !discont {
            let since = *self.drifting_since.get_or_insert(pushed);
            if self.clock.time(pushed - since) < trust.discont_wait {
                return Sync::InStep;
            }
        }
        self.drifting_since = None;
        let chunk = self.clock.time(self.clock.chunk_samples).nseconds() as i64;
        if !jump {
            Sync::Reanchor(diff)
        } else if diff > 0 && diff <= chunk {
            Sync::Fill(
                self.clock
                    .samples(gst::ClockTime::from_nseconds(diff as u64)),
            )
        } else {
            Sync::Restart(diff)
        }
    }

    /// Ties the clock of the current stream to `pts` at stream sample `pushed` (after a
    /// `Sync::Reanchor`).
    pub fn reanchor(&mut self, pts: gst::ClockTime, pushed: u64) {
        if self.anchor.is_some() {
            self.anchor = Some(Anchor {
                pts,
                sample: pushed,
            });
        }
    }

    /// Starts the output timeline of a new stream at `base` (it may even lie before the old
    /// one). An empty gap tells downstream at once where the text stream stands, so sinks
    /// preroll and live pipelines settle their latency before the first chunk is recognised.
    pub fn start(&mut self, base: gst::ClockTime) {
        self.anchor = Some(Anchor {
            pts: base,
            sample: 0,
        });
        self.drifting_since = None;
        self.emitted_until = Some(base);
        self.pending.push_back(Output::Gap {
            start: base,
            duration: gst::ClockTime::ZERO,
        });
    }

    /// The time just after the last of `pushed` samples of the current stream.
    pub fn stream_end(&self, pushed: u64) -> gst::ClockTime {
        Anchor::time_of(self.anchor, &self.clock, pushed)
    }

    /// Ends the current stream; the next buffer starts a new one (drain, EOS, new segment).
    pub fn end_stream(&mut self) {
        self.anchor = None;
        self.drifting_since = None;
        self.emitted_until = None;
        self.utterance_end = None;
        self.stream_spoken = false;
    }

    /// A GAP event over `[start, start + duration)` of input that is not recognised (it was
    /// dropped), so downstream keeps moving; nothing is being recognised meanwhile.
    pub fn skip(&mut self, start: gst::ClockTime, duration: gst::ClockTime) {
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
        let (anchor, clock) = (self.anchor, self.clock);
        let time = move |frame: u64| frame_time(anchor, clock, frame, end);
        let finals = self.separated(&result.words).into_owned();
        let groups: Vec<&[Word]> = match self.style.per_word {
            _ if finals.is_empty() => Vec::new(),
            false => phrases(&finals, self.clock.frame_seconds()),
            true => finals.chunks(1).collect(),
        };
        // This result goes downstream once the chunk's right context has arrived; text that
        // starts more than the reported hold before the chunk would reach a live sink after
        // its timestamp + latency, so its timestamp moves forward to the earliest on-time one
        // (only for words held unusually long; the bus report keeps the true times).
        let on_time_from = time(result.first_frame).saturating_sub(self.text_hold);
        let mut held_too_long = false;
        for words in groups {
            let (first, last) = (&words[0], &words[words.len() - 1]);
            held_too_long |= time(first.start_frame) < on_time_from;
            let start = time(first.start_frame)
                .max(on_time_from)
                .max(self.emitted_until.unwrap_or(gst::ClockTime::ZERO));
            self.gap_until(start);
            let end = time(last.end_frame).max(start);
            let text = self.buffer_text(words);
            self.push_text(text, start, end);
        }
        if !finals.is_empty() {
            self.spoken = true;
            self.stream_spoken = true;
        }
        // Downstream may advance to where text that is not final yet may start (the word
        // still being spoken; with beam search, any hypothesis's), else to the chunk's end.
        let covered = match result.unsettled_from {
            Some(frame) => time(frame),
            None => time(result.first_frame + result.frames),
        };
        self.gap_until(covered);
        if result.last && result.trailing_spaces > 0 && self.style.separator == Separator::Model {
            // The model's text ends with spaces (NeMo's transcript keeps them).
            let at = self.emitted_until.unwrap_or(covered);
            let spaces = " ".repeat(result.trailing_spaces as usize);
            self.push_text(spaces, at, at);
        }
        let partial = self.separated(&result.partial).into_owned();
        if self.style.partials {
            self.push_partial(&partial, end);
        }
        self.end_utterance(result);
        if self.style.reports {
            self.queue_reports(result, &finals, &partial, end);
        }
        held_too_long
    }

    /// `words` as they go downstream: the first word of a stream that follows earlier text
    /// (a new segment without a flush) is separated from it by a space even when the
    /// decoder, which started afresh, gives it none.
    fn separated<'a>(&self, words: &'a [Word]) -> Cow<'a, [Word]> {
        match words.first() {
            Some(first) if self.spoken && !self.stream_spoken && first.spaces_before == 0 => {
                let mut words = words.to_vec();
                words[0].spaces_before = 1;
                Cow::Owned(words)
            }
            _ => Cow::Borrowed(words),
        }
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
        let silence = (result.first_frame + result.frames).saturating_sub(end_frame)
            * self.clock.frame_samples;
        let gap = self.clock.word_gap_samples;
        if result.last || (settled && gap > 0 && silence >= gap) {
            self.pending.push_back(Output::FinalTranscript);
            self.utterance_end = None;
        }
    }

    fn frame_time(&self, frame: u64, end: Option<gst::ClockTime>) -> gst::ClockTime {
        frame_time(self.anchor, self.clock, frame, end)
    }

    /// The text of a buffer of words, as [`Style::separator`] says.
    fn buffer_text(&self, words: &[Word]) -> String {
        let end = match self.style.separator {
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

    fn push_text(&mut self, text: String, start: gst::ClockTime, end: gst::ClockTime) {
        let buffer = self.text_buffer(text, start, end);
        self.pending.push_back(Output::Text(buffer));
        self.emitted_until = Some(end);
        self.last_partial = None;
    }

    /// Sends the words not final yet as one buffer marked partial (custom meta
    /// [`PARTIAL_META`] and the DROPPABLE flag: a consumer that wants only final text drops
    /// it), unless it says what the last one said. It covers no time: the final words that
    /// follow cover it again.
    fn push_partial(&mut self, words: &[Word], end: Option<gst::ClockTime>) {
        let (Some(first), Some(last)) = (words.first(), words.last()) else {
            return;
        };
        let text = self.buffer_text(words);
        if self.last_partial.as_deref() == Some(text.as_str()) {
            return;
        }
        self.last_partial = Some(text.clone());
        let start = self
            .frame_time(first.start_frame, end)
            .max(self.emitted_until.unwrap_or(gst::ClockTime::ZERO));
        let stop = self.frame_time(last.end_frame, end).max(start);
        let mut buffer = self.text_buffer(text, start, stop);
        {
            let buffer = buffer.get_mut().expect("a new buffer is writable");
            buffer.set_flags(gst::BufferFlags::DROPPABLE);
            register_partial_meta();
            gst::meta::CustomMeta::add(buffer, PARTIAL_META).expect("registered above");
        }
        self.pending.push_back(Output::Text(buffer));
    }

    fn text_buffer(&self, text: String, start: gst::ClockTime, end: gst::ClockTime) -> gst::Buffer {
        let mut buffer = gst::Buffer::from_mut_slice(text.into_bytes());
        {
            let buffer = buffer.get_mut().expect("a new buffer is writable");
            buffer.set_pts(start);
            buffer.set_duration(end - start);
        }
        buffer
    }

    fn gap_until(&mut self, until: gst::ClockTime) {
        let from = self
            .emitted_until
            .unwrap_or(Anchor::time_of(self.anchor, &self.clock, 0));
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

    /// The final words of a chunk (or the end of a stream), and the word still being spoken.
    fn queue_reports(
        &mut self,
        result: &ChunkResult,
        finals: &[Word],
        partial: &[Word],
        end: Option<gst::ClockTime>,
    ) {
        let chunk_start = self.frame_time(result.first_frame, end);
        let chunk_end = self.frame_time(result.first_frame + result.frames, end);
        let report = |words: &[Word], is_final: bool| {
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
                _ => (chunk_start, chunk_end),
            };
            Report {
                words,
                trailing_spaces: 0,
                is_final,
                start,
                end: stop,
            }
        };
        let mut reports = Vec::new();
        if !finals.is_empty() {
            reports.push(report(finals, true));
        }
        if result.last {
            // The end of the stream is always a report of its own: final, no words, the
            // chunk's span, and the spaces the model wrote after the last word as its text.
            let mut end_marker = report(&[], true);
            end_marker.trailing_spaces = result.trailing_spaces;
            reports.push(end_marker);
        }
        if !partial.is_empty() {
            reports.push(report(partial, false));
        }
        self.reports.extend(reports);
    }
}

/// Stream sample `sample` is at timestamp `pts`; the sample count is the clock around it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Anchor {
    pts: gst::ClockTime,
    sample: u64,
}

impl Anchor {
    /// The timestamp of stream sample `sample` (never before zero).
    fn time(&self, clock: &Clock, sample: u64) -> gst::ClockTime {
        if sample >= self.sample {
            self.pts + clock.time(sample - self.sample)
        } else {
            self.pts.saturating_sub(clock.time(self.sample - sample))
        }
    }

    /// As [`Anchor::time`], zero-based when there is no stream.
    fn time_of(anchor: Option<Anchor>, clock: &Clock, sample: u64) -> gst::ClockTime {
        anchor.map_or_else(|| clock.time(sample), |a| a.time(clock, sample))
    }
}

/// The timestamp of output frame `frame` of the stream anchored at `anchor`, no later than
/// the stream's `end` once known.
fn frame_time(
    anchor: Option<Anchor>,
    clock: Clock,
    frame: u64,
    end: Option<gst::ClockTime>,
) -> gst::ClockTime {
    let t = Anchor::time_of(anchor, &clock, frame * clock.frame_samples);
    end.map_or(t, |end| t.min(end))
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
        self.word.spaces_before == 0
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
        assert_eq!(reports.last().unwrap().text(), " new");
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
        // Every buffer ends with a line break, a continued word's too; the model's spaces
        // after the last word are not written.
        assert_eq!(
            texts,
            vec![
                ("a\n".to_string(), 0, 100),
                ("b\n".to_string(), 200, 200),
                ("c\n".to_string(), 600, 200),
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

    #[test]
    fn jumps_fill_or_restart_at_once() {
        let mut t = timeline(false);
        t.start(ms(1000));
        let pushed = 16_000; // 1 s in
        assert_eq!(t.sync(ms(2000), pushed, false), Sync::InStep);
        assert_eq!(t.sync(ms(2040), pushed, false), Sync::InStep); // the tolerance
        assert_eq!(t.sync(ms(1960), pushed, false), Sync::InStep);
        assert_eq!(t.sync(ms(2500), pushed, false), Sync::Fill(8000));
        assert_eq!(t.sync(ms(4000), pushed, false), Sync::Fill(32_000)); // exactly a chunk
        assert_eq!(
            t.sync(ms(4001), pushed, false),
            Sync::Restart(2_001_000_000)
        );
        assert_eq!(t.sync(ms(1900), pushed, false), Sync::Restart(-100_000_000)); // back
    }

    #[test]
    fn jitter_within_the_tolerance_never_resyncs() {
        let mut t = timeline(false);
        // +-30 ms around the sample clock, 100 ms buffers, for a minute: the worst case is
        // a discrepancy of up to 60 ms against an anchor that was itself 30 ms off, beyond
        // the tolerance now and then but never for a whole discont-wait.
        let mut seed = 7u64;
        let mut jitter = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as i64 % 61 - 30
        };
        let first = jitter();
        t.start(ms((1000 + first) as u64));
        for i in 1..600u64 {
            let pts = ms((1000 + i as i64 * 100 + jitter()) as u64);
            assert_eq!(t.sync(pts, i * 1600, false), Sync::InStep, "buffer {i}");
        }
    }

    #[test]
    fn lasting_drift_moves_the_clock_without_touching_audio() {
        let mut t = timeline(false);
        t.start(ms(0));
        // The source's clock runs 1 % slow: its timestamps fall behind the sample count.
        let mut reanchored = Vec::new();
        for i in 1..200u64 {
            let pushed = i * 1600;
            let pts = gst::ClockTime::from_nseconds(i * 99_000_000);
            match t.sync(pts, pushed, false) {
                Sync::InStep => {}
                Sync::Reanchor(drift) => {
                    assert!((-80_000_000..-40_000_000).contains(&drift), "{drift}");
                    t.reanchor(pts, pushed);
                    reanchored.push(i);
                }
                other => panic!("buffer {i}: {other:?}"),
            }
        }
        // Beyond 40 ms after 4.1 s, then after another 1 s of waiting, and so on.
        assert_eq!(reanchored.first(), Some(&51));
        assert!(reanchored.len() >= 3, "{reanchored:?}");
        // The output clock now follows the timestamps.
        let last = 199 * 1600;
        let drift = t.stream_end(last).nseconds() as i64 - 199 * 99_000_000;
        assert!(drift.abs() <= 80_000_000, "{drift}");
    }

    #[test]
    fn a_discont_flag_resyncs_at_once() {
        let mut t = timeline(false);
        t.start(ms(0));
        assert_eq!(t.sync(ms(1050), 16_000, true), Sync::Reanchor(50_000_000));
        t.reanchor(ms(1050), 16_000);
        assert_eq!(t.stream_end(16_000), ms(1050));
        assert_eq!(t.stream_end(0), ms(50));
        // An anchor never puts a sample before zero.
        t.reanchor(ms(10), 16_000);
        assert_eq!(t.stream_end(0), ms(0));
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
}

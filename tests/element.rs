// SPDX-License-Identifier: MPL-2.0
//! The `quartznetstt` element in GStreamer: caps, timestamps, EOS drain, flushes,
//! discontinuities, odd buffer sizes, bus messages, latency and bad models.

mod common;
mod plugin;

use common::*;
use gst::glib;
use gst::prelude::*;
use gst_check::Harness;
use plugin::init;
use quartznet_engine::config::{self, DecoderKind, DecoderSettings, RecognizerConfig};
use quartznet_engine::decode::{Word, transcript};
use quartznet_engine::model::{LoadOptions, OnnxModel};
use quartznet_engine::streaming::{ChunkResult, StreamingRecognizer, WindowConfig};

const RATE: u32 = 16_000;
/// Short windows so the tests exercise many chunks on short clips.
const LEFT_MS: u32 = 1000;
const CHUNK_MS: u32 = 1000;
const RIGHT_MS: u32 = 600;
const WORD_GAP_MS: u32 = config::DEFAULT_WORD_GAP_MS;

/// The engine's settings equal to the element's in these tests.
fn test_config(decoder: Option<DecoderKind>) -> RecognizerConfig {
    RecognizerConfig {
        left_context_ms: LEFT_MS,
        chunk_ms: CHUNK_MS,
        right_context_ms: RIGHT_MS,
        decoding: DecoderSettings {
            decoder,
            word_gap_ms: WORD_GAP_MS,
            ..DecoderSettings::default()
        },
        ..RecognizerConfig::default()
    }
}

/// The hand-made stand-in recogniser (tools/make_test_models.py): blank on silence, letters
/// for loud bands. With no sidecar, it also runs on the built-in QuartzNet English defaults.
fn energy_model() -> std::path::PathBuf {
    fixtures().join("models/energy-letters.onnx")
}

/// The element on `model` with the tests' windows and word gap.
fn element_with(model: &std::path::Path, granularity: &str) -> gst::Element {
    init();
    gst::ElementFactory::make("quartznetstt")
        .property("model-path", model.to_str().unwrap())
        // One thread: recognition time (part of the latency, measured at start) stays short
        // on a busy test machine, where ONNX Runtime's one-per-core threads contend.
        .property("threads", 1u32)
        .property("left-context-ms", LEFT_MS)
        .property("chunk-ms", CHUNK_MS)
        .property("right-context-ms", RIGHT_MS)
        .property("word-gap-ms", WORD_GAP_MS)
        .property_from_str("granularity", granularity)
        // The model's own spaces, so the buffers concatenate into the engine's exact text.
        .property_from_str("separator", "model")
        .build()
        .unwrap()
}

fn element(granularity: &str) -> gst::Element {
    element_with(&energy_model(), granularity)
}

/// A harness around `element`, its source sending S16LE mono at the model's rate.
fn harness_around(element: &gst::Element) -> Harness {
    let mut h = Harness::with_element(element, Some("sink"), Some("src"));
    h.set_src_caps_str(&format!(
        "audio/x-raw,format=S16LE,rate={RATE},channels=1,layout=interleaved"
    ));
    h
}

fn harness(granularity: &str) -> Harness {
    harness_around(&element(granularity))
}

fn s16_bytes(samples: &[f32]) -> Vec<u8> {
    samples
        .iter()
        .flat_map(|&s| ((s * 32768.0).round().clamp(-32768.0, 32767.0) as i16).to_le_bytes())
        .collect()
}

fn time_of(samples: u64) -> gst::ClockTime {
    gst::ClockTime::from_nseconds(samples * 1_000_000_000 / u64::from(RATE))
}

/// Pushes `bytes` in pieces of `piece` bytes, timestamped from `start_sample`.
fn push_audio(h: &mut Harness, bytes: &[u8], piece: usize, start_sample: u64) {
    let mut offset = 0usize;
    for part in bytes.chunks(piece) {
        let mut buffer = gst::Buffer::from_slice(part.to_vec());
        {
            let b = buffer.get_mut().unwrap();
            b.set_pts(time_of(start_sample + offset as u64 / 2));
            b.set_duration(time_of(part.len() as u64 / 2));
        }
        assert_eq!(h.push(buffer), Ok(gst::FlowSuccess::Ok));
        offset += part.len();
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Text {
    text: String,
    pts: gst::ClockTime,
    duration: gst::ClockTime,
}

/// Drains everything the element sent: text buffers, and the time covered by gap events.
fn collect(h: &mut Harness) -> (Vec<Text>, Vec<(gst::ClockTime, gst::ClockTime)>) {
    let mut texts = Vec::new();
    while let Some(buffer) = h.try_pull() {
        let map = buffer.map_readable().unwrap();
        texts.push(Text {
            text: std::str::from_utf8(&map).expect("utf8 text").to_string(),
            pts: buffer.pts().expect("text has a timestamp"),
            duration: buffer.duration().expect("text has a duration"),
        });
    }
    let mut gaps = Vec::new();
    while let Some(event) = h.try_pull_event() {
        if let gst::EventView::Gap(gap) = event.view() {
            let (start, duration) = gap.get();
            gaps.push((start, duration.unwrap()));
        }
    }
    (texts, gaps)
}

/// What the engine alone recognises for these samples with the element's settings.
fn reference_words(samples: &[f32]) -> Vec<Word> {
    reference_results(samples)
        .into_iter()
        .map(|(word, _)| word)
        .collect()
}

/// The engine's text for these samples: its words with their separators and the spaces
/// after the last word.
fn reference_text(samples: &[f32]) -> String {
    let model = OnnxModel::load(&energy_model(), &LoadOptions::default()).unwrap();
    let mut r = StreamingRecognizer::from_config(model, &test_config(None)).unwrap();
    r.push(samples);
    let mut words = Vec::new();
    while let Some(result) = r.next_result().unwrap() {
        words.extend(result.words);
    }
    let mut trailing = 0;
    for result in r.finish().unwrap() {
        words.extend(result.words);
        trailing = result.trailing_spaces;
    }
    transcript(&words) + &" ".repeat(trailing as usize)
}

/// The engine's words, each with the first output frame of the chunk that completed it.
fn reference_results(samples: &[f32]) -> Vec<(Word, u64)> {
    let model = OnnxModel::load(&energy_model(), &LoadOptions::default()).unwrap();
    let mut r = StreamingRecognizer::from_config(model, &test_config(None)).unwrap();
    r.push(samples);
    let mut words = Vec::new();
    let mut keep = |result: ChunkResult| {
        let chunk = result.first_frame;
        words.extend(result.words.into_iter().map(|w| (w, chunk)));
    };
    while let Some(result) = r.next_result().unwrap() {
        keep(result);
    }
    for result in r.finish().unwrap() {
        keep(result);
    }
    words
}

/// The engine's words with the timestamps the element may give them (in samples from the
/// stream start, earliest and latest): the word's start, unless the word began so long
/// before the chunk that completed it that its text, sent once the chunk and right context
/// are recognised, would reach a live sink after timestamp + latency; then the earliest time
/// that is on time: chunk start - (latency - chunk - right context - recognition time), with
/// the recognition time measured at start (here allowed anything up to the slack).
fn reference_timed(samples: &[f32]) -> Vec<(String, u64, u64)> {
    timed_ranges(reference_results(samples))
}

/// The words of `results` with the timestamps the element may give them (see
/// [`reference_timed`]).
fn timed_words(results: Vec<ChunkResult>) -> Vec<(String, u64, u64)> {
    timed_ranges(
        results
            .into_iter()
            .flat_map(|r| {
                let chunk = r.first_frame;
                r.words.into_iter().map(move |w| (w, chunk))
            })
            .collect(),
    )
}

fn timed_ranges(words: Vec<(Word, u64)>) -> Vec<(String, u64, u64)> {
    let ms = |ms: u32| u64::from(ms) * u64::from(RATE) / 1000;
    let slack = ms(config::DEFAULT_LATENCY_MS - CHUNK_MS - RIGHT_MS);
    words
        .into_iter()
        .map(|(w, chunk)| {
            let start = w.start_frame * 320;
            let chunk = chunk * 320;
            let earliest = start.max(chunk.saturating_sub(slack));
            let latest = start.max(chunk);
            (transcript(std::slice::from_ref(&w)), earliest, latest)
        })
        .collect()
}

/// Asserts that texts have the reference's words, each timestamped within its range,
/// `offset` samples into the stream.
fn assert_timed(texts: &[Text], expected: &[(String, u64, u64)], offset: u64) {
    assert_eq!(texts.len(), expected.len());
    for (t, (text, earliest, latest)) in texts.iter().zip(expected) {
        let (earliest, latest) = (time_of(offset + earliest), time_of(offset + latest));
        assert_eq!(t.text, *text);
        assert!(
            (earliest..=latest).contains(&t.pts),
            "{text}: {} not in {earliest}..={latest}",
            t.pts
        );
    }
}

fn clip(name: &str) -> Vec<f32> {
    let manifest = manifest();
    clip_samples(manifest.clips.iter().find(|c| c.name == name).unwrap())
}

#[test]
fn caps_are_the_models_and_text() {
    let mut h = harness("phrase");
    let sink = h.element().unwrap().static_pad("sink").unwrap();
    let caps = sink.query_caps(None);
    let s = caps.structure(0).unwrap();
    assert_eq!(s.get::<i32>("rate").unwrap(), 16000);
    assert_eq!(s.get::<i32>("channels").unwrap(), 1);
    assert_eq!(s.get::<&str>("format").unwrap(), "S16LE");
    push_audio(&mut h, &s16_bytes(&clip("short_yes")), 4000, 0);
    h.push_event(gst::event::Eos::new());
    let caps = h.sinkpad().unwrap().current_caps().unwrap();
    assert_eq!(caps.to_string(), "text/x-raw, format=(string)utf8");
}

#[test]
fn wrong_rate_fails_negotiation_with_a_hint() {
    init();
    // A 22.05 kHz stereo WAV straight from wavparse, as a user forgetting the converters has.
    let tmp = tempfile::tempdir().unwrap();
    let wav = tmp.path().join("stereo.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 22050,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&wav, spec).unwrap();
    for n in 0..22050 {
        writer.write_sample((n % 100) as i16).unwrap();
    }
    writer.finalize().unwrap();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! wavparse ! quartznetstt model-path={} ! fakesink",
        wav.display(),
        energy_model().display()
    ))
    .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let mut hint = None;
    let mut failed = false;
    while let Some(message) = bus.timed_pop(gst::ClockTime::from_seconds(30)) {
        match message.view() {
            gst::MessageView::Warning(w) => hint = Some(w.error().to_string()),
            gst::MessageView::Error(_) => {
                failed = true;
                break;
            }
            gst::MessageView::Eos(_) => break,
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(failed, "negotiation must fail");
    let hint = hint.expect("a warning explains the caps");
    assert!(
        hint.contains("audioconvert ! audioresample") && hint.contains("16000 Hz"),
        "{hint}"
    );
}

#[test]
fn text_matches_the_engine_with_stream_timestamps() {
    let samples = clip("LJ001-0001");
    let expected = reference_words(&samples);
    assert!(expected.len() > 3);
    for (granularity, piece) in [("word", 3200), ("phrase", 32000 + 2)] {
        let mut h = harness(granularity);
        let start = 5 * u64::from(RATE); // the stream starts at 5 s
        h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
            gst::ClockTime,
        >::new()));
        push_audio(&mut h, &s16_bytes(&samples), piece, start);
        h.push_event(gst::event::Eos::new());
        let (texts, gaps) = collect(&mut h);
        let all: String = texts.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(all, reference_text(&samples), "{granularity}");
        if granularity == "word" {
            assert_eq!(texts.len(), expected.len());
            // Frames after the audio (NeMo's padding lets a word end there) are clamped to
            // its end.
            let at = |frame: u64| time_of(start + (frame * 320).min(samples.len() as u64));
            for (t, w) in texts.iter().zip(&expected) {
                assert_eq!(t.pts, at(w.start_frame), "{}", w.text);
                assert_eq!(t.pts + t.duration, at(w.end_frame), "{}", w.text);
            }
        }
        assert_text_and_gaps_tile(&texts, gaps, start, samples.len());
    }
}

/// Text and gaps tile the stream in order: nothing overlaps, time only moves forward, and
/// nothing runs past the audio (`samples` from sample `start`).
fn assert_text_and_gaps_tile(
    texts: &[Text],
    gaps: Vec<(gst::ClockTime, gst::ClockTime)>,
    start: u64,
    samples: usize,
) {
    let mut spans: Vec<(gst::ClockTime, gst::ClockTime)> =
        texts.iter().map(|t| (t.pts, t.duration)).collect();
    spans.extend(gaps);
    spans.sort();
    let mut until = time_of(start);
    for (pts, duration) in spans {
        assert!(pts >= until, "{pts} starts before {until}");
        until = pts + duration;
    }
    let end = time_of(start + samples as u64);
    assert!(
        until <= end + gst::ClockTime::from_mseconds(20),
        "{until} past the end {end}"
    );
}

#[test]
fn odd_buffer_sizes_lose_nothing() {
    let samples = clip("espeak_fox");
    let bytes = s16_bytes(&samples);
    let mut outputs = Vec::new();
    for piece in [1usize, 3, 333, 160_001] {
        let mut h = harness("phrase");
        let mut offset = 0;
        for part in bytes.chunks(piece) {
            // Untimestamped: the element counts samples itself.
            assert_eq!(
                h.push(gst::Buffer::from_slice(part.to_vec())),
                Ok(gst::FlowSuccess::Ok)
            );
            offset += part.len();
        }
        assert_eq!(offset, bytes.len());
        h.push_event(gst::event::Eos::new());
        let (texts, _) = collect(&mut h);
        outputs.push(texts);
    }
    let text: String = outputs[0].iter().map(|t| t.text.as_str()).collect();
    assert_eq!(text, reference_text(&samples));
    for other in &outputs[1..] {
        assert_eq!(other, &outputs[0]);
    }
}

#[test]
fn eos_drains_audio_shorter_than_a_window() {
    let samples = clip("short_yes");
    let mut h = harness("phrase");
    push_audio(&mut h, &s16_bytes(&samples), 1000, 0);
    assert!(
        h.try_pull().is_none(),
        "nothing before the window is complete"
    );
    h.push_event(gst::event::Eos::new());
    let (texts, _) = collect(&mut h);
    let expected = reference_words(&samples);
    assert!(!expected.is_empty());
    let text: String = texts.iter().map(|t| t.text.as_str()).collect();
    assert_eq!(text, reference_text(&samples));
}

#[test]
fn flush_forgets_the_old_stream() {
    let samples = clip("flite_hello");
    let mut fresh = harness("phrase");
    push_audio(&mut fresh, &s16_bytes(&samples), 8000, 0);
    fresh.push_event(gst::event::Eos::new());
    let (expected, _) = collect(&mut fresh);

    let mut h = harness("phrase");
    push_audio(&mut h, &s16_bytes(&clip("LJ001-0001")[..40_000]), 8000, 0);
    h.push_event(gst::event::FlushStart::new());
    h.push_event(gst::event::FlushStop::new(true));
    h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
        gst::ClockTime,
    >::new()));
    collect(&mut h);
    push_audio(&mut h, &s16_bytes(&samples), 8000, 0);
    h.push_event(gst::event::Eos::new());
    let (texts, _) = collect(&mut h);
    assert_eq!(texts, expected);
}

#[test]
fn timestamp_gaps_are_filled_or_restart_the_stream() {
    let a = clip("espeak_fox");
    let b = clip("flite_hello");
    // A small hole (100 ms) is silence the model hears; the text stays on the timeline.
    let mut h = harness("word");
    push_audio(&mut h, &s16_bytes(&a), 3200, 0);
    let resume = a.len() as u64 + 1600;
    let mut buffer = gst::Buffer::from_slice(s16_bytes(&b));
    buffer.get_mut().unwrap().set_pts(time_of(resume));
    buffer
        .get_mut()
        .unwrap()
        .set_flags(gst::BufferFlags::DISCONT);
    h.push(buffer).unwrap();
    h.push_event(gst::event::Eos::new());
    let (texts, _) = collect(&mut h);
    let mut joined = a.clone();
    joined.extend(std::iter::repeat_n(0.0, 1600));
    joined.extend_from_slice(&b);
    assert_timed(&texts, &reference_timed(&joined), 0);

    // A long hole (60 s) ends the first stream and starts a new one at the new timestamp.
    let mut h = harness("word");
    push_audio(&mut h, &s16_bytes(&a), 3200, 0);
    let resume = 60 * u64::from(RATE);
    push_audio(&mut h, &s16_bytes(&b), 3200, resume);
    h.push_event(gst::event::Eos::new());
    let (texts, _) = collect(&mut h);
    let first = reference_words(&a);
    let second = reference_timed(&b);
    assert_eq!(texts.len(), first.len() + second.len());
    assert_timed(&texts[first.len()..], &second, resume);
}

#[test]
fn gaps_cover_silence() {
    let mut h = harness("phrase");
    push_audio(&mut h, &vec![0u8; 2 * 5 * RATE as usize], 3200, 0);
    let (texts, gaps) = collect(&mut h);
    assert!(texts.is_empty());
    // Before EOS, chunks that are done are covered: 5 s of audio completes 4 one-second
    // buffers, each keeping the second that ends 600 ms (the right context) before its end.
    let covered: gst::ClockTime = gaps.iter().map(|(_, d)| *d).sum();
    assert_eq!(covered, gst::ClockTime::from_mseconds(3400));
    h.push_event(gst::event::Eos::new());
    let (_, gaps) = collect(&mut h);
    let covered: gst::ClockTime = gaps.iter().map(|(_, d)| *d).sum();
    assert_eq!(covered, gst::ClockTime::from_mseconds(1600));
}

/// A `word` structure's fields: text, separator, start, end, confidence.
type BusWord = (String, String, f64, f64, f64);

/// The words of a `quartznetstt` message (an ordered array of `word` structures).
fn bus_words(s: &gst::StructureRef) -> Vec<BusWord> {
    s.get::<gst::Array>("words")
        .expect("words is a GstValueArray")
        .iter()
        .map(|value| {
            let w = value.get::<&gst::StructureRef>().unwrap();
            assert_eq!(w.name(), "word");
            (
                w.get::<String>("text").unwrap(),
                w.get::<String>("separator").unwrap(),
                w.get::<f64>("start").unwrap(),
                w.get::<f64>("end").unwrap(),
                w.get::<f64>("confidence").unwrap(),
            )
        })
        .collect()
}

/// Seconds rounded to the millisecond, as the messages give them.
fn is_whole_ms(seconds: f64) -> bool {
    (seconds * 1e3 - (seconds * 1e3).round()).abs() < 1e-6
}

/// A `quartznetstt` message that ends a stream: final and without words.
fn is_end_marker(s: &gst::StructureRef) -> bool {
    s.get::<bool>("final").unwrap() && s.get::<gst::Array>("words").unwrap().is_empty()
}

#[test]
fn bus_messages_carry_words_times_and_finality() {
    let samples = clip("LJ001-0001");
    let element = element("phrase");
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    let mut h = harness_around(&element);
    push_audio(&mut h, &s16_bytes(&samples), 16000, 0);
    h.push_event(gst::event::Eos::new());
    let mut finals = Vec::new();
    let mut final_words = String::new();
    let mut partials = 0;
    let mut ends = 0;
    while let Some(message) = bus.pop() {
        let Some(s) = message.structure().filter(|s| s.name() == "quartznetstt") else {
            continue;
        };
        // Removed in favour of start and end.
        assert!(!s.has_field("timestamp") && !s.has_field("duration"));
        let start = s.get::<f64>("start").unwrap();
        let end = s.get::<f64>("end").unwrap();
        assert!(
            is_whole_ms(start) && is_whole_ms(end) && start <= end,
            "{s}"
        );
        // The running time is the start's, unrounded (the segment starts at 0).
        let running_time = s.get::<Option<gst::ClockTime>>("running-time").unwrap();
        let running_time = running_time.expect("a running time").nseconds() as f64 / 1e9;
        assert!((running_time - start).abs() <= 0.0005, "{s}");
        let words = bus_words(s);
        for (text, separator, word_start, word_end, confidence) in &words {
            assert!(!text.is_empty());
            assert!(separator.chars().all(|c| c == ' '));
            assert!((0.0..=1.0).contains(confidence));
            assert!(is_whole_ms(*word_start) && is_whole_ms(*word_end));
            assert!(start <= *word_start && word_start <= word_end && *word_end <= end);
        }
        if let (Some(first), Some(last)) = (words.first(), words.last()) {
            assert_eq!((first.2, last.3), (start, end), "the span is the words'");
        }
        if s.get::<bool>("final").unwrap() {
            finals.push(s.get::<String>("text").unwrap());
            ends += usize::from(words.is_empty());
            for (text, separator, ..) in &words {
                final_words += separator;
                final_words += text;
            }
        } else {
            // Every chunk posts one: the word being spoken, or none (nothing is).
            assert!(
                words.len() <= 1,
                "a partial result is the word being spoken"
            );
            partials += usize::from(!words.is_empty());
        }
    }
    // Final messages' texts concatenate into the transcript, and so do their words with
    // their separators.
    assert_eq!(finals.concat(), reference_text(&samples));
    assert_eq!(final_words, finals.concat().trim_end_matches(' '));
    assert!(partials > 0);
    assert_eq!(ends, 1, "one end of stream");
}

/// The `quartznetstt` messages a pipeline posts, in bus order, up to its EOS message.
fn pipeline_messages(description: &str) -> Vec<gst::Structure> {
    init();
    let pipeline = gst::parse::launch(description).unwrap();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut messages = Vec::new();
    loop {
        let message = bus
            .timed_pop(gst::ClockTime::from_seconds(300))
            .expect("the pipeline ends within 5 minutes");
        match message.view() {
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name() == "quartznetstt") {
                    messages.push(s.to_owned());
                }
            }
            gst::MessageView::Error(err) => panic!("{} ({:?})", err.error(), err.debug()),
            gst::MessageView::Eos(_) => break,
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    messages
}

/// The README's promise: a final message without words ends every stream, and it reaches
/// the application's bus before the EOS message (it is posted before EOS goes downstream),
/// also when the last chunk of the stream holds words (its own final message comes first).
#[test]
fn a_final_message_without_words_ends_the_stream_before_eos() {
    let root = repository();
    let messages = pipeline_messages(&format!(
        "filesrc location={} ! wavparse ! audioconvert ! audioresample ! \
         quartznetstt model-path={} threads=1 ! fakesink",
        root.join("samples/LJ001-0001.wav").display(),
        root.join("models/quartznet-en.onnx").display(),
    ));
    let (last, before) = messages.split_last().expect("messages before EOS");
    assert!(
        is_end_marker(last),
        "the last message is not an end: {last}"
    );
    // The marker's text is the spaces the model wrote after the last word (if any).
    assert!(
        last.get::<String>("text")
            .unwrap()
            .chars()
            .all(|c| c == ' ')
    );
    assert!(before.iter().all(|s| !is_end_marker(s)), "{messages:#?}");
    // The last chunk's words came in a final message of their own just before.
    assert!(
        !bus_words(before.last().unwrap()).is_empty(),
        "{messages:#?}"
    );
    let words: usize = before
        .iter()
        .filter(|s| s.get::<bool>("final").unwrap())
        .map(|s| bus_words(s).len())
        .sum();
    assert!(words > 5, "{messages:#?}");
}

/// A timestamp jump and a new segment end a stream as EOS does: each posts the end marker
/// between the old stream's messages and the new one's.
#[test]
fn jumps_and_new_segments_end_the_stream_on_the_bus() {
    let a = clip("espeak_fox");
    let b = clip("flite_hello");
    let element = element("word");
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    let mut h = harness_around(&element);
    push_audio(&mut h, &s16_bytes(&a), 3200, 0);
    // A long hole (60 s): a new stream.
    let resume = 60 * u64::from(RATE);
    push_audio(&mut h, &s16_bytes(&b), 3200, resume);
    // A new segment: a new stream again.
    h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
        gst::ClockTime,
    >::new()));
    push_audio(&mut h, &s16_bytes(&a), 3200, 0);
    h.push_event(gst::event::Eos::new());
    collect(&mut h);
    let finals: Vec<gst::Structure> = std::iter::from_fn(|| bus.pop())
        .filter_map(|m| m.structure().map(|s| s.to_owned()))
        .filter(|s| s.name() == "quartznetstt" && s.get::<bool>("final").unwrap())
        .collect();
    // Split at the end markers: three streams, each with words and ending with a marker.
    let streams: Vec<&[gst::Structure]> = finals.split_inclusive(|s| is_end_marker(s)).collect();
    assert_eq!(streams.len(), 3, "{finals:#?}");
    let resume_s = time_of(resume).nseconds() as f64 / 1e9;
    for (i, stream) in streams.iter().enumerate() {
        assert!(is_end_marker(stream.last().unwrap()), "{finals:#?}");
        let words = &stream[..stream.len() - 1];
        assert!(!words.is_empty(), "stream {i} has no words: {finals:#?}");
        let starts = words.iter().map(|s| s.get::<f64>("start").unwrap());
        if i == 1 {
            assert!(starts.clone().all(|t| t >= resume_s), "{finals:#?}");
        } else {
            assert!(starts.clone().all(|t| t < resume_s), "{finals:#?}");
        }
    }
}

/// With `partial-results`, the words not final yet go downstream as soon as they are heard,
/// marked partial (custom meta and DROPPABLE), and the final words that follow are exactly
/// those of a run without partials; with beam search a partial's words carry their own
/// times on the bus.
#[test]
fn partial_results_go_downstream_marked_and_finals_are_unchanged() {
    init();
    let root = repository();
    let model = root.join("models/quartznet-en.onnx");
    let samples = read_wav(&root.join("samples/LJ001-0001.wav"));
    let run = |partials: bool| {
        let element = element_with(&model, "word");
        element.set_property("partial-results", partials);
        let bus = gst::Bus::new();
        element.set_bus(Some(&bus));
        let mut h = harness_around(&element);
        push_audio(&mut h, &s16_bytes(&samples), 3200, 0);
        h.push_event(gst::event::Eos::new());
        let mut finals = Vec::new();
        let mut partial = Vec::new();
        while let Some(buffer) = h.try_pull() {
            let text = std::str::from_utf8(&buffer.map_readable().unwrap())
                .unwrap()
                .to_string();
            let marked =
                gst::meta::CustomMeta::from_buffer(&buffer, "QuartzNetSttPartialMeta").is_ok();
            assert_eq!(
                marked,
                buffer.flags().contains(gst::BufferFlags::DROPPABLE),
                "{text}"
            );
            if marked { &mut partial } else { &mut finals }.push(text);
        }
        let timed_partial_words = std::iter::from_fn(|| bus.pop())
            .filter_map(|m| m.structure().map(|s| s.to_owned()))
            .filter(|s| s.name() == "quartznetstt" && !s.get::<bool>("final").unwrap())
            .map(|s| bus_words(&s).len())
            .max()
            .unwrap_or(0);
        (finals, partial, timed_partial_words)
    };
    let (plain, none, _) = run(false);
    assert!(none.is_empty());
    let (finals, partial, most_words) = run(true);
    assert_eq!(finals, plain);
    assert!(!partial.is_empty(), "no partial text");
    assert!(
        most_words >= 2,
        "beam-search partials are one word each: {most_words}"
    );
}

/// The latency a live pipeline with the element at `latency_ms` settles on, and the
/// warnings the element posted.
fn live_latency(latency_ms: u32) -> (gst::ClockTime, Vec<String>) {
    let settled = plugin::live_latency(
        "",
        &format!(
            "quartznetstt model-path={} latency={latency_ms} chunk-ms={CHUNK_MS} right-context-ms={RIGHT_MS} word-gap-ms={WORD_GAP_MS}",
            energy_model().display()
        ),
    );
    assert!(settled.live);
    (settled.latency, settled.warnings)
}

#[test]
fn latency_is_the_latency_property_unless_the_windows_need_more() {
    let (latency, warnings) = live_latency(2500);
    assert_eq!(latency, gst::ClockTime::from_mseconds(2500));
    assert!(warnings.is_empty(), "{warnings:?}");
    // 1 s chunk + 0.6 s right context cannot deliver text within 1 s: the element says so
    // and reports what it needs (the windows plus the time to recognise one).
    let (latency, warnings) = live_latency(1000);
    let lookahead = gst::ClockTime::from_mseconds(u64::from(CHUNK_MS + RIGHT_MS));
    assert!(
        latency > lookahead && latency < lookahead + gst::ClockTime::from_seconds(1),
        "{latency}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("latency of 1000 ms is too short")),
        "{warnings:?}"
    );
}

/// Starts an element on `model` and returns the error message the state change produced.
fn start_error(model: &std::path::Path) -> String {
    start_error_with(model, &[])
}

/// The error message a pipeline posts when the element cannot start with these properties.
fn start_error_with(model: &std::path::Path, properties: &[(&str, &str)]) -> String {
    start_failure(model, properties).to_string()
}

/// The error a pipeline posts when the element cannot start with these string properties.
fn start_failure(model: &std::path::Path, properties: &[(&str, &str)]) -> glib::Error {
    init();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("audiotestsrc").build().unwrap();
    let stt = gst::ElementFactory::make("quartznetstt")
        .property("model-path", model.to_str().unwrap())
        .build()
        .unwrap();
    for (name, value) in properties {
        stt.set_property_from_str(name, value);
    }
    let sink = gst::ElementFactory::make("fakesink").build().unwrap();
    pipeline.add_many([&src, &stt, &sink]).unwrap();
    gst::Element::link_many([&src, &stt, &sink]).unwrap();
    assert!(
        pipeline.set_state(gst::State::Paused).is_err(),
        "{} must not start",
        model.display()
    );
    let bus = pipeline.bus().unwrap();
    let message = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
        .expect("an error message");
    pipeline.set_state(gst::State::Null).unwrap();
    match message.view() {
        gst::MessageView::Error(e) => e.error(),
        _ => unreachable!(),
    }
}

/// Each kind of engine error reaches the application in the GStreamer domain for it, so an
/// application can tell a missing file from a bad one from a settings mistake.
#[test]
fn errors_are_in_the_domain_of_their_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = start_failure(&tmp.path().join("missing.onnx"), &[]);
    assert!(missing.matches(gst::ResourceError::NotFound), "{missing:?}");
    let not_onnx = tmp.path().join("notes.onnx");
    std::fs::write(&not_onnx, "this is not a model").unwrap();
    let invalid = start_failure(&not_onnx, &[]);
    assert!(invalid.matches(gst::ResourceError::Read), "{invalid:?}");
    let no_lm = start_failure(&model_path(), &[("decoder", "beam")]);
    assert!(no_lm.matches(gst::LibraryError::Settings), "{no_lm:?}");
    let missing_lm = tmp.path().join("missing.arpa");
    let missing_lm = start_failure(&model_path(), &[("lm-path", missing_lm.to_str().unwrap())]);
    assert!(
        missing_lm.matches(gst::ResourceError::NotFound),
        "{missing_lm:?}"
    );
}

#[test]
fn bad_models_give_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    let missing = dir.join("missing.onnx");
    let e = start_error(&missing);
    assert!(
        e.contains("missing.onnx") && e.contains("No such file"),
        "{e}"
    );

    let not_onnx = dir.join("notes.onnx");
    std::fs::write(&not_onnx, "this is not a model").unwrap();
    let e = start_error(&not_onnx);
    assert!(
        e.contains("notes.onnx") && e.contains("not a loadable ONNX model"),
        "{e}"
    );

    let e = start_error(&fixtures().join("models/wrong-interface.onnx"));
    assert!(
        e.contains("wrong-interface.onnx")
            && e.contains("no input named audio_signal")
            && e.contains("image"),
        "{e}"
    );

    let e = start_error(&fixtures().join("models/ten-classes.onnx"));
    assert!(
        e.contains("ten-classes.onnx") && e.contains("10 classes") && e.contains("28 labels"),
        "{e}"
    );

    // The right model with a sidecar whose labels disagree with the output width.
    let model = dir.join("relabelled.onnx");
    std::fs::copy(model_path(), &model).unwrap();
    let sidecar = std::fs::read_to_string(model_path().with_extension("json")).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&sidecar).unwrap();
    json["labels"].as_array_mut().unwrap().truncate(20);
    std::fs::write(dir.join("relabelled.json"), json.to_string()).unwrap();
    let e = start_error(&model);
    assert!(
        e.contains("relabelled.onnx") && e.contains("29 classes") && e.contains("20 labels"),
        "{e}"
    );

    // A malformed sidecar names itself.
    std::fs::write(dir.join("relabelled.json"), "{ not json").unwrap();
    let e = start_error(&model);
    assert!(
        e.contains("relabelled.json") && e.contains("invalid model description"),
        "{e}"
    );
}

#[test]
fn model_properties_are_fixed_while_streaming() {
    let mut h = harness("phrase");
    let element = h.element().unwrap();
    element.set_property("chunk-ms", 5000u32);
    assert_eq!(
        element.property::<u32>("chunk-ms"),
        CHUNK_MS,
        "ignored while running"
    );
    element.set_property("granularity", gstquartznetstt_granularity("word"));
    push_audio(&mut h, &s16_bytes(&clip("espeak_fox")), 3200, 0);
    h.push_event(gst::event::Eos::new());
    let (texts, _) = collect(&mut h);
    assert_eq!(
        texts.len(),
        reference_words(&clip("espeak_fox")).len(),
        "granularity applies at once"
    );
}

/// `transcriberbin` may set `latency` after the element started: until the first audio it
/// still takes effect (the latency reported changes and the pipeline is told); after that it
/// is ignored with a warning.
#[test]
fn latency_set_before_the_first_audio_takes_effect() {
    let element = element("phrase");
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    let mut h = harness_around(&element);
    h.set_upstream_latency(gst::ClockTime::ZERO);
    let reported = |element: &gst::Element| {
        let mut q = gst::query::Latency::new();
        assert!(element.static_pad("src").unwrap().query(&mut q));
        q.result().1
    };
    assert_eq!(
        reported(&element),
        gst::ClockTime::from_mseconds(u64::from(config::DEFAULT_LATENCY_MS))
    );
    element.set_property("latency", 2500u32);
    assert!(bus.pop_filtered(&[gst::MessageType::Warning]).is_none());
    push_audio(&mut h, &s16_bytes(&clip("short_yes")), 3200, 0);
    assert_eq!(reported(&element), gst::ClockTime::from_mseconds(2500));
    assert!(bus.pop_filtered(&[gst::MessageType::Latency]).is_some());
    element.set_property("latency", 3000u32);
    assert!(bus.pop_filtered(&[gst::MessageType::Warning]).is_some());
    assert_eq!(reported(&element), gst::ClockTime::from_mseconds(2500));
}

/// A change that is ignored says so on the bus, where the application sees it.
#[test]
fn an_ignored_property_change_posts_a_warning() {
    let element = element("phrase");
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    let _h = harness_around(&element);
    element.set_property("chunk-ms", 5000u32);
    let warning = bus
        .pop_filtered(&[gst::MessageType::Warning])
        .expect("a warning");
    let gst::MessageView::Warning(w) = warning.view() else {
        unreachable!()
    };
    let text = w.error().to_string();
    assert!(
        text.contains("chunk-ms") && text.contains("NULL or READY"),
        "{text}"
    );
    assert!(bus.pop_filtered(&[gst::MessageType::Warning]).is_none());
    element.set_property("granularity", gstquartznetstt_granularity("word"));
    assert!(
        bus.pop_filtered(&[gst::MessageType::Warning]).is_none(),
        "granularity may change while streaming"
    );
}

fn gstquartznetstt_granularity(nick: &str) -> glib::Value {
    init();
    let pspec = gst::ElementFactory::make("quartznetstt")
        .build()
        .unwrap()
        .find_property("granularity")
        .unwrap();
    let class = glib::EnumClass::with_type(pspec.value_type()).unwrap();
    class.to_value_by_nick(nick).unwrap()
}

#[test]
fn a_new_segment_drains_and_restarts_the_timeline() {
    let a = clip("espeak_fox");
    let b = clip("flite_hello");
    let mut h = harness("word");
    push_audio(&mut h, &s16_bytes(&a), 3200, 10 * u64::from(RATE));
    // A new segment (e.g. the next file in a playlist) whose timestamps start again at 0.
    h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
        gst::ClockTime,
    >::new()));
    let (first, _) = collect(&mut h);
    assert_eq!(
        first.len(),
        reference_words(&a).len(),
        "the old stream is drained first"
    );
    push_audio(&mut h, &s16_bytes(&b), 3200, 0);
    h.push_event(gst::event::Eos::new());
    let (second, _) = collect(&mut h);
    // The new stream's decoder starts afresh, but its first word follows the old stream's
    // text downstream, so it is separated from it.
    let mut expected = reference_timed(&b);
    if !expected[0].0.starts_with(' ') {
        expected[0].0.insert(0, ' ');
    }
    assert_timed(&second, &expected, 0);
}

/// The bundled English model with its language model: beam search in the element gives the
/// engine's words at the engine's times, whatever the buffer sizes.
#[test]
fn beam_search_text_matches_the_engine() {
    init();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let model_file = root.join("models/quartznet-en.onnx");
    let samples = read_wav(&root.join("samples/heldout_slt_2.wav"));

    let model = OnnxModel::load(&model_file, &LoadOptions::default()).unwrap();
    let description = model.description().clone();
    assert!(
        description.language_model.is_some(),
        "the bundled model names its LM"
    );
    let config = test_config(None);
    let frontend = config.frontend_for(&description);
    let (geometry, _) = WindowConfig::for_model(&config, &description);
    let decoder = config.decoding.decoding_options(&description).unwrap();
    assert!(decoder.beam.is_some(), "auto picks beam search");
    let mut r = StreamingRecognizer::new(model, &description, frontend, geometry, decoder).unwrap();
    r.push(&samples);
    let mut results = Vec::new();
    while let Some(result) = r.next_result().unwrap() {
        results.push(result);
    }
    results.extend(r.finish().unwrap());
    let expected = timed_words(results);
    assert!(expected.len() >= 5, "{expected:?}");

    for piece in [1234usize, 32000] {
        let mut h = harness_around(&element_with(&model_file, "word"));
        push_audio(&mut h, &s16_bytes(&samples), piece, 0);
        h.push_event(gst::event::Eos::new());
        let (texts, gaps) = collect(&mut h);
        assert_text_and_gaps_tile(&texts, gaps, 0, samples.len());
        assert_timed(&texts, &expected, 0);
    }
}

#[test]
fn bad_language_models_give_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // The parity fixture's description names no language model.
    let e = start_error_with(&model_path(), &[("decoder", "beam")]);
    assert!(
        e.contains("needs a word language model") && e.contains("lm-path"),
        "{e}"
    );

    let missing = dir.join("missing.arpa");
    let e = start_error_with(&model_path(), &[("lm-path", missing.to_str().unwrap())]);
    assert!(
        e.contains("missing.arpa") && e.contains("cannot read language model"),
        "{e}"
    );

    let broken = dir.join("broken.arpa");
    std::fs::write(&broken, "\\data\\\nngram 1=2\n\n\\1-grams:\n-1.0\t<s>\n").unwrap();
    let e = start_error_with(&model_path(), &[("lm-path", broken.to_str().unwrap())]);
    assert!(e.contains("broken.arpa") && e.contains("truncated"), "{e}");
}

/// Live delivery: a sink that renders text against the clock receives each text buffer by
/// its timestamp plus the latency the element reports, so no text may leave the element
/// later than that, whichever decoder is used and however long words take to settle.
#[test]
fn text_is_never_later_than_the_reported_latency() {
    init();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let model_file = root.join("models/quartznet-en.onnx");
    let samples = read_wav(&root.join("samples/LJ001-0001.wav"));
    let bytes = s16_bytes(&samples);
    // 100 ms buffers, as a live source sends them.
    let piece = (RATE / 10) as usize * 2;

    for decoder in ["greedy", "beam"] {
        let stt = gst::ElementFactory::make("quartznetstt")
            .property("model-path", model_file.to_str().unwrap())
            .property_from_str("decoder", decoder)
            .property_from_str("granularity", "word")
            .build()
            .unwrap();
        let mut h = harness_around(&stt);
        h.set_upstream_latency(gst::ClockTime::ZERO);
        let mut words = 0;
        let mut latency = None;
        for (i, part) in bytes.chunks(piece).enumerate() {
            let start = (i * piece / 2) as u64;
            let mut buffer = gst::Buffer::from_slice(part.to_vec());
            {
                let b = buffer.get_mut().unwrap();
                b.set_pts(time_of(start));
                b.set_duration(time_of(part.len() as u64 / 2));
            }
            assert_eq!(h.push(buffer), Ok(gst::FlowSuccess::Ok));
            let latency = *latency
                .get_or_insert_with(|| h.query_latency().expect("the element answers LATENCY"));
            // All audio up to here has arrived; the text out now must still be on time.
            let arrived = time_of(start + part.len() as u64 / 2);
            let (texts, _) = collect(&mut h);
            for t in &texts {
                assert!(
                    t.pts + latency >= arrived,
                    "{decoder}: {:?} at {} arrived when the audio reached {arrived}, \
                     later than its timestamp + latency {latency}",
                    t.text,
                    t.pts
                );
            }
            words += texts.len();
        }
        assert!(words >= 10, "{decoder}: {words} words before EOS");
    }
}

/// Pushes `samples` in 100 ms buffers stamped `pts(ideal timestamp)` (ideal: the sample
/// clock from zero); returns the text and the WARNING messages the element posted.
fn run_with_timestamps(
    element: &gst::Element,
    samples: &[f32],
    mut pts: impl FnMut(gst::ClockTime) -> gst::ClockTime,
) -> (Vec<Text>, Vec<String>) {
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    let mut h = harness_around(element);
    let piece = RATE as usize / 10;
    for (i, part) in samples.chunks(piece).enumerate() {
        let mut buffer = gst::Buffer::from_slice(s16_bytes(part));
        {
            let b = buffer.get_mut().unwrap();
            b.set_pts(pts(time_of((i * piece) as u64)));
            b.set_duration(time_of(part.len() as u64));
        }
        assert_eq!(h.push(buffer), Ok(gst::FlowSuccess::Ok));
    }
    h.push_event(gst::event::Eos::new());
    let (texts, _) = collect(&mut h);
    let mut warnings = Vec::new();
    while let Some(message) = bus.pop() {
        if let gst::MessageView::Warning(w) = message.view() {
            warnings.push(w.error().to_string());
        }
    }
    (texts, warnings)
}

fn joined(texts: &[Text]) -> String {
    let words: Vec<&str> = texts.iter().map(|t| t.text.trim()).collect();
    words.join(" ")
}

/// Capture devices and network sources stamp buffers with jitter of tens of ms; within the
/// tolerance the sample count is the clock, so the text is exactly that of clean timestamps
/// and nothing is reported.
#[test]
fn jittered_timestamps_give_the_clean_transcript() {
    init();
    let root = repository();
    let model = root.join("models/quartznet-en.onnx");
    let samples = read_wav(&root.join("samples/LJ001-0001.wav"));
    let start = gst::ClockTime::from_seconds(5);
    let (clean, warnings) =
        run_with_timestamps(&element_with(&model, "phrase"), &samples, |t| start + t);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(
        joined(&clean).split(' ').count() >= 10,
        "{}",
        joined(&clean)
    );
    for jitter_ms in [15u64, 30] {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ jitter_ms;
        let (jittered, warnings) =
            run_with_timestamps(&element_with(&model, "phrase"), &samples, |t| {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let offset = (seed >> 33) % (2 * jitter_ms + 1);
                (start + t + gst::ClockTime::from_mseconds(offset))
                    .saturating_sub(gst::ClockTime::from_mseconds(jitter_ms))
            });
        assert_eq!(joined(&jittered), joined(&clean), "+-{jitter_ms} ms");
        assert!(warnings.is_empty(), "+-{jitter_ms} ms: {warnings:?}");
    }
}

/// A source whose clock runs fast or slow against its sample rate (here 1 %, far more than
/// the 0.1 % of real devices, so a minute shows what an hour would) never restarts the
/// stream: the audio is untouched, the text is that of clean timestamps, its timestamps
/// follow the source's clock, and one warning says so.
#[test]
fn drifting_clocks_follow_without_restart() {
    init();
    let once = clip("LJ001-0001");
    let mut samples = Vec::new();
    while samples.len() < 60 * RATE as usize {
        samples.extend_from_slice(&once);
    }
    let (clean, warnings) = run_with_timestamps(&element("word"), &samples, |t| t);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(clean.len() >= 20, "{}", clean.len());
    for (name, permille) in [("fast", 990u64), ("slow", 1010)] {
        let scale =
            |t: gst::ClockTime| gst::ClockTime::from_nseconds(t.nseconds() / 1000 * permille);
        let (drifted, warnings) = run_with_timestamps(&element("word"), &samples, scale);
        assert_eq!(joined(&drifted), joined(&clean), "{name}");
        assert_eq!(warnings.len(), 1, "{name}: {warnings:?}");
        assert!(warnings[0].contains("drift"), "{name}: {warnings:?}");
        // Each word sits where the source's clock puts it, within twice the tolerance.
        for (d, c) in drifted.iter().zip(&clean) {
            let want = scale(c.pts).nseconds() as i64;
            let off = d.pts.nseconds() as i64 - want;
            assert!(
                off.abs() <= 80_000_000,
                "{name}: {} at {} not {want}",
                d.text,
                d.pts
            );
        }
    }
}

/// Beyond the tolerance the element resynchronises and says what it did to how much audio.
#[test]
fn resynchronisations_are_warnings_naming_the_audio() {
    init();
    let samples = clip("LJ001-0001");
    let hole = gst::ClockTime::from_mseconds(500);
    let at = gst::ClockTime::from_seconds(3);
    let (_, warnings) = run_with_timestamps(&element("word"), &samples, |t| {
        if t >= at { t + hole } else { t }
    });
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("500.0 ms of audio missing") && warnings[0].contains("silence"),
        "{warnings:?}"
    );
    let jump = gst::ClockTime::from_seconds(5);
    let (_, warnings) = run_with_timestamps(&element("word"), &samples, |t| {
        if t >= at { t + jump } else { t }
    });
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("timestamp jump of +5000.0 ms") && warnings[0].contains("new stream"),
        "{warnings:?}"
    );
}

/// What left the element, in order: text buffers and GAP events, by start time.
fn record_order(
    element: &gst::Element,
) -> std::sync::Arc<std::sync::Mutex<Vec<(bool, gst::ClockTime)>>> {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = std::sync::Arc::clone(&seen);
    element.static_pad("src").unwrap().add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => {
                    log.lock().unwrap().push((true, b.pts().unwrap()))
                }
                Some(gst::PadProbeData::Event(e)) => {
                    if let gst::EventView::Gap(g) = e.view() {
                        log.lock().unwrap().push((false, g.get().0));
                    }
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
    seen
}

/// An upstream GAP event in the middle of speech never overtakes the text the element holds
/// for the audio before it: a short one is recognised as silence, a long one drains first.
#[test]
fn upstream_gaps_keep_their_order_with_the_text() {
    let a = clip("espeak_fox");
    for gap_ms in [200u64, 10_000] {
        let element = element("word");
        let seen = record_order(&element);
        let mut h = harness_around(&element);
        push_audio(&mut h, &s16_bytes(&a), 3200, 0);
        let end = a.len() as u64;
        let gap = time_of(u64::from(RATE) * gap_ms / 1000);
        h.push_event(gst::event::Gap::builder(time_of(end)).duration(gap).build());
        let resume = end + u64::from(RATE) * gap_ms / 1000;
        push_audio(&mut h, &s16_bytes(&a), 3200, resume);
        h.push_event(gst::event::Eos::new());
        let (texts, _) = collect(&mut h);
        let seen = seen.lock().unwrap().clone();
        assert!(texts.len() >= 2, "{texts:?}");
        for pair in seen.windows(2) {
            assert!(
                pair[1].1 >= pair[0].1,
                "{gap_ms} ms gap: {:?} after {:?} in {seen:?}",
                pair[1],
                pair[0]
            );
        }
        // Every word is there: a short gap is the silence it stands for in one stream, a
        // long one ends the first stream.
        let words = if gap_ms <= 1000 {
            let mut joined = a.clone();
            joined.extend(std::iter::repeat_n(0.0, (resume - end) as usize));
            joined.extend_from_slice(&a);
            reference_words(&joined).len()
        } else {
            2 * reference_words(&a).len()
        };
        assert_eq!(texts.len(), words, "{gap_ms} ms gap: {texts:?}");
    }
}

/// The gst-plugins-rs transcriber contract: `language-code` must be the model's language
/// (a clear error otherwise), `lateness` moves the output's running time, utterances end
/// with `rstranscribe/final-transcript`, and the class is a transcriber's.
#[test]
fn transcriber_properties_and_final_transcript_events() {
    init();
    let bundled = repository().join("models/quartznet-en.onnx");
    let refused = start_failure(&bundled, &[("language-code", "fr-FR")]);
    assert!(refused.matches(gst::LibraryError::Settings), "{refused:?}");
    assert!(
        refused.message().contains("'fr-FR' is not supported")
            && refused.message().contains("'en'"),
        "{refused}"
    );
    let factory = gst::ElementFactory::find("quartznetstt").unwrap();
    assert_eq!(factory.metadata("klass"), Some("Audio/Text/Filter"));

    let element = element("phrase");
    element.set_property("language-code", "en-US");
    element.set_property("lateness", 500u32);
    let mut h = harness_around(&element);
    let a = clip("espeak_fox");
    push_audio(&mut h, &s16_bytes(&a), 3200, 0);
    // Two utterances: silence longer than the word gap between them.
    let pause = vec![0.0; 2 * RATE as usize];
    push_audio(&mut h, &s16_bytes(&pause), 3200, a.len() as u64);
    push_audio(
        &mut h,
        &s16_bytes(&a),
        3200,
        a.len() as u64 + pause.len() as u64,
    );
    h.push_event(gst::event::Eos::new());
    let mut finals = 0;
    let mut base = None;
    let mut texts = 0;
    while let Some(event) = h.try_pull_event() {
        match event.view() {
            gst::EventView::Segment(s) => {
                base = s.segment().downcast_ref::<gst::ClockTime>().unwrap().base()
            }
            gst::EventView::CustomDownstream(c)
                if c.structure().map(|s| s.name().as_str())
                    == Some("rstranscribe/final-transcript") =>
            {
                finals += 1
            }
            _ => {}
        }
    }
    while h.try_pull().is_some() {
        texts += 1;
    }
    assert_eq!(base, Some(gst::ClockTime::from_mseconds(500)));
    assert!(texts > 0);
    assert!(
        finals >= 2,
        "{finals} final-transcript events for two utterances"
    );
}

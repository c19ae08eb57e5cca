// SPDX-License-Identifier: MPL-2.0
//! Sub-word (SentencePiece) models through the element: the random-weight Citrinet and
//! FastConformer fixtures (`tests/fixtures/subword-models/`, built by
//! `tools/subword_models.py`) from a file pipeline and from live input, against the engine's
//! own recogniser on the same audio and settings.
//!
//! Their greedy output is gibberish of many different pieces: word starts (`▁`), pieces
//! continuing a word, the unknown surface, and for FastConformer byte-fallback pieces
//! (U+FFFD, control characters, a space inside a word). That is the text path these tests
//! exercise: words, separators and times (80 ms output frames: subsampling 8 of a 10 ms hop)
//! in buffers and bus messages, the word buffers keeping a word's pieces together, and the
//! reported latency.

mod common;
mod plugin;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::*;
use gst::prelude::*;
use plugin::{init, play_live};
use quartznet_engine::config::{RecognizerConfig, WindowOverrides};
use quartznet_engine::decode::{Word, transcript};
use quartznet_engine::model::{LoadOptions, OnnxModel};
use quartznet_engine::streaming::{ChunkResult, StreamingRecognizer};

const RATE: u64 = 16_000;
/// Samples per output frame of both models: a 160-sample hop, subsampled 8 times (80 ms).
const FRAME_SAMPLES: u64 = 1280;
const MODELS: [&str; 2] = ["citrinet", "fastconformer"];

fn model(name: &str) -> PathBuf {
    fixtures()
        .join("subword-models")
        .join(name)
        .join("model.onnx")
}

fn audio(clip: &str) -> PathBuf {
    fixtures().join("audio").join(format!("{clip}.wav"))
}

fn time_of(samples: u64) -> gst::ClockTime {
    gst::ClockTime::from_nseconds(samples * 1_000_000_000 / RATE)
}

/// What the engine's own recogniser gives for `samples`: the chunk results of a stream
/// recognised as the element recognises input that is `live` or not, with `overrides` set.
fn engine_results(
    model_path: &Path,
    samples: &[f32],
    live: bool,
    overrides: &WindowOverrides,
) -> Vec<ChunkResult> {
    let model = OnnxModel::load(model_path, &LoadOptions { threads: 1 }).unwrap();
    let shares = model.description().latency_shares;
    let config = RecognizerConfig::for_input(overrides, &shares, live);
    let mut recognizer = StreamingRecognizer::from_config(model, &config).unwrap();
    let mut results = Vec::new();
    recognizer.push(samples);
    while let Some(result) = recognizer.next_result().unwrap() {
        results.push(result);
    }
    results.extend(recognizer.finish().unwrap());
    results
}

/// The engine's final words in order, each with the first frame of the chunk that
/// completed it.
fn final_words(results: &[ChunkResult]) -> Vec<(Word, u64)> {
    results
        .iter()
        .flat_map(|r| r.words.iter().map(move |w| (w.clone(), r.first_frame)))
        .collect()
}

/// The engine's text: its words with their separators and the spaces after the last one.
fn engine_text(results: &[ChunkResult]) -> String {
    let words: Vec<Word> = final_words(results).into_iter().map(|(w, _)| w).collect();
    let trailing = results.last().map_or(0, |r| r.trailing_spaces);
    transcript(&words) + &" ".repeat(trailing as usize)
}

/// Something the element sent downstream.
#[derive(Clone, Debug)]
enum Out {
    Text {
        text: String,
        pts: gst::ClockTime,
        duration: gst::ClockTime,
        partial: bool,
    },
    Gap {
        start: gst::ClockTime,
        duration: gst::ClockTime,
    },
}

/// What one run of the element gave: its outputs in the order they left its source pad,
/// and its `quartznetstt` messages in bus order.
struct Run {
    outputs: Vec<Out>,
    messages: Vec<gst::Structure>,
}

impl Run {
    /// The final text buffers: (text, pts, duration).
    fn texts(&self) -> Vec<(String, gst::ClockTime, gst::ClockTime)> {
        self.outputs
            .iter()
            .filter_map(|o| match o {
                Out::Text {
                    text,
                    pts,
                    duration,
                    partial: false,
                } => Some((text.clone(), *pts, *duration)),
                _ => None,
            })
            .collect()
    }

    fn text(&self) -> String {
        self.texts().into_iter().map(|(t, ..)| t).collect()
    }

    fn partials(&self) -> usize {
        self.outputs
            .iter()
            .filter(|o| matches!(o, Out::Text { partial: true, .. }))
            .count()
    }

    fn gaps(&self) -> usize {
        self.outputs
            .iter()
            .filter(|o| matches!(o, Out::Gap { .. }))
            .count()
    }
}

/// Records what `element` sends from its source pad, in order.
fn record(element: &gst::Element) -> Arc<Mutex<Vec<Out>>> {
    let outputs = Arc::new(Mutex::new(Vec::new()));
    let store = outputs.clone();
    element.static_pad("src").unwrap().add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            if let Some(buffer) = info.buffer() {
                let map = buffer.map_readable().unwrap();
                let partial =
                    gst::meta::CustomMeta::from_buffer(buffer, "QuartzNetSttPartialMeta").is_ok();
                assert_eq!(
                    partial,
                    buffer.flags().contains(gst::BufferFlags::DROPPABLE),
                    "a partial buffer is marked both ways"
                );
                store.lock().unwrap().push(Out::Text {
                    text: std::str::from_utf8(&map).expect("UTF-8 text").to_string(),
                    pts: buffer.pts().expect("text has a timestamp"),
                    duration: buffer.duration().expect("text has a duration"),
                    partial,
                });
            } else if let Some(event) = info.event()
                && let gst::EventView::Gap(gap) = event.view()
            {
                let (start, duration) = gap.get();
                store.lock().unwrap().push(Out::Gap {
                    start,
                    duration: duration.expect("a gap has a duration"),
                });
            }
            gst::PadProbeReturn::Ok
        },
    );
    outputs
}

/// `clip` as a file: `filesrc ! wavparse ! quartznetstt` (input that is not live), with
/// `properties` set on the element.
fn file_run(model_name: &str, clip: &str, properties: &[(&str, &str)]) -> Run {
    init();
    let mut launch = format!(
        "filesrc location=\"{}\" ! wavparse ! audioconvert ! audioresample ! \
         quartznetstt name=stt model-path=\"{}\" threads=1",
        audio(clip).display(),
        model(model_name).display()
    );
    for (name, value) in properties {
        launch.push_str(&format!(" {name}={value}"));
    }
    launch.push_str(" ! fakesink sync=false");
    let pipeline = gst::parse::launch(&launch)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let outputs = record(&pipeline.by_name("stt").unwrap());
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut messages = Vec::new();
    for message in bus.iter_timed(gst::ClockTime::from_seconds(120)) {
        match message.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{model_name} {clip}: {e:?}"),
            gst::MessageView::Warning(w) => panic!("{model_name} {clip}: {w:?}"),
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name() == "quartznetstt") {
                    messages.push(s.to_owned());
                }
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let outputs = outputs.lock().unwrap().clone();
    Run { outputs, messages }
}

/// `clip` as live input (100 ms buffers; the harness answers the LATENCY query as a live
/// source), with `properties` set on the element. Also returns the latency the element
/// reports, asked after the stream.
fn live_run(model_name: &str, clip: &str, properties: &[(&str, &str)]) -> (Run, gst::ClockTime) {
    init();
    let element = gst::ElementFactory::make("quartznetstt")
        .property("model-path", model(model_name).to_str().unwrap())
        .property("threads", 1u32)
        .build()
        .unwrap();
    for (name, value) in properties {
        element.set_property_from_str(name, value);
    }
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    let outputs = record(&element);
    let samples: Vec<i16> = read_wav(&audio(clip))
        .iter()
        .map(|&x| (x * 32768.0) as i16)
        .collect();
    let mut h = play_live(&element, &samples);
    while h.try_pull().is_some() {}
    let mut query = gst::query::Latency::new();
    assert!(element.static_pad("src").unwrap().query(&mut query));
    let (live, latency, _) = query.result();
    assert!(live, "the harness is a live source");
    let mut messages = Vec::new();
    while let Some(message) = bus.pop() {
        match message.view() {
            gst::MessageView::Error(e) => panic!("{model_name} {clip}: {e:?}"),
            gst::MessageView::Warning(w) => panic!("{model_name} {clip}: {w:?}"),
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name() == "quartznetstt") {
                    messages.push(s.to_owned());
                }
            }
            _ => {}
        }
    }
    let outputs = outputs.lock().unwrap().clone();
    (Run { outputs, messages }, latency)
}

/// A bus word: text, separator, start and end in seconds.
type BusWord = (String, String, f64, f64);

fn bus_words(s: &gst::StructureRef) -> Vec<BusWord> {
    s.get::<gst::Array>("words")
        .unwrap()
        .iter()
        .map(|value| {
            let w = value.get::<&gst::StructureRef>().unwrap();
            (
                w.get::<String>("text").unwrap(),
                w.get::<String>("separator").unwrap(),
                w.get::<f64>("start").unwrap(),
                w.get::<f64>("end").unwrap(),
            )
        })
        .collect()
}

/// Seconds of `samples`, rounded to the millisecond as the messages give them.
fn seconds(samples: u64) -> f64 {
    (samples as f64 / RATE as f64 * 1e3).round() / 1e3
}

/// The bus of a run: every message's words, each `separator + text`, make its text; the
/// final messages' words are the engine's, in order, with the engine's separators and times
/// (whole 80 ms frames from the stream start, the last ones clamped to the end of the
/// audio); their texts concatenate into the engine's text; partial messages are not final.
fn check_bus(run: &Run, results: &[ChunkResult], audio_samples: u64, what: &str) {
    let expected: Vec<BusWord> = final_words(results)
        .into_iter()
        .map(|(w, _)| {
            let at = |frame: u64| seconds((frame * FRAME_SAMPLES).min(audio_samples));
            (
                w.text.clone(),
                " ".repeat(w.spaces_before as usize),
                at(w.start_frame),
                at(w.end_frame),
            )
        })
        .collect();
    let mut finals = Vec::new();
    let mut final_text = String::new();
    for s in &run.messages {
        let words = bus_words(s);
        let text = s.get::<String>("text").unwrap();
        let joined: String = words
            .iter()
            .map(|(t, sep, ..)| format!("{sep}{t}"))
            .collect();
        if words.is_empty() {
            // No words: the end of the stream (the spaces after the last word), or a
            // chunk in which nothing is being said.
            assert!(text.chars().all(|c| c == ' '), "{what}: {s}");
        } else {
            assert_eq!(joined, text, "{what}: {s}");
        }
        for (_, separator, start, end) in &words {
            assert!(separator.chars().all(|c| c == ' '), "{what}: {s}");
            assert!(start <= end, "{what}: {s}");
        }
        if s.get::<bool>("final").unwrap() {
            final_text += &text;
            finals.extend(words);
        }
    }
    assert_eq!(final_text, engine_text(results), "{what}");
    assert_eq!(finals, expected, "{what}");
}

/// Outputs never go back in time and never overlap: each text buffer or gap starts where
/// the one before ended or later (partial buffers are zero long), up to the end of the
/// audio and no further.
fn check_timeline(run: &Run, audio_samples: u64, what: &str) {
    let mut until = gst::ClockTime::ZERO;
    for output in &run.outputs {
        let (start, duration) = match output {
            Out::Text { pts, duration, .. } => (*pts, *duration),
            Out::Gap { start, duration } => (*start, *duration),
        };
        assert!(start >= until, "{what}: {output:?} starts before {until}");
        until = start + duration;
    }
    // A gap may cover the last frame, which is centred on the last sample.
    let end = time_of(audio_samples.div_ceil(FRAME_SAMPLES) * FRAME_SAMPLES);
    assert!(until <= end, "{what}: output until {until}, past {end}");
    assert!(run.gaps() > 0, "{what}: no GAP event");
}

/// The final buffers (separator=model: they concatenate into the text) split the engine's
/// words into consecutive groups, each the words of one buffer. Returns the groups as word
/// index ranges.
fn buffer_groups(
    texts: &[(String, gst::ClockTime, gst::ClockTime)],
    words: &[(Word, u64)],
    what: &str,
) -> Vec<std::ops::Range<usize>> {
    let mut groups = Vec::new();
    let mut from = 0;
    for (text, ..) in texts {
        if text.chars().all(|c| c == ' ') && !text.is_empty() && from == words.len() {
            // The spaces after the last word, a buffer of their own.
            continue;
        }
        let mut to = from;
        let mut built = String::new();
        while built.len() < text.len() && to < words.len() {
            words[to].0.write_to(&mut built);
            to += 1;
        }
        assert_eq!(&built, text, "{what}: buffer {} of {texts:?}", groups.len());
        groups.push(from..to);
        from = to;
    }
    assert_eq!(from, words.len(), "{what}: words left over");
    groups
}

/// A buffer never starts with a piece that continues the word before it (`spaces_before`
/// 0), unless that word went out with an earlier chunk: a word's pieces stay in its buffer.
/// With `per_word`, every other word starts a buffer of its own.
fn check_words_whole(
    groups: &[std::ops::Range<usize>],
    words: &[(Word, u64)],
    per_word: bool,
    what: &str,
) {
    for group in groups {
        let first = group.start;
        let starts_chunk = first == 0 || words[first].1 != words[first - 1].1;
        assert!(
            words[first].0.spaces_before > 0 || starts_chunk,
            "{what}: a buffer starts inside a word: {:?}",
            &words[group.clone()]
        );
        if per_word {
            assert!(
                words[group.start + 1..group.end]
                    .iter()
                    .all(|(w, _)| w.spaces_before == 0),
                "{what}: two words in one word buffer: {:?}",
                &words[group.clone()]
            );
        }
    }
}

/// The engine's words of the two models on the clip the live tests use hold pieces of every
/// kind the text path must carry: the unknown surface, byte-fallback text (U+FFFD, control
/// characters), more than one separator before a word. (Continued words, which the tests
/// below bring about with a short word gap, are checked there.)
#[test]
fn the_fixture_texts_exercise_the_text_path() {
    let words = |name: &str, clip: &str, live: bool| -> Vec<Word> {
        let samples = read_wav(&audio(clip));
        final_words(&engine_results(
            &model(name),
            &samples,
            live,
            &WindowOverrides::default(),
        ))
        .into_iter()
        .map(|(w, _)| w)
        .collect()
    };
    let citrinet = words("citrinet", "LJ001-0001", true);
    let fastconformer = words("fastconformer", "LJ001-0001", true);
    let all: Vec<&Word> = citrinet.iter().chain(&fastconformer).collect();
    assert!(
        all.iter().any(|w| w.text.contains('⁇')),
        "no unknown surface"
    );
    assert!(
        fastconformer.iter().any(|w| w.text.contains('\u{FFFD}')),
        "no bad byte"
    );
    assert!(
        fastconformer
            .iter()
            .any(|w| w.text.chars().any(char::is_control)),
        "no control character"
    );
    assert!(
        all.iter().any(|w| w.spaces_before > 1),
        "no double separator"
    );
}

/// A short word gap (one 80 ms frame of blank) completes words the model has not ended with
/// a `▁` yet: later pieces of such a word come out as its continuation (`spaces_before` 0),
/// which word and phrase buffers must keep with it.
const SHORT_WORD_GAP_MS: u32 = 80;

/// The element's properties for a word gap, and the engine's override for it.
fn word_gap(ms: Option<u32>) -> (Vec<(&'static str, String)>, WindowOverrides) {
    let properties = ms
        .map(|ms| vec![("word-gap-ms", ms.to_string())])
        .unwrap_or_default();
    let overrides = WindowOverrides {
        word_gap_ms: ms,
        ..WindowOverrides::default()
    };
    (properties, overrides)
}

/// A file pipeline gives the engine's text for the file windows, word by word with the
/// engine's separators and times (whole 80 ms frames), in word and in phrase buffers that
/// keep a word's pieces together, and the same buffers with every separator.
#[test]
fn file_text_words_and_times_are_the_engines() {
    let mut continued = 0;
    for name in MODELS {
        for (clip, gap) in [
            ("espeak_fox", None),
            ("LJ001-0001", Some(SHORT_WORD_GAP_MS)),
        ] {
            let samples = read_wav(&audio(clip));
            let n = samples.len() as u64;
            let (gap_properties, overrides) = word_gap(gap);
            let results = engine_results(&model(name), &samples, false, &overrides);
            let words = final_words(&results);
            for granularity in ["word", "phrase"] {
                let what = format!("{name} {clip} {granularity}");
                let run_with = |separator: &str| {
                    let mut properties =
                        vec![("granularity", granularity), ("separator", separator)];
                    properties.extend(gap_properties.iter().map(|(k, v)| (*k, v.as_str())));
                    file_run(name, clip, &properties)
                };
                let run = run_with("model");
                assert_eq!(run.text(), engine_text(&results), "{what}");
                assert_eq!(run.partials(), 0, "{what}: partial results are off");
                check_bus(&run, &results, n, &what);
                check_timeline(&run, n, &what);
                let texts = run.texts();
                let groups = buffer_groups(&texts, &words, &what);
                check_words_whole(&groups, &words, granularity == "word", &what);
                if granularity == "word" {
                    continued += groups.iter().filter(|g| g.len() > 1).count();
                }
                // Each buffer spans its words: from the first one's start (or where the
                // buffer before ended) to the last one's end, in whole 80 ms frames but at
                // the end of the audio.
                let at = |frame: u64| time_of((frame * FRAME_SAMPLES).min(n));
                let mut previous_end = gst::ClockTime::ZERO;
                for (group, (text, pts, duration)) in groups.iter().zip(&texts) {
                    let first = &words[group.start].0;
                    let last = &words[group.end - 1].0;
                    let start = at(first.start_frame).max(previous_end);
                    assert_eq!(*pts, start, "{what}: {text:?}");
                    assert_eq!(
                        *pts + *duration,
                        at(last.end_frame).max(start),
                        "{what}: {text:?}"
                    );
                    previous_end = *pts + *duration;
                }
                // The other separators: the same buffers, each the words as the model
                // joined them (without the first one's separator), then a space or a line
                // break.
                for (separator, end) in [("space", " "), ("newline", "\n")] {
                    let expected: Vec<String> = groups
                        .iter()
                        .map(|g| {
                            let mut text = words[g.start].0.text.clone();
                            for (w, _) in &words[g.start + 1..g.end] {
                                w.write_to(&mut text);
                            }
                            text + end
                        })
                        .collect();
                    let got: Vec<String> = run_with(separator)
                        .texts()
                        .into_iter()
                        .map(|(t, ..)| t)
                        .collect();
                    assert_eq!(got, expected, "{what} separator={separator}");
                }
            }
        }
    }
    assert!(continued > 0, "no word buffer held a continued word");
}

/// Live input with partial results: the final text is the engine's for live windows (which
/// is also what a file gives with a latency set: it is then recognised as live input), word
/// by word on the bus, with partial text between; the output timeline moves forward with
/// gaps; the latency reported is the `latency` property's (4 s by default, more than the
/// windows need: a 1040 ms chunk and 640 ms right context in 80 ms frames).
///
/// The live text is not the file windows' text: live windows see at most a few seconds of
/// audio each, normalised per window, and these random-weight models write other pieces for
/// the slightest change of their input (a trained model mostly does not).
#[test]
fn live_text_with_partials_is_the_engines_for_live_windows() {
    for name in MODELS {
        let clip = "LJ001-0001";
        let samples = read_wav(&audio(clip));
        let n = samples.len() as u64;
        let (gap_properties, overrides) = word_gap(Some(SHORT_WORD_GAP_MS));
        let results = engine_results(&model(name), &samples, true, &overrides);
        let words = final_words(&results);
        let what = format!("{name} live");
        let mut properties = vec![
            ("granularity", "word"),
            ("separator", "model"),
            ("partial-results", "true"),
        ];
        properties.extend(gap_properties.iter().map(|(k, v)| (*k, v.as_str())));
        let (run, latency) = live_run(name, clip, &properties);
        assert_eq!(latency, gst::ClockTime::from_seconds(4), "{what}");
        assert_eq!(run.text(), engine_text(&results), "{what}");
        assert!(run.partials() > 0, "{what}: no partial text");
        check_bus(&run, &results, n, &what);
        check_timeline(&run, n, &what);
        let groups = buffer_groups(&run.texts(), &words, &what);
        check_words_whole(&groups, &words, true, &what);
        // Several chunks: the words are completed in more than one, and a word continues
        // in a later chunk than its start.
        assert!(
            words.iter().any(|(_, chunk)| *chunk > 0),
            "{what}: one chunk only"
        );
        assert!(
            words
                .windows(2)
                .any(|p| p[1].0.spaces_before == 0 && p[1].1 != p[0].1),
            "{what}: no word continues across chunks"
        );

        let file = file_run(name, clip, &[("separator", "model"), ("latency", "4000")]);
        assert_eq!(file.text(), run.text(), "{name}: a file with a latency set");
        let file_windows = engine_text(&engine_results(
            &model(name),
            &samples,
            false,
            &WindowOverrides::default(),
        ));
        assert_ne!(
            file_windows,
            run.text(),
            "{name}: the windows make no difference"
        );
    }
}

/// The latency reported for live input: windows too long for the `latency` asked make the
/// element report what they need, chunk and right context rounded to whole output frames of
/// the model (80 ms: 1000 ms is 1040, 600 ms is 640), not to QuartzNet's 20 ms.
#[test]
fn reported_latency_is_in_the_models_frames() {
    init();
    for name in MODELS {
        let pipeline = gst::parse::launch(&format!(
            "audiotestsrc is-live=true samplesperbuffer=1600 wave=silence \
             ! audio/x-raw,rate=16000,channels=1 ! quartznetstt model-path=\"{}\" threads=1 \
             latency=1000 chunk-ms=1000 right-context-ms=600 ! fakesink name=sink",
            model(name).display()
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        let (result, _, _) = pipeline.state(gst::ClockTime::from_seconds(30));
        result.unwrap();
        let mut query = gst::query::Latency::new();
        assert!(
            pipeline
                .by_name("sink")
                .unwrap()
                .static_pad("sink")
                .unwrap()
                .peer_query(&mut query)
        );
        let bus = pipeline.bus().unwrap();
        let warnings: Vec<String> =
            std::iter::from_fn(|| bus.pop_filtered(&[gst::MessageType::Warning]))
                .map(|m| match m.view() {
                    gst::MessageView::Warning(w) => w.error().to_string(),
                    _ => unreachable!(),
                })
                .collect();
        pipeline.set_state(gst::State::Null).unwrap();
        // Less the source's own latency: one 100 ms buffer.
        let (_, min, _) = query.result();
        let latency = min - gst::ClockTime::from_mseconds(100);
        let lookahead = gst::ClockTime::from_mseconds(1040 + 640);
        assert!(
            latency > lookahead && latency < lookahead + gst::ClockTime::from_seconds(1),
            "{name}: {latency}"
        );
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("a 1040 ms chunk and 640 ms right context")),
            "{name}: {warnings:?}"
        );
    }
}

/// Digital silence gives no words with 80 ms frames either: a frame is a certain blank when
/// 200 ms (3 frames, not QuartzNet's 10) on each side of it are silent too, so the middle of
/// 1.5 s of zeros between two clips holds no word, where the random models write pieces
/// over any input.
#[test]
fn digital_silence_between_words_gives_none() {
    let clip: Vec<i16> = read_wav(&audio("espeak_fox"))
        .iter()
        .map(|&x| (x * 32768.0) as i16)
        .collect();
    let silence = RATE as usize * 3 / 2;
    let mut samples = clip.clone();
    samples.extend(std::iter::repeat_n(0, silence));
    samples.extend(&clip);
    // The frames wholly in the silence, less on each side the 200 ms margin (3 frames) and
    // the one frame the FFT reads beyond its own: the frames that must be blank.
    let first_silent = clip.len().div_ceil(FRAME_SAMPLES as usize) as u64;
    let after_silent = ((clip.len() + silence) / FRAME_SAMPLES as usize) as u64;
    let frame_s = |frame: u64| seconds(frame * FRAME_SAMPLES);
    let (from, to) = (frame_s(first_silent + 4), frame_s(after_silent - 4));
    assert!(to - from >= 0.7, "{from}..{to}");
    for name in MODELS {
        init();
        let element = gst::ElementFactory::make("quartznetstt")
            .property("model-path", model(name).to_str().unwrap())
            .property("threads", 1u32)
            .build()
            .unwrap();
        let bus = gst::Bus::new();
        element.set_bus(Some(&bus));
        let mut h = play_live(&element, &samples);
        while h.try_pull().is_some() {}
        let words: Vec<BusWord> = std::iter::from_fn(|| bus.pop())
            .filter_map(|m| m.structure().map(|s| s.to_owned()))
            .filter(|s| s.name() == "quartznetstt" && s.get::<bool>("final").unwrap())
            .flat_map(|s| bus_words(&s))
            .collect();
        assert!(words.len() > 4, "{name}: {words:?}");
        let inside: Vec<&BusWord> = words
            .iter()
            .filter(|(_, _, start, end)| *end > from && *start < to)
            .collect();
        assert!(
            inside.is_empty(),
            "{name}: words in {from}..{to} s: {inside:?}"
        );
    }
}

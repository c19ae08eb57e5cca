// SPDX-License-Identifier: MPL-2.0
//! Hotwords through the element (`hotwords`, `hotwords-path`): lists given at start, changed
//! while PLAYING on live input (used from the next chunk on, the stream going on: no audio
//! lost, no chunk more or less), malformed lists (an error naming the line at start, a warning
//! while playing that keeps the list in use), for every model family: the default phoneme
//! model (a word its lexicon lacks, spelled by its G2P), QuartzNet (characters) and the
//! random-weight sub-word fixtures (pieces; greedy decoding gives way to the beam search).
//!
//! The live runs play `LJ001-0001` (9.7 s) in 100 ms buffers and change the list before the
//! buffer at `CHANGE` (5 s). The beam search keeps words a commit delay (1 s) before they
//! are final, and greedy decoding completes the word it is in when it gives way: words that
//! end before `UNCHANGED_UNTIL_S` are the same as without the change; the next chunk starts
//! at most a chunk and its right context before the change (less the windows' lead-in), so
//! the list's effect shows in words from `CHANGE_SEEN_FROM_S`.

mod common;
mod plugin;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once};

use common::*;
use gst::prelude::*;
use plugin::{init, play_live_with};

/// The buffer before which the list changes (100 ms buffers: at 5 s).
const CHANGE: usize = 50;
/// Words that end earlier are the same with and without the change.
const UNCHANGED_UNTIL_S: f64 = 2.3;
/// Words that show the new list start no earlier.
const CHANGE_SEEN_FROM_S: f64 = 3.0;
/// A phrase no model says: with a boost this large it takes over from the next chunk on
/// (QuartzNet; a sub-word model writes it of its single-letter pieces).
const FORCED: &str = "zyx :50";

/// The G2P cache in a folder of its own, emptied when the test binary starts (so a word
/// is in it only if this run spelled it), set before any test reads the environment.
fn setup() {
    static SETUP: Once = Once::new();
    SETUP.call_once(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hotwords-g2p-cache");
        let _ = std::fs::remove_dir_all(&dir);
        // SAFETY: every test calls this first, and `Once` holds the others until it is done:
        // no thread reads the environment meanwhile.
        unsafe { std::env::set_var("QUARTZNETSTT_G2P_CACHE", &dir) };
        init();
    });
}

fn g2p_cache() -> PathBuf {
    PathBuf::from(std::env::var_os("QUARTZNETSTT_G2P_CACHE").unwrap())
}

fn clip() -> PathBuf {
    fixtures().join("audio").join("LJ001-0001.wav")
}

fn quartznet() -> PathBuf {
    repository().join("models").join("quartznet-en.onnx")
}

fn subword(name: &str) -> PathBuf {
    fixtures()
        .join("subword-models")
        .join(name)
        .join("model.onnx")
}

/// Something the element sent downstream: text or a gap, its start and duration.
#[derive(Clone, Debug)]
struct Out {
    text: Option<String>,
    start: gst::ClockTime,
    duration: gst::ClockTime,
}

/// What a run gave: outputs in order, element messages, warnings and errors in bus order.
#[derive(Debug)]
struct Run {
    outputs: Vec<Out>,
    messages: Vec<gst::Structure>,
    warnings: Vec<String>,
    errors: Vec<String>,
    /// The `hotwords` property read after the stream.
    hotwords: Option<String>,
}

impl Run {
    /// The final words with their start and end (seconds), from the `quartznetstt`
    /// messages.
    fn words(&self) -> Vec<(String, f64, f64)> {
        self.reports()
            .filter(|s| s.get::<bool>("final").unwrap())
            .flat_map(|s| {
                s.get::<gst::Array>("words")
                    .unwrap()
                    .iter()
                    .map(|v| {
                        let w = v.get::<&gst::StructureRef>().unwrap();
                        (
                            w.get::<String>("text").unwrap(),
                            w.get::<f64>("start").unwrap(),
                            w.get::<f64>("end").unwrap(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The text sent downstream.
    fn text(&self) -> String {
        self.outputs.iter().filter_map(|o| o.text.clone()).collect()
    }

    fn reports(&self) -> impl Iterator<Item = &gst::Structure> {
        self.messages.iter().filter(|s| s.name() == "quartznetstt")
    }

    /// The recognised chunks: each posts one message that is not final, the last one the
    /// stream's end message instead.
    fn chunks(&self) -> usize {
        self.reports()
            .filter(|s| !s.get::<bool>("final").unwrap())
            .count()
    }

    /// The `quartznetstt-hotwords` messages: (phrases, source).
    fn hotword_messages(&self) -> Vec<(u32, String)> {
        self.messages
            .iter()
            .filter(|s| s.name() == "quartznetstt-hotwords")
            .map(|s| (s.get("phrases").unwrap(), s.get("source").unwrap()))
            .collect()
    }

    /// The starts of the words `text`.
    fn starts_of(&self, text: &str) -> Vec<f64> {
        self.words()
            .into_iter()
            .filter(|(t, ..)| t == text)
            .map(|(_, start, _)| start)
            .collect()
    }

    /// The words that end before `seconds`.
    fn words_before(&self, seconds: f64) -> Vec<(String, f64, f64)> {
        self.words()
            .into_iter()
            .filter(|(.., end)| *end < seconds)
            .collect()
    }
}

/// Records what `element` sends from its source pad.
fn record(element: &gst::Element) -> Arc<Mutex<Vec<Out>>> {
    let outputs = Arc::new(Mutex::new(Vec::new()));
    let store = outputs.clone();
    element.static_pad("src").unwrap().add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            if let Some(buffer) = info.buffer() {
                let map = buffer.map_readable().unwrap();
                store.lock().unwrap().push(Out {
                    text: Some(String::from_utf8_lossy(&map).into_owned()),
                    start: buffer.pts().unwrap(),
                    duration: buffer.duration().unwrap(),
                });
            } else if let Some(event) = info.event()
                && let gst::EventView::Gap(gap) = event.view()
            {
                let (start, duration) = gap.get();
                store.lock().unwrap().push(Out {
                    text: None,
                    start,
                    duration: duration.unwrap(),
                });
            }
            gst::PadProbeReturn::Ok
        },
    );
    outputs
}

/// The clip as live input into an element with `model` (`None`: the default model) and
/// `properties`, setting each of `changes` (buffer index, property, value) before that
/// buffer: on the streaming thread, between two buffers, while PLAYING.
fn live(model: Option<&Path>, properties: &[(&str, &str)], changes: &[(usize, &str, &str)]) -> Run {
    live_checked(model, properties, changes, |_| {})
}

/// [`live`], calling `after(i)` once the changes before buffer `i` are set, before the
/// element sees that buffer.
fn live_checked(
    model: Option<&Path>,
    properties: &[(&str, &str)],
    changes: &[(usize, &str, &str)],
    after: impl Fn(usize),
) -> Run {
    setup();
    let mut builder = gst::ElementFactory::make("quartznetstt").property("threads", 1u32);
    if let Some(model) = model {
        builder = builder.property("model-path", model.to_str().unwrap());
    }
    let element = builder.build().unwrap();
    for (name, value) in properties {
        element.set_property_from_str(name, value);
    }
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    let outputs = record(&element);
    let samples: Vec<i16> = read_wav(&clip())
        .iter()
        .map(|&x| (x * 32768.0) as i16)
        .collect();
    let mut h = play_live_with(&element, &samples, |i| {
        for (_, name, value) in changes.iter().filter(|(at, ..)| *at == i) {
            assert_eq!(element.current_state(), gst::State::Playing);
            element.set_property(name, *value);
        }
        after(i);
    });
    while h.try_pull().is_some() {}
    let mut run = Run {
        outputs: outputs.lock().unwrap().clone(),
        messages: Vec::new(),
        warnings: Vec::new(),
        errors: Vec::new(),
        hotwords: element.property("hotwords"),
    };
    while let Some(message) = bus.pop() {
        match message.view() {
            gst::MessageView::Error(e) => run.errors.push(e.error().to_string()),
            gst::MessageView::Warning(w) => run.warnings.push(w.error().to_string()),
            gst::MessageView::Element(e) => run.messages.push(e.structure().unwrap().to_owned()),
            _ => {}
        }
    }
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    run
}

/// No audio lost: text buffers and gaps follow each other without a hole or an overlap from
/// the stream's start to the end of the audio, and as many chunks were recognised as without
/// the change (`base`).
fn check_continuous(run: &Run, base: &Run, what: &str) {
    check_continuous_over(run, base, what, 9);
}

/// [`check_continuous`] for a stream of at least `least` chunks (a cache-aware model's steps
/// are longer than windows' chunks).
fn check_continuous_over(run: &Run, base: &Run, what: &str, least: usize) {
    let mut until = gst::ClockTime::ZERO;
    for out in &run.outputs {
        assert_eq!(out.start, until, "{what}: {out:?} after {until}");
        until = out.start + out.duration;
    }
    let audio = read_wav(&clip()).len() as u64;
    let end = gst::ClockTime::from_nseconds(audio * 1_000_000_000 / 16_000);
    assert!(
        until <= end && end - until < gst::ClockTime::from_mseconds(100),
        "{what}: output until {until}, audio until {end}"
    );
    assert_eq!(run.chunks(), base.chunks(), "{what}: chunks");
    assert!(run.chunks() >= least, "{what}: {} chunks", run.chunks());
}

/// The list's effect from the next chunk on: `word` is written in `run` (on the bus and
/// downstream) only from `CHANGE_SEEN_FROM_S`, never in `base`, and words ending before
/// `UNCHANGED_UNTIL_S` are `base`'s.
fn check_effect(run: &Run, base: &Run, word: &str, what: &str) {
    assert!(
        base.starts_of(word).is_empty(),
        "{what}: {:?}",
        base.words()
    );
    let starts = run.starts_of(word);
    assert!(
        !starts.is_empty(),
        "{what}: no {word:?} in {:?}",
        run.words()
    );
    assert!(run.text().contains(word), "{what}: {:?}", run.text());
    assert!(
        starts.iter().all(|s| *s >= CHANGE_SEEN_FROM_S),
        "{what}: {word:?} at {starts:?}"
    );
    assert_eq!(
        run.words_before(UNCHANGED_UNTIL_S),
        base.words_before(UNCHANGED_UNTIL_S),
        "{what}"
    );
}

/// QuartzNet (characters, beam search with its LM): a list set while PLAYING is used from
/// the next chunk on, without losing audio; a list in a file likewise, and an empty one ends
/// the list; a malformed list is a warning naming its line and changes nothing.
#[test]
fn quartznet_list_changes_while_playing() {
    let model = quartznet();
    let base = live(Some(&model), &[], &[]);
    let changed = live(Some(&model), &[], &[(CHANGE, "hotwords", FORCED)]);
    assert!(base.hotword_messages().is_empty());
    assert!(changed.warnings.is_empty(), "{:?}", changed.warnings);
    assert_eq!(changed.hotword_messages(), [(1, "hotwords".to_string())]);
    check_effect(&changed, &base, "zyx", "quartznet");
    check_continuous(&changed, &base, "quartznet");

    // A malformed list: a warning naming the line; the property and the list in use stay.
    let refused = live(
        Some(&model),
        &[],
        &[
            (CHANGE, "hotwords", FORCED),
            (
                CHANGE + 10,
                "hotwords",
                "# the second line is wrong\nbad :x",
            ),
        ],
    );
    assert_eq!(refused.hotwords.as_deref(), Some(FORCED));
    assert!(
        matches!(&refused.warnings[..], [w] if w.contains("line 2") && w.contains("bad :x") && w.contains("stays")),
        "{:?}",
        refused.warnings
    );
    assert_eq!(refused.hotword_messages().len(), 1);
    assert_eq!(
        refused.words(),
        changed.words(),
        "the refused list changed the text"
    );

    // The same list from a file, then none (an empty path): the phrase stops.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hotwords.txt");
    std::fs::write(&file, format!("# forced\n{FORCED}\n")).unwrap();
    let file = file.to_str().unwrap();
    let cleared = live(
        Some(&model),
        &[],
        &[(CHANGE, "hotwords-path", file), (75, "hotwords-path", "")],
    );
    assert!(cleared.warnings.is_empty(), "{:?}", cleared.warnings);
    assert_eq!(
        cleared.hotword_messages(),
        [(1, file.to_string()), (0, String::new())]
    );
    assert_eq!(cleared.words_before(5.5), changed.words_before(5.5));
    let zyx = cleared.starts_of("zyx");
    assert!(
        !zyx.is_empty() && zyx.iter().all(|s| *s < 7.5),
        "{:?}",
        cleared.words()
    );
    check_continuous(&cleared, &base, "quartznet, cleared");
}

/// The default phoneme model: a word its lexicon lacks ("Kubernetes") is accepted at start,
/// and a list set while PLAYING adds its new words, spelled by the G2P in the setter's
/// thread (into the G2P cache) and written from the next chunk on: "Crafftz", spelled as
/// "crafts", takes that word's place.
#[test]
fn phoneme_model_adds_new_words_from_the_next_chunk() {
    let base = live(None, &[("hotwords", "Kubernetes")], &[]);
    assert!(base.warnings.is_empty(), "{:?}", base.warnings);
    assert!(
        base.starts_of("crafts").iter().any(|s| *s > 7.0),
        "{:?}",
        base.words()
    );
    let list = "Kubernetes\nCrafftz :10";
    // Once the setter returns, before the streaming thread has the list, the new word's
    // spelling is in the cache: the streaming thread does not run the G2P.
    let cached = |i: usize| {
        if i == CHANGE {
            let g2p = repository().join("models").join("hama-g2p");
            let cache = quartznet_engine::g2p::G2pCache::new(g2p_cache());
            let words = ["Crafftz".to_string()];
            let spellings =
                quartznet_engine::g2p::spell_with_cache(&g2p, &words, 1, Some(&cache)).unwrap();
            assert_eq!(spellings.spelled, 0, "Crafftz was not in the G2P cache");
        }
    };
    let changed = live_checked(
        None,
        &[("hotwords", "Kubernetes")],
        &[(CHANGE, "hotwords", list)],
        cached,
    );
    assert!(changed.warnings.is_empty(), "{:?}", changed.warnings);
    assert_eq!(changed.hotword_messages(), [(2, "hotwords".to_string())]);
    check_effect(&changed, &base, "Crafftz", "phoneme model");
    assert!(
        changed.starts_of("crafts").is_empty(),
        "{:?}",
        changed.words()
    );
    check_continuous(&changed, &base, "phoneme model");
}

/// Sub-word models (random weights, no language model): greedy decoding gives way to the
/// open-vocabulary beam search at the next chunk, which writes a phrase of single-letter
/// pieces; an empty list (only a comment) is no list; explicit greedy decoding refuses a
/// list with a warning.
#[test]
fn subword_models_switch_to_the_beam_search() {
    for name in ["citrinet", "fastconformer"] {
        let model = subword(name);
        let base = live(Some(&model), &[], &[]);
        let changed = live(Some(&model), &[], &[(CHANGE, "hotwords", FORCED)]);
        assert!(
            changed.warnings.is_empty(),
            "{name}: {:?}",
            changed.warnings
        );
        assert_eq!(changed.hotword_messages().len(), 1, "{name}");
        check_effect(&changed, &base, "zyx", name);
        check_continuous(&changed, &base, name);

        let empty = live(Some(&model), &[("hotwords", "# none yet\n\n")], &[]);
        assert_eq!(empty.words(), base.words(), "{name}: an empty list");

        let greedy = live(
            Some(&model),
            &[("decoder", "greedy")],
            &[(CHANGE, "hotwords", FORCED)],
        );
        assert!(
            matches!(&greedy.warnings[..], [w] if w.contains("beam search")),
            "{name}: {:?}",
            greedy.warnings
        );
        assert_eq!(greedy.hotwords.as_deref(), None, "{name}");
        assert_eq!(greedy.words(), base.words(), "{name}: greedy");
    }
}

/// The random-weight cache-aware FastConformer: a list set while PLAYING switches its greedy
/// stream to the beam search at the next step, the model's steps going on untouched.
#[test]
fn cache_aware_model_takes_a_list_while_playing() {
    let model = fixtures()
        .join("cache-aware")
        .join("ctc")
        .join("model.onnx");
    let base = live(Some(&model), &[], &[]);
    let changed = live(Some(&model), &[], &[(CHANGE, "hotwords", FORCED)]);
    assert!(changed.warnings.is_empty(), "{:?}", changed.warnings);
    assert_eq!(changed.hotword_messages().len(), 1);
    check_effect(&changed, &base, "zyx", "cache-aware");
    check_continuous_over(&changed, &base, "cache-aware", 7);
}

/// Why the element does not start with `properties` (QuartzNet).
fn start_failure(properties: &[(&str, &str)]) -> String {
    setup();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("audiotestsrc").build().unwrap();
    let stt = gst::ElementFactory::make("quartznetstt")
        .property("model-path", quartznet().to_str().unwrap())
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
        "started with {properties:?}"
    );
    let message = pipeline
        .bus()
        .unwrap()
        .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
        .expect("an error message");
    pipeline.set_state(gst::State::Null).unwrap();
    match message.view() {
        gst::MessageView::Error(e) => e.error().to_string(),
        _ => unreachable!(),
    }
}

/// At start a malformed list, inline or in a file, is an error naming the line; so are a
/// missing file and a list with greedy decoding.
#[test]
fn malformed_lists_fail_the_start() {
    let inline = start_failure(&[("hotwords", "bad :x")]);
    assert!(
        inline.contains("hotwords") && inline.contains("line 1") && inline.contains("bad :x"),
        "{inline}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("list.txt");
    std::fs::write(&file, "# names\nKubernetes\nzero :0\n").unwrap();
    let path = file.to_str().unwrap();
    let in_file = start_failure(&[("hotwords", "fine"), ("hotwords-path", path)]);
    assert!(
        in_file.contains(path) && in_file.contains("line 3"),
        "{in_file}"
    );
    let missing = dir.path().join("missing.txt");
    let missing_error = start_failure(&[("hotwords-path", missing.to_str().unwrap())]);
    assert!(
        missing_error.contains(missing.to_str().unwrap()),
        "{missing_error}"
    );
    let greedy = start_failure(&[("hotwords", "zyx"), ("decoder", "greedy")]);
    assert!(greedy.contains("beam search"), "{greedy}");
}

/// Lists set from another thread while the streaming thread runs (a file played as fast as
/// it decodes): no deadlock, and every accepted list is announced once it is in use.
#[test]
fn lists_set_from_another_thread() {
    setup();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! wavparse ! quartznetstt name=stt threads=1 latency=2000 model-path=\"{}\" ! fakesink sync=false",
        clip().display(),
        subword("fastconformer").display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let stt = pipeline.by_name("stt").unwrap();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut set = 0;
    let mut announced = 0;
    let mut eos = false;
    while !eos {
        set += 1;
        stt.set_property("hotwords", format!("zyx :{}", set % 40 + 1));
        while let Some(message) = bus.timed_pop(gst::ClockTime::from_mseconds(5)) {
            match message.view() {
                gst::MessageView::Eos(_) => eos = true,
                gst::MessageView::Error(e) => panic!("{e:?}"),
                gst::MessageView::Warning(w) => panic!("{w:?}"),
                gst::MessageView::Element(e)
                    if e.structure().unwrap().name() == "quartznetstt-hotwords" =>
                {
                    announced += 1
                }
                _ => {}
            }
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(announced > 0 && announced <= set, "{announced} of {set}");
}

// SPDX-License-Identifier: MPL-2.0
//! Hotword lists through the decoder settings, for every kind of model: the default phoneme
//! model (its lexicon gains the list's words, spelled by its G2P), the bundled character
//! model, and a sub-word model without a language model (an open-vocabulary beam search).

#[path = "../../tests/common/mod.rs"]
mod common;

use std::sync::Arc;

use quartznet_engine::Error;
use quartznet_engine::config::{DecoderKind, DecoderSettings};
use quartznet_engine::decode::CtcDecoder;
use quartznet_engine::decode::hotwords::HotwordList;
use quartznet_engine::model::{ModelDescription, runtime};

/// The description beside `model` (its relative files resolved).
fn description(model: &str) -> ModelDescription {
    ModelDescription::load_sidecar(&common::repository().join(model))
        .unwrap()
        .unwrap()
}

fn list(text: &str) -> Option<Arc<HotwordList>> {
    Some(Arc::new(HotwordList::parse(text, "inline").unwrap()))
}

fn with(hotwords: Option<Arc<HotwordList>>) -> DecoderSettings {
    DecoderSettings {
        hotwords,
        ..DecoderSettings::default()
    }
}

#[test]
fn the_phoneme_models_lexicon_gains_the_lists_words() {
    if let Err(why) = runtime::find_library() {
        eprintln!("skipped: no ONNX Runtime ({why})");
        return;
    }
    let d = description("models/hama-en.onnx");
    let options = with(list("Kubernetes :4\nSiobhan O'Malley\n"))
        .decoding_options(&d)
        .unwrap();
    let beam = options
        .beam
        .as_ref()
        .expect("the default model decodes with the beam search");
    let lexicon = beam.lexicon.as_ref().unwrap();
    for word in ["Kubernetes", "Siobhan", "O'Malley"] {
        assert!(
            lexicon.contains(word) || lexicon.contains(&word.to_lowercase()),
            "{word} is not in the lexicon"
        );
    }
    assert!(CtcDecoder::for_model(&d, options).unwrap().is_beam_search());
}

#[test]
fn greedy_decoding_refuses_a_list_auto_switches_to_the_beam_search() {
    let d = description("models/quartznet-en.onnx");
    let greedy = DecoderSettings {
        decoder: Some(DecoderKind::Greedy),
        ..with(list("cat"))
    };
    let e = greedy.decoding_options(&d).unwrap_err();
    assert!(matches!(e, Error::Settings(_)), "{e}");
    assert!(
        e.to_string()
            .contains("hotwords (inline) need the beam search"),
        "{e}"
    );
    // An empty list is no list.
    let empty = DecoderSettings {
        decoder: Some(DecoderKind::Greedy),
        ..with(list("# nothing\n"))
    };
    assert!(empty.decoding_options(&d).unwrap().beam.is_none());
    // A phrase the characters cannot write names its line.
    let options = with(list("cat\nnaïve\n")).decoding_options(&d).unwrap();
    let e = CtcDecoder::for_model(&d, options).unwrap_err().to_string();
    assert!(
        e.contains("line 2 (\"naïve\"): the model cannot write 'ï'"),
        "{e}"
    );
}

#[test]
fn without_a_language_model_a_list_is_an_open_vocabulary_beam_search() {
    let d = description("tests/fixtures/subword-models/citrinet/model.onnx");
    assert!(d.language_model.is_none());
    assert!(with(None).decoding_options(&d).unwrap().beam.is_none());
    let options = with(list("hello world :3")).decoding_options(&d).unwrap();
    let beam = options.beam.as_ref().unwrap();
    assert_eq!((beam.lm_weight, beam.word_bonus), (0.0, 0.0));
    assert_eq!(beam.unk_penalty, Some(0.0));
    assert!(CtcDecoder::for_model(&d, options).unwrap().is_beam_search());
}

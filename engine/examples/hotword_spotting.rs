// SPDX-License-Identifier: MPL-2.0
//! CTC word spotting for hotwords, measured against the beam search's boosting (issue 25;
//! `tools/hotwords/README.md`, *CTC word spotting*). Phoneme models (the default `hama-en`).
//!
//!     cargo run --release -p quartznet-engine --example hotword_spotting -- \
//!         MODEL.onnx LIST BEAM_LIST|- SETTINGS WAV...
//!
//! For each WAV: the model's log-probs of the whole clip and the beam search's words (with
//! `BEAM_LIST` as hotwords, `-`: none); then, for each setting, the phrases of `LIST` spotted
//! in the log-probs ([`quartznet_engine::decode::spotter`]) and kept where
//! `margin per label + LM_SCALE * LM change > THRESHOLD` (the margin: the spot's score over the
//! best path's on its frames, per label of the phrase; the LM change: the natural-log LM
//! probability of the clip's words with the phrase written over the words it covers, less
//! without), written over those words. `SETTINGS`: comma-separated
//! `BONUS:BEST_BONUS[:LM_SCALE:THRESHOLD]` (no gate without the last two). Prints one JSON line
//! per WAV and setting, `{"setting": S, "file": F, "text": T}` (setting `beam`: the beam search
//! alone); `tools/hotwords/spotting.py` runs it over a set and scores the lines.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use quartznet_engine::config::{DecoderSettings, RecognizerConfig};
use quartznet_engine::decode::hotwords::HotwordList;
use quartznet_engine::decode::spotter::{Frames, Phrase, Spot, SpotterConfig, spot};
use quartznet_engine::lm::NgramModel;
use quartznet_engine::model::{AcousticModel, LoadOptions, ModelDescription, OnnxModel, WordUnits};
use quartznet_engine::streaming::recognize_offline;

#[path = "support/wav.rs"]
mod wav;
use wav::read_wav;

type Failure = Box<dyn std::error::Error>;

/// One setting of the command line.
struct Setting {
    name: String,
    spotter: SpotterConfig,
    lm_scale: f32,
    threshold: f32,
}

fn parse_settings(text: &str) -> Result<Vec<Setting>, Failure> {
    text.split(',')
        .map(|s| {
            let v = s
                .split(':')
                .map(str::parse::<f32>)
                .collect::<Result<Vec<_>, _>>()?;
            if v.len() != 2 && v.len() != 4 {
                return Err(format!("setting {s:?}: BONUS:BEST_BONUS[:LM_SCALE:THRESHOLD]").into());
            }
            Ok(Setting {
                name: s.to_owned(),
                spotter: SpotterConfig {
                    bonus: v[0],
                    best_bonus: v[1],
                    ..SpotterConfig::default()
                },
                lm_scale: v.get(2).copied().unwrap_or(0.0),
                threshold: v.get(3).copied().unwrap_or(f32::NEG_INFINITY),
            })
        })
        .collect()
}

/// Each phrase of `list` in the model's labels, spelled by its G2P (as the lexicon's words
/// are), words joined without their boundary (the spotter lets boundaries in anyway).
fn phrase_labels(
    description: &ModelDescription,
    list: &HotwordList,
) -> Result<Vec<Phrase>, Failure> {
    let WordUnits::Phonemes { g2p: Some(g2p), .. } = &description.units else {
        return Err("hotword_spotting measures phoneme models with a G2P only".into());
    };
    let label = |t: &str| description.labels.iter().position(|l| l == t);
    let mut phrases = Vec::new();
    for hotword in list.hotwords() {
        let mut labels = Vec::new();
        for (word, tokens) in quartznet_engine::g2p::spell_cached(g2p, &hotword.words, 1)? {
            for token in tokens.iter().filter(|t| t.as_str() != " ") {
                let index = label(token)
                    .ok_or_else(|| format!("{word}: G2P token {token:?} is not a label"))?;
                labels.push(index as u32);
            }
        }
        phrases.push(Phrase { labels });
    }
    Ok(phrases)
}

/// A word of the transcript with its frames.
#[derive(Clone)]
struct Timed {
    text: String,
    start: u64,
    end: u64,
}

/// `words` with `phrase` written over the words whose middle frame lies in the spot's frames
/// (or, covering none, put before the first word after it).
fn replace(words: &[Timed], spot: &Spot, phrase: &str) -> Vec<Timed> {
    let (start, end) = (spot.start_frame as u64, spot.end_frame as u64);
    let inside = |w: &Timed| (start * 2..end * 2).contains(&(w.start + w.end));
    let new = Timed {
        text: phrase.to_owned(),
        start,
        end,
    };
    let mut out = Vec::with_capacity(words.len() + 1);
    let mut placed = false;
    for w in words {
        if inside(w) || (!placed && w.start >= end) {
            if !placed {
                out.push(new.clone());
                placed = true;
            }
            if inside(w) {
                continue;
            }
        }
        out.push(w.clone());
    }
    if !placed {
        out.push(new);
    }
    out
}

/// Natural-log LM probability of the words as one sentence (an unknown word scores as
/// `<unk>` and starts the context afresh).
fn sentence_logprob(lm: &NgramModel, words: &[Timed]) -> f32 {
    let mut context = vec![lm.sentence_start()];
    let mut total = 0.0;
    for word in words.iter().flat_map(|w| w.text.split(' ')) {
        let id = lm.word_id(word);
        total += lm.log_prob(&context, id);
        match id {
            Some(id) => context.push(id),
            None => context.clear(),
        }
    }
    total + lm.log_prob(&context, Some(lm.sentence_end()))
}

fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 {
        return Err("usage: hotword_spotting MODEL.onnx LIST BEAM_LIST|- SETTINGS WAV...".into());
    }
    let mut model = OnnxModel::load(Path::new(&args[0]), &LoadOptions { threads: 1 })?;
    let description = model.description().clone();
    let list = HotwordList::load(Path::new(&args[1]))?;
    let beam_list = match args[2].as_str() {
        "-" => None,
        path => Some(Arc::new(HotwordList::load(Path::new(path))?)),
    };
    let settings = parse_settings(&args[3])?;
    let phrases = phrase_labels(&description, &list)?;
    let texts: Vec<String> = list.hotwords().iter().map(|h| h.phrase()).collect();
    let WordUnits::Phonemes { boundary, .. } = &description.units else {
        unreachable!("phrase_labels checked the units");
    };
    let boundary = description
        .labels
        .iter()
        .position(|l| l == boundary)
        .ok_or("the boundary is not a label")? as u32;
    let options = DecoderSettings {
        hotwords: beam_list,
        ..DecoderSettings::default()
    }
    .decoding_options(&description)?;
    let frontend = RecognizerConfig::default().frontend_for(&description);
    let lm = quartznet_engine::lm::load_shared(
        description
            .language_model
            .as_ref()
            .ok_or("the model names no LM")?,
    )?;
    for wav in &args[4..] {
        let samples = read_wav(&PathBuf::from(wav), description.sample_rate)?;
        let result = recognize_offline(
            &mut model,
            &description,
            frontend.clone(),
            options.clone(),
            &samples,
        )?;
        let words: Vec<Timed> = result
            .words
            .iter()
            .map(|w| Timed {
                text: w.text.clone(),
                start: w.start_frame,
                end: w.end_frame,
            })
            .collect();
        let print = |setting: &str, words: &[Timed]| {
            let text: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
            println!(
                "{}",
                serde_json::json!({"setting": setting, "file": wav, "text": text.join(" ")})
            );
        };
        print("beam", &words);
        let frames = Frames {
            logprobs: &result.logprobs,
            vocab: model.vocab_size(),
            blank: description.vocab_size() - 1,
            skippable: &[boundary],
        };
        let base = sentence_logprob(&lm, &words);
        for setting in &settings {
            let mut out = words.clone();
            for s in spot(&frames, &phrases, &setting.spotter) {
                let margin = (s.score - s.best_score) / phrases[s.phrase].labels.len() as f32;
                let lm_change =
                    sentence_logprob(&lm, &replace(&words, &s, &texts[s.phrase])) - base;
                if margin + setting.lm_scale * lm_change > setting.threshold {
                    out = replace(&out, &s, &texts[s.phrase]);
                }
            }
            print(&setting.name, &out);
        }
    }
    Ok(())
}

// SPDX-License-Identifier: MPL-2.0
//! Hotword lists changed while the element runs (`hotwords`, `hotwords-path`).
//!
//! The setter's thread reads and checks the new list (a malformed line is a WARNING naming it,
//! and the list in use stays) and spells the words a phoneme model's lexicon lacks into the
//! G2P cache, so the streaming thread does not wait for the G2P model; it then stores the
//! value and hands the list over. The streaming thread gives it to the recogniser before it
//! recognises its next chunk (`StreamingRecognizer::set_hotwords`): the stream goes on, no
//! audio is lost or recognised twice.
//!
//! Every accepted change counts up `Settings::hotwords_version`, and each recogniser records
//! the version of the settings it was built from: a change stored before a build (at start,
//! or at the first buffer's replan) is in the build, one stored after it is handed over, and
//! the streaming thread applies a handed-over list only when it is newer than its
//! recogniser's.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use gst::glib;
use gst::subclass::prelude::*;
use quartznet_engine::config::DecoderSettings;
use quartznet_engine::decode::hotwords::HotwordList;
use quartznet_engine::lexicon::PronunciationLexicon;

use super::Decoder;
use super::imp::{CAT, QuartzNetStt};
use super::loading::Stream;
use super::messages::{hotwords_message, warning};
use super::settings::Settings;

/// A list accepted while the element runs, for the streaming thread.
#[derive(Debug)]
pub(super) struct HotwordChange {
    /// The version of the settings that hold it.
    version: u64,
    /// The decoder settings with the new list (`hotwords: None`: no list any more).
    decoding: DecoderSettings,
}

/// The latest change, until the streaming thread takes it. Its lock is a leaf: held only to
/// put a change in or take it out.
#[derive(Debug, Default)]
pub(super) struct Handover(Mutex<Option<HotwordChange>>);

impl Handover {
    fn put(&self, change: HotwordChange) {
        *self.0.lock().unwrap() = Some(change);
    }

    /// The change waiting, if it is newer than `version`.
    fn take_newer(&self, version: u64) -> Option<HotwordChange> {
        self.0
            .lock()
            .unwrap()
            .take()
            .filter(|c| c.version > version)
    }
}

/// What spells the words of a list that a phoneme model's lexicon lacks: its G2P model and
/// the lexicon its recogniser was built with.
#[derive(Clone, Debug)]
pub(super) struct Speller {
    pub(super) g2p: PathBuf,
    pub(super) lexicon: Arc<PronunciationLexicon>,
}

impl Speller {
    /// Spells the words of `list` the lexicon lacks, so that their spellings are in the G2P
    /// cache when the streaming thread adds them to its lexicon. (The recogniser's lexicon
    /// may already hold some of them, from an earlier list: those are spelled from the cache.)
    fn warm(&self, list: &HotwordList) -> quartznet_engine::Result<usize> {
        let mut missing: Vec<String> = list
            .hotwords()
            .iter()
            .flat_map(|h| h.words.iter())
            .filter(|w| !self.lexicon.contains(w) && !self.lexicon.contains(&w.to_lowercase()))
            .cloned()
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            quartznet_engine::g2p::spell_cached(&self.g2p, &missing, G2P_THREADS)?;
        }
        Ok(missing.len())
    }
}

/// ONNX Runtime threads of the G2P in the setter's thread (short words: one is as fast).
const G2P_THREADS: usize = 1;

/// The list `settings` give, checked as far as it can be without the recogniser: parsed,
/// refused by greedy decoding, its new words spelled (`speller`: the running phoneme model's).
fn checked_list(
    settings: &Settings,
    speller: Option<&Speller>,
) -> quartznet_engine::Result<Option<Arc<HotwordList>>> {
    let list = settings.hotword_list()?;
    let Some(list) = list else {
        return Ok(None);
    };
    if settings.decoder == Decoder::Greedy {
        return Err(quartznet_engine::Error::Settings(format!(
            "hotwords ({}) need the beam search: use decoder=auto or beam (greedy decoding cannot favour phrases)",
            list.source()
        )));
    }
    if let Some(speller) = speller {
        speller.warm(&list)?;
    }
    Ok(Some(list))
}

impl QuartzNetStt {
    /// Sets `hotwords` or `hotwords-path` (`name`). Before the element starts the value is
    /// only stored (start reads the list and fails on a malformed one); once started, the
    /// list is read and checked here, outside the element's locks, and then stored and
    /// handed to the streaming thread, or refused with a WARNING (the property keeps its
    /// value and the list in use stays).
    pub(super) fn change_hotwords(&self, name: &str, value: &glib::Value) {
        // One change at a time: each is read with the other property's current value.
        let _one_at_a_time = self.hotword_setter.lock().unwrap();
        let (candidate, speller) = {
            let settings = self.settings.lock().unwrap();
            let state = self.state.lock().unwrap();
            let mut candidate = settings.clone();
            candidate.set(name, value);
            (candidate, state.as_ref().and_then(|s| s.speller.clone()))
        };
        let checked = checked_list(&candidate, speller.as_ref());
        let mut settings = self.settings.lock().unwrap();
        let state = self.state.lock().unwrap();
        let list = match checked {
            Ok(list) => list,
            Err(e) if state.is_some() => {
                self.notices.message(warning(
                    &*self.obj(),
                    gst::LibraryError::Settings,
                    &format!("property '{name}' not changed: {e}; the hotword list in use stays"),
                ));
                return;
            }
            // Start reports it, as an error.
            Err(_) => {
                settings.set(name, value);
                return;
            }
        };
        settings.set(name, value);
        settings.hotwords_version += 1;
        // A recogniser being built from older settings (a start under way) takes it too.
        let live = state.as_ref().is_none_or(|s| s.live);
        self.hotword_handover.put(HotwordChange {
            version: settings.hotwords_version,
            decoding: DecoderSettings {
                hotwords: list,
                ..settings.recognizer_config(live).decoding
            },
        });
    }

    /// Gives the recogniser the list handed over since it was built or last changed, from its
    /// next chunk on; says so on the bus, or, if its model cannot use the list (a character
    /// it cannot write), warns and keeps the previous one. Called with the stream lock held.
    pub(super) fn apply_hotword_change(&self, stream: &mut Stream) {
        let Some(change) = self.hotword_handover.take_newer(stream.hotwords_version) else {
            return;
        };
        stream.hotwords_version = change.version;
        let description = stream.recognizer.description().clone();
        let list = change.decoding.hotwords.as_deref();
        let (phrases, source) = list.map_or((0, ""), |l| (l.len(), l.source()));
        match stream
            .recognizer
            .set_hotwords(&description, &change.decoding)
        {
            Ok(()) => {
                gst::info!(
                    CAT,
                    imp = self,
                    "hotwords from the next chunk on: {phrases} phrases ({source}); beam search {}",
                    stream.recognizer.uses_beam_search()
                );
                self.notices
                    .message(hotwords_message(&*self.obj(), phrases, source));
            }
            Err(e) => self.notices.message(warning(
                &*self.obj(),
                gst::LibraryError::Settings,
                &format!("hotwords not used: {e}; the hotword list in use stays"),
            )),
        }
    }
}

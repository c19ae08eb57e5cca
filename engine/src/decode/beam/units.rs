// SPDX-License-Identifier: MPL-2.0
//! How labels make words: the one place the search learns what a label does to the word
//! being spelled, which spellings exist, which words a spelling completes as and how a word
//! is written. The search itself (`super`) only moves states and scores words.
//!
//! - Characters ([`Units::Characters`]): each label is text; words are spelled through the
//!   language model's own character trie, continued by states of the decoder's own for
//!   unknown words ([`Spellings`]); the space label completes a word.
//! - Phonemes with a pronunciation lexicon ([`Units::Lexicon`]): labels are tokens; words
//!   are spelled through the lexicon's trie of label ids; the boundary label (`<wb>`)
//!   completes a word; a spelling may complete as several words (homophones); there are no
//!   unknown words.
//! - SentencePiece pieces ([`Units::Pieces`]): a piece carrying the word-start marker `▁`
//!   ([`Role::WordStart`]) completes the partial word and spells the next one from the root
//!   in the same move; the pieces' text (without `▁`) is spelled through the LM trie as
//!   characters are, so a word is the same whichever pieces spell it. A lone `▁` and the
//!   unknown piece are boundaries; control pieces are never tried; byte pieces spell
//!   characters of their own ([`byte_char`]) that no vocabulary word has, decoded to UTF-8
//!   when a word is written.

use std::sync::Arc;

use super::hypothesis::Partial;
use crate::decode::hotwords::Hotword;
use crate::decode::pieces::{PieceKind, PieceTable, WORD_START, push_bytes};
use crate::lexicon::PronunciationLexicon;
use crate::lm::{FastMap, NgramModel, TrieState, WordId};

/// A state of a spelling trie: the characters' (the LM trie continued by [`Spellings`]) or
/// the lexicon's.
pub(super) type SpellState = u32;

/// Word ids with this bit are character words outside the LM's vocabulary: the other bits
/// are the word's spelling state ([`Spellings`]). `OOV | 0` (the empty spelling, never a
/// word) is the LM context after such a word when the LM has no `<unk>`.
pub(super) const OOV: WordId = 1 << 31;

/// Look-ahead scores are kept within this and 0 (natural log), so a word the LM gives
/// probability 0 cannot make a smeared score infinite (and its difference NaN), and no
/// spelling step can raise a score (what the fast path's pruning bound relies on).
const LOOKAHEAD_FLOOR: f32 = -1000.0;

/// What a label does to the word being spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// Spells: the label is appended to the partial word.
    Token,
    /// Completes the partial word when it is a complete spelling (a space for characters,
    /// `<wb>` for phonemes, a lone `▁` for pieces); with no partial word, the silence
    /// between words.
    Boundary,
    /// Completes the partial word (if any) and spells its own text as the next word's start
    /// (a SentencePiece piece `▁..`).
    WordStart,
    /// Never tried: it writes nothing and is no boundary (a SentencePiece control piece).
    Ignored,
}

/// The look-ahead (smearing) of a spelling trie: for each state, the best unigram score
/// (natural log) of a word it may still become, within [`LOOKAHEAD_FLOOR`] and 0.
#[derive(Debug, Clone)]
pub(super) struct Lookahead {
    best: Arc<[f32]>,
    /// The score of states beyond the table (unknown spellings of characters).
    beyond: f32,
}

impl Lookahead {
    fn clamp(score: f32) -> f32 {
        if score.is_nan() {
            LOOKAHEAD_FLOOR
        } else {
            score.clamp(LOOKAHEAD_FLOOR, 0.0)
        }
    }

    #[inline]
    pub fn at(&self, state: SpellState) -> f32 {
        if state == 0 {
            // The root holds no look-ahead (as flashlight's decoder): between words a
            // hypothesis's score is its words' alone.
            return 0.0;
        }
        self.best
            .get(state as usize)
            .copied()
            .unwrap_or(self.beyond)
    }
}

/// Characters spelled through the language model's trie.
#[derive(Debug, Clone)]
pub(super) struct Characters {
    lm: Arc<NgramModel>,
    /// Whether unknown words may be spelled, and their penalty.
    unknown: bool,
    unk_penalty: f64,
    /// States below this are the vocabulary trie's.
    trie_size: TrieState,
    /// Hotword words the LM does not know, as a continuation of its trie.
    ext: Arc<Extension>,
}

/// Words a hotword list needs that the LM's vocabulary lacks: a trie that continues the LM's
/// (its states follow the LM trie's, `trie_size..trie_size + len`), so they are words of the
/// search's vocabulary (scored as the LM's `<unk>`, without the unknown-word penalty) even
/// when unknown words are off.
#[derive(Debug, Clone, Default)]
pub(super) struct Extension {
    offset: TrieState,
    edges: FastMap<(TrieState, char), TrieState>,
    /// Parent and character of state `offset + i`.
    nodes: Vec<(TrieState, char)>,
    /// States (of either trie) that complete one of these words.
    words: FastMap<TrieState, ()>,
}

impl Extension {
    /// The extension of `lm`'s trie by `words` (those it spells already are skipped).
    fn new(lm: &NgramModel, words: &[String]) -> Self {
        let offset = lm.trie_size() as TrieState;
        let mut ext = Self {
            offset,
            ..Self::default()
        };
        for word in words {
            let mut state = lm.trie_root();
            let mut buffer = [0u8; 4];
            for c in word.chars() {
                state = match ext.step(lm, state, c, &mut buffer) {
                    Some(next) => next,
                    None => {
                        let fresh = offset + ext.nodes.len() as TrieState;
                        ext.nodes.push((state, c));
                        ext.edges.insert((state, c), fresh);
                        fresh
                    }
                };
            }
            if lm.trie_word(state).is_none() {
                ext.words.insert(state, ());
            }
        }
        ext
    }

    /// The first state past both tries.
    fn end(&self) -> TrieState {
        self.offset + self.nodes.len() as TrieState
    }

    /// `state` extended by `c` in the LM trie or this one.
    #[inline]
    fn step(
        &self,
        lm: &NgramModel,
        state: TrieState,
        c: char,
        buffer: &mut [u8; 4],
    ) -> Option<TrieState> {
        if state < self.offset
            && let Some(next) = lm.trie_step(state, c.encode_utf8(buffer))
        {
            return Some(next);
        }
        self.edges.get(&(state, c)).copied()
    }

    /// The text of `state` (of either trie).
    fn text(&self, lm: &NgramModel, mut state: TrieState) -> String {
        let mut tail = Vec::new();
        while state >= self.offset {
            let Some(&(parent, c)) = self.nodes.get((state - self.offset) as usize) else {
                break;
            };
            tail.push(c);
            state = parent;
        }
        let mut text = lm.trie_text(state);
        text.extend(tail.iter().rev());
        text
    }
}

impl Characters {
    /// The LM trie's states end here.
    pub fn trie_size(&self) -> TrieState {
        self.trie_size
    }

    /// The vocabulary's states (the LM trie's, then the extension's) end here.
    pub fn vocabulary_end(&self) -> TrieState {
        self.ext.end()
    }

    /// `from` extended by `text` within the vocabulary (both tries), if it stays there.
    #[inline]
    fn in_vocabulary(&self, from: TrieState, text: &str) -> Option<TrieState> {
        if self.ext.nodes.is_empty() {
            return if from < self.trie_size {
                self.lm.trie_step(from, text)
            } else {
                None
            };
        }
        let mut buffer = [0u8; 4];
        let mut state = from;
        for c in text.chars() {
            if state >= self.ext.end() {
                return None;
            }
            state = self.ext.step(&self.lm, state, c, &mut buffer)?;
        }
        Some(state)
    }

    /// The text of vocabulary state `state`.
    fn text(&self, state: TrieState) -> String {
        self.ext.text(&self.lm, state)
    }

    /// The word vocabulary state `state` completes: the LM's, or a hotword word's
    /// (`OOV | state`).
    #[inline]
    fn word(&self, state: TrieState) -> Option<WordId> {
        self.lm.trie_word(state).or_else(|| {
            (!self.ext.words.is_empty() && self.ext.words.contains_key(&state))
                .then_some(OOV | state)
        })
    }

    /// These characters with `words` (hotword words the LM may lack) in the vocabulary.
    fn with_words(&self, words: &[String]) -> Self {
        let missing: Vec<String> = words
            .iter()
            .filter(|w| self.lm.word_id(w).is_none())
            .cloned()
            .collect();
        Self {
            ext: Arc::new(Extension::new(&self.lm, &missing)),
            ..self.clone()
        }
    }
}

/// Phoneme tokens spelled through a pronunciation lexicon.
#[derive(Debug, Clone)]
pub(super) struct Lexicon {
    lexicon: Arc<PronunciationLexicon>,
    /// Each lexicon word's id in the LM (`None`: scored as `<unk>`).
    lm_ids: Arc<[Option<WordId>]>,
    /// For each state, the word it most likely becomes (by unigram), written for a partial
    /// word that is shown before it is complete.
    likely: Arc<[Option<u32>]>,
    /// For each state, that word's unigram log-probability (the look-ahead).
    best: Arc<[f32]>,
}

/// SentencePiece pieces: their text spelled as characters through the LM's trie.
#[derive(Debug, Clone)]
pub(super) struct Pieces {
    characters: Characters,
    /// What each piece does.
    roles: Vec<Role>,
    /// What each piece spells: its text without the leading `▁`; a byte piece's
    /// [`byte_char`].
    texts: Vec<String>,
}

/// How labels make words (see the module's documentation).
#[derive(Debug, Clone)]
pub(super) enum Units {
    /// Characters with a space label.
    Characters(Characters),
    /// Phonemes with a boundary label and a pronunciation lexicon.
    Lexicon(Lexicon),
    /// SentencePiece pieces with the word-start marker `▁`.
    Pieces(Pieces),
}

/// Where a label takes a partial spelling.
#[derive(Debug, Clone, Copy)]
pub(super) enum Spelled {
    /// A state of the trie.
    Known(SpellState),
    /// Beyond the character trie, a state that [`Units::spell_unknown`] makes; leaving the
    /// trie costs `penalty`.
    Unknown { penalty: f64 },
}

impl Units {
    /// Characters spelled through `lm`'s trie; `unk_penalty`: unknown words allowed.
    pub fn characters(lm: Arc<NgramModel>, unk_penalty: Option<f32>) -> Self {
        let trie_size = lm.trie_size() as TrieState;
        Self::Characters(Characters {
            ext: Arc::new(Extension {
                offset: trie_size,
                ..Extension::default()
            }),
            lm,
            unknown: unk_penalty.is_some(),
            unk_penalty: f64::from(unk_penalty.unwrap_or(0.0)),
            trie_size,
        })
    }

    /// The pieces of `table` spelled as characters through `lm`'s trie; `unk_penalty`:
    /// unknown words allowed.
    pub fn pieces(table: &PieceTable, lm: Arc<NgramModel>, unk_penalty: Option<f32>) -> Self {
        let Self::Characters(characters) = Self::characters(lm, unk_penalty) else {
            unreachable!("characters() makes characters")
        };
        let (roles, texts) = (0..table.pieces().len())
            .map(|id| piece_role(table, id))
            .unzip();
        Self::Pieces(Pieces {
            characters,
            roles,
            texts,
        })
    }

    /// These units with `words` in the vocabulary (hotword words; a lexicon's are added to
    /// the lexicon instead, so for a lexicon these are the same units).
    pub fn with_words(&self, words: &[String]) -> Self {
        match self {
            Self::Characters(c) => Self::Characters(c.with_words(words)),
            Self::Pieces(p) => Self::Pieces(Pieces {
                characters: p.characters.with_words(words),
                ..p.clone()
            }),
            Self::Lexicon(_) => self.clone(),
        }
    }

    /// The first state past the vocabulary's (where unknown spellings' states begin).
    pub fn vocabulary_end(&self) -> SpellState {
        match self.characters_part() {
            Some(c) => c.vocabulary_end(),
            None => SpellState::MAX,
        }
    }

    /// The characters part of character and piece units.
    pub fn characters_part(&self) -> Option<&Characters> {
        match self {
            Self::Characters(c) | Self::Pieces(Pieces { characters: c, .. }) => Some(c),
            Self::Lexicon(_) => None,
        }
    }

    /// The text each label spells (a label is its own text, but for pieces).
    pub fn spelled_texts(&self, labels: &[String]) -> Vec<String> {
        match self {
            Self::Pieces(p) => p.texts.clone(),
            _ => labels.to_vec(),
        }
    }

    /// Phonemes spelled through `lexicon`, scored by `lm`; the look-ahead scores words after
    /// `<s>` with `after_start`, else as unigrams.
    pub fn lexicon(lexicon: Arc<PronunciationLexicon>, lm: &NgramModel, after_start: bool) -> Self {
        let lm_ids: Arc<[Option<WordId>]> = (0..lexicon.len() as u32)
            .map(|w| lm.word_id(lexicon.word_text(w)))
            .collect();
        let start = [lm.sentence_start()];
        let context: &[WordId] = if after_start { &start } else { &[] };
        let (best, likely) = lexicon.lookahead(|w| lm.log_prob(context, lm_ids[w as usize]));
        Self::Lexicon(Lexicon {
            lexicon,
            lm_ids,
            likely: likely.into(),
            best: best.into_iter().map(Lookahead::clamp).collect(),
        })
    }

    /// The look-ahead of every spelling state: the best score of a word the spelling may still
    /// become, as a unigram or after `<s>` (as [`Self::lexicon`] was made, for a lexicon); for
    /// characters with unknown words, at least `<unk>`'s.
    pub fn lookahead(&self, lm: &NgramModel, after_start: bool) -> Lookahead {
        match self {
            Self::Characters(c) | Self::Pieces(Pieces { characters: c, .. }) => {
                let unk = lm.log_prob(&[], None);
                let floor = if c.unknown { unk } else { f32::NEG_INFINITY };
                Lookahead {
                    best: lm
                        .trie_lookahead(after_start)
                        .iter()
                        .map(|&s| Lookahead::clamp(s.max(floor)))
                        .collect(),
                    beyond: Lookahead::clamp(unk),
                }
            }
            Self::Lexicon(x) => Lookahead {
                best: Arc::clone(&x.best),
                beyond: LOOKAHEAD_FLOOR,
            },
        }
    }

    /// What each label does.
    pub fn roles(&self, labels: &[String]) -> Vec<Role> {
        let boundary = |i: usize, label: &String| match self {
            Self::Characters(_) => label == " ",
            Self::Lexicon(x) => i == x.lexicon.boundary(),
            Self::Pieces(_) => false,
        };
        if let Self::Pieces(p) = self {
            return p.roles.clone();
        }
        labels
            .iter()
            .enumerate()
            .map(|(i, l)| {
                if boundary(i, l) {
                    Role::Boundary
                } else {
                    Role::Token
                }
            })
            .collect()
    }

    /// Whether each text (words and partial spelling) is spelled by one label sequence only
    /// and reached from one shorter text by one label, so that the search's fast path is
    /// exact: for characters, when every label is one distinct character; always for a
    /// lexicon, whose trie is over label ids. (A lexicon word with several spellings is
    /// still reached from several texts when it completes: the fast path merges those.)
    pub fn one_spelling_per_text(&self, labels: &[String]) -> bool {
        match self {
            Self::Characters(_) => single_letters(labels),
            Self::Lexicon(_) => true,
            // "▁th" + "e" and "▁the" spell one text.
            Self::Pieces(_) => false,
        }
    }

    /// Whether a completed word may be reached from several partial spellings (a lexicon
    /// word with variants), so completions must be merged by text on the fast path.
    pub fn completions_merge(&self) -> bool {
        matches!(self, Self::Lexicon(_))
    }

    /// The empty spelling.
    pub fn root(&self) -> SpellState {
        match self {
            Self::Characters(c) | Self::Pieces(Pieces { characters: c, .. }) => c.lm.trie_root(),
            Self::Lexicon(x) => x.lexicon.root(),
        }
    }

    /// Where `label` takes the spelling `from`; `None` if no word is spelled that way.
    #[inline]
    pub fn spell(
        &self,
        spellings: &Spellings,
        from: SpellState,
        label: usize,
        text: &str,
    ) -> Option<Spelled> {
        match self {
            Self::Characters(c) | Self::Pieces(Pieces { characters: c, .. }) => {
                match c.in_vocabulary(from, text) {
                    Some(state) => Some(Spelled::Known(state)),
                    // Leaving the trie pays the unknown-word penalty (once: beyond it, on).
                    None if c.unknown => Some(Spelled::Unknown {
                        penalty: if from < spellings.base {
                            c.unk_penalty
                        } else {
                            0.0
                        },
                    }),
                    None => None,
                }
            }
            Self::Lexicon(x) => x.lexicon.step(from, label).map(Spelled::Known),
        }
    }

    /// The state of `from` spelled on by `text` beyond the character trie (after
    /// [`Spelled::Unknown`]).
    pub fn spell_unknown(
        &self,
        spellings: &mut Spellings,
        from: SpellState,
        text: &str,
    ) -> SpellState {
        match self.characters_part() {
            Some(c) => spellings.step(c, from, text),
            None => unreachable!("a lexicon has no unknown words"),
        }
    }

    /// The first word the spelling `state` is, if it is a whole spelling (the character
    /// vocabulary's word, the lexicon's first): what [`Partial::word`] keeps at hand, so
    /// [`Self::completions`] need not look the trie up for the many spellings that are no
    /// word.
    #[inline]
    pub fn first_word(&self, state: SpellState) -> Option<WordId> {
        match self {
            Self::Characters(c) | Self::Pieces(Pieces { characters: c, .. }) => c.word(state),
            Self::Lexicon(x) => x.lexicon.words(state).first().copied(),
        }
    }

    /// The words `partial` completes as, when a boundary follows it: a character vocabulary
    /// word (or, with unknown words allowed, the unknown word it spells), or the lexicon's
    /// words of that spelling (several: homophones).
    #[inline]
    pub fn completions(&self, partial: &Partial) -> impl Iterator<Item = WordId> + '_ {
        let state = partial.state;
        let (one, many): (Option<WordId>, &[WordId]) = match self {
            Self::Characters(c) | Self::Pieces(Pieces { characters: c, .. }) => (
                partial
                    .word
                    .or((c.unknown && state != 0).then_some(OOV | state)),
                &[],
            ),
            Self::Lexicon(_) if partial.word.is_none() => (None, &[]),
            Self::Lexicon(x) => (None, x.lexicon.words(state)),
        };
        one.into_iter().chain(many.iter().copied())
    }

    /// The LM's id of `word` (`None`: scored as `<unk>`).
    #[inline]
    pub fn lm_word(&self, word: WordId) -> Option<WordId> {
        match self {
            Self::Characters(_) | Self::Pieces(_) => (word & OOV == 0).then_some(word),
            Self::Lexicon(x) => x.lm_ids.get(word as usize).copied().flatten(),
        }
    }

    /// What completing `word` costs beyond its LM score: the unknown-word penalty of a
    /// character spelling that did not pay it on leaving the trie (a prefix of vocabulary
    /// words that is no word itself).
    #[inline]
    pub fn completion_penalty(&self, word: WordId) -> f64 {
        match self.characters_part() {
            Some(c)
                if word & OOV != 0
                    && word & !OOV < c.vocabulary_end()
                    && c.word(word & !OOV).is_none() =>
            {
                c.unk_penalty
            }
            _ => 0.0,
        }
    }

    /// Whether a partial spelling is text of its own (characters), so the end of a stream
    /// may output it when no hypothesis ends in a whole word; a partial phoneme spelling is
    /// no word.
    pub fn writes_partial(&self) -> bool {
        self.characters_part().is_some()
    }

    /// The text of `word`.
    pub fn word_text(&self, spellings: &Spellings, word: WordId) -> String {
        match self {
            Self::Characters(c) if word & OOV == 0 => c.lm.word_text(word).to_owned(),
            Self::Characters(c) => spellings.text(c, word & !OOV),
            Self::Pieces(p) if word & OOV == 0 => p.characters.lm.word_text(word).to_owned(),
            Self::Pieces(p) => written(&spellings.text(&p.characters, word & !OOV)),
            Self::Lexicon(x) => x.lexicon.word_text(word).to_owned(),
        }
    }

    /// The text shown for a partial spelling: its characters, or the lexicon word it most
    /// likely becomes.
    pub fn partial_text(&self, spellings: &Spellings, state: SpellState) -> String {
        match self {
            Self::Characters(c) => spellings.text(c, state),
            Self::Pieces(p) => written(&spellings.text(&p.characters, state)),
            Self::Lexicon(x) => x
                .likely
                .get(state as usize)
                .copied()
                .flatten()
                .map_or_else(String::new, |w| x.lexicon.word_text(w).to_owned()),
        }
    }
}

/// The first of 256 private-use characters (plane 16) that stand for the bytes of byte pieces
/// in spellings: no vocabulary word has them, so a word with byte pieces is an unknown word,
/// and [`written`] turns them back into UTF-8.
const BYTE_CHARS: u32 = 0x10_FE00;

/// The character byte `b` spells as.
pub(super) fn byte_char(b: u8) -> char {
    char::from_u32(BYTE_CHARS + u32::from(b)).expect("plane 16 is valid")
}

/// What piece `id` of `table` does and spells.
fn piece_role(table: &PieceTable, id: usize) -> (Role, String) {
    let piece = &table.pieces()[id];
    match table.kind(id) {
        Some(PieceKind::Byte(b)) => (Role::Token, byte_char(b).to_string()),
        Some(PieceKind::Control) => (Role::Ignored, String::new()),
        // NeMo writes ` ⁇ `: a word of its own that no LM scores; the search keeps the words
        // around it apart and writes nothing for it.
        Some(PieceKind::Unknown) | None => (Role::Boundary, String::new()),
        Some(_) => match piece.strip_prefix(WORD_START) {
            Some("") => (Role::Boundary, String::new()),
            Some(rest) => (Role::WordStart, rest.to_owned()),
            None => (Role::Token, piece.clone()),
        },
    }
}

/// A spelled piece text as written: byte characters decoded (as SentencePiece decodes a run
/// of byte pieces) and a `▁` inside a piece as a space.
fn written(spelled: &str) -> String {
    let mut text = String::with_capacity(spelled.len());
    let mut bytes = Vec::new();
    for c in spelled.chars() {
        match u32::from(c).checked_sub(BYTE_CHARS) {
            Some(b) if b < 256 => bytes.push(b as u8),
            _ => {
                push_bytes(&mut text, &mut bytes);
                text.push(if c == WORD_START { ' ' } else { c });
            }
        }
    }
    push_bytes(&mut text, &mut bytes);
    text
}

impl Units {
    /// The context-graph symbols each label adds to a hypothesis's text, and the word
    /// separator's: characters (and pieces' text) for text units, label ids for a lexicon.
    pub fn hot_symbols(&self, spelled: &[String]) -> (Vec<Box<[u32]>>, u32) {
        match self {
            Self::Lexicon(x) => (
                (0..spelled.len() as u32)
                    .map(|label| Box::from([label]))
                    .collect(),
                x.lexicon.boundary() as u32,
            ),
            _ => (
                spelled
                    .iter()
                    .map(|text| text.chars().map(u32::from).collect())
                    .collect(),
                u32::from(' '),
            ),
        }
    }

    /// The spellings of each of `hotwords` in context-graph symbols (several for lexicon
    /// words with variants, at most [`MAX_HOTWORD_SPELLINGS`]), or the first the model
    /// cannot write, with why. `spelled` is each label's text.
    pub fn spell_hotwords<'h>(
        &self,
        hotwords: &'h [Hotword],
        spelled: &[String],
    ) -> std::result::Result<Vec<Vec<PhraseSpelling>>, (&'h Hotword, String)> {
        match self {
            Self::Lexicon(x) => {
                // One pass over the lexicon for every word of every phrase, as written and
                // lower-cased.
                let words: Vec<&str> = hotwords
                    .iter()
                    .flat_map(|h| h.words.iter().map(String::as_str))
                    .collect();
                let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
                let mut queries = words.clone();
                queries.extend(lower.iter().map(String::as_str));
                let found = x.lexicon.spellings_of(&queries);
                let (exact, lowered) = found.split_at(words.len());
                let mut next = 0;
                let mut out = Vec::with_capacity(hotwords.len());
                for hotword in hotwords {
                    let mut choices = Vec::with_capacity(hotword.words.len());
                    for word in &hotword.words {
                        let spellings = if exact[next].is_empty() {
                            &lowered[next]
                        } else {
                            &exact[next]
                        };
                        next += 1;
                        if spellings.is_empty() {
                            return Err((
                                hotword,
                                format!("{word:?} is not in the pronunciation lexicon"),
                            ));
                        }
                        choices.push(spellings.clone());
                    }
                    out.push(combinations(&choices, MAX_HOTWORD_SPELLINGS));
                }
                Ok(out)
            }
            _ => {
                let letters: crate::lm::FastMap<char, ()> = spelled
                    .iter()
                    .flat_map(|t| t.chars())
                    .map(|c| (c, ()))
                    .collect();
                let cased = letters.keys().any(|c| c.is_uppercase());
                let mut out = Vec::with_capacity(hotwords.len());
                for hotword in hotwords {
                    let mut words = Vec::with_capacity(hotword.words.len());
                    for word in &hotword.words {
                        let word = if cased {
                            word.clone()
                        } else {
                            word.to_lowercase()
                        };
                        if let Some(c) = word.chars().find(|c| !letters.contains_key(c)) {
                            return Err((
                                hotword,
                                format!("the model cannot write {c:?} (in {word:?})"),
                            ));
                        }
                        words.push(word.chars().map(u32::from).collect());
                    }
                    out.push(vec![words]);
                }
                Ok(out)
            }
        }
    }
}

/// A phrase in context-graph symbols: each word's symbols.
pub(super) type PhraseSpelling = Vec<Vec<u32>>;

/// The most spellings a phrase of lexicon words gets (its words' variants combined).
pub(super) const MAX_HOTWORD_SPELLINGS: usize = 16;

/// Up to `most` ways to pick one spelling for each word, in order.
fn combinations(choices: &[Vec<Vec<u32>>], most: usize) -> Vec<Vec<Vec<u32>>> {
    let mut out: Vec<Vec<Vec<u32>>> = vec![Vec::new()];
    for options in choices {
        let mut next = Vec::new();
        'fill: for prefix in &out {
            for option in options {
                if next.len() == most {
                    break 'fill;
                }
                let mut longer = prefix.clone();
                longer.push(option.clone());
                next.push(longer);
            }
        }
        out = next;
    }
    out
}

/// Whether every label is one character and no two are the same.
fn single_letters(labels: &[String]) -> bool {
    let mut letters = FastMap::default();
    for (i, label) in labels.iter().enumerate() {
        let mut chars = label.chars();
        let (Some(c), None) = (chars.next(), chars.next()) else {
            return false;
        };
        if letters.insert(c, i).is_some() {
            return false;
        }
    }
    true
}

/// Character spelling states: the vocabulary's tries (the LM's and the hotword extension's:
/// states below `base`), continued by states of the decoder's own for spellings that no
/// vocabulary word starts with. A text has exactly one
/// state: its longest prefix in the trie, then one state per further character.
#[derive(Debug, Clone, Default)]
pub(super) struct Spellings {
    base: TrieState,
    edges: FastMap<(TrieState, char), TrieState>,
    /// Parent and character of state `base + i`.
    nodes: Vec<(TrieState, char)>,
}

impl Spellings {
    /// No states beyond the trie, whose states are `0..base`.
    pub fn new(base: TrieState) -> Self {
        Self {
            base,
            ..Self::default()
        }
    }

    /// Forgets the states beyond the trie.
    pub fn clear(&mut self) {
        self.edges.clear();
        self.nodes.clear();
    }

    /// The first state beyond the trie.
    pub fn base(&self) -> TrieState {
        self.base
    }

    /// States made beyond the trie.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// `from` extended by `text`, leaving the vocabulary's tries where they end.
    pub fn step(&mut self, vocabulary: &Characters, mut state: TrieState, text: &str) -> TrieState {
        let mut buffer = [0u8; 4];
        for c in text.chars() {
            if state < self.base
                && let Some(next) = vocabulary.in_vocabulary(state, c.encode_utf8(&mut buffer))
            {
                state = next;
                continue;
            }
            let fresh = self.base + self.nodes.len() as TrieState;
            state = *self.edges.entry((state, c)).or_insert_with(|| {
                self.nodes.push((state, c));
                fresh
            });
        }
        state
    }

    /// The text of spelling `state`.
    pub fn text(&self, vocabulary: &Characters, mut state: TrieState) -> String {
        let mut tail = Vec::new();
        while state >= self.base {
            let Some(&(parent, c)) = self.nodes.get((state - self.base) as usize) else {
                break;
            };
            tail.push(c);
            state = parent;
        }
        let mut text = vocabulary.text(state);
        text.extend(tail.iter().rev());
        text
    }
}

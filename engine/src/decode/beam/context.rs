// SPDX-License-Identifier: MPL-2.0
//! The hotword context graph: an Aho-Corasick automaton over the symbols a hypothesis's text
//! is made of (characters for character and sub-word models, label ids for phoneme models),
//! with a score per state, as icefall's and sherpa-onnx's `ContextGraph` (contextual biasing).
//!
//! Every phrase is spelled `SEP word SEP word ... SEP`, `SEP` being the word separator, so it
//! matches whole words only. A hypothesis carries its state; its score includes the state's
//! *partial* score (the boost of the part of a phrase matched so far) plus the *rewards* of the
//! phrases it has matched. A step that extends a match raises the partial score; a step that
//! breaks it falls back (fail links) to the longest suffix that is still a phrase start, whose
//! lower partial score takes the boost back; completing a phrase adds its whole boost as a
//! reward that stays. At the end of a stream the partial score is taken back too, so only
//! matched phrases keep any boost.

use crate::lm::FastMap;

/// A state of the graph (0: the root, nothing matched).
pub(super) type ContextState = u32;

#[derive(Debug, Clone, Copy, Default)]
struct Node {
    /// The boost of the phrase prefix this node spells (the highest, where phrases share it).
    partial: f32,
    /// What reaching this node completes: the boosts of the phrases that end here or at one
    /// of its suffixes (Aho-Corasick's output links, summed).
    reward: f32,
    /// The longest proper suffix of this node's spelling that is a node (the root for none).
    fail: ContextState,
    /// A phrase goes on from here within a word (a child on a symbol other than the
    /// separator): the word being spelled is a hotword word's start.
    in_word: bool,
}

/// A phrase as the graph spells it, and its boost.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Spelled {
    /// Its symbols, without the separators around and between words: one entry per word.
    pub words: Vec<Vec<u32>>,
    /// What each of its words gains when the whole phrase is matched.
    pub boost_per_word: f32,
}

/// The compiled hotword list of one decoder.
#[derive(Debug, Clone)]
pub(super) struct ContextGraph {
    nodes: Vec<Node>,
    children: FastMap<u64, ContextState>,
    separator: u32,
    /// The state after a separator with nothing before it (where every hypothesis starts).
    start: ContextState,
    /// The most one step on a symbol other than the separator can raise the score.
    max_gain: f32,
}

fn key(state: ContextState, symbol: u32) -> u64 {
    (u64::from(state) << 32) | u64::from(symbol)
}

impl ContextGraph {
    /// The graph of `phrases` (each spelled by at least one symbol) with word separator
    /// `separator`.
    pub fn new(phrases: &[Spelled], separator: u32) -> Self {
        let mut graph = Self {
            nodes: vec![Node::default()],
            children: FastMap::default(),
            separator,
            start: 0,
            max_gain: 0.0,
        };
        for phrase in phrases {
            graph.insert(phrase);
        }
        graph.link();
        let inner: Vec<ContextState> = graph
            .children
            .keys()
            .filter(|&&k| k as u32 != separator)
            .map(|&k| (k >> 32) as ContextState)
            .collect();
        for state in inner {
            graph.nodes[state as usize].in_word = true;
        }
        graph.start = graph.child(0, separator).unwrap_or(0);
        graph.max_gain = graph.largest_gain();
        graph
    }

    fn child(&self, state: ContextState, symbol: u32) -> Option<ContextState> {
        self.children.get(&key(state, symbol)).copied()
    }

    /// Adds a phrase: its partial scores along the way, its boost where it ends.
    fn insert(&mut self, phrase: &Spelled) {
        let mut symbols = vec![self.separator];
        for word in &phrase.words {
            symbols.extend_from_slice(word);
            symbols.push(self.separator);
        }
        // The leading separator is where every hypothesis starts: it scores nothing; the
        // phrase's boost is spread evenly over the rest, so it grows as the phrase is spoken.
        let total = phrase.boost_per_word * phrase.words.len() as f32;
        let per_symbol = total / (symbols.len() - 1) as f32;
        let mut state = 0;
        for (i, &symbol) in symbols.iter().enumerate() {
            let fresh = self.nodes.len() as ContextState;
            state = *self.children.entry(key(state, symbol)).or_insert_with(|| {
                self.nodes.push(Node::default());
                fresh
            });
            let node = &mut self.nodes[state as usize];
            node.partial = node.partial.max(per_symbol * i as f32);
        }
        self.nodes[state as usize].reward += total;
    }

    /// Fail links and the summed rewards of suffixes, breadth first.
    fn link(&mut self) {
        let mut by_parent: Vec<Vec<(u32, ContextState)>> = vec![Vec::new(); self.nodes.len()];
        for (&k, &child) in &self.children {
            by_parent[(k >> 32) as usize].push((k as u32, child));
        }
        for list in &mut by_parent {
            list.sort_unstable();
        }
        let mut queue = std::collections::VecDeque::new();
        for &(_, child) in &by_parent[0] {
            self.nodes[child as usize].fail = 0;
            queue.push_back(child);
        }
        while let Some(state) = queue.pop_front() {
            for &(symbol, child) in &by_parent[state as usize] {
                let mut f = self.nodes[state as usize].fail;
                let fail = loop {
                    if let Some(next) = self.child(f, symbol) {
                        break next;
                    }
                    if f == 0 {
                        break 0;
                    }
                    f = self.nodes[f as usize].fail;
                };
                self.nodes[child as usize].fail = fail;
                self.nodes[child as usize].reward += self.nodes[fail as usize].reward;
                queue.push_back(child);
            }
        }
    }

    /// Where `symbol` takes `state` (Aho-Corasick's goto through the fail links).
    pub fn next(&self, mut state: ContextState, symbol: u32) -> ContextState {
        loop {
            if let Some(next) = self.child(state, symbol) {
                return next;
            }
            if state == 0 {
                return 0;
            }
            state = self.nodes[state as usize].fail;
        }
    }

    /// One step: the next state and what the score changes by.
    #[inline]
    pub fn step(&self, state: ContextState, symbol: u32) -> (ContextState, f64) {
        let next = self.next(state, symbol);
        let (from, to) = (&self.nodes[state as usize], &self.nodes[next as usize]);
        (next, f64::from(to.partial - from.partial + to.reward))
    }

    /// Steps over `symbols`: the state after them and the total change.
    #[inline]
    pub fn steps(&self, mut state: ContextState, symbols: &[u32]) -> (ContextState, f64) {
        let mut change = 0.0;
        for &symbol in symbols {
            let (next, delta) = self.step(state, symbol);
            state = next;
            change += delta;
        }
        (state, change)
    }

    /// A word separator after `state`.
    #[inline]
    pub fn separate(&self, state: ContextState) -> (ContextState, f64) {
        self.step(state, self.separator)
    }

    /// Whether `state` is inside a phrase word that goes on (not at its end).
    #[inline]
    pub fn in_word(&self, state: ContextState) -> bool {
        self.nodes[state as usize].in_word
    }

    /// The state every hypothesis starts in.
    pub fn start(&self) -> ContextState {
        self.start
    }

    /// What the end of a stream in `state` changes the score by: the partial score is taken
    /// back (a phrase not finished gains nothing).
    pub fn finish(&self, state: ContextState) -> f64 {
        -f64::from(self.nodes[state as usize].partial)
    }

    /// The most one step on a symbol other than the separator raises the score (the fast
    /// path's pruning bound).
    pub fn max_gain(&self) -> f64 {
        f64::from(self.max_gain)
    }

    /// Computes [`Self::max_gain`]: every state against every symbol phrases use (any other
    /// symbol leads to the root, which gains nothing).
    fn largest_gain(&self) -> f32 {
        let mut symbols: Vec<u32> = self
            .children
            .keys()
            .map(|&k| k as u32)
            .filter(|&s| s != self.separator)
            .collect();
        symbols.sort_unstable();
        symbols.dedup();
        let mut best = 0.0f32;
        for state in 0..self.nodes.len() as ContextState {
            for &symbol in &symbols {
                best = best.max(self.step(state, symbol).1 as f32);
            }
        }
        best
    }

    /// Number of states.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEP: u32 = ' ' as u32;

    fn spelled(phrase: &str, boost: f32) -> Spelled {
        Spelled {
            words: phrase
                .split(' ')
                .map(|w| w.chars().map(u32::from).collect())
                .collect(),
            boost_per_word: boost,
        }
    }

    /// The score of `text` (read after the start) and the state it ends in; with `end`, the
    /// stream ends there.
    fn run(graph: &ContextGraph, text: &str, end: bool) -> (f64, ContextState) {
        let symbols: Vec<u32> = text.chars().map(u32::from).collect();
        let (state, score) = graph.steps(graph.start(), &symbols);
        (score + if end { graph.finish(state) } else { 0.0 }, state)
    }

    #[test]
    fn a_whole_phrase_keeps_its_boost_a_partial_one_gives_it_back() {
        let graph = ContextGraph::new(&[spelled("new york", 2.0)], SEP);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-5;
        // Both words matched: 2 per word, whatever follows.
        assert!(close(run(&graph, "new york ", true).0, 4.0));
        assert!(close(
            run(&graph, "we love new york and more ", true).0,
            4.0
        ));
        // Partial matches grow while they last...
        let (partial, _) = run(&graph, "new yo", false);
        assert!(partial > 2.0 && partial < 4.0, "{partial}");
        // ...and are taken back when the phrase is abandoned, or at the end.
        assert!(close(run(&graph, "new yorkshire ", true).0, 0.0));
        assert!(close(run(&graph, "new yorkshire ", false).0, 0.0));
        assert!(close(run(&graph, "new yo", true).0, 0.0));
        assert!(close(run(&graph, "renew york ", false).0, 0.0));
        // Twice is twice.
        assert!(close(run(&graph, "new york new york ", true).0, 8.0));
    }

    #[test]
    fn a_phrase_that_is_a_prefix_of_another() {
        let graph = ContextGraph::new(&[spelled("new", 1.0), spelled("new york city", 3.0)], SEP);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-5;
        assert!(close(run(&graph, "new ", true).0, 1.0));
        assert!(close(run(&graph, "new york ", true).0, 1.0));
        assert!(close(run(&graph, "new york city ", true).0, 1.0 + 9.0));
        // A phrase inside a longer phrase's failed match is still found (a suffix).
        let graph = ContextGraph::new(&[spelled("york", 1.0), spelled("new york city", 3.0)], SEP);
        assert!(close(run(&graph, "new york state ", true).0, 1.0));
    }

    #[test]
    fn no_step_gains_more_than_the_bound() {
        let graph = ContextGraph::new(
            &[
                spelled("ab", 3.0),
                spelled("abc de", 1.0),
                spelled("bcd", 6.0),
            ],
            SEP,
        );
        assert!(graph.max_gain() > 0.0);
        for state in 0..graph.len() as ContextState {
            for symbol in "abcdex".chars().map(u32::from) {
                assert!(graph.step(state, symbol).1 <= graph.max_gain() + 1e-9);
            }
        }
    }
}

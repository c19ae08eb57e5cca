// SPDX-License-Identifier: MPL-2.0
use std::io::Write;

use super::*;

/// A few IPA-like tokens, a literal space token and the word boundary, as the phoneme
/// model's vocabulary has them.
fn labels() -> Vec<String> {
    ["ð", "ɛ", "ɹ", " ", "k", "æ", "t", "aɪ", "<wb>"]
        .map(String::from)
        .to_vec()
}

fn spell(tokens: &str) -> Vec<String> {
    tokens.split(' ').map(String::from).collect()
}

const GOOD: &str = "# a comment\n\
their\tð ɛ ɹ\n\
there\tð ɛ ɹ\n\
cat\tk æ t\n\
\n\
cat\tk aɪ t\r\n\
kite\tk aɪ t\n\
cat\tk æ t\n";

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn check_good(lexicon: &PronunciationLexicon) {
    assert_eq!(lexicon.len(), 4);
    // their, there, cat (2 variants), kite; the repeated line adds nothing.
    assert_eq!(lexicon.spellings(), 5);
    for word in ["their", "there", "cat", "kite"] {
        assert!(lexicon.contains(word), "{word}");
    }
    assert!(!lexicon.contains("# a comment"));
    assert_eq!(lexicon.boundary(), 8);
    let mut state = lexicon.root();
    for label in [0, 1, 2] {
        assert!(lexicon.words(state).is_empty());
        state = lexicon.step(state, label).unwrap();
    }
    let homophones: Vec<&str> = lexicon
        .words(state)
        .iter()
        .map(|&w| lexicon.word_text(w))
        .collect();
    assert_eq!(homophones, ["their", "there"]);
    assert!(
        lexicon.step(state, 8).is_none(),
        "the boundary spells nothing"
    );
}

#[test]
fn a_plain_file_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "words.lex", GOOD.as_bytes());
    check_good(&PronunciationLexicon::load(&path, &labels(), "<wb>").unwrap());
}

#[test]
fn a_gzipped_file_loads_whatever_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(GOOD.as_bytes()).unwrap();
    let path = write(dir.path(), "words.txt", &gz.finish().unwrap());
    check_good(&PronunciationLexicon::load(&path, &labels(), "<wb>").unwrap());
}

#[test]
fn bad_lines_are_errors_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let error = |text: &str| {
        let path = write(dir.path(), "bad.lex", text.as_bytes());
        let e = PronunciationLexicon::load(&path, &labels(), "<wb>").unwrap_err();
        assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
        let message = e.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        message
    };
    let e = error("cat\tk æ t\ndog\td ɔ g\n");
    assert!(e.contains("line 2: unknown token \"d\""), "{e}");
    let e = error("# fine\ncat k æ t\n");
    assert!(
        e.contains("line 2: expected `word<TAB>tokens`, found no tab"),
        "{e}"
    );
    let e = error("cat\t\n");
    assert!(e.contains("line 1: empty token"), "{e}");
    let e = error("cat\tk  æ t\n");
    assert!(e.contains("line 1: empty token"), "{e}");
    let e = error("\tk æ t\n");
    assert!(e.contains("line 1: empty word"), "{e}");
    let e = error("cat\tk <wb> t\n");
    assert!(e.contains("line 1: the word boundary"), "{e}");
    let missing =
        PronunciationLexicon::load(&dir.path().join("none.lex"), &labels(), "<wb>").unwrap_err();
    assert!(matches!(missing, Error::NotFound { .. }), "{missing:?}");
    let directory = PronunciationLexicon::load(dir.path(), &labels(), "<wb>").unwrap_err();
    assert!(directory.to_string().contains("not a regular file"));
}

#[test]
fn invalid_utf8_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "latin1.lex", b"caf\xe9\tk \xe6 t\n");
    let e = PronunciationLexicon::load(&path, &labels(), "<wb>")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 1: not valid UTF-8"), "{e}");
}

#[test]
fn the_boundary_must_be_a_label() {
    let e = PronunciationLexicon::from_entries([], &labels(), "|").unwrap_err();
    assert!(matches!(e, Error::Settings(_)), "{e:?}");
    assert!(e.to_string().contains("\"|\""), "{e}");
}

#[test]
fn entries_and_added_words() {
    let entries = [("cat", "k æ t"), ("kite", "k aɪ t")].map(|(w, s)| (w.to_string(), spell(s)));
    let mut lexicon = PronunciationLexicon::from_entries(entries, &labels(), "<wb>").unwrap();
    assert_eq!((lexicon.len(), lexicon.spellings()), (2, 2));
    lexicon.add_word("tæk", &spell("t æ k")).unwrap();
    lexicon.add_word("cat", &spell("k æ t")).unwrap();
    assert_eq!((lexicon.len(), lexicon.spellings()), (3, 3));
    assert!(lexicon.contains("tæk"));
    let e = lexicon.add_word("dog", &spell("d ɔ g")).unwrap_err();
    assert!(matches!(e, Error::Settings(_)), "{e:?}");
    assert!(e.to_string().contains("\"dog\""), "{e}");
    let e = PronunciationLexicon::from_entries([("x".to_string(), Vec::new())], &labels(), "<wb>")
        .unwrap_err();
    assert!(
        e.to_string().contains("entry 1 (\"x\"): empty spelling"),
        "{e}"
    );
}

#[test]
fn the_lookahead_is_the_best_word_below() {
    let entries = [
        ("their", "ð ɛ ɹ"),
        ("there", "ð ɛ ɹ"),
        ("cat", "k æ t"),
        ("kite", "k aɪ t"),
    ]
    .map(|(w, s)| (w.to_string(), spell(s)));
    let lexicon = PronunciationLexicon::from_entries(entries, &labels(), "<wb>").unwrap();
    let scores = [-3.0, -2.0, -1.0, -4.0];
    let (best, word) = lexicon.lookahead(|id| scores[id as usize]);
    assert_eq!(best.len(), lexicon.state_count());
    assert_eq!((best[0], word[0]), (-1.0, Some(2)));
    let k = lexicon.step(0, 4).unwrap();
    assert_eq!((best[k as usize], word[k as usize]), (-1.0, Some(2)));
    let kai = lexicon.step(k, 7).unwrap();
    assert_eq!((best[kai as usize], word[kai as usize]), (-4.0, Some(3)));
    let their = [0, 1, 2]
        .iter()
        .fold(0, |s, &l| lexicon.step(s, l).unwrap());
    assert_eq!(
        (best[their as usize], word[their as usize]),
        (-2.0, Some(1))
    );
}

#[test]
fn shared_loads_are_one_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "words.lex", GOOD.as_bytes());
    let a = load_shared(&path, &labels(), "<wb>").unwrap();
    let b = load_shared(&dir.path().join(".").join("words.lex"), &labels(), "<wb>").unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    let mut other = labels();
    other.push("x".into());
    let c = load_shared(&path, &other, "<wb>").unwrap();
    assert!(!Arc::ptr_eq(&a, &c), "other labels: another lexicon");
}

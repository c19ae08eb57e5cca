# SPDX-License-Identifier: MPL-2.0
"""English sentences for the synthetic training set, from text that Debian ships.

Sources (licences from /usr/share/doc/<pkg>/copyright, see README.md):
  gcide   dict-gcide      literary quotations inside GCIDE (1913 Webster + additions), GPL-2+
  devil   dict-devil      Ambrose Bierce, The Devil's Dictionary (1911), public domain
  kjv     bible-kjv-text  King James Version, read with `bible` (bible-kjv), text public domain
  fortune fortunes, fortunes-min   BSD fortune(6) cookie files, BSD licence

Every sentence gets two forms:
  speak  what the TTS engines read: original case and punctuation kept (prosody), but numbers and
         abbreviations already spelled out, so that what is said is exactly the transcript;
  text   the transcript in NeMo's English char-CTC alphabet: a-z, apostrophe, single spaces.
Sentences that cannot be read aloud unambiguously (symbols, acronyms, initials, markup) are dropped
rather than guessed: a wrong transcript hurts CTC training more than a missing sentence.

    python texts.py OUT.jsonl      # one {"src", "speak", "text"} per line, deduplicated, sorted
"""
import gzip
import json
import os
import re
import subprocess
import sys
import unicodedata

try:
    from num2words import num2words
except ImportError:  # without num2words sentences with digits are simply dropped
    num2words = None

MIN_WORDS, MAX_WORDS = 3, 30

# Abbreviations with a period that a reader expands; the expansion is what both the TTS and the
# transcript get. ("St." is read "saint": in this 19th-century prose it is mostly a saint's name.)
ABBREV = {
    "mr": "Mister", "mrs": "Missus", "dr": "Doctor", "st": "Saint", "jr": "Junior", "sr": "Senior",
    "prof": "Professor", "gen": "General", "col": "Colonel", "capt": "Captain", "lieut": "Lieutenant",
    "lt": "Lieutenant", "sgt": "Sergeant", "rev": "Reverend", "hon": "Honorable", "gov": "Governor",
    "messrs": "Messieurs", "vs": "versus", "etc": "et cetera", "mt": "Mount", "ft": "feet",
}
# Slurs that appear in a few old texts and fortunes: not material we want a model to learn.
BLOCK = re.compile(r"\b(nigg\w*|negro\w*|kike\w*|chink\w*|spics?|wops?|dagos?|fag\w*|coons?|dark(e)?y|"
                   r"squaws?|retard\w*|tranny|jap|japs)\b", re.I)
SPEAK_OK = re.compile(r"^[A-Za-z .,;:!?'\"()\-]+$")


def _num_words(m_text, kind):
    n = int(m_text)
    if kind == "ordinal":
        return num2words(n, to="ordinal")
    if kind == "year":
        return num2words(n, to="year")
    return num2words(n)


def spell_numbers(s):
    """Digits -> words (years as years, 1st -> first); None if a number is left we can't read."""
    if not re.search(r"\d", s):
        return s
    if num2words is None:
        return None
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", s)                     # 1,000 -> 1000
    if re.search(r"\d[.:/]\d|\d\s*%|[$\u00a3]\s*\d", s):          # decimals, times, fractions, money
        return None
    s = re.sub(r"\b(\d+)(st|nd|rd|th)\b", lambda m: _num_words(m.group(1), "ordinal"), s)
    s = re.sub(r"\b(1[1-9]\d\d)\b", lambda m: _num_words(m.group(1), "year"), s)
    s = re.sub(r"\b(\d{1,7})\b", lambda m: _num_words(m.group(1), "card"), s)
    return None if re.search(r"\d", s) else s


def normalise(raw):
    """raw sentence -> (speak, text) or None."""
    s = unicodedata.normalize("NFKC", raw)
    s = (s.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
         .replace("`", "'").replace("''", '"'))
    s = re.sub(r"\s*(--+|\u2014|\u2013)\s*", ", ", s)             # dashes are pauses
    s = re.sub(r"\s+", " ", s).strip()
    if BLOCK.search(s):
        return None
    for ab, full in ABBREV.items():
        s = re.sub(r"\b%s\." % ab, full, s, flags=re.I)
    s = spell_numbers(s)
    if s is None or not SPEAK_OK.match(s):
        return None
    if re.search(r"\b[A-Z]{2,}\b", s):                         # acronyms / shouting: read as letters?
        return None
    if re.search(r"\b[A-Za-z]\.\s*[A-Za-z]", s):                 # initials, e.g., i.e.
        return None
    if re.search(r"\b(?:[b-hj-np-zB-HJ-NP-Z])\b(?!')", s):             # lone letters (roman numerals, lists)
        return None
    # transcript: lowercase letters, apostrophes only inside words ("don't", "o'clock")
    t = s.lower().replace("-", " ")
    t = re.sub(r"[^a-z' ]", " ", t)
    t = re.sub(r"(?<![a-z])'|'(?![a-z])", " ", t)
    t = re.sub(r"\s+", " ", t).strip()
    n = len(t.split())
    if not (MIN_WORDS <= n <= MAX_WORDS):
        return None
    s = s.strip(" ,;:")
    return s, t


SPLIT = re.compile(r"(?<=[.!?])[\"')]*\s+(?=[\"'(]?[A-Z])")


def sentences(paragraph):
    p = re.sub(r"\s+", " ", paragraph).strip()
    for ab in ABBREV:  # protect "Mr. Smith" from the sentence splitter
        p = re.sub(r"\b(%s)\. " % ab, r"\1<DOT> ", p, flags=re.I)
    for s in SPLIT.split(p):
        yield s.replace("<DOT>", ".")


# ---------------------------------------------------------------- sources
def src_gcide(path="/usr/share/dictd/gcide.dict.dz"):
    """Quotations: blocks indented >= 10 spaces, ending in an author reference '--Milton.'."""
    if not os.path.exists(path):
        return
    block = []
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            ind = len(line) - len(line.lstrip(" "))
            if ind >= 10 and line.strip() and not line.strip().startswith("["):
                block.append(line.strip())
                continue
            if block:
                q = " ".join(block)
                block = []
                q = re.sub(r"\s--\s?[A-Z][^\"]*$", "", " " + q).strip()   # drop "--Shak." reference
                if "--" in q or "{" in q or "\\" in q:
                    continue
                for s in sentences(q):
                    yield s


def src_devil(path="/usr/share/dictd/devil.dict.dz"):
    """Definitions: unindented paragraphs 'WORD, n.  text'; verse (indented) is skipped."""
    if not os.path.exists(path):
        return
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        paras = f.read().split("\n\n")
    for p in paras:
        if not p or p[0] == " ":
            continue
        m = re.match(r"^[A-Z][A-Z' .,-]*, (?:n|v|adj|adv|pp|x|v\.t|v\.i|p\.p)\.\s+", p)
        if m:
            p = p[m.end():]
        for s in sentences(p):
            yield s


def src_kjv():
    """Every verse of the KJV through the `bible` program (one verse per line)."""
    try:
        out = subprocess.run(["bible", "-f", "gen1:1-rev22:21"], stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=300).stdout
    except (OSError, subprocess.TimeoutExpired):
        return
    for line in out.splitlines():
        m = re.match(r"^\w+\d+:\d+ (.*)$", line)
        if m:
            for s in sentences(m.group(1)):
                yield s


FORTUNE_DIR = "/usr/share/games/fortunes"
# cookie files that are mostly code, chat logs, ASCII art, jargon or TV quotes
FORTUNE_SKIP = {"ascii-art", "debian", "linux", "linuxcookie", "perl", "computers", "knghtbrd", "zippy",
                "startrek", "riddles", "definitions", "goedel", "men-women", "ethnic", "drugs"}


def src_fortune():
    if not os.path.isdir(FORTUNE_DIR):
        return
    for name in sorted(os.listdir(FORTUNE_DIR)):
        p = os.path.join(FORTUNE_DIR, name)
        if "." in name or name in FORTUNE_SKIP or not os.path.isfile(p):
            continue
        with open(p, encoding="utf-8", errors="replace") as f:
            cookies = f.read().split("\n%\n")
        for c in cookies:
            lines = [l for l in c.splitlines()
                     if not re.match(r"^\s*(--|~|\u2014)", l)          # attributions
                     and not re.match(r"^\s*[\w .]{1,20}:\s", l)]     # dialogue "A: ..."
            for s in sentences(" ".join(lines)):
                yield s


SOURCES = {"gcide": src_gcide, "devil": src_devil, "kjv": src_kjv, "fortune": src_fortune}


def collect():
    seen, out = set(), []
    for name, fn in SOURCES.items():
        n0 = len(out)
        for raw in fn():
            r = normalise(raw)
            if r is None or r[1] in seen:
                continue
            seen.add(r[1])
            out.append({"src": name, "speak": r[0], "text": r[1]})
        print(f"texts: {name}: {len(out) - n0} sentences", file=sys.stderr)
    out.sort(key=lambda d: (d["src"], d["text"]))  # order independent of dict/file iteration
    return out


if __name__ == "__main__":
    rows = collect()
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"texts: {len(rows)} sentences -> {sys.argv[1]}", file=sys.stderr)

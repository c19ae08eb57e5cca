# SPDX-License-Identifier: MPL-2.0
"""Writes the G2P reference fixture: hama's own Python G2P spellings of a fixed word sample.

For checking a reimplementation of hama's G2P (e.g. on the Rust side) and the lexicon. Words:

* 1,000 words drawn with `random.Random(22).sample(...)` from the LM's unigram vocabulary
  (sorted, without `<s>`, `</s>`, `<unk>`), and
* the hand-picked awkward words in `AWKWARD` below (apostrophes, digits, hyphens, accented and
  non-Latin letters, very long words, single letters, upper case given as is).

Each word is spelled by the *unmodified* `hama.G2PModel` of the wheel (PyPI hama==1.3.13,
greedy, max_output_len 32) -- unlike build_lexicon.py, no lookup caching is patched in, so the
fixture is hama's behaviour verbatim. Output, `tests/fixtures/g2p/reference.tsv`:

    # header lines (format, source LM, hama version, counts)
    word<TAB>tok|tok|tok

i.e. the lexicon's format, except that the raw G2P decoder tokens are joined by `|` (a token
may be a literal space, so spaces cannot separate them) and that every word is kept, including those build_lexicon.py would drop (empty spelling,
space token, `<unk>` ...). Lines are sorted by word. After writing, the sampled LM words are
compared with the lexicon (if it exists) and any difference is reported.

Usage (re-executes itself in the hama venv that build_lexicon.py creates):

    python3 tools/phoneme/g2p_reference.py
    python3 tools/phoneme/g2p_reference.py --lm models/quartznet-en.arpa.gz \\
        --out tests/fixtures/g2p/reference.tsv --lexicon models/hama-en.lexicon.gz
"""
import argparse
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import build_lexicon as bl  # noqa: E402  (same folder)

SEED = 22
N_SAMPLE = 1000

# Hand-picked awkward inputs, spelled exactly as written here.
AWKWARD = [
    # apostrophes
    "don't", "o'clock", "'em", "rock'n'roll", "jones'", "'", "''",
    # digits
    "1", "42", "2024", "mp3", "b2b",
    # hyphens
    "well-known", "x-ray", "-",
    # accented / non-ASCII Latin
    "café", "naïve", "résumé", "über", "straße",
    # other scripts (hama is a Korean/English G2P)
    "한국어", "東京", "😀",
    # very long words (the 45-letter dictionary word, a 75-letter LM token, 130 letters
    # past the G2P's 128-symbol input limit)
    "pneumonoultramicroscopicsilicovolcanoconiosis",
    "antidisestablishmentarianism",
    "biggreenglowinthedarkhouseuponthehillandalittleoldladyridingonahoovervacuum",
    "ab" * 65,
    # single letters
    "a", "i", "x", "z",
    # upper / mixed case, given as is
    "NASA", "Hello", "McDonald",
    # punctuation only
    ".",
]


def words_to_spell(lm):
    """[(word, source)] sorted by word: the seeded LM sample plus AWKWARD."""
    vocab = sorted(set(bl.arpa_unigrams(lm)))
    sample = random.Random(SEED).sample(vocab, N_SAMPLE)
    source = {w: "lm" for w in sample}
    for w in AWKWARD:
        source[w] = "lm+hand" if source.get(w) == "lm" else "hand"
    return sorted(source.items())


def compare_with_lexicon(path, rows):
    """Differences between the sampled words' spellings here and in the lexicon."""
    lex = {}
    with bl.open_text(path) as f:
        for line in f:
            if line.startswith("#"):
                continue
            word, toks = line.rstrip("\n").split("\t")
            lex[word] = toks.split(" ")
    diffs, missing = [], 0
    for word, source, tokens in rows:
        if "lm" not in source:
            continue
        if word not in lex:
            missing += 1  # dropped by the lexicon; must then have a drop reason
            if bl.drop_reason(tokens) is None:
                diffs.append((word, tokens, None))
        elif lex[word] != tokens:
            diffs.append((word, tokens, lex[word]))
    return diffs, missing


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lm", default=os.path.join(bl.REPO, "models", "quartznet-en.arpa.gz"))
    ap.add_argument("--out", default=os.path.join(bl.REPO, "tests", "fixtures", "g2p",
                                                  "reference.tsv"))
    ap.add_argument("--g2p-dir", default=os.path.join(bl.REPO, "models", "hama-g2p"))
    ap.add_argument("--lexicon", default=os.path.join(bl.REPO, "models", "hama-en.lexicon.gz"),
                    help="lexicon to cross-check the sampled words against (skipped if absent)")
    ap.add_argument("--hama-wheel", help="local hama-1.3.13 wheel for creating the venv")
    args = ap.parse_args()

    bl.reexec_in_hama_venv(args.hama_wheel)
    model = bl.load_g2p(args.g2p_dir)  # unpatched hama: the reference is hama verbatim

    rows = []
    for word, source in words_to_spell(args.lm):
        tokens = bl.spell(model, word)
        if "|" in tokens or any("\t" in t or "\n" in t for t in tokens):
            sys.exit(f"error: token not representable in the fixture for {word!r}: {tokens}")
        rows.append((word, source, tokens))

    n_drop = sum(1 for _, _, t in rows if bl.drop_reason(t))
    n_lm = sum(1 for _, s, _ in rows if "lm" in s)
    header = [
        "# quartznetstt-g2p-reference/1\n",
        f"# source: {N_SAMPLE} words random.Random({SEED}).sample(sorted unigrams of "
        f"{os.path.basename(args.lm)}) + {len(AWKWARD)} hand-picked; "
        f"LM sha256 {bl.sha256_file(args.lm)}\n",
        f"# g2p: hama {bl.HAMA_VERSION} (PyPI) G2PModel.predict(word), unmodified, greedy, "
        f"max_output_len {bl.MAX_OUTPUT_LEN}\n",
        f"# words: {len(rows)} ({n_lm} from the LM), spellings the lexicon would drop: "
        f"{n_drop}\n",
        "# format: word<TAB>raw G2P tokens joined by '|' (empty: no tokens)\n",
    ]
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(header)
        for word, source, tokens in rows:
            f.write(f"{word}\t{'|'.join(tokens)}\n")
    print(f"wrote {args.out}: {len(rows)} words, {n_drop} would be dropped", file=sys.stderr)

    if os.path.isfile(args.lexicon):
        diffs, missing = compare_with_lexicon(args.lexicon, rows)
        print(f"lexicon check: {n_lm} sampled words, {missing} dropped there, "
              f"{len(diffs)} differ", file=sys.stderr)
        for word, ours, theirs in diffs[:20]:
            print(f"  {word!r}: reference {ours} lexicon {theirs}", file=sys.stderr)
        if diffs:
            sys.exit(1)


if __name__ == "__main__":
    main()

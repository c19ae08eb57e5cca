# SPDX-License-Identifier: MPL-2.0
"""Builds a word n-gram language model (ARPA format) for quartznetstt's beam-search decoder.

Interpolated modified Kneser-Ney (Chen & Goodman 1998, three discounts per order), written the
way KenLM and SRILM write it: each kept n-gram holds its interpolated log10 probability, each
history its log10 back-off weight. Count cut-offs drop rare n-grams of order >= 2 (the bundled
model keeps its size reasonable that way); back-off weights are recomputed afterwards so that
every distribution still sums to one. Any ARPA file from KenLM (`lmplz`) works with the element
as well: this script exists because KenLM is not installable here.

Only the standard library is used so that it runs anywhere:

    python3 tools/lm/build_lm.py --order 3 --prune 0 1 1 TEXT.txt... -o models/lm.arpa.gz
    python3 tools/lm/build_lm.py --sentences data/sentences.jsonl \
        --exclude data/splits.json -o models/quartznet-en.arpa.gz

TEXT.txt: one sentence per line, already normalised to the model's alphabet (a-z, ', spaces).
"""
import argparse
import collections
import gzip
import io
import json
import math
import os
import re
import sys

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
WORD = re.compile(r"^[a-z']+$")


def read_sentences(args):
    """Normalised sentences as lists of words, without the excluded ones."""
    excluded = set()
    for path in args.exclude:
        with open(path, encoding="utf-8") as f:
            splits = json.load(f)
        for texts in splits.values():
            excluded.update(" ".join(t.split()) for t in texts)
    for path in args.exclude_set:
        excluded.update(" ".join(t.lower().split()) for t in evaluation_texts(path))
    lines = []
    for path in args.sentences:
        with open(path, encoding="utf-8") as f:
            lines.extend(json.loads(line)["text"] for line in f if line.strip())
    for path in args.text:
        with open(path, encoding="utf-8") as f:
            lines.extend(f)
    # An excluded sentence is also dropped where it appears inside a longer line (texts other
    # than sentences.jsonl may hold it with more words around it), found by its first words.
    by_start = collections.defaultdict(list)
    for text in excluded:
        words = tuple(text.split())
        by_start[words[:PREFIX]].append(words)
    sentences, dropped = [], 0
    for line in lines:
        words = line.lower().split()
        if not words:
            continue
        if " ".join(words) in excluded or contains_excluded(words, by_start):
            dropped += 1
            continue
        if all(WORD.match(w) for w in words):
            sentences.append(words)
    return sentences, dropped


PREFIX = 3


def evaluation_texts(path):
    """The references of an evaluation set: a NeMo manifest (JSON lines with `text`) or a folder
    holding `manifest.tsv` (file TAB reference ...), the two forms tools/evaluate.py reads."""
    if os.path.isdir(path):
        with open(os.path.join(path, "manifest.tsv"), encoding="utf-8") as f:
            return [line.split("\t")[1] for line in f if line.count("\t") >= 1]
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def contains_excluded(words, by_start):
    for i in range(len(words) - PREFIX + 1):
        for text in by_start.get(tuple(words[i:i + PREFIX]), ()):
            if tuple(words[i:i + len(text)]) == text:
                return True
    return False


def count_ngrams(sentences, order):
    counts = [collections.Counter() for _ in range(order + 1)]  # counts[n][tuple of n words]
    for words in sentences:
        padded = [BOS] + words + [EOS]
        for n in range(1, order + 1):
            for i in range(len(padded) - n + 1):
                gram = tuple(padded[i:i + n])
                if gram == (BOS,):
                    continue  # <s> is never predicted
                counts[n][gram] += 1
    return counts


def kn_counts(counts, order):
    """Raw counts for the highest order and for n-grams starting with <s>; continuation counts
    (number of distinct left extensions) for the rest, as Kneser-Ney prescribes."""
    adjusted = [collections.Counter() for _ in range(order + 1)]
    adjusted[order] = counts[order]
    for n in range(order, 1, -1):
        for gram in counts[n]:
            adjusted[n - 1][gram[1:]] += 1
    for n in range(1, order):
        for gram, c in counts[n].items():
            if gram[0] == BOS:
                adjusted[n][gram] = c
    return adjusted


def discounts(adjusted_n):
    """Modified KN discounts D1, D2, D3+ from the counts of counts."""
    coc = collections.Counter(min(c, 4) for c in adjusted_n.values())
    n1, n2, n3, n4 = (max(coc[i], 1) for i in (1, 2, 3, 4))
    y = n1 / (n1 + 2 * n2)
    d = [0.0, 1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3]
    return [min(max(x, 0.0), float(i)) for i, x in enumerate(d)]


def build(sentences, order, prune, unigrams=None, unigram_weight=0.0):
    counts = count_ngrams(sentences, order)
    adjusted = kn_counts(counts, order)
    extra = {} if unigrams is None else unigrams
    vocab = sorted({g[0] for g in adjusted[1]} | set(extra) | {UNK})
    probs = [dict() for _ in range(order + 1)]  # interpolated p(w | h), natural numbers

    # Unigrams: KN continuation distribution, interpolated with uniform so <unk> gets mass,
    # then (with --unigrams) with a word-frequency list, which also brings its words.
    d = discounts(adjusted[1])
    total = sum(adjusted[1].values())
    mass = sum(d[min(c, 3)] for c in adjusted[1].values()) / total
    weight = unigram_weight if extra else 0.0
    for w in vocab:
        c = adjusted[1].get((w,), 0)
        kn = max(c - d[min(c, 3)], 0) / total + mass / len(vocab)
        probs[1][(w,)] = (1 - weight) * kn + weight * extra.get(w, 0.0)

    for n in range(2, order + 1):
        d = discounts(adjusted[n])
        by_history = collections.defaultdict(list)
        for gram, c in adjusted[n].items():
            by_history[gram[:-1]].append((gram[-1], c))
        for history, followers in by_history.items():
            total = sum(c for _, c in followers)
            gamma = sum(d[min(c, 3)] for _, c in followers) / total
            for w, c in followers:
                if c <= prune[n - 1] and n > 1:
                    continue
                lower = lower_prob(probs, history[1:] + (w,))
                probs[n][history + (w,)] = (c - d[min(c, 3)]) / total + gamma * lower
    # Keep the n-gram prefixes that a kept higher-order n-gram needs (ARPA's invariant).
    for n in range(order, 2, -1):
        for gram in probs[n]:
            for k in (gram[:-1], gram[1:]):
                if k not in probs[n - 1]:
                    probs[n - 1][k] = lower_prob(probs, k)
    backoffs = backoff_weights(probs, order)
    return probs, backoffs


def lower_prob(probs, gram):
    """p(w | h) through the back-off chain of what has been kept so far (natural numbers)."""
    n = len(gram)
    if gram in probs[n]:
        return probs[n][gram]
    if n == 1:
        return probs[1][(UNK,)]
    return lower_prob(probs, gram[1:])  # back-off weight applied by the caller's normalisation


def backoff_weights(probs, order):
    """ARPA back-off weights so that sum_w p(w | h) = 1 for every kept history h."""
    followers = [collections.defaultdict(list) for _ in range(order + 1)]
    for n in range(2, order + 1):
        for gram in probs[n]:
            followers[n - 1][gram[:-1]].append(gram)
    backoffs = [dict() for _ in range(order + 1)]
    for n in range(1, order):
        for history, kept in followers[n].items():
            seen = sum(probs[n + 1][g] for g in kept)
            seen_lower = sum(backed_off_prob(probs, backoffs, g[1:]) for g in kept)
            numerator, denominator = max(1.0 - seen, 1e-12), max(1.0 - seen_lower, 1e-12)
            backoffs[n][history] = numerator / denominator
    return backoffs


def backed_off_prob(probs, backoffs, gram):
    n = len(gram)
    if gram in probs[n]:
        return probs[n][gram]
    if n == 1:
        return probs[1][(UNK,)]
    return backoffs[n - 1].get(gram[:-1], 1.0) * backed_off_prob(probs, backoffs, gram[1:])


def write_arpa(probs, backoffs, order, out):
    if out.endswith(".gz"):
        # mtime 0: the same text gives the same bytes, so a rebuilt model can be compared.
        raw = open(out, "wb")
        f = io.TextIOWrapper(gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0), encoding="utf-8")
    else:
        f = open(out, "w", encoding="utf-8")
    with f:
        f.write("\\data\\\n")
        for n in range(1, order + 1):
            extra = 1 if n == 1 else 0  # <s>
            f.write(f"ngram {n}={len(probs[n]) + extra}\n")
        for n in range(1, order + 1):
            f.write(f"\n\\{n}-grams:\n")
            rows = list(probs[n].items())
            if n == 1:
                rows.append(((BOS,), None))
            for gram, p in sorted(rows, key=lambda r: r[0]):
                logp = -99.0 if p is None else math.log10(p)
                line = f"{logp:.6f}\t{' '.join(gram)}"
                if gram in backoffs[n]:
                    line += f"\t{math.log10(backoffs[n][gram]):.6f}"
                f.write(line + "\n")
        f.write("\n\\end\\\n")
    if out.endswith(".gz"):
        raw.close()  # GzipFile leaves a file object it was given open


def read_unigrams(path, top):
    """{word: probability} of the `top` most frequent words of a word<TAB>frequency list."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            word, freq = line.rstrip("\n").split("\t")
            if WORD.match(word):
                rows.append((-float(freq), word))
    rows.sort()
    rows = rows[:top]
    total = -sum(f for f, _ in rows)
    return {w: -f / total for f, w in rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("text", nargs="*", help="plain text files, one normalised sentence per line")
    ap.add_argument("--sentences", nargs="*", default=[], help="JSON lines with a 'text' field")
    ap.add_argument("--exclude", nargs="*", default=[], help="JSON {split: [sentence]} to leave out")
    ap.add_argument("--exclude-set", nargs="*", default=[],
                    help="evaluation sets whose references to leave out (NeMo manifest, or folder with manifest.tsv)")
    ap.add_argument("--order", type=int, default=3)
    ap.add_argument("--prune", type=int, nargs="*", default=[0, 0, 1],
                    help="per order: drop n-grams whose (KN) count is <= this (order 1 ignored)")
    ap.add_argument("--unigrams", help="TSV word<TAB>frequency (tools/lm/lm_text.py's wordfreq_en.tsv), "
                    "interpolated into the unigram distribution; its words join the vocabulary")
    ap.add_argument("--unigram-top", type=int, default=100000, help="use this many most frequent words of it")
    ap.add_argument("--unigram-weight", type=float, default=0.1, help="its share of the unigram distribution")
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    prune = (args.prune + [args.prune[-1]] * args.order)[:args.order]
    sentences, dropped = read_sentences(args)
    if not sentences:
        sys.exit("no sentences")
    unigrams = read_unigrams(args.unigrams, args.unigram_top) if args.unigrams else None
    probs, backoffs = build(sentences, args.order, prune, unigrams, args.unigram_weight)
    write_arpa(probs, backoffs, args.order, args.out)
    sizes = ", ".join(f"{n}-grams {len(probs[n])}" for n in range(1, args.order + 1))
    print(f"{len(sentences)} sentences ({dropped} excluded), {sum(map(len, sentences))} words; {sizes} "
          f"-> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

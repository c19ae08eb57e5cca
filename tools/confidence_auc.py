# SPDX-License-Identifier: MPL-2.0
"""How well each word confidence tells right words from wrong ones: ROC AUC per measure x aggregation.

    python3 tools/confidence_auc.py [--json results.json] [SET...]

For each SET (default: eval/real-dev and data/heldout_manifest.json, the
held-out synthetic voice; a SET is what tools/evaluate.py takes) and each decoder (greedy, and
the default: beam search with the bundled model's language model), the files are transcribed
with the element's default streaming windows by quartznet-transcribe --json, asking for every
confidence measure NeMo offers (max-prob, gibbs/tsallis/renyi x lin/exp, at NeMo's default
alpha 0.33 and at alpha 1) under every aggregation (mean, min, max, prod); the CLI decodes the
model's log-probs once per combination, so the model runs once per file and decoder.

Each hypothesis word (pieces the decoder cut for timing, separator "", merged back, their
confidences aggregated again) is aligned to the reference words by a Levenshtein alignment
(tools/train/common.py's edit distance, with its backtrace here); it is "correct" when
aligned to an equal reference word. The AUROC is the probability that a correct word has a
higher confidence than an incorrect one (ties count half): 0.5 is no better than chance.

The table ranks the combinations by a score weighing the default decoder (what users get)
three times as much as greedy, each averaged over the evaluation sets. A threshold for the
engine's default combination (read from the CLI's --help) is chosen on the synthetic dev set
(--dev; maximum of TPR - FPR for flagging wrong words, never on the evaluation sets) and its
precision and recall reported on each set.

Standard library only; builds nothing: run `cargo build --release -p quartznet-transcribe`
first. The CLI outputs are cached in --cache (rerun with --fresh after rebuilding).
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from evaluate import load_set, normalise  # noqa: E402  (also puts tools/train on the path)
from common import edit_distance  # noqa: E402

MEASURES = ["max-prob:1", "max-prob:0.33"]
MEASURES += [f"{k}-{n}:0.33" for k in ("gibbs", "tsallis", "renyi") for n in ("lin", "exp")]
MEASURES += ["gibbs-lin:1", "gibbs-exp:1"]  # at alpha 1 every entropy is NeMo's Gibbs baseline
AGGREGATIONS = ["mean", "min", "max", "prod"]
COMBINATIONS = [f"{m} {a}" for m in MEASURES for a in AGGREGATIONS]
DECODERS = {"greedy": ["--decoder", "greedy"], "beam": []}  # beam: the default (auto) decoder
BEAM_WEIGHT = 0.75
DEFAULT_SETS = [os.path.join(ROOT, "eval", "real-dev"), os.path.join(ROOT, "data", "heldout_manifest.json")]
DEFAULT_DEV = os.path.join(ROOT, "data", "dev_manifest.json")


def cli_default(binary):
    """The engine's default "MEASURE AGGREGATION", as the CLI's --help states it."""
    import re

    text = subprocess.run([binary, "--help"], check=True, capture_output=True, text=True).stdout
    found = [re.search(rf"--{opt} <\w+>.*?\[default: ([^\]]+)\]", text, re.S)
             for opt in ("confidence", "confidence-aggregation")]
    return " ".join(m.group(1) for m in found) if all(found) else None


def set_name(path):
    name = os.path.basename(os.path.normpath(path))
    return name[: -len("_manifest.json")] if name.endswith("_manifest.json") else name


def run_cli(binary, files, decoder_args, jobs, threads):
    """{file: JSON entry} from quartznet-transcribe, the files split over `jobs` processes."""
    args = [binary, "--json", "--threads", str(threads), "--confidence", ",".join(MEASURES),
            "--confidence-aggregation", ",".join(AGGREGATIONS)] + decoder_args
    parts = [files[i::jobs] for i in range(jobs) if files[i::jobs]]
    procs = [subprocess.Popen(args + part, stdout=subprocess.PIPE, text=True) for part in parts]
    out = {}
    for proc in procs:
        stdout, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"{binary} failed ({proc.returncode})")
        for line in stdout.splitlines():
            entry = json.loads(line)
            out[entry["file"]] = entry
    return out


def transcripts(args, path, items, decoder):
    """The CLI's JSON per file, cached by set, decoder and combinations (--fresh after a rebuild
    that changes words or confidences)."""
    files = [f for f, _ in items]
    key = hashlib.sha1(json.dumps([path, decoder, DECODERS[decoder], COMBINATIONS, files]).encode()).hexdigest()[:16]
    cache = os.path.join(args.cache, f"{set_name(path)}.{decoder}.{key}.json")
    if os.path.exists(cache) and not args.fresh:
        with open(cache) as f:
            return json.load(f)
    out = run_cli(args.binary, files, DECODERS[decoder], args.jobs, args.threads)
    os.makedirs(args.cache, exist_ok=True)
    with open(cache, "w") as f:
        json.dump(out, f)
    return out


def merged_words(entry):
    """[(word, {combination: confidence})]: pieces cut for timing joined, as in the text."""
    words = []  # [text, {combination: [(confidence, tokens)]}]
    for w in entry["words"]:
        pieces = {k: (v, len(w["text"])) for k, v in w["confidences"].items()}
        if words and w["separator"] == "":
            words[-1][0] += w["text"]
            for k, v in pieces.items():
                words[-1][1][k].append(v)
        else:
            words.append([w["text"], {k: [v] for k, v in pieces.items()}])
    out = []
    for text, confidences in words:
        joined = {}
        for key, values in confidences.items():
            aggregation = key.split()[-1]
            cs = [c for c, _ in values]
            if aggregation == "min":
                joined[key] = min(cs)
            elif aggregation == "max":
                joined[key] = max(cs)
            elif aggregation == "prod":
                p = 1.0
                for c in cs:
                    p *= c
                joined[key] = p
            else:  # a word's mean is over its tokens (letters)
                joined[key] = sum(c * n for c, n in values) / sum(n for _, n in values)
        out.append((text, joined))
    return out


def align(ref, hyp):
    """For each hypothesis word, whether a minimum-cost Levenshtein alignment matches it to an
    equal reference word (the same cost as common.edit_distance, checked)."""
    n, m = len(ref), len(hyp)
    d = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        d[i][0] = i
    for j in range(m + 1):
        d[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]))
    assert d[n][m] == edit_distance(ref, hyp)
    correct = [False] * m
    i, j = n, m
    while i > 0 and j > 0:  # prefer matches/substitutions, then deletions, then insertions
        if d[i][j] == d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            correct[j - 1] = ref[i - 1] == hyp[j - 1]
            i, j = i - 1, j - 1
        elif d[i][j] == d[i - 1][j] + 1:
            i -= 1
        else:
            j -= 1
    return correct


def labelled(items, entries):
    """[(correct, {combination: confidence})] for every hypothesis word of the set."""
    out = []
    for path, ref in items:
        words = merged_words(entries[path])
        hyp, confs = [], []
        for text, c in words:
            for w in normalise(text):
                hyp.append(w)
                confs.append(c)
        for ok, c in zip(align(normalise(ref), hyp), confs):
            out.append((ok, c))
    return out


def auroc(scores, labels):
    """Mann-Whitney AUC: P(score of a correct word > an incorrect one's), ties half."""
    pos = sum(labels)
    neg = len(labels) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    rank_sum = 0.0
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        mid = (i + j) / 2 + 1
        rank_sum += mid * sum(labels[order[k]] for k in range(i, j + 1))
        i = j + 1
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def threshold_on(words, key):
    """The confidence below which words are flagged wrong: maximum TPR - FPR on `words`."""
    pairs = sorted((c[key], ok) for ok, c in words)
    wrong = sum(1 for _, ok in pairs if not ok)
    right = len(pairs) - wrong
    best, best_t = -1.0, 0.0
    flagged_wrong = flagged_right = 0
    for k, (c, ok) in enumerate(pairs):
        flagged_wrong += not ok
        flagged_right += ok
        if k + 1 < len(pairs) and pairs[k + 1][0] == c:
            continue
        j = flagged_wrong / max(wrong, 1) - flagged_right / max(right, 1)
        if j > best:
            nxt = pairs[k + 1][0] if k + 1 < len(pairs) else c
            best, best_t = j, (c + nxt) / 2
    return best_t


def flag_stats(words, key, threshold):
    flagged = [(ok) for ok, c in words if c[key] < threshold]
    kept = [(ok) for ok, c in words if c[key] >= threshold]
    wrong = sum(1 for ok, _ in words if not ok)
    return {
        "words": len(words),
        "wrong": wrong,
        "flagged": len(flagged),
        "flag_precision": sum(1 for ok in flagged if not ok) / max(len(flagged), 1),
        "flag_recall": sum(1 for ok in flagged if not ok) / max(wrong, 1),
        "kept_precision": sum(1 for ok in kept if ok) / max(len(kept), 1),
        "kept_recall": sum(1 for ok in kept if ok) / max(len(words) - wrong, 1),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sets", nargs="*", default=DEFAULT_SETS)
    ap.add_argument("--dev", default=DEFAULT_DEV, help="set the threshold is chosen on (never an evaluation set)")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "quartznet-transcribe"))
    ap.add_argument("--cache", default=os.path.join(ROOT, "target", "confidence_auc"))
    ap.add_argument("--fresh", action="store_true", help="ignore cached transcripts")
    ap.add_argument("--jobs", type=int, default=2, help="CLI processes at once")
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per process")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    data = {}  # (set, decoder) -> labelled words
    for path in list(args.sets) + ([args.dev] if args.dev else []):
        items = load_set(path)
        for decoder in DECODERS:
            print(f"{set_name(path)}: {len(items)} files, {decoder} ...", file=sys.stderr, flush=True)
            data[(set_name(path), decoder)] = labelled(items, transcripts(args, path, items, decoder))
    evals = [set_name(p) for p in args.sets]
    dev = set_name(args.dev) if args.dev else None

    results = []
    for key in COMBINATIONS:
        measure, aggregation = key.split()
        row = {"measure": measure, "aggregation": aggregation, "auroc": {}}
        for (name, decoder), words in data.items():
            row["auroc"].setdefault(name, {})[decoder] = auroc([c[key] for _, c in words], [ok for ok, _ in words])
        mean = lambda d: sum(row["auroc"][s][d] for s in evals) / len(evals)  # noqa: E731
        row["score"] = BEAM_WEIGHT * mean("beam") + (1 - BEAM_WEIGHT) * mean("greedy")
        results.append(row)
    results.sort(key=lambda r: -r["score"])

    cols = [(s, d) for s in evals + ([dev] if dev else []) for d in DECODERS]
    print(f"{'measure':<15} {'agg':<5} " + " ".join(f"{s[:10] + ' ' + d:>17}" for s, d in cols) + f" {'score':>6}")
    for k, r in enumerate(results):
        same = k > 0 and all(r["auroc"][s][d] == results[k - 1]["auroc"][s][d] for s, d in cols)
        print(f"{r['measure']:<15} {r['aggregation']:<5} "
              + " ".join(f"{r['auroc'][s][d]:>17.3f}" for s, d in cols) + f" {r['score']:>6.3f}"
              + ("  (= the row above: the same order of words)" if same else ""))
    print("words (wrong): " + ", ".join(
        f"{s} {d} {len(data[(s, d)])} ({sum(1 for ok, _ in data[(s, d)] if not ok)})" for s, d in cols))

    best = results[0]
    ties = [f"{r['measure']} {r['aggregation']}" for r in results if r["score"] == best["score"]]
    key = cli_default(args.binary)
    print(f"\nbest: {', '.join(ties)} (score {best['score']:.3f}); the engine's default: {key}")
    summary = {"best": ties, "default": key, "results": results,
               "weights": {"beam": BEAM_WEIGHT, "greedy": 1 - BEAM_WEIGHT}}
    if key not in COMBINATIONS:
        key = ties[0]
    if dev:
        summary["thresholds"] = {}
        for decoder in DECODERS:
            t = threshold_on(data[(dev, decoder)], key)
            stats = {s: flag_stats(data[(s, decoder)], key, t) for s in evals + [dev]}
            summary["thresholds"][decoder] = {"threshold": t, "stats": stats}
            print(f"\n{key}, {decoder}: threshold {t:.4f} (chosen on {dev}): flag words below it as likely wrong")
            for s, st in stats.items():
                print(f"  {s:<12} {st['words']:>6} words, {st['wrong']:>5} wrong; flagged {st['flagged']:>5}: "
                      f"precision {st['flag_precision']:.2f}, recall {st['flag_recall']:.2f}; "
                      f"kept words correct {st['kept_precision']:.3f}, correct words kept {st['kept_recall']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""NeMo's own word confidences on fixed log-probs: the golden values of engine/tests/confidence.rs.

    /opt/venvs/nemo3/bin/python tools/nemo_confidence.py    # writes the "3.0.0" section
    /opt/venvs/nemo24/bin/python tools/nemo_confidence.py   # writes the "2.4.1" section

Each run adds (or replaces) the section of the running NeMo version in
tests/fixtures/confidence.json. For every case below, every confidence measure NeMo offers
(ConfidenceMethodConfig: max_prob; entropy with entropy_type gibbs/tsallis/renyi and
entropy_norm lin/exp; at NeMo's default alpha 0.33, and at alpha 1.0 where all entropies become
NeMo's Gibbs baselines and max_prob is unscaled) and every aggregation (ConfidenceConfig:
mean, min, max, prod), it records NeMo's word texts and word confidences, computed by NeMo's
CTC greedy decoding (CTCDecoding.ctc_decoder_predictions_tensor with a ConfidenceConfig,
exclude_blank true, the call transcribe() makes with return_hypotheses) from the case's
log-probs ("expected"; also "nemo" where NeMo's own grouping is off, see below). Per-frame
confidences (NeMo's measure on every frame) are stored for en/espeak_fox and edge, once per
measure.

The cases:
  * tiny/<clip>: the random tiny model's log-probs of each fixture clip, as NeMo computed them
    (tests/fixtures/nemo-<version>/<clip>.logprobs.npy, this version's). Words run for seconds.
  * en/<clip>: the bundled English model's log-probs of two fixture clips, real words
    (tests/fixtures/confidence/<clip>.quartznet-en.logprobs.npy, written by
    `quartznet-transcribe --offline --decoder greedy --dump-logprobs`). LJ001-0001's greedy text
    starts with a space.
  * edge: constructed log-probs (written once, tests/fixtures/confidence/edge.logprobs.npy)
    with a leading space, double spaces, a space before an apostrophe, repeated letters with
    and without a blank between, trailing spaces.

How NeMo builds a word's confidence (nemo/collections/asr/parts/submodules/ctc_decoding.py,
compute_confidence, and parts/utils/asr_confidence_utils.py): the frame confidence is the
measure of every frame's full log-prob row; a token's confidence is the aggregation over the
frames of its run (token_repetitions; frames whose argmax is blank are excluded); a word's is
the aggregation over the word's tokens, with the words of ''.join(labels).split() (the raw
label text, split on whitespace, no punctuation stripping) and the token index advanced by
len(word) + 1 per word (_aggregate_token_confidence_chars: it assumes exactly one space token
between words and none before the first). The same aggregation function does both steps.

Two NeMo findings this script records rather than papers over:
  * NeMo 3.0.0 cannot compute word confidence for character models: CTCDecoding.
    decode_tokens_to_str(hypothesis.text[0]) joins token ids as strings (TypeError). Under 3.0
    this script takes NeMo's token confidences and calls NeMo's own
    _aggregate_token_confidence_chars with the words 2.4 would have passed (its
    decode_tokens_to_str maps ids to labels first).
  * The "one space between words" assumption fails when the text has a leading space or
    repeated spaces: every later word's confidence is then taken from the wrong tokens (one
    token too early per extra space). "nemo" holds NeMo's value as it is; "expected" the same
    aggregation over the word's own tokens (the tokens between its space tokens), also with
    NeMo's functions. They are equal whenever the assumption holds (checked here).
"""
import json
import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FIX = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(FIX, "confidence.json")
EXTRA = os.path.join(FIX, "confidence")

# (spec as the engine writes it, NeMo method_cfg)
MEASURES = [
    ("max-prob:1", dict(name="max_prob", alpha=1.0)),
    ("max-prob:0.33", dict(name="max_prob", alpha=0.33)),
]
for _kind in ("gibbs", "tsallis", "renyi"):
    for _norm in ("lin", "exp"):
        MEASURES.append(
            (f"{_kind}-{_norm}:0.33", dict(name="entropy", entropy_type=_kind, entropy_norm=_norm, alpha=0.33))
        )
for _norm in ("lin", "exp"):
    MEASURES.append((f"gibbs-{_norm}:1", dict(name="entropy", entropy_type="gibbs", entropy_norm=_norm, alpha=1.0)))
# At alpha 1 NeMo uses the Gibbs baselines for every entropy type: checked, not stored.
ALPHA_ONE_ALIASES = {f"{k}-{n}:1": f"gibbs-{n}:1" for k in ("tsallis", "renyi") for n in ("lin", "exp")}
AGGREGATIONS = ["mean", "min", "max", "prod"]


def sig(x):
    """7 significant digits (the JSON stays small; the test's tolerance is 1e-4)."""
    return float(f"{float(x):.7g}")


def quiet_nemo():
    import logging as pylogging

    from nemo.utils import logging as nemo_logging

    nemo_logging.setLevel(pylogging.ERROR)


def decoding(labels, method_cfg, aggregation, words):
    """NeMo's CTCDecoding (greedy) with a ConfidenceConfig; word confidence only if `words`."""
    from omegaconf import OmegaConf
    from nemo.collections.asr.parts.submodules.ctc_decoding import CTCDecoding, CTCDecodingConfig

    cfg = OmegaConf.structured(CTCDecodingConfig())
    cfg.strategy = "greedy"
    cfg.confidence_cfg.preserve_frame_confidence = True
    cfg.confidence_cfg.preserve_token_confidence = True
    cfg.confidence_cfg.preserve_word_confidence = words
    cfg.confidence_cfg.exclude_blank = True
    cfg.confidence_cfg.aggregation = aggregation
    for key, value in method_cfg.items():
        cfg.confidence_cfg.method_cfg[key] = value
    return CTCDecoding(cfg, vocabulary=list(labels))


def edge_logprobs(labels):
    """Constructed rows: a leading space, double spaces, " '", repeats; seeded, written once."""
    path = os.path.join(EXTRA, "edge.logprobs.npy")
    if os.path.exists(path):
        return np.load(path)
    rng = np.random.default_rng(11)
    v = len(labels) + 1
    script = "_ _ab_b__c  _d'e_ 'ff_f __ x _gh_  "
    index = {c: labels.index(c) for c in set(script) if c != "_"}
    rows = []
    for ch in script:
        for _ in range(int(rng.integers(1, 4))):
            logits = rng.normal(0.0, 1.5, v)
            target = v - 1 if ch == "_" else index[ch]
            logits[target] += rng.uniform(5.0, 9.0)
            rows.append(logits - np.logaddexp.reduce(logits))
    lp = np.asarray(rows, dtype=np.float32)[None]
    os.makedirs(EXTRA, exist_ok=True)
    np.save(path, lp)
    return lp


def collapse(argmax, blank):
    """The CTC collapse of NeMo's decode_hypothesis: (token id, first frame, end frame) runs."""
    tokens = []
    prev = blank
    for t, p in enumerate(argmax):
        if p != blank and (p != prev or prev == blank):
            tokens.append([p, t, t + 1])
        elif p != blank and p == prev:
            tokens[-1][2] = t + 1
        prev = p
    return tokens


def run_case(labels, logprobs, store_frames):
    import torch

    from nemo.collections.asr.parts.utils.asr_confidence_utils import get_confidence_aggregation_bank

    x = torch.from_numpy(np.ascontiguousarray(logprobs, dtype=np.float32))
    lengths = torch.tensor([x.shape[1]])
    blank = len(labels)
    aggregate = get_confidence_aggregation_bank()
    # The test checks these first: log-probs regenerated since are reported as such.
    case = {"frames": int(x.shape[1]), "logprob_sum": sig(np.asarray(logprobs, dtype=np.float64).sum())}
    words_out = None
    confidences = {}
    frame_conf = {}
    crash = None
    for spec, method in MEASURES:
        for agg in AGGREGATIONS:
            try:
                dec = decoding(labels, method, agg, words=True)
                hyp = dec.ctc_decoder_predictions_tensor(x, decoder_lengths=lengths, return_hypotheses=True)[0]
                nemo_words = list(hyp.word_confidence)
            except TypeError as e:  # NeMo 3.0 (see the module doc)
                crash = f"{type(e).__name__}: {e}"
                dec = decoding(labels, method, agg, words=False)
                hyp = dec.ctc_decoder_predictions_tensor(x, decoder_lengths=lengths, return_hypotheses=True)[0]
                text = "".join(labels[t[0]] for t in collapse([int(v) for v in hyp.y_sequence], blank))
                nemo_words = dec._aggregate_token_confidence_chars(text.split(), hyp.token_confidence)
            tokens = collapse([int(v) for v in hyp.y_sequence], blank)
            ids = [t[0] for t in tokens]
            # hyp.text is NeMo's final text by now: the same tokens, one space before "'" dropped.
            assert dec.decode_tokens_to_str_with_strip_punctuation(ids) == hyp.text, "token runs differ"
            token_conf = list(hyp.token_confidence)
            assert len(token_conf) == len(ids)
            # The words by their own tokens: runs of non-space tokens.
            groups, cur = [], []
            for k, tid in enumerate(ids):
                if labels[tid] == " ":
                    if cur:
                        groups.append(cur)
                    cur = []
                else:
                    cur.append(k)
            if cur:
                groups.append(cur)
            raw_text = "".join(labels[i] for i in ids)
            assert ["".join(labels[ids[k]] for k in g) for g in groups] == raw_text.split()
            expected = [aggregate[agg]([token_conf[k] for k in g]) for g in groups]
            aligned = not raw_text.startswith(" ") and "  " not in raw_text
            if aligned:
                assert all(abs(a - b) <= 1e-12 for a, b in zip(nemo_words, expected)), (spec, agg)
            if words_out is None:
                words_out = [
                    {
                        "text": "".join(labels[ids[k]] for k in g),
                        "start_frame": tokens[g[0]][1],
                        "end_frame": tokens[g[-1]][2],
                        "tokens": len(g),
                    }
                    for g in groups
                ]
                case["text"] = raw_text
                case["nemo_grouping_aligned"] = aligned
            confidences[f"{spec} {agg}"] = {"expected": [sig(c) for c in expected]}
            if not aligned:
                confidences[f"{spec} {agg}"]["nemo"] = [sig(c) for c in nemo_words]
            if store_frames and agg == "min":
                frame_conf[spec] = [sig(c) for c in hyp.frame_confidence]
    # NeMo's alpha == 1 switch: every entropy type is the Gibbs baseline.
    for alias, target in ALPHA_ONE_ALIASES.items():
        kind, rest = alias.split("-")
        norm = rest.split(":")[0]
        dec = decoding(labels, dict(name="entropy", entropy_type=kind, entropy_norm=norm, alpha=1.0), "min", False)
        hyp = dec.ctc_decoder_predictions_tensor(x, decoder_lengths=lengths, return_hypotheses=True)[0]
        text = "".join(labels[t[0]] for t in collapse([int(v) for v in hyp.y_sequence], blank))
        got = dec._aggregate_token_confidence_chars(text.split(), hyp.token_confidence)
        want = confidences[f"{target} min"].get("nemo", confidences[f"{target} min"]["expected"])
        assert all(abs(sig(a) - b) <= 1e-6 for a, b in zip(got, want)), alias
    case["words"] = words_out
    case["confidence"] = confidences
    if store_frames:
        case["frame_confidence"] = frame_conf
    return case, crash


def main():
    import nemo

    quiet_nemo()
    version = nemo.__version__
    manifest = json.load(open(os.path.join(FIX, "manifest.json")))
    vdir = next(v["dir"] for v in manifest["versions"] if v["nemo_version"] == version)
    tiny_labels = json.load(open(os.path.join(FIX, "models", "quartznet-tiny.json")))["labels"]
    en_labels = json.load(open(os.path.join(ROOT, "models", "quartznet-en.json")))["labels"]

    cases = {}
    crash = None
    for clip in manifest["clips"]:
        lp = np.load(os.path.join(FIX, vdir, f"{clip['name']}.logprobs.npy"))
        cases[f"tiny/{clip['name']}"], crash = run_case(tiny_labels, lp, store_frames=False)
        cases[f"tiny/{clip['name']}"]["logprobs"] = f"{vdir}/{clip['name']}.logprobs.npy"
    for name in ("LJ001-0001", "espeak_fox"):
        rel = f"confidence/{name}.quartznet-en.logprobs.npy"
        lp = np.load(os.path.join(FIX, rel))
        cases[f"en/{name}"], crash = run_case(en_labels, lp, store_frames=name == "espeak_fox")
        cases[f"en/{name}"]["logprobs"] = rel
    cases["edge"], crash = run_case(en_labels, edge_logprobs(en_labels), store_frames=True)
    cases["edge"]["logprobs"] = "confidence/edge.logprobs.npy"
    for name, case in cases.items():
        case["labels"] = "tiny" if name.startswith("tiny/") else "en"

    data = json.load(open(OUT)) if os.path.exists(OUT) else {}
    data["about"] = (
        "NeMo's word confidences (CTC greedy, ConfidenceConfig exclude_blank=true) for every measure "
        "and aggregation; written by tools/nemo_confidence.py, read by engine/tests/confidence.rs"
    )
    data.setdefault("versions", {})[version] = {
        "word_confidence_crash": crash,
        "cases": cases,
    }
    with open(OUT, "w") as f:
        json.dump(data, f, separators=(",", ":"), sort_keys=True)
        f.write("\n")
    print(f"NeMo {version}: {len(cases)} cases x {len(MEASURES)} measures x {len(AGGREGATIONS)} aggregations "
          f"-> {os.path.relpath(OUT, ROOT)} ({os.path.getsize(OUT) // 1024} KiB)"
          + (f"; word confidence crashed in NeMo ({crash}), computed with NeMo's own aggregation" if crash else ""))
    for name, case in cases.items():
        if not case["nemo_grouping_aligned"]:
            print(f"  {name}: text {case['text'][:40]!r}... has a leading or repeated space: NeMo's word "
                  f"confidences are taken from the wrong tokens ('nemo' != 'expected')")


if __name__ == "__main__":
    sys.exit(main())

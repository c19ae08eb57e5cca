"""Manifest reading, text normalisation and WER/CER (no dependencies beyond the standard library).

Manifests: a bundle directory holds audio files plus one or more manifests with RELATIVE paths:
  * JSON lines (``.jsonl`` / ``.json``, NeMo style) or a JSON list: each record has a path key
    (audio_filepath | audio | path | file | filename | wav | opus) and a text key
    (text | transcript | normalized_text | sentence); optional ``split`` (train / dev / val /
    anything else = an evaluation set), ``duration``, ``voice`` / ``speaker``;
  * TSV / CSV: first column the path, second the text (a header line is skipped when its first
    column names a path key), like eval/real-dev/manifest.tsv.
Relative paths are resolved against the manifest's directory, then the bundle root.
Roles come from the manifest file names (``manifest_split``): train_manifest.json -> train,
dev_manifest.json -> dev (checkpoint choice), anything else (heldout_manifest.json, test...) ->
an evaluation set that is only reported, never trained on.
"""
from __future__ import annotations

import csv
import json
import os
import re
import unicodedata
from typing import Dict, List, Optional, Sequence, Tuple

PATH_KEYS = ("audio_filepath", "audio", "path", "file", "filename", "wav", "opus", "audio_path")
TEXT_KEYS = ("text", "transcript", "normalized_text", "sentence", "label")
MANIFEST_EXT = (".jsonl", ".json", ".tsv", ".csv")

LABELS = [" "] + [chr(c) for c in range(ord("a"), ord("z") + 1)] + ["'"]


# --------------------------------------------------------------------------------------------
# text


def normalize_text(s: str, labels: Sequence[str] = LABELS) -> Tuple[str, int]:
    """Lower-case, fold accents and curly quotes, hyphens/underscores/slashes -> space, drop every
    other character not in ``labels``, collapse spaces. Returns (text, number of dropped chars)."""
    s = unicodedata.normalize("NFKD", s)
    s = "".join(c for c in s if not unicodedata.combining(c))
    s = s.lower().replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    s = re.sub(r"[-_/\u2013\u2014]", " ", s)
    allowed = set(labels)
    dropped = sum(1 for c in s if c not in allowed and not c.isspace())
    s = "".join(c if c in allowed else (" " if c.isspace() else "") for c in s)
    s = re.sub(r" +", " ", s).strip()
    return s, dropped


# --------------------------------------------------------------------------------------------
# manifests


def _first(d: dict, keys) -> Optional[str]:
    for k in keys:
        if k in d and d[k] not in (None, ""):
            return d[k]
    return None


def _records_from_file(path: str) -> List[dict]:
    ext = os.path.splitext(path)[1].lower()
    recs: List[dict] = []
    if ext in (".jsonl", ".json"):
        with open(path, encoding="utf-8") as f:
            head = f.read(1)
            f.seek(0)
            if head == "[":
                data = json.load(f)
                recs = [r for r in data if isinstance(r, dict)]
            elif head == "{" and ext == ".json":
                try:
                    data = json.load(f)
                except json.JSONDecodeError:
                    f.seek(0)
                    data = None
                if isinstance(data, dict):
                    for key in ("utterances", "items", "records", "data", "files", "clips"):
                        if isinstance(data.get(key), list):
                            recs = [r for r in data[key] if isinstance(r, dict)]
                            break
                    return _normalise_records(recs)
                recs = [json.loads(line) for line in f if line.strip()]
            else:
                recs = [json.loads(line) for line in f if line.strip()]
    else:
        delim = "\t" if ext == ".tsv" else ","
        with open(path, encoding="utf-8", newline="") as f:
            for i, row in enumerate(csv.reader(f, delimiter=delim)):
                if len(row) < 2:
                    continue
                if i == 0 and row[0].strip().lower() in PATH_KEYS:
                    continue
                recs.append({"audio_filepath": row[0].strip(), "text": row[1]})
    return _normalise_records(recs)


def _normalise_records(recs: List[dict]) -> List[dict]:
    out = []
    for r in recs:
        p, t = _first(r, PATH_KEYS), _first(r, TEXT_KEYS)
        if isinstance(p, str) and isinstance(t, str):
            rr = dict(r)
            rr["_path"], rr["_text"] = p, t
            out.append(rr)
    return out


def find_manifests(bundle: str) -> List[str]:
    """Manifest candidates (files with records that have a path and a text) in the bundle root,
    else in its immediate subdirectories."""
    def scan(d):
        out = []
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            if os.path.isfile(p) and name.lower().endswith(MANIFEST_EXT):
                try:
                    if _records_from_file(p):
                        out.append(p)
                except Exception:
                    pass
        return out

    found = scan(bundle)
    if not found:
        for name in sorted(os.listdir(bundle)):
            if os.path.isdir(os.path.join(bundle, name)):
                found += scan(os.path.join(bundle, name))
    return found


TRAIN_WORDS = {"train", "training"}
DEV_WORDS = {"dev", "val", "valid", "validation"}
EVAL_WORDS = {"test", "eval", "heldout", "held", "holdout"}


def _tokens(name: str):
    return set(re.split(r"[_.\-\s]+", name.lower()))


def manifest_split(path: str, any_train_named: bool) -> str:
    """Split of a manifest from its file name: 'train', 'dev' or 'eval:<name>' (reported, never
    trained on). When some manifest is train-named, unrecognised ones count as eval sets (never
    train on data whose role is unknown); otherwise they are training data."""
    base = os.path.splitext(os.path.basename(path))[0]
    tok = _tokens(base)
    if tok & TRAIN_WORDS:
        return "train"
    if tok & DEV_WORDS:
        return "dev"
    name = re.sub(r"[_.-]?manifest$", "", base.lower()) or base.lower()
    if tok & EVAL_WORDS or any_train_named:
        return f"eval:{name}"
    return "train"


def read_bundle(bundle: str, manifests: Optional[List[str]] = None) -> List[dict]:
    """All records of the bundle's manifests, with absolute ``_abspath``, ``_text`` and
    ``_split`` in {'train', 'dev', 'eval:<name>'} (a record's own ``split`` field wins over the
    manifest's name: train / dev|val|valid|validation / anything else = eval set)."""
    if not manifests:
        manifests = find_manifests(bundle)
    else:
        manifests = [m if os.path.isabs(m) else os.path.join(bundle, m) for m in manifests]
    if not manifests:
        raise SystemExit(f"no manifest (jsonl/json/tsv/csv with path + text) found in {bundle}")
    any_train = any(_tokens(os.path.splitext(os.path.basename(m))[0]) & TRAIN_WORDS for m in manifests)
    recs = []
    for m in manifests:
        msplit = manifest_split(m, any_train)
        for r in _records_from_file(m):
            p = r["_path"]
            cands = [p] if os.path.isabs(p) else [os.path.join(os.path.dirname(m), p), os.path.join(bundle, p)]
            ap = next((c for c in cands if os.path.exists(c)), cands[0])
            own = str(r.get("split", "") or "").lower()
            if own in TRAIN_WORDS:
                split = "train"
            elif own in DEV_WORDS:
                split = "dev"
            elif own:
                split = f"eval:{own}"
            else:
                split = msplit
            recs.append({**r, "_abspath": ap, "_manifest": os.path.basename(m), "_split": split})
    return recs


# --------------------------------------------------------------------------------------------
# edit distance / WER / CER


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance (unit costs), bit-parallel (Myers 1999 / Hyyro 2003) on Python ints.

    The one edit distance of the Python tools (tools/evaluate.py imports it); the same numbers
    as quartznet_engine::metrics::edit_distance. Elements may be any hashable items: characters
    of a string, or words of a list.
    """
    if len(a) < len(b):
        a, b = b, a
    m = len(a)
    if m == 0:
        return len(b)
    if len(b) == 0:
        return m
    peq: Dict[object, int] = {}
    for i, c in enumerate(a):
        peq[c] = peq.get(c, 0) | (1 << i)
    mask = (1 << m) - 1
    hibit = 1 << (m - 1)
    pv, mv, score = mask, 0, m
    for c in b:
        eq = peq.get(c, 0)
        xv = eq | mv
        xh = ((((eq & pv) + pv) & mask) ^ pv) | eq
        ph = mv | (~(xh | pv) & mask)
        mh = pv & xh
        if ph & hibit:
            score += 1
        elif mh & hibit:
            score -= 1
        ph = ((ph << 1) | 1) & mask
        mh = (mh << 1) & mask
        pv = mh | (~(xv | ph) & mask)
        mv = ph & xv
    return score


def error_rates(refs: Sequence[str], hyps: Sequence[str]) -> Dict[str, float]:
    """Corpus WER and CER (errors / reference words or characters, spaces included in CER)."""
    we = wn = ce = cn = 0
    for r, h in zip(refs, hyps):
        rw, hw = r.split(), h.split()
        we += edit_distance(rw, hw)
        wn += len(rw)
        rc, hc = " ".join(rw), " ".join(hw)
        ce += edit_distance(rc, hc)
        cn += len(rc)
    return {"wer": we / max(wn, 1), "cer": ce / max(cn, 1), "words": wn, "chars": cn,
            "word_errors": we, "char_errors": ce}

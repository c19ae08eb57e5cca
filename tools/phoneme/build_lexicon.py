# SPDX-License-Identifier: MPL-2.0
"""Builds the phoneme lexicon of the hama English model: every LM word spelled by hama's G2P.

Reads the unigram words of an ARPA language model (gzip or plain; `<s>`, `</s>`, `<unk>` are
skipped), spells each with hama's own grapheme-to-phoneme model -- the wheel's Python
`hama.G2PModel` (ONNX encoder + greedy `decoder_step` loop, `max_output_len` 32) -- and writes

    models/hama-en.lexicon.gz    gzip text, UTF-8, one line per word:
                                 word<TAB>tok tok tok   (G2P decoder tokens, space-separated)

Tokens are the entries of `g2p_vocab.json["decoder"]`; some are several code points (`aɪ`,
`d͡ʒ`). Spellings that are not phonemes are dropped and counted: one that contains `<unk>`,
`<pad>`, `<sos>` or `<eos>`, or that is empty. The literal space token " " is removed by
default (`--space-tokens strip`; `drop` drops such spellings instead, as the first lexicon
did): hama's G2P writes "foreign-mode" words such as `studio` as
`s ␠ t ␠ u ␠ d ␠ j ␠ o`, and the acoustic model emits such spellings without the spaces; see
README.md.) Lines starting with `#` are header lines (format version, the
source LM and its sha256, the hama version, counts). Lines are sorted by word (Unicode code
point order) and the gzip stream carries no timestamp, so the output is byte-for-byte
deterministic for the same LM.

The G2P runs in a dedicated virtual environment, `~/.cache/quartznetstt/hama-venv`, which this
script creates on first use (`/usr/bin/python3 -m venv`, then `pip install onnxruntime==1.32.0
numpy` and the hash-pinned `hama==1.3.13` wheel with `--no-deps`) and then re-executes itself
in. The G2P weights are read from `models/hama-g2p/` (tools/phoneme/fetch_hama.py), which are
byte-identical to the wheel's assets. hama's `Vocabulary` rebuilds its token dicts on every
lookup (about 80 ms a word); `speed_up_vocabulary()` caches them, which changes nothing but the
speed (about 8 ms a word; g2p_reference.py runs hama unmodified and cross-checks).

Usage:

    nice python3 tools/phoneme/build_lexicon.py                     # -> models/hama-en.lexicon.gz
    python3 tools/phoneme/build_lexicon.py --lm other.arpa --out other.lexicon.gz
    python3 tools/phoneme/build_lexicon.py --words words.txt        # spell a word list to stdout

`--words FILE` (one word per line) writes the same format, without the gzip, to stdout.
Counts (words, dropped, time) go to stderr.
"""
import argparse
import collections
import fcntl
import gzip
import io
import os
import subprocess
import sys
import time

from fetch_hama import sha256_file  # noqa: E402  (the one copy; also used as bl.sha256_file)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

FORMAT = "quartznetstt-lexicon/1"
HAMA_VERSION = "1.3.13"
HAMA_SHA256 = "753ca05c6b3c99f9c8c415776848f84ebb72823f70c11fd46dd7eff5df338dbd"
ORT_VERSION = "1.32.0"
VENV = os.path.expanduser("~/.cache/quartznetstt/hama-venv")
SYSTEM_PYTHON = "/usr/bin/python3"

ARPA_SPECIALS = {"<s>", "</s>", "<unk>"}
# G2P tokens that make a spelling unusable for the lexicon (see the module docstring).
BAD_TOKENS = {" ": "space token", "<unk>": "<unk>", "<pad>": "<pad>", "<sos>": "<sos>",
              "<eos>": "<eos>"}
MAX_OUTPUT_LEN = 32  # hama's G2PModel default: a spelling this long may be cut short


# --------------------------------------------------------------------------- environment

def in_venv(venv):
    """True when this interpreter is the one of `venv`."""
    return os.path.realpath(sys.prefix) == os.path.realpath(venv)


def ensure_venv(venv, installs, label):
    """Creates `venv` with /usr/bin/python3 and runs each `pip install` argument list of
    `installs` in it, unless a previous run completed (marker file); returns its python.

    Creation holds a lock, so concurrent runs wait for one another instead of racing.
    """
    python = os.path.join(venv, "bin", "python")
    marker = os.path.join(venv, ".quartznetstt-ready")
    if os.path.isfile(marker):
        return python
    os.makedirs(os.path.dirname(venv), exist_ok=True)
    with open(venv + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.isfile(marker):
            print(f"creating {venv} ...", file=sys.stderr)
            subprocess.run([SYSTEM_PYTHON, "-m", "venv", venv], check=True)
            pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
            for args in installs:
                subprocess.run(pip + args, check=True)
            with open(marker, "w", encoding="utf-8") as f:  # written last: venv complete
                f.write(label + "\n")
    return python


def ensure_hama_venv(venv=VENV, wheel=None):
    """The hama venv (onnxruntime, numpy, hash-pinned hama wheel installed --no-deps).

    `wheel`: a local hama-1.3.13 wheel to install instead of downloading it (its hash is still
    checked by pip's `--require-hashes`).
    """
    if os.path.isfile(os.path.join(venv, ".quartznetstt-ready")):
        return os.path.join(venv, "bin", "python")
    os.makedirs(venv, exist_ok=True)
    req = os.path.join(venv, "hama-requirements.txt")
    with open(req, "w", encoding="utf-8") as f:
        spec = os.path.abspath(wheel) if wheel else f"hama=={HAMA_VERSION}"
        f.write(f"{spec} --hash=sha256:{HAMA_SHA256}\n")
    return ensure_venv(venv, [
        [f"onnxruntime=={ORT_VERSION}", "numpy"],
        ["--no-deps", "--only-binary=:all:", "--require-hashes", "-r", req],
    ], f"onnxruntime=={ORT_VERSION} hama=={HAMA_VERSION}")


def reexec_in(venv, make_python):
    """Re-runs the calling script with `venv`'s interpreter unless already in it.

    `make_python()` creates the venv if needed and returns its python path.
    """
    if in_venv(venv):
        return
    python = make_python()
    script = os.path.abspath(sys.argv[0])
    os.execv(python, [python, script] + sys.argv[1:])


def reexec_in_hama_venv(wheel=None):
    """Re-runs the calling script in the hama venv (created on first use)."""
    reexec_in(VENV, lambda: ensure_hama_venv(wheel=wheel))


# --------------------------------------------------------------------------- inputs

def open_text(path):
    """Opens a text file, transparently gunzipping `*.gz` (by magic number, not name)."""
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def arpa_unigrams(path):
    """The words of an ARPA file's `\\1-grams:` section, in file order, without specials."""
    words = []
    with open_text(path) as f:
        section = None
        for line in f:
            line = line.strip()
            if line.startswith("\\"):
                section = line
                if line.startswith("\\2-grams:") or line == "\\end\\":
                    break
                continue
            if section == "\\1-grams:" and line:
                fields = line.split()
                if len(fields) >= 2 and fields[1] not in ARPA_SPECIALS:
                    words.append(fields[1])
    return words


def read_word_list(path):
    """One word per line; blank lines and surrounding whitespace are ignored."""
    with open_text(path) as f:
        return [w.strip() for w in f if w.strip()]


# --------------------------------------------------------------------------- G2P

def load_g2p(g2p_dir):
    """hama's G2PModel on the split encoder/decoder-step models in `g2p_dir`.

    Falls back to the wheel's bundled assets (the same bytes) when `g2p_dir` is missing.
    """
    from hama import G2PModel  # only importable inside the hama venv

    enc = os.path.join(g2p_dir, "encoder.onnx")
    dec = os.path.join(g2p_dir, "decoder_step.onnx")
    voc = os.path.join(g2p_dir, "g2p_vocab.json")
    if all(os.path.isfile(p) for p in (enc, dec, voc)):
        return G2PModel(encoder_model_path=enc, decoder_step_model_path=dec, vocab_path=voc,
                        max_output_len=MAX_OUTPUT_LEN)
    print(f"note: {g2p_dir} incomplete, using the wheel's assets", file=sys.stderr)
    return G2PModel(max_output_len=MAX_OUTPUT_LEN)


def speed_up_vocabulary():
    """Caches hama's Vocabulary lookups (pure speed; results are unchanged).

    `Vocabulary.encoder_token_to_id` / `decoder_token_to_id` are properties that rebuild a
    dict on every access -- the tokenizer does so twice per input character (19,750 entries
    each time), the decoder loop once per step. Caching the dicts per instance cuts the time
    per word several-fold; the mapping itself is identical.
    """
    import hama.vocab as hv

    def cached(name, build):
        def get(self):
            cache = self.__dict__.setdefault("_quartznetstt_cache", {})
            if name not in cache:
                cache[name] = build(self)
            return cache[name]
        return property(get)

    hv.Vocabulary.encoder_token_to_id = cached(
        "enc", lambda self: {t: i for i, t in enumerate(self.encoder)})
    hv.Vocabulary.decoder_token_to_id = cached(
        "dec", lambda self: {t: i for i, t in enumerate(self.decoder)})


def spell(model, word):
    """hama's raw token list for one word (the G2PModel.predict alignment phonemes)."""
    return [a.phoneme for a in model.predict(word).alignments]


def drop_reason(tokens):
    """Why a spelling cannot go into the lexicon, or None when it can."""
    if not tokens:
        return "empty"
    for tok in tokens:
        if tok in BAD_TOKENS:
            return BAD_TOKENS[tok]
    return None


# --------------------------------------------------------------------------- output

def spell_all(model, words, progress=True):
    """{word: tokens} for the unique words, in sorted order; prints progress to stderr."""
    unique = sorted(set(words))
    out = {}
    start = time.monotonic()
    for i, w in enumerate(unique, 1):
        out[w] = spell(model, w)
        if progress and (i % 5000 == 0 or i == len(unique)):
            el = time.monotonic() - start
            print(f"  {i}/{len(unique)} words, {el:.0f} s", file=sys.stderr)
    return out


def render(spellings, source_desc, space_tokens="drop"):
    """The lexicon text (header + sorted lines) and the counts.

    `space_tokens`: "strip" removes the space tokens and keeps the rest of the spelling (the
    command's default); "drop" drops a spelling that contains the space token.
    """
    dropped = collections.Counter()
    truncated = stripped = 0
    lines = []
    for word in sorted(spellings):
        tokens = spellings[word]
        if space_tokens == "strip" and " " in tokens:
            tokens = [t for t in tokens if t != " "]
            stripped += 1
        reason = drop_reason(tokens)
        if reason:
            dropped[reason] += 1
            continue
        if len(tokens) >= MAX_OUTPUT_LEN:
            truncated += 1
        lines.append(f"{word}\t{' '.join(tokens)}\n")
    n_dropped = sum(dropped.values())
    detail = ", ".join(f"{k}: {v}" for k, v in sorted(dropped.items())) or "none"
    header = [
        f"# {FORMAT}\n",
        f"# source: {source_desc}\n",
        f"# g2p: hama {HAMA_VERSION} (PyPI) G2PModel, greedy, max_output_len {MAX_OUTPUT_LEN}; "
        f"space tokens: {space_tokens}" + (f" ({stripped} spellings)" if stripped else "") + "\n",
        f"# words: {len(spellings)}, kept: {len(lines)}, dropped: {n_dropped} ({detail}), "
        f"kept at max_output_len: {truncated}\n",
        "# format: word<TAB>space-separated G2P decoder tokens (g2p_vocab.json decoder)\n",
    ]
    counts = {"words": len(spellings), "kept": len(lines), "dropped": n_dropped,
              "dropped_by_reason": dict(dropped), "at_max_output_len": truncated}
    return "".join(header + lines), counts


def write_gzip(path, text):
    """Writes `text` gzip-compressed with no file name and mtime 0 (reproducible bytes)."""
    tmp = path + ".part"
    with open(tmp, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
            gz.write(text.encode("utf-8"))
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lm", default=os.path.join(REPO, "models", "quartznet-en.arpa.gz"),
                    help="ARPA LM whose unigrams are spelled (gzip or plain)")
    ap.add_argument("--out", default=os.path.join(REPO, "models", "hama-en.lexicon.gz"),
                    help="output lexicon (gzip)")
    ap.add_argument("--words", help="spell the words of this file (one per line) to stdout")
    ap.add_argument("--g2p-dir", default=os.path.join(REPO, "models", "hama-g2p"),
                    help="folder with encoder.onnx, decoder_step.onnx, g2p_vocab.json")
    ap.add_argument("--hama-wheel", help="local hama-1.3.13 wheel for creating the venv")
    ap.add_argument("--space-tokens", choices=["drop", "strip"], default="strip",
                    help="spellings with the space token: strip the space tokens and keep the "
                         "rest (default: the acoustic model emits such words without them) "
                         "or drop them")
    args = ap.parse_args()

    reexec_in_hama_venv(args.hama_wheel)
    speed_up_vocabulary()
    model = load_g2p(args.g2p_dir)

    start = time.monotonic()
    if args.words:
        words = read_word_list(args.words)
        source = f"word list {os.path.basename(args.words)}"
    else:
        words = arpa_unigrams(args.lm)
        source = f"{os.path.basename(args.lm)} unigrams (sha256 {sha256_file(args.lm)})"
    spellings = spell_all(model, words, progress=not args.words)
    text, counts = render(spellings, source, args.space_tokens)
    if args.words:
        sys.stdout.write(text)
    else:
        write_gzip(args.out, text)
    elapsed = time.monotonic() - start
    print(f"words {counts['words']}, kept {counts['kept']}, dropped {counts['dropped']} "
          f"{counts['dropped_by_reason']}, at max_output_len {counts['at_max_output_len']}, "
          f"{elapsed:.1f} s" + ("" if args.words else f" -> {args.out}"), file=sys.stderr)


if __name__ == "__main__":
    main()

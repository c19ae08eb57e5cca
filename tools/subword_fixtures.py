#!/usr/bin/env python3
"""NeMo 3.0 reference fixtures for sub-word (SentencePiece) CTC decoding (issue 24, decoding half).

For each of three small SentencePiece tokenizers (trained here, deterministically, on
tools/subword_text.txt with NeMo's own `create_spt_model`) this builds a real (tiny, untrained)
`EncDecCTCModelBPE`, so the tokenizer wrapper and the `CTCBPEDecoding` object are made by NeMo's
own model code, sets decoding up the way `transcribe(timestamps=True)` does, feeds it log-prob
matrices whose per-frame argmax is a chosen label sequence, and records what NeMo returns: text,
char (token) offsets, word offsets, segment offsets.

Writes tests/fixtures/subword/<name>/{tokenizer.model,vocab.txt,pieces.json,cases.json}.
docs/SUBWORD.md explains the rules these fixtures pin down.

    /opt/venvs/nemo3/bin/python tools/subword_fixtures.py            # all tokenizers
    /opt/venvs/nemo3/bin/python tools/subword_fixtures.py --check    # regenerate in a temp dir, compare

Every random draw comes from a seeded numpy Generator; SentencePiece training is seeded with
`sentencepiece.set_random_generator_seed`.
"""

import argparse
import contextlib
import json
import logging as pylogging
import os
import re
import shutil
import sys
import tempfile
import unicodedata

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TEXT = os.path.join(HERE, "subword_text.txt")
OUT = os.path.join(ROOT, "tests", "fixtures", "subword")

SEED = 2024
N_RANDOM = 28  # random label sequences per tokenizer
N_SENTENCES = 6  # label sequences made from real tokenisations of lines of subword_text.txt

# name, normalisation of the training text, create_spt_model arguments
TOKENIZERS = [
    {
        # Like NeMo's classic English ASR tokenizers: lower case, letters and apostrophe only.
        "name": "unigram128",
        "normalise": "lower_letters",
        "spt": dict(vocab_size=128, tokenizer_type="unigram", character_coverage=1.0),
        "keep_charsmap": True,
    },
    {
        # BPE with byte fallback. 256 of the ids are the byte pieces <0x00>..<0xFF>, so the vocabulary
        # must be well above 256; character_coverage < 1 leaves the rare characters (é, ü, 東, 京, ...)
        # out of the character set, so they can only be written with byte pieces.
        "name": "bpe384_bytes",
        "normalise": "lower_keep_unicode",
        "spt": dict(vocab_size=384, tokenizer_type="bpe", character_coverage=0.995, byte_fallback=True),
    },
    {
        # Like NeMo's "_pc" models: capitals and punctuation kept. remove_extra_whitespaces=True is
        # SentencePiece's own default (and that of tokenizers made before NeMo added the option).
        "name": "unigram_pc",
        "normalise": "none",
        "spt": dict(vocab_size=192, tokenizer_type="unigram", character_coverage=1.0, remove_extra_whitespaces=True),
    },
]


def normalise(text, how):
    lines = []
    for line in text.splitlines():
        if how == "lower_letters":
            line = line.lower()
            line = re.sub(r"[^a-z' ]+", " ", line)
        elif how == "lower_keep_unicode":
            line = line.lower()
            line = "".join(c if (c.isalnum() or c in "' ") else " " for c in line)
        elif how != "none":
            raise ValueError(how)
        line = re.sub(r" +", " ", line).strip()
        if line:
            lines.append(line)
    return lines


@contextlib.contextmanager
def quiet():
    """Silence SentencePiece's and NeMo's chatter on stdout/stderr (fd level: spm logs from C++)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def train_tokenizer(spec, work):
    import sentencepiece
    from nemo.collections.common.tokenizers.sentencepiece_tokenizer import create_spt_model

    lines = normalise(open(TEXT, encoding="utf-8").read(), spec["normalise"])
    data = os.path.join(work, spec["name"] + ".txt")
    with open(data, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    out_dir = os.path.join(work, spec["name"])
    sentencepiece.set_random_generator_seed(SEED)
    with quiet():
        create_spt_model(data, sample_size=-1, do_lower_case=False, output_dir=out_dir, **spec["spt"])
    # Make the saved model independent of this run's temp paths, and small: the trainer spec records
    # the absolute input path and model prefix; the normaliser's precompiled charsmap (nmt_nfkc,
    # ~240 KB) is only used for encoding, so all but one tokenizer drop it (-> identity).
    path = os.path.join(out_dir, "tokenizer.model")
    m = model_proto(path)
    del m.trainer_spec.input[:]
    m.trainer_spec.input.append(spec["name"] + ".txt")
    m.trainer_spec.model_prefix = "tokenizer"
    if not spec.get("keep_charsmap"):
        m.normalizer_spec.name = "identity"
        m.normalizer_spec.precompiled_charsmap = b""
    with open(path, "wb") as f:
        f.write(m.SerializeToString(deterministic=True))
    return out_dir, lines


def build_model(tok_dir):
    """A real EncDecCTCModelBPE (tiny random encoder): NeMo makes the tokenizer and the decoding."""
    import torch
    from omegaconf import OmegaConf
    from nemo.collections.asr.models import EncDecCTCModelBPE

    torch.manual_seed(SEED)
    cfg = OmegaConf.create(
        {
            "sample_rate": 16000,
            "tokenizer": {"dir": tok_dir, "type": "bpe"},
            "preprocessor": {
                "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
                "sample_rate": 16000,
                "features": 64,
                "window_size": 0.025,
                "window_stride": 0.01,
            },
            "encoder": {
                "_target_": "nemo.collections.asr.modules.ConvASREncoder",
                "feat_in": 64,
                "activation": "relu",
                "conv_mask": True,
                "jasper": [
                    {
                        "filters": 16,
                        "repeat": 1,
                        "kernel": [3],
                        "stride": [1],
                        "dilation": [1],
                        "dropout": 0.0,
                        "residual": False,
                        "separable": False,
                    }
                ],
            },
            "decoder": {
                "_target_": "nemo.collections.asr.modules.ConvASRDecoder",
                "feat_in": 16,
                "num_classes": -1,
                "vocabulary": [],
            },
        }
    )
    with quiet():
        model = EncDecCTCModelBPE(cfg=cfg)
        model.eval()
        # What EncDecCTCModel.transcribe(timestamps=True) does before decoding.
        from omegaconf import open_dict

        with open_dict(model.cfg.decoding):
            model.cfg.decoding.compute_timestamps = True
        model.change_decoding_strategy(model.cfg.decoding, verbose=False)
    return model


def piece_type(sp, i):
    if sp.IsUnknown(i):
        return "unknown"
    if sp.IsControl(i):
        return "control"
    if sp.IsByte(i):
        return "byte"
    if sp.IsUnused(i):
        return "unused"
    # sentencepiece has no IsUserDefined in every version: read the model proto below instead.
    return "normal"


def model_proto(path):
    from sentencepiece import sentencepiece_model_pb2 as pb

    m = pb.ModelProto()
    with open(path, "rb") as f:
        m.ParseFromString(f.read())
    return m


PB_TYPES = {1: "normal", 2: "unknown", 3: "control", 4: "user_defined", 5: "unused", 6: "byte"}


def pieces_table(model, tok_path):
    sp = model.tokenizer.tokenizer
    proto = model_proto(tok_path)
    n = model.tokenizer.original_vocab_size
    pieces = []
    for i in range(n):
        t = piece_type(sp, i)
        pt = PB_TYPES[proto.pieces[i].type]
        assert t == pt or (t == "normal" and pt == "user_defined"), (i, t, pt)
        assert sp.IdToPiece(i) == proto.pieces[i].piece
        pieces.append({"id": i, "piece": sp.IdToPiece(i), "type": pt, "score": round(float(sp.GetScore(i)), 6)})
    ns = proto.normalizer_spec
    ts = proto.trainer_spec
    return {
        "vocab_size": n,
        "blank_id": int(model.decoding.blank_id),
        "num_classes_with_blank": int(model.decoder.num_classes_with_blank),
        "model_type": {1: "unigram", 2: "bpe", 3: "word", 4: "char"}[ts.model_type],
        "byte_fallback": bool(ts.byte_fallback),
        "unk_id": int(sp.unk_id()),
        "bos_id": int(sp.bos_id()),
        "eos_id": int(sp.eos_id()),
        "pad_id": int(sp.pad_id()),
        "unk_surface": ts.unk_surface,
        "normalizer": {
            "name": ns.name,
            "add_dummy_prefix": bool(ns.add_dummy_prefix),
            "remove_extra_whitespaces": bool(ns.remove_extra_whitespaces),
            "escape_whitespaces": bool(ns.escape_whitespaces),
        },
        "treat_whitespace_as_suffix": bool(ts.treat_whitespace_as_suffix),
        # What NeMo derives from the vocabulary (CTCBPEDecoding.__init__, tokenizer_utils.py).
        "nemo_supported_punctuation": sorted(model.decoding.supported_punctuation or []),
        "nemo_tokenizer_type": model.decoding.tokenizer_type,
        "pieces": pieces,
    }


# ---------------------------------------------------------------------------------------------
# label sequences

NON_ASCII = ["é", "ü", "ï", "ñ", "ç", "ã", "東", "京", "€", "😀"]


def is_punct_piece(p):
    s = p.lstrip("▁")
    return bool(s) and all(unicodedata.category(c).startswith("P") for c in s)


def categories(table):
    cats = {"word": [], "space": [], "mid": [], "punct": [], "unk": [], "byte": {}, "control": [], "user": []}
    for e in table["pieces"]:
        p, t, i = e["piece"], e["type"], e["id"]
        if t == "unknown":
            cats["unk"].append(i)
        elif t == "byte":
            cats["byte"][int(p[3:5], 16)] = i
        elif t == "control":
            cats["control"].append(i)
        elif t == "user_defined":
            cats["user"].append(i)
        elif p == "▁":
            cats["space"].append(i)
        elif is_punct_piece(p):
            cats["punct"].append(i)
        elif p.startswith("▁"):
            cats["word"].append(i)
        else:
            cats["mid"].append(i)
    return cats


def byte_ids(cats, rng):
    """Byte pieces: the UTF-8 of a non-ASCII character, or an invalid byte sequence."""
    b = cats["byte"]
    kind = rng.integers(0, 5)
    if kind <= 1:
        seq = NON_ASCII[rng.integers(0, len(NON_ASCII))].encode("utf-8")
    elif kind == 2:  # lone continuation byte
        seq = bytes([int(rng.integers(0x80, 0xC0))])
    elif kind == 3:  # truncated multi-byte sequence
        seq = NON_ASCII[rng.integers(0, len(NON_ASCII))].encode("utf-8")
        seq = seq[: max(1, len(seq) - 1)]
    else:  # ASCII written as a byte piece, or a byte that is never valid UTF-8
        seq = bytes([int(rng.choice([0x41, 0x2E, 0x20, 0xFF, 0xC0]))])
    return [b[x] for x in seq]


def random_tokens(cats, rng):
    weights = {"word": 0.34, "mid": 0.24, "punct": 0.12, "space": 0.05, "unk": 0.07, "byte": 0.12, "control": 0.03, "user": 0.03}
    avail = [k for k in weights if cats[k]]
    w = np.array([weights[k] for k in avail])
    w /= w.sum()
    n_units = int(rng.integers(1, 13))
    toks = []
    for _ in range(n_units):
        k = avail[rng.choice(len(avail), p=w)]
        if k == "byte":
            toks += byte_ids(cats, rng)
        else:
            toks.append(int(rng.choice(cats[k])))
    return toks


def frames_from_tokens(toks, blank, rng, lead=None, keep_equal=False):
    """Runs of 1-4 frames per token, 0-2 blanks between (0 blanks between equal tokens merges them,
    which is allowed: the fixture records what NeMo makes of the frames; keep_equal puts at least
    one blank there), 0-3 blanks at each end."""
    lead = int(rng.integers(0, 4)) if lead is None else lead
    labels = [blank] * lead
    for j, t in enumerate(toks):
        if j > 0:
            n = int(rng.integers(0, 3))
            if keep_equal and t == toks[j - 1]:
                n = max(n, 1)
            labels += [blank] * n
        labels += [t] * int(rng.integers(1, 5))
    labels += [blank] * int(rng.integers(0, 4))
    return labels


def make_cases(table, sent_ids, rng):
    blank = table["blank_id"]
    cats = categories(table)
    w = cats["word"] or cats["mid"]
    m = cats["mid"] or cats["word"]
    cases = [
        ("all_blank", [blank] * 5),
        ("empty", []),
        ("one_frame", [w[0]]),
        ("word_at_frame0", [w[1], w[1], m[0], blank, blank, w[2]]),
        ("repeat_with_blank", [blank, m[1], m[1], blank, m[1], blank, w[0], w[0], w[0]]),
        ("repeat_no_blank_merges", [blank, w[3], w[3], w[3], m[2], m[2], blank]),
        ("unk_only", [blank, cats["unk"][0], blank]),
        ("unk_between_words", [w[4], blank, cats["unk"][0], cats["unk"][0], m[3], blank, w[5], blank]),
    ]
    if cats["punct"]:
        p = cats["punct"]
        cases.append(("punct_after_word", [blank, w[6], m[4], p[0], blank, w[7], p[-1], p[-1], blank]))
        cases.append(("punct_first", [p[0], blank, w[8], blank, p[len(p) // 2]]))
    if cats["space"]:
        s = cats["space"][0]
        cases.append(("space_piece", [s, blank, m[5], s, s, blank, s, m[6], blank, s]))
    if cats["space"]:
        s = cats["space"][0]
        cases.append(("leading_spaces", [s, blank, s, w[13], s, m[9], blank]))
        if cats["punct"]:
            p = cats["punct"]
            cases.append(("space_before_punct", [w[14], s, p[0], blank, s, blank, s, p[-1], w[15], s, blank, p[0]]))
    if cats["punct"]:
        p = cats["punct"]
        cases.append(("unk_then_punct", [w[16], cats["unk"][0], p[0], blank, cats["unk"][0], blank, p[-1]]))
    if cats["byte"]:
        b = cats["byte"]
        cases.append(("bytes_then_word", [b[x] for x in "ü".encode()] + [blank, w[17], m[10]]))
        e_acute = [b[x] for x in "é".encode()]
        tokyo = [b[x] for x in "東京".encode()]
        cases.append(("bytes_valid_midword", [w[9], blank] + e_acute + [blank, w[10]]))
        cases.append(("bytes_valid_word", [w[11]] + [blank] + tokyo + [blank, m[7]]))
        cases.append(("bytes_invalid", [b[0xE6], blank, b[0x9D], w[12], b[0x80], b[0xFF], m[8]]))
    for k, ids in enumerate(sent_ids):
        cases.append((f"sentence_{k}", frames_from_tokens(ids, blank, rng, keep_equal=True)))
    for k in range(N_RANDOM):
        toks = random_tokens(cats, rng)
        cases.append((f"random_{k:02d}", frames_from_tokens(toks, blank, rng, lead=0 if k % 5 == 0 else None)))
    return cases


def logprob_batch(cases, n_classes, rng):
    """[B, T, C] float32 log-softmax with the chosen label as argmax on every valid frame; the padding
    past each length has random non-blank argmaxes (NeMo must ignore it)."""
    import torch

    t_max = max(1, max(len(lab) for _, lab in cases))
    x = rng.normal(0.0, 1.0, size=(len(cases), t_max, n_classes)).astype(np.float32)
    for b, (_, lab) in enumerate(cases):
        for t in range(t_max):
            if t < len(lab):
                c = lab[t]
            else:
                c = int(rng.integers(0, n_classes - 1))  # never the blank
            x[b, t, c] = x[b, t].max() + 1.0 + float(rng.uniform(0.0, 3.0))
    x = torch.from_numpy(x).log_softmax(dim=-1)
    lengths = torch.tensor([len(lab) for _, lab in cases], dtype=torch.long)
    return x, lengths


def collapse(labels, blank):
    out, prev = [], blank
    for p in labels:
        if p != blank and (p != prev or prev == blank):
            out.append(p)
        prev = p
    return out


def offsets(lst, key):
    return [{key: d[key], "start_offset": int(d["start_offset"]), "end_offset": int(d["end_offset"])} for d in lst]


def run_tokenizer(spec, work, out_root):
    import torch

    tok_dir, lines = train_tokenizer(spec, work)
    model = build_model(tok_dir)
    tok_path = os.path.join(tok_dir, "tokenizer.model")
    table = pieces_table(model, tok_path)
    blank = table["blank_id"]
    assert blank == table["vocab_size"] and table["num_classes_with_blank"] == blank + 1

    rng = np.random.default_rng([SEED, TOKENIZERS.index(spec)])
    picks = rng.choice(len(lines), size=N_SENTENCES, replace=False)
    sent_lines = [lines[i] for i in sorted(picks)]
    if spec["name"] == "bpe384_bytes":  # make sure byte fallback appears in a real tokenisation
        sent_lines[0] = next(l for l in lines if "東京" in l)
        sent_lines[1] = next(l for l in lines if "zürich" in l)
    sent_ids = [model.tokenizer.text_to_ids(l) for l in sent_lines]
    cases = make_cases(table, sent_ids, rng)
    sent_text = {f"sentence_{k}": l for k, l in enumerate(sent_lines)}

    x, lengths = logprob_batch(cases, blank + 1, rng)
    for b, (_, lab) in enumerate(cases):
        assert x[b, : len(lab)].argmax(-1).tolist() == lab

    with quiet():
        hyps = model.decoding.ctc_decoder_predictions_tensor(x, decoder_lengths=lengths, return_hypotheses=True)
    # The plain transcribe() path (no timestamps): text only, made directly in decode_hypothesis().
    plain_cfg = model.cfg.decoding.copy()
    plain_cfg.compute_timestamps = False
    from nemo.collections.asr.parts.submodules.ctc_decoding import CTCBPEDecoding

    with quiet():
        plain = CTCBPEDecoding(plain_cfg, tokenizer=model.tokenizer)
        plain_hyps = plain.ctc_decoder_predictions_tensor(x, decoder_lengths=lengths, return_hypotheses=False)

    out_cases = []
    for b, (name, lab) in enumerate(cases):
        h = hyps[b]
        toks = collapse(lab, blank)
        ts = h.timestamp
        assert h.text == plain_hyps[b].text, (name, h.text, plain_hyps[b].text)
        assert len(ts["char"]) == len(toks)
        case = {
            "name": name,
            "labels": lab,
            "tokens": toks,
            "pieces": model.tokenizer.ids_to_tokens(toks),
            "text": h.text,
            # For comparison only: sentencepiece's own decode of the ids (NeMo does not use it here).
            "sp_decode_ids": model.tokenizer.ids_to_text(toks),
            "timestep": [int(t) for t in ts["timestep"]],
            "char_offsets": offsets(ts["char"], "char"),
            "word_offsets": offsets(ts["word"], "word"),
            "segment_offsets": offsets(ts.get("segment", []), "segment"),
        }
        if name in sent_text:
            case["source_line"] = sent_text[name]
            if h.text != sent_text[name]:
                print(f"  note: {spec['name']}/{name}: NeMo text {h.text!r} != source line {sent_text[name]!r}")
        out_cases.append(case)

    import nemo

    dest = os.path.join(out_root, spec["name"])
    os.makedirs(dest, exist_ok=True)
    shutil.copyfile(tok_path, os.path.join(dest, "tokenizer.model"))
    shutil.copyfile(os.path.join(tok_dir, "vocab.txt"), os.path.join(dest, "vocab.txt"))
    meta = {
        "nemo_version": nemo.__version__,
        "generator": "tools/subword_fixtures.py",
        "training": {"text": "tools/subword_text.txt", "normalise": spec["normalise"], "create_spt_model": spec["spt"], "seed": SEED},
    }
    with open(os.path.join(dest, "pieces.json"), "w", encoding="utf-8") as f:
        json.dump({**meta, **table}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    decoding = {
        "strategy": model.cfg.decoding.strategy,
        "compute_timestamps": True,
        "word_seperator": model.decoding.word_seperator,
        "segment_seperators": list(model.decoding.segment_seperators),
        "call": "model.decoding.ctc_decoder_predictions_tensor(logprobs, decoder_lengths, return_hypotheses=True)",
    }
    with open(os.path.join(dest, "cases.json"), "w", encoding="utf-8") as f:
        f.write("{\n")
        for k, v in [*meta.items(), ("blank_id", blank), ("decoding", decoding)]:
            f.write(f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)},\n")
        f.write(' "cases": [\n')
        f.write(",\n".join("  " + json.dumps(c, ensure_ascii=False) for c in out_cases))
        f.write("\n ]\n}\n")
    return table, out_cases


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=OUT, help="fixture root (default tests/fixtures/subword)")
    ap.add_argument("--only", action="append", help="tokenizer name (repeatable)")
    ap.add_argument("--show", type=int, default=3, help="print this many example cases per tokenizer")
    ap.add_argument("--check", action="store_true", help="regenerate into a temp dir and compare with --out")
    args = ap.parse_args()

    pylogging.disable(pylogging.WARNING)
    specs = [s for s in TOKENIZERS if not args.only or s["name"] in args.only]
    out_root = tempfile.mkdtemp(prefix="subword_check_") if args.check else args.out
    with tempfile.TemporaryDirectory(prefix="subword_tok_") as work:
        for spec in specs:
            table, cases = run_tokenizer(spec, work, out_root)
            print(f"== {spec['name']}: vocab {table['vocab_size']}, blank {table['blank_id']}, "
                  f"punctuation {''.join(table['nemo_supported_punctuation'])!r}, {len(cases)} cases")
            shown = ["sentence_0", "unk_between_words", "space_before_punct", "bytes_valid_midword", "space_piece"]
            for c in [c for c in cases if c["name"] in shown][: args.show]:
                print(f"  {c['name']}: pieces {c['pieces']}\n    text {c['text']!r}\n    words "
                      + " ".join(f"{w['word']!r}[{w['start_offset']},{w['end_offset']}]" for w in c["word_offsets"]))
    if args.check:
        bad = 0
        for spec in specs:
            for fn in ("tokenizer.model", "vocab.txt", "pieces.json", "cases.json"):
                a, b = os.path.join(args.out, spec["name"], fn), os.path.join(out_root, spec["name"], fn)
                same = os.path.exists(a) and open(a, "rb").read() == open(b, "rb").read()
                bad += not same
                print(f"{'same' if same else 'DIFFERENT'}: {spec['name']}/{fn}")
        shutil.rmtree(out_root)
        sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

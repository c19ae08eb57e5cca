# SPDX-License-Identifier: MPL-2.0
"""Independent reference decoder for the hama phoneme model: flashlight-text's LexiconDecoder.

What the Rust lexicon beam search is checked against. Decoding setup (flashlight-text 0.0.7):

* CTC criterion; 191 classes = the 189 G2P decoder tokens (`g2p_vocab.json["decoder"]`,
  index = id), `<wb>` = 189 (word boundary, flashlight's silence token), `<blank>` = 190;
* a trie over token ids built from the lexicon (models/hama-en.lexicon.gz): each spelling is
  followed by `<wb>`, its label is the word, its score the word's unigram log10 probability
  from KenLM (null context); the trie is smeared with MAX. (`--smear-context bos` scores the
  words after `<s>` instead, i.e. `lm.start(False)` as in the usual flashlight/torchaudio
  recipe; only the beam pruning depends on it, the final scores do not);
* KenLM loaded from the ARPA file (log10 scores; `--lm-weight` multiplies them), word score
  `--word-score` per word, unknown words not allowed (unk score -inf, unk index -1), silence
  score 0, Viterbi (no log-add);
* after the last real frame one synthetic frame is appended in which `<wb>` has log-prob 0 and
  every other class -30, so that the last word can end;
* exact ties for the best score (homophones with equal LM scores, e.g. "basle"/"basal", both
  `b eɪ s ə l`) are broken by taking the lexicographically smallest word sequence: flashlight
  itself orders tied hypotheses by memory address, so its own first result can change between
  processes.

Modes:

    # 1. run hama-en.onnx over a folder of 16 kHz mono 16-bit wavs + manifest.tsv -> .npy
    python3 tools/phoneme/flashlight_reference.py --make-logprobs /tmp/hama-lp \\
        --audio-set eval/real-dev [--threads 1]

    # 2. decode a folder of .npy log-probs [T, 191] (stem = clip name) and score the WER
    python3 tools/phoneme/flashlight_reference.py /tmp/hama-lp --out /tmp/hyps.tsv

    # 3. how long an input the model takes in one run (clips joined to 30/60/120/300 s)
    python3 tools/phoneme/flashlight_reference.py --length-test --audio-set eval/real-dev

manifest.tsv: `file<TAB>reference<TAB>...` (no header); --make-logprobs copies it next to the
.npy files, so mode 2 finds it there (or give --manifest). WER: lower-cased words,
(substitutions + deletions + insertions) / reference words, summed over clips. Timing: decode
seconds per audio second, audio seconds = T * 0.02 (the synthetic frame not counted); mode 1
also prints the model's real-time factor with `--threads` intra-op threads.

Everything runs in `~/.cache/quartznetstt/flashlight-venv`, created on first use
(`/usr/bin/python3 -m venv`; pip `flashlight-text==0.0.7 numpy onnxruntime==1.32.0`); the
script re-executes itself there.
"""
import argparse
import gzip
import json
import os
import shutil
import sys
import time
import wave

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import build_lexicon as bl  # noqa: E402  (same folder: venv helpers, text readers)

FL_VENV = os.path.expanduser("~/.cache/quartznetstt/flashlight-venv")
FL_VERSION = "0.0.7"
MODELS = os.path.join(bl.REPO, "models")

N_CLASSES = 191
WB = 189      # <wb>: word boundary = flashlight silence token
BLANK = 190   # <blank>
FRAME_S = 0.02
SAMPLE_RATE = 16000
FLOOR = -30.0  # log-prob of every class but <wb> in the appended frame


def ensure_flashlight_venv():
    return bl.ensure_venv(FL_VENV, [
        [f"flashlight-text=={FL_VERSION}", "numpy", f"onnxruntime=={bl.ORT_VERSION}"],
    ], f"flashlight-text=={FL_VERSION} onnxruntime=={bl.ORT_VERSION}")


# --------------------------------------------------------------------------- data

def read_manifest(path):
    """[(file, reference)] from a manifest.tsv (file<TAB>reference<TAB>...)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                fields = line.rstrip("\n").split("\t")
                rows.append((fields[0], fields[1]))
    return rows


def stem(name):
    return os.path.splitext(os.path.basename(name))[0]


def read_wav(path):
    """16 kHz mono 16-bit PCM wav -> float32 samples (int16 / 32768)."""
    import numpy as np
    with wave.open(path, "rb") as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (SAMPLE_RATE, 1, 2):
            sys.exit(f"error: {path}: need 16 kHz mono 16-bit, got {w.getframerate()} Hz, "
                     f"{w.getnchannels()} ch, {8 * w.getsampwidth()} bit")
        raw = w.readframes(w.getnframes())
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def word_errors(ref, hyp):
    """Levenshtein distance between two word lists (S + D + I)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


# --------------------------------------------------------------------------- acoustic model

def make_session(model, threads):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def run_model(session, samples):
    """log-probs [T, 191] of one utterance (batch of one: no padding), seconds taken.

    Batch 1 on purpose: the model's squeeze-excitation blocks average over the whole padded
    time axis, so padding in a batch would change the result.
    """
    import numpy as np
    feeds = {"waveform": samples.reshape(1, -1).astype(np.float32),
             "waveform_lengths": np.array([samples.size], dtype=np.int64)}
    t0 = time.perf_counter()
    log_probs, out_lengths = session.run(["log_probs", "out_lengths"], feeds)
    dt = time.perf_counter() - t0
    n = int(out_lengths.reshape(-1)[0])
    return np.ascontiguousarray(log_probs[0, :n], dtype=np.float32), dt


def make_logprobs(args):
    """Mode 1: every manifest wav of --audio-set -> DIR/<stem>.npy, manifest copied."""
    import numpy as np
    rows = read_manifest(os.path.join(args.audio_set, "manifest.tsv"))
    os.makedirs(args.make_logprobs, exist_ok=True)
    session = make_session(args.model, args.threads)
    run_model(session, np.zeros(SAMPLE_RATE, dtype=np.float32))  # warm-up, not timed
    audio_s = model_s = 0.0
    for name, _ in rows:
        samples = read_wav(os.path.join(args.audio_set, name))
        lp, dt = run_model(session, samples)
        for _ in range(args.repeat - 1):  # fastest of --repeat runs: less noise from load
            dt = min(dt, run_model(session, samples)[1])
        np.save(os.path.join(args.make_logprobs, stem(name) + ".npy"), lp)
        audio_s += samples.size / SAMPLE_RATE
        model_s += dt
    shutil.copyfile(os.path.join(args.audio_set, "manifest.tsv"),
                    os.path.join(args.make_logprobs, "manifest.tsv"))
    print(f"wrote {len(rows)} log-prob files to {args.make_logprobs}: {audio_s:.1f} s audio, "
          f"model {model_s:.2f} s with {args.threads} thread(s) (fastest of {args.repeat}): "
          f"real-time factor "
          f"{model_s / audio_s:.4f}")


# --------------------------------------------------------------------------- decoder

def kenlm_path(lm):
    """A path KenLM can read: the ARPA as is, or an uncompressed cached copy of a gzip one."""
    with open(lm, "rb") as f:
        if f.read(2) != b"\x1f\x8b":
            return lm
    cache = os.path.join(os.path.expanduser("~/.cache/quartznetstt"), "arpa")
    os.makedirs(cache, exist_ok=True)
    out = os.path.join(cache, f"{bl.sha256_file(lm)[:16]}-{stem(lm)}")
    if not os.path.isfile(out):
        with gzip.open(lm, "rb") as src, open(out + ".part", "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(out + ".part", out)
    return out


def read_lexicon(path, vocab):
    """{word: [token ids]} from a quartznetstt-lexicon file."""
    tok_id = {t: i for i, t in enumerate(vocab)}
    lexicon = {}
    with bl.open_text(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            word, spelling = line.rstrip("\n").split("\t")
            lexicon[word] = [tok_id[t] for t in spelling.split(" ")]
    return lexicon


class Decoder:
    """flashlight LexiconDecoder over the lexicon trie and KenLM (see the module docstring)."""

    def __init__(self, args):
        from flashlight.lib.text.decoder import (CriterionType, LexiconDecoder,
                                                 LexiconDecoderOptions, SmearingMode, Trie)
        from flashlight.lib.text.decoder.kenlm import KenLM
        from flashlight.lib.text.dictionary import Dictionary

        t0 = time.perf_counter()
        with open(args.vocab, encoding="utf-8") as f:
            vocab = json.load(f)["decoder"]
        if len(vocab) != WB:
            sys.exit(f"error: expected {WB} G2P decoder tokens, got {len(vocab)}")
        lexicon = read_lexicon(args.lexicon, vocab)
        self.words = sorted(lexicon)
        self.word_dict = Dictionary(self.words)
        self.lm = KenLM(kenlm_path(args.lm), self.word_dict)

        # smearing scores: unigram (empty context) or after <s>
        state = self.lm.start(args.smear_context == "null")
        self.trie = Trie(N_CLASSES, WB)
        for i, word in enumerate(self.words):
            _, score = self.lm.score(state, i)
            self.trie.insert(lexicon[word] + [WB], i, score)
        self.trie.smear(SmearingMode.MAX)

        opts = LexiconDecoderOptions(
            beam_size=args.beam, beam_size_token=args.beam_size_token,
            beam_threshold=args.beam_threshold, lm_weight=args.lm_weight,
            word_score=args.word_score, unk_score=float("-inf"), sil_score=0.0,
            log_add=False, criterion_type=CriterionType.CTC)
        self.decoder = LexiconDecoder(opts, self.trie, self.lm, WB, BLANK, -1, [], False)
        self.setup_s = time.perf_counter() - t0

    def decode(self, log_probs):
        """Best word sequence for log-probs [T, 191], seconds spent in the decoder, and how
        many different word sequences share the best score.

        Exact ties happen (homophones with equal LM scores, e.g. "basle"/"basal"), and
        flashlight orders tied hypotheses by memory address, so its first result can change
        from one process to the next. Among the tied best results the lexicographically
        smallest word sequence is returned, which makes the output reproducible.
        """
        import numpy as np
        extra = np.full((1, N_CLASSES), FLOOR, dtype=np.float32)
        extra[0, WB] = 0.0
        em = np.ascontiguousarray(np.concatenate([log_probs, extra]), dtype=np.float32)
        t0 = time.perf_counter()
        results = self.decoder.decode(em.ctypes.data, em.shape[0], N_CLASSES)
        dt = time.perf_counter() - t0
        if not results:
            return [], dt, 0
        best = results[0].score
        tied = {tuple(self.words[w] for w in r.words if w >= 0)
                for r in results if r.score == best}
        return list(min(tied)), dt, len(tied)


def decode_dir(args):
    """Mode 2: decode every manifest clip's .npy, write hypotheses, print WER and speed."""
    import numpy as np
    manifest = args.manifest or os.path.join(args.logprobs, "manifest.tsv")
    rows = read_manifest(manifest)
    dec = Decoder(args)
    print(f"decoder ready: {len(dec.words)} words, {dec.setup_s:.1f} s (trie + KenLM)",
          file=sys.stderr)
    errors = ref_words = ties = 0
    audio_s = decode_s = 0.0
    out_rows = []
    for name, ref in rows:
        lp = np.load(os.path.join(args.logprobs, stem(name) + ".npy"))
        if lp.ndim != 2 or lp.shape[1] != N_CLASSES:
            sys.exit(f"error: {name}: log-probs shape {lp.shape}, want [T, {N_CLASSES}]")
        hyp, dt, n_tied = dec.decode(lp.astype(np.float32))
        ties += n_tied > 1
        ref_w = ref.lower().split()
        e = word_errors(ref_w, hyp)
        errors += e
        ref_words += len(ref_w)
        audio_s += lp.shape[0] * FRAME_S
        decode_s += dt
        out_rows.append(f"{stem(name)}\t{' '.join(hyp)}\t{e}\t{len(ref_w)}\t{n_tied}\n")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write("# clip\thypothesis\tword errors\treference words\t"
                    "word sequences tied for the best score\n")
            f.writelines(out_rows)
    wer = errors / max(ref_words, 1)
    print(f"clips {len(rows)}, WER {100 * wer:.2f} % ({errors}/{ref_words}), "
          f"decode {decode_s:.2f} s for {audio_s:.1f} s audio = {decode_s / audio_s:.4f} s/s "
          f"(lm-weight {args.lm_weight}, word-score {args.word_score}, beam {args.beam}, "
          f"beam-size-token {args.beam_size_token}, beam-threshold {args.beam_threshold}, "
          f"smear-context {args.smear_context}); clips with a tie for the best score: {ties}")
    return wer


# --------------------------------------------------------------------------- input length

def length_test(args):
    """Mode 3: for each target length, the clips (in manifest order) are joined into groups of
    at most that length (a longer clip stays alone); each group is run through the model in one
    piece and decoded. Compared with running and decoding every clip on its own, over the whole
    set, so any loss from long inputs shows in the WER."""
    import numpy as np
    rows = read_manifest(os.path.join(args.audio_set, "manifest.tsv"))
    clips = [(read_wav(os.path.join(args.audio_set, n)), r.lower().split()) for n, r in rows]
    session = make_session(args.model, args.threads)
    dec = Decoder(args)
    ref = [w for _, r in clips for w in r]
    sep_hyp = []  # every clip run and decoded alone
    for samples, _ in clips:
        sep_hyp += dec.decode(run_model(session, samples)[0])[0]
    print(f"separate clips: {len(clips)}, {sum(c.size for c, _ in clips) / SAMPLE_RATE:.1f} s, "
          f"WER {100 * word_errors(ref, sep_hyp) / len(ref):.2f} %")

    print("target_s\tgroups\tlongest_s\tframes_expected\tframes_out\ttruncated_groups\t"
          "model_s\tWER_joined_%")
    for target in args.lengths:
        groups, cur, cur_len = [], [], 0
        for i, (samples, _) in enumerate(clips):
            if cur and cur_len + samples.size > target * SAMPLE_RATE:
                groups.append(cur)
                cur, cur_len = [], 0
            cur.append(i)
            cur_len += samples.size
        groups.append(cur)
        hyp, expected, frames, truncated, model_s, longest = [], 0, 0, 0, 0.0, 0
        failed = None
        for g in groups:
            samples = np.concatenate([clips[i][0] for i in g])
            longest = max(longest, samples.size)
            # STFT frames with hop 160 (centred), then the stride-2 stem
            want = (1 + samples.size // 160 + 1) // 2
            try:
                lp, dt = run_model(session, samples)
            except Exception as e:  # noqa: BLE001 -- a runtime failure is the finding
                failed = f"{samples.size / SAMPLE_RATE:.1f} s: {e}"
                break
            expected += want
            frames += lp.shape[0]
            truncated += lp.shape[0] < want
            model_s += dt
            hyp += dec.decode(lp)[0]
        if failed:
            print(f"{target:g}\t{len(groups)}\tFAILED at {failed}")
            continue
        print(f"{target:g}\t{len(groups)}\t{longest / SAMPLE_RATE:.2f}\t{expected}\t{frames}\t"
              f"{truncated}\t{model_s:.2f}\t{100 * word_errors(ref, hyp) / len(ref):.2f}")


# --------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("logprobs", nargs="?", help="folder of <clip>.npy log-probs to decode")
    ap.add_argument("--manifest", help="manifest.tsv (default: <logprobs>/manifest.tsv)")
    ap.add_argument("--out", help="per-clip hypotheses TSV")
    ap.add_argument("--lm", default=os.path.join(MODELS, "quartznet-en.arpa.gz"))
    ap.add_argument("--lexicon", default=os.path.join(MODELS, "hama-en.lexicon.gz"))
    ap.add_argument("--vocab", default=os.path.join(MODELS, "hama-g2p", "g2p_vocab.json"))
    ap.add_argument("--lm-weight", type=float, default=1.0,
                    help="weight of the log10 KenLM scores (default 1.0)")
    ap.add_argument("--word-score", type=float, default=1.0, help="per word (default 1.0)")
    ap.add_argument("--beam", type=int, default=50)
    ap.add_argument("--beam-size-token", type=int, default=30)
    ap.add_argument("--beam-threshold", type=float, default=25.0)
    ap.add_argument("--smear-context", choices=["null", "bos"], default="null",
                    help="LM context of the trie smearing scores: null = unigram (default), "
                         "bos = after <s>")
    ap.add_argument("--make-logprobs", metavar="DIR", help="mode 1: write log-probs to DIR")
    ap.add_argument("--audio-set", metavar="FOLDER", help="wavs + manifest.tsv (modes 1, 3)")
    ap.add_argument("--model", default=os.path.join(MODELS, "hama-en.onnx"))
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    ap.add_argument("--repeat", type=int, default=1,
                    help="mode 1: time each clip this many times and count the fastest")
    ap.add_argument("--length-test", action="store_true", help="mode 3")
    ap.add_argument("--lengths", type=float, nargs="+", default=[10, 20, 30, 60, 120, 300],
                    help="target lengths in seconds for --length-test")
    args = ap.parse_args()

    modes = [bool(args.make_logprobs), bool(args.length_test), bool(args.logprobs)]
    if sum(modes) != 1:
        ap.error("give exactly one of: LOGPROBS folder, --make-logprobs DIR, --length-test")
    if (args.make_logprobs or args.length_test) and not args.audio_set:
        ap.error("--make-logprobs and --length-test need --audio-set")

    bl.reexec_in(FL_VENV, ensure_flashlight_venv)
    if args.make_logprobs:
        make_logprobs(args)
    elif args.length_test:
        length_test(args)
    else:
        decode_dir(args)


if __name__ == "__main__":
    main()

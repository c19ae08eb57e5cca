#!/usr/bin/python3
# SPDX-License-Identifier: MPL-2.0
"""N concurrent live pipelines (separate processes), the model in each vs one shared Triton
server: CPU and memory per pipeline, text delay, dropped audio, and the batch sizes the
server formed (README, "Many streams, many machines").

Each pipeline is `appsrc` fed in real time as a capture device (20 ms periods of a looped
clip, timestamped from the clock) -> queue -> quartznetstt (threads=1) -> fakesink; a text
buffer's delay is the running time it leaves the element less its timestamp (the start of
its first word), the element's own definition of latency. CPU and RSS are each process's
own (getrusage, /proc/self/status) over the measured span, after a settling time; the
server's are its whole process group's (Triton, PyTriton and the Python-backend stubs).

    cargo build --release -p gst-plugin-quartznetstt --lib
    /usr/bin/python3 tools/triton/measure.py --plugin target/release --counts 1 4 16 \
        --seconds 30 --json bench-triton.json

Needs PyGObject (Debian's python3-gi) and the PyTriton venv (tools/triton/setup.sh).
"""

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import wave

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RATE = 16000
PERIOD = 320  # samples: 20 ms


def pipeline_main(args):
    """One live pipeline for --seconds after --settle; prints a JSON line of its figures."""
    import gi

    gi.require_version("Gst", "1.0")
    from gi.repository import Gst

    Gst.init(None)
    server = f" inference-server={args.server} inference-timeout=2000" if args.server else ""
    pipeline = Gst.parse_launch(
        "appsrc name=src is-live=true format=time ! queue max-size-buffers=0 "
        "max-size-bytes=0 max-size-time=10000000000 ! quartznetstt name=stt threads=1"
        f"{server} ! fakesink name=sink sync=false async=false"
    )
    src = pipeline.get_by_name("src")
    src.set_property(
        "caps", Gst.Caps.from_string(f"audio/x-raw,format=S16LE,rate={RATE},channels=1,layout=interleaved")
    )
    stt = pipeline.get_by_name("stt")
    with wave.open(args.clip, "rb") as w:
        audio = w.readframes(w.getnframes())
    delays = []
    measuring = threading.Event()

    def on_text(pad, info):
        buffer = info.get_buffer()
        clock = pipeline.get_clock()
        if buffer.get_size() > 0 and clock is not None and measuring.is_set():
            now = clock.get_time() - pipeline.get_base_time()
            delays.append((now - buffer.pts) / 1e6)
        return Gst.PadProbeReturn.OK

    stt.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, on_text)
    qos = {"dropped": 0}
    warnings = []
    pipeline.set_state(Gst.State.PLAYING)
    bus = pipeline.get_bus()
    clock = pipeline.get_clock()
    first = clock.get_time() - pipeline.get_base_time()
    started = time.monotonic()
    settle_at, end_at = started + args.settle, started + args.settle + args.seconds
    usage0 = None
    n, offset = 0, 0
    period_bytes = PERIOD * 2
    while time.monotonic() < end_at:
        n += 1
        due = started + n * PERIOD / RATE
        while True:
            message = bus.pop()
            if message is None:
                break
            if message.type == Gst.MessageType.ERROR:
                print(json.dumps({"error": message.parse_error()[0].message}), flush=True)
                pipeline.set_state(Gst.State.NULL)
                return 1
            if message.type == Gst.MessageType.WARNING:
                warnings.append(message.parse_warning()[0].message)
            if message.type == Gst.MessageType.QOS and message.src == stt:
                qos["dropped"] = message.parse_qos_stats()[2]
        time.sleep(max(0.0, due - time.monotonic()))
        if usage0 is None and time.monotonic() >= settle_at:
            usage0 = resource.getrusage(resource.RUSAGE_SELF)
            measured_from = time.monotonic()
            dropped0 = qos["dropped"]
            measuring.set()
        chunk = bytearray()
        while len(chunk) < period_bytes:
            take = min(period_bytes - len(chunk), len(audio) - offset)
            chunk += audio[offset : offset + take]
            offset = (offset + take) % len(audio)
        buffer = Gst.Buffer.new_wrapped(bytes(chunk))
        buffer.pts = first + (n - 1) * PERIOD * Gst.SECOND // RATE
        buffer.duration = PERIOD * Gst.SECOND // RATE
        src.emit("push-buffer", buffer)
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.monotonic() - measured_from
    status = open("/proc/self/status").read()
    rss = int(status.split("VmRSS:")[1].split()[0])
    pipeline.set_state(Gst.State.NULL)
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    print(
        json.dumps(
            {
                "cpu_percent": 100 * cpu / wall,
                "rss_mb": rss / 1024,
                "delays_ms": delays,
                "dropped_s": (qos["dropped"] - dropped0) / RATE,
                "warnings": len(warnings),
            }
        ),
        flush=True,
    )
    return 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def group_usage(pgid):
    """(CPU seconds, RSS MB) of every process in the group."""
    cpu, rss = 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = open(f"/proc/{pid}/stat").read()
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            cpu += (int(fields[11]) + int(fields[12])) / tick
            rss += int(open(f"/proc/{pid}/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, IndexError, ValueError):
            continue
    return cpu, rss


def batch_stats(url, model):
    """{batch size: (executions, compute ns)} from Triton's statistics extension (compute:
    the model's execution, here PyTriton's hop to Python and ONNX Runtime)."""
    with urllib.request.urlopen(f"{url}/v2/models/{model}/stats", timeout=10) as r:
        stats = json.load(r)["model_stats"][0]
    return {
        b["batch_size"]: (b["compute_infer"]["count"], b["compute_infer"]["ns"])
        for b in stats.get("batch_stats", [])
    }


def batches_between(before, after):
    """{batch size: [executions, mean compute ms]} formed between two batch_stats."""
    formed = {}
    for size, (count, ns) in sorted(after.items()):
        count0, ns0 = before.get(size, (0, 0))
        if count > count0:
            formed[size] = [count - count0, round((ns - ns0) / (count - count0) / 1e6, 1)]
    return formed


def run(args, count, server_url, plugin_dir):
    env = dict(os.environ, GST_PLUGIN_PATH=plugin_dir)
    command = [sys.executable, os.path.abspath(__file__), "--pipeline", "--clip", args.clip,
               "--seconds", str(args.seconds), "--settle", str(args.settle)]
    if server_url:
        command += ["--server", server_url]
    processes = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) for _ in range(count)
    ]
    results = []
    for p in processes:
        out, _ = p.communicate(timeout=args.seconds + args.settle + 300)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        results.append(json.loads(lines[-1]) if lines else {"error": f"exit {p.returncode}"})
    return results


def summary(results):
    ok = [r for r in results if "error" not in r]
    delays = sorted(d for r in ok for d in r["delays_ms"])
    p95 = delays[min(len(delays) - 1, int(0.95 * len(delays)))] if delays else None
    return {
        "pipelines": len(results),
        "errors": [r["error"] for r in results if "error" in r],
        "cpu_percent_per_pipeline": statistics.mean(r["cpu_percent"] for r in ok) if ok else None,
        "rss_mb_per_pipeline": statistics.mean(r["rss_mb"] for r in ok) if ok else None,
        "median_delay_ms": statistics.median(delays) if delays else None,
        "p95_delay_ms": p95,
        "texts": len(delays),
        "dropped_s_total": sum(r["dropped_s"] for r in ok),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--server", help=argparse.SUPPRESS)
    parser.add_argument("--clip", default=os.path.join(ROOT, "samples/LJ001-0001.wav"))
    parser.add_argument("--plugin", default=os.path.join(ROOT, "target/release"),
                        help="folder with libgstquartznetstt.so")
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--settle", type=float, default=8)
    parser.add_argument("--server-threads", type=int, default=2)
    parser.add_argument("--python", default=os.environ.get("QUARTZNET_PYTRITON", "/opt/venvs/pytriton/bin/python"))
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    if args.pipeline:
        return pipeline_main(args)

    # The plugin alone in its folder: GStreamer would try every library in target/.
    plugin_dir = tempfile.mkdtemp()
    shutil.copy(os.path.join(args.plugin, "libgstquartznetstt.so"), plugin_dir)
    figures = {"local": {}, "served": {}, "cores": os.cpu_count(), "load_before": os.getloadavg()}
    for count in args.counts:
        figures["local"][count] = summary(run(args, count, None, plugin_dir))
        print(f"local  N={count}: {json.dumps(figures['local'][count])}", flush=True)

    port = free_port()
    # PyTriton's workspace, removed with the server (it is killed, not stopped).
    scratch = tempfile.mkdtemp()
    server = subprocess.Popen(
        [args.python, os.path.join(ROOT, "tools/triton/serve.py"), os.path.join(ROOT, "models/hama-en.onnx"),
         "--http-port", str(port), "--threads", str(args.server_threads), "--exit-with-parent"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
        env=dict(os.environ, PYTRITON_HOME=scratch),
    )
    try:
        for line in server.stdout:
            if line.startswith("READY"):
                break
        url = f"http://127.0.0.1:{port}"
        for count in args.counts:
            before, (cpu0, _) = batch_stats(url, "hama-en"), group_usage(server.pid)
            started = time.monotonic()
            results = run(args, count, url, plugin_dir)
            cpu1, rss = group_usage(server.pid)
            after = batch_stats(url, "hama-en")
            batches = batches_between(before, after)
            entry = summary(results)
            # The server's CPU over the whole run (its load and settling included).
            entry["server_cpu_percent"] = 100 * (cpu1 - cpu0) / (time.monotonic() - started)
            entry["server_rss_mb"] = rss
            entry["batch_sizes"] = batches
            figures["served"][count] = entry
            print(f"served N={count}: {json.dumps(entry)}", flush=True)
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        shutil.rmtree(plugin_dir, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    figures["load_after"] = os.getloadavg()
    print(f"load average before {figures['load_before']}, after {figures['load_after']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

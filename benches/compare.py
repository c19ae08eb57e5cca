# SPDX-License-Identifier: MPL-2.0
"""Helper of benches/compare.sh (run with the bench venv's Python: onnxruntime, numpy, onnx,
sherpa-onnx). Subcommands:

  floor FEATURES.npy MODEL.onnx RUNS          one ONNX Runtime run over the whole utterance's
                                              features, RUNS times after one warm-up; prints JSON
  sherpa-prepare MODEL.onnx MODEL.json DIR    a copy of the model sherpa-onnx accepts, + tokens.txt
  sherpa DIR AUDIO.wav                        sherpa-onnx's offline recogniser over the file; JSON
  bench ...                                   runs every row, prints the table (see compare.sh)

One intra-op thread everywhere (ONNX Runtime intra_op_num_threads = 1, inter-op 1).
"""

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import threading
import time
import wave


def read_wav_float(path):
    """Mono float32 samples in [-1, 1) and the rate (16-bit PCM; channels averaged)."""
    import numpy as np

    with wave.open(path) as w:
        if w.getsampwidth() != 2:
            sys.exit(f"compare.py: {path}: only 16-bit PCM WAV is read here")
        rate, channels = w.getframerate(), w.getnchannels()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    samples = data.astype(np.float32) / 32768.0
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return samples, rate


def greedy_text(logprobs, labels):
    """NeMo's greedy CTC decoding (blank = last id): best id per frame, repeats merged."""
    ids = logprobs.argmax(axis=-1).reshape(-1)
    blank, previous, out = len(labels), -1, []
    for i in ids.tolist():
        if i != previous and i != blank:
            out.append(labels[i])
        previous = i
    return "".join(out).strip()


def cmd_floor(args):
    import numpy as np
    import onnxruntime as ort

    features = np.load(args.features).astype(np.float32)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    session.run(None, {name: features})  # warm-up: the memory arena, not timed
    times, out = [], None
    for _ in range(args.runs):
        start = time.perf_counter()
        out = session.run(None, {name: features})
        times.append(time.perf_counter() - start)
    text = ""
    sidecar = os.path.splitext(args.model)[0] + ".json"
    if os.path.exists(sidecar):
        with open(sidecar) as f:
            text = greedy_text(out[0], json.load(f)["labels"])
    print(json.dumps({"times": times, "shape": list(features.shape), "text": text,
                      "ort": ort.__version__}))


def cmd_sherpa_prepare(args):
    """sherpa-onnx's NeMo CTC model: metadata vocab_size (labels + blank), subsampling_factor,
    normalize_type, model_type (what its NeMo export scripts add), and a second graph input
    `length` (sherpa always feeds [features, lengths]; NeMo's QuartzNet export has only
    audio_signal, so the copy gets an unused int64 input). tokens.txt: one `symbol id` a line,
    the space as U+2581 (sherpa's symbol table turns it back into a space), blank last."""
    import onnx
    from onnx import TensorProto, helper

    with open(args.sidecar) as f:
        sidecar = json.load(f)
    labels = sidecar["labels"]
    model = onnx.load(args.model)
    names = [i.name for i in model.graph.input]
    if len(names) == 1:
        model.graph.input.append(helper.make_tensor_value_info("length", TensorProto.INT64, ["N"]))
    normalize = sidecar.get("frontend", {}).get("normalize", "per_feature")
    meta = {
        "vocab_size": str(len(labels) + 1),
        "subsampling_factor": str(sidecar.get("subsampling_factor", 2)),
        "normalize_type": "" if normalize in (None, "none", "NA") else normalize,
        "model_type": "EncDecCTCModel",
    }
    del model.metadata_props[:]
    for key, value in meta.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    os.makedirs(args.dir, exist_ok=True)
    onnx.save(model, os.path.join(args.dir, "model.onnx"))
    with open(os.path.join(args.dir, "tokens.txt"), "w", encoding="utf-8") as f:
        for i, label in enumerate(labels):
            symbol = "\u2581" if label == " " else label
            f.write(f"{symbol} {i}\n")
        f.write(f"<blk> {len(labels)}\n")
    features = sidecar.get("frontend", {}).get("features", 64)
    with open(os.path.join(args.dir, "feature_dim"), "w") as f:
        f.write(str(features))
    print(json.dumps(meta))


def cmd_sherpa(args):
    import sherpa_onnx

    with open(os.path.join(args.dir, "feature_dim")) as f:
        feature_dim = int(f.read())
    start = time.perf_counter()
    recognizer = sherpa_onnx.OfflineRecognizer.from_nemo_ctc(
        model=os.path.join(args.dir, "model.onnx"),
        tokens=os.path.join(args.dir, "tokens.txt"),
        num_threads=1,
        feature_dim=feature_dim,
        decoding_method="greedy_search",
    )
    load = time.perf_counter() - start
    samples, rate = read_wav_float(args.audio)
    # Timed: features (sherpa's own fbank, computed as the waveform is accepted), the model
    # over the whole file and greedy decoding.
    start = time.perf_counter()
    stream = recognizer.create_stream()
    stream.accept_waveform(rate, samples)
    recognizer.decode_stream(stream)
    decode = time.perf_counter() - start
    print(json.dumps({"load": load, "decode": decode, "text": stream.result.text.strip()}))


# ---- the bench --------------------------------------------------------------------------------


def run_process(argv, env=None):
    """Runs argv; returns (wall seconds, peak RSS MB, stdout text). The peak RSS is the child's
    ru_maxrss from wait4, the number /usr/bin/time -f %M prints."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    # Drain the pipes while waiting, without communicate (it would reap the child itself).
    chunks = {"out": b"", "err": b""}

    def drain(stream, key):
        chunks[key] = stream.read()

    threads = [threading.Thread(target=drain, args=(proc.stderr, "err")),
               threading.Thread(target=drain, args=(proc.stdout, "out"))]
    for t in threads:
        t.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    for t in threads:
        t.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = chunks["out"].decode(errors="replace")
    if proc.returncode != 0:
        sys.exit(f"compare: `{shlex.join(argv)}` failed (exit {proc.returncode}):\n"
                 + chunks["err"].decode(errors="replace")[-3000:])
    return wall, usage.ru_maxrss / 1024.0, text


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def bundled_ort_version(module):
    """The ONNX Runtime release a wheel bundles (sherpa-onnx ships its own library)."""
    lib = os.path.join(os.path.dirname(module.__file__), "lib", "libonnxruntime.so")
    try:
        with open(lib, "rb") as f:
            found = re.search(rb"VERS_(\d+\.\d+\.\d+)", f.read())
        return found.group(1).decode() if found else "unknown"
    except OSError:
        return "unknown"


def progress(message):
    print(f"compare: {message}", file=sys.stderr, flush=True)


def first(text, n=60):
    text = " ".join(text.split())
    return text[:n] + ("..." if len(text) > n else "")


def cmd_bench(args):
    py = sys.executable
    here = os.path.abspath(__file__)
    env = dict(os.environ)
    with wave.open(args.audio) as w:
        audio_s = w.getnframes() / w.getframerate()
    rows, texts = [], []

    def row(label, command, walls, rss, note=""):
        rows.append((label, command, statistics.median(walls), max(rss), note))

    # The rows are measured in rounds, each round running every row once, so that a machine
    # whose speed drifts over minutes (shared virtual machines do) biases no row against
    # another; each row's figure is the median over the rounds.
    features = os.path.join(args.tmp, "features.npy")
    run_process([args.cli, "--offline", "--threads", "1", "--decoder", "greedy",
                 "--model", args.model, "--dump-features", features, args.audio], env)

    sherpa_version = ort_in_sherpa = None
    sherpa_dir = None
    if not args.no_sherpa:
        import sherpa_onnx

        sherpa_version = getattr(sherpa_onnx, "__version__", "?")
        ort_in_sherpa = bundled_ort_version(sherpa_onnx)
        sherpa_dir = os.path.join(args.tmp, "sherpa")
        run_process([py, here, "sherpa-prepare", args.model,
                     os.path.splitext(args.model)[0] + ".json", sherpa_dir], env)

    gst_text = os.path.join(args.tmp, "element.txt")

    def pipeline(decoder):
        extra = [f"decoder={decoder}"] if decoder else []
        return [args.gst_launch, "-q", "filesrc", f"location={args.audio}", "!", "wavparse", "!",
                "audioconvert", "!", "audioresample", "!", "quartznetstt", "threads=1",
                f"model-path={args.model}", *extra, "separator=newline", "!",
                "filesink", f"location={gst_text}"]

    cli = [args.cli, "--offline", "--threads", "1", "--model", args.model]
    cases = [
        ("CLI offline, greedy", cli + ["--decoder", "greedy", args.audio], None),
        ("CLI offline, default (beam+LM)", cli + [args.audio], None),
        ("element file pipeline, greedy", pipeline("greedy"), gst_text),
        ("element file pipeline, default", pipeline(None), gst_text),
    ]
    floor_times, floor_rss, floor = [], [], None
    sherpa = {"decodes": [], "walls": [], "rss": [], "text": ""}
    measured = {label: {"walls": [], "rss": [], "text": ""} for label, _, _ in cases}
    for round_ in range(args.runs):
        # 1. the floor: one timed run inside its own process, after a warm-up run.
        _, peak, out = run_process([py, here, "floor", features, args.model, "1"], env)
        floor = json.loads(out)
        floor_times += floor["times"]
        floor_rss.append(peak)
        # 2. sherpa-onnx
        if sherpa_dir:
            wall, peak, out = run_process([py, here, "sherpa", sherpa_dir, args.audio], env)
            result = json.loads(out)
            sherpa["decodes"].append(result["decode"])
            sherpa["walls"].append(wall)
            sherpa["rss"].append(peak)
            sherpa["text"] = result["text"]
        # 3.-6. the CLI and the element, whole processes.
        for label, argv, text_file in cases:
            wall, peak, out = run_process(argv, env)
            m = measured[label]
            m["walls"].append(wall)
            m["rss"].append(peak)
            m["text"] = out
            if text_file:
                with open(text_file) as f:
                    m["text"] = f.read()
        progress(f"round {round_ + 1}/{args.runs}: floor {floor_times[-1]:.2f} s, "
                 + ", ".join(f"{label} {measured[label]['walls'][-1]:.2f} s" for label, _, _ in cases))

    row("floor: one ORT run, whole file",
        "onnxruntime InferenceSession.run over [1, 64, T] features from "
        "target/release/quartznet-transcribe --offline --dump-features (session creation and "
        "a warm-up run excluded)",
        floor_times, floor_rss)
    texts.append(("floor (greedy)", floor["text"]))
    if sherpa_dir:
        row("sherpa-onnx offline, decode call", "OfflineRecognizer.from_nemo_ctc(num_threads=1, "
            "decoding_method='greedy_search'): create_stream + accept_waveform + decode_stream "
            "(model load excluded)", sherpa["decodes"], sherpa["rss"])
        row("sherpa-onnx offline, whole process", "python3 benches/compare.py sherpa: "
            "interpreter, imports, model load, WAV read, decode", sherpa["walls"], sherpa["rss"])
        texts.append(("sherpa-onnx", sherpa["text"]))
    for label, argv, _ in cases:
        shown = ["gst-launch-1.0" if a == args.gst_launch else a for a in argv]
        m = measured[label]
        row(label, " ".join(a if a == "!" else shlex.quote(a) for a in shown), m["walls"], m["rss"])
        texts.append((label, m["text"]))

    # ---- report
    f0 = rows[0][2]
    nproc = os.cpu_count()
    print(f"quartznetstt comparison bench ({datetime.date.today().isoformat()}, commit {args.commit})")
    print(f"machine: {nproc} CPUs ({len(os.sched_getaffinity(0))} usable), {cpu_model()}")
    print(f"audio: {args.audio_label}, {audio_s:.1f} s; model: {args.model_label}")
    print(f"one thread everywhere: ONNX Runtime intra-op threads = 1 (element threads=1, CLI "
          f"--threads 1, sherpa num_threads=1, floor intra_op_num_threads=1)")
    print(f"floor and CLI/element: ONNX Runtime {floor['ort']}"
          + (f"; sherpa-onnx {sherpa_version} (its own ONNX Runtime {ort_in_sherpa}, its own "
             "fbank frontend: speed only)" if sherpa_version else ""))
    print(f"each row: median of {args.runs} round(s), each round running every row once in turn; "
          "wall seconds; peak RSS is the process's (max over rounds); the floor runs after one "
          "untimed warm-up in its process")
    print()
    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  {'seconds':>8}  {'x floor':>8}  {'x realtime':>10}  {'RSS MB':>7}")
    for label, _, seconds, rss, _ in rows:
        print(f"{label:<{width}}  {seconds:>8.2f}  {seconds / f0:>8.2f}  "
              f"{seconds / audio_s:>10.4f}  {rss:>7.0f}")
    print()
    print(f"what each row times (AUDIO = the audio above, MODEL = {args.model_label}):")
    for label, command, *_ in rows:
        command = command.replace(args.audio, "AUDIO").replace(args.model, "MODEL")
        command = command.replace(args.tmp + "/", "$TMP/").replace(args.repo + "/", "")
        print(f"  {label}: {command}")
    print()
    print("transcripts (first 60 characters):")
    for label, text in texts:
        print(f"  {label:<{width}}  {first(text)}")
    cli_greedy = dict(texts).get("CLI offline, greedy", "")
    same = " ".join(floor["text"].split()) == " ".join(cli_greedy.split())
    print(f"floor's greedy text {'equals' if same else 'DIFFERS from'} the CLI's offline greedy text")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("floor")
    p.add_argument("features")
    p.add_argument("model")
    p.add_argument("runs", type=int)
    p = sub.add_parser("sherpa-prepare")
    p.add_argument("model")
    p.add_argument("sidecar")
    p.add_argument("dir")
    p = sub.add_parser("sherpa")
    p.add_argument("dir")
    p.add_argument("audio")
    p = sub.add_parser("bench")
    p.add_argument("--audio", required=True)
    p.add_argument("--audio-label", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--model-label", required=True)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--cli", required=True)
    p.add_argument("--gst-launch", required=True)
    p.add_argument("--tmp", required=True)
    p.add_argument("--repo", required=True)
    p.add_argument("--commit", default="?")
    p.add_argument("--no-sherpa", action="store_true")
    args = parser.parse_args()
    {"floor": cmd_floor, "sherpa-prepare": cmd_sherpa_prepare, "sherpa": cmd_sherpa,
     "bench": cmd_bench}[args.cmd](args)


if __name__ == "__main__":
    main()

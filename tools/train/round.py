#!/usr/bin/env python3
"""One training round of the bundled model: prepare here -> one device call -> finish here.
Called by tools/train/round.sh (see tools/train/README.md, "A training round").

  round.sh prepare [--data data] [--split]         data + wheels + shipped weights, packed under 64 MiB
  round.sh minutes BUDGET_LEFT_S [--warm]          the trainer's --minutes for the device call
  round.sh finish DIR                              .nemo, ONNX, evaluation, replace-if-better
  round.sh smoke                                   all of it on CPU, small, into a temp dir

prepare/finish run with any python3 (standard library); the heavy steps run in the venvs:
NeMo 3.0 (/opt/venvs/nemo3: to_nemo.py, export_nemo.py, shipped_weights.py) and the Rust client
(target/release/quartznet-transcribe, built if missing) for tools/evaluate.py.
"""
import argparse
import datetime
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NEMO_PY = os.environ.get("NEMO_PY", "/opt/venvs/nemo3/bin/python")
CARRY = [".devdata", ".whl", ".round"]
CARRY_SPLIT_A = [".devdata"]  # first call of a two-call carry: data only
CARRY_MIB = 64.0
START_S = 180   # a cold device machine: start-up counted against the budget (2-3 min observed)
RETURN_S = 45   # pip + interpreter start (~10 s) + files back + margin
REAL_DEV = os.path.join(ROOT, "eval", "real-dev")
CONFIG = "tools/configs/quartznet_5x5.yaml"


def sh(cmd, **kw):
    print("+ " + (cmd if isinstance(cmd, str) else " ".join(cmd)), flush=True)
    return subprocess.run(cmd, shell=isinstance(cmd, str), check=True, cwd=kw.pop("cwd", ROOT), **kw)


def tar_bytes(path):
    """What a folder costs as a tar stream (512-byte headers, 512-byte padding): the carry measure."""
    tot = 1024
    for dp, dn, fs in os.walk(path):
        tot += 512 * (len(dn) + 1)
        for f in fs:
            tot += 512 + -(-os.path.getsize(os.path.join(dp, f)) // 512) * 512
    return tot


def manifest_hours(path):
    if not os.path.exists(path):
        return 0.0, 0
    rows = [json.loads(l) for l in open(path) if l.strip()]
    return sum(r.get("duration", 0) for r in rows) / 3600, len(rows)


def nice(cmd):
    return ["nice", "-n", "10"] + cmd


# ------------------------------------------------------------------------------------ prepare
def prepare(a):
    t0 = time.time()
    data = os.path.abspath(a.data)
    hours, n = manifest_hours(os.path.join(data, "train_manifest.json"))
    if n == 0:
        print(f"prepare: no dataset in {data}: generating {a.hours} h (tools/data/make_dataset.sh)")
        sh(nice(["bash", "tools/data/make_dataset.sh", data, str(a.hours)]))
        hours, n = manifest_hours(os.path.join(data, "train_manifest.json"))
    print(f"prepare: dataset {data}: {n} training clips, {hours:.2f} h")
    if hours < 0.9 * a.hours and not a.smoke:
        print(f"prepare: WARNING: {hours:.2f} h < the {a.hours} h a round should carry; regenerate with "
              f"`bash tools/data/make_dataset.sh DIR {a.hours}` (not done automatically: it replaces DIR's audio)")
    if not glob.glob(os.path.join(ROOT, ".whl", "soundfile-*.whl")):
        sh(nice(["bash", "tools/train/fetch_wheels.sh"]))
    rnd = os.path.join(ROOT, ".round")
    shutil.rmtree(rnd, ignore_errors=True)
    os.makedirs(rnd)
    # the shipped model's weights, checked against models/quartznet-en.onnx
    sh(nice([NEMO_PY, "tools/train/shipped_weights.py", "--out", os.path.join(rnd, "init.pt"), "--dtype", "fp16"]
            + (["--nemo", a.nemo] if a.nemo else [])))
    cur = os.path.join(ROOT, "models", "training", "CURRENT")
    if os.path.exists(cur):
        toks = open(cur).read().split()
        if len(toks) > 1 and os.path.exists(os.path.join(ROOT, "models", "training", toks[1])):
            shutil.copyfile(os.path.join(ROOT, "models", "training", toks[1]), os.path.join(rnd, "optim_state.pt"))
            print(f"prepare: optimiser state {toks[1]} -> .round/optim_state.pt")
    with open(os.path.join(rnd, "ROUND.json"), "w") as f:
        json.dump({"prepared": datetime.datetime.now().isoformat(timespec="seconds"), "data": data,
                   "git": subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                         text=True).stdout.strip()}, f)
    fixed = tar_bytes(os.path.join(ROOT, ".whl")) + tar_bytes(rnd)
    cap = (a.carry_mib * 2**20 - fixed) / 2**20 - a.margin_mib
    if a.max_data_mib:
        cap = min(cap, a.max_data_mib)
    print(f"prepare: wheels + weights {fixed / 2**20:.2f} MiB -> {cap:.2f} MiB left for the data bundle")
    env = dict(os.environ)
    if a.smoke:
        env["PACK_ARGS"] = "--max-eval 20"
    sh(nice(["bash", "tools/data/pack.sh", data, f"{cap:.2f}"]), env=env)
    shutil.rmtree(os.path.join(ROOT, ".devdata_b"), ignore_errors=True)
    if a.split:
        # second call's carry: more training clips (none of .devdata's), no evaluation sets
        cap_b = (a.carry_mib - a.margin_mib)
        sh(nice(["python3", "tools/data/pack.py", "encode", "--data", data, "--dest", os.path.join(ROOT, ".devdata_b"),
                 "--max-mib", f"{cap_b:.2f}", "--exclude-bundle", os.path.join(ROOT, ".devdata"), "--train-only"]))
    sizes = {p: tar_bytes(os.path.join(ROOT, p)) / 2**20 for p in CARRY + [".devdata_b"] if os.path.exists(os.path.join(ROOT, p))}
    main_carry = sum(v for k, v in sizes.items() if k in CARRY)
    print("prepare: carry sizes (tar measure, MiB): " + ", ".join(f"{k} {v:.2f}" for k, v in sizes.items())
          + f"; the training call carries {main_carry:.2f} MiB of {a.carry_mib:g}")
    if main_carry > a.carry_mib:
        sys.exit("prepare: the carry is over the limit")
    bh = {}
    for b in (".devdata", ".devdata_b"):
        h, k = manifest_hours(os.path.join(ROOT, b, "train_manifest.json"))
        if k:
            bh[b] = (k, h)
    print("prepare: training data carried: " + ", ".join(f"{b} {k} clips {h:.2f} h" for b, (k, h) in bh.items()))
    print(f"prepare: done in {time.time() - t0:.0f} s")
    print_device_call(a.split)


def minutes_for(budget_left_s, warm=False):
    m = (budget_left_s - (0 if warm else START_S) - RETURN_S) / 60.0
    return max(0.0, min(9.0, int(m * 10) / 10.0))


def print_device_call(split=False, budget=900):
    m = minutes_for(budget)
    print("\nDEVICE CALL (agent with the `run` tool; check `status` first: budget_left_s, warm):")
    if split:
        print("  call 1 (a warm machine keeps it): run(command=\"du -sh .devdata\", carry=[\".devdata\"], timeout_s=120)")
        print("  call 2: carry=[\".devdata_b\", \".whl\", \".round\"] (NOT .devdata: carrying it again would replace the copy)")
    print(f"  run(command=\"bash tools/train/device_round.sh {m}\", carry={json.dumps(CARRY if not split else ['.devdata_b', '.whl', '.round'])}, timeout_s=600)")
    print(f"  MINUTES = `tools/train/round.sh minutes BUDGET_LEFT_S [--warm]` ({m} for a cold machine with {budget} s left)")
    print("then: tools/train/round.sh finish FILES_AT")


# ------------------------------------------------------------------------------------ finish
def parse_eval(text):
    """tools/evaluate.py table -> {(set, mode): (utts, words, wer%, cer%)}."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(\S.*?)\s+(offline|streaming|file)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)", line)
        if m:
            out[(m.group(1).strip(), m.group(2))] = (int(m.group(3)), int(m.group(4)), float(m.group(5)),
                                                      float(m.group(6)))
    return out


def subset_sets(sets, n, work):
    """The first n clips of each set (manifest or real-dev-style folder) in `work` (smoke runs)."""
    out = []
    for s in sets:
        name = os.path.basename(os.path.normpath(s))
        if os.path.isdir(s):
            d = os.path.join(work, "sets", name)
            os.makedirs(d, exist_ok=True)
            rows = [l for l in open(os.path.join(s, "manifest.tsv")) if l.strip()][:n]
            with open(os.path.join(d, "manifest.tsv"), "w") as f:
                for l in rows:
                    fn = l.split("\t")[0]
                    dst = os.path.join(d, fn)
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    if not os.path.exists(dst):
                        os.symlink(os.path.join(s, fn), dst)
                    f.write(l)
            out.append(d)
        else:
            d = os.path.join(work, "sets")
            os.makedirs(d, exist_ok=True)
            p = os.path.join(d, name)
            with open(p, "w") as f:
                f.writelines([l for l in open(s) if l.strip()][:n])
            out.append(p)
    return out


def binary():
    b = os.environ.get("QUARTZNET_TRANSCRIBE") or os.path.join(ROOT, "target", "release", "quartznet-transcribe")
    if not os.path.exists(b):
        sh(nice(["cargo", "build", "--release", "--locked", "-p", "quartznet-transcribe"]))
    return b


def next_run_index(models_dir):
    idx = [int(m.group(1)) for f in os.listdir(os.path.join(models_dir, "training"))
           for m in [re.match(r"run(\d+)-", f)] if m]
    return max(idx, default=0) + 1


def history_row(date, summ, evals, sets_names, cand_json):
    d = summ.get("data", {})
    final = summ.get("final") or {}
    held, held2, real = sets_names

    def w(key, mode="offline"):
        v = evals.get((key, mode))
        return f"{v[2]:.1f} %" if v else "-"
    dev_src = summ.get("best") if summ.get("_used") == "best" else final
    return (f"| {date} | run{cand_json['run']} | {summ.get('total_s', 0) / 60:.1f} | {summ.get('steps', 0):,} "
            f"(+{summ.get('steps_before', 0):,}) | {summ.get('audio_seconds_trained', 0) / 3600:.0f} | "
            f"{summ.get('throughput_audio_s_per_s', 0):,.0f} | {d.get('train_hours', 0):.2f} | "
            f"{100 * dev_src.get('wer', float('nan')):.1f} / {100 * dev_src.get('cer', float('nan')):.1f} % | "
            f"{w(held)} | {w(held2)} | {w(real)} |")


HISTORY_HEAD = ("| date | run | device min (trainer) | steps (+before) | audio-h trained | audio-s/s | train h | "
                "dev WER / CER (greedy, trainer) | held-out slt WER | held-out 2 WER | real-dev WER |")


def append_history(card, row):
    s = open(card).read()
    marker = "<!-- history rows: tools/train/round.py appends here -->"
    if marker not in s:
        s += ("\n## Training history (one row per shipped round)\n\n"
              "WER: default decoding (beam + LM), offline, `tools/evaluate.py`; dev: the trainer's greedy numbers. "
              "`round.sh finish` appends a row only when the held-out WER improves.\n\n"
              f"{HISTORY_HEAD}\n|---|---|---|---|---|---|---|---|---|---|---|\n{marker}\n")
    s = s.replace(marker, row + "\n" + marker)
    with open(card, "w") as f:
        f.write(s)


def finish(a):
    t0 = time.time()
    D = os.path.abspath(a.dir)
    models = os.path.abspath(a.models_dir)
    summ = json.load(open(os.path.join(D, "summary.json")))
    print(f"finish: {D}: status {summ.get('status')}, {summ.get('steps')} steps, final dev WER "
          f"{(summ.get('final') or {}).get('wer')}")
    work = os.path.abspath(a.work or tempfile.mkdtemp(prefix="round-finish-"))
    os.makedirs(work, exist_ok=True)
    run = next_run_index(models)
    if os.path.exists(os.path.join(D, "best_weights_fp16.pt")):
        weights, used = [os.path.join(D, "best_weights_fp16.pt")], "best"  # beat the final one on dev
    else:
        weights, used = [os.path.join(D, "model_weights.part1.pt"), os.path.join(D, "model_weights.part2.pt")], "final"
    summ["_used"] = used
    nemo = a.nemo_out or f"/opt/models/quartznet5x5-tts-run{run}.nemo"
    bundle = os.path.join(ROOT, ".devdata")
    sh(nice([NEMO_PY, "tools/train/to_nemo.py", "--weights", *weights, "--config", CONFIG, "--out", nemo,
             "--json", os.path.join(work, "to_nemo.json"), "--check", str(a.check)]
            + (["--bundle", bundle] if os.path.isdir(bundle) else [])))
    cand = os.path.join(work, "candidate", "quartznet-en.onnx")
    os.makedirs(os.path.dirname(cand), exist_ok=True)
    lm = os.path.join(models, "quartznet-en.arpa.gz")
    if os.path.exists(lm) and not os.path.exists(os.path.join(os.path.dirname(cand), "quartznet-en.arpa.gz")):
        os.symlink(lm, os.path.join(os.path.dirname(cand), "quartznet-en.arpa.gz"))
    d = summ.get("data", {})
    desc = (f"QuartzNet 5x5 (6,713,181 parameters), English characters, trained here on "
            f"{d.get('train_hours', 0):.1f} h of synthetic (TTS) speech; round run{run}: "
            f"{summ.get('steps', 0):,} more steps ({summ.get('total_s', 0) / 60:.1f} min on one "
            f"{summ.get('device_name', 'GPU')}) from the previous bundled model; see models/MODEL_CARD.md.")
    sh(nice([NEMO_PY, "tools/export_nemo.py", nemo, "-o", cand, "--pad-mode", "zeros",
             "--language-model", "quartznet-en.arpa.gz", "--description", desc]))
    # evaluation: held-out voice(s) + real-dev, offline and streaming, candidate and current model
    data = a.data
    sets = [os.path.join(data, "heldout_manifest.json")]
    h2 = os.path.join(data, "heldout2_manifest.json")
    if os.path.exists(h2):
        sets.append(h2)
    if os.path.isdir(a.real_dev):
        sets.append(a.real_dev)
    if a.max_clips:
        sets = subset_sets(sets, a.max_clips, work)
    names = [os.path.basename(os.path.normpath(s)) for s in sets]
    held = names[0]
    held2 = next((n for n in names if n.startswith("heldout2")), None)
    real = next((n for n in names if "real" in n), None)
    b = binary()
    res = {}
    for tag, model in (("candidate", cand), ("current", os.path.join(models, "quartznet-en.onnx"))):
        p = subprocess.run(nice(["python3", "tools/evaluate.py", "--binary", b, "--model", model, "--modes", a.modes]
                                + sets), cwd=ROOT, capture_output=True, text=True)
        print(f"--- {tag}: {model}\n{p.stdout}{p.stderr[-2000:]}")
        if p.returncode:
            sys.exit(f"finish: evaluate.py failed for the {tag} model")
        res[tag] = parse_eval(p.stdout)
    c, o = res["candidate"].get((held, "offline")), res["current"].get((held, "offline"))
    better = c is not None and o is not None and c[2] < o[2]
    verdict = {"run": run, "candidate_heldout_wer": c and c[2], "current_heldout_wer": o and o[2],
               "replaced": bool(better and not a.no_replace), "weights_used": used, "nemo": nemo,
               "candidate_onnx": cand, "eval": {t: {f"{k[0]} {k[1]}": v for k, v in r.items()} for t, r in res.items()}}
    print(f"finish: held-out ({held}) offline WER: candidate {c and c[2]} % vs current {o and o[2]} % -> "
          f"{'BETTER' if better else 'not better'}")
    verdict["better"] = better
    if a.force_replace and not better:  # smoke runs: exercise the replace path (on a temp copy of models/)
        print("finish: --force-replace: replacing although not better (testing only)")
        better = True
        verdict["replaced"] = not a.no_replace
    if better and not a.no_replace:
        for ext in (".onnx", ".json"):
            shutil.copyfile(cand[:-5] + ext, os.path.join(models, "quartznet-en" + ext))
        tr = os.path.join(models, "training")
        shutil.copyfile(os.path.join(D, "summary.json"), os.path.join(tr, f"run{run}-summary.json"))
        shutil.copyfile(os.path.join(D, "train_log.txt"), os.path.join(tr, f"run{run}-train_log.txt"))
        # the shipped weights for the next round (fp16, 13 MiB) + the optimiser's second moments
        sh([NEMO_PY, "tools/train/shipped_weights.py", "--onnx", os.path.join(models, "quartznet-en.onnx"),
            "--nemo", nemo, "--pt", "--no-onnx-unfold", "--out", os.path.join(tr, f"run{run}-weights-fp16.pt")])
        cur = f"run{run}-weights-fp16.pt"
        if os.path.exists(os.path.join(D, "optim_state.pt")) and used == "final":
            shutil.copyfile(os.path.join(D, "optim_state.pt"), os.path.join(tr, f"run{run}-optim_state.pt"))
            cur += f" run{run}-optim_state.pt"
        with open(os.path.join(tr, "CURRENT"), "w") as f:
            f.write(cur + "\n")
        date = a.date or datetime.date.today().isoformat()
        append_history(os.path.join(models, "MODEL_CARD.md"),
                       history_row(date, summ, res["candidate"], (held, held2, real), verdict))
        print(f"finish: REPLACED {models}/quartznet-en.onnx (+json); added run{run} files to {tr}, CURRENT, "
              f"and a history row to {models}/MODEL_CARD.md. Review and commit:\n"
              f"  git add models/ && git commit -m 'model: run{run} ...'")
    with open(os.path.join(work, "finish.json"), "w") as f:
        json.dump(verdict, f, indent=1)
    print(f"finish: done in {time.time() - t0:.0f} s; details in {work}/finish.json")
    return verdict


# ------------------------------------------------------------------------------------ smoke
def smoke(a):
    """prepare (small) -> the device script on CPU with the GPU machine's missing packages blocked ->
    finish into a temp dir, on a temp copy of models/ (the shipped model is never touched)."""
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix="round-smoke-")
    stamp = {}
    # 1. prepare, small: a 2 MiB data bundle (the real pack/verify path)
    pa = argparse.Namespace(data=a.data, hours=0.2, smoke=True, nemo=None, carry_mib=CARRY_MIB, margin_mib=0.5,
                            max_data_mib=a.data_mib, split=False)
    prepare(pa)
    stamp["prepare"] = time.time() - t0
    # 2. the device command, locally: CPU, blocked imports, wheels from a --target install like there
    out = os.path.join(tmp, "out")
    os.makedirs(out)
    site = os.path.join(tmp, "site")
    # the carried soundfile wheel (what decodes the bundle there); cffi's wheel is for the device's
    # CPython 3.12, so the venv's own cffi is used here
    sh([NEMO_PY, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--target", site]
       + [w for w in glob.glob(os.path.join(ROOT, ".whl", "*.whl")) if not os.path.basename(w).startswith("cffi-")])
    env = dict(os.environ, OUT=out, PYTHON=NEMO_PY, SKIP_PIP="1",
               PYTHONPATH=os.path.join(HERE, "smoke_site") + ":" + site,
               EXTRA_ARGS=f"--eval-every-s 20 --profile 3 --batch-seconds 30 --threads 2")
    t1 = time.time()
    sh(nice(["bash", "tools/train/device_round.sh", str(a.minutes)]), env=env)
    stamp["device"] = time.time() - t1
    summ = json.load(open(os.path.join(out, "summary.json")))
    assert summ["status"] == "done", summ["status"]
    assert summ.get("steps_before", 0) >= 0 and os.path.exists(os.path.join(out, "optim_state.pt"))
    # 3. finish on a temp copy of models/ (compare-and-replace exercised there)
    t2 = time.time()
    models = os.path.join(tmp, "models")
    shutil.copytree(os.path.join(ROOT, "models"), models)
    before = open(os.path.join(ROOT, "models", "quartznet-en.onnx"), "rb").read()
    fa = argparse.Namespace(dir=out, models_dir=models, work=os.path.join(tmp, "finish"),
                            nemo_out=os.path.join(tmp, "smoke.nemo"), check=8, data=a.data, real_dev=REAL_DEV,
                            max_clips=a.eval_clips, modes="offline,streaming", no_replace=False, date=None,
                            force_replace=True)
    v = finish(fa)
    stamp["finish"] = time.time() - t2
    assert open(os.path.join(ROOT, "models", "quartznet-en.onnx"), "rb").read() == before, "shipped model changed!"
    # the replace path ran on the temp copy: new ONNX, run files, CURRENT, a history row
    assert v["replaced"]
    tr = os.path.join(models, "training")
    assert open(os.path.join(models, "quartznet-en.onnx"), "rb").read() != before
    assert os.path.exists(os.path.join(tr, f"run{v['run']}-weights-fp16.pt"))
    assert open(os.path.join(tr, "CURRENT")).read().startswith(f"run{v['run']}-weights-fp16.pt run{v['run']}-optim_state.pt")
    assert f"| run{v['run']} |" in open(os.path.join(models, "MODEL_CARD.md")).read()
    print(f"SMOKE OK in {time.time() - t0:.0f} s ({', '.join(f'{k} {s:.0f} s' for k, s in stamp.items())}); "
          f"candidate held-out WER {v['candidate_heldout_wer']} vs current {v['current_heldout_wer']} "
          f"(the replace path exercised on a temp copy of models/); {tmp}")
    if not a.keep:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--data", default=os.path.join(ROOT, "data"))
    p.add_argument("--hours", type=float, default=8.0, help="generate this much if the data dir is empty")
    p.add_argument("--nemo", default=None, help="the shipped .nemo (default /opt/models/quartznet5x5-tts.nemo)")
    p.add_argument("--carry-mib", type=float, default=CARRY_MIB)
    p.add_argument("--margin-mib", type=float, default=0.5)
    p.add_argument("--max-data-mib", type=float, default=0)
    p.add_argument("--split", action="store_true", help="also pack .devdata_b for a second call to a warm machine")
    p.add_argument("--smoke", action="store_true")
    p = sub.add_parser("minutes")
    p.add_argument("budget_left_s", type=float)
    p.add_argument("--warm", action="store_true")
    p = sub.add_parser("finish")
    p.add_argument("dir")
    p.add_argument("--models-dir", default=os.path.join(ROOT, "models"))
    p.add_argument("--work", default=None)
    p.add_argument("--nemo-out", default=None)
    p.add_argument("--check", type=int, default=100)
    p.add_argument("--data", default=os.path.join(ROOT, "data"))
    p.add_argument("--real-dev", default=REAL_DEV)
    p.add_argument("--max-clips", type=int, default=0)
    p.add_argument("--modes", default="offline,streaming")
    p.add_argument("--no-replace", action="store_true")
    p.add_argument("--force-replace", action="store_true", help="testing only: replace even if not better")
    p.add_argument("--date", default=None)
    p = sub.add_parser("smoke")
    p.add_argument("--data", default=os.path.join(ROOT, "data"))
    p.add_argument("--minutes", type=float, default=1.0)
    p.add_argument("--data-mib", type=float, default=3.0)
    p.add_argument("--eval-clips", type=int, default=6)
    p.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if a.cmd == "prepare":
        prepare(a)
    elif a.cmd == "minutes":
        m = minutes_for(a.budget_left_s, a.warm)
        if m < 2:
            print(f"{m} (under 2 minutes of training: not worth a round)", file=sys.stderr)
        print(m)
    elif a.cmd == "finish":
        finish(a)
    else:
        smoke(a)


if __name__ == "__main__":
    main()

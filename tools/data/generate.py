# SPDX-License-Identifier: MPL-2.0
"""Render the synthetic English training set: several TTS engines and voices + sox augmentation.

    python generate.py --sentences data/sentences.jsonl --out data [--hours 8] [--jobs 2]

Writes (all paths absolute, NeMo manifest lines {"audio_filepath", "duration", "text"}):
  train/*.wav   train_manifest.json      training voices, ~HOURS of audio, 16 kHz mono S16
  dev/*.wav     dev_manifest.json        ~200 utts, training voices, sentences not in train
  heldout_slt/*.wav      heldout_manifest.json      flite "slt", clean; voice never in train/dev
  heldout_slt_aug/*.wav  heldout_aug_manifest.json  the same utterances, augmented
  heldout2_ked/*.wav     heldout2_manifest.json     festival "ked_diphone", clean, the first held-out
                         sentences; a second voice never in train/dev/babble (issue 14)
  *_meta.jsonl  engine/voice/augmentation of each utterance (for stats and debugging)
  noise/        noise beds (sox synth white/pink/brown; babble from training voices)

Reproducible: every random choice is drawn up front in the main process from one seeded RNG, so
the result does not depend on how the worker pool schedules jobs. sox runs with -R (repeatable).
"""
import argparse
import collections
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool

import numpy as np
import soundfile as sf

SR = 16000

# ------------------------------------------------------------------------------------ voices
ESPEAK_LANGS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
                "en-029", "en-us-nyc"]
# espeak-ng voice variants; robotic/whisper/novelty ones (Demonic, croak, whisper, robosoft...) are
# left out because nothing like them is in real speech.
ESPEAK_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
                   "klatt", "klatt2", "klatt3", "klatt4", "Alex", "Andy", "Annie", "Denis", "Gene",
                   "Jacky", "Lee", "Michael", "Mike", "adam", "aunty", "belinda", "benjamin", "boris",
                   "caleb", "david", "ed", "edward", "grandma", "grandpa", "john", "linda", "max",
                   "norbert", "paul", "rob", "robert", "steph", "travis", "victor", "zac",
                   # issue 14: the rest of espeak-ng's human-sounding variants (not the robots,
                   # whisper, croak, announcer, fast)
                   "m8", "Alicia", "Andrea", "AnxiousAndy", "Diogo", "Gene2", "Henrique", "Hugo", "Marco", "Mario",
                   "Nguyen", "anika", "antonio", "edward2", "gustave", "iven", "iven2", "iven3", "iven4",
                   "klatt5", "klatt6", "marcelo", "michel", "miguel", "pablo", "pedro", "quincy", "sandro",
                   "shelby", "steph2", "steph3"]
# "slt" is the held-out voice: never used for training. "kal" is flite's 8 kHz diphone voice (the
# kal speaker at telephone bandwidth); "awb_time" is a talking clock (limited domain), unused.
FLITE_TRAIN = ["kal16", "awb", "rms", "kal"]
FLITE_F0 = {"kal16", "kal"}                    # diphone voices: intonation targets settable (not clustergen)
# "ked_diphone" is the SECOND held-out voice (issue 14): never in training, dev or babble.
# festvox us_slt_hts is the same speaker as slt: unused.
FESTIVAL = ["kal_diphone"]
HELDOUT2 = {"engine": "festival", "voice": "ked_diphone"}
HIBARI = ["heart"]                             # the only hibari voice inside the wheel (others download)

# Share of training hours per engine (the target mix).
ENGINE_SHARE = {"espeak": 0.35, "flite": 0.25, "festival": 0.15, "hibari": 0.25}
# Share of sentences per text source: prose (quotations, Bierce, KJV) before one-liners.
SOURCE_SHARE = {"gcide": 0.40, "fortune": 0.27, "kjv": 0.20, "devil": 0.13}


def draw_voice(rng, engine):
    # speaking styles (issue 14): slow/deliberate to fast, monotone to lively intonation, wider
    # pitch and speed ranges than the first data set
    if engine == "espeak":
        style = rng.choices(["normal", "slow", "fast"], [0.6, 0.2, 0.2])[0]
        speed = {"normal": rng.randint(140, 190), "slow": rng.randint(105, 140), "fast": rng.randint(190, 240)}[style]
        return {"engine": "espeak", "voice": f"{rng.choice(ESPEAK_LANGS)}+{rng.choice(ESPEAK_VARIANTS)}",
                "speed": speed, "pitch": rng.randint(20, 80), "gap": rng.choice([0, 0, 0, 1, 2, 3])}
    if engine == "flite":
        v = {"engine": "flite", "voice": rng.choice(FLITE_TRAIN), "stretch": round(rng.uniform(0.8, 1.3), 3)}
        if v["voice"] in FLITE_F0 and rng.random() < 0.7:
            v["f0"] = [rng.randint(80, 180), rng.randint(5, 45)]   # mean Hz, std Hz (monotone..lively)
        return v
    if engine == "festival":
        v = {"engine": "festival", "voice": rng.choice(FESTIVAL), "stretch": round(rng.uniform(0.8, 1.3), 3)}
        if rng.random() < 0.7:
            v["f0"] = [rng.randint(80, 180), rng.randint(5, 45)]
        return v
    if engine == "hibari":
        # the British G2P rules on the American voice give a second accent from the same model
        return {"engine": "hibari", "voice": "heart", "g2p": rng.choice(["us", "gb"]),
                "speed": round(rng.uniform(0.8, 1.3), 3), "seed": rng.randint(0, 2**31 - 1)}
    if engine == "slt":
        return {"engine": "flite", "voice": "slt", "stretch": round(rng.uniform(0.9, 1.1), 3)}
    if engine == "heldout2":
        return dict(HELDOUT2, stretch=round(rng.uniform(0.9, 1.1), 3))
    raise ValueError(engine)


def voice_name(v):
    if v["engine"] == "hibari":
        return f"hibari:{v['voice']}/{v['g2p']}"
    if v["engine"] == "espeak":
        return f"espeak:{v['voice']}"
    return f"{v['engine']}:{v['voice']}"


# ------------------------------------------------------------------------------ augmentation
def draw_aug(rng, n_babble, clean_p=0.2, force=False):
    """Random augmentation recipe. Probabilities: what a mix of read-speech recordings has."""
    a = {"pad": [round(rng.uniform(0.05, 0.4), 3), round(rng.uniform(0.05, 0.4), 3)]}
    if not force and rng.random() < clean_p:
        a["clean"] = True
        a["gain_db"] = round(rng.uniform(-12, -1), 2)   # peak level only
        return a
    if rng.random() < 0.5:
        a["speed"] = round(rng.uniform(0.9, 1.1), 3)
    if rng.random() < 0.4:
        a["pitch"] = rng.randint(-200, 200)
    if rng.random() < 0.4:  # reverberance, HF damping, room scale (%), stereo depth, pre-delay ms, wet dB
        a["reverb"] = [rng.randint(10, 90), rng.randint(10, 90), rng.randint(10, 100), 100,
                       rng.randint(0, 30), round(rng.uniform(-6, 0), 1)]
    if rng.random() < 0.65:
        kind = rng.choices(["white", "pink", "brown", "babble"], [0.2, 0.25, 0.2, 0.35])[0]
        # white noise covers the whole band, so at equal SNR it masks far more of the speech
        # spectrum than pink/brown/babble: keep it above 10 dB
        snr = rng.uniform(10 if kind == "white" else 5, 30)
        a["noise"] = {"kind": kind, "snr_db": round(snr, 1), "offset": rng.random(),
                      "track": rng.randrange(n_babble) if kind == "babble" else 0}
    if rng.random() < 0.3:  # microphone / loudspeaker colouration: 2-3 peaking filters + high-pass
        a["eq"] = {"hp": rng.randint(60, 300),
                   "peaks": [[rng.randint(150, 6500), round(rng.uniform(0.7, 3.0), 2), round(rng.uniform(-10, 8), 1)]
                             for _ in range(rng.randint(2, 3))]}
    r = rng.random()
    if r < 0.08:
        a["band"] = "tel"                                     # 300-3400 Hz telephone channel
    elif r < 0.18:
        a["band"] = int(rng.uniform(4000, 7000))              # lowpass (cheap mic / low-rate codec)
    elif r < 0.28:  # a real phone call: 8 kHz, a narrow-band codec (GSM full rate, AMR-NB, G.711 mu-law)
        a["phone"] = rng.choices(["gsm", "amr-nb", "ulaw"], [0.4, 0.35, 0.25])[0]
    elif r < 0.36:  # VoIP / messaging: Opus at a low bit rate
        a["opus_kbps"] = rng.choice([6, 8, 10, 12])
    if rng.random() < 0.05:  # an overdriven input: hard clipping of the loudest 1-8 % of samples
        a["clip_pct"] = round(rng.uniform(1, 8), 1)
    a["gain_db"] = round(rng.uniform(-20, 5), 2)              # relative to -20 dBFS RMS
    return a


# ------------------------------------------------------------------------------- rendering
_TMP = None
_HIBARI = {}


def _tmpdir():
    global _TMP
    if _TMP is None:
        base = "/dev/shm" if os.path.isdir("/dev/shm") else None
        _TMP = tempfile.mkdtemp(prefix="ttsgen_", dir=base)
    return _TMP


def tts(v, speak, path):
    """Render `speak` with voice v to the wav file `path` (engine's own rate)."""
    e = v["engine"]
    if e == "espeak":
        subprocess.run(["espeak-ng", "-v", v["voice"], "-s", str(v["speed"]), "-p", str(v["pitch"]),
                        "-g", str(v["gap"]), "-w", path, "--", speak], check=True, capture_output=True)
    elif e == "flite":
        f0 = ["--setf", f"int_f0_target_mean={v['f0'][0]}", "--setf", f"int_f0_target_stddev={v['f0'][1]}"] \
            if "f0" in v else []
        subprocess.run(["flite", "-voice", v["voice"], "--setf", f"duration_stretch={v['stretch']}"] + f0 +
                       ["-t", speak, "-o", path], check=True, capture_output=True)
    elif e == "festival":
        f0 = ["-eval", f"(set! int_lr_params '((target_f0_mean {v['f0'][0]}) (target_f0_std {v['f0'][1]}) "
                       f"(model_f0_mean 170) (model_f0_std 34)))"] if "f0" in v else []
        subprocess.run(["text2wave", "-eval", f"(voice_{v['voice']})",
                        "-eval", f"(Parameter.set 'Duration_Stretch {v['stretch']})"] + f0 + ["-o", path],
                       input=speak.encode(), check=True, capture_output=True)
    elif e == "hibari":
        from hibari import Hibari, write_wav
        if v["g2p"] not in _HIBARI:
            from hibari.g2p import G2P
            _HIBARI[v["g2p"]] = Hibari(voice=v["voice"], threads=1, g2p=G2P(british=v["g2p"] == "gb"))
        write_wav(path, _HIBARI[v["g2p"]](speak, speed=v["speed"], seed=v["seed"]))
    else:
        raise ValueError(e)


def sox_f32(inp, effects, in_raw=False):
    """Run sox -> float32 mono 16 kHz numpy. in_raw: inp is a float32 array fed on stdin."""
    cmd = ["sox", "-R", "-V1"]
    if in_raw:
        cmd += ["-t", "f32", "-r", str(SR), "-c", "1", "-"]
    else:
        cmd += [inp]
    cmd += ["-t", "f32", "-r", str(SR), "-c", "1", "-"] + effects
    p = subprocess.run(cmd, input=inp.astype(np.float32).tobytes() if in_raw else None,
                       capture_output=True, check=True)
    return np.frombuffer(p.stdout, dtype=np.float32).copy()


_NOISE = {}


def noise_bed(noise_dir, kind, track):
    key = (kind, track)
    if key not in _NOISE:
        name = f"babble_{track:02d}.wav" if kind == "babble" else f"{kind}.wav"
        _NOISE[key] = sf.read(os.path.join(noise_dir, name), dtype="float32")[0]
    return _NOISE[key]


def rms(x):
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-12))


def augment(wav_in, a, noise_dir):
    """TTS wav -> float32 16 kHz with recipe a. Order: speaker (speed, pitch) -> room (reverb) ->
    environment (noise) -> channel (band limit) -> level (gain), as in a real recording."""
    fx = ["norm", "-6"]                       # headroom so that reverb/pitch never clip in sox
    if "speed" in a:
        fx += ["speed", str(a["speed"])]
    if "pitch" in a:
        fx += ["pitch", str(a["pitch"])]
    if "reverb" in a:
        fx += ["reverb"] + [str(x) for x in a["reverb"]] + ["channels", "1"]
    fx += ["rate", "-h", str(SR), "pad", str(a["pad"][0]), str(a["pad"][1])]
    x = sox_f32(wav_in, fx)
    if a.get("clean"):
        return x * (10 ** (a["gain_db"] / 20) / max(1e-6, float(np.max(np.abs(x)))))
    x = x * (0.1 / rms(x))                     # speech at -20 dBFS RMS
    if "noise" in a:
        n = a["noise"]
        bed = noise_bed(noise_dir, n["kind"], n["track"])
        start = int(n["offset"] * max(1, len(bed) - len(x)))
        seg = np.resize(bed[start:start + len(x)], len(x))  # wraps if the bed is short
        # SNR against the speech RMS measured over the voiced part, not the padding
        speech_rms = rms(x[np.abs(x) > 0.01]) if np.any(np.abs(x) > 0.01) else rms(x)
        x = x + seg * (speech_rms / rms(seg) / (10 ** (n["snr_db"] / 20)))
    if "eq" in a:
        fx = ["highpass", str(a["eq"]["hp"])]
        for f, q, g in a["eq"]["peaks"]:
            fx += ["equalizer", str(f), f"{q}q", str(g)]
        y = sox_f32(x * 0.25, fx, in_raw=True)       # 12 dB of headroom for the boosts: sox never clips
        x = y * (0.1 / max(rms(y), 1e-6))            # back to -20 dBFS RMS (noise already in: SNR kept)
    if "band" in a:
        band = ["sinc", "300-3400"] if a["band"] == "tel" else ["sinc", f"-{a['band']}"]
        x = sox_f32(x, band, in_raw=True)
    if "phone" in a:
        x = codec_phone(x, a["phone"])
    if "opus_kbps" in a:
        x = codec_opus(x, a["opus_kbps"])
    if "clip_pct" in a:  # clip where the loudest clip_pct % of |x| begins (before the final gain)
        t = float(np.percentile(np.abs(x), 100 - a["clip_pct"]))
        x = np.clip(x, -t, t) * (0.1 / max(rms(np.clip(x, -t, t)), 1e-6))
    x = x * 10 ** (a["gain_db"] / 20)
    peak = float(np.max(np.abs(x)))
    if peak > 0.98:                            # louder than full scale: lower it instead of clipping
        x = x * (0.98 / peak)
    return x


def codec_phone(x, codec):
    """16 kHz float -> 8 kHz telephone codec (sox: gsm full rate, amr-nb, G.711 mu-law) -> 16 kHz.
    The 8 kHz resampling band-limits to < 4 kHz; the codec adds its own distortion."""
    d = _tmpdir()
    tag = f"{os.getpid()}_{time.time_ns()}"
    src, enc = os.path.join(d, f"ph_{tag}.f32"), os.path.join(d, f"ph_{tag}." + ("wav" if codec == "ulaw" else codec))
    try:
        # a telephone handset's band first (300-3400 Hz), then 8 kHz, codec, back to 16 kHz
        x = sox_f32(x, ["sinc", "300-3400", "norm", "-3"], in_raw=True)
        x.astype(np.float32).tofile(src)
        enc_fx = ["-e", "u-law", "-b", "8"] if codec == "ulaw" else []
        subprocess.run(["sox", "-R", "-V1", "-t", "f32", "-r", str(SR), "-c", "1", src, "-r", "8000", "-c", "1"]
                       + enc_fx + ["-t", "wav" if codec == "ulaw" else codec, enc], check=True, capture_output=True)
        y = sox_f32(enc, ["rate", "-h", str(SR)])
    finally:
        for p in (src, enc):
            if os.path.exists(p):
                os.unlink(p)
    y = y[: len(x)] if len(y) >= len(x) else np.pad(y, (0, len(x) - len(y)))
    return y * (0.1 / max(rms(y), 1e-6))


def codec_opus(x, kbps):
    """Opus at a low bit rate (opusenc/opusdec), the lag removed by the decoder's pre-skip."""
    d = _tmpdir()
    tag = f"{os.getpid()}_{time.time_ns()}"
    wav, op, dec = (os.path.join(d, f"op_{tag}.{e}") for e in ("wav", "opus", "dec.wav"))
    try:
        sf.write(wav, np.clip(x * 0.5 / max(float(np.max(np.abs(x))), 1e-6), -1, 1), SR, subtype="PCM_16")
        subprocess.run(["opusenc", "--quiet", "--bitrate", str(kbps), "--discard-comments", wav, op], check=True)
        subprocess.run(["opusdec", "--quiet", "--rate", str(SR), op, dec], check=True, capture_output=True)
        y = sf.read(dec, dtype="float32")[0]
    finally:
        for p in (wav, op, dec):
            if os.path.exists(p):
                os.unlink(p)
    if y.ndim > 1:
        y = y.mean(1)
    y = y[: len(x)] if len(y) >= len(x) else np.pad(y, (0, len(x) - len(y)))
    return y * (0.1 / max(rms(y), 1e-6))


def render_job(job):
    """One utterance: TTS -> augment -> 16-bit wav. Returns the manifest row or an error."""
    t0 = time.time()
    tmp = os.path.join(_tmpdir(), f"{job['id']}.wav")
    try:
        tts(job["voice"], job["speak"], tmp)
        tts_s = time.time() - t0
        if job["aug"] is None:
            x = sox_f32(tmp, ["rate", "-h", str(SR)])
        else:
            x = augment(tmp, job["aug"], job["noise_dir"])
        dur = len(x) / SR
        row = dict(job["meta"], id=job["id"], duration=round(dur, 3), tts_s=round(tts_s, 4),
                   total_s=round(time.time() - t0, 4))
        if not (job["min_s"] <= dur <= job["max_s"]):
            return dict(row, error=f"duration {dur:.2f}s out of range")
        if "raw_out" in job:
            sf.write(job["raw_out"], x, SR, subtype="FLOAT")
        else:
            sf.write(job["out"], np.clip(x, -1, 1), SR, subtype="PCM_16")
        return row
    except Exception as e:  # keep going: one bad sentence must not stop an hour-long run
        return dict(job["meta"], id=job["id"], error=repr(e)[:300])
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def run_jobs(jobs, n_workers, label):
    t0 = time.time()
    rows = []
    with Pool(n_workers) as pool:
        for i, r in enumerate(pool.imap_unordered(render_job, jobs, chunksize=4)):
            rows.append(r)
            if (i + 1) % 500 == 0:
                h = sum(x.get("duration", 0) for x in rows if "error" not in x) / 3600
                print(f"  {label}: {i + 1}/{len(jobs)} utts, {h:.2f} h, {time.time() - t0:.0f} s",
                      file=sys.stderr, flush=True)
    rows.sort(key=lambda r: r["id"])
    return rows


# ---------------------------------------------------------------------------------- noise
def make_noise(noise_dir, babble_sents, rng, n_workers, n_babble=12):
    """Noise beds: 60 s white/pink/brown from sox synth, and babble tracks of 4-6 overlapping
    training-voice talkers (never slt) for the cocktail-party case."""
    os.makedirs(noise_dir, exist_ok=True)
    for kind in ("white", "pink", "brown"):
        subprocess.run(["sox", "-R", "-n", "-r", str(SR), "-c", "1", "-b", "16",
                        os.path.join(noise_dir, f"{kind}.wav"), "synth", "60", f"{kind}noise", "vol", "0.5"],
                       check=True)
    # render 40 short talker clips, then sum random subsets into 20 s tracks
    jobs = []
    engines = ["espeak", "flite", "festival", "hibari"]
    for i, s in enumerate(babble_sents):
        v = draw_voice(rng, engines[i % 4])
        jobs.append({"id": f"babble_src_{i:03d}", "voice": v, "speak": s["speak"], "aug": None,
                     "noise_dir": noise_dir, "min_s": 0, "max_s": 1e9, "meta": {},
                     "raw_out": os.path.join(noise_dir, f"src_{i:03d}.wav")})
    rows = run_jobs(jobs, n_workers, "babble")
    clips = [sf.read(os.path.join(noise_dir, f"src_{i:03d}.wav"), dtype="float32")[0]
             for i, r in enumerate(rows) if "error" not in r]
    L = 20 * SR
    for t in range(n_babble):
        track = np.zeros(L, np.float32)
        for c in rng.sample(clips, rng.randint(4, 6)):
            c = np.tile(c, int(math.ceil(L / len(c))) + 1)
            off = rng.randrange(len(c) - L)
            seg = c[off:off + L]
            track += seg / rms(seg) * rng.uniform(0.5, 1.0)
        sf.write(os.path.join(noise_dir, f"babble_{t:02d}.wav"), track / np.max(np.abs(track)) * 0.9,
                 SR, subtype="PCM_16")
    for i in range(len(babble_sents)):
        p = os.path.join(noise_dir, f"src_{i:03d}.wav")
        if os.path.exists(p):
            os.unlink(p)
    return n_babble


# ---------------------------------------------------------------------------------- main
def pick_sentences(rows, rng):
    """Shuffle each source, then interleave them by SOURCE_SHARE, so any prefix has the mix."""
    by = collections.defaultdict(list)
    for r in rows:
        by[r["src"]].append(r)
    for k in sorted(by):
        rng.shuffle(by[k])
    out, taken = [], collections.Counter()
    srcs = sorted(SOURCE_SHARE)
    while any(by[s] for s in srcs):
        # the source furthest below its share goes next (deterministic, no randomness needed)
        s = min((s for s in srcs if by[s]), key=lambda s: taken[s] / SOURCE_SHARE[s])
        out.append(by[s].pop())
        taken[s] += 1
    return out


def est_seconds(text):
    """Rough TTS duration before rendering (~2.9 words/s + padding; calibrated on a full run), to plan hours per engine."""
    return len(text.split()) / 2.9 + 0.5


def write_manifest(rows, path, wav_dir):
    n, secs = 0, 0.0
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            if "error" in r:
                continue
            f.write(json.dumps({"audio_filepath": os.path.join(wav_dir, r["id"] + ".wav"),
                                "duration": r["duration"], "text": r["text"]}) + "\n")
            n += 1
            secs += r["duration"]
    with open(path.replace("_manifest.json", "_meta.jsonl"), "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    print(f"{os.path.basename(path)}: {n} utts, {secs / 3600:.2f} h", file=sys.stderr)
    return n, secs


def stats(rows, name):
    by_e, by_v, err = collections.Counter(), collections.Counter(), collections.Counter()
    tts_s, audio_s = collections.Counter(), collections.Counter()
    for r in rows:
        if "error" in r:
            err[r["error"][:40]] += 1
            continue
        by_e[r["engine"]] += r["duration"]
        by_v[r["voice_name"]] += r["duration"]
        tts_s[r["engine"]] += r["tts_s"]
        audio_s[r["engine"]] += r["duration"]
    lines = [f"## {name}", "engine hours xRT(TTS only)"]
    for e in sorted(by_e):
        lines.append(f"{e} {by_e[e] / 3600:.3f} {audio_s[e] / max(tts_s[e], 1e-9):.0f}x")
    lines.append("voice hours")
    lines += [f"{v} {s / 3600:.3f}" for v, s in sorted(by_v.items())]
    lines.append(f"errors/dropped: {sum(err.values())} {dict(err.most_common(5))}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sentences", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=20240611)
    ap.add_argument("--n-heldout", type=int, default=300)
    ap.add_argument("--n-dev", type=int, default=200)
    ap.add_argument("--n-heldout2", type=int, default=200,
                    help="clips of the second held-out voice (festival ked), on the first held-out sentences")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    out = os.path.abspath(args.out)
    rows = [json.loads(l) for l in open(args.sentences, encoding="utf-8")]
    order = pick_sentences(rows, rng)
    # Disjoint sentence splits: held-out slt, dev, babble sources, then training.
    held, dev, babble, pool = (order[:args.n_heldout], order[args.n_heldout:args.n_heldout + args.n_dev],
                               order[args.n_heldout + args.n_dev:args.n_heldout + args.n_dev + 40],
                               order[args.n_heldout + args.n_dev + 40:])
    with open(os.path.join(out, "splits.json"), "w") as f:   # which text went where (for audits)
        json.dump({"heldout": [r["text"] for r in held], "dev": [r["text"] for r in dev],
                   "babble": [r["text"] for r in babble]}, f, indent=0)
    noise_dir = os.path.join(out, "noise")
    n_babble = make_noise(noise_dir, babble, rng, args.jobs)

    # plan training: each sentence to the engine furthest below its share of the planned hours
    planned = collections.Counter()
    target = args.hours * 3600
    train_jobs = []
    for i, s in enumerate(pool):
        if sum(planned.values()) >= target:
            break
        est = est_seconds(s["text"])
        if est > 13.5:          # would likely end over 15 s once slowed down
            continue
        e = min(ENGINE_SHARE, key=lambda e: planned[e] / (ENGINE_SHARE[e] * target))
        planned[e] += est
        train_jobs.append((s, e))

    def mk(split, idx, s, v, aug, wav_dir):
        jid = f"{split}_{idx:06d}"
        return {"id": jid, "voice": v, "speak": s["speak"], "aug": aug, "noise_dir": noise_dir,
                "min_s": 1.0, "max_s": 15.0, "out": os.path.join(wav_dir, jid + ".wav"),
                "meta": {"text": s["text"], "src": s["src"],
                         "engine": {"slt": "flite-slt", HELDOUT2["voice"]: "festival-ked"}.get(v["voice"], v["engine"]),
                         "voice_name": voice_name(v), "voice_params": v, "aug": aug}}

    dirs = {k: os.path.join(out, k) for k in ("train", "dev", "heldout_slt", "heldout_slt_aug", "heldout2_ked")}
    for d in dirs.values():
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    jobs = {"train": [], "dev": [], "heldout_slt": [], "heldout_slt_aug": [], "heldout2_ked": []}
    for i, (s, e) in enumerate(train_jobs):
        jobs["train"].append(mk("train", i, s, draw_voice(rng, e), draw_aug(rng, n_babble), dirs["train"]))
    engines = list(ENGINE_SHARE)
    for i, s in enumerate(dev):
        e = rng.choices(engines, [ENGINE_SHARE[x] for x in engines])[0]
        jobs["dev"].append(mk("dev", i, s, draw_voice(rng, e), draw_aug(rng, n_babble), dirs["dev"]))
    for i, s in enumerate(held):
        v = draw_voice(rng, "slt")
        jobs["heldout_slt"].append(mk("heldout_slt", i, s, v, None, dirs["heldout_slt"]))
        jobs["heldout_slt_aug"].append(mk("heldout_slt_aug", i, s, v, draw_aug(rng, n_babble, force=True),
                                          dirs["heldout_slt_aug"]))
    # second held-out voice: festival ked (never in train/dev/babble), clean, reading the first
    # held-out sentences (texts never trained on and already excluded from the LM's text through
    # splits.json "heldout"); its own RNG, so the other sets' draws do not depend on it
    rng2 = random.Random(args.seed + 2)
    for i, s in enumerate(held[: args.n_heldout2]):
        jobs["heldout2_ked"].append(mk("heldout2_ked", i, s, draw_voice(rng2, "heldout2"), None, dirs["heldout2_ked"]))
    print(f"planned: {len(train_jobs)} train utts, est {sum(planned.values()) / 3600:.2f} h "
          f"{ {k: round(v / 3600, 2) for k, v in planned.items()} }", file=sys.stderr, flush=True)

    report = []
    names = {"train": "train_manifest.json", "dev": "dev_manifest.json",
             "heldout_slt": "heldout_manifest.json", "heldout_slt_aug": "heldout_aug_manifest.json",
             "heldout2_ked": "heldout2_manifest.json"}
    for split in ("heldout_slt", "heldout_slt_aug", "heldout2_ked", "dev", "train"):
        t0 = time.time()
        rs = run_jobs(jobs[split], args.jobs, split)
        n, secs = write_manifest(rs, os.path.join(out, names[split]), dirs[split])
        wall = time.time() - t0
        report.append(stats(rs, split) + f"\n{n} utts, {secs / 3600:.3f} h, wall {wall:.0f} s "
                      f"({secs / max(wall, 1e-9):.0f}x realtime with {args.jobs} workers, TTS+augmentation)")
    with open(os.path.join(out, "report.txt"), "w") as f:
        f.write("\n\n".join(report) + "\n")
    print("\n\n".join(report), file=sys.stderr)


if __name__ == "__main__":
    main()

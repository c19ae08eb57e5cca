# SPDX-License-Identifier: MPL-2.0
"""Put this folder first on PYTHONPATH to run the device command on this machine as the GPU machine
would: the packages it lacks (NeMo and its dependencies) cannot be imported (round.sh smoke).
A blocked top-level name gets a spec without origin whose loader raises ModuleNotFoundError, so
`import nemo` fails as if it were missing, and importlib.util.find_spec (torch._dynamo probes
optional packages with it) sees a spec without a location instead of raising."""
import importlib.abc
import importlib.machinery
import sys

BLOCKED = {"nemo", "omegaconf", "hydra", "librosa", "torchaudio", "lightning", "pytorch_lightning", "scipy",
           "onnx", "onnxruntime", "matplotlib", "sklearn"}


class _Missing(importlib.abc.Loader):
    def create_module(self, spec):
        raise ModuleNotFoundError(f"No module named {spec.name!r} (blocked: the GPU machine does not have it)",
                                  name=spec.name)

    def exec_module(self, module):  # never reached
        raise ModuleNotFoundError(module.__name__)


class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            return importlib.machinery.ModuleSpec(name, _Missing(), origin=None)
        return None


sys.meta_path.insert(0, _Blocker())

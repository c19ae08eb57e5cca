#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""Writes tools/nvidia_models.tsv: the CTC checkpoints NVIDIA publishes, with the download
locations NeMo itself uses (its models' `list_available_models()`), for get_nvidia_model.sh.

    /opt/venvs/nemo3/bin/python tools/list_nvidia_models.py > tools/nvidia_models.tsv

Columns: name, kind (char: character CTC; subword: SentencePiece CTC; hybrid: the CTC head of
a hybrid RNN-T/CTC model), url. NeMo 3.0 lists the sub-word and hybrid models; the character
models come from NeMo 2.4's list (3.0 dropped most of them from its list, the files are still
published); the Parakeet CTC models are published on Hugging Face only.
"""
import sys

# NeMo 2.4's EncDecCTCModel.list_available_models(): name -> path below the NGC models API.
CHARACTER = {
    "QuartzNet15x5Base-En": "nemospeechmodels/versions/1.0.0a5/files/QuartzNet15x5Base-En.nemo",
    **{
        n: f"nemo/{n}/versions/1.0.0rc1/files/{n}.nemo"
        for n in (
            "stt_en_quartznet15x5 stt_en_jasper10x5dr stt_ca_quartznet15x5 stt_it_quartznet15x5 "
            "stt_fr_quartznet15x5 stt_es_quartznet15x5 stt_de_quartznet15x5 stt_pl_quartznet15x5 "
            "stt_ru_quartznet15x5 stt_zh_citrinet_512"
        ).split()
    },
    "stt_zh_citrinet_1024_gamma_0_25": "nemo/stt_zh_citrinet_1024_gamma_0_25/versions/1.0.0/files/stt_zh_citrinet_1024_gamma_0_25.nemo",
}
NGC = "https://api.ngc.nvidia.com/v2/models/nvidia/"
PARAKEET = ("parakeet-ctc-0.6b", "parakeet-ctc-1.1b")


def main() -> None:
    from nemo.collections.asr.models import EncDecCTCModelBPE, EncDecHybridRNNTCTCBPEModel

    rows = [(name, "char", NGC + path) for name, path in CHARACTER.items()]
    for cls, kind in ((EncDecCTCModelBPE, "subword"), (EncDecHybridRNNTCTCBPEModel, "hybrid")):
        for model in cls.list_available_models() or []:
            rows.append((model.pretrained_model_name, kind, model.location))
    for name in PARAKEET:
        rows.append((name, "subword", f"https://huggingface.co/nvidia/{name}/resolve/main/{name}.nemo"))
    print("# name\tkind\turl  (tools/list_nvidia_models.py, NeMo " + __import__("nemo").__version__ + ")")
    seen = set()
    for name, kind, url in rows:
        if name not in seen:
            seen.add(name)
            print(f"{name}\t{kind}\t{url}")


if __name__ == "__main__":
    sys.exit(main())

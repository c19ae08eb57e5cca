"""Pure-PyTorch QuartzNet (NeMo EncDecCTCModel layout) - no NeMo, no omegaconf.

The module tree mirrors NeMo's so that ``state_dict()`` keys and shapes are identical to those of
``nemo.collections.asr.models.EncDecCTCModel`` built from the same YAML config:

    preprocessor.featurizer.{window, fb}                  (features.FilterbankFeatures buffers)
    encoder.encoder.<block>.mconv.<i>.conv.weight         MaskedConv1d (depthwise / pointwise)
    encoder.encoder.<block>.mconv.<i>.{weight,bias,running_mean,running_var,num_batches_tracked}
    encoder.encoder.<block>.res.0.0.conv.weight / res.0.1.*   residual 1x1 conv + BN
    decoder.decoder_layers.0.{weight,bias}                 1x1 conv to len(labels)+1 classes

Behaviour follows NeMo's JasperBlock / MaskedConv1d / ConvASREncoder / ConvASRDecoder
(nemo/collections/asr/parts/submodules/jasper.py, nemo/collections/asr/modules/conv_asr.py):

* every MaskedConv1d zeroes its input past the current lengths before the conv (conv_mask: true);
  lengths change only at strided convs: (L + 2p - d(k-1) - 1) // s + 1;
* a sub-block is [depthwise conv k, pointwise conv 1x1] (separable) or [conv k], then BatchNorm
  (eps 1e-3, momentum 0.1), then activation + dropout, except the last sub-block of a block,
  whose activation + dropout come after the residual add (``mout``);
* residual: 1x1 conv + BN on the block input (masked with the block's input lengths), added;
* decoder: 1x1 conv with bias, log_softmax over classes; blank is the LAST class.

Generic over the config's ``jasper`` list (B blocks, R repeats, filters, kernels, strides,
dilations, separable, residual, dropout, stride_last, kernel_size_factor). Unsupported NeMo
options (SE, groups > 1, heads, dense residual, non-batch norms, future_context, stride_add) are
refused with a message rather than silently mis-built.

Config loading uses PyYAML only (present on the GPU machine); ``load_config`` returns the
``model`` section as plain dicts.
"""
from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

# --------------------------------------------------------------------------------------------
# config


def load_config(path: str) -> dict:
    """YAML -> the ``model`` section as a plain dict (anchors resolved by PyYAML)."""
    import yaml

    with open(path) as f:
        cfg = yaml.safe_load(f)
    return cfg.get("model", cfg)


def labels_of(cfg: dict) -> List[str]:
    labels = cfg.get("labels") or cfg["decoder"].get("vocabulary")
    return list(labels)


# --------------------------------------------------------------------------------------------
# building blocks (names/indices exactly as NeMo's)


def _kernel(k: int, factor: float) -> int:
    """NeMo's compute_new_kernel_size."""
    k = max(int(k * factor), 1)
    return k + 1 if k % 2 == 0 else k


def _seq_len_after(lens: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    k, s, d, p = conv.kernel_size[0], conv.stride[0], conv.dilation[0], conv.padding[0]
    if s == 1 and 2 * p == d * (k - 1):  # NeMo's same_padding shortcut
        return lens
    return torch.div(lens + 2 * p - d * (k - 1) - 1, s, rounding_mode="trunc") + 1


def _time_mask(lens: torch.Tensor, t: int, dtype) -> torch.Tensor:
    """[B, 1, T] 1/0 mask of valid frames (NeMo's MaskedConv1d.mask_input)."""
    return (torch.arange(t, device=lens.device)[None, :] < lens[:, None]).unsqueeze(1).to(dtype)


def _cached_mask(lens: torch.Tensor, t: int, dtype, cache: Optional[dict]) -> torch.Tensor:
    """The same mask for every conv that sees the same (lengths, T, dtype) in one forward pass."""
    if cache is None:
        return _time_mask(lens, t, dtype)
    key = (id(lens), t, dtype)
    hit = cache.get(key)
    if hit is not None and hit[0] is lens:  # identity check: ids can be reused after a free
        return hit[1]
    m = _time_mask(lens, t, dtype)
    cache[key] = (lens, m)
    return m


class MaskedConv1d(nn.Module):
    """NeMo's MaskedConv1d: zero the input past ``lens``, conv, update lengths.

    A 1x1 / stride 1 / ungrouped conv is computed as a matmul (same numbers as conv1d up to
    rounding; uses cuBLAS directly instead of cuDNN algorithm selection)."""

    def __init__(self, cin, cout, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=False, use_mask=True):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, kernel_size, stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias)
        self.use_mask = use_mask
        self._pointwise = kernel_size == 1 and stride == 1 and groups == 1 and padding == 0

    def forward(self, x: torch.Tensor, lens: torch.Tensor, cache: Optional[dict] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        if self.use_mask:
            x = x * _cached_mask(lens, x.size(2), x.dtype, cache)
        lens = _seq_len_after(lens, self.conv)
        if self._pointwise:  # [O, I] @ [B, I, T] (autocast casts both operands like conv1d)
            out = torch.matmul(self.conv.weight.squeeze(-1), x)
            if self.conv.bias is not None:
                out = out + self.conv.bias[None, :, None]
            return out, lens
        return self.conv(x), lens


_ACTIVATIONS = {
    "relu": lambda: nn.ReLU(inplace=True),
    "hardtanh": lambda: nn.Hardtanh(0.0, 20.0, inplace=True),
    "selu": lambda: nn.SELU(inplace=True),
    "swish": lambda: nn.SiLU(inplace=True),
    "silu": lambda: nn.SiLU(inplace=True),
}


class JasperBlock(nn.Module):
    def __init__(self, cin, cout, repeat, kernel, stride, dilation, dropout, residual, separable, activation, conv_mask, stride_last=False):
        super().__init__()
        if stride > 1 and dilation > 1:
            raise ValueError("Only stride OR dilation may be greater than 1")
        pad = dilation * (kernel - 1) // 2  # NeMo get_same_padding
        self.conv_mask = conv_mask
        layers: List[nn.Module] = []
        c = cin
        for r in range(repeat):
            last = r == repeat - 1
            s = stride if (last or not stride_last) else 1
            layers += self._conv_bn(c, cout, kernel, s, dilation, pad, separable)
            if not last:
                layers += [_ACTIVATIONS[activation](), nn.Dropout(p=dropout)]
            c = cout
        self.mconv = nn.ModuleList(layers)
        if residual:
            self.res = nn.ModuleList([nn.ModuleList(self._conv_bn(cin, cout, 1, 1, 1, 0, False))])
        else:
            self.res = None
        self.mout = nn.Sequential(_ACTIVATIONS[activation](), nn.Dropout(p=dropout))

    def _conv_bn(self, cin, cout, k, s, d, p, separable):
        if separable:
            layers = [
                MaskedConv1d(cin, cin, k, stride=s, padding=p, dilation=d, groups=cin, use_mask=self.conv_mask),
                MaskedConv1d(cin, cout, 1, use_mask=self.conv_mask),
            ]
        else:
            layers = [MaskedConv1d(cin, cout, k, stride=s, padding=p, dilation=d, use_mask=self.conv_mask)]
        layers.append(nn.BatchNorm1d(cout, eps=1e-3, momentum=0.1))
        return layers

    def forward(self, x: torch.Tensor, lens: torch.Tensor, cache: Optional[dict] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        out, out_lens = x, lens
        for layer in self.mconv:
            if isinstance(layer, MaskedConv1d):
                out, out_lens = layer(out, out_lens, cache)
            else:
                out = layer(out)
        if self.res is not None:
            r = x
            for layer in self.res[0]:
                if isinstance(layer, MaskedConv1d):
                    r, _ = layer(r, lens, cache)
                else:
                    r = layer(r)
            out = out + r
        return self.mout(out), out_lens


_UNSUPPORTED_BLOCK_KEYS = {
    "se": False, "groups": 1, "heads": -1, "residual_dense": False, "future_context": -1,
}


class ConvASREncoder(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        if cfg.get("normalization_mode", "batch") != "batch":
            raise ValueError("only normalization_mode: batch is supported")
        if cfg.get("residual_mode", "add") != "add":
            raise ValueError("only residual_mode: add is supported")
        if int(cfg.get("frame_splicing", 1)) != 1:
            raise ValueError("only frame_splicing 1 is supported")
        act = cfg.get("activation", "relu")
        conv_mask = bool(cfg.get("conv_mask", True))
        feat = int(cfg["feat_in"])
        blocks = []
        self.subsampling_factor = 1
        for i, b in enumerate(cfg["jasper"]):
            for key, ok in _UNSUPPORTED_BLOCK_KEYS.items():
                if b.get(key, ok) != ok:
                    raise ValueError(f"jasper block {i}: {key}={b[key]} is not supported by this trainer")
            if b.get("residual_mode", "add") != "add":
                raise ValueError(f"jasper block {i}: residual_mode {b['residual_mode']} not supported")
            k = _kernel(int(b["kernel"][0]), float(b.get("kernel_size_factor", 1.0)))
            s = int(b["stride"][0])
            blocks.append(
                JasperBlock(
                    feat, int(b["filters"]), int(b["repeat"]), k, s, int(b["dilation"][0]),
                    float(b.get("dropout", 0.0)), bool(b["residual"]), bool(b.get("separable", False)),
                    act, conv_mask, stride_last=bool(b.get("stride_last", False)),
                )
            )
            feat = int(b["filters"])
            self.subsampling_factor *= s
        self.feat_out = feat
        self.encoder = nn.ModuleList(blocks)

    # masks shared by the convs of a pass (NeMo recomputes them: same values). Off for
    # torch.compile: the cache's id() keys break the graph, and the compiler merges them anyway.
    mask_cache = True

    def forward(self, x: torch.Tensor, lens: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        cache: Optional[dict] = {} if self.mask_cache else None
        for blk in self.encoder:
            x, lens = blk(x, lens, cache)
        return x, lens


class ConvASRDecoder(nn.Module):
    def __init__(self, feat_in: int, num_classes: int):
        super().__init__()
        self.decoder_layers = nn.Sequential(nn.Conv1d(feat_in, num_classes + 1, kernel_size=1, bias=True))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, T] -> [B, T, classes] (before log_softmax)."""
        conv = self.decoder_layers[0]
        return (torch.matmul(conv.weight.squeeze(-1), x) + conv.bias[None, :, None]).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.logits(x).float(), dim=-1)


class QuartzNet(nn.Module):
    """EncDecCTCModel-shaped module: preprocessor (buffers only), encoder, decoder."""

    def __init__(self, cfg: dict, with_preprocessor: bool = True):
        super().__init__()
        self.cfg = cfg
        self.labels = labels_of(cfg)
        if with_preprocessor:
            from features import AudioToMelSpectrogramPreprocessor

            self.preprocessor = AudioToMelSpectrogramPreprocessor.from_config(cfg.get("preprocessor", {}))
        else:
            self.preprocessor = None
        self.encoder = ConvASREncoder(cfg["encoder"])
        nc = int(cfg["decoder"].get("num_classes", -1))
        if nc <= 0:
            nc = len(self.labels)
        if nc != len(self.labels):
            raise ValueError(f"num_classes {nc} != {len(self.labels)} labels")
        if int(cfg["decoder"]["feat_in"]) != self.encoder.feat_out:
            raise ValueError("decoder.feat_in does not match the last block's filters")
        self.decoder = ConvASRDecoder(self.encoder.feat_out, nc)
        self.blank = nc  # blank is last
        self.reset_parameters()

    def reset_parameters(self, generator: Optional[torch.Generator] = None):
        """NeMo's init_weights(mode='xavier_uniform'): xavier conv weights, BN 1/0 and fresh stats.
        (The decoder bias keeps torch's default init, as in NeMo.)"""
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.xavier_uniform_(m.weight, gain=1.0, generator=generator)
            elif isinstance(m, nn.BatchNorm1d):
                m.reset_running_stats()
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def encode(self, feats: torch.Tensor, lens: torch.Tensor):
        return self.encoder(feats, lens)

    def forward(self, feats: torch.Tensor, lens: torch.Tensor):
        """features [B, 64, T] + lengths -> (log_probs [B, T', classes] fp32, out lengths)."""
        enc, enc_len = self.encoder(feats, lens)
        return self.decoder(enc), enc_len

    def forward_logits(self, feats: torch.Tensor, lens: torch.Tensor):
        enc, enc_len = self.encoder(feats, lens)
        return self.decoder.logits(enc), enc_len

    def weights_state_dict(self):
        """encoder + decoder only (what NeMo's fixtures call the weights)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("preprocessor.")}


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for n, p in model.named_parameters())


def greedy_decode(log_probs: torch.Tensor, lens: torch.Tensor, labels: List[str]) -> List[str]:
    """CTC greedy: argmax per frame, collapse repeats, drop blank (= len(labels))."""
    blank = len(labels)
    ids = log_probs.argmax(-1).cpu()
    lens = lens.cpu()
    out = []
    for b in range(ids.shape[0]):
        seq = ids[b, : int(lens[b])].tolist()
        prev = -1
        chars = []
        for t in seq:
            if t != prev and t != blank:
                chars.append(labels[t])
            prev = t
        out.append("".join(chars))
    return out


def split_state_dict(sd: dict, parts: int = 2) -> List[dict]:
    """Split into ``parts`` dicts of about equal byte size, keys kept in order."""
    sizes = [v.numel() * v.element_size() for v in sd.values()]
    total = sum(sizes)
    out: List[dict] = [dict() for _ in range(parts)]
    acc = 0
    for (k, v), sz in zip(sd.items(), sizes):
        i = min(parts - 1, int(acc * parts // max(total, 1)))
        out[i][k] = v
        acc += sz
    return out


def load_split_state_dict(paths: List[str]) -> dict:
    sd: dict = {}
    for p in paths:
        part = torch.load(p, map_location="cpu", weights_only=True)
        dup = set(sd) & set(part)
        if dup:
            raise ValueError(f"{p}: duplicate keys {sorted(dup)[:3]}")
        sd.update(part)
    return sd

"""NeMo's mel frontend and training-time augmentation in pure PyTorch (batched, GPU-friendly).

``FilterbankFeatures`` follows NeMo 3.0.0's ``FilterbankFeatures.forward``
(nemo/collections/asr/parts/preprocessing/features.py), QuartzNet settings:

  dither (training only) -> preemphasis 0.97 with samples past each length zeroed ->
  torch.stft(n_fft 512, hop 160, win 320, hann periodic=False, center=True, pad_mode="constant")
  -> |X| -> ^2 -> mel (64 x 257 librosa slaney) -> ln(x + 2^-24) -> per_feature normalisation
  over the floor(L/160) valid frames (std with N-1, + 1e-5) -> frames past the length set to 0
  -> optional pad_to columns.

``pad_mode="reflect"`` reproduces NeMo <= 2.4 instead (reflect padding, no sample masking,
1 + floor(L/160) valid frames); training here uses the NeMo >= 2.5 behaviour, so an exported model
must be declared ``pad_mode: zeros``.

The mel filterbank comes from ``mel_fb_64x257.npy`` (written by ``make_fb.py`` with librosa, which
the GPU machine lacks); other sizes are computed by ``slaney_mel_filterbank`` (a numpy
transcription of librosa.filters.mel(norm="slaney", htk=False), checked against librosa).

Augmentation (all batched tensor ops on the batch's device):
  * ``spec_augment``: NeMo SpecAugment semantics (freq masks of width U{0..F}, time masks of width
    U{0..W} with W an int or a fraction of each utterance's length, fill 0);
  * ``spec_cutout``: NeMo SpecCutout (rect_masks rectangles up to rect_freq x rect_time, fill 0),
    what NeMo's quartznet_15x5.yaml uses (rect_masks 5, rect_time 120, rect_freq 50);
  * ``Resampler``: windowed-sinc resampling with torchaudio's kernel (sinc_interp_hann, width 6,
    rolloff 0.99), used for speed perturbation (speed f: length x 1/f) and for non-16 kHz input.
"""
from __future__ import annotations

import math
import os
from fractions import Fraction
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
FB_NPY = os.path.join(HERE, "mel_fb_64x257.npy")
LOG_GUARD = 2.0**-24
STD_EPS = 1e-5  # NeMo's CONSTANT


# --------------------------------------------------------------------------------------------
# mel filterbank


def _hz_to_mel_slaney(f):
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mels)


def _mel_to_hz_slaney(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


def slaney_mel_filterbank(sr=16000, n_fft=512, n_mels=64, fmin=0.0, fmax=None) -> np.ndarray:
    """librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk=False, norm="slaney") in numpy."""
    fmax = sr / 2.0 if fmax is None else float(fmax)
    fftfreqs = np.linspace(0.0, sr / 2.0, 1 + n_fft // 2)
    mels = np.linspace(_hz_to_mel_slaney(fmin), _hz_to_mel_slaney(fmax), n_mels + 2)
    mel_f = _mel_to_hz_slaney(mels)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    w = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float64)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        w[i] = np.maximum(0, np.minimum(lower, upper))
    w *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return w.astype(np.float32)


def mel_filterbank(sr=16000, n_fft=512, n_mels=64, fmin=0.0, fmax=None) -> np.ndarray:
    """The shipped librosa filterbank when it fits, else the numpy transcription."""
    if (sr, n_fft, n_mels, fmin, fmax or sr / 2) == (16000, 512, 64, 0.0, 8000.0) and os.path.exists(FB_NPY):
        return np.load(FB_NPY).astype(np.float32)
    return slaney_mel_filterbank(sr, n_fft, n_mels, fmin, fmax)


# --------------------------------------------------------------------------------------------
# the frontend


class FilterbankFeatures(nn.Module):
    """NeMo FilterbankFeatures (buffers ``window`` [win] and ``fb`` [1, n_mels, n_fft/2+1])."""

    def __init__(self, sample_rate=16000, n_window_size=320, n_window_stride=160, n_fft=512, nfilt=64,
                 preemph=0.97, lowfreq=0.0, highfreq=None, dither=1e-5, pad_to=16, normalize="per_feature",
                 pad_mode="constant", log_zero_guard_value=LOG_GUARD, mag_power=2.0):
        super().__init__()
        if pad_mode not in ("constant", "reflect"):
            raise ValueError("pad_mode must be 'constant' (NeMo >= 2.5) or 'reflect' (NeMo <= 2.4)")
        if normalize not in ("per_feature", None, "", False):
            raise ValueError("only normalize: per_feature (or none) is implemented")
        self.sample_rate = sample_rate
        self.win_length = n_window_size
        self.hop_length = n_window_stride
        self.n_fft = n_fft
        self.preemph = preemph
        self.dither = dither
        self.pad_to = pad_to
        self.normalize = normalize
        self.pad_mode = pad_mode
        self.log_zero_guard_value = log_zero_guard_value
        self.mag_power = mag_power
        self.register_buffer("window", torch.hann_window(n_window_size, periodic=False))
        fb = mel_filterbank(sample_rate, n_fft, nfilt, lowfreq, highfreq)
        self.register_buffer("fb", torch.from_numpy(fb).unsqueeze(0))

    def get_seq_len(self, seq_len: torch.Tensor) -> torch.Tensor:
        # center=True: pad n_fft//2 each side; NeMo 3.0: floor(L / hop); NeMo 2.4: + 1
        n = torch.div(seq_len + (self.n_fft // 2) * 2 - self.n_fft, self.hop_length, rounding_mode="floor")
        if self.pad_mode == "reflect":
            n = n + 1
        return n.to(torch.long)

    @torch.no_grad()
    def forward(self, x: torch.Tensor, seq_len: torch.Tensor,
                warp: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """x [B, L] float32 (samples past each length may be anything), seq_len [B] ->
        (features [B, n_mels, F (+pad_to)], valid frames [B]).
        ``warp`` [B] (training only, optional): VTLP factors applied to the power spectrum."""
        x = x.float()
        seq_len_time = seq_len
        feat_len = self.get_seq_len(seq_len)
        feat_len = torch.where(seq_len == 0, torch.zeros_like(feat_len), feat_len)
        if self.training and self.dither > 0:
            x = x + self.dither * torch.randn_like(x)
        if self.preemph is not None:
            x = torch.cat((x[:, :1], x[:, 1:] - self.preemph * x[:, :-1]), dim=1)
            if self.pad_mode == "constant":  # NeMo >= 2.5 zeroes samples past the length
                tmask = torch.arange(x.shape[1], device=x.device)[None, :] < seq_len_time[:, None]
                x = x.masked_fill(~tmask, 0.0)
        with torch.amp.autocast(x.device.type, enabled=False):
            spec = torch.stft(x, n_fft=self.n_fft, hop_length=self.hop_length, win_length=self.win_length,
                              center=True, window=self.window.to(torch.float), return_complex=True,
                              pad_mode=self.pad_mode)
            spec = torch.view_as_real(spec)
            spec = torch.sqrt(spec.pow(2).sum(-1))
            if self.mag_power != 1.0:
                spec = spec.pow(self.mag_power)
            if warp is not None:
                spec = vtlp_warp(spec, warp, self.sample_rate)
            spec = torch.matmul(self.fb.to(spec.dtype), spec)
        spec = torch.log(spec + self.log_zero_guard_value)
        T = spec.shape[-1]
        valid = torch.arange(T, device=spec.device)[None, :] < feat_len[:, None]  # [B, T]
        if self.normalize == "per_feature":
            v = valid.unsqueeze(1)
            n = valid.sum(1).unsqueeze(1).to(spec.dtype)  # [B, 1]
            mean = torch.where(v, spec, 0.0).sum(2) / n
            var = torch.where(v, spec - mean.unsqueeze(2), 0.0).pow(2).sum(2) / (n - 1.0)
            std = torch.sqrt(var)
            std = std.masked_fill(std.isnan(), 0.0) + STD_EPS
            spec = (spec - mean.unsqueeze(2)) / std.unsqueeze(2)
        spec = spec.masked_fill(~valid.unsqueeze(1), 0.0)
        if self.pad_to and self.pad_to > 0:
            r = T % self.pad_to
            if r:
                spec = torch.nn.functional.pad(spec, (0, self.pad_to - r), value=0.0)
        return spec, feat_len


class AudioToMelSpectrogramPreprocessor(nn.Module):
    """Holds ``featurizer`` like NeMo's module (state_dict keys featurizer.window / featurizer.fb)."""

    def __init__(self, **kw):
        super().__init__()
        self.featurizer = FilterbankFeatures(**kw)

    @classmethod
    def from_config(cls, cfg: dict, pad_mode: str = "constant"):
        sr = int(cfg.get("sample_rate", 16000))
        for key, ok in (("window", "hann"), ("frame_splicing", 1), ("log", True), ("mag_power", 2.0),
                        ("exact_pad", False), ("mel_norm", "slaney"), ("log_zero_guard_type", "add")):
            if cfg.get(key, ok) != ok:
                raise ValueError(f"preprocessor {key}={cfg[key]!r} is not supported (need {ok!r})")
        return cls(
            sample_rate=sr,
            n_window_size=int(round(float(cfg.get("window_size", 0.02)) * sr)),
            n_window_stride=int(round(float(cfg.get("window_stride", 0.01)) * sr)),
            n_fft=int(cfg.get("n_fft", 512)),
            nfilt=int(cfg.get("features", 64)),
            preemph=cfg.get("preemph", 0.97),
            lowfreq=float(cfg.get("lowfreq", 0.0)),
            highfreq=cfg.get("highfreq", None),
            dither=float(cfg.get("dither", 1e-5)),
            pad_to=int(cfg.get("pad_to", 16)),
            normalize=cfg.get("normalize", "per_feature"),
            pad_mode=pad_mode,
            log_zero_guard_value=float(cfg.get("log_zero_guard_value", LOG_GUARD)),
        )

    def forward(self, input_signal, length):
        return self.featurizer(input_signal, length)


# --------------------------------------------------------------------------------------------
# augmentation


def _uniform_int(shape, high, device, generator=None) -> torch.Tensor:
    """Integers uniform in {0..high} (inclusive, like random.randint(0, high)); high an int or a
    broadcastable tensor. No host<->device copies (no stream syncs)."""
    u = torch.rand(shape, device=device, generator=generator)
    v = (u * (high + 1)).floor().long()
    return v.clamp(max=high) if isinstance(high, int) else torch.minimum(v, high.long())


def spec_augment(x: torch.Tensor, lens: torch.Tensor, freq_masks=2, freq_width=15, time_masks=2,
                 time_width=25, generator=None) -> torch.Tensor:
    """NeMo SpecAugment, batched. x [B, F, T] features, lens [B] valid frames.
    time_width: int frames, or a float < 1 = fraction of each utterance's length."""
    B, Fq, T = x.shape
    dev = x.device
    masked = torch.zeros(B, Fq, T, dtype=torch.bool, device=dev)
    if freq_masks > 0 and freq_width > 0:
        w = _uniform_int((B, freq_masks), int(freq_width), dev, generator)
        st = _uniform_int((B, freq_masks), Fq - w, dev, generator)
        f = torch.arange(Fq, device=dev)[None, None, :]
        fm = ((f >= st[..., None]) & (f < (st + w)[..., None])).any(1)  # [B, Fq]
        masked |= fm[:, :, None]
    if time_masks > 0 and time_width:
        if isinstance(time_width, float) and time_width < 1.0:
            tw = torch.clamp((lens.float() * time_width).long(), min=1)[:, None]
        else:
            tw = torch.full((B, 1), int(time_width), device=dev, dtype=torch.long)
        w = _uniform_int((B, time_masks), tw, dev, generator)
        hi = torch.clamp(lens[:, None] - w, min=1)
        st = _uniform_int((B, time_masks), hi, dev, generator)
        t = torch.arange(T, device=dev)[None, None, :]
        tm = ((t >= st[..., None]) & (t < (st + w)[..., None])).any(1)  # [B, T]
        masked |= tm[:, None, :]
    return x.masked_fill(masked, 0.0)


def spec_cutout(x: torch.Tensor, rect_masks=5, rect_time=120, rect_freq=50, generator=None) -> torch.Tensor:
    """NeMo SpecCutout, batched: rectangles at U{0..F-rect_freq} x U{0..T-rect_time},
    size U{0..rect_freq} x U{0..rect_time}, filled with 0."""
    if rect_masks <= 0:
        return x
    B, Fq, T = x.shape
    dev = x.device
    fx = _uniform_int((B, rect_masks), max(Fq - rect_freq, 0), dev, generator)
    ty = _uniform_int((B, rect_masks), max(T - rect_time, 0), dev, generator)
    wx = _uniform_int((B, rect_masks), int(rect_freq), dev, generator)
    wy = _uniform_int((B, rect_masks), int(rect_time), dev, generator)
    f = torch.arange(Fq, device=dev)[None, None, :, None]
    t = torch.arange(T, device=dev)[None, None, None, :]
    inf = (f >= fx[..., None, None]) & (f < (fx + wx)[..., None, None])
    intime = (t >= ty[..., None, None]) & (t < (ty + wy)[..., None, None])
    return x.masked_fill((inf & intime).any(1), 0.0)


def vtlp_warp(spec: torch.Tensor, alpha: torch.Tensor, sample_rate: int = 16000, f_hi: float = 4800.0) -> torch.Tensor:
    """Vocal tract length perturbation (Jaitly & Hinton 2013) on a linear power spectrum
    [B, K, T]: bin frequency f is moved to f' = alpha f below f_hi min(alpha, 1) / alpha, then
    linearly to Nyquist (fixed). Implemented as P'(f') = P(f), i.e. P'[k] = P[g(k)] with g the
    inverse map, by linear interpolation between bins. alpha [B] (1.0 = identity)."""
    B, K, T = spec.shape
    nyq = sample_rate / 2.0
    f = torch.linspace(0.0, nyq, K, device=spec.device, dtype=torch.float32)[None, :]  # [1, K]
    a = alpha.to(torch.float32)[:, None]  # [B, 1]
    b = f_hi * torch.clamp(a, max=1.0)  # breakpoint in the warped domain: f' = b at f = b / a
    # inverse map g(f'): below b: f'/a; above: linear from (b, b/a) to (nyq, nyq)
    lo = f / a
    hi = b / a + (f - b) * (nyq - b / a) / (nyq - b)
    src = torch.where(f <= b, lo, hi).clamp(0.0, nyq) * ((K - 1) / nyq)  # fractional source bin
    i0 = src.floor().long().clamp(max=K - 2)
    w = (src - i0.to(src.dtype)).unsqueeze(-1)  # [B, K, 1]
    g0 = torch.gather(spec, 1, i0.unsqueeze(-1).expand(B, K, T))
    g1 = torch.gather(spec, 1, (i0 + 1).unsqueeze(-1).expand(B, K, T))
    return g0 * (1 - w) + g1 * w


def add_noise(x: torch.Tensor, lens: torch.Tensor, prob: float, snr_db=(10.0, 40.0), generator=None) -> torch.Tensor:
    """Add coloured Gaussian noise (spectral slope 1/f^c, c ~ U(0, 2): white..brown) to a random
    subset (prob) of the clips at an SNR ~ U(snr_db) w.r.t. each clip's power over its valid
    length. x [B, L] float32, zero past lens; returns a new tensor, still zero past lens."""
    if prob <= 0:
        return x
    B, L = x.shape
    dev = x.device
    sel = torch.rand(B, device=dev, generator=generator) < prob
    valid = torch.arange(L, device=dev)[None, :] < lens[:, None]
    spec = torch.complex(torch.randn(B, L // 2 + 1, device=dev, generator=generator),
                         torch.randn(B, L // 2 + 1, device=dev, generator=generator))
    c = 2.0 * torch.rand(B, 1, device=dev, generator=generator)
    fr = torch.arange(L // 2 + 1, device=dev, dtype=torch.float32)[None, :].clamp(min=1.0)
    spec = spec * fr.pow(-c / 2)
    noise = torch.fft.irfft(spec, n=L)
    noise = noise * valid
    n_valid = lens.clamp(min=1).to(torch.float32)
    p_sig = (x * x).sum(1) / n_valid
    p_noise = (noise * noise).sum(1) / n_valid
    snr = snr_db[0] + (snr_db[1] - snr_db[0]) * torch.rand(B, device=dev, generator=generator)
    scale = torch.sqrt(p_sig / (p_noise.clamp(min=1e-20) * 10.0 ** (snr / 10.0)))
    scale = torch.where(sel & (p_sig > 0), scale, torch.zeros_like(scale))
    return x + noise * scale[:, None]


def add_reverb(x: torch.Tensor, lens: torch.Tensor, prob: float, rt60=(0.1, 0.6), sample_rate=16000,
               generator=None) -> torch.Tensor:
    """Convolve a random subset (prob) of the clips with a synthetic room impulse response
    (direct path + exponentially decaying Gaussian tail, RT60 ~ U(rt60), direct-to-reverberant
    ratio ~ U(0, 12) dB); output cut to the input length and zeroed past lens, peak-matched."""
    if prob <= 0:
        return x
    B, L = x.shape
    dev = x.device
    sel = torch.rand(B, device=dev, generator=generator) < prob
    lr = int(rt60[1] * sample_rate)
    t = torch.arange(lr, device=dev, dtype=torch.float32)[None, :] / sample_rate
    r = rt60[0] + (rt60[1] - rt60[0]) * torch.rand(B, 1, device=dev, generator=generator)
    tail = torch.randn(B, lr, device=dev, generator=generator) * torch.exp(-6.9078 * t / r)
    tail[:, 0] = 0.0
    drr = 10.0 ** ((12.0 * torch.rand(B, 1, device=dev, generator=generator)) / 10.0)  # direct/reverb energy
    tail = tail / torch.sqrt((tail * tail).sum(1, keepdim=True).clamp(min=1e-12) * drr)
    tail[:, 0] = 1.0
    n = 1 << math.ceil(math.log2(L + lr))
    y = torch.fft.irfft(torch.fft.rfft(x, n=n) * torch.fft.rfft(tail, n=n), n=n)[:, :L]
    valid = torch.arange(L, device=dev)[None, :] < lens[:, None]
    y = y * valid
    # keep the level comparable (features are normalised anyway; this avoids silly magnitudes)
    y = y * (x.abs().amax(1, keepdim=True) / y.abs().amax(1, keepdim=True).clamp(min=1e-9))
    return torch.where(sel[:, None], y, x)


# --------------------------------------------------------------------------------------------
# resampling (speed perturbation, non-16 kHz input)


class Resampler:
    """torchaudio.functional.resample's sinc_interp_hann kernel (lowpass width 6, rolloff 0.99),
    applied in chunks so that arbitrarily long 1-D signals (a whole concatenated corpus) resample
    exactly like one conv over the whole signal."""

    def __init__(self, orig: int, new: int, lowpass_filter_width: int = 6, rolloff: float = 0.99,
                 device="cpu", dtype=torch.float32):
        g = math.gcd(int(orig), int(new))
        self.orig, self.new = int(orig) // g, int(new) // g
        base = min(self.orig, self.new) * rolloff
        self.width = math.ceil(lowpass_filter_width * self.orig / base)
        idx = torch.arange(-self.width, self.width + self.orig, dtype=torch.float64)[None, None] / self.orig
        t = torch.arange(0, -self.new, -1, dtype=torch.float64)[:, None, None] / self.new + idx
        t = t * base
        t = t.clamp(-lowpass_filter_width, lowpass_filter_width)
        window = torch.cos(t * math.pi / lowpass_filter_width / 2) ** 2
        t = t * math.pi
        scale = base / self.orig
        k = torch.where(t == 0, torch.tensor(1.0, dtype=torch.float64), t.sin() / t)
        self.kernel = (k * window * scale).to(device=device, dtype=dtype)  # [new, 1, 2w + orig]

    def out_len(self, n):
        """torchaudio's target length ceil(new * n / orig) (works on ints and tensors)."""
        if isinstance(n, torch.Tensor):
            return torch.div(n * self.new + self.orig - 1, self.orig, rounding_mode="floor")
        return -(-n * self.new // self.orig)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, chunk_frames: int = 1 << 16) -> torch.Tensor:
        """x [..., L] -> [..., ceil(L * new / orig)]."""
        if self.orig == self.new:
            return x.clone()
        shape = x.shape
        x = x.reshape(-1, shape[-1]).to(self.kernel.dtype)
        L = shape[-1]
        nfr = -(-(L + self.orig) // self.orig)  # frames covering the signal
        chunk = chunk_frames * self.orig
        nrows = -(-nfr // chunk_frames)
        total = nrows * chunk + 2 * self.width + self.orig
        xp = torch.nn.functional.pad(x, (self.width, total - L - self.width))
        rows = xp.unfold(1, chunk + 2 * self.width + self.orig, chunk)  # [N, nrows, chunk + 2w + o] (view)
        N = rows.shape[0]
        rows = rows.reshape(N * nrows, -1)
        k = self.kernel.to(x.device)
        outs = []
        step = max(1, (1 << 27) // rows.shape[1])  # ~128 M input samples per conv call
        for i in range(0, rows.shape[0], step):
            y = torch.nn.functional.conv1d(rows[i: i + step].unsqueeze(1), k, stride=self.orig)
            outs.append(y[:, :, :chunk_frames].transpose(1, 2).reshape(-1))  # [rows*chunk_frames*new]
        y = torch.cat(outs).reshape(N, -1)[:, : self.out_len(L)]
        return y.reshape(*shape[:-1], -1)


def speed_ratio(speed: float, max_den: int = 20) -> Tuple[int, int]:
    """Speed factor f (duration x 1/f) -> (orig, new) resampling frequencies, e.g. 1.1 -> (11, 10)."""
    fr = Fraction(speed).limit_denominator(max_den)
    return fr.numerator, fr.denominator

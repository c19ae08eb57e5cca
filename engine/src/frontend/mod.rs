// SPDX-License-Identifier: MPL-2.0
//! NeMo's log-mel frontend (`FilterbankFeatures` with the QuartzNet config), reproduced
//! step by step in f32 so the ONNX model sees the features it was trained on
//! (`docs/FRONTEND.md`).
//!
//! Pipeline per input: preemphasis, padding by `n_fft / 2` on both sides
//! (`torch.stft(center=True)`), symmetric Hann window centred in `n_fft`, unnormalised
//! real FFT, power, Slaney mel filterbank, `ln(x + guard)`, then normalisation over the
//! valid frames.

mod input;
mod mel;
mod stream;
mod window;

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use mel::mel_filterbank;
use window::padded_hann;

pub use input::{InputStream, ModelInput, WAVEFORM_SILENCE};
use mel::SparseFilterbank;
pub use stream::FeatureStream;

use crate::error::{Error, Result};

/// Highest sample rate a frontend may run at.
pub const MAX_SAMPLE_RATE: u32 = 192_000;
/// Largest FFT (NeMo's models use 512).
pub const MAX_N_FFT: usize = 16_384;
/// Most mel bands (NeMo's models use 64 or 80).
pub const MAX_N_MELS: usize = 1024;

/// How the signal is padded by `n_fft / 2` at both ends before framing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PaddingMode {
    /// NeMo <= 2.4 (every published QuartzNet checkpoint): `torch.stft` reflect padding,
    /// without repeating the edge sample; `1 + floor(L / hop)` valid frames.
    #[default]
    Reflect,
    /// NeMo >= 2.5 (PR #13827): zero padding; only `floor(L / hop)` frames are valid.
    Zeros,
}

/// Normalisation applied to the log-mel features.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Normalization {
    /// NeMo `per_feature`: per band, mean and unbiased std over the valid frames,
    /// `(x - mean) / (std + 1e-5)`.
    #[default]
    PerFeature,
    /// NeMo `fixed_mean` / `fixed_std`: `(x - mean[m]) / std[m]`, no epsilon.
    Fixed {
        /// Per-band means.
        mean: Vec<f32>,
        /// Per-band standard deviations.
        std: Vec<f32>,
    },
    /// Raw log-mel.
    None,
}

impl Normalization {
    /// The 64 fixed statistics of NeMo's online ASR demo notebook (`docs/FRONTEND.md`), for
    /// streaming without per-window statistics.
    pub fn nemo_streaming_demo() -> Self {
        Normalization::Fixed {
            mean: NEMO_DEMO_FIXED_MEAN.to_vec(),
            std: NEMO_DEMO_FIXED_STD.to_vec(),
        }
    }
}

/// Per-band means of NeMo's online ASR demo notebook (64 mel bands), verbatim.
#[rustfmt::skip]
#[allow(clippy::excessive_precision)]
pub const NEMO_DEMO_FIXED_MEAN: [f32; 64] = [
    -14.95827016, -12.71798736, -11.76067913, -10.83311182, -10.6746914, -10.15163465,
    -10.05378331, -9.53918999, -9.41858904, -9.23382904, -9.46470918, -9.56037, -9.57434245,
    -9.47498732, -9.7635205, -10.08113074, -10.05454561, -9.81112681, -9.68673603, -9.83652977,
    -9.90046248, -9.85404766, -9.92560366, -9.95440354, -10.17162966, -9.90102482, -9.47471025,
    -9.54416855, -10.07109475, -9.98249912, -9.74359465, -9.55632283, -9.23399915, -9.36487649,
    -9.81791084, -9.56799225, -9.70630899, -9.85148006, -9.8594418, -10.01378735, -9.98505315,
    -9.62016094, -10.342285, -10.41070709, -10.10687659, -10.14536695, -10.30828702, -10.23542833,
    -10.88546868, -11.31723646, -11.46087382, -11.54877829, -11.62400934, -11.92190509,
    -12.14063815, -11.65130117, -11.58308531, -12.22214663, -12.42927197, -12.58039805,
    -13.10098969, -13.14345864, -13.31835645, -14.47345634,
];

/// Per-band standard deviations of NeMo's online ASR demo notebook (64 mel bands), verbatim.
#[rustfmt::skip]
#[allow(clippy::excessive_precision)]
pub const NEMO_DEMO_FIXED_STD: [f32; 64] = [
    3.81402054, 4.12647781, 4.05007065, 3.87790987, 3.74721178, 3.68377423, 3.69344, 3.54001005,
    3.59530412, 3.63752368, 3.62826417, 3.56488469, 3.53740577, 3.68313898, 3.67138151, 3.55707266,
    3.54919572, 3.55721289, 3.56723346, 3.46029304, 3.44119672, 3.49030548, 3.39328435, 3.28244406,
    3.28001423, 3.26744937, 3.46692348, 3.35378948, 2.96330901, 2.97663111, 3.04575148, 2.89717604,
    2.95659301, 2.90181116, 2.7111687, 2.93041291, 2.86647897, 2.73473181, 2.71495654, 2.75543763,
    2.79174615, 2.96076456, 2.57376336, 2.68789782, 2.90930817, 2.90412004, 2.76187531, 2.89905006,
    2.65896173, 2.81032176, 2.87769857, 2.84665271, 2.80863137, 2.80707634, 2.83752184, 3.01914511,
    2.92046439, 2.78461139, 2.90034605, 2.94599508, 2.99099718, 3.0167554, 3.04649716, 2.94116777,
];

/// NeMo's `CONSTANT`, added to the per-feature std so silent bands do not divide by zero.
const STD_EPSILON: f32 = 1e-5;

/// Frontend settings; `Default` is the QuartzNet English configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct FrontendConfig {
    /// Input sample rate in Hz.
    pub sample_rate: u32,
    /// Analysis window length in samples (0.02 s).
    pub win_length: usize,
    /// Frame step in samples (0.01 s).
    pub hop_length: usize,
    /// FFT size; also sets the padding (`n_fft / 2` each side).
    pub n_fft: usize,
    /// Number of mel bands.
    pub n_mels: usize,
    /// Preemphasis coefficient; 0.0 disables it.
    pub preemph: f32,
    /// Lowest filterbank frequency in Hz.
    pub f_min: f32,
    /// Highest filterbank frequency in Hz.
    pub f_max: f32,
    /// Added to the mel energy before the log.
    pub log_guard: f32,
    /// Edge padding before framing (NeMo version dependent).
    pub padding: PaddingMode,
    /// Feature normalisation.
    pub normalization: Normalization,
}

impl Default for FrontendConfig {
    fn default() -> Self {
        Self {
            sample_rate: 16000,
            win_length: 320,
            hop_length: 160,
            n_fft: 512,
            n_mels: 64,
            preemph: 0.97,
            f_min: 0.0,
            f_max: 8000.0,
            // 2^-24, NeMo's `log_zero_guard_value`.
            log_guard: 5.960_464_5e-8,
            padding: PaddingMode::Reflect,
            normalization: Normalization::PerFeature,
        }
    }
}

impl FrontendConfig {
    /// Checks that the settings describe a computable frontend.
    pub fn validate(&self) -> Result<()> {
        self.problem().map_err(Error::Settings)
    }

    fn problem(&self) -> Result<(), String> {
        if self.sample_rate == 0 {
            return Err("frontend: sample_rate must be positive".into());
        }
        // Sizes a model description declares: checked before anything is allocated.
        for (name, value, max) in [
            (
                "sample_rate",
                self.sample_rate as usize,
                MAX_SAMPLE_RATE as usize,
            ),
            ("n_fft", self.n_fft, MAX_N_FFT),
            ("win_length", self.win_length, MAX_N_FFT),
            ("hop_length", self.hop_length, MAX_N_FFT),
            ("n_mels", self.n_mels, MAX_N_MELS),
        ] {
            if value > max {
                return Err(format!(
                    "frontend: {name} {value} is larger than the most supported ({max})"
                ));
            }
        }
        if self.hop_length == 0 {
            return Err("frontend: hop_length must be positive".into());
        }
        if self.win_length == 0 {
            return Err("frontend: win_length must be positive".into());
        }
        if self.n_fft < 2 || !self.n_fft.is_multiple_of(2) {
            return Err(format!(
                "frontend: n_fft must be even and at least 2 (NeMo uses a power of two), got {}",
                self.n_fft
            ));
        }
        if self.win_length > self.n_fft {
            return Err(format!(
                "frontend: win_length {} is larger than n_fft {}; the window must fit in the FFT",
                self.win_length, self.n_fft
            ));
        }
        if self.n_mels == 0 {
            return Err("frontend: n_mels must be positive".into());
        }
        if !self.preemph.is_finite() {
            return Err(format!(
                "frontend: preemph must be finite, got {}",
                self.preemph
            ));
        }
        let nyquist = self.sample_rate as f32 / 2.0;
        if !(self.f_min.is_finite() && self.f_min >= 0.0) {
            return Err(format!(
                "frontend: f_min must be >= 0 Hz, got {}",
                self.f_min
            ));
        }
        if !(self.f_max.is_finite() && self.f_max > self.f_min) {
            return Err(format!(
                "frontend: f_max ({} Hz) must be greater than f_min ({} Hz)",
                self.f_max, self.f_min
            ));
        }
        if self.f_max > nyquist {
            return Err(format!(
                "frontend: f_max {} Hz is above the Nyquist frequency {} Hz of sample_rate {}",
                self.f_max, nyquist, self.sample_rate
            ));
        }
        if !(self.log_guard.is_finite() && self.log_guard > 0.0) {
            return Err(format!(
                "frontend: log_guard must be positive and finite (NeMo uses 2^-24), got {}",
                self.log_guard
            ));
        }
        if let Normalization::Fixed { mean, std } = &self.normalization {
            if mean.len() != self.n_mels || std.len() != self.n_mels {
                return Err(format!(
                    "frontend: fixed normalisation needs {} means and {} stds (one per mel band), \
                     got {} means and {} stds",
                    self.n_mels,
                    self.n_mels,
                    mean.len(),
                    std.len()
                ));
            }
            if let Some(i) = mean.iter().position(|m| !m.is_finite()) {
                return Err(format!(
                    "frontend: fixed mean[{i}] is not finite ({})",
                    mean[i]
                ));
            }
            if let Some(i) = std.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
                return Err(format!(
                    "frontend: fixed std[{i}] must be positive and finite, got {}",
                    std[i]
                ));
            }
        }
        Ok(())
    }
}

/// Features in NeMo's memory layout `[n_mels][frames]` (same as a `[1, n_mels, T]` tensor,
/// C order).
#[derive(Clone, Debug, Default)]
pub struct Features {
    /// Mel bands.
    pub n_mels: usize,
    /// Feature frames (10 ms each for QuartzNet).
    pub frames: usize,
    /// `n_mels * frames` values, band by band.
    pub data: Vec<f32>,
}

impl Features {
    /// Value of band `mel` at frame `frame`.
    #[inline]
    pub fn get(&self, mel: usize, frame: usize) -> f32 {
        debug_assert!(mel < self.n_mels && frame < self.frames);
        self.data[mel * self.frames + frame]
    }

    /// All frames of band `mel`.
    #[inline]
    pub fn row(&self, mel: usize) -> &[f32] {
        &self.data[mel * self.frames..(mel + 1) * self.frames]
    }

    /// Resizes to `n_mels x frames`, keeping the allocation.
    fn reshape(&mut self, n_mels: usize, frames: usize) {
        self.n_mels = n_mels;
        self.frames = frames;
        self.data.clear();
        self.data.resize(n_mels * frames, 0.0);
    }
}

/// Computes log-mel features; owns the FFT plan, window, filterbank and every scratch
/// buffer, so computing allocates nothing once the longest input has been seen.
#[derive(Clone)]
pub struct FeatureExtractor {
    config: FrontendConfig,
    /// Complex FFT of size `n_fft / 2`, turned into a real FFT of size `n_fft` by packing
    /// even samples into the real part and odd ones into the imaginary part.
    fft: Arc<dyn Fft<f32>>,
    /// `exp(-2 pi i k / n_fft)` for `k < n_fft / 2`, computed in f64.
    twiddles: Vec<Complex<f32>>,
    /// Hann window zero-padded to `n_fft`.
    window: Vec<f32>,
    filterbank: Vec<f32>,
    sparse_fb: SparseFilterbank,
    /// Preemphasised and padded signal; grows to the longest input seen.
    padded: Vec<f32>,
    fft_buf: Vec<Complex<f32>>,
    fft_scratch: Vec<Complex<f32>>,
    power: Vec<f32>,
}

impl std::fmt::Debug for FeatureExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureExtractor")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl FeatureExtractor {
    /// Validates `config` and precomputes the plan, window and filterbank.
    pub fn new(config: FrontendConfig) -> Result<Self> {
        config.validate()?;
        let n_fft = config.n_fft;
        let half = n_fft / 2;
        let n_bins = half + 1;
        let fft = FftPlanner::<f32>::new().plan_fft_forward(half);
        let twiddles = (0..half)
            .map(|k| {
                let theta = -2.0 * std::f64::consts::PI * k as f64 / n_fft as f64;
                Complex::new(theta.cos() as f32, theta.sin() as f32)
            })
            .collect();
        let filterbank = mel_filterbank(
            config.sample_rate,
            n_fft,
            config.n_mels,
            config.f_min,
            config.f_max,
        );
        let sparse_fb = SparseFilterbank::from_dense(&filterbank, config.n_mels, n_bins);
        let fft_scratch = vec![Complex::default(); fft.get_inplace_scratch_len()];
        Ok(Self {
            window: padded_hann(config.win_length, n_fft),
            fft,
            twiddles,
            filterbank,
            sparse_fb,
            padded: Vec::new(),
            fft_buf: vec![Complex::default(); half],
            fft_scratch,
            power: vec![0.0; n_bins],
            config,
        })
    }

    /// The settings this extractor was built with.
    pub fn config(&self) -> &FrontendConfig {
        &self.config
    }

    /// The dense filterbank, `[n_mels][n_fft / 2 + 1]` row-major.
    pub fn filterbank(&self) -> &[f32] {
        &self.filterbank
    }

    /// Valid feature frames for `samples` input samples: `1 + floor(L / hop)` (Reflect) or
    /// `floor(L / hop)` (Zeros).
    pub fn frame_count(&self, samples: usize) -> usize {
        let full = samples / self.config.hop_length;
        match self.config.padding {
            PaddingMode::Reflect => full + 1,
            PaddingMode::Zeros => full,
        }
    }

    /// Computes normalised log-mel features of `samples` (f32, int16 / 32768 scale) into
    /// `out`, reusing `out.data`'s allocation. Only valid frames are produced.
    pub fn compute(&mut self, samples: &[f32], out: &mut Features) {
        self.compute_unnormalized(samples, out);
        match &self.config.normalization {
            Normalization::PerFeature => normalize_per_feature(out),
            Normalization::Fixed { mean, std } => {
                for (m, row) in out.data.chunks_exact_mut(out.frames.max(1)).enumerate() {
                    let (mu, sigma) = (mean[m], std[m]);
                    for v in row {
                        *v = (*v - mu) / sigma;
                    }
                }
            }
            Normalization::None => {}
        }
    }

    /// Same as [`compute`](Self::compute) but without normalisation (raw log-mel).
    pub fn compute_unnormalized(&mut self, samples: &[f32], out: &mut Features) {
        let frames = self.frame_count(samples.len());
        let n_mels = self.config.n_mels;
        out.reshape(n_mels, frames);
        if frames == 0 {
            return;
        }
        self.fill_padded(samples);

        let hop = self.config.hop_length;
        let n_fft = self.config.n_fft;
        let guard = self.config.log_guard;
        for t in 0..frames {
            self.power_spectrum(t * hop..t * hop + n_fft);
            let data = &mut out.data;
            self.sparse_fb.apply(&self.power, |m, energy| {
                data[m * frames + t] = (energy + guard).ln();
            });
        }
    }

    /// Writes the preemphasised signal into `self.padded[n_fft/2 ..]` and fills both pads.
    fn fill_padded(&mut self, samples: &[f32]) {
        let len = samples.len();
        let pad = self.config.n_fft / 2;
        let total = len + 2 * pad;
        if self.padded.len() < total {
            self.padded.resize(total, 0.0);
        }
        let padded = &mut self.padded[..total];

        // NeMo preemphasises before torch.stft pads, so the pads mirror the filtered signal.
        let body = &mut padded[pad..pad + len];
        let preemph = self.config.preemph;
        if preemph != 0.0 && len > 0 {
            body[0] = samples[0];
            for (y, x) in body[1..].iter_mut().zip(samples.windows(2)) {
                // Two roundings (multiply, then subtract), as torch does it; Rust never
                // contracts this into an FMA.
                *y = x[1] - preemph * x[0];
            }
        } else {
            body.copy_from_slice(samples);
        }

        let (left, rest) = padded.split_at_mut(pad);
        let (body, right) = rest.split_at_mut(len);
        match self.config.padding {
            PaddingMode::Zeros => {
                left.fill(0.0);
                right.fill(0.0);
            }
            PaddingMode::Reflect if len > pad => {
                // torch 'reflect': the edge sample is not repeated, y[-j] = y[j].
                for (j, v) in left.iter_mut().rev().enumerate() {
                    *v = body[j + 1];
                }
                for (j, v) in right.iter_mut().enumerate() {
                    *v = body[len - 2 - j];
                }
            }
            PaddingMode::Reflect => {
                // Shorter than n_fft/2 + 1 samples: torch.stft refuses ("padding size should
                // be less than the corresponding input dimension"). We reflect repeatedly, as
                // numpy.pad(mode="reflect") does, i.e. extend periodically with period
                // 2 (L - 1); one sample repeats itself and an empty input pads with zeros.
                if len == 0 {
                    left.fill(0.0);
                    right.fill(0.0);
                } else {
                    for (j, v) in left.iter_mut().rev().enumerate() {
                        *v = body[reflect_index(-(j as isize) - 1, len)];
                    }
                    for (j, v) in right.iter_mut().enumerate() {
                        *v = body[reflect_index((len + j) as isize, len)];
                    }
                }
            }
        }
    }

    /// `self.power[b] = |rfft(padded[frame] * window)[b]|^2` for `b <= n_fft / 2`,
    /// unnormalised.
    #[inline]
    fn power_spectrum(&mut self, frame: std::ops::Range<usize>) {
        let frame = &self.padded[frame];
        for ((z, x), w) in self
            .fft_buf
            .iter_mut()
            .zip(frame.chunks_exact(2))
            .zip(self.window.chunks_exact(2))
        {
            *z = Complex::new(x[0] * w[0], x[1] * w[1]);
        }
        self.fft
            .process_with_scratch(&mut self.fft_buf, &mut self.fft_scratch);

        // Split the packed half-size transform Z into the spectrum X of the real frame:
        // X[k] = (Z[k] + conj Z[M-k]) / 2 + W^k (Z[k] - conj Z[M-k]) / 2i, M = n_fft / 2.
        let half = self.fft_buf.len();
        let z0 = self.fft_buf[0];
        let x0 = z0.re + z0.im;
        let xm = z0.re - z0.im;
        self.power[0] = x0 * x0;
        self.power[half] = xm * xm;
        let upper = self.fft_buf[1..].iter().rev();
        for (((p, a), b), w) in self.power[1..half]
            .iter_mut()
            .zip(&self.fft_buf[1..])
            .zip(upper)
            .zip(&self.twiddles[1..])
        {
            let b = b.conj();
            let s = *a + b;
            let d = *a - b;
            // -i * d
            let o = Complex::new(d.im, -d.re);
            let x = s + *w * o;
            // The halves of both terms are folded into one exact factor 1/4 on the power.
            // NeMo takes sqrt(re^2 + im^2) and squares it again; skipping the round trip
            // differs by an ulp at most.
            *p = 0.25 * (x.re * x.re + x.im * x.im);
        }
    }
}

/// Index into a signal of length `len` after endless mirror reflection without edge
/// repeat (numpy `pad(mode="reflect")` for pads longer than the signal).
fn reflect_index(i: isize, len: usize) -> usize {
    if len == 1 {
        return 0;
    }
    let period = 2 * (len as isize - 1);
    let m = i.rem_euclid(period) as usize;
    if m < len { m } else { period as usize - m }
}

/// NeMo `normalize_batch(..., "per_feature")` over all frames of `out` (which are exactly
/// the valid frames).
pub(crate) fn normalize_per_feature(out: &mut Features) {
    let frames = out.frames;
    if frames == 0 {
        return;
    }
    for row in out.data.chunks_exact_mut(frames) {
        if frames == 1 {
            // torch.std of one frame is NaN (NeMo >= 1.x even raises). We take std = 0, so
            // (x - mean) / (0 + 1e-5) = 0: a single frame normalises to zeros.
            row.fill(0.0);
            continue;
        }
        // Statistics in f64: torch's f32 reductions accumulate carefully, and f64 is the
        // closest cheap stand-in for their correctly rounded result.
        let n = frames as f64;
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = row
            .iter()
            .map(|&v| {
                let d = v as f64 - mean;
                d * d
            })
            .sum::<f64>()
            / (n - 1.0);
        let mu = mean as f32;
        let sigma = var.sqrt() as f32 + STD_EPSILON;
        for v in row {
            *v = (*v - mu) / sigma;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SILENCE: f32 = -16.635_532;

    fn extractor(padding: PaddingMode, normalization: Normalization) -> FeatureExtractor {
        FeatureExtractor::new(FrontendConfig {
            padding,
            normalization,
            ..FrontendConfig::default()
        })
        .unwrap()
    }

    /// Deterministic speech-like test signal: two tones plus LCG noise, int16 scale.
    fn test_signal(len: usize) -> Vec<f32> {
        let mut state = 0x1234_5678u32;
        (0..len)
            .map(|n| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
                let t = n as f32 / 16000.0;
                0.3 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()
                    + 0.1 * (2.0 * std::f32::consts::PI * 2500.0 * t).sin()
                    + 0.05 * noise
            })
            .collect()
    }

    /// Raw log-mel by the book: f64, direct DFT, index-by-index padding.
    fn reference(samples: &[f32], padding: PaddingMode, frames: &[usize]) -> Vec<Vec<f64>> {
        let cfg = FrontendConfig::default();
        let (n_fft, hop, win) = (cfg.n_fft, cfg.hop_length, cfg.win_length);
        let pad = n_fft / 2;
        let len = samples.len();
        let x: Vec<f64> = samples.iter().map(|&v| v as f64).collect();
        let mut y = x.clone();
        for n in 1..len {
            y[n] = x[n] - 0.97 * x[n - 1];
        }
        let at = |i: isize| -> f64 {
            if len == 0 {
                return 0.0;
            }
            match padding {
                PaddingMode::Zeros => {
                    if i < 0 || i >= len as isize {
                        0.0
                    } else {
                        y[i as usize]
                    }
                }
                PaddingMode::Reflect => {
                    let mut i = i;
                    while i < 0 || i >= len as isize {
                        if len == 1 {
                            i = 0;
                        } else if i < 0 {
                            i = -i;
                        } else {
                            i = 2 * (len as isize - 1) - i;
                        }
                    }
                    y[i as usize]
                }
            }
        };
        let fb = mel_filterbank(16000, n_fft, 64, 0.0, 8000.0);
        let n_bins = n_fft / 2 + 1;
        let offset = (n_fft - win) / 2;
        frames
            .iter()
            .map(|&t| {
                let frame: Vec<f64> = (0..n_fft)
                    .map(|j| {
                        let w = if j >= offset && j < offset + win {
                            let n = (j - offset) as f64;
                            0.5 - 0.5 * (2.0 * std::f64::consts::PI * n / (win - 1) as f64).cos()
                        } else {
                            0.0
                        };
                        w * at((t * hop + j) as isize - pad as isize)
                    })
                    .collect();
                let power: Vec<f64> = (0..n_bins)
                    .map(|b| {
                        let (mut re, mut im) = (0.0f64, 0.0f64);
                        for (n, v) in frame.iter().enumerate() {
                            let th = -2.0 * std::f64::consts::PI * (b * n) as f64 / n_fft as f64;
                            re += v * th.cos();
                            im += v * th.sin();
                        }
                        re * re + im * im
                    })
                    .collect();
                (0..64)
                    .map(|m| {
                        let e: f64 = (0..n_bins)
                            .map(|b| fb[m * n_bins + b] as f64 * power[b])
                            .sum();
                        (e + 2f64.powi(-24)).ln()
                    })
                    .collect()
            })
            .collect()
    }

    fn assert_matches_reference(samples: &[f32], padding: PaddingMode, frames: &[usize]) {
        let mut fe = extractor(padding, Normalization::None);
        let mut out = Features::default();
        fe.compute_unnormalized(samples, &mut out);
        let want = reference(samples, padding, frames);
        for (&t, col) in frames.iter().zip(&want) {
            for (m, &r) in col.iter().enumerate() {
                let got = out.get(m, t) as f64;
                assert!(
                    (got - r).abs() <= 1e-4 * r.abs().max(1.0),
                    "{padding:?} L={} frame {t} band {m}: got {got}, want {r}",
                    samples.len()
                );
            }
        }
    }

    #[test]
    fn default_config_is_quartznet() {
        let c = FrontendConfig::default();
        assert_eq!(c.log_guard, 2f32.powi(-24));
        assert_eq!(c.padding, PaddingMode::Reflect);
        assert_eq!(c.normalization, Normalization::PerFeature);
        c.validate().unwrap();
    }

    #[test]
    fn silence_is_ln_guard() {
        assert!(((2f64.powi(-24)).ln() as f32 - SILENCE).abs() < 1e-5);
        for padding in [PaddingMode::Reflect, PaddingMode::Zeros] {
            let mut fe = extractor(padding, Normalization::PerFeature);
            let mut out = Features::default();
            fe.compute_unnormalized(&vec![0.0; 16000], &mut out);
            assert_eq!(out.n_mels, 64);
            assert!(out.data.iter().all(|&v| (v - SILENCE).abs() < 1e-5));
            // Constant bands normalise to exactly zero thanks to the std epsilon.
            fe.compute(&vec![0.0; 16000], &mut out);
            assert!(out.data.iter().all(|&v| v == 0.0));
        }
    }

    #[test]
    fn frame_counts() {
        let r = extractor(PaddingMode::Reflect, Normalization::None);
        let z = extractor(PaddingMode::Zeros, Normalization::None);
        for (len, fr, fz) in [
            (0, 1, 0),
            (1, 1, 0),
            (159, 1, 0),
            (160, 2, 1),
            (161, 2, 1),
            (16000, 101, 100),
            (112_000, 701, 700),
        ] {
            assert_eq!(r.frame_count(len), fr, "reflect {len}");
            assert_eq!(z.frame_count(len), fz, "zeros {len}");
        }
    }

    #[test]
    fn reflect_matches_naive_reference() {
        let s = test_signal(1000);
        // First frames read the reflected pad, the last one the right pad.
        assert_matches_reference(&s, PaddingMode::Reflect, &[0, 1, 3, 6]);
    }

    #[test]
    fn zeros_matches_naive_reference() {
        let s = test_signal(1000);
        assert_matches_reference(&s, PaddingMode::Zeros, &[0, 1, 3, 5]);
    }

    #[test]
    fn short_reflect_matches_repeated_reflection() {
        for len in [1, 2, 100, 256, 257] {
            let s = test_signal(len);
            let last = len / 160;
            assert_matches_reference(&s, PaddingMode::Reflect, &[0, last]);
        }
    }

    #[test]
    fn per_feature_normalisation_statistics() {
        let s = test_signal(16000);
        let mut fe = extractor(PaddingMode::Reflect, Normalization::PerFeature);
        let mut out = Features::default();
        fe.compute(&s, &mut out);
        assert_eq!(out.frames, 101);
        for m in 0..64 {
            let row = out.row(m);
            let n = row.len() as f64;
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n;
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0);
            assert!(mean.abs() < 1e-4, "band {m} mean {mean}");
            assert!(
                (var.sqrt() - 1.0).abs() < 1e-3,
                "band {m} std {}",
                var.sqrt()
            );
        }
    }

    #[test]
    fn per_feature_uses_nemo_formula() {
        let s = test_signal(3200);
        let mut fe = extractor(PaddingMode::Zeros, Normalization::PerFeature);
        let (mut raw, mut norm) = (Features::default(), Features::default());
        fe.compute_unnormalized(&s, &mut raw);
        fe.compute(&s, &mut norm);
        for m in 0..64 {
            let row = raw.row(m);
            let n = row.len() as f64;
            let mu = row.iter().map(|&v| v as f64).sum::<f64>() / n;
            let sd = (row.iter().map(|&v| (v as f64 - mu).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
            for (t, &v) in row.iter().enumerate() {
                let want = (v as f64 - mu) / (sd + 1e-5);
                assert!((norm.get(m, t) as f64 - want).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn fixed_normalisation() {
        let s = test_signal(4000);
        let norm = Normalization::nemo_streaming_demo();
        let Normalization::Fixed { mean, std } = norm.clone() else {
            unreachable!()
        };
        let mut fe = extractor(PaddingMode::Reflect, norm);
        let (mut raw, mut out) = (Features::default(), Features::default());
        fe.compute_unnormalized(&s, &mut raw);
        fe.compute(&s, &mut out);
        for m in 0..64 {
            for t in 0..raw.frames {
                assert_eq!(out.get(m, t), (raw.get(m, t) - mean[m]) / std[m]);
            }
        }
        assert_eq!(NEMO_DEMO_FIXED_MEAN[0], -14.958_27);
        assert_eq!(NEMO_DEMO_FIXED_STD[63], 2.941_167_8);
    }

    #[test]
    fn padding_only_changes_edge_frames() {
        let s = test_signal(3200);
        let mut r = extractor(PaddingMode::Reflect, Normalization::None);
        let mut z = extractor(PaddingMode::Zeros, Normalization::None);
        let (mut fr, mut fz) = (Features::default(), Features::default());
        r.compute_unnormalized(&s, &mut fr);
        z.compute_unnormalized(&s, &mut fz);
        assert_eq!((fr.frames, fz.frames), (21, 20));
        // Frames 2..=18 read only real samples: identical in both modes.
        for t in 2..=18 {
            for m in 0..64 {
                assert_eq!(fr.get(m, t), fz.get(m, t), "frame {t} band {m}");
            }
        }
        // Frame 0 reads the pad, so the modes must differ there.
        assert!((0..64).any(|m| (fr.get(m, 0) - fz.get(m, 0)).abs() > 1e-3));

        // One sample inside the reflected region (x[5] is mirrored to padded position
        // 256 - 5) changes frame 0 in reflect mode.
        let mut s2 = s.clone();
        s2[5] += 0.2;
        let mut fr2 = Features::default();
        r.compute_unnormalized(&s2, &mut fr2);
        assert!((0..64).any(|m| (fr.get(m, 0) - fr2.get(m, 0)).abs() > 1e-4));
        // ...but leaves frames that cannot see it (frame t >= 2 starts at x[160 t - 256])
        // untouched.
        for t in 2..fr.frames {
            for m in 0..64 {
                assert_eq!(fr.get(m, t), fr2.get(m, t), "frame {t} band {m}");
            }
        }
    }

    #[test]
    fn no_panic_on_short_inputs() {
        for padding in [PaddingMode::Reflect, PaddingMode::Zeros] {
            for norm in [
                Normalization::PerFeature,
                Normalization::nemo_streaming_demo(),
                Normalization::None,
            ] {
                let mut fe = extractor(padding, norm);
                let mut out = Features::default();
                for len in [0, 1, 2, 100, 159, 160, 255, 256, 257, 258, 511, 512, 513] {
                    let s = test_signal(len);
                    fe.compute(&s, &mut out);
                    assert_eq!(out.frames, fe.frame_count(len));
                    assert_eq!(out.data.len(), 64 * out.frames);
                    assert!(out.data.iter().all(|v| v.is_finite()), "{padding:?} {len}");
                    fe.compute_unnormalized(&s, &mut out);
                    assert!(out.data.iter().all(|v| v.is_finite()));
                }
            }
        }
        // Empty input in reflect mode: one frame of silence, normalised to zero.
        let mut fe = extractor(PaddingMode::Reflect, Normalization::PerFeature);
        let mut out = Features::default();
        fe.compute_unnormalized(&[], &mut out);
        assert_eq!(out.frames, 1);
        assert!(out.data.iter().all(|&v| (v - SILENCE).abs() < 1e-5));
        fe.compute(&[0.5], &mut out);
        assert!(out.data.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn buffers_are_reused_without_stale_data() {
        let long = test_signal(112_000);
        let short = test_signal(4000);
        let mut fe = extractor(PaddingMode::Reflect, Normalization::PerFeature);
        let mut fresh = extractor(PaddingMode::Reflect, Normalization::PerFeature);
        let (mut a, mut b) = (Features::default(), Features::default());
        fe.compute(&long, &mut a);
        assert_eq!(a.frames, 701);
        let ptr = a.data.as_ptr();
        fe.compute(&short, &mut a);
        assert_eq!(a.data.as_ptr(), ptr, "output allocation must be reused");
        fresh.compute(&short, &mut b);
        assert_eq!(a.frames, b.frames);
        assert_eq!(a.data, b.data);
    }

    #[test]
    fn validate_rejects_bad_configs() {
        let base = FrontendConfig::default();
        let cases = [
            FrontendConfig {
                win_length: 600,
                ..base.clone()
            },
            FrontendConfig {
                n_mels: 0,
                ..base.clone()
            },
            FrontendConfig {
                f_max: 9000.0,
                ..base.clone()
            },
            FrontendConfig {
                hop_length: 0,
                ..base.clone()
            },
            FrontendConfig {
                n_fft: 511,
                win_length: 300,
                ..base.clone()
            },
            FrontendConfig {
                log_guard: 0.0,
                ..base.clone()
            },
            FrontendConfig {
                normalization: Normalization::Fixed {
                    mean: vec![0.0; 63],
                    std: vec![1.0; 64],
                },
                ..base.clone()
            },
            FrontendConfig {
                normalization: Normalization::Fixed {
                    mean: vec![0.0; 64],
                    std: vec![0.0; 64],
                },
                ..base.clone()
            },
        ];
        for c in cases {
            let err = c.validate().unwrap_err().to_string();
            assert!(err.starts_with("frontend:"), "{err}");
            assert!(FeatureExtractor::new(c).is_err());
        }
        let err = FrontendConfig {
            win_length: 600,
            ..base.clone()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("win_length 600") && err.contains("n_fft 512"),
            "{err}"
        );
    }
}

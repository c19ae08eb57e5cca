// SPDX-License-Identifier: MPL-2.0
//! librosa's Slaney mel filterbank (`librosa.filters.mel(htk=False, norm="slaney")`), which
//! NeMo computes once at start-up and stores as an f32 tensor.
//!
//! Everything is computed in f64 the way numpy does it, including librosa's quirk of
//! storing the triangle in an f32 array *before* the Slaney scaling is applied in f64, so
//! the stored weights are bit-for-bit what librosa hands to NeMo (up to libm's last ulp).

/// Linear part of the Slaney scale: 200/3 Hz per mel below 1 kHz.
const F_SP: f64 = 200.0 / 3.0;
/// Where the Slaney scale turns logarithmic.
const MIN_LOG_HZ: f64 = 1000.0;
/// `MIN_LOG_HZ / F_SP` (= 15 mel), written the way librosa derives it.
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

/// ln(6.4) / 27: the log-region step of the Slaney scale.
fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

/// Hz to Slaney mel (librosa `hz_to_mel(htk=False)`).
pub fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MIN_LOG_HZ {
        MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / log_step()
    } else {
        hz / F_SP
    }
}

/// Slaney mel to Hz (librosa `mel_to_hz(htk=False)`).
pub fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MIN_LOG_MEL {
        MIN_LOG_HZ * (log_step() * (mel - MIN_LOG_MEL)).exp()
    } else {
        F_SP * mel
    }
}

/// `n` frequencies evenly spaced in mel between `f_min` and `f_max` (librosa
/// `mel_frequencies`). The mel grid follows numpy's `linspace` (start + i * step, with the
/// last point forced to the end value).
pub fn mel_frequencies(n: usize, f_min: f64, f_max: f64) -> Vec<f64> {
    let min_mel = hz_to_mel(f_min);
    let max_mel = hz_to_mel(f_max);
    match n {
        0 => Vec::new(),
        1 => vec![mel_to_hz(min_mel)],
        _ => {
            let step = (max_mel - min_mel) / (n - 1) as f64;
            (0..n)
                .map(|i| {
                    let mel = if i == n - 1 {
                        max_mel
                    } else {
                        i as f64 * step + min_mel
                    };
                    mel_to_hz(mel)
                })
                .collect()
        }
    }
}

/// Centre frequency of each rfft bin, as numpy's `rfftfreq(n_fft, 1 / sr)` (librosa
/// `fft_frequencies`).
fn fft_frequencies(sample_rate: u32, n_fft: usize) -> Vec<f64> {
    let val = 1.0 / (n_fft as f64 * (1.0 / sample_rate as f64));
    (0..n_fft / 2 + 1).map(|k| k as f64 * val).collect()
}

/// librosa-compatible Slaney mel filterbank, `[n_mels][n_fft / 2 + 1]` row-major.
pub fn mel_filterbank(
    sample_rate: u32,
    n_fft: usize,
    n_mels: usize,
    f_min: f32,
    f_max: f32,
) -> Vec<f32> {
    let n_bins = n_fft / 2 + 1;
    let fft_f = fft_frequencies(sample_rate, n_fft);
    let mel_f = mel_frequencies(n_mels + 2, f_min as f64, f_max as f64);
    let mut weights = vec![0.0f32; n_mels * n_bins];
    for (i, row) in weights.chunks_exact_mut(n_bins).enumerate() {
        let (lo, mid, hi) = (mel_f[i], mel_f[i + 1], mel_f[i + 2]);
        let (fdiff_lo, fdiff_hi) = (mid - lo, hi - mid);
        let enorm = 2.0 / (hi - lo);
        for (w, &f) in row.iter_mut().zip(&fft_f) {
            let lower = -(lo - f) / fdiff_lo;
            let upper = (hi - f) / fdiff_hi;
            // librosa stores the triangle in its float32 `weights` array, then
            // `weights *= enorm` multiplies in f64 and rounds again.
            let tri = 0.0f64.max(lower.min(upper)) as f32;
            *w = (tri as f64 * enorm) as f32;
        }
    }
    weights
}

/// The filterbank with each row cut down to its non-zero span, so the per-frame product
/// touches about two bins per band instead of all `n_fft / 2 + 1`.
#[derive(Clone, Debug)]
pub(crate) struct SparseFilterbank {
    /// Per band: first bin and the range of its weights in `weights`.
    rows: Vec<(usize, std::ops::Range<usize>)>,
    weights: Vec<f32>,
}

impl SparseFilterbank {
    pub(crate) fn from_dense(dense: &[f32], n_mels: usize, n_bins: usize) -> Self {
        assert_eq!(dense.len(), n_mels * n_bins);
        let mut rows = Vec::with_capacity(n_mels);
        let mut weights = Vec::new();
        for row in dense.chunks_exact(n_bins) {
            let start = row.iter().position(|&w| w != 0.0).unwrap_or(0);
            let end = row.iter().rposition(|&w| w != 0.0).map_or(0, |e| e + 1);
            let first = weights.len();
            if end > start {
                weights.extend_from_slice(&row[start..end]);
            }
            rows.push((start, first..weights.len()));
        }
        Self { rows, weights }
    }

    /// Calls `sink(band, energy)` for every band with `energy = sum_b FB[band][b] power[b]`.
    #[inline]
    pub(crate) fn apply(&self, power: &[f32], mut sink: impl FnMut(usize, f32)) {
        for (m, (start, range)) in self.rows.iter().enumerate() {
            let w = &self.weights[range.clone()];
            let p = &power[*start..*start + w.len()];
            let mut acc = 0.0f32;
            for (&wi, &pi) in w.iter().zip(p) {
                acc += wi * pi;
            }
            sink(m, acc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mel_points_match_librosa() {
        let mel_f = mel_frequencies(66, 0.0, 8000.0);
        assert_eq!(mel_f.len(), 66);
        assert_eq!(mel_f[0], 0.0);
        assert!((mel_f[1] - 46.405_785_1).abs() < 1e-6, "{}", mel_f[1]);
        assert!((mel_f[65] - 8000.0).abs() < 1e-9, "{}", mel_f[65]);
        // The scale is continuous at 1 kHz = 15 mel.
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
        assert!((mel_to_hz(15.0) - 1000.0).abs() < 1e-9);
        for f in [10.0, 999.0, 1000.0, 4321.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(f)) - f).abs() < 1e-9);
        }
    }

    #[test]
    fn filterbank_check_values() {
        let fb = mel_filterbank(16000, 512, 64, 0.0, 8000.0);
        assert_eq!(fb.len(), 64 * 257);
        let row0 = &fb[..257];
        for (b, &w) in row0.iter().enumerate() {
            if b == 1 || b == 2 {
                assert!(w > 0.0);
            } else {
                assert_eq!(w, 0.0, "bin {b}");
            }
        }
        assert!((row0[1] - 0.014_511_28).abs() < 1e-8, "{}", row0[1]);
        assert!((row0[2] - 0.014_075_51).abs() < 1e-8, "{}", row0[2]);
        let total: f64 = fb.iter().map(|&w| w as f64).sum();
        assert!((total - 2.04618).abs() < 1e-4, "{total}");
        assert!(fb.iter().all(|&w| w >= 0.0 && w.is_finite()));
    }

    #[test]
    fn sparse_matches_dense() {
        let (n_mels, n_bins) = (64, 257);
        let fb = mel_filterbank(16000, 512, n_mels, 0.0, 8000.0);
        let sparse = SparseFilterbank::from_dense(&fb, n_mels, n_bins);
        let power: Vec<f32> = (0..n_bins).map(|b| 1.0 + (b as f32 * 0.37).sin()).collect();
        let mut got = vec![0.0f32; n_mels];
        sparse.apply(&power, |m, e| got[m] = e);
        for m in 0..n_mels {
            let dense: f32 = fb[m * n_bins..(m + 1) * n_bins]
                .iter()
                .zip(&power)
                .map(|(w, p)| w * p)
                .sum();
            assert!((got[m] - dense).abs() <= 1e-6 * dense.abs().max(1e-6));
        }
    }
}

// SPDX-License-Identifier: MPL-2.0
//! The analysis window as `torch.stft` applies it for NeMo.

/// `torch.hann_window(win_length, periodic=False)` zero-padded to `n_fft`.
///
/// NeMo builds a *symmetric* Hann window (`periodic=False`, denominator `win_length - 1`),
/// and `torch.stft` centres a window shorter than `n_fft` by padding
/// `(n_fft - win_length) / 2` zeros on the left (floor) and the rest on the right.
pub fn padded_hann(win_length: usize, n_fft: usize) -> Vec<f32> {
    assert!(win_length <= n_fft, "win_length must not exceed n_fft");
    let mut w = vec![0.0f32; n_fft];
    let offset = (n_fft - win_length) / 2;
    match win_length {
        0 => {}
        // torch.hann_window(1, periodic=False) is [1.0].
        1 => w[offset] = 1.0,
        _ => {
            let denom = (win_length - 1) as f64;
            for (n, v) in w[offset..offset + win_length].iter_mut().enumerate() {
                let phase = 2.0 * std::f64::consts::PI * n as f64 / denom;
                *v = (0.5 - 0.5 * phase.cos()) as f32;
            }
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_hann_centred() {
        let w = padded_hann(320, 512);
        assert_eq!(w.len(), 512);
        assert!(w[..96].iter().all(|&v| v == 0.0));
        assert!(w[416..].iter().all(|&v| v == 0.0));
        // Symmetric: both ends are exactly zero and the window mirrors around its centre.
        assert_eq!(w[96], 0.0);
        assert!(w[96 + 319].abs() < 1e-7);
        for n in 0..320 {
            assert!((w[96 + n] - w[96 + 319 - n]).abs() < 1e-7);
        }
        let peak = w.iter().cloned().fold(0.0f32, f32::max);
        assert!((peak - 1.0).abs() < 1e-4);
    }
}

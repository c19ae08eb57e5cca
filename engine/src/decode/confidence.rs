// SPDX-License-Identifier: MPL-2.0
//! Per-frame confidence of CTC output: NeMo's confidence measures (`ConfidenceMethodConfig`),
//! term for term, with the constants of a measure computed once per decoder.

/// How a single frame's distribution is turned into a confidence in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ConfidenceMethod {
    /// NeMo's `entropy` measure, `entropy_type: tsallis`, `entropy_norm: exp` (NeMo's default
    /// confidence, with `alpha = 0.33`). `alpha == 1.0` degenerates to NeMo's Gibbs (Shannon)
    /// entropy baseline, exactly as NeMo does.
    TsallisEntropy {
        /// The entropy index (NeMo's default 0.33).
        alpha: f32,
    },
    /// NeMo's `max_prob` measure at `alpha = 1`: `(V * pmax - 1) / (V - 1)`.
    MaxProb,
}

impl Default for ConfidenceMethod {
    fn default() -> Self {
        // NeMo's ConfidenceMethodConfig defaults: name=entropy, entropy_type=tsallis,
        // alpha=0.33, entropy_norm=exp.
        ConfidenceMethod::TsallisEntropy { alpha: 0.33 }
    }
}

/// Per-frame confidence with the constants of a method precomputed once, so the frame loop
/// does only arithmetic (no allocation, no repeated `powf` of constants).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scorer {
    /// conf = (exp(-H) - exp(-Hmax)) / (1 - exp(-Hmax)),
    /// H = (1 - sum_i p_i^a) / (a - 1)          (Tsallis entropy, Boltzmann constant 1),
    /// exp(-Hmax) = exp((1 - V^(1-a)) / (1 - a)) (the entropy of the uniform distribution),
    /// with p_i^a computed as exp(a * logprob_i) and V = vocab including blank.
    /// This is NeMo's `entropy_tsallis_exp` term for term.
    Tsallis { alpha: f64, exp_neg_hmax: f64 },
    /// NeMo's Tsallis/Gibbs measure at alpha == 1 (the Shannon limit):
    /// conf = (V * exp(sum_i p_i ln p_i) - 1) / (V - 1).
    Gibbs { v: f64 },
    /// conf = (V * pmax - 1) / (V - 1).
    MaxProb { v: f64 },
}

impl Scorer {
    pub(crate) fn new(method: ConfidenceMethod, vocab: usize) -> Result<Self, String> {
        if vocab < 2 {
            return Err(format!(
                "confidence needs a vocabulary of at least 2 (got {vocab})"
            ));
        }
        let v = vocab as f64;
        Ok(match method {
            ConfidenceMethod::MaxProb => Scorer::MaxProb { v },
            ConfidenceMethod::TsallisEntropy { alpha } => {
                if !alpha.is_finite() || alpha <= 0.0 {
                    return Err(format!(
                        "Tsallis entropy alpha must be finite and > 0 (got {alpha})"
                    ));
                }
                // NeMo switches to the Gibbs baseline on exact equality; do the same.
                if alpha == 1.0 {
                    Scorer::Gibbs { v }
                } else {
                    let a = f64::from(alpha);
                    let exp_neg_hmax = ((1.0 - v.powf(1.0 - a)) / (1.0 - a)).exp();
                    Scorer::Tsallis {
                        alpha: a,
                        exp_neg_hmax,
                    }
                }
            }
        })
    }

    /// Confidence of one frame (a full row of log-probs, blank included), clamped to
    /// `[0, 1]`. NaN input yields 0 rather than poisoning the word's minimum.
    pub(crate) fn score(&self, row: &[f32]) -> f32 {
        // f64 accumulation: the sums run over ~29 terms of very different magnitudes and
        // exp(-Hmax) is subtracted from a nearby value for near-uniform rows.
        let conf = match *self {
            Scorer::Tsallis {
                alpha,
                exp_neg_hmax,
            } => {
                let sum_pa: f64 = row.iter().map(|&lp| (alpha * f64::from(lp)).exp()).sum();
                let exp_neg_h = ((1.0 - sum_pa) / (1.0 - alpha)).exp();
                (exp_neg_h - exp_neg_hmax) / (1.0 - exp_neg_hmax)
            }
            Scorer::Gibbs { v } => {
                // p ln p -> 0 as p -> 0; skip p == 0 so a -inf log-prob does not give NaN.
                let neg_entropy: f64 = row
                    .iter()
                    .map(|&lp| {
                        let lp = f64::from(lp);
                        let p = lp.exp();
                        if p > 0.0 { p * lp } else { 0.0 }
                    })
                    .sum();
                (neg_entropy.exp() * v - 1.0) / (v - 1.0)
            }
            Scorer::MaxProb { v } => {
                let max_lp = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                (f64::from(max_lp).exp() * v - 1.0) / (v - 1.0)
            }
        };
        if conf.is_nan() {
            0.0
        } else {
            conf.clamp(0.0, 1.0) as f32
        }
    }
}

/// Confidence in `[0, 1]` of a single frame's log-probability row (`row.len()` = vocab
/// including blank) under `method`. Convenience for callers outside the decoder; the
/// decoder itself precomputes the constants.
pub fn frame_confidence(method: ConfidenceMethod, row: &[f32]) -> f32 {
    match Scorer::new(method, row.len()) {
        Ok(s) => s.score(row),
        Err(_) => 0.0,
    }
}

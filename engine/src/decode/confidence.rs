// SPDX-License-Identifier: MPL-2.0
//! Word confidence of CTC output: NeMo's confidence measures (`ConfidenceMethodConfig`) and
//! aggregations (`ConfidenceConfig`), term for term (nemo/collections/asr/parts/utils/
//! asr_confidence_utils.py), with the constants of a measure computed once per decoder.
//!
//! As in NeMo's CTC decoding with `exclude_blank: true`: every frame gets the measure of its
//! whole log-prob row; a token's confidence aggregates the frames of its run (frames whose
//! argmax is blank belong to no token); a word's aggregates its tokens, with the same
//! aggregation. `docs/CONFIDENCE.md` says what the default measures and how well it
//! separates right from wrong words.

use std::fmt;
use std::str::FromStr;

/// NeMo's `entropy_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntropyKind {
    /// Gibbs entropy; with `alpha != 1`, NeMo's `H = -sum p^a ln p` variant.
    Gibbs,
    /// Tsallis entropy (Boltzmann constant 1): `H = (1 - sum p^a) / (a - 1)`.
    Tsallis,
    /// Rényi entropy: `H = log2(sum p^a) / (1 - a)`.
    Renyi,
}

/// NeMo's `entropy_norm`: how an entropy is mapped onto `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntropyNorm {
    /// Linear: `1 - H / Hmax`.
    Lin,
    /// Exponential with a linear shift: `(exp(-H) - exp(-Hmax)) / (1 - exp(-Hmax))`.
    Exp,
}

/// How a single frame's distribution is turned into a confidence in `[0, 1]`: NeMo's
/// `ConfidenceMethodConfig` (`name`, `entropy_type`, `entropy_norm`, `alpha`). 0 is a uniform
/// distribution, 1 a certain one. With `alpha == 1.0` every entropy is NeMo's Gibbs
/// (Shannon) baseline of its norm, and `max_prob` is unscaled, exactly as in NeMo.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ConfidenceMeasure {
    /// NeMo's `max_prob`: `(V^a pmax^a - 1) / (V^a - 1)`, `V` the vocabulary with blank.
    MaxProb {
        /// NeMo's `alpha` (> 0); 1 is the plain normalised maximum probability.
        alpha: f32,
    },
    /// NeMo's `entropy` measures.
    Entropy {
        /// NeMo's `entropy_type`.
        kind: EntropyKind,
        /// NeMo's `entropy_norm`.
        norm: EntropyNorm,
        /// NeMo's `alpha` (> 0; NeMo's default 0.33).
        alpha: f32,
    },
}

/// NeMo's `aggregation`: how frame confidences make a token's and token confidences a
/// word's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfidenceAggregation {
    /// Arithmetic mean.
    Mean,
    /// Minimum (NeMo's default).
    Min,
    /// Maximum.
    Max,
    /// Product.
    Prod,
}

impl ConfidenceAggregation {
    /// Every aggregation, in NeMo's order (`ConfidenceConstants.AGGREGATIONS`).
    pub const ALL: [Self; 4] = [Self::Mean, Self::Min, Self::Max, Self::Prod];

    /// The name NeMo (and the CLI and element) use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mean => "mean",
            Self::Min => "min",
            Self::Max => "max",
            Self::Prod => "prod",
        }
    }
}

/// The measure and aggregation of word confidences (NeMo's `ConfidenceConfig` with
/// `exclude_blank: true`). `Default` is the engine's documented default,
/// [`ConfidenceConfig::DEFAULT`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConfidenceConfig {
    /// The per-frame measure.
    pub measure: ConfidenceMeasure,
    /// How frames make tokens and tokens make words.
    pub aggregation: ConfidenceAggregation,
}

impl ConfidenceConfig {
    /// The default word confidence, NeMo's defaults but alpha 1: the least confident frame
    /// of the word's letters, each frame's confidence `(V exp(-H) - 1) / (V - 1)` with `H`
    /// the Shannon entropy of its distribution and `V` the vocabulary with blank (1: certain;
    /// 0: uniform; `exp(H)` is how many labels the model hesitates between). Of NeMo's
    /// measures and aggregations it separates right from wrong words best for the bundled
    /// model, streaming beam search weighted most (tools/confidence_auc.py;
    /// `docs/CONFIDENCE.md` has the table and a threshold).
    pub const DEFAULT: Self = Self {
        measure: ConfidenceMeasure::Entropy {
            kind: EntropyKind::Gibbs,
            norm: EntropyNorm::Exp,
            alpha: 1.0,
        },
        aggregation: ConfidenceAggregation::Min,
    };

    /// NeMo's own defaults (`ConfidenceConfig()`): Tsallis entropy, exponential norm,
    /// alpha 0.33, aggregated by the minimum.
    pub const NEMO_DEFAULT: Self = Self {
        measure: ConfidenceMeasure::NEMO_DEFAULT,
        aggregation: ConfidenceAggregation::Min,
    };

    /// Checks the measure's `alpha` (finite and > 0, as NeMo requires).
    pub fn validate(&self) -> Result<(), String> {
        self.measure.validate()
    }
}

impl Default for ConfidenceConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for ConfidenceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.measure, self.aggregation)
    }
}

impl ConfidenceMeasure {
    /// NeMo's `ConfidenceMethodConfig()` defaults: entropy, tsallis, exp, alpha 0.33.
    pub const NEMO_DEFAULT: Self = Self::Entropy {
        kind: EntropyKind::Tsallis,
        norm: EntropyNorm::Exp,
        alpha: Self::NEMO_ALPHA,
    };

    /// NeMo's default `alpha`, also what a spec without `:ALPHA` gets.
    pub const NEMO_ALPHA: f32 = 0.33;

    /// The measure's `alpha`.
    pub fn alpha(&self) -> f32 {
        match *self {
            Self::MaxProb { alpha } | Self::Entropy { alpha, .. } => alpha,
        }
    }

    /// The same measure with another `alpha`.
    pub fn with_alpha(self, alpha: f32) -> Self {
        match self {
            Self::MaxProb { .. } => Self::MaxProb { alpha },
            Self::Entropy { kind, norm, .. } => Self::Entropy { kind, norm, alpha },
        }
    }

    /// Checks `alpha`: finite and > 0 (NeMo refuses `alpha <= 0`).
    pub fn validate(&self) -> Result<(), String> {
        let alpha = self.alpha();
        if alpha.is_finite() && alpha > 0.0 {
            Ok(())
        } else {
            Err(format!(
                "confidence alpha must be finite and > 0 (got {alpha})"
            ))
        }
    }

    /// The measure's name without alpha: `max-prob` or `<gibbs|tsallis|renyi>-<lin|exp>`.
    pub fn name(&self) -> &'static str {
        use EntropyKind::*;
        use EntropyNorm::*;
        match *self {
            Self::MaxProb { .. } => "max-prob",
            Self::Entropy { kind, norm, .. } => match (kind, norm) {
                (Gibbs, Lin) => "gibbs-lin",
                (Gibbs, Exp) => "gibbs-exp",
                (Tsallis, Lin) => "tsallis-lin",
                (Tsallis, Exp) => "tsallis-exp",
                (Renyi, Lin) => "renyi-lin",
                (Renyi, Exp) => "renyi-exp",
            },
        }
    }

    /// Every measure name [`ConfidenceMeasure::name`] gives, with `alpha`.
    pub fn all(alpha: f32) -> [Self; 7] {
        use EntropyKind::*;
        use EntropyNorm::*;
        let e = |kind, norm| Self::Entropy { kind, norm, alpha };
        [
            Self::MaxProb { alpha },
            e(Gibbs, Lin),
            e(Gibbs, Exp),
            e(Tsallis, Lin),
            e(Tsallis, Exp),
            e(Renyi, Lin),
            e(Renyi, Exp),
        ]
    }
}

/// Written as `NAME:ALPHA`, the form [`FromStr`] reads (e.g. `tsallis-exp:0.33`,
/// `max-prob:1`).
impl fmt::Display for ConfidenceMeasure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name(), self.alpha())
    }
}

/// Reads `NAME[:ALPHA]`: NAME is `max-prob` or `<gibbs|tsallis|renyi>-<lin|exp>` (NeMo's
/// `max_prob`, or `entropy` with that `entropy_type` and `entropy_norm`; `_` may stand for
/// `-`), ALPHA NeMo's `alpha` (> 0; default NeMo's 0.33).
impl FromStr for ConfidenceMeasure {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        let spec = spec.trim();
        let (name, alpha) = match spec.split_once(':') {
            Some((name, alpha)) => {
                let alpha = alpha
                    .trim()
                    .parse::<f32>()
                    .map_err(|_| format!("'{alpha}' in '{spec}' is not a number (alpha)"))?;
                (name.trim(), alpha)
            }
            None => (spec, Self::NEMO_ALPHA),
        };
        let name = name.to_ascii_lowercase().replace('_', "-");
        let measure = Self::all(alpha)
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| {
                format!(
                    "unknown confidence measure '{name}' (max-prob, gibbs-lin, gibbs-exp, tsallis-lin, tsallis-exp, renyi-lin or renyi-exp, optionally :ALPHA)"
                )
            })?;
        measure.validate()?;
        Ok(measure)
    }
}

impl fmt::Display for ConfidenceAggregation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ConfidenceAggregation {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        let name = name.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|a| a.name() == name)
            .ok_or_else(|| {
                format!("unknown confidence aggregation '{name}' (mean, min, max or prod)")
            })
    }
}

/// A running aggregate of confidences (of a token's frames or a word's tokens), so
/// streaming decoders fold values in as they come. `f64` so a word's mean or product does
/// not drift over many frames.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Aggregate {
    value: f64,
    count: u32,
}

impl Aggregate {
    /// No values yet.
    pub(crate) const EMPTY: Self = Self {
        value: f64::NAN,
        count: 0,
    };

    /// Adds `x` under `aggregation`.
    #[inline]
    pub(crate) fn add(&mut self, aggregation: ConfidenceAggregation, x: f64) {
        self.value = if self.count == 0 {
            x
        } else {
            match aggregation {
                ConfidenceAggregation::Mean => self.value + x,
                ConfidenceAggregation::Min => self.value.min(x),
                ConfidenceAggregation::Max => self.value.max(x),
                ConfidenceAggregation::Prod => self.value * x,
            }
        };
        self.count = self.count.saturating_add(1);
    }

    /// The aggregate (1 when empty: no evidence against a word that has no frames).
    #[inline]
    pub(crate) fn value(&self, aggregation: ConfidenceAggregation) -> f64 {
        match (self.count, aggregation) {
            (0, _) => 1.0,
            (n, ConfidenceAggregation::Mean) => self.value / f64::from(n),
            _ => self.value,
        }
    }
}

/// A word's confidence while it is built: its closed tokens and the token still running.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct WordConfidence {
    tokens: Aggregate,
    token: Aggregate,
}

impl WordConfidence {
    pub(crate) const EMPTY: Self = Self {
        tokens: Aggregate::EMPTY,
        token: Aggregate::EMPTY,
    };

    /// Ends the running token (if it has frames) and starts a new one with no frames.
    #[inline]
    pub(crate) fn close_token(&mut self, aggregation: ConfidenceAggregation) {
        if self.token.count > 0 {
            self.tokens.add(aggregation, self.token.value(aggregation));
            self.token = Aggregate::EMPTY;
        }
    }

    /// Adds a frame to the running token.
    #[inline]
    pub(crate) fn add_frame(&mut self, aggregation: ConfidenceAggregation, confidence: f32) {
        self.token.add(aggregation, f64::from(confidence));
    }

    /// The word's confidence so far (the running token counted as it stands), in `[0, 1]`.
    pub(crate) fn value(&self, aggregation: ConfidenceAggregation) -> f32 {
        let mut tokens = self.tokens;
        if self.token.count > 0 {
            tokens.add(aggregation, self.token.value(aggregation));
        }
        let v = tokens.value(aggregation);
        if v.is_nan() {
            0.0
        } else {
            v.clamp(0.0, 1.0) as f32
        }
    }
}

/// Per-frame confidence with the constants of a measure precomputed once, so the frame loop
/// does only arithmetic (no allocation, no repeated `powf` of constants). Each variant is
/// one function of NeMo's `get_confidence_measure_bank()`, with `V` the vocabulary including
/// blank, `x` the log-probs, `t` alpha, `S = sum exp(t x)`:
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scorer {
    /// `max_prob`, t == 1: `(V exp(max x) - 1) / (V - 1)`.
    MaxProb { v: f64 },
    /// `max_prob`, t != 1: `(exp(t max x) V^t - 1) / (V^t - 1)`.
    MaxProbAlpha { t: f64, v_t: f64 },
    /// Every `*_lin` at t == 1 (`entropy_gibbs_lin_baseline`): `1 + sum(exp(x) x) / ln V`.
    GibbsLinBaseline { ln_v: f64 },
    /// Every `*_exp` at t == 1 (`entropy_gibbs_exp_baseline`):
    /// `(exp(sum(exp(x) x)) V - 1) / (V - 1)`.
    GibbsExpBaseline { v: f64 },
    /// `entropy_gibbs_lin`: `1 + sum(exp(t x) x) / ln V / V^(1-t)`.
    GibbsLin { t: f64, scale: f64 },
    /// `entropy_gibbs_exp`: `(exp(t sum(exp(t x) x)) - m) / (1 - m)`, `m = V^(-t V^(1-t))`.
    GibbsExp { t: f64, m: f64 },
    /// `entropy_tsallis_lin`: `1 + (1 - S) / (V^(1-t) - 1)`.
    TsallisLin { t: f64, denominator: f64 },
    /// `entropy_tsallis_exp`: `(exp((1 - S) / (1 - t)) - m) / (1 - m)`,
    /// `m = exp((1 - V^(1-t)) / (1 - t))`.
    TsallisExp { t: f64, m: f64 },
    /// `entropy_renyi_lin`: `1 + log2(S) / (t - 1) / log2(V)`.
    RenyiLin { t: f64, log2_v: f64 },
    /// `entropy_renyi_exp`: `(S^(1/(t-1)) V - 1) / (V - 1)`.
    RenyiExp { t: f64, v: f64 },
}

/// `torch.nan_to_num` of a log-prob, as NeMo applies before every measure: -inf becomes the
/// most negative f32, so `exp(x) * x` is 0 rather than NaN. NaN stays NaN (NeMo would make
/// it 0, a certain frame; here the frame's confidence is 0 instead).
#[inline]
fn finite(x: f32) -> f64 {
    if x == f32::NEG_INFINITY {
        f64::from(f32::MIN)
    } else if x == f32::INFINITY {
        f64::from(f32::MAX)
    } else {
        f64::from(x)
    }
}

impl Scorer {
    pub(crate) fn new(measure: ConfidenceMeasure, vocab: usize) -> Result<Self, String> {
        if vocab < 2 {
            return Err(format!(
                "confidence needs a vocabulary of at least 2 (got {vocab})"
            ));
        }
        measure.validate()?;
        let v = vocab as f64;
        let t = f64::from(measure.alpha());
        // NeMo switches on exact equality; so does this.
        let one = measure.alpha() == 1.0;
        Ok(match measure {
            ConfidenceMeasure::MaxProb { .. } if one => Scorer::MaxProb { v },
            ConfidenceMeasure::MaxProb { .. } => Scorer::MaxProbAlpha { t, v_t: v.powf(t) },
            ConfidenceMeasure::Entropy { norm, .. } if one => match norm {
                EntropyNorm::Lin => Scorer::GibbsLinBaseline { ln_v: v.ln() },
                EntropyNorm::Exp => Scorer::GibbsExpBaseline { v },
            },
            ConfidenceMeasure::Entropy { kind, norm, .. } => match (kind, norm) {
                (EntropyKind::Gibbs, EntropyNorm::Lin) => Scorer::GibbsLin {
                    t,
                    scale: 1.0 / v.ln() / v.powf(1.0 - t),
                },
                (EntropyKind::Gibbs, EntropyNorm::Exp) => Scorer::GibbsExp {
                    t,
                    m: v.powf(-t * v.powf(1.0 - t)),
                },
                (EntropyKind::Tsallis, EntropyNorm::Lin) => Scorer::TsallisLin {
                    t,
                    denominator: v.powf(1.0 - t) - 1.0,
                },
                (EntropyKind::Tsallis, EntropyNorm::Exp) => Scorer::TsallisExp {
                    t,
                    m: ((1.0 - v.powf(1.0 - t)) / (1.0 - t)).exp(),
                },
                (EntropyKind::Renyi, EntropyNorm::Lin) => Scorer::RenyiLin {
                    t,
                    log2_v: v.log2(),
                },
                (EntropyKind::Renyi, EntropyNorm::Exp) => Scorer::RenyiExp { t, v },
            },
        })
    }

    /// Confidence of one frame (a full row of log-probs, blank included), clamped to
    /// `[0, 1]` (NeMo's values leave it only by rounding). A row with NaN yields 0 rather
    /// than poisoning the word's aggregate.
    pub(crate) fn score(&self, row: &[f32]) -> f32 {
        // f64 accumulation: the sums run over ~29 terms of very different magnitudes and the
        // uniform distribution's value is subtracted from a nearby one for flat rows.
        let s_alpha = |t: f64| -> f64 { row.iter().map(|&x| (t * finite(x)).exp()).sum() };
        let neg_gibbs = |t: f64| -> f64 {
            row.iter()
                .map(|&x| {
                    let x = finite(x);
                    (t * x).exp() * x
                })
                .sum()
        };
        let max_x = || finite(row.iter().copied().fold(f32::NEG_INFINITY, f32::max));
        let conf = match *self {
            Scorer::MaxProb { v } => (max_x().exp() * v - 1.0) / (v - 1.0),
            Scorer::MaxProbAlpha { t, v_t } => ((max_x() * t).exp() * v_t - 1.0) / (v_t - 1.0),
            Scorer::GibbsLinBaseline { ln_v } => 1.0 + neg_gibbs(1.0) / ln_v,
            Scorer::GibbsExpBaseline { v } => (neg_gibbs(1.0).exp() * v - 1.0) / (v - 1.0),
            Scorer::GibbsLin { t, scale } => 1.0 + neg_gibbs(t) * scale,
            Scorer::GibbsExp { t, m } => ((neg_gibbs(t) * t).exp() - m) / (1.0 - m),
            Scorer::TsallisLin { t, denominator } => 1.0 + (1.0 - s_alpha(t)) / denominator,
            Scorer::TsallisExp { t, m } => (((1.0 - s_alpha(t)) / (1.0 - t)).exp() - m) / (1.0 - m),
            Scorer::RenyiLin { t, log2_v } => 1.0 + s_alpha(t).log2() / (t - 1.0) / log2_v,
            Scorer::RenyiExp { t, v } => (s_alpha(t).powf(1.0 / (t - 1.0)) * v - 1.0) / (v - 1.0),
        };
        if conf.is_nan() || row.iter().any(|x| x.is_nan()) {
            0.0
        } else {
            conf.clamp(0.0, 1.0) as f32
        }
    }
}

/// Confidence in `[0, 1]` of a single frame's log-probability row (`row.len()` = vocab
/// including blank) under `measure`; 0 for an invalid measure or a row shorter than 2.
/// Convenience for callers outside the decoder; the decoder itself precomputes the
/// constants.
pub fn frame_confidence(measure: ConfidenceMeasure, row: &[f32]) -> f32 {
    match Scorer::new(measure, row.len()) {
        Ok(s) => s.score(row),
        Err(_) => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip() {
        for alpha in [0.33f32, 1.0, 0.5, 2.0] {
            for m in ConfidenceMeasure::all(alpha) {
                assert_eq!(m.to_string().parse::<ConfidenceMeasure>(), Ok(m));
            }
        }
        assert_eq!(
            "tsallis_exp".parse::<ConfidenceMeasure>(),
            Ok(ConfidenceMeasure::NEMO_DEFAULT)
        );
        assert_eq!(
            "max-prob:1".parse::<ConfidenceMeasure>(),
            Ok(ConfidenceMeasure::MaxProb { alpha: 1.0 })
        );
        for bad in [
            "",
            "entropy",
            "gibbs",
            "max-prob:0",
            "renyi-exp:-1",
            "gibbs-lin:x",
        ] {
            assert!(bad.parse::<ConfidenceMeasure>().is_err(), "{bad}");
        }
        for a in ConfidenceAggregation::ALL {
            assert_eq!(a.to_string().parse(), Ok(a));
        }
        assert!("median".parse::<ConfidenceAggregation>().is_err());
        assert_eq!(ConfidenceConfig::default(), ConfidenceConfig::DEFAULT);
        assert!(ConfidenceConfig::DEFAULT.validate().is_ok());
    }

    #[test]
    fn aggregates_as_nemo_does() {
        use ConfidenceAggregation::*;
        // Tokens (0.5, 0.7) and (0.2): NeMo aggregates each token, then the tokens.
        let word = |a: ConfidenceAggregation| {
            let mut w = WordConfidence::EMPTY;
            w.add_frame(a, 0.5);
            w.add_frame(a, 0.7);
            w.close_token(a);
            w.add_frame(a, 0.2);
            w.value(a)
        };
        assert!((word(Mean) - (0.6 + 0.2) / 2.0).abs() < 1e-7);
        assert!((word(Min) - 0.2).abs() < 1e-7);
        assert!((word(Max) - 0.7).abs() < 1e-7);
        assert!((word(Prod) - 0.5 * 0.7 * 0.2).abs() < 1e-7);
        assert_eq!(WordConfidence::EMPTY.value(Mean), 1.0);
    }
}

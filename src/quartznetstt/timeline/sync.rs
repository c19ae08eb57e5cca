// SPDX-License-Identifier: MPL-2.0
//! What a buffer's timestamp means for the current stream: the resynchronisation logic, a
//! pure decision over timestamps and sample counts (no buffers, no text).
//!
//! An anchor ties one stream sample to one timestamp, and the sample count is the clock from
//! there. Timestamps are trusted to within a tolerance, as `audiobasesink` trusts them (its
//! `alignment-threshold` and `discont-wait`): jitter inside the tolerance changes nothing; a
//! discrepancy beyond it that persists for `discont-wait` (clock drift, a source whose clock
//! runs fast or slow) moves the anchor to the timestamps without touching the audio; a sudden
//! jump of more than twice the tolerance is a discontinuity: a hole of up to a chunk is filled
//! with silence, anything larger (or a step back) ends the stream and starts a new one.

use super::clock::Clock;

/// What a buffer's timestamp means for the current stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sync {
    /// No stream yet: it starts at this buffer.
    Start,
    /// Within the tolerance of the sample clock (or not beyond it for long): the sample count
    /// stays the clock.
    InStep,
    /// The timestamps have drifted this far (ns; positive: ahead of the sample count) for
    /// longer than `discont-wait`: the clock now follows them, the audio is untouched.
    Reanchor(i64),
    /// A hole this many samples long, short enough to fill with silence.
    Fill(u64),
    /// A long hole or a step back of this many ns (saturating at the `i64` range): end the
    /// stream (as at EOS) and start a new one here.
    Restart(i64),
}

/// Stream sample `sample` is at timestamp `pts`; the sample count is the clock around it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Anchor {
    pts: gst::ClockTime,
    sample: u64,
}

impl Anchor {
    /// The timestamp of stream sample `sample` (never before zero, never past
    /// `ClockTime::MAX`).
    fn time(&self, clock: &Clock, sample: u64) -> gst::ClockTime {
        if sample >= self.sample {
            self.pts.saturating_add(clock.time(sample - self.sample))
        } else {
            self.pts.saturating_sub(clock.time(self.sample - sample))
        }
    }
}

/// Where the current stream's sample clock is tied to the timestamps, and since when they
/// have been beyond the tolerance.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Resync {
    anchor: Option<Anchor>,
    /// The stream sample from which timestamps have been beyond the tolerance (but not a
    /// jump), while they stay so.
    drifting_since: Option<u64>,
}

impl Resync {
    /// Whether a stream is running.
    pub(super) fn is_started(&self) -> bool {
        self.anchor.is_some()
    }

    /// Starts a stream whose first sample is at `base`.
    pub(super) fn start(&mut self, base: gst::ClockTime) {
        self.anchor = Some(Anchor {
            pts: base,
            sample: 0,
        });
        self.drifting_since = None;
    }

    /// Ends the stream.
    pub(super) fn end(&mut self) {
        *self = Self::default();
    }

    /// Ties the clock of the running stream to `pts` at stream sample `pushed`.
    pub(super) fn reanchor(&mut self, pts: gst::ClockTime, pushed: u64) {
        if self.anchor.is_some() {
            self.anchor = Some(Anchor {
                pts,
                sample: pushed,
            });
        }
    }

    /// The timestamp of stream sample `sample` (zero-based when there is no stream).
    pub(super) fn time(&self, clock: &Clock, sample: u64) -> gst::ClockTime {
        self.anchor
            .map_or_else(|| clock.time(sample), |a| a.time(clock, sample))
    }

    /// Where a buffer stamped `pts` stands against the sample clock, `pushed` samples into
    /// the stream (see the module docs); `discont` is the buffer's DISCONT flag, which makes
    /// a discrepancy beyond the tolerance act at once.
    pub(super) fn sync(
        &mut self,
        clock: &Clock,
        pts: gst::ClockTime,
        pushed: u64,
        discont: bool,
    ) -> Sync {
        let Some(anchor) = self.anchor else {
            return Sync::Start;
        };
        // In i128: two timestamps anywhere in the u64 range differ by more than an i64.
        let diff = i128::from(pts.nseconds()) - i128::from(anchor.time(clock, pushed).nseconds());
        let tolerance = u128::from(clock.trust.tolerance.nseconds());
        if diff.unsigned_abs() <= tolerance {
            self.drifting_since = None;
            return Sync::InStep;
        }
        let jump = diff.unsigned_abs() > 2 * tolerance;
        if !jump && !discont {
            let since = *self.drifting_since.get_or_insert(pushed);
            if clock.time(pushed.saturating_sub(since)) < clock.trust.discont_wait {
                return Sync::InStep;
            }
        }
        self.drifting_since = None;
        let ns = diff.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
        let chunk = i128::from(clock.time(clock.chunk_samples).nseconds());
        if !jump {
            Sync::Reanchor(ns)
        } else if diff > 0 && diff <= chunk {
            // `diff` is at most a ClockTime here.
            Sync::Fill(clock.samples(gst::ClockTime::from_nseconds(diff as u64)))
        } else {
            Sync::Restart(ns)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quartznetstt::timeline::clock::Tolerance;

    fn ms(ms: u64) -> gst::ClockTime {
        gst::ClockTime::from_mseconds(ms)
    }

    fn clock() -> Clock {
        Clock {
            sample_rate: 16_000,
            frame_samples: 320,
            chunk_samples: 32_000,
            word_gap_samples: 4800,
            trust: Tolerance {
                tolerance: ms(40),
                discont_wait: ms(1000),
            },
        }
    }

    /// A stream started at `base`.
    fn started(base: gst::ClockTime) -> Resync {
        let mut r = Resync::default();
        assert_eq!(r.sync(&clock(), base, 0, false), Sync::Start);
        r.start(base);
        r
    }

    #[test]
    fn jumps_fill_or_restart_at_once() {
        let c = clock();
        let mut t = started(ms(1000));
        let pushed = 16_000; // 1 s in
        assert_eq!(t.sync(&c, ms(2000), pushed, false), Sync::InStep);
        assert_eq!(t.sync(&c, ms(2040), pushed, false), Sync::InStep); // the tolerance
        assert_eq!(t.sync(&c, ms(1960), pushed, false), Sync::InStep);
        assert_eq!(t.sync(&c, ms(2500), pushed, false), Sync::Fill(8000));
        assert_eq!(t.sync(&c, ms(4000), pushed, false), Sync::Fill(32_000)); // exactly a chunk
        assert_eq!(
            t.sync(&c, ms(4001), pushed, false),
            Sync::Restart(2_001_000_000)
        );
        assert_eq!(
            t.sync(&c, ms(1900), pushed, false),
            Sync::Restart(-100_000_000)
        ); // back
    }

    #[test]
    fn jitter_within_the_tolerance_never_resyncs() {
        let c = clock();
        // +-30 ms around the sample clock, 100 ms buffers, for a minute: the worst case is
        // a discrepancy of up to 60 ms against an anchor that was itself 30 ms off, beyond
        // the tolerance now and then but never for a whole discont-wait.
        let mut seed = 7u64;
        let mut jitter = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as i64 % 61 - 30
        };
        let first = jitter();
        let mut t = started(ms((1000 + first) as u64));
        for i in 1..600u64 {
            let pts = ms((1000 + i as i64 * 100 + jitter()) as u64);
            assert_eq!(t.sync(&c, pts, i * 1600, false), Sync::InStep, "buffer {i}");
        }
    }

    #[test]
    fn lasting_drift_moves_the_clock_without_touching_audio() {
        let c = clock();
        let mut t = started(ms(0));
        // The source's clock runs 1 % slow: its timestamps fall behind the sample count.
        let mut reanchored = Vec::new();
        for i in 1..200u64 {
            let pushed = i * 1600;
            let pts = gst::ClockTime::from_nseconds(i * 99_000_000);
            match t.sync(&c, pts, pushed, false) {
                Sync::InStep => {}
                Sync::Reanchor(drift) => {
                    assert!((-80_000_000..-40_000_000).contains(&drift), "{drift}");
                    t.reanchor(pts, pushed);
                    reanchored.push(i);
                }
                other => panic!("buffer {i}: {other:?}"),
            }
        }
        // Beyond 40 ms after 4.1 s, then after another 1 s of waiting, and so on.
        assert_eq!(reanchored.first(), Some(&51));
        assert!(reanchored.len() >= 3, "{reanchored:?}");
        // The output clock now follows the timestamps.
        let last = 199 * 1600;
        let drift = t.time(&c, last).nseconds() as i64 - 199 * 99_000_000;
        assert!(drift.abs() <= 80_000_000, "{drift}");
    }

    #[test]
    fn a_discont_flag_resyncs_at_once() {
        let c = clock();
        let mut t = started(ms(0));
        assert_eq!(
            t.sync(&c, ms(1050), 16_000, true),
            Sync::Reanchor(50_000_000)
        );
        t.reanchor(ms(1050), 16_000);
        assert_eq!(t.time(&c, 16_000), ms(1050));
        assert_eq!(t.time(&c, 0), ms(50));
        // An anchor never puts a sample before zero.
        t.reanchor(ms(10), 16_000);
        assert_eq!(t.time(&c, 0), ms(0));
    }

    /// Timestamps and sample counts anywhere in their range: no overflow, the clock
    /// saturates at the largest timestamp, and differences beyond an i64 saturate.
    #[test]
    fn huge_timestamps_and_counts_saturate() {
        let c = clock();
        let near_end = gst::ClockTime::MAX - gst::ClockTime::SECOND;
        let mut t = started(near_end);
        assert_eq!(t.sync(&c, gst::ClockTime::MAX, 16_000, false), Sync::InStep);
        assert_eq!(t.time(&c, u64::MAX), gst::ClockTime::MAX);
        assert_eq!(t.time(&c, 32_000), gst::ClockTime::MAX);
        assert_eq!(t.sync(&c, ms(0), u64::MAX, true), Sync::Restart(i64::MIN));
        let mut t = started(ms(0));
        assert_eq!(
            t.sync(&c, gst::ClockTime::MAX, 0, false),
            Sync::Restart(i64::MAX)
        );
        // Drift measured since a sample count that went back.
        assert_eq!(t.sync(&c, ms(1060), 16_000, false), Sync::InStep);
        assert_eq!(t.sync(&c, ms(60), 0, false), Sync::InStep);
        t.reanchor(gst::ClockTime::MAX, u64::MAX);
        assert_eq!(t.time(&c, 0), gst::ClockTime::ZERO);
        // A tolerance too large for an i64 trusts everything.
        let mut trusting = c;
        trusting.trust.tolerance = gst::ClockTime::MAX;
        assert_eq!(
            t.sync(&trusting, gst::ClockTime::MAX, 0, true),
            Sync::InStep
        );
    }
}

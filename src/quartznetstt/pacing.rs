// SPDX-License-Identifier: MPL-2.0
//! Keeping up with a live source when recognition is slower than real time.
//!
//! A live source does not wait: if the model cannot keep up, audio piles up in front of the
//! element (in a queue, or in the capture device until it overruns) and the text falls
//! further and further behind. The element instead drops the input whose text could no
//! longer be on time, recognises again from the first buffer that can be, and says how much
//! it dropped: a QoS message per episode, and a WARNING for the first episode and then at
//! most every [`WARNING_INTERVAL`] of stream time, summing the episodes since the last one.
//!
//! Input can also arrive late because something downstream blocks the streaming thread (a
//! synchronising sink or `textoverlay` without a queue in between): then the lag is steady
//! and dropping would lose all the audio without catching up, so input is dropped only while
//! recognition itself is slower than real time (its processing time over about the last
//! [`RATE_WINDOW`] of audio exceeds that audio's duration). The other case is reported once.

/// How much recent audio the processing rate is measured over.
pub const RATE_WINDOW: gst::ClockTime = gst::ClockTime::from_seconds(5);

/// Least stream time between two warnings about dropped input.
pub const WARNING_INTERVAL: gst::ClockTime = gst::ClockTime::from_seconds(10);

/// What to do with one input buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// Recognise it.
    Keep,
    /// Drop it; `first` for the first buffer of an episode (the stream so far is finished).
    Drop { first: bool },
    /// Recognise it; an episode of dropping just ended (report it).
    Resume(Episode),
    /// Recognise it, although it is late: recognition keeps up, so something else holds the
    /// input back (reported once).
    Late,
}

/// Input dropped in one go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Episode {
    /// Timestamp of the first buffer dropped.
    pub from: gst::ClockTime,
    /// Timestamp just after the last buffer dropped.
    pub until: gst::ClockTime,
    /// Samples dropped.
    pub samples: u64,
    /// Buffers dropped.
    pub buffers: u64,
    /// Dropped because the inference server running the model was lost (`served`), not
    /// because recognition was slow.
    pub server: bool,
}

/// Episodes summed for one warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Timestamp of the first buffer dropped.
    pub from: gst::ClockTime,
    /// Timestamp just after the last buffer dropped.
    pub until: gst::ClockTime,
    /// Samples dropped.
    pub samples: u64,
    /// Episodes summed.
    pub episodes: u64,
    /// Whether any of them was the inference server's loss.
    pub server: bool,
}

/// How far behind real time the input may fall, and the episode under way.
#[derive(Debug, Default)]
pub struct Pacer {
    episode: Option<Episode>,
    /// Episodes ended but not yet warned about.
    unwarned: Option<Summary>,
    /// Timestamp of the last warning's end.
    warned_at: Option<gst::ClockTime>,
    /// Totals for QoS statistics: samples recognised and dropped since start.
    pub processed: u64,
    pub dropped: u64,
    /// Recognition time and audio time over the recent audio (exponentially decayed).
    busy_ns: f64,
    audio_ns: f64,
    late_reported: bool,
    /// The inference server was lost: input before this timestamp is dropped.
    outage_until: Option<gst::ClockTime>,
    /// Tries in a row the server did not answer (0: it answered the last).
    failures: u32,
}

impl Pacer {
    /// Decides on a buffer at `pts` holding `samples` (`duration` long) that arrives `lag`
    /// behind real time (`None`: not live, or unknown; never dropped), when `allowed` is the
    /// most the text can be behind and still be on time.
    pub fn pace(
        &mut self,
        lag: Option<gst::ClockTime>,
        allowed: gst::ClockTime,
        pts: gst::ClockTime,
        duration: gst::ClockTime,
        samples: u64,
    ) -> Pace {
        if let Some(until) = self.outage_until {
            if pts < until {
                return self.drop_input(pts, duration, samples, true);
            }
            // Time to try the server again: this buffer goes to it.
            self.outage_until = None;
        }
        let late = lag.is_some_and(|lag| lag > allowed);
        if late && !self.slower_than_real_time() && self.episode.is_none() {
            self.processed = self.processed.saturating_add(samples);
            if std::mem::replace(&mut self.late_reported, true) {
                return Pace::Keep;
            }
            return Pace::Late;
        }
        if late {
            return self.drop_input(pts, duration, samples, false);
        }
        self.processed = self.processed.saturating_add(samples);
        match self.episode.take() {
            Some(episode) => Pace::Resume(episode),
            None => Pace::Keep,
        }
    }

    /// Adds a buffer to the episode under way (a new one if none is).
    fn drop_input(
        &mut self,
        pts: gst::ClockTime,
        duration: gst::ClockTime,
        samples: u64,
        server: bool,
    ) -> Pace {
        self.dropped = self.dropped.saturating_add(samples);
        let first = self.episode.is_none();
        let episode = self.episode.get_or_insert(Episode {
            from: pts,
            until: pts,
            samples: 0,
            buffers: 0,
            server,
        });
        // Upstream timestamps and durations can be anything: saturate, never overflow.
        episode.until = pts.saturating_add(duration);
        episode.samples = episode.samples.saturating_add(samples);
        episode.buffers += 1;
        episode.server |= server;
        Pace::Drop { first }
    }

    /// The inference server did not answer for the buffer at `pts` (`duration` long, of
    /// `samples`), which is dropped with the stream so far: input is dropped until the next
    /// try, a wait that doubles with each failure in a row (`served::FIRST_RETRY_WAIT` to
    /// `MAX_RETRY_WAIT`). Returns whether this began an outage, and the wait.
    pub fn server_lost(
        &mut self,
        pts: gst::ClockTime,
        duration: gst::ClockTime,
        samples: u64,
    ) -> (bool, gst::ClockTime) {
        use super::served::{FIRST_RETRY_WAIT, MAX_RETRY_WAIT};
        // The buffer was counted as processed when it was kept.
        self.processed = self.processed.saturating_sub(samples);
        self.drop_input(pts, duration, samples, true);
        let first = self.failures == 0;
        let doublings = self.failures.min(16);
        self.failures = self.failures.saturating_add(1);
        let wait = FIRST_RETRY_WAIT
            .saturating_mul(1u64 << doublings)
            .min(MAX_RETRY_WAIT);
        self.outage_until = Some(pts.saturating_add(duration).saturating_add(wait));
        (first, wait)
    }

    /// The model answered (a window was recognised): the next loss of the server begins a
    /// new outage.
    pub fn server_answered(&mut self) {
        self.failures = 0;
    }

    /// Records that recognising `audio` took `busy`.
    pub fn recognised(&mut self, audio: gst::ClockTime, busy: std::time::Duration) {
        let keep = (-(audio.nseconds() as f64) / RATE_WINDOW.nseconds() as f64).exp();
        self.busy_ns = self.busy_ns * keep + busy.as_nanos() as f64;
        self.audio_ns = self.audio_ns * keep + audio.nseconds() as f64;
    }

    /// Whether recognition took longer than the recent audio lasted.
    pub fn slower_than_real_time(&self) -> bool {
        self.busy_ns > self.audio_ns
    }

    /// Ends the episode under way, if any (end of stream, flush).
    pub fn finish(&mut self) -> Option<Episode> {
        self.outage_until = None;
        self.episode.take()
    }

    /// Adds an ended episode to the next warning; returns the summary to warn about now
    /// (the first episode, or `WARNING_INTERVAL` after the last warning; `flush` at the end
    /// of a stream).
    pub fn warning(&mut self, episode: Option<Episode>, flush: bool) -> Option<Summary> {
        if let Some(e) = episode {
            let sum = self.unwarned.get_or_insert(Summary {
                from: e.from,
                until: e.until,
                samples: 0,
                episodes: 0,
                server: false,
            });
            sum.server |= e.server;
            sum.until = e.until;
            sum.samples = sum.samples.saturating_add(e.samples);
            sum.episodes += 1;
        }
        let due = match (self.warned_at, self.unwarned) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(at), Some(sum)) => flush || sum.until >= at.saturating_add(WARNING_INTERVAL),
        };
        if !due {
            return None;
        }
        let sum = self.unwarned.take()?;
        self.warned_at = Some(sum.until);
        Some(sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> gst::ClockTime {
        gst::ClockTime::from_mseconds(ms)
    }

    #[test]
    fn late_input_is_dropped_in_episodes() {
        let mut p = Pacer::default();
        p.recognised(ms(1000), std::time::Duration::from_millis(1500));
        let allowed = ms(2000);
        let mut pace =
            |lag: Option<u64>, at: u64| p.pace(lag.map(ms), allowed, ms(at), ms(100), 1600);
        assert_eq!(pace(Some(500), 0), Pace::Keep);
        assert_eq!(pace(None, 100), Pace::Keep, "not live: never dropped");
        assert_eq!(pace(Some(2100), 200), Pace::Drop { first: true });
        assert_eq!(pace(Some(2050), 300), Pace::Drop { first: false });
        assert_eq!(
            pace(Some(10), 400),
            Pace::Resume(Episode {
                from: ms(200),
                until: ms(400),
                samples: 3200,
                buffers: 2,
                server: false,
            })
        );
        assert_eq!(pace(Some(3000), 500), Pace::Drop { first: true });
        assert_eq!(p.finish().map(|e| e.buffers), Some(1));
        assert_eq!(p.finish(), None);
        assert_eq!((p.processed, p.dropped), (3 * 1600, 3 * 1600));
    }

    #[test]
    fn input_held_back_while_recognition_keeps_up_is_kept() {
        let mut p = Pacer::default();
        p.recognised(ms(1000), std::time::Duration::from_millis(100));
        assert!(!p.slower_than_real_time());
        let mut pace = |lag: u64| p.pace(Some(ms(lag)), ms(2000), ms(0), ms(100), 1600);
        assert_eq!(pace(3900), Pace::Late);
        assert_eq!(pace(3900), Pace::Keep, "reported once");
        // Recognition falls behind: now late input is dropped.
        p.recognised(ms(100), std::time::Duration::from_millis(2000));
        assert!(p.slower_than_real_time());
        assert_eq!(
            p.pace(Some(ms(3900)), ms(2000), ms(0), ms(100), 1600),
            Pace::Drop { first: true }
        );
        // Recent audio counts more than old: a fast stretch makes it keep up again.
        for _ in 0..100 {
            p.recognised(ms(100), std::time::Duration::from_millis(10));
        }
        assert!(!p.slower_than_real_time());
    }

    #[test]
    fn warnings_sum_episodes_at_most_every_interval() {
        let mut p = Pacer::default();
        let episode = |from: u64| Episode {
            from: ms(from),
            until: ms(from + 500),
            samples: 8000,
            buffers: 5,
            server: false,
        };
        let first = p.warning(Some(episode(1000)), false).unwrap();
        assert_eq!((first.episodes, first.samples), (1, 8000));
        assert_eq!(p.warning(Some(episode(3000)), false), None);
        assert_eq!(p.warning(Some(episode(6000)), false), None);
        assert_eq!(p.warning(None, false), None);
        let sum = p.warning(Some(episode(11_000)), false).unwrap();
        assert_eq!(
            sum,
            Summary {
                from: ms(3000),
                until: ms(11_500),
                samples: 24_000,
                episodes: 3,
                server: false,
            }
        );
        assert_eq!(p.warning(Some(episode(12_000)), false), None);
        assert_eq!(p.warning(None, true).map(|s| s.episodes), Some(1));
        assert_eq!(p.warning(None, true), None);
    }

    /// Timestamps, durations and counts near their largest values saturate instead of
    /// overflowing (a panic in debug builds).
    #[test]
    fn huge_timestamps_and_counts_saturate() {
        let mut p = Pacer::default();
        p.recognised(ms(100), std::time::Duration::from_millis(2000));
        let near_end = gst::ClockTime::MAX - gst::ClockTime::SECOND;
        let mut pace =
            |pts, duration, samples| p.pace(Some(ms(3000)), ms(2000), pts, duration, samples);
        assert_eq!(
            pace(near_end, gst::ClockTime::MAX, u64::MAX),
            Pace::Drop { first: true }
        );
        assert_eq!(
            pace(gst::ClockTime::MAX, gst::ClockTime::MAX, u64::MAX),
            Pace::Drop { first: false }
        );
        let episode = p.finish().unwrap();
        assert_eq!(
            (episode.until, episode.samples),
            (gst::ClockTime::MAX, u64::MAX)
        );
        assert_eq!(p.dropped, u64::MAX);
        // Summed samples saturate; a warning due at the end of time comes at once.
        let mut w = Pacer::default();
        let small = Episode {
            from: ms(0),
            until: ms(500),
            samples: 1,
            buffers: 1,
            server: false,
        };
        assert!(w.warning(Some(small), false).is_some());
        let early = Episode {
            samples: u64::MAX,
            ..small
        };
        assert_eq!(w.warning(Some(early), false), None);
        let sum = w.warning(Some(episode), false).unwrap();
        assert_eq!((sum.samples, sum.episodes), (u64::MAX, 2));
        assert!(w.warning(Some(episode), false).is_some());
        p.recognised(gst::ClockTime::MAX, std::time::Duration::MAX);
        assert_eq!(
            p.pace(None, ms(0), near_end, near_end, u64::MAX),
            Pace::Keep
        );
        assert_eq!(p.processed, u64::MAX);
    }

    #[test]
    fn a_lost_server_drops_input_until_the_next_try_with_growing_waits() {
        let mut p = Pacer::default();
        let allowed = ms(2000);
        // Buffers of 100 ms; the server fails on the one at 1000 ms.
        assert_eq!(
            p.pace(Some(ms(0)), allowed, ms(900), ms(100), 1600),
            Pace::Keep
        );
        assert_eq!(
            p.pace(Some(ms(0)), allowed, ms(1000), ms(100), 1600),
            Pace::Keep
        );
        assert_eq!(p.server_lost(ms(1000), ms(100), 1600), (true, ms(500)));
        // Dropped until 1100 + 500 ms, in time or not.
        for at in [1100, 1200, 1500] {
            assert_eq!(
                p.pace(Some(ms(0)), allowed, ms(at), ms(100), 1600),
                Pace::Drop { first: false },
                "{at}"
            );
        }
        // The next try: kept, and the episode so far reported.
        let Pace::Resume(episode) = p.pace(Some(ms(0)), allowed, ms(1600), ms(100), 1600) else {
            panic!("the buffer at 1600 ms tries the server again");
        };
        assert_eq!(
            (episode.from, episode.until, episode.buffers),
            (ms(1000), ms(1600), 4)
        );
        assert!(episode.server);
        // Still down: the wait doubles, up to its cap; not a new outage.
        assert_eq!(p.server_lost(ms(1600), ms(100), 1600), (false, ms(1000)));
        for _ in 0..5 {
            p.server_lost(ms(1600), ms(100), 1600);
        }
        assert_eq!(p.server_lost(ms(1600), ms(100), 1600).1, ms(4000));
        // A buffer that completes no window proves nothing; an answer does: the next loss
        // is a new outage with the first wait.
        p.recognised(ms(100), std::time::Duration::from_millis(10));
        assert!(!p.server_lost(ms(1700), ms(100), 1600).0);
        p.server_answered();
        p.finish();
        assert_eq!(p.server_lost(ms(9000), ms(100), 1600), (true, ms(500)));
        let episode = p.finish();
        let sum = p.warning(episode, true).unwrap();
        assert!(sum.server);
        assert_eq!(p.dropped, 13 * 1600);
    }
}

// SPDX-License-Identifier: MPL-2.0
//! The streaming job: audio buffers into the recogniser, its results onto the timeline, and
//! the timeline's outputs downstream; keeping up with live input, following timestamps,
//! gaps, drains and flushes.

use std::time::Instant;

use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use quartznet_engine::streaming::ChunkResult;

use super::imp::{CAT, QuartzNetStt};
use super::input::convert_samples;
use super::loading::Stream;
use super::messages::{output_event, warning};
use super::pacing::{Episode, Pace};
use super::timeline::{Clock, Output, Sync, Timeline};

impl QuartzNetStt {
    /// Queues the error message of a failed recognition.
    fn recognition_failed(&self, error: &quartznet_engine::Error) -> gst::FlowError {
        self.notices.error(gst::error_msg!(
            gst::StreamError::Failed,
            ("recognition failed: {error}")
        ));
        gst::FlowError::Error
    }

    /// The timing constants of the running recogniser.
    fn clock(&self) -> Result<Clock, gst::FlowError> {
        let state = self.state.lock().unwrap();
        Ok(*state
            .as_ref()
            .ok_or(gst::FlowError::Flushing)?
            .timeline
            .clock())
    }

    /// Recognises one input buffer: its samples into the recogniser, the chunks they
    /// complete onto the timeline.
    pub(super) fn process_buffer(&self, buffer: &gst::Buffer) -> Result<(), gst::FlowError> {
        let map = buffer.map_readable().map_err(|_| {
            self.notices.error(gst::error_msg!(
                gst::StreamError::Decode,
                ("cannot map input buffer")
            ));
            gst::FlowError::Error
        })?;
        // Asked before the stream lock is taken: no query while a lock is held.
        let (upstream_live, _) = self.upstream();
        let mut stream_guard = self.stream.lock().unwrap();
        self.replan(&mut stream_guard, upstream_live)?;
        let stream = stream_guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        self.apply_hotword_change(stream);
        if self.keep_up(stream, buffer)? {
            return Ok(());
        }
        convert_samples(&map, &mut stream.odd_byte, &mut stream.samples);
        drop(map);

        match buffer.pts() {
            Some(pts) => self.follow_timestamp(stream, pts, buffer.flags())?,
            None => {
                let mut state = self.state.lock().unwrap();
                let state = state.as_mut().ok_or(gst::FlowError::Flushing)?;
                if !state.timeline.is_started() {
                    let segment = self.obj().segment();
                    let start = segment
                        .downcast_ref::<gst::ClockTime>()
                        .and_then(|s| s.start());
                    state.timeline.start(start.unwrap_or(gst::ClockTime::ZERO));
                }
            }
        }

        let (live, end_before) = {
            let state = self.state.lock().unwrap();
            let state = state.as_ref().ok_or(gst::FlowError::Flushing)?;
            let end = state
                .timeline
                .stream_end(stream.recognizer.samples_pushed());
            (state.live && upstream_live, end)
        };
        // A file waits for a server that is restarting; live input does not (`served`).
        stream
            .recognizer
            .set_server_retry(super::served::retry_policy(live));
        stream.recognizer.push(&stream.samples);
        // The model runs here, with only the stream lock held.
        let started = Instant::now();
        let mut results = Vec::new();
        loop {
            match stream.recognizer.next_result() {
                Ok(Some(result)) => results.push(result),
                Ok(None) => break,
                // The inference server is gone: live input keeps flowing (`served`).
                Err(e @ quartznet_engine::Error::Unavailable(_)) if live => {
                    let pts = buffer.pts().unwrap_or(end_before);
                    let duration = self.clock()?.time(stream.samples.len() as u64);
                    return self.server_lost(stream, pts, duration, &e);
                }
                Err(e) => return Err(self.recognition_failed(&e)),
            }
        }
        let busy = started.elapsed();
        let audio = self.clock()?.time(stream.samples.len() as u64);
        if let Some(state) = self.state.lock().unwrap().as_mut() {
            state.pacer.recognised(audio, busy);
            if !results.is_empty() {
                state.pacer.server_answered();
            }
        }
        self.queue_results(&results, None)
    }

    /// Drops live input that arrives too late for its text to be on time (recognition slower
    /// than real time: see `pacing`). Returns whether `buffer` was dropped. The first drop
    /// finishes the stream so far; the first buffer kept again starts a new one, and the
    /// episode is reported.
    fn keep_up(&self, stream: &mut Stream, buffer: &gst::Buffer) -> Result<bool, gst::FlowError> {
        let Some(pts) = buffer.pts() else {
            return Ok(false);
        };
        let lag = self.lag(pts);
        gst::trace!(CAT, imp = self, "buffer at {pts}: {lag:?} behind real time");
        let samples = buffer.size() as u64 / 2;
        let (pace, duration) = {
            let mut state = self.state.lock().unwrap();
            let state = state.as_mut().ok_or(gst::FlowError::Flushing)?;
            let duration = buffer
                .duration()
                .unwrap_or_else(|| state.timeline.clock().time(samples));
            let allowed = state.allowed_lag;
            let pace = state.pacer.pace(lag, allowed, pts, duration, samples);
            (pace, duration)
        };
        match pace {
            Pace::Keep => Ok(false),
            Pace::Late => {
                let text = format!(
                    "input arrives {} behind real time although recognition keeps up: \
                     something downstream blocks the streaming thread (put a queue after \
                     quartznetstt; see the README's Live captions); text may be late",
                    lag.unwrap_or(gst::ClockTime::ZERO)
                );
                self.notices
                    .message(warning(&*self.obj(), gst::CoreError::Clock, &text));
                Ok(false)
            }
            Pace::Resume(episode) => {
                self.report_dropped(Some(episode), false);
                Ok(false)
            }
            Pace::Drop { first: false } => {
                self.with_timeline(|t| t.skip(pts, duration))?;
                Ok(true)
            }
            Pace::Drop { first: true } => {
                gst::debug!(
                    CAT,
                    imp = self,
                    "{lag:?} behind real time at {pts}: dropping"
                );
                let pushed = stream.recognizer.samples_pushed();
                let end = self
                    .state
                    .lock()
                    .unwrap()
                    .as_ref()
                    .map_or(pts, |s| s.timeline.stream_end(pushed));
                self.finish_stream(stream, end)?;
                self.with_timeline(|t| t.skip(pts, duration))?;
                Ok(true)
            }
        }
    }

    /// Upstream's liveness and minimum latency, asked once per stream (not live when
    /// upstream does not answer).
    fn upstream(&self) -> (bool, gst::ClockTime) {
        if let Some(known) = self.state.lock().unwrap().as_ref().and_then(|s| s.upstream) {
            return known;
        }
        let mut query = gst::query::Latency::new();
        let upstream = if self.obj().sink_pad().peer_query(&mut query) {
            let (live, min, _) = query.result();
            (live, min)
        } else {
            (false, gst::ClockTime::ZERO)
        };
        if let Some(state) = self.state.lock().unwrap().as_mut() {
            state.upstream = Some(upstream);
        }
        upstream
    }

    /// How far behind real time input stamped `pts` arrives: the pipeline clock's running
    /// time now less the buffer's running time and upstream's own latency. `None` when
    /// upstream is not live (a file is never dropped) or there is no clock.
    fn lag(&self, pts: gst::ClockTime) -> Option<gst::ClockTime> {
        let (live, upstream_latency) = self.upstream();
        if !live {
            return None;
        }
        let element = self.obj();
        let now = element.clock()?.time().checked_sub(element.base_time()?)?;
        let segment = element.segment();
        let running = segment
            .downcast_ref::<gst::ClockTime>()?
            .to_running_time(pts)?;
        now.checked_sub(running.saturating_add(upstream_latency))
    }

    /// A QoS message for input dropped to keep up (`None`: none, but the end of a stream),
    /// and a WARNING summing the episodes when one is due (see `pacing`).
    fn report_dropped(&self, episode: Option<Episode>, flush: bool) {
        let (processed, dropped, summary, clock) = {
            let mut state = self.state.lock().unwrap();
            let Some(state) = state.as_mut() else {
                return;
            };
            let summary = state.pacer.warning(episode, flush);
            let clock = *state.timeline.clock();
            (state.pacer.processed, state.pacer.dropped, summary, clock)
        };
        if let Some(sum) = summary.filter(|s| s.server) {
            let text = format!(
                "dropped {} ms of live audio ({} times between {} and {}) while the inference \
                 server did not answer",
                clock.time(sum.samples).mseconds(),
                sum.episodes,
                sum.from,
                sum.until
            );
            self.notices
                .message(warning(&*self.obj(), gst::ResourceError::Read, &text));
        } else if let Some(sum) = summary {
            let text = format!(
                "recognition is slower than real time: dropped {} ms of audio ({} times \
                 between {} and {}) whose text could no longer be on time; use a smaller \
                 model, a longer chunk (less recomputation), more threads, or a larger latency",
                clock.time(sum.samples).mseconds(),
                sum.episodes,
                sum.from,
                sum.until
            );
            self.notices
                .message(warning(&*self.obj(), gst::CoreError::TooLazy, &text));
        }
        let Some(episode) = episode else {
            return;
        };
        let span = episode.until.saturating_sub(episode.from);
        let segment = self.obj().segment();
        let segment = segment.downcast_ref::<gst::ClockTime>();
        let qos = gst::message::Qos::builder(true)
            .running_time_if_some(segment.and_then(|s| s.to_running_time(episode.from)))
            .stream_time_if_some(segment.and_then(|s| s.to_stream_time(episode.from)))
            .timestamp(episode.from)
            .duration(span)
            .values(span.nseconds() as i64, 1.0, 1_000_000)
            .stats(
                gst::format::Default::from_u64(processed),
                gst::format::Default::from_u64(dropped),
            )
            .src(&*self.obj())
            .build();
        self.notices.message(qos);
    }

    /// Keeps the recogniser's sample clock in step with buffer timestamps (see
    /// `Timeline::sync`): jitter within the tolerance changes nothing; lasting drift moves the
    /// clock to the timestamps (the audio is untouched); a short hole is filled with silence;
    /// a long one or a step back ends the current stream as at EOS and starts a new one at
    /// the new timestamp. Each resynchronisation is a WARNING saying what happened to how
    /// much audio (drift only the first time: it recurs for as long as the source drifts).
    fn follow_timestamp(
        &self,
        stream: &mut Stream,
        pts: gst::ClockTime,
        flags: gst::BufferFlags,
    ) -> Result<(), gst::FlowError> {
        let pushed = stream.recognizer.samples_pushed();
        let discont = flags.contains(gst::BufferFlags::DISCONT);
        let (sync, end, first_drift) = {
            let mut state = self.state.lock().unwrap();
            let state = state.as_mut().ok_or(gst::FlowError::Flushing)?;
            let sync = state.timeline.sync(pts, pushed, discont);
            let first_drift = matches!(sync, Sync::Reanchor(_)) && !state.drift_warned;
            state.drift_warned |= first_drift;
            (sync, state.timeline.stream_end(pushed), first_drift)
        };
        let ms = |ns: i64| ns as f64 / 1e6;
        match sync {
            Sync::InStep => {}
            Sync::Start => self.with_timeline(|t| t.start(pts))?,
            Sync::Reanchor(drift) => {
                let text = format!(
                    "input timestamps drift from the sample count: {:+.1} ms at {pts}; the text \
                     timestamps follow the input's, no audio was changed",
                    ms(drift)
                );
                if first_drift {
                    self.notices
                        .message(warning(&*self.obj(), gst::StreamError::Format, &text));
                } else {
                    gst::info!(CAT, imp = self, "{text}");
                }
                self.with_timeline(|t| t.reanchor(pts, pushed))?;
            }
            Sync::Fill(missing) => {
                let text = format!(
                    "{:.1} ms of audio missing before {pts} (timestamp {end} expected): filled with silence",
                    self.clock()?.time(missing).nseconds() as f64 / 1e6,
                );
                self.notices
                    .message(warning(&*self.obj(), gst::StreamError::Format, &text));
                stream.recognizer.push(&vec![0.0; missing as usize]);
            }
            Sync::Restart(jump) => {
                let text = format!(
                    "timestamp jump of {:+.1} ms from {end} to {pts} (discont {discont}): the \
                     audio so far was recognised as a finished stream and a new stream starts",
                    ms(jump)
                );
                self.notices
                    .message(warning(&*self.obj(), gst::StreamError::Format, &text));
                let results = stream
                    .recognizer
                    .finish()
                    .map_err(|e| self.recognition_failed(&e))?;
                self.queue_results(&results, Some(end))?;
                self.with_timeline(|t| t.start(pts))?;
            }
        }
        Ok(())
    }

    fn with_timeline(&self, f: impl FnOnce(&mut Timeline)) -> Result<(), gst::FlowError> {
        let mut state = self.state.lock().unwrap();
        let state = state.as_mut().ok_or(gst::FlowError::Flushing)?;
        f(&mut state.timeline);
        Ok(())
    }

    /// Queues the output of recognised chunks on the timeline.
    fn queue_results(
        &self,
        results: &[ChunkResult],
        end: Option<gst::ClockTime>,
    ) -> Result<(), gst::FlowError> {
        self.with_timeline(|timeline| {
            for result in results {
                if timeline.push_result(result, end) {
                    gst::debug!(
                        CAT,
                        imp = self,
                        "text {:?} held beyond the reported latency: its timestamp moves forward",
                        result.words.first().map(|w| &w.text)
                    );
                }
            }
        })
    }

    /// Recognises all buffered audio and pushes the results downstream (EOS, new segment).
    pub(super) fn drain(&self) -> Result<(), gst::FlowError> {
        let episode = self.state.lock().unwrap().as_mut().and_then(|s| {
            s.upstream = None;
            s.pacer.finish()
        });
        self.report_dropped(episode, true);
        {
            let mut stream_guard = self.stream.lock().unwrap();
            let Some(stream) = stream_guard.as_mut() else {
                return Ok(());
            };
            let pushed = stream.recognizer.samples_pushed();
            let (started, end) = {
                let state = self.state.lock().unwrap();
                let Some(state) = state.as_ref() else {
                    return Ok(());
                };
                (
                    state.timeline.is_started(),
                    state.timeline.stream_end(pushed),
                )
            };
            if !started && pushed == 0 {
                return Ok(());
            }
            self.finish_stream(stream, end)?;
        }
        self.push_outputs()
    }

    /// Recognises the rest of the stream, which ends at `end`, and queues its results; the
    /// next buffer starts a new stream.
    fn finish_stream(
        &self,
        stream: &mut Stream,
        end: gst::ClockTime,
    ) -> Result<(), gst::FlowError> {
        let results = stream
            .recognizer
            .finish()
            .map_err(|e| self.recognition_failed(&e))?;
        stream.odd_byte = None;
        self.queue_results(&results, Some(end))?;
        self.with_timeline(|t| t.end_stream())
    }

    /// An upstream GAP must not overtake the text the element holds for earlier audio. A
    /// short one (up to a chunk) is recognised as the silence it is, and the element's own
    /// text and gaps cover it (returns true: the event is consumed); a longer one, or one
    /// without duration, first drains the stream (all held text goes out) and then goes on.
    pub(super) fn fill_gap(
        &self,
        start: gst::ClockTime,
        duration: Option<gst::ClockTime>,
    ) -> Result<bool, gst::FlowError> {
        let (short, clock) = {
            let state = self.state.lock().unwrap();
            let Some(state) = state.as_ref() else {
                return Ok(false);
            };
            let clock = *state.timeline.clock();
            let chunk = clock.time(clock.chunk_samples);
            (
                state.timeline.is_started() && duration.is_some_and(|d| d <= chunk),
                clock,
            )
        };
        if !short {
            self.drain()?;
            return Ok(false);
        }
        let duration = duration.unwrap_or(gst::ClockTime::ZERO);
        let samples = clock.samples(duration);
        let mut silence = gst::Buffer::from_mut_slice(vec![0u8; samples as usize * 2]);
        {
            let silence = silence.get_mut().expect("a new buffer is writable");
            silence.set_pts(start);
            silence.set_duration(duration);
        }
        self.process_buffer(&silence)?;
        self.push_outputs()?;
        Ok(true)
    }

    /// Posts the pending reports and pushes the pending outputs downstream (outside
    /// `generate_output`, which hands the base class one buffer at a time).
    fn push_outputs(&self) -> Result<(), gst::FlowError> {
        let (outputs, reports) = {
            let mut state = self.state.lock().unwrap();
            let state = state.as_mut().ok_or(gst::FlowError::Flushing)?;
            (state.timeline.take_outputs(), state.timeline.take_reports())
        };
        self.post_reports(reports);
        let src = self.obj().src_pad().clone();
        for output in outputs {
            match output {
                Output::Text(buffer) => {
                    src.push(buffer)?;
                }
                event => {
                    src.push_event(output_event(event));
                }
            }
        }
        Ok(())
    }

    /// Forgets all audio and pending output (FLUSH_STOP).
    pub(super) fn reset(&self) {
        if let Some(stream) = self.stream.lock().unwrap().as_mut() {
            stream.recognizer.reset();
            stream.odd_byte = None;
        }
        if let Some(state) = self.state.lock().unwrap().as_mut() {
            state.timeline.clear();
            state.pacer.finish();
            state.upstream = None;
        }
    }
}

// SPDX-License-Identifier: MPL-2.0
//! A progress bar on standard error for long inputs, shown only on a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// Inputs shorter than this finish before a bar would tell anything.
const MIN_SECONDS: u64 = 30;

/// The bar of one input (hidden unless standard error is a terminal and the input is long).
pub struct Progress {
    bar: Option<ProgressBar>,
    enabled: bool,
    name: String,
}

impl Progress {
    /// A bar for `name`, if `enabled` and standard error is a terminal.
    pub fn new(name: &str, enabled: bool) -> Self {
        Self {
            bar: None,
            enabled: enabled && std::io::stderr().is_terminal(),
            // The file name only: a long path would wrap the bar's line.
            name: std::path::Path::new(name)
                .file_name()
                .map_or_else(|| name.to_string(), |n| n.to_string_lossy().into_owned()),
        }
    }

    /// Where the audio stands (seconds read of the input's duration).
    pub fn update(&mut self, position: Option<gst::ClockTime>, duration: Option<gst::ClockTime>) {
        if !self.enabled {
            return;
        }
        let (Some(position), Some(duration)) = (position, duration) else {
            return;
        };
        if duration.seconds() < MIN_SECONDS {
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::new(duration.seconds());
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{wide_bar}] {pos}/{len} s (eta {eta})")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(self.name.clone());
            bar
        });
        bar.set_position(position.seconds().min(duration.seconds()));
    }

    /// Runs `f` (which writes to the terminal) without the bar in the way.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    /// Removes the bar.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

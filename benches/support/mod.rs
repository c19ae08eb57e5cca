// SPDX-License-Identifier: MPL-2.0
//! What a bench needs that has nothing to do with recognition: its command line, timing
//! within a budget, the benchmark audio, and how busy the machine was meanwhile. Included by
//! a bench with `mod support;`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Arguments after `--`: options with a value, switches and positional arguments. An option
/// `--name` not given falls back to the variable `QUARTZNETSTT_BENCH_NAME`.
pub struct Args {
    pub positional: Vec<PathBuf>,
    values: Vec<(String, String)>,
    switches: Vec<String>,
}

impl Args {
    /// Parses the process's arguments; `-h`/`--help` prints `usage` and exits.
    pub fn parse(valued: &[&str], switches: &[&str], usage: &str) -> Result<Self> {
        let mut parsed = Self {
            positional: Vec::new(),
            values: Vec::new(),
            switches: Vec::new(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                // cargo bench passes --bench to harness = false targets; it means nothing here.
                "--bench" => {}
                "-h" | "--help" => {
                    println!("{usage}");
                    std::process::exit(0);
                }
                a if valued.contains(&a) => {
                    let value = args.next().ok_or(format!("{a} needs a value"))?;
                    parsed.values.push((arg, value));
                }
                a if switches.contains(&a) => parsed.switches.push(arg),
                a if a.starts_with('-') => {
                    return Err(format!("unknown option {a}\n{usage}").into());
                }
                _ => parsed.positional.push(PathBuf::from(arg)),
            }
        }
        Ok(parsed)
    }

    /// The number given as `--name`, else in `QUARTZNETSTT_BENCH_NAME`, else `default`.
    pub fn number(&self, option: &str, default: f64) -> Result<f64> {
        let variable = format!(
            "QUARTZNETSTT_BENCH_{}",
            option.trim_start_matches('-').to_uppercase()
        );
        let given = self.values.iter().rev().find(|(o, _)| o == option);
        let (source, value) = match given {
            Some((o, v)) => (o.clone(), v.clone()),
            None => match std::env::var(&variable) {
                Ok(v) if !v.trim().is_empty() => (variable, v),
                _ => return Ok(default),
            },
        };
        match value.trim().parse::<f64>() {
            Ok(v) if v >= 0.0 => Ok(v),
            _ => Err(format!("{source} {value}: not a number >= 0").into()),
        }
    }

    /// The text given as `--name`, if any (the last one given).
    #[allow(dead_code)] // model_cost.rs's: throughput.rs takes only numbers
    pub fn value(&self, option: &str) -> Option<&str> {
        let given = self.values.iter().rev().find(|(o, _)| o == option);
        given.map(|(_, v)| v.as_str())
    }

    pub fn switch(&self, name: &str) -> bool {
        self.switches.iter().any(|s| s == name)
    }
}

/// Timed runs of one measurement, sorted.
pub struct Stats {
    runs: Vec<Duration>,
    /// The runs wanted, when the budget allowed fewer.
    reduced_from: Option<usize>,
}

impl Stats {
    pub fn median(&self) -> Duration {
        let (v, n) = (&self.runs, self.runs.len());
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2
        }
    }
    pub fn min(&self) -> Duration {
        self.runs[0]
    }
    pub fn max(&self) -> Duration {
        self.runs[self.runs.len() - 1]
    }
    /// "3", or "1<3" when the budget cut 3 runs to 1.
    pub fn runs_label(&self) -> String {
        match self.reduced_from {
            Some(n) => format!("{}<{n}", self.runs.len()),
            None => self.runs.len().to_string(),
        }
    }
}

/// How many timed runs a measurement gets, and how long they may take together.
pub struct Timer {
    pub runs: usize,
    pub budget: Duration,
}

impl Timer {
    /// One warm-up run (ONNX Runtime allocates and tunes on its first runs, buffers grow),
    /// then up to `runs` timed runs, fewer if the warm-up shows they would exceed the budget.
    /// `f` returns the time it wants counted, so set-up inside a run stays out.
    pub fn measure(&self, mut f: impl FnMut() -> Result<Duration>) -> Result<Stats> {
        let warm = f()?.as_secs_f64().max(1e-9);
        let affordable = (self.budget.as_secs_f64() / warm) as usize;
        let n = affordable.clamp(1, self.runs.max(1));
        let mut runs = (0..n).map(|_| f()).collect::<Result<Vec<_>>>()?;
        runs.sort();
        Ok(Stats {
            runs,
            reduced_from: (n < self.runs).then_some(self.runs),
        })
    }

    /// [`measure`](Self::measure) counting the whole of `f`.
    pub fn time(&self, mut f: impl FnMut() -> Result<()>) -> Result<Stats> {
        self.measure(|| {
            let start = Instant::now();
            f()?;
            Ok(start.elapsed())
        })
    }
}

/// A table of timed stages with their real-time factors, and notes printed under it.
#[derive(Default)]
pub struct Report {
    rows: Vec<(String, String, Stats)>,
    notes: Vec<String>,
}

impl Report {
    pub fn row(&mut self, model: &str, stage: impl Into<String>, stats: Stats) {
        self.rows.push((model.to_string(), stage.into(), stats));
    }

    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// Prints the table, RTF = median / `audio_seconds`, then the notes.
    pub fn print(&self, audio_seconds: f64) {
        println!(
            "{:<16} {:<38} {:>4} {:>10} {:>19} {:>9} {:>8}",
            "model", "stage", "runs", "median s", "min..max s", "RTF", "x RT"
        );
        for (model, stage, stats) in &self.rows {
            let median = stats.median().as_secs_f64();
            let rtf = median / audio_seconds;
            let (min, max) = (stats.min().as_secs_f64(), stats.max().as_secs_f64());
            let runs = stats.runs_label();
            let speed = 1.0 / rtf.max(1e-12);
            let range = format!("{min:.4}..{max:.4}");
            println!(
                "{model:<16} {stage:<38} {runs:>4} {median:>10.4} {range:>19} {rtf:>9.5} {speed:>8.1}"
            );
        }
        println!(
            "(runs \"a<b\": the budget cut b runs to a; x RT = audio seconds per second of work)"
        );
        for note in &self.notes {
            println!("- {note}");
        }
    }
}

/// The 16-bit mono WAV files of `dir` at `sample_rate`, concatenated in name order and
/// repeated to exactly `samples` samples: as int16 (for a WAV a pipeline reads) and as f32
/// (int16 / 32768, what the element converts to), so both see bit-identical audio.
pub fn looped_audio(dir: &Path, sample_rate: u32, samples: usize) -> Result<(Vec<i16>, Vec<f32>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    files.sort();
    let mut all = Vec::new();
    for path in &files {
        let mut reader =
            hound::WavReader::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let spec = reader.spec();
        if (spec.channels, spec.sample_rate, spec.bits_per_sample) != (1, sample_rate, 16) {
            return Err(format!(
                "{}: need {sample_rate} Hz mono 16-bit, found {spec:?}",
                path.display()
            )
            .into());
        }
        for s in reader.samples::<i16>() {
            all.push(s.map_err(|e| format!("{}: {e}", path.display()))?);
        }
    }
    if all.is_empty() {
        return Err(format!("no audio in {}", dir.display()).into());
    }
    let pcm: Vec<i16> = all.iter().copied().cycle().take(samples).collect();
    let float = pcm.iter().map(|&s| f32::from(s) / 32768.0).collect();
    Ok((pcm, float))
}

/// `pcm` as a mono 16-bit WAV file that is removed when the returned path is dropped.
pub fn temporary_wav(pcm: &[i16], sample_rate: u32) -> Result<tempfile::TempPath> {
    let path = tempfile::Builder::new()
        .prefix("quartznetstt-bench-")
        .suffix(".wav")
        .tempfile()?
        .into_temp_path();
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&path, spec)?;
    for &s in pcm {
        writer.write_sample(s)?;
    }
    writer.finalize()?;
    Ok(path)
}

/// The CPU model, core count and load average, for the report's header.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("model name"))?;
            Some(line.split_once(':')?.1.trim().to_string())
        });
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(String::from));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "CPU: {} | cores: {cores} | load average (1 min): {}",
        cpu.as_deref().unwrap_or("unknown"),
        load.as_deref().unwrap_or("?")
    )
}

/// Watches the machine's CPU time (jiffies from /proc) to tell how much of it other
/// processes took while a bench ran: shared cores inflate timings and make them noisy.
pub struct CpuWatch(Option<[u64; 3]>);

impl CpuWatch {
    pub fn start() -> Self {
        Self(cpu_jiffies())
    }

    /// What share of all the machine's CPU time since `start` was spent outside this
    /// process, in words, with a warning when it was enough to distort timings.
    pub fn others(&self) -> Option<String> {
        let ([busy0, total0, own0], [busy1, total1, own1]) = (self.0?, cpu_jiffies()?);
        let total = total1.checked_sub(total0).filter(|&t| t > 0)?;
        let share = (busy1 - busy0).saturating_sub(own1 - own0) as f64 / total as f64;
        let noisy = " (timings inflated and noisy; min is the better estimate)";
        let noisy = if share > 0.05 { noisy } else { "" };
        let share = 100.0 * share;
        Some(format!(
            "other processes used {share:.0} % of the machine's CPU time{noisy}"
        ))
    }
}

/// The machine's busy and total jiffies, and this process's own (user + system).
fn cpu_jiffies() -> Option<[u64; 3]> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|v| v.parse().ok())
        .collect();
    if fields.len() < 8 {
        return None;
    }
    let total: u64 = fields.iter().sum();
    // Idle and iowait are not busy.
    let busy = total - fields[3] - fields[4];
    let own_stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the parenthesised command name: state is the first field, utime the 12th.
    let own: Vec<&str> = own_stat.rsplit_once(')')?.1.split_whitespace().collect();
    let own = own.get(11)?.parse::<u64>().ok()? + own.get(12)?.parse::<u64>().ok()?;
    Some([busy, total, own])
}

/// Times a `gst-launch` style pipeline whose element `name` is held back: buffers wait at
/// its sink pad (a blocking probe; caps and segment events pass, so it is configured) until
/// PLAYING, and the sinks must not preroll (`async=false`). Returns how long NULL->PAUSED
/// took (loading, with no data) and PLAYING->EOS (all the processing, none of the loading).
pub fn time_pipeline(description: &str, name: &str) -> Result<(Duration, Duration)> {
    use gst::prelude::*;

    let pipeline = gst::parse::launch(description)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "the description is not a pipeline")?;
    let result = (|| {
        let sink = pipeline
            .by_name(name)
            .and_then(|e| e.static_pad("sink"))
            .ok_or(format!("no element {name} with a sink pad"))?;
        let probe = sink
            .add_probe(
                gst::PadProbeType::BLOCK
                    | gst::PadProbeType::BUFFER
                    | gst::PadProbeType::BUFFER_LIST,
                |_, _| gst::PadProbeReturn::Ok,
            )
            .ok_or("cannot block the sink pad")?;
        let bus = pipeline.bus().ok_or("pipeline without a bus")?;
        let error = |message: &gst::Message| match message.view() {
            gst::MessageView::Error(e) => Some(format!("{} ({:?})", e.error(), e.debug())),
            _ => None,
        };
        let failure = |what: &str| {
            bus.pop_filtered(&[gst::MessageType::Error])
                .and_then(|m| error(&m))
                .unwrap_or(what.into())
        };

        let start = Instant::now();
        if pipeline.set_state(gst::State::Paused).is_err()
            || pipeline.state(gst::ClockTime::NONE).0.is_err()
        {
            return Err(failure("the pipeline did not pause").into());
        }
        let load = start.elapsed();
        let start = Instant::now();
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| failure("the pipeline did not play"))?;
        sink.remove_probe(probe);
        let types = [gst::MessageType::Eos, gst::MessageType::Error];
        let message = bus
            .timed_pop_filtered(gst::ClockTime::from_seconds(600), &types)
            .ok_or("no EOS within 600 s")?;
        match error(&message) {
            Some(e) => Err(e.into()),
            None => Ok((load, start.elapsed())),
        }
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}

// SPDX-License-Identifier: MPL-2.0
//! Transcribes a WAV file with the engine alone, streaming it in 100 ms pieces as a live
//! source would, and prints each word with its time and confidence.
//!
//! ```sh
//! cargo run -p quartznet-engine --example transcribe -- samples/LJ001-0001.wav [MODEL.onnx]
//! ```
//!
//! Without a model it uses the bundled English one. The WAV must be 16-bit mono at the
//! model's rate (16 kHz for QuartzNet).

use std::path::PathBuf;

use quartznet_engine::config::RecognizerConfig;
use quartznet_engine::decode::transcript;
use quartznet_engine::model::{LoadOptions, OnnxModel, bundled};
use quartznet_engine::streaming::StreamingRecognizer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let wav = PathBuf::from(
        args.next()
            .ok_or("usage: transcribe FILE.wav [MODEL.onnx]")?,
    );
    let model_path = match args.next() {
        Some(path) => PathBuf::from(path),
        None => bundled::find()?,
    };

    let config = RecognizerConfig::default();
    let model = OnnxModel::load(
        &model_path,
        &LoadOptions {
            threads: config.threads,
        },
    )?;
    let rate = model.description().sample_rate;
    let seconds_per_frame = model.description().samples_per_output_frame() as f64 / f64::from(rate);
    let mut recognizer = StreamingRecognizer::from_config(model, &config)?;

    let mut reader = hound::WavReader::open(&wav)?;
    let spec = reader.spec();
    if spec.channels != 1 || spec.bits_per_sample != 16 || spec.sample_rate != rate {
        return Err(format!("{}: need 16-bit mono WAV at {rate} Hz", wav.display()).into());
    }
    let samples: Vec<f32> = reader
        .samples::<i16>()
        .map(|s| s.map(|v| f32::from(v) / 32768.0))
        .collect::<Result<_, _>>()?;

    let mut words = Vec::new();
    for piece in samples.chunks(rate as usize / 10) {
        recognizer.push(piece);
        while let Some(result) = recognizer.next_result()? {
            words.extend(result.words);
        }
    }
    for result in recognizer.finish()? {
        words.extend(result.words);
    }

    for word in &words {
        println!(
            "{:8.2} {:8.2}  {:.2}  {}",
            word.start_frame as f64 * seconds_per_frame,
            word.end_frame as f64 * seconds_per_frame,
            word.confidence,
            word.text
        );
    }
    println!("{}", transcript(&words));
    Ok(())
}

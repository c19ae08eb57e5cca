// SPDX-License-Identifier: MPL-2.0
//! WAV reading shared by the examples (`#[path = "support/wav.rs"] mod wav;`).

use std::path::Path;

/// The samples of a 16-bit mono WAV at `rate`, as f32 (int16 / 32768 scale); anything else is
/// an error naming the file.
pub fn read_wav(path: &Path, rate: u32) -> Result<Vec<f32>, Box<dyn std::error::Error>> {
    let mut reader = hound::WavReader::open(path)?;
    let spec = reader.spec();
    if spec.channels != 1 || spec.bits_per_sample != 16 || spec.sample_rate != rate {
        return Err(format!("{}: need 16-bit mono WAV at {rate} Hz", path.display()).into());
    }
    Ok(reader
        .samples::<i16>()
        .map(|s| s.map(|v| f32::from(v) / 32768.0))
        .collect::<Result<_, _>>()?)
}

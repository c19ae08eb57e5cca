// SPDX-License-Identifier: MPL-2.0
//! What comes in: S16LE bytes as the engine's samples, and panics as errors.

/// Runs `f`, returning the message of a panic in it as an error.
pub(super) fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string())
    })
}

/// Appends S16LE `bytes` to `samples` as f32 (int16 / 32768, NeMo's scale), carrying an odd
/// trailing byte over to the next buffer so buffers of any size lose nothing.
pub(super) fn convert_samples(bytes: &[u8], odd_byte: &mut Option<u8>, samples: &mut Vec<f32>) {
    let to_f32 = |pair: [u8; 2]| f32::from(i16::from_le_bytes(pair)) / 32768.0;
    samples.clear();
    let mut bytes = bytes;
    if let Some(first) = odd_byte.take() {
        match bytes.split_first() {
            Some((&second, rest)) => {
                samples.push(to_f32([first, second]));
                bytes = rest;
            }
            None => *odd_byte = Some(first),
        }
    }
    let pairs = bytes.chunks_exact(2);
    if let Some(&last) = pairs.remainder().first() {
        *odd_byte = Some(last);
    }
    samples.extend(pairs.map(|p| to_f32([p[0], p[1]])));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_errors_with_their_message() {
        assert_eq!(catch_panic(|| 7), Ok(7));
        let text: Result<(), String> = catch_panic(|| panic!("index {} out of range", 9));
        assert_eq!(text, Err("index 9 out of range".to_string()));
        let literal: Result<(), String> = catch_panic(|| panic!("boom"));
        assert_eq!(literal, Err("boom".to_string()));
    }

    #[test]
    fn odd_bytes_carry_over_between_buffers() {
        let values: [i16; 4] = [1000, -2000, 32767, -32768];
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let (mut odd, mut all, mut samples) = (None, Vec::new(), Vec::new());
        for piece in [
            &bytes[..1],
            &bytes[1..2],
            &bytes[2..2],
            &bytes[2..7],
            &bytes[7..],
        ] {
            convert_samples(piece, &mut odd, &mut samples);
            all.extend_from_slice(&samples);
        }
        let expected: Vec<f32> = values.iter().map(|&v| f32::from(v) / 32768.0).collect();
        assert_eq!(all, expected);
        assert_eq!(odd, None);
    }
}

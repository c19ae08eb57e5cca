// SPDX-License-Identifier: MPL-2.0
//! Minimal NumPy `.npy` reader/writer for f32 arrays, used to exchange features and
//! log-probs with the Python (NeMo) reference without pulling in a crate for it.
//!
//! Format: <https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html>.
//! The writer reproduces `numpy.save` byte for byte (format 1.0, `'<f4'`, C order, the
//! same spare "growth" spaces and 64-byte alignment), so files can be diffed against ones
//! written by Python.

use std::path::Path;

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// numpy's `ARRAY_ALIGN`: the data starts on a 64-byte boundary.
const ARRAY_ALIGN: usize = 64;
/// numpy's `GROWTH_AXIS_MAX_DIGITS`: spare spaces so the first axis can grow in place.
const GROWTH_AXIS_MAX_DIGITS: usize = 21;

#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    /// Elements in C (row-major) order.
    pub data: Vec<f32>,
}

/// Serialises like `numpy.save(f, np.asarray(data, dtype='<f4').reshape(shape))`.
/// Errors if `shape` does not describe `data.len()` elements.
pub fn to_bytes(shape: &[usize], data: &[f32]) -> Result<Vec<u8>, String> {
    let count = element_count(shape)?;
    if count != data.len() {
        return Err(format!(
            "npy: shape {shape:?} holds {count} elements but {} were given",
            data.len()
        ));
    }
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': {}, }}",
        python_tuple(shape)
    );
    if let Some(first) = shape.first() {
        let digits = first.to_string().len();
        header.push_str(&" ".repeat(GROWTH_AXIS_MAX_DIGITS.saturating_sub(digits)));
    }
    // Version 1.0 has a u16 header length; numpy falls back to 2.0 (u32) only when the
    // header does not fit, which takes a shape with thousands of dimensions.
    let hlen = header.len() + 1; // + '\n'
    let padded = |len_bytes: usize| {
        let prefix = MAGIC.len() + 2 + len_bytes;
        (prefix, hlen + ARRAY_ALIGN - (prefix + hlen) % ARRAY_ALIGN)
    };
    let (version, len_bytes) = if padded(2).1 <= u16::MAX as usize {
        (1u8, 2usize)
    } else {
        (2u8, 4usize)
    };
    let (prefix, total_header) = padded(len_bytes);
    let padlen = total_header - hlen;

    let mut out = Vec::with_capacity(prefix + total_header + data.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if len_bytes == 2 {
        out.extend_from_slice(&(total_header as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(total_header as u32).to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    out.resize(out.len() + padlen, b' ');
    out.push(b'\n');
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    Ok(out)
}

/// Writes `data` with `shape` as a `.npy` file, byte-identical to `numpy.save`.
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> std::io::Result<()> {
    let bytes = to_bytes(shape, data)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    std::fs::write(path, bytes)
}

/// Reads a `.npy` file holding a float32 or float64 array (float64 is narrowed to f32).
pub fn read_f32(path: &Path) -> Result<NpyArray, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    from_bytes(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses `.npy` bytes: format 1.0, 2.0 or 3.0; dtype `<f4`, `>f4`, `<f8` or `>f8`
/// (f8 narrowed to f32); C order only. Bytes after the array data are ignored, as
/// `numpy.load` does.
pub fn from_bytes(bytes: &[u8]) -> Result<NpyArray, String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not a .npy file (bad magic)".into());
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (hlen, hstart) = match (major, minor) {
        (1, 0) => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        (2, 0) | (3, 0) => {
            if bytes.len() < 12 {
                return Err("truncated .npy header".into());
            }
            let l = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            (l as usize, 12)
        }
        _ => return Err(format!("unsupported .npy format version {major}.{minor}")),
    };
    let hend = hstart
        .checked_add(hlen)
        .filter(|&e| e <= bytes.len())
        .ok_or("truncated .npy header")?;
    // 1.0/2.0 headers are latin-1; numpy only ever writes ASCII there. 3.0 is UTF-8.
    let header = std::str::from_utf8(&bytes[hstart..hend])
        .map_err(|_| "npy header is not valid text".to_string())?;
    let h = parse_header(header)?;

    let (elem, big_endian) = match h.descr.as_str() {
        "<f4" => (4, false),
        ">f4" => (4, true),
        "<f8" => (8, false),
        ">f8" => (8, true),
        d => {
            return Err(format!(
                "unsupported npy dtype {d:?} (only float32/float64 are read)"
            ));
        }
    };
    if h.fortran_order {
        return Err("npy array is in Fortran order; only C order is supported".into());
    }
    let count = element_count(&h.shape)?;
    let nbytes = count.checked_mul(elem).ok_or("npy array size overflows")?;
    let body = &bytes[hend..];
    if body.len() < nbytes {
        return Err(format!(
            "npy data truncated: shape {:?} needs {nbytes} bytes, file has {}",
            h.shape,
            body.len()
        ));
    }
    let body = &body[..nbytes];
    let data: Vec<f32> = if elem == 4 {
        body.chunks_exact(4)
            .map(|c| {
                let b = [c[0], c[1], c[2], c[3]];
                if big_endian {
                    f32::from_be_bytes(b)
                } else {
                    f32::from_le_bytes(b)
                }
            })
            .collect()
    } else {
        body.chunks_exact(8)
            .map(|c| {
                let b = [c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]];
                let v = if big_endian {
                    f64::from_be_bytes(b)
                } else {
                    f64::from_le_bytes(b)
                };
                v as f32
            })
            .collect()
    };
    Ok(NpyArray {
        shape: h.shape,
        data,
    })
}

fn element_count(shape: &[usize]) -> Result<usize, String> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("npy shape {shape:?} overflows"))
}

/// Python's `repr` of a tuple of ints: `()`, `(5,)`, `(1, 64, 5)`.
fn python_tuple(shape: &[usize]) -> String {
    match shape {
        [] => "()".into(),
        [d] => format!("({d},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({})", parts.join(", "))
        }
    }
}

struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// Parses the header dict, a Python literal such as
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (1, 64, 5), }`. Only the literal
/// forms numpy writes are accepted (strings, True/False, tuples of ints, also Python 2's
/// `3L`), which is all `numpy.load` would see from a well-formed file.
fn parse_header(text: &str) -> Result<Header, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let mut descr = None;
    let mut fortran = None;
    let mut shape = None;
    p.expect(b'{')?;
    loop {
        p.ws();
        if p.eat(b'}') {
            break;
        }
        let key = p.string()?;
        p.ws();
        p.expect(b':')?;
        p.ws();
        match key.as_str() {
            "descr" => {
                if p.peek() != Some(b'\'') && p.peek() != Some(b'"') {
                    return Err("unsupported npy dtype (structured arrays are not read)".into());
                }
                descr = Some(p.string()?);
            }
            "fortran_order" => fortran = Some(p.boolean()?),
            "shape" => shape = Some(p.int_tuple()?),
            other => return Err(format!("unexpected key {other:?} in npy header")),
        }
        p.ws();
        if p.eat(b',') {
            continue;
        }
        p.ws();
        p.expect(b'}')?;
        break;
    }
    Ok(Header {
        descr: descr.ok_or("npy header lacks 'descr'")?,
        fortran_order: fortran.ok_or("npy header lacks 'fortran_order'")?,
        shape: shape.ok_or("npy header lacks 'shape'")?,
    })
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!(
                "malformed npy header: expected '{}' at byte {}",
                c as char, self.i
            ))
        }
    }
    fn string(&mut self) -> Result<String, String> {
        let q = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => {
                return Err(format!(
                    "malformed npy header: expected a string at byte {}",
                    self.i
                ));
            }
        };
        self.i += 1;
        let start = self.i;
        while let Some(c) = self.peek() {
            if c == q {
                let s = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                self.i += 1;
                return Ok(s);
            }
            self.i += 1;
        }
        Err("malformed npy header: unterminated string".into())
    }
    fn boolean(&mut self) -> Result<bool, String> {
        let rest = &self.s[self.i..];
        if rest.starts_with(b"True") {
            self.i += 4;
            Ok(true)
        } else if rest.starts_with(b"False") {
            self.i += 5;
            Ok(false)
        } else {
            Err("malformed npy header: 'fortran_order' is not True/False".into())
        }
    }
    fn int_tuple(&mut self) -> Result<Vec<usize>, String> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            self.ws();
            if self.eat(b')') {
                return Ok(dims);
            }
            let start = self.i;
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.i += 1;
            }
            let digits = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
            let d: usize = digits
                .parse()
                .map_err(|_| format!("malformed npy shape at byte {start}"))?;
            dims.push(d);
            self.eat(b'L'); // Python 2 long suffix
            self.ws();
            if !self.eat(b',') {
                self.ws();
                self.expect(b')')?;
                return Ok(dims);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_matches_numpy_save() {
        let data: Vec<f32> = (0..320).map(|i| i as f32 * 0.5).collect();
        let bytes = to_bytes(&[1, 64, 5], &data).unwrap();
        let dict = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 64, 5), }";
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        assert_eq!(&bytes[8..10], b"v\x00"); // 118
        assert_eq!(&bytes[10..10 + dict.len()], dict);
        assert!(bytes[10 + dict.len()..127].iter().all(|&b| b == b' '));
        assert_eq!(bytes[127], b'\n');
        assert_eq!(bytes.len(), 128 + 320 * 4);
        assert_eq!(&bytes[128..132], &0.0f32.to_le_bytes());
        assert_eq!(&bytes[132..136], &0.5f32.to_le_bytes());
    }

    #[test]
    fn npy_shape_repr_and_alignment() {
        for shape in [vec![], vec![7], vec![2, 3], vec![1, 2, 3, 4], vec![0, 5]] {
            let n: usize = shape.iter().product();
            let bytes = to_bytes(&shape, &vec![1.0; n]).unwrap();
            let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
            assert_eq!((10 + hlen) % 64, 0, "{shape:?}");
            assert_eq!(bytes[10 + hlen - 1], b'\n');
            let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap();
            let want = python_tuple(&shape);
            assert!(header.contains(&format!("'shape': {want}, }}")), "{header}");
        }
        assert_eq!(python_tuple(&[]), "()");
        assert_eq!(python_tuple(&[5]), "(5,)");
        assert_eq!(python_tuple(&[1, 64, 5]), "(1, 64, 5)");
    }

    #[test]
    fn npy_round_trip() {
        let data: Vec<f32> = (0..24)
            .map(|i| (i as f32 - 7.5) * 1.25e-3)
            .chain([f32::INFINITY, f32::NEG_INFINITY, -0.0, f32::MIN_POSITIVE])
            .collect();
        let a = from_bytes(&to_bytes(&[4, 7], &data).unwrap()).unwrap();
        assert_eq!(a.shape, [4, 7]);
        assert_eq!(
            a.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            data.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        let s = from_bytes(&to_bytes(&[], &[3.5]).unwrap()).unwrap();
        assert_eq!((s.shape, s.data), (vec![], vec![3.5]));
        let e = from_bytes(&to_bytes(&[0, 3], &[]).unwrap()).unwrap();
        assert_eq!((e.shape, e.data), (vec![0, 3], vec![]));
    }

    #[test]
    fn npy_file_round_trip() {
        let dir = std::env::temp_dir().join(format!("npy-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.npy");
        write_f32(&path, &[2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        let a = read_f32(&path).unwrap();
        assert_eq!(a.shape, [2, 2]);
        assert_eq!(a.data, [1.0, 2.0, 3.0, 4.0]);
        assert!(write_f32(&path, &[3], &[1.0]).is_err());
        let err = read_f32(&dir.join("missing.npy")).unwrap_err();
        assert!(err.contains("missing.npy"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Builds a file by hand with an arbitrary header (as other numpy versions could).
    fn raw(version: u8, header: &str, body: &[u8]) -> Vec<u8> {
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&[version, 0]);
        if version == 1 {
            v.extend_from_slice(&(header.len() as u16).to_le_bytes());
        } else {
            v.extend_from_slice(&(header.len() as u32).to_le_bytes());
        }
        v.extend_from_slice(header.as_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn npy_reads_f8_big_endian_and_v2() {
        let body: Vec<u8> = [1.5f64, -2.25, 1e-3]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let a = from_bytes(&raw(
            1,
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }\n",
            &body,
        ))
        .unwrap();
        assert_eq!(a.shape, [3]);
        assert_eq!(a.data, [1.5, -2.25, 1e-3f64 as f32]);

        let body: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_be_bytes()).collect();
        let a = from_bytes(&raw(
            2,
            "{\"descr\":\">f4\",\"shape\":(1L,2L),\"fortran_order\":False}",
            &body,
        ))
        .unwrap();
        assert_eq!((a.shape, a.data), (vec![1, 2], vec![1.0, 2.0]));
    }

    #[test]
    fn npy_clear_errors() {
        let h = |d: &str, f: &str, s: &str| {
            format!("{{'descr': '{d}', 'fortran_order': {f}, 'shape': {s}, }}\n")
        };
        let four = [0u8; 16];
        let err = |b: Vec<u8>| from_bytes(&b).unwrap_err();
        assert!(err(b"PK\x03\x04hello".to_vec()).contains("magic"));
        assert!(err(raw(1, &h("<i4", "False", "(4,)"), &four)).contains("dtype"));
        assert!(err(raw(1, &h("<f4", "True", "(2, 2)"), &four)).contains("Fortran"));
        assert!(err(raw(1, &h("<f4", "False", "(5,)"), &four)).contains("truncated"));
        let mut bad = raw(1, &h("<f4", "False", "(4,)"), &four);
        bad[6] = 9;
        assert!(err(bad).contains("version"));
        let mut short = raw(1, &h("<f4", "False", "(4,)"), &[]);
        short[8] = 0xff;
        assert!(err(short).contains("header"));
        assert!(
            err(raw(
                1,
                "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}",
                &four
            ))
            .contains("structured")
        );
        assert!(err(raw(1, "{'descr': '<f4', 'shape': (1,)}", &four)).contains("fortran_order"));
        // Trailing bytes after the data are ignored, like numpy.load.
        let ok = from_bytes(&raw(1, &h("<f4", "False", "(2,)"), &four)).unwrap();
        assert_eq!(ok.data.len(), 2);
    }
}

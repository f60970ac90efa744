//! Reader for NumPy `.npy` files holding little-endian float32 arrays (`aud_ds.npy`: DeepSpeech windows
//! [N, 16, 29]). Versions 1.0–3.0 of the format; anything else (another dtype, Fortran order, a truncated data
//! section) is an error naming the file and the field.

use crate::error::{Error, Result};
use std::path::Path;

/// A C-ordered float32 array.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyF32 {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

pub fn read_npy_f32(path: &Path) -> Result<NpyF32> {
    let bytes = std::fs::read(path).map_err(|e| Error::input(format!("{}: cannot read: {e}", path.display())))?;
    parse_npy_f32(&bytes).map_err(|why| Error::input(format!("{}: {why}", path.display())))
}

/// Parses the bytes of a .npy file; the error says which field is wrong.
pub fn parse_npy_f32(bytes: &[u8]) -> std::result::Result<NpyF32, String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("magic: not a .npy file".into());
    }
    let (header_len, header_start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize, 12),
        v => return Err(format!("version: {v}.{} is not supported (1.0 to 3.0)", bytes[7])),
    };
    let data_start = header_start + header_len;
    let header = bytes
        .get(header_start..data_start)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or("header: truncated or not text")?;
    let descr = dict_value(header, "descr").ok_or("header: no 'descr'")?;
    if descr.trim_matches(['\'', '"']) != "<f4" {
        return Err(format!("dtype: {descr} (float32 '<f4' expected)"));
    }
    if dict_value(header, "fortran_order").ok_or("header: no 'fortran_order'")? != "False" {
        return Err("fortran_order: True is not supported (save a C-ordered array)".into());
    }
    let shape_text = dict_value(header, "shape").ok_or("header: no 'shape'")?;
    let shape = shape_text
        .trim_matches(['(', ')'])
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| format!("shape: {shape_text} is not a tuple of sizes")))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or("shape: too large")?;
    let data = &bytes[data_start..];
    if data.len() != count * 4 {
        return Err(format!(
            "data: {} bytes for shape {shape:?} ({} expected): the file is truncated or has trailing bytes",
            data.len(),
            count * 4
        ));
    }
    let data = data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    Ok(NpyF32 { shape, data })
}

/// The text of `'key': value` in a Python dict literal, up to the next top-level comma or the closing brace.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'")).or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = header[at + key.len() + 2..].trim_start().strip_prefix(':')?.trim_start();
    let mut depth = 0;
    for (i, c) in rest.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' | '}' if depth == 0 => return Some(rest[..i].trim()),
            _ => {}
        }
    }
    None
}

/// Writes a float32 .npy (version 1.0); used by the synthetic ER-NeRF layout and the tests.
pub fn npy_f32_bytes(shape: &[usize], data: &[f32]) -> Vec<u8> {
    assert_eq!(shape.iter().product::<usize>(), data.len(), "npy: shape and data disagree");
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Pad with spaces so the data starts at a multiple of 64 bytes, newline-terminated, as NumPy does.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend(data.iter().flat_map(|v| v.to_le_bytes()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_header_alignment() {
        let data: Vec<f32> = (0..2 * 16 * 29).map(|i| i as f32 * 0.5 - 3.0).collect();
        let bytes = npy_f32_bytes(&[2, 16, 29], &data);
        assert_eq!((bytes.len() - data.len() * 4) % 64, 0);
        let a = parse_npy_f32(&bytes).unwrap();
        assert_eq!(a.shape, vec![2, 16, 29]);
        assert_eq!(a.data, data);
        assert_eq!(parse_npy_f32(&npy_f32_bytes(&[3], &[1.0, 2.0, 3.0])).unwrap().shape, vec![3]);
    }

    #[test]
    fn numpy_written_header_parses() {
        // The exact header NumPy 1.26 writes for np.zeros((1, 2), np.float32).
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }";
        let mut h = header.to_string();
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(h.len() as u16).to_le_bytes());
        bytes.extend_from_slice(h.as_bytes());
        bytes.extend_from_slice(&[0u8; 8]);
        assert_eq!(parse_npy_f32(&bytes).unwrap(), NpyF32 { shape: vec![1, 2], data: vec![0.0, 0.0] });
    }

    #[test]
    fn bad_files_name_the_field() {
        let good = npy_f32_bytes(&[4, 2], &[0.0; 8]);
        let err = |b: &[u8]| parse_npy_f32(b).unwrap_err();
        assert!(err(&good[..good.len() - 3]).starts_with("data:"));
        assert!(err(b"PK\x03\x04 not numpy").starts_with("magic:"));
        let replace = |from: &str, to: &str| {
            let at = good.windows(from.len()).position(|w| w == from.as_bytes()).unwrap();
            let mut b = good.clone();
            b[at..at + to.len()].copy_from_slice(to.as_bytes());
            b
        };
        assert!(err(&replace("<f4", "<f8")).starts_with("dtype:"));
        assert!(err(&replace("False", "True ")).starts_with("fortran_order:"));
        let mut v9 = good.clone();
        v9[6] = 9;
        assert!(err(&v9).starts_with("version:"));
    }
}

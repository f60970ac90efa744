//! The small text files of the ER-NeRF layout: OpenFace's `au.csv` (eye blinks) and the 68-point `.lms`
//! landmark files (lip box).

use crate::error::{Error, Result};
use std::path::Path;

/// Per-row eye value from `au.csv`: column ` AU45_r` (OpenFace writes a leading space), clipped to [0, 2]
/// and halved, so 0 is open and 1 is closed.
pub fn read_au45(path: &Path) -> Result<Vec<f32>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::input(format!("{}: cannot read: {e}", path.display())))?;
    let mut lines = text.lines();
    let header = lines.next().ok_or_else(|| Error::input(format!("{}: empty file", path.display())))?;
    let col = header
        .split(',')
        .position(|h| h.trim() == "AU45_r")
        .ok_or_else(|| Error::input(format!("{}: no column ' AU45_r' in the header", path.display())))?;
    lines
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(row, line)| {
            line.split(',')
                .nth(col)
                .and_then(|v| v.trim().parse::<f32>().ok())
                .filter(|v| v.is_finite())
                .map(|v| v.clamp(0.0, 2.0) * 0.5)
                .ok_or_else(|| Error::input(format!("{}: row {}: AU45_r is missing or not a number", path.display(), row + 2)))
        })
        .collect()
}

/// The 68 (x, y) landmarks of a `.lms` file (one "x y" pair per line).
pub fn read_landmarks(path: &Path) -> Result<Vec<[f32; 2]>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::input(format!("{}: cannot read: {e}", path.display())))?;
    let points: Vec<[f32; 2]> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(k, l)| {
            let v: Vec<f32> = l.split_whitespace().filter_map(|t| t.parse().ok()).collect();
            match v[..] {
                [x, y] if x.is_finite() && y.is_finite() => Ok([x, y]),
                _ => Err(Error::input(format!("{}: line {}: expected two numbers 'x y'", path.display(), k + 1))),
            }
        })
        .collect::<Result<_>>()?;
    if points.len() != 68 {
        return Err(Error::input(format!("{}: {} landmarks (68 expected)", path.display(), points.len())));
    }
    Ok(points)
}

/// The lip box [x0, y0, x1, y1] (pixels, x1/y1 exclusive) around landmarks 48–59 (the outer lip contour),
/// padded by a quarter of its larger side and clamped to the image.
pub fn lip_box(landmarks: &[[f32; 2]], width: u32, height: u32) -> [u32; 4] {
    let lips = &landmarks[48..60];
    let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for &[x, y] in lips {
        x0 = x0.min(x);
        y0 = y0.min(y);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    let pad = 0.25 * (x1 - x0).max(y1 - y0);
    let clamp = |v: f32, hi: u32| v.round().clamp(0.0, hi as f32) as u32;
    [clamp(x0 - pad, width), clamp(y0 - pad, height), clamp(x1 + pad, width), clamp(y1 + pad, height)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, text: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("gensync-tables-{}-{name}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn au45_is_clipped_and_halved() {
        let p = temp("au.csv", "frame, timestamp, AU01_r, AU45_r\n1, 0.0, 0.3, 0.5\n2, 0.04, 0.1, 3.0\n3, 0.08, 0.0, -1\n");
        assert_eq!(read_au45(&p).unwrap(), vec![0.25, 1.0, 0.0]);
        let q = temp("au-nocol.csv", "frame, AU01_r\n1, 0.3\n");
        assert!(read_au45(&q).unwrap_err().to_string().contains("AU45_r"));
        let r = temp("au-bad.csv", "frame, AU45_r\n1, x\n");
        assert!(read_au45(&r).unwrap_err().to_string().contains("row 2"));
        for f in [p, q, r] {
            std::fs::remove_file(f).unwrap();
        }
    }

    #[test]
    fn landmarks_and_lip_box() {
        let text: String = (0..68).map(|k| format!("{} {}\n", 100 + k, 200 + (k % 5))).collect();
        let p = temp("0.lms", &text);
        let lms = read_landmarks(&p).unwrap();
        // Lips: x 148..=159, y 200..=204; pad 0.25 * 11 = 2.75.
        assert_eq!(lip_box(&lms, 512, 512), [145, 197, 162, 207]);
        assert_eq!(lip_box(&lms, 150, 150), [145, 150, 150, 150]);
        std::fs::write(&p, "1 2\n").unwrap();
        assert!(read_landmarks(&p).unwrap_err().to_string().contains("1 landmarks"));
        std::fs::remove_file(p).unwrap();
    }
}

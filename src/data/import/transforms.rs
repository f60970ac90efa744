//! `transforms_train.json` / `transforms_val.json` of the ER-NeRF layout: intrinsics and, per frame, the image
//! id, the audio-feature id and an OpenGL-style camera-to-world matrix, converted here to the engine's
//! OpenCV world-to-camera pose (SPEC §5a: invert, then flip the camera's y and z axes).

use crate::error::{Error, Result};
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Deserialize)]
struct TransformsJson {
    focal_len: f64,
    cx: f64,
    cy: f64,
    frames: Vec<FrameJson>,
}

#[derive(Debug, Deserialize)]
struct FrameJson {
    img_id: usize,
    aud_id: Option<usize>,
    transform_matrix: [[f64; 4]; 4],
}

/// One frame of a transforms file, in engine conventions.
#[derive(Debug, Clone, PartialEq)]
pub struct SubjectFrame {
    pub img_id: usize,
    /// Row of the audio features for this frame (img_id when the file has no aud_id).
    pub aud_id: usize,
    /// World-to-camera, OpenCV axes, row-major.
    pub world_to_camera: [[f32; 4]; 4],
}

#[derive(Debug, Clone, PartialEq)]
pub struct Transforms {
    /// fx = fy = focal_len, cx, cy in pixels of the original images.
    pub focal: f32,
    pub cx: f32,
    pub cy: f32,
    pub frames: Vec<SubjectFrame>,
}

pub fn read_transforms(path: &Path) -> Result<Transforms> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::input(format!("{}: cannot read: {e}", path.display())))?;
    let json: TransformsJson = serde_json::from_str(&text)
        .map_err(|e| Error::input(format!("{}: not a transforms file: {e}", path.display())))?;
    if json.frames.is_empty() {
        return Err(Error::input(format!("{}: frames: empty", path.display())));
    }
    let frames = json
        .frames
        .iter()
        .enumerate()
        .map(|(k, f)| {
            let w2c = opengl_c2w_to_opencv_w2c(&f.transform_matrix).ok_or_else(|| {
                Error::input(format!("{}: frames[{k}].transform_matrix: not invertible", path.display()))
            })?;
            Ok(SubjectFrame { img_id: f.img_id, aud_id: f.aud_id.unwrap_or(f.img_id), world_to_camera: w2c })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Transforms { focal: json.focal_len as f32, cx: json.cx as f32, cy: json.cy as f32, frames })
}

/// inverse(c2w) with the camera's y and z rows negated: diag(1, −1, −1, 1) · c2w⁻¹. None if singular.
pub fn opengl_c2w_to_opencv_w2c(c2w: &[[f64; 4]; 4]) -> Option<[[f32; 4]; 4]> {
    let inv = invert4(c2w)?;
    let mut out = [[0f32; 4]; 4];
    for r in 0..4 {
        let sign = if r == 1 || r == 2 { -1.0 } else { 1.0 };
        for c in 0..4 {
            out[r][c] = (sign * inv[r][c]) as f32;
        }
    }
    Some(out)
}

/// The engine's OpenCV world-to-camera back to an OpenGL camera-to-world (the synthetic ER-NeRF writer).
pub fn opencv_w2c_to_opengl_c2w(w2c: &[[f32; 4]; 4]) -> [[f64; 4]; 4] {
    let mut flipped = [[0f64; 4]; 4];
    for r in 0..4 {
        let sign = if r == 1 || r == 2 { -1.0 } else { 1.0 };
        for c in 0..4 {
            flipped[r][c] = sign * w2c[r][c] as f64;
        }
    }
    invert4(&flipped).expect("a pose is invertible")
}

/// General 4×4 inverse by Gauss–Jordan elimination with partial pivoting, in f64.
fn invert4(m: &[[f64; 4]; 4]) -> Option<[[f64; 4]; 4]> {
    let mut a = *m;
    let mut inv = [[0f64; 4]; 4];
    for (i, row) in inv.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    for col in 0..4 {
        let pivot = (col..4).max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        inv.swap(col, pivot);
        let p = a[col][col];
        for c in 0..4 {
            a[col][c] /= p;
            inv[col][c] /= p;
        }
        for r in 0..4 {
            if r != col {
                let f = a[r][col];
                for c in 0..4 {
                    a[r][c] -= f * a[col][c];
                    inv[r][c] -= f * inv[col][c];
                }
            }
        }
    }
    Some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A camera at (0, 0, 3) looking down −z in OpenGL terms (toward the origin) becomes an OpenCV camera
    /// with the origin 3 units in front (+z) of it.
    #[test]
    fn camera_in_front_of_the_head() {
        let c2w = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 3.0], [0.0, 0.0, 0.0, 1.0]];
        let w2c = opengl_c2w_to_opencv_w2c(&c2w).unwrap();
        // The world origin in camera coordinates: the translation column.
        assert_eq!([w2c[0][3], w2c[1][3], w2c[2][3]], [0.0, 0.0, 3.0]);
        // World +y (up) maps to camera −y (OpenCV y points down).
        assert_eq!(w2c[1][1], -1.0);
    }

    #[test]
    fn conversions_are_inverse() {
        let (a, b) = (0.3f64, -0.2f64);
        let c2w = [
            [a.cos(), 0.0, a.sin(), 0.1],
            [b.sin() * a.sin(), b.cos(), -b.sin() * a.cos(), -0.2],
            [-b.cos() * a.sin(), b.sin(), b.cos() * a.cos(), 2.5],
            [0.0, 0.0, 0.0, 1.0],
        ];
        let back = opencv_w2c_to_opengl_c2w(&opengl_c2w_to_opencv_w2c(&c2w).unwrap());
        for r in 0..4 {
            for c in 0..4 {
                assert!((back[r][c] - c2w[r][c]).abs() < 1e-6, "{r},{c}");
            }
        }
        assert!(invert4(&[[0.0; 4]; 4]).is_none());
    }
}

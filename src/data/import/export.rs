//! Writes a dataset in the ER-NeRF subject layout (`gensync synth --layout ernerf`), so the importer is tested
//! on complete subjects whose ground truth is known: importing the folder must give back the dataset's frames,
//! poses, masks and eye values.
//!
//! Synthetic subjects have no torso separate from the head render, so `torso_imgs/` holds fully transparent
//! RGBA images and the background is `bc.jpg`. `aud_ds.npy` holds the first 29 of the 32 log-mel channels in
//! DeepSpeech's [N, 16, 29] shape, a stand-in that exercises `--features deepspeech`. Landmarks place points
//! 48–59 on an ellipse whose padded box is the dataset's lip box; the other points outline the head mask.

use super::npy::npy_f32_bytes;
use super::transforms::opencv_w2c_to_opengl_c2w;
use crate::data::audio::write_wav;
use crate::data::output::{write_png, write_text};
use crate::data::format::Dataset;
use crate::error::{Error, Result};
use std::fmt::Write as _;
use std::path::Path;

/// How the frames are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameFormat {
    Png,
    Jpeg,
}

/// JPEG quality of frames and bc.jpg.
const JPEG_QUALITY: u8 = 95;

/// Writes `ds` as an ER-NeRF subject folder `dir` (created; must not exist yet).
pub fn export_ernerf(ds: &Dataset, dir: &Path, frames_as: FrameFormat) -> Result<()> {
    let h = ds.header();
    let (w, hh) = (h.width, h.height);
    if dir.exists() {
        return Err(Error::input(format!("{}: already exists; choose a new folder", dir.display())));
    }
    for sub in ["ori_imgs", "parsing", "torso_imgs"] {
        let p = dir.join(sub);
        std::fs::create_dir_all(&p).map_err(|e| Error::Io(format!("{}: cannot create: {e}", p.display())))?;
    }
    let frames = ds.frames();
    let split = h.train_frames as usize;
    write_text(&dir.join("transforms_train.json"), &transforms_json(ds, 0..split))?;
    write_text(&dir.join("transforms_val.json"), &transforms_json(ds, split..frames.len()))?;

    let transparent = vec![0u8; w as usize * hh as usize * 4];
    for (i, record) in frames.iter().enumerate() {
        let rgb = ds.rgb(i);
        match frames_as {
            FrameFormat::Png => write_png(&dir.join(format!("ori_imgs/{i}.png")), w, hh, png::ColorType::Rgb, png::Compression::Default, rgb)?,
            FrameFormat::Jpeg => write_jpeg(&dir.join(format!("ori_imgs/{i}.jpg")), w, hh, rgb)?,
        }
        let parsing: Vec<u8> =
            ds.mask(i).iter().flat_map(|&m| if m >= 128 { [255, 0, 0] } else { [255, 255, 255] }).collect();
        write_png(&dir.join(format!("parsing/{i}.png")), w, hh, png::ColorType::Rgb, png::Compression::Default, &parsing)?;
        write_png(&dir.join(format!("torso_imgs/{i}.png")), w, hh, png::ColorType::Rgba, png::Compression::Default, &transparent)?;
        write_text(&dir.join(format!("ori_imgs/{i}.lms")), &landmarks_text(record.lip_box, ds.mask(i), w))?;
    }
    write_jpeg(&dir.join("bc.jpg"), w, hh, ds.background(0))?;
    write_wav(&dir.join("aud.wav"), ds.pcm(), h.sample_rate)?;

    let mut au = String::from("frame, face_id, timestamp, confidence, success, AU45_r\n");
    for (i, r) in frames.iter().enumerate() {
        let _ = writeln!(au, "{}, 0, {:.3}, 0.98, 1, {}", i + 1, i as f32 / h.fps as f32, r.eye * 2.0);
    }
    write_text(&dir.join("au.csv"), &au)?;

    let c = h.feature_channels as usize;
    let window = h.feature_window as usize;
    let mut ds_feats = Vec::with_capacity(frames.len() * window * 29);
    let mut row = Vec::new();
    for i in 0..frames.len() {
        row.clear();
        ds.features(i).extend_f32(&mut row);
        for k in 0..window {
            ds_feats.extend_from_slice(&row[k * c..k * c + 29.min(c)]);
        }
    }
    let path = dir.join("aud_ds.npy");
    std::fs::write(&path, npy_f32_bytes(&[frames.len(), window, 29.min(c)], &ds_feats))
        .map_err(|e| Error::Io(format!("{}: cannot write: {e}", path.display())))
}

fn transforms_json(ds: &Dataset, range: std::ops::Range<usize>) -> String {
    let frames = ds.frames();
    let [fx, _, cx, cy] = frames[0].intrinsics;
    let mut s = format!("{{\n  \"focal_len\": {fx},\n  \"cx\": {cx},\n  \"cy\": {cy},\n  \"frames\": [\n");
    for (k, i) in range.clone().enumerate() {
        let c2w = opencv_w2c_to_opengl_c2w(&bytemuck::cast(frames[i].world_to_camera));
        let rows: Vec<String> =
            c2w.iter().map(|r| format!("[{}, {}, {}, {}]", r[0], r[1], r[2], r[3])).collect();
        let sep = if k + 1 == range.len() { "" } else { "," };
        let _ = writeln!(s, "    {{\"img_id\": {i}, \"aud_id\": {i}, \"transform_matrix\": [{}]}}{sep}", rows.join(", "));
    }
    s.push_str("  ]\n}\n");
    s
}

/// 68 landmarks: 0–47 and 60–67 on the head mask's bounding box, 48–59 on an ellipse inside the lip box,
/// shrunk so that the importer's padding (a quarter of the larger side) gives the box back.
fn landmarks_text(lip_box: [u32; 4], mask: &[u8], width: u32) -> String {
    let [x0, y0, x1, y1] = lip_box.map(|v| v as f32);
    let (bw, bh) = (x1 - x0, y1 - y0);
    // Inner box (w', h') with W = w' + 2p, H = h' + 2p, p = max(w', h') / 4.
    let p = if bw >= bh { bw / 6.0 } else { bh / 6.0 };
    let (rx, ry) = (((bw - 2.0 * p) / 2.0).max(0.0), ((bh - 2.0 * p) / 2.0).max(0.0));
    let (mx, my) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    let head: Vec<(f32, f32)> = mask
        .iter()
        .enumerate()
        .filter(|(_, &m)| m >= 128)
        .map(|(k, _)| ((k as u32 % width) as f32, (k as u32 / width) as f32))
        .collect();
    let (hx0, hy0, hx1, hy1) = head.iter().fold((f32::MAX, f32::MAX, 0f32, 0f32), |(a, b, c, d), &(x, y)| {
        (a.min(x), b.min(y), c.max(x), d.max(y))
    });
    let mut s = String::new();
    for k in 0..68 {
        let (x, y) = if (48..60).contains(&k) {
            let t = (k - 48) as f32 / 12.0 * std::f32::consts::TAU;
            (mx + rx * t.cos(), my + ry * t.sin())
        } else if head.is_empty() {
            (mx, my)
        } else {
            let t = k as f32 / 68.0 * std::f32::consts::TAU;
            ((hx0 + hx1) / 2.0 + (hx1 - hx0) / 2.0 * t.cos(), (hy0 + hy1) / 2.0 + (hy1 - hy0) / 2.0 * t.sin())
        };
        let _ = writeln!(s, "{x} {y}");
    }
    s
}

fn write_jpeg(path: &Path, w: u32, h: u32, rgb: &[u8]) -> Result<()> {
    let io = |e: &dyn std::fmt::Display| Error::Io(format!("{}: cannot write: {e}", path.display()));
    let side = |v: u32| u16::try_from(v).map_err(|_| io(&"image too large for JPEG"));
    jpeg_encoder::Encoder::new_file(path, JPEG_QUALITY)
        .map_err(|e| io(&e))?
        .encode(rgb, side(w)?, side(h)?, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| io(&e))
}

//! `gensync import SUBJECT_DIR --out FILE`: a subject preprocessed for ER-NeRF / GaussianTalker /
//! TalkingGaussian becomes one memory-mapped dataset file (SPEC §4.3), without Python.
//!
//! The layout read:
//! ```text
//! transforms_train.json, transforms_val.json   focal_len, cx, cy, frames[].img_id, aud_id, transform_matrix
//! gt_imgs/<i>.jpg|png  or  ori_imgs/<i>.jpg|png frames
//! parsing/<i>.png                              face parsing; head (hair included) is pure red
//! torso_imgs/<i>.png (RGBA) + bc.jpg           per-frame background = torso over bc (bc alone without torso_imgs)
//! aud.wav                                      audio (any rate and channel count)
//! aud_ds.npy                                   optional [N,16,29] float32 DeepSpeech windows (--features deepspeech)
//! au.csv                                       optional, column ' AU45_r' → eye value (clipped to [0,2], halved)
//! ori_imgs/<i>.lms                             optional 68 landmarks → lip box from points 48–59
//! ```
//! Train frames come first and the val frames after them, so the dataset's held-out split is the subject's
//! val split. Every missing or malformed piece is an `Error::Input` naming the file; the output is written to
//! a temporary file and renamed only when complete.

pub mod export;
pub mod images;
pub mod npy;
pub mod tables;
pub mod transforms;

use crate::data::audio::{read_wav, to_pcm16, SAMPLE_RATE};
use crate::data::features::{features, windows, N_MELS};
use crate::data::format::{DatasetWriter, FrameRecord, Header, FEATURE_WINDOW, SOURCE_IMPORT};
use crate::error::{Error, Result};
use images::{read_image, Image8};
use crate::data::parallel::map_frames;
use std::path::{Path, PathBuf};
use transforms::{read_transforms, SubjectFrame};

/// Video rate of the ER-NeRF layout (one aud_id per 40 ms).
const SUBJECT_FPS: u32 = 25;
/// DeepSpeech's feature width.
const DEEPSPEECH_CHANNELS: usize = 29;
/// The parsing colour of the head classes (face, hair, ears) in the ER-NeRF face-parsing maps.
const HEAD_RGB: [u8; 3] = [255, 0, 0];

/// Which audio features the dataset stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureSource {
    /// The engine's log-mel windows computed from aud.wav (C = 32).
    Builtin,
    /// aud_ds.npy as given (C = 29).
    DeepSpeech,
}

#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub features: FeatureSource,
    /// Output width in pixels (height scaled to keep the aspect ratio); None keeps the source size.
    pub size: Option<u32>,
}

/// What an import did, for the command's summary line.
#[derive(Debug, Clone)]
pub struct ImportSummary {
    pub frames: usize,
    pub train_frames: usize,
    pub width: u32,
    pub height: u32,
    pub per_frame_background: bool,
    pub seconds: f64,
}

/// Reads the subject in `dir` and writes the dataset `out`.
pub fn import_subject(dir: &Path, out: &Path, options: &ImportOptions) -> Result<ImportSummary> {
    let started = std::time::Instant::now();
    if let Some(w) = options.size {
        crate::data::synth::check_size(w as usize)?;
    }
    crate::data::output::check_output_file("--out", out)?;
    let train = read_transforms(&required(dir, "transforms_train.json")?)?;
    let val = read_transforms(&required(dir, "transforms_val.json")?)?;
    let frames: Vec<SubjectFrame> = train.frames.iter().chain(&val.frames).cloned().collect();
    let image_dir = ["gt_imgs", "ori_imgs"]
        .iter()
        .map(|d| dir.join(d))
        .find(|d| d.is_dir())
        .ok_or_else(|| Error::input(format!("{}: no gt_imgs/ or ori_imgs/ folder", dir.display())))?;
    let frame_paths: Vec<PathBuf> =
        frames.iter().map(|f| frame_image_path(&image_dir, f.img_id)).collect::<Result<_>>()?;

    let first = read_image(&frame_paths[0])?;
    let (src_w, src_h) = (first.width, first.height);
    let (width, height) = match options.size {
        None => (src_w, src_h),
        Some(w) => (w, ((src_h as u64 * w as u64 + src_w as u64 / 2) / src_w as u64).max(1) as u32),
    };
    let (sx, sy) = (width as f32 / src_w as f32, height as f32 / src_h as f32);

    // Audio: PCM always; features from the WAV or from aud_ds.npy.
    let audio = read_wav(&required(dir, "aud.wav")?)?;
    let last_aud = frames.iter().map(|f| f.aud_id).max().unwrap_or(0);
    let (channels, feature_rows) = match options.features {
        FeatureSource::Builtin => {
            let f = features(&audio, SAMPLE_RATE);
            (N_MELS, windows::<N_MELS>(&f, last_aud + 1, SUBJECT_FPS))
        }
        FeatureSource::DeepSpeech => {
            let path = required(dir, "aud_ds.npy")?;
            let npy = npy::read_npy_f32(&path)?;
            if npy.shape.len() != 3 || npy.shape[1] != FEATURE_WINDOW || npy.shape[2] != DEEPSPEECH_CHANNELS {
                return Err(Error::input(format!(
                    "{}: shape {:?}: expected [N, {FEATURE_WINDOW}, {DEEPSPEECH_CHANNELS}]",
                    path.display(),
                    npy.shape
                )));
            }
            if npy.shape[0] <= last_aud {
                return Err(Error::input(format!(
                    "{}: {} windows but the transforms use aud_id {last_aud}",
                    path.display(),
                    npy.shape[0]
                )));
            }
            (DEEPSPEECH_CHANNELS, npy.data)
        }
    };
    let window_len = FEATURE_WINDOW * channels;
    let feature_data: Vec<f32> =
        frames.iter().flat_map(|f| feature_rows[f.aud_id * window_len..][..window_len].iter().copied()).collect();

    let eyes = match dir.join("au.csv") {
        p if p.exists() => {
            let au = tables::read_au45(&p)?;
            frames
                .iter()
                .map(|f| {
                    au.get(f.img_id).copied().ok_or_else(|| {
                        Error::input(format!("{}: {} rows but frame img_id {} is used", p.display(), au.len(), f.img_id))
                    })
                })
                .collect::<Result<Vec<f32>>>()?
        }
        _ => vec![0.0; frames.len()],
    };

    let torso_dir = dir.join("torso_imgs");
    let per_frame_background = torso_dir.is_dir();
    let bc = read_image(&required(dir, "bc.jpg")?)?;
    check_size(&dir.join("bc.jpg"), &bc, src_w, src_h)?;
    let bc_rgb = bc.to_rgb();

    let pcm = to_pcm16(&audio);
    let mut header = Header::new(
        frames.len() as u32,
        width,
        height,
        SUBJECT_FPS,
        SAMPLE_RATE,
        channels as u32,
        pcm.len() as u64,
        per_frame_background,
    );
    header.train_frames = train.frames.len() as u32;
    header.source = SOURCE_IMPORT;
    header.lay_out();
    let writer = DatasetWriter::create(out, header)?;
    if !per_frame_background {
        writer.write_background(0, &resize_rgb(&bc_rgb, src_w, src_h, width, height))?;
    }

    // Frames are independent: decode, resize and write them on every core. An error drops the writer, whose
    // temporary file goes with it.
    let job = FrameJob { dir, image_dir: &image_dir, torso_dir: &torso_dir, bc_rgb: &bc_rgb };
    let records = map_frames(frames.len(), |i| {
        let f = &frames[i];
        let lip_box = job.import(i, f, &frame_paths[i], (src_w, src_h), (width, height), &writer)?;
        let (fx, cx, cy) = (train.focal, train.cx, train.cy);
        Ok(FrameRecord {
            world_to_camera: bytemuck::cast(f.world_to_camera),
            intrinsics: [fx * sx, fx * sy, cx * sx, cy * sy],
            eye: eyes[i],
            lip_box,
            feature_index: i as u32,
            background_index: if per_frame_background { i as u32 } else { 0 },
            ..FrameRecord::default()
        })
    })?;
    writer.finish(&records, &feature_data, &pcm)?;
    Ok(ImportSummary {
        frames: frames.len(),
        train_frames: train.frames.len(),
        width,
        height,
        per_frame_background,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The per-frame files of one subject.
struct FrameJob<'a> {
    dir: &'a Path,
    image_dir: &'a Path,
    torso_dir: &'a Path,
    bc_rgb: &'a [u8],
}

impl FrameJob<'_> {
    /// Reads frame `i`'s image, mask, background and landmarks, writes them, and returns the lip box.
    fn import(
        &self,
        i: usize,
        frame: &SubjectFrame,
        image_path: &Path,
        (src_w, src_h): (u32, u32),
        (width, height): (u32, u32),
        writer: &DatasetWriter,
    ) -> Result<[u32; 4]> {
        let image = read_image(image_path)?;
        check_size(image_path, &image, src_w, src_h)?;
        let parsing_path = self.dir.join("parsing").join(format!("{}.png", frame.img_id));
        let parsing = read_image(&parsing_path)?;
        check_size(&parsing_path, &parsing, src_w, src_h)?;
        let mask: Vec<u8> = parsing
            .to_rgb()
            .chunks_exact(3)
            .map(|p| if p == HEAD_RGB { 255 } else { 0 })
            .collect();
        let mask = Image8 { width: src_w, height: src_h, channels: 1, data: mask }.resized(width, height).data;
        writer.write_frame(i, &resize_rgb(&image.to_rgb(), src_w, src_h, width, height), &mask)?;

        if self.torso_dir.is_dir() {
            let torso_path = self.torso_dir.join(format!("{}.png", frame.img_id));
            let torso = read_image(&torso_path)?;
            check_size(&torso_path, &torso, src_w, src_h)?;
            if torso.channels != 4 {
                return Err(Error::input(format!("{}: torso image must be RGBA (it has {} channels)", torso_path.display(), torso.channels)));
            }
            let background: Vec<u8> = torso
                .data
                .chunks_exact(4)
                .zip(self.bc_rgb.chunks_exact(3))
                .flat_map(|(t, b)| {
                    let a = t[3] as u32;
                    [0, 1, 2].map(|c| ((t[c] as u32 * a + b[c] as u32 * (255 - a) + 127) / 255) as u8)
                })
                .collect();
            writer.write_background(i, &resize_rgb(&background, src_w, src_h, width, height))?;
        }

        let lms_path = self.image_dir.join(format!("{}.lms", frame.img_id));
        let lms_path = if lms_path.exists() { lms_path } else { self.dir.join("ori_imgs").join(format!("{}.lms", frame.img_id)) };
        Ok(if lms_path.exists() {
            let points: Vec<[f32; 2]> = tables::read_landmarks(&lms_path)?
                .iter()
                .map(|&[x, y]| [x * width as f32 / src_w as f32, y * height as f32 / src_h as f32])
                .collect();
            tables::lip_box(&points, width, height)
        } else {
            lower_face_box(&mask, width, height)
        })
    }
}

/// Without landmarks: the middle half of the lower third of the head mask's bounding box.
fn lower_face_box(mask: &[u8], width: u32, height: u32) -> [u32; 4] {
    let (mut x0, mut y0, mut x1, mut y1) = (width, height, 0, 0);
    for (k, &m) in mask.iter().enumerate() {
        if m >= 128 {
            let (x, y) = ((k as u32) % width, (k as u32) / width);
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
        }
    }
    if x0 >= x1 {
        return [0, 0, 0, 0];
    }
    let (w, h) = (x1 - x0, y1 - y0);
    [x0 + w / 4, y1 - h / 3, x1 - w / 4, y1]
}

fn resize_rgb(rgb: &[u8], w: u32, h: u32, to_w: u32, to_h: u32) -> Vec<u8> {
    Image8 { width: w, height: h, channels: 3, data: rgb.to_vec() }.resized(to_w, to_h).data
}

fn required(dir: &Path, name: &str) -> Result<PathBuf> {
    let p = dir.join(name);
    if p.exists() {
        Ok(p)
    } else {
        Err(Error::input(format!("{}: missing", p.display())))
    }
}

fn frame_image_path(image_dir: &Path, img_id: usize) -> Result<PathBuf> {
    ["jpg", "png"]
        .iter()
        .map(|ext| image_dir.join(format!("{img_id}.{ext}")))
        .find(|p| p.exists())
        .ok_or_else(|| {
            Error::input(format!(
                "{}: no image {img_id}.jpg or {img_id}.png for a frame of the transforms files (frame count mismatch?)",
                image_dir.display()
            ))
        })
}

fn check_size(path: &Path, image: &Image8, w: u32, h: u32) -> Result<()> {
    if (image.width, image.height) == (w, h) {
        Ok(())
    } else {
        Err(Error::input(format!(
            "{}: image is {}×{}, the subject's frames are {w}×{h}",
            path.display(),
            image.width,
            image.height
        )))
    }
}

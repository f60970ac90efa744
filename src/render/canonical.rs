//! `gensync render` for the canonical stage: one identity's trained canonical Gaussians (no mouth motion
//! yet) rendered with each chosen dataset frame's camera and background, beside its ground truth.
//!
//! Writes into the output folder: `frame-XXXXX.png` per frame (XXXXX = the dataset's frame index),
//! `contact-sheet.png` (up to 8 evenly spaced frames, each row ground truth | render | |difference| × 4) and
//! `metrics.txt` (per frame PSNR, PSNR outside the lip box, lip-box PSNR, SSIM; then the means).
//!
//! Every input is checked before anything is written, and the files go into a hidden sibling folder that is
//! renamed to the output name only when complete, so a failure never leaves a partial folder behind.

use crate::backend::Backend;
use crate::cpu::raster::Camera;
use crate::data::output::write_text;
use crate::data::preview::Image;
use crate::data::synth::dataset_path;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::eval::metrics::{psnr, psnr_in_box, ssim};
use crate::render::rasterize::{rasterize, Scene};
use crate::train::canonical::{checkpoint_identities, open_checkpoint, Identity};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Frames per rasterizer call: few GPU launches, bounded host memory (8 copies of the Gaussians).
const BATCH: usize = 8;
/// Rows of the contact sheet at most.
const SHEET_ROWS: usize = 8;
/// Longest side of a contact-sheet cell; larger frames are scaled down.
const SHEET_CELL: usize = 256;
/// The difference column is |render − truth| times this, so small errors are visible.
const DIFF_GAIN: f32 = 4.0;

/// Which of the dataset's frames to render (SPEC §8: the frames from `train_frames` on are held out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameSet {
    HeldOut,
    Train,
    All,
}

impl std::str::FromStr for FrameSet {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "held-out" => Ok(FrameSet::HeldOut),
            "train" => Ok(FrameSet::Train),
            "all" => Ok(FrameSet::All),
            _ => Err(Error::input(format!("--frames: expected held-out, train or all, got {s:?}"))),
        }
    }
}

impl FrameSet {
    pub fn name(self) -> &'static str {
        match self {
            FrameSet::HeldOut => "held-out",
            FrameSet::Train => "train",
            FrameSet::All => "all",
        }
    }

    /// The dataset frame indices of this set, in order.
    pub fn indices(self, ds: &Dataset) -> Vec<usize> {
        let (train, all) = (ds.header().train_frames as usize, ds.len());
        match self {
            FrameSet::HeldOut => (train.min(all)..all).collect(),
            FrameSet::Train => (0..train.min(all)).collect(),
            FrameSet::All => (0..all).collect(),
        }
    }
}

/// `gensync render` of a canonical checkpoint.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    pub checkpoint: PathBuf,
    pub identity: u32,
    pub frames: FrameSet,
    /// The corpus folder; None: the one the checkpoint was trained on (its "data" metadata).
    pub data: Option<PathBuf>,
    /// The folder to create (it may exist if empty).
    pub out: PathBuf,
    pub quiet: bool,
}

/// The measures of one rendered frame against its ground truth (PSNR in dB).
#[derive(Debug, Clone, Copy)]
pub struct FrameMetrics {
    /// The dataset's frame index.
    pub frame: usize,
    pub psnr: f64,
    pub psnr_outside_lip: f64,
    /// NaN when the frame has no lip box.
    pub psnr_lip: f64,
    pub ssim: f64,
}

/// What a run rendered and how close it came.
#[derive(Debug, Clone)]
pub struct RenderReport {
    pub identity: u32,
    pub frame_set: FrameSet,
    pub frames: Vec<FrameMetrics>,
    pub out: PathBuf,
}

impl RenderReport {
    /// The mean of one measure over the frames that have it (NaN values, e.g. no lip box, left out).
    pub fn mean(&self, measure: impl Fn(&FrameMetrics) -> f64) -> f64 {
        let values: Vec<f64> = self.frames.iter().map(measure).filter(|v| !v.is_nan()).collect();
        values.iter().sum::<f64>() / values.len() as f64
    }

    /// The one line `gensync render` prints.
    pub fn summary(&self) -> String {
        format!(
            "identity {}: {} {} frames, PSNR {:.2} dB (outside the lip box {:.2} dB, lip box {:.2} dB), SSIM {:.4}: {}",
            self.identity,
            self.frames.len(),
            self.frame_set.name(),
            self.mean(|m| m.psnr),
            self.mean(|m| m.psnr_outside_lip),
            self.mean(|m| m.psnr_lip),
            self.mean(|m| m.ssim),
            self.out.display()
        )
    }
}

/// Renders `frames` of `ds` with the identity's canonical Gaussians, `BATCH` frames per rasterizer call:
/// images [F,H,W,3], unclamped, exactly what training compared with the ground truth.
pub fn render_frames(backend: &Backend, model: &Identity, ds: &Dataset, frames: &[usize]) -> Result<Vec<f32>> {
    let mut images = Vec::with_capacity(frames.len() * 3 * ds.header().width as usize * ds.header().height as usize);
    for chunk in frames.chunks(BATCH) {
        images.extend(rasterize(backend, &batch_scene(model, ds, chunk), None, None)?.0.image);
    }
    Ok(images)
}

/// One rasterizer call: the canonical Gaussians repeated per frame (the layout is frame-major [B,N,..]),
/// each frame's own camera and background.
fn batch_scene(model: &Identity, ds: &Dataset, frames: &[usize]) -> Scene {
    // The SH degree the identity was trained at (SPEC §7 adds one every 1000 steps): bands it has not
    // reached yet hold F_c's untrained outputs, which training never saw in an image.
    let mut dims = model.raster_dims(ds.header().width as usize, ds.header().height as usize);
    dims.batch = frames.len();
    let repeat = |v: &[f32]| v.repeat(frames.len());
    let cams = frames
        .iter()
        .map(|&i| {
            let rec = &ds.frames()[i];
            let [fx, fy, cx, cy] = rec.intrinsics;
            Camera { view: rec.world_to_camera, fx, fy, cx, cy }
        })
        .collect();
    Scene {
        dims,
        cams,
        means: repeat(&model.means.value),
        log_scales: repeat(&model.log_scales.value),
        quats: repeat(&model.quats.value),
        opacity_logits: repeat(&model.opacity_logits),
        sh: repeat(&model.sh),
        background: frames.iter().flat_map(|&i| unit(ds.background(i))).collect(),
    }
}

/// u8 RGB as f32 in [0, 1].
fn unit(rgb: &[u8]) -> impl Iterator<Item = f32> + '_ {
    rgb.iter().map(|&v| v as f32 / 255.0)
}

fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// Renders the chosen frames of one identity, measures them and writes the output folder.
pub fn render_canonical(backend: &Backend, o: &RenderOptions) -> Result<RenderReport> {
    // Check every input before writing anything.
    let mut staging = Staging::plan(&o.out)?;
    let ck = open_checkpoint(&o.checkpoint)?;
    let ids = checkpoint_identities(&ck)?;
    if !ids.contains(&o.identity) {
        let list = ids.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
        return Err(Error::input(format!("--identity {}: {} holds identities {list}", o.identity, o.checkpoint.display())));
    }
    let model = Identity::load(&ck, &o.checkpoint, o.identity)?;
    let ds = open_dataset(o, ck.metadata.get("data").map(PathBuf::from))?;
    drop(ck);
    let frames = o.frames.indices(&ds);
    if frames.is_empty() {
        return Err(Error::input(format!("--frames {}: {} has no such frames", o.frames.name(), ds.path().display())));
    }

    let dir = staging.create()?;
    let (w, h) = (ds.header().width as usize, ds.header().height as usize);
    let sheet_rows: Vec<usize> = evenly_spaced(frames.len(), SHEET_ROWS);
    let mut sheet = ContactSheet::new(w, h, sheet_rows.len());
    let mut metrics = Vec::with_capacity(frames.len());
    let (start, mut last_print) = (Instant::now(), Instant::now());
    for (c, chunk) in frames.chunks(BATCH).enumerate() {
        let images = render_frames(backend, &model, &ds, chunk)?;
        for (j, (&frame, image)) in chunk.iter().zip(images.chunks_exact(3 * w * h)).enumerate() {
            // Measured on the image as written (clamped to [0, 1]).
            let render: Vec<f32> = image.iter().map(|v| v.clamp(0.0, 1.0)).collect();
            let truth: Vec<f32> = unit(ds.rgb(frame)).collect();
            metrics.push(measure(frame, &render, &truth, ds.frames()[frame].lip_box, w, h));
            let png: Vec<u8> = render.iter().map(|&v| to_u8(v)).collect();
            if let Ok(row) = sheet_rows.binary_search(&(c * BATCH + j)) {
                sheet.row(row, ds.rgb(frame), &png, &render, &truth);
            }
            Image { width: w, height: h, rgb: png }.save(&dir.join(format!("frame-{frame:05}.png")))?;
        }
        let done = metrics.len();
        if !o.quiet && (last_print.elapsed().as_secs_f64() >= 1.0 || done == frames.len()) {
            last_print = Instant::now();
            let rate = done as f64 / start.elapsed().as_secs_f64();
            eprintln!("identity {}: rendered {done}/{} frames, {rate:.1} frames/s", o.identity, frames.len());
        }
    }
    let report = RenderReport { identity: o.identity, frame_set: o.frames, frames: metrics, out: o.out.clone() };
    sheet.image.save(&dir.join("contact-sheet.png"))?;
    write_text(&dir.join("metrics.txt"), &metrics_text(&report))?;
    staging.commit()?;
    Ok(report)
}

/// The identity's dataset in --data, or in the corpus the checkpoint names; errors name the option.
fn open_dataset(o: &RenderOptions, trained_on: Option<PathBuf>) -> Result<Dataset> {
    let (data, from) = match (&o.data, trained_on) {
        (Some(d), _) => (d.clone(), ""),
        (None, Some(d)) => (d, " (the corpus the checkpoint was trained on)"),
        (None, None) => {
            return Err(Error::input(format!("--data: {} names no corpus; give the corpus folder", o.checkpoint.display())))
        }
    };
    if !data.is_dir() {
        return Err(Error::input(format!("--data {}{from}: not a folder (a corpus written by `gensync synth`)", data.display())));
    }
    let path = dataset_path(&data, o.identity);
    if !path.exists() {
        return Err(Error::input(format!("--data {}{from}: identity {} has no dataset ({} does not exist)", data.display(), o.identity, path.display())));
    }
    Dataset::open(&path)
}

fn measure(frame: usize, render: &[f32], truth: &[f32], lip_box: [u32; 4], w: usize, h: usize) -> FrameMetrics {
    let [x0, y0, x1, y1] = lip_box;
    let has_box = x1 > x0 && y1 > y0;
    FrameMetrics {
        frame,
        psnr: psnr(render, truth, w, None),
        psnr_outside_lip: psnr(render, truth, w, has_box.then_some(lip_box)),
        psnr_lip: if has_box { psnr_in_box(render, truth, w, lip_box) } else { f64::NAN },
        ssim: ssim(render, truth, w, h),
    }
}

fn metrics_text(r: &RenderReport) -> String {
    let mut t = String::from("# frame psnr_db psnr_outside_lip_db lip_psnr_db ssim\n");
    for m in &r.frames {
        let _ = writeln!(t, "{} {:.4} {:.4} {:.4} {:.6}", m.frame, m.psnr, m.psnr_outside_lip, m.psnr_lip, m.ssim);
    }
    let _ = writeln!(
        t,
        "mean {:.4} {:.4} {:.4} {:.6}",
        r.mean(|m| m.psnr),
        r.mean(|m| m.psnr_outside_lip),
        r.mean(|m| m.psnr_lip),
        r.mean(|m| m.ssim)
    );
    t
}

/// `count` indices in 0..n, evenly spaced from the first to the last, ascending (all of them if n ≤ count).
fn evenly_spaced(n: usize, count: usize) -> Vec<usize> {
    match count.min(n) {
        0 => Vec::new(),
        1 => vec![0],
        m => (0..m).map(|j| j * (n - 1) / (m - 1)).collect(),
    }
}

/// Rows of ground truth | render | |difference| × DIFF_GAIN, each cell at most SHEET_CELL pixels a side.
struct ContactSheet {
    image: Image,
    frame: (usize, usize),
    cell: (usize, usize),
}

impl ContactSheet {
    fn new(w: usize, h: usize, rows: usize) -> Self {
        let scale = |v: usize| (v * SHEET_CELL).div_ceil(w.max(h)).max(1);
        let cell = if w.max(h) > SHEET_CELL { (scale(w), scale(h)) } else { (w, h) };
        ContactSheet { image: Image::new(3 * cell.0, rows * cell.1, [0, 0, 0]), frame: (w, h), cell }
    }

    fn row(&mut self, row: usize, truth_u8: &[u8], render_u8: &[u8], render: &[f32], truth: &[f32]) {
        let diff: Vec<u8> = render.iter().zip(truth).map(|(r, t)| to_u8(DIFF_GAIN * (r - t).abs())).collect();
        let (cw, ch) = self.cell;
        for (col, rgb) in [truth_u8, render_u8, &diff].into_iter().enumerate() {
            self.image.paste_scaled((col * cw, row * ch), rgb, self.frame, self.cell);
        }
    }
}

/// The output folder, filled under a hidden sibling name and renamed into place at the end; dropped
/// after `create` and before `commit` (an error, a panic), the partial folder is removed.
struct Staging {
    out: PathBuf,
    tmp: PathBuf,
    /// The hidden folder exists and is not renamed yet.
    armed: bool,
}

impl Staging {
    /// Checks that `out` can be written (its parent exists; it does not exist, or is an empty folder).
    fn plan(out: &Path) -> Result<Staging> {
        let shown = out.display();
        let name = out.file_name().ok_or_else(|| Error::input(format!("--out {shown}: not a folder name")))?;
        let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(Error::input(format!("--out {shown}: the folder {} does not exist", parent.display())));
        }
        if out.exists() {
            let empty = out.read_dir().map(|mut d| d.next().is_none()).unwrap_or(false);
            if !out.is_dir() || !empty {
                return Err(Error::input(format!("--out {shown}: exists and is not an empty folder")));
            }
        }
        let tmp = parent.join(format!(".{}.partial-{}", name.to_string_lossy(), std::process::id()));
        Ok(Staging { out: out.to_path_buf(), tmp, armed: false })
    }

    /// Creates the hidden folder; from here on a drop without `commit` removes it.
    fn create(&mut self) -> Result<PathBuf> {
        let io = |e: std::io::Error| Error::Io(format!("{}: cannot create: {e}", self.tmp.display()));
        // A leftover of a killed run with the same process id.
        let _ = std::fs::remove_dir_all(&self.tmp);
        std::fs::create_dir(&self.tmp).map_err(io)?;
        self.armed = true;
        Ok(self.tmp.clone())
    }

    /// Renames the filled folder to the output name (over an empty folder there, which rename allows).
    fn commit(mut self) -> Result<()> {
        std::fs::rename(&self.tmp, &self.out)
            .map_err(|e| Error::Io(format!("{}: cannot rename {} to it: {e}", self.out.display(), self.tmp.display())))?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheet_rows_are_evenly_spaced_from_first_to_last() {
        assert_eq!(evenly_spaced(3, 8), vec![0, 1, 2]);
        assert_eq!(evenly_spaced(1, 8), vec![0]);
        assert_eq!(evenly_spaced(0, 8), Vec::<usize>::new());
        assert_eq!(evenly_spaced(100, 8), vec![0, 14, 28, 42, 56, 70, 84, 99]);
    }

    #[test]
    fn sheet_cells_are_scaled_down_to_256_pixels() {
        assert_eq!(ContactSheet::new(512, 384, 2).cell, (256, 192));
        assert_eq!(ContactSheet::new(64, 48, 2).cell, (64, 48));
        let sheet = ContactSheet::new(300, 300, 3);
        assert_eq!((sheet.image.width, sheet.image.height), (3 * 256, 3 * 256));
    }
}

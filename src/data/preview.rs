//! Preview images of a corpus (`gensync synth --preview`), read back through the dataset reader: a contact
//! sheet (one row per identity: mouth closed, half open, widest, eyes closing; lip box in red) and a plot of
//! one identity's waveform, jaw opening (blue), rounding (orange), the audio features' low-band energy
//! (green) and mouth area (red) over time.

use super::features::low_band_energy;
use super::format::Dataset;
use super::output::write_png;
use crate::Result;
use std::path::Path;

const THUMB: usize = 128;

/// An RGB u8 image: the canvas of preview plots and contact sheets (also `gensync render`'s sheet).
pub struct Image {
    pub width: usize,
    pub height: usize,
    /// [height, width, 3]
    pub rgb: Vec<u8>,
}

impl Image {
    pub fn new(width: usize, height: usize, fill: [u8; 3]) -> Image {
        Image { width, height, rgb: fill.repeat(width * height) }
    }

    /// Draws `rgb` ([h, w, 3]) into the `tw`×`th` cell whose top left corner is (`x`, `y`), each cell pixel the
    /// mean of the source pixels it covers (a box filter; an exact copy when the sizes are equal).
    pub fn paste_scaled(&mut self, (x, y): (usize, usize), rgb: &[u8], (w, h): (usize, usize), (tw, th): (usize, usize)) {
        for ty in 0..th {
            for tx in 0..tw {
                let (x0, x1) = (tx * w / tw, ((tx + 1) * w / tw).max(tx * w / tw + 1));
                let (y0, y1) = (ty * h / th, ((ty + 1) * h / th).max(ty * h / th + 1));
                let mut sum = [0u32; 3];
                for sy in y0..y1 {
                    for sx in x0..x1 {
                        for k in 0..3 {
                            sum[k] += rgb[(sy * w + sx) * 3 + k] as u32;
                        }
                    }
                }
                let n = ((x1 - x0) * (y1 - y0)) as u32;
                self.set(x + tx, y + ty, sum.map(|s| (s / n) as u8));
            }
        }
    }

    pub fn set(&mut self, x: usize, y: usize, c: [u8; 3]) {
        if x < self.width && y < self.height {
            let k = (y * self.width + x) * 3;
            self.rgb[k..k + 3].copy_from_slice(&c);
        }
    }

    pub fn rect(&mut self, x0: usize, y0: usize, x1: usize, y1: usize, c: [u8; 3]) {
        for x in x0..x1 {
            self.set(x, y0, c);
            self.set(x, y1.saturating_sub(1), c);
        }
        for y in y0..y1 {
            self.set(x0, y, c);
            self.set(x1.saturating_sub(1), y, c);
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        write_png(path, self.width as u32, self.height as u32, png::ColorType::Rgb, png::Compression::Best, &self.rgb)
    }
}

/// Frame indices showing the mouth closed, about half open, widest, and the eyes most closed.
fn pick_frames(ds: &Dataset) -> [usize; 4] {
    let f = ds.frames();
    let by = |key: &dyn Fn(usize) -> f32| (0..f.len()).min_by(|&a, &b| key(a).total_cmp(&key(b))).unwrap_or(0);
    let widest = by(&|i| -f[i].mouth_area);
    let half = f[widest].mouth_area / 2.0;
    [by(&|i| f[i].mouth_area + f[i].eye), by(&|i| (f[i].mouth_area - half).abs()), widest, by(&|i| -f[i].eye)]
}

/// One row per dataset (up to 6), four thumbnails each, lip boxes drawn.
pub fn contact_sheet(datasets: &[Dataset], path: &Path) -> Result<()> {
    let rows = datasets.len().min(6);
    let mut sheet = Image::new(4 * THUMB, rows * THUMB, [0, 0, 0]);
    for (r, ds) in datasets.iter().take(rows).enumerate() {
        let h = ds.header();
        let (w, hh) = (h.width as usize, h.height as usize);
        for (c, i) in pick_frames(ds).into_iter().enumerate() {
            sheet.paste_scaled((c * THUMB, r * THUMB), ds.rgb(i), (w, hh), (THUMB, THUMB));
            let [bx0, by0, bx1, by1] = ds.frames()[i].lip_box;
            if bx1 > bx0 {
                let s = |v: u32, side: usize| v as usize * THUMB / side;
                sheet.rect(c * THUMB + s(bx0, w), r * THUMB + s(by0, hh), c * THUMB + s(bx1, w) + 1, r * THUMB + s(by1, hh) + 1, [255, 0, 0]);
            }
        }
    }
    sheet.save(path)
}

const PLOT_W: usize = 1000;
const PANEL_H: usize = 110;
const GAP: usize = 8;

/// Waveform, articulation with the audio's low-band energy, and mouth area of one dataset over time.
pub fn signal_plot(ds: &Dataset, path: &Path) -> Result<()> {
    let mut img = Image::new(PLOT_W, 3 * PANEL_H + 4 * GAP, [255, 255, 255]);
    let top = |p: usize| GAP + p * (PANEL_H + GAP);
    for p in 0..3 {
        img.rect(0, top(p) - 1, PLOT_W, top(p) + PANEL_H + 1, [180, 180, 180]);
    }
    let pcm = ds.pcm();
    for x in 0..PLOT_W {
        let chunk = &pcm[x * pcm.len() / PLOT_W..((x + 1) * pcm.len() / PLOT_W).max(x * pcm.len() / PLOT_W + 1).min(pcm.len())];
        let (lo, hi) = chunk.iter().fold((0i16, 0i16), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let y = |v: i16| top(0) + ((0.5 - v as f32 / 65536.0) * PANEL_H as f32) as usize;
        for yy in y(hi)..=y(lo) {
            img.set(x, yy.min(top(0) + PANEL_H - 1), [60, 60, 60]);
        }
    }
    let frames = ds.frames();
    let mut window = Vec::new();
    let low: Vec<f32> = (0..ds.len())
        .map(|i| {
            window.clear();
            ds.features(i).extend_f32(&mut window);
            low_band_energy(&window, ds.header().feature_channels as usize)
        })
        .collect();
    let max_area = frames.iter().map(|f| f.mouth_area).fold(1e-6, f32::max);
    let (lo_min, lo_max) = low.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    // (panel, colour, value in [0, 1] of frame i)
    type Curve<'a> = (usize, [u8; 3], Box<dyn Fn(usize) -> f32 + 'a>);
    let curves: [Curve; 4] = [
        (1, [40, 160, 60], Box::new(|i| (low[i] - lo_min) / (lo_max - lo_min).max(1e-6))),
        (1, [230, 130, 20], Box::new(|i| frames[i].rounding)),
        (1, [30, 60, 220], Box::new(|i| frames[i].jaw)),
        (2, [220, 30, 30], Box::new(|i| frames[i].mouth_area / max_area)),
    ];
    for (panel, color, value) in &curves {
        let mut previous: Option<usize> = None;
        for x in 0..PLOT_W {
            let i = (x * ds.len() / PLOT_W).min(ds.len() - 1);
            let y = top(*panel) + ((1.0 - value(i).clamp(0.0, 1.0)) * (PANEL_H - 1) as f32) as usize;
            let (a, b) = previous.map_or((y, y), |p| (p.min(y), p.max(y)));
            for yy in a..=b {
                img.set(x, yy, *color);
            }
            previous = Some(y);
        }
    }
    img.save(path)
}

/// Writes `preview-contact.png` and `preview-signals.png` (of the first dataset) into `dir`.
pub fn write_preview(paths: &[std::path::PathBuf], dir: &Path) -> Result<()> {
    let datasets = paths.iter().map(|p| Dataset::open(p)).collect::<Result<Vec<_>>>()?;
    let Some(first) = datasets.first() else { return Ok(()) };
    contact_sheet(&datasets, &dir.join("preview-contact.png"))?;
    signal_plot(first, &dir.join("preview-signals.png"))
}

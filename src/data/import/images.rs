//! Decoding the subject's images (JPEG or PNG) to 8-bit pixels, and resizing them with an antialiased
//! filter.

use crate::error::{Error, Result};
use std::path::Path;

/// An 8-bit image, rows top to bottom, `channels` interleaved samples per pixel (1 gray, 3 RGB, 4 RGBA).
#[derive(Debug, Clone, PartialEq)]
pub struct Image8 {
    pub width: u32,
    pub height: u32,
    pub channels: u32,
    pub data: Vec<u8>,
}

/// Reads a JPEG or PNG (by content, not name) as 8-bit samples; PNG palettes and bit depths are expanded,
/// 16-bit samples reduced to 8.
pub fn read_image(path: &Path) -> Result<Image8> {
    let bytes = std::fs::read(path).map_err(|e| Error::input(format!("{}: cannot read: {e}", path.display())))?;
    let bad = |why: String| Error::input(format!("{}: {why}", path.display()));
    if bytes.starts_with(&[0x89, b'P', b'N', b'G']) {
        decode_png(&bytes).map_err(bad)
    } else if bytes.starts_with(&[0xff, 0xd8]) {
        decode_jpeg(&bytes).map_err(bad)
    } else {
        Err(bad("not a JPEG or PNG image".into()))
    }
}

fn decode_png(bytes: &[u8]) -> std::result::Result<Image8, String> {
    let mut decoder = png::Decoder::new(bytes);
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| format!("PNG: {e}"))?;
    let mut data = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut data).map_err(|e| format!("PNG: {e}"))?;
    data.truncate(info.buffer_size());
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => {
            // Keep gray + alpha as RGBA so alpha is never silently dropped.
            let rgba = data.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0], p[1]]).collect();
            return Ok(Image8 { width: info.width, height: info.height, channels: 4, data: rgba });
        }
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return Err("PNG: palette was not expanded".into()),
    };
    Ok(Image8 { width: info.width, height: info.height, channels, data })
}

fn decode_jpeg(bytes: &[u8]) -> std::result::Result<Image8, String> {
    use zune_jpeg::zune_core::{colorspace::ColorSpace, options::DecoderOptions};
    let options = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(bytes, options);
    let data = decoder.decode().map_err(|e| format!("JPEG: {e:?}"))?;
    let info = decoder.info().ok_or("JPEG: no header")?;
    Ok(Image8 { width: info.width as u32, height: info.height as u32, channels: 3, data })
}

impl Image8 {
    /// The RGB samples (gray expanded, alpha dropped).
    pub fn to_rgb(&self) -> Vec<u8> {
        match self.channels {
            3 => self.data.clone(),
            1 => self.data.iter().flat_map(|&g| [g, g, g]).collect(),
            _ => self.data.chunks_exact(self.channels as usize).flat_map(|p| [p[0], p[1], p[2]]).collect(),
        }
    }

    /// Resized to `width`×`height` with a separable triangle filter whose support widens with the
    /// downscale factor (antialiased bilinear), in f32 with rounding.
    pub fn resized(&self, width: u32, height: u32) -> Image8 {
        if (width, height) == (self.width, self.height) {
            return self.clone();
        }
        let c = self.channels as usize;
        let xs = filter_taps(self.width, width);
        let ys = filter_taps(self.height, height);
        // Horizontal pass into f32 rows, then vertical pass.
        let mut tmp = vec![0f32; self.height as usize * width as usize * c];
        for y in 0..self.height as usize {
            let row = &self.data[y * self.width as usize * c..][..self.width as usize * c];
            for (x, taps) in xs.iter().enumerate() {
                for ch in 0..c {
                    tmp[(y * width as usize + x) * c + ch] =
                        taps.iter().map(|&(i, w)| w * row[i * c + ch] as f32).sum();
                }
            }
        }
        let mut data = vec![0u8; height as usize * width as usize * c];
        for (y, taps) in ys.iter().enumerate() {
            for x in 0..width as usize * c {
                let v: f32 = taps.iter().map(|&(i, w)| w * tmp[i * width as usize * c + x]).sum();
                data[y * width as usize * c + x] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
        Image8 { width, height, channels: self.channels, data }
    }
}

/// For each output sample, the (input index, weight) pairs of a triangle filter centred on the output
/// pixel's centre mapped into the input (pixel centres at +0.5), weights normalised to sum to 1.
fn filter_taps(n_in: u32, n_out: u32) -> Vec<Vec<(usize, f32)>> {
    let scale = n_in as f64 / n_out as f64;
    let support = scale.max(1.0); // half-width of the triangle in input pixels
    (0..n_out)
        .map(|o| {
            let centre = (o as f64 + 0.5) * scale;
            let lo = (centre - support).floor().max(0.0) as usize;
            let hi = ((centre + support).ceil() as usize).min(n_in as usize);
            let mut taps: Vec<(usize, f32)> = (lo..hi)
                .map(|i| (i, (1.0 - ((i as f64 + 0.5 - centre) / support).abs()).max(0.0)))
                .filter(|&(_, w)| w > 0.0)
                .map(|(i, w)| (i, w as f32))
                .collect();
            let total: f32 = taps.iter().map(|t| t.1).sum();
            taps.iter_mut().for_each(|t| t.1 /= total);
            taps
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_preserves_flat_images_and_averages_when_halving() {
        let flat = Image8 { width: 7, height: 5, channels: 3, data: vec![77; 7 * 5 * 3] };
        let r = flat.resized(3, 4);
        assert!(r.data.iter().all(|&v| v == 77));
        // A 2-pixel-period stripe pattern halved becomes its mean (away from the borders, where the
        // filter's window is cut).
        let stripes = Image8 {
            width: 8,
            height: 2,
            channels: 1,
            data: (0..16).map(|i| if i % 2 == 0 { 0 } else { 200 }).collect(),
        };
        let h = stripes.resized(4, 1);
        assert!(h.data[1..3].iter().all(|&v| (v as i32 - 100).abs() <= 1), "{:?}", h.data);
    }

    #[test]
    fn taps_cover_the_input() {
        for (a, b) in [(512u32, 256u32), (450, 512), (3, 3), (1000, 7)] {
            for taps in filter_taps(a, b) {
                assert!(!taps.is_empty());
                assert!((taps.iter().map(|t| t.1).sum::<f32>() - 1.0).abs() < 1e-5);
                assert!(taps.iter().all(|t| t.0 < a as usize));
            }
        }
    }
}

//! Writing the data module's small output files (text, PNG) atomically: to a temporary file beside the
//! target, renamed into place only when complete, so a failure never leaves a partial file under the name.

use crate::error::{Error, Result};
use std::path::Path;

/// Writes `text` to `path` through a temp file.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| Error::Io(format!("{}: cannot write: {e}", path.display())))
}

/// Writes an 8-bit PNG of `color` samples through a temp file.
pub fn write_png(path: &Path, width: u32, height: u32, color: png::ColorType, compression: png::Compression, data: &[u8]) -> Result<()> {
    let io = |e: &dyn std::fmt::Display| Error::Io(format!("{}: cannot write: {e}", path.display()));
    let tmp = path.with_extension("png.tmp");
    let file = std::fs::File::create(&tmp).map_err(|e| io(&e))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(compression);
    let written = enc.write_header().and_then(|mut w| {
        w.write_image_data(data)?;
        w.finish()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&e));
    }
    std::fs::rename(&tmp, path).map_err(|e| io(&e))
}

//! Writing the data module's small output files (text, PNG) atomically: to a temporary file beside the
//! target, renamed into place only when complete, so a failure never leaves a partial file under the name;
//! and the check every output-file option gets before the work starts.

use crate::error::{Error, Result};
use std::path::Path;

/// Checks that `option`'s path can name an output file before any work is done: its folder exists and the
/// path is not a folder itself (an input error naming the option, exit 2).
pub fn check_output_file(option: &str, path: &Path) -> Result<()> {
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !folder.is_dir() {
        return Err(Error::input(format!("{option} {}: the folder {} does not exist", path.display(), folder.display())));
    }
    if path.is_dir() {
        return Err(Error::input(format!("{option} {}: is a folder; the output is a file", path.display())));
    }
    Ok(())
}

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

//! The dataset file (SPEC §4.2): one file per identity, little-endian, every section 4096-byte aligned, read
//! zero-copy through a memory map.
//!
//! ```text
//! offset 0      Header (192 bytes, padded to 4096)
//! frame_table   FrameRecord [frames]                 (128 bytes each)
//! features      f32 or f16  [frames, window, C]      (window 16; C = 32 log-mel, 29 for DeepSpeech)
//! pcm           i16         [pcm_samples]            (mono, sample_rate)
//! backgrounds   u8          [background_count, H, W, 3]   (1, or one per frame with FLAG_PER_FRAME_BACKGROUND)
//! rgb           u8          [frames, H, W, 3]
//! masks         u8          [frames, H, W]           (head coverage, 255 = fully head; synth: head, hair,
//!                                                      ears and neck; the still torso is in the background)
//! ```
//! `Dataset::open` checks every count, size and offset against the file length before any access, so a
//! truncated or foreign file is an `Error::Input` naming the file and field, never a panic or a wrong read.
//! The writer computes the whole layout up front, writes frames at their offsets as they are rendered (from
//! any thread), and renames a temp file into place only when everything is written.

use crate::{Error, Result};
use bytemuck::{Pod, Zeroable};
use half::f16;
use memmap2::{Advice, Mmap};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub const MAGIC: [u8; 8] = *b"GSYNCDS\0";
pub const VERSION: u32 = 1;
pub const ALIGN: u64 = 4096;
/// Frame t's audio-feature window has this many 50 Hz feature frames (SPEC §4.4, like DeepSpeech's 16).
pub const FEATURE_WINDOW: usize = 16;

/// `Header::flags`: one background image per frame instead of one for the whole file.
pub const FLAG_PER_FRAME_BACKGROUND: u32 = 1;
/// `Header::source`.
pub const SOURCE_SYNTH: u32 = 0;
pub const SOURCE_IMPORT: u32 = 1;
/// `Header::feature_dtype`.
pub const DTYPE_F32: u32 = 0;
pub const DTYPE_F16: u32 = 1;

/// Upper bound on image sides, so a corrupt header cannot ask for absurd sizes.
const MAX_SIDE: u32 = 16384;

/// A byte range of the file.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Section {
    pub offset: u64,
    pub bytes: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct Header {
    pub magic: [u8; 8],
    pub version: u32,
    /// size_of::<Header>() of the writer.
    pub header_bytes: u32,
    /// The corpus seed (synth) or 0.
    pub seed: u64,
    pub frame_count: u32,
    /// Frames [0, train_frames) are for training, the rest are held out (SPEC §8: the last 1/11).
    pub train_frames: u32,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub sample_rate: u32,
    pub feature_window: u32,
    /// C: 32 for the built-in log-mel, 29 for imported DeepSpeech features.
    pub feature_channels: u32,
    pub feature_dtype: u32,
    pub flags: u32,
    pub identity: u32,
    pub source: u32,
    /// Speaking style of a synthetic identity (ground truth; 0 when unknown).
    pub mouth_gain: f32,
    pub rounding_gain: f32,
    pub background_count: u32,
    /// size_of::<FrameRecord>() of the writer.
    pub frame_record_bytes: u32,
    pub pcm_samples: u64,
    pub frame_table: Section,
    pub features: Section,
    pub pcm: Section,
    pub backgrounds: Section,
    pub rgb: Section,
    pub masks: Section,
}

/// Ground truth and indices of one video frame.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct FrameRecord {
    /// Head (world) to camera, row-major 4×4, OpenCV convention (SPEC §5a).
    pub world_to_camera: [f32; 16],
    /// fx, fy, cx, cy in pixels.
    pub intrinsics: [f32; 4],
    /// AU45-like eye closure in [0, 1] (0 open).
    pub eye: f32,
    /// Jaw opening in [0, 1] as shown (after the identity's mouth gain); 0 when unknown.
    pub jaw: f32,
    /// Lip rounding in [0, 1] as shown; 0 when unknown.
    pub rounding: f32,
    /// Visible mouth interior (cavity, teeth, tongue) in pixels.
    pub mouth_area: f32,
    /// Lip box x0, y0, x1, y1 in pixels, half-open.
    pub lip_box: [u32; 4],
    /// Index into the feature windows.
    pub feature_index: u32,
    pub background_index: u32,
    pub flags: u32,
    pub reserved: u32,
}

impl Header {
    /// A header for `frames` frames of `width`×`height`, with sections laid out; fields the caller fills
    /// afterwards (seed, identity, gains) are zero. The arguments are exactly what the layout depends on.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        frames: u32,
        width: u32,
        height: u32,
        fps: u32,
        sample_rate: u32,
        feature_channels: u32,
        pcm_samples: u64,
        per_frame_background: bool,
    ) -> Header {
        let mut h = Header::zeroed();
        h.magic = MAGIC;
        h.version = VERSION;
        h.header_bytes = std::mem::size_of::<Header>() as u32;
        h.frame_record_bytes = std::mem::size_of::<FrameRecord>() as u32;
        h.frame_count = frames;
        h.train_frames = frames - frames / 11;
        h.width = width;
        h.height = height;
        h.fps = fps;
        h.sample_rate = sample_rate;
        h.feature_window = FEATURE_WINDOW as u32;
        h.feature_channels = feature_channels;
        h.feature_dtype = DTYPE_F32;
        h.flags = if per_frame_background { FLAG_PER_FRAME_BACKGROUND } else { 0 };
        h.background_count = if per_frame_background { frames } else { 1 };
        h.pcm_samples = pcm_samples;
        h.lay_out();
        h
    }

    /// Places the sections one after another, 4096-aligned; call again after changing counts or dtype.
    pub fn lay_out(&mut self) {
        let sizes = self.expected_sizes().expect("section sizes overflow 64 bits");
        let mut offset = ALIGN;
        for (i, bytes) in sizes.into_iter().enumerate() {
            *self.section_mut(i) = Section { offset, bytes };
            offset = align_up(offset + bytes);
        }
    }

    pub const SECTION_NAMES: [&'static str; 6] = ["frame_table", "features", "pcm", "backgrounds", "rgb", "masks"];

    pub fn section(&self, i: usize) -> Section {
        [self.frame_table, self.features, self.pcm, self.backgrounds, self.rgb, self.masks][i]
    }

    fn section_mut(&mut self, i: usize) -> &mut Section {
        match i {
            0 => &mut self.frame_table,
            1 => &mut self.features,
            2 => &mut self.pcm,
            3 => &mut self.backgrounds,
            4 => &mut self.rgb,
            _ => &mut self.masks,
        }
    }

    pub fn rgb_bytes(&self) -> usize {
        self.width as usize * self.height as usize * 3
    }

    pub fn mask_bytes(&self) -> usize {
        self.width as usize * self.height as usize
    }

    /// Values in one feature window (window × C).
    pub fn window_len(&self) -> usize {
        self.feature_window as usize * self.feature_channels as usize
    }

    fn feature_elem_bytes(&self) -> u64 {
        if self.feature_dtype == DTYPE_F16 { 2 } else { 4 }
    }

    /// The byte size each section must have, in SECTION_NAMES order; None on overflow.
    fn expected_sizes(&self) -> Option<[u64; 6]> {
        let frames = self.frame_count as u64;
        let pixels = (self.width as u64).checked_mul(self.height as u64)?;
        Some([
            frames.checked_mul(self.frame_record_bytes as u64)?,
            frames
                .checked_mul(self.feature_window as u64)?
                .checked_mul(self.feature_channels as u64)?
                .checked_mul(self.feature_elem_bytes())?,
            self.pcm_samples.checked_mul(2)?,
            (self.background_count as u64).checked_mul(pixels)?.checked_mul(3)?,
            frames.checked_mul(pixels)?.checked_mul(3)?,
            frames.checked_mul(pixels)?,
        ])
    }

    /// Checks every field against itself and the file length; the error names the field.
    fn validate(&self, file_len: u64) -> std::result::Result<(), String> {
        if self.magic != MAGIC {
            return Err(format!(
                "header.magic: expected {:?}, found {:?}: not a gensync dataset",
                String::from_utf8_lossy(&MAGIC[..7]),
                String::from_utf8_lossy(&self.magic)
            ));
        }
        if self.version != VERSION {
            return Err(format!(
                "header.version: {} is not supported (this build reads version {VERSION}): re-run `gensync synth` or `gensync import`",
                self.version
            ));
        }
        let check = |ok: bool, field: &str, value: String| if ok { Ok(()) } else { Err(format!("header.{field}: invalid value {value}")) };
        check(self.header_bytes as usize == std::mem::size_of::<Header>(), "header_bytes", self.header_bytes.to_string())?;
        check(
            self.frame_record_bytes as usize == std::mem::size_of::<FrameRecord>(),
            "frame_record_bytes",
            self.frame_record_bytes.to_string(),
        )?;
        check(self.frame_count > 0, "frame_count", self.frame_count.to_string())?;
        check(self.train_frames <= self.frame_count, "train_frames", self.train_frames.to_string())?;
        check((1..=MAX_SIDE).contains(&self.width), "width", self.width.to_string())?;
        check((1..=MAX_SIDE).contains(&self.height), "height", self.height.to_string())?;
        check(self.fps > 0, "fps", self.fps.to_string())?;
        check(self.sample_rate > 0, "sample_rate", self.sample_rate.to_string())?;
        check(self.feature_window > 0, "feature_window", self.feature_window.to_string())?;
        check(self.feature_channels > 0, "feature_channels", self.feature_channels.to_string())?;
        check(matches!(self.feature_dtype, DTYPE_F32 | DTYPE_F16), "feature_dtype", self.feature_dtype.to_string())?;
        check(self.flags & !FLAG_PER_FRAME_BACKGROUND == 0, "flags", format!("{:#x}", self.flags))?;
        let backgrounds = if self.flags & FLAG_PER_FRAME_BACKGROUND != 0 { self.frame_count } else { 1 };
        check(self.background_count == backgrounds, "background_count", self.background_count.to_string())?;
        let sizes = self.expected_sizes().ok_or("header: sizes overflow 64 bits")?;
        let mut previous_end = ALIGN;
        for (i, expected) in sizes.into_iter().enumerate() {
            let name = Self::SECTION_NAMES[i];
            let s = self.section(i);
            if s.bytes != expected {
                return Err(format!("header.{name}.bytes: {} but the counts need {expected}", s.bytes));
            }
            if s.offset % ALIGN != 0 || s.offset < previous_end {
                return Err(format!("header.{name}.offset: {} is not 4096-aligned after the previous section", s.offset));
            }
            let end = s.offset.checked_add(s.bytes).ok_or(format!("header.{name}.offset: overflows"))?;
            if end > file_len {
                return Err(format!(
                    "header.{name}.offset: section [{}, {end}) runs past the end of the file ({file_len} bytes): truncated?",
                    s.offset
                ));
            }
            previous_end = end;
        }
        Ok(())
    }
}

fn align_up(x: u64) -> u64 {
    x.div_ceil(ALIGN) * ALIGN
}

impl FrameRecord {
    fn validate(&self, h: &Header) -> std::result::Result<(), &'static str> {
        let [x0, y0, x1, y1] = self.lip_box;
        if !(x0 <= x1 && x1 <= h.width && y0 <= y1 && y1 <= h.height) {
            return Err("lip_box");
        }
        if self.feature_index >= h.frame_count {
            return Err("feature_index");
        }
        if self.background_index >= h.background_count {
            return Err("background_index");
        }
        let finite = self.world_to_camera.iter().chain(&self.intrinsics).all(|v| v.is_finite());
        if !(finite && self.eye.is_finite() && self.jaw.is_finite() && self.mouth_area.is_finite()) {
            return Err("pose/intrinsics (not finite)");
        }
        Ok(())
    }
}

/// One feature window, in the file's precision.
pub enum FeatureWindow<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
}

impl FeatureWindow<'_> {
    /// Appends the values as f32 to `out`.
    pub fn extend_f32(&self, out: &mut Vec<f32>) {
        match self {
            FeatureWindow::F32(v) => out.extend_from_slice(v),
            FeatureWindow::F16(v) => out.extend(v.iter().map(|x| x.to_f32())),
        }
    }
}

/// A dataset file opened through a read-only memory map.
pub struct Dataset {
    path: PathBuf,
    map: Mmap,
    header: Header,
}

impl Dataset {
    pub fn open(path: &Path) -> Result<Dataset> {
        let name = path.display();
        let file = File::open(path).map_err(|e| Error::input(format!("{name}: cannot open dataset: {e}")))?;
        let len = file.metadata().map_err(|e| Error::input(format!("{name}: {e}")))?.len();
        if len < ALIGN {
            return Err(Error::input(format!(
                "{name}: header: file is {len} bytes, shorter than the {ALIGN}-byte header: truncated or not a dataset"
            )));
        }
        // SAFETY: the map is read-only and private to this process; a file changed underneath by another
        // process is outside what the engine supports (as with any mapped input).
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::input(format!("{name}: cannot map: {e}")))?;
        let header: Header = bytemuck::pod_read_unaligned(&map[..std::mem::size_of::<Header>()]);
        header.validate(len).map_err(|field| Error::input(format!("{name}: {field}")))?;
        let ds = Dataset { path: path.to_path_buf(), map, header };
        for (i, r) in ds.frames().iter().enumerate() {
            r.validate(&ds.header).map_err(|field| Error::input(format!("{name}: frame_table[{i}].{field}: out of range")))?;
        }
        Ok(ds)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn len(&self) -> usize {
        self.header.frame_count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn bytes(&self, s: Section) -> &[u8] {
        &self.map[s.offset as usize..(s.offset + s.bytes) as usize]
    }

    pub fn frames(&self) -> &[FrameRecord] {
        bytemuck::cast_slice(self.bytes(self.header.frame_table))
    }

    /// Frame i, RGB u8 [H, W, 3].
    pub fn rgb(&self, i: usize) -> &[u8] {
        let n = self.header.rgb_bytes();
        &self.bytes(self.header.rgb)[i * n..(i + 1) * n]
    }

    /// Frame i's head mask, u8 [H, W].
    pub fn mask(&self, i: usize) -> &[u8] {
        let n = self.header.mask_bytes();
        &self.bytes(self.header.masks)[i * n..(i + 1) * n]
    }

    /// The background behind frame i, RGB u8 [H, W, 3].
    pub fn background(&self, i: usize) -> &[u8] {
        let n = self.header.rgb_bytes();
        let b = self.frames()[i].background_index as usize;
        &self.bytes(self.header.backgrounds)[b * n..(b + 1) * n]
    }

    /// Frame i's audio-feature window [window, C].
    pub fn features(&self, i: usize) -> FeatureWindow<'_> {
        let n = self.header.window_len();
        let k = self.frames()[i].feature_index as usize;
        let bytes = self.bytes(self.header.features);
        match self.header.feature_dtype {
            DTYPE_F16 => FeatureWindow::F16(&bytemuck::cast_slice(bytes)[k * n..(k + 1) * n]),
            _ => FeatureWindow::F32(&bytemuck::cast_slice(bytes)[k * n..(k + 1) * n]),
        }
    }

    /// Mono PCM at `header.sample_rate`.
    pub fn pcm(&self) -> &[i16] {
        bytemuck::cast_slice(self.bytes(self.header.pcm))
    }

    /// Drops frame i's image and mask pages from this process's resident set (the page cache keeps them);
    /// for streaming reads that visit each frame once.
    pub fn release_frame(&self, i: usize) {
        for (section, n) in [(self.header.rgb, self.header.rgb_bytes()), (self.header.masks, self.header.mask_bytes())] {
            let start = section.offset as usize + i * n;
            // Round inwards to whole pages; partial pages shared with a neighbour stay resident.
            let first = start.div_ceil(ALIGN as usize) * ALIGN as usize;
            let end = (start + n) / ALIGN as usize * ALIGN as usize;
            if end > first {
                // Advice failures only cost memory, never correctness.
                let _ = self.map.advise_range(Advice::Sequential, first, end - first);
                // SAFETY: the map is read-only and file-backed: dropped pages are re-read from the file.
                let _ = unsafe { self.map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, first, end - first) };
            }
        }
    }
}

/// Writes a dataset: header and layout fixed at creation, frames written in any order from any thread,
/// everything else at `finish`, which renames the temp file into place.
pub struct DatasetWriter {
    path: PathBuf,
    tmp: PathBuf,
    file: File,
    header: Header,
    finished: bool,
}

impl DatasetWriter {
    pub fn create(path: &Path, header: Header) -> Result<DatasetWriter> {
        let tmp = path.with_extension("gsd.tmp");
        let io = |e: std::io::Error| Error::Io(format!("{}: cannot write: {e}", tmp.display()));
        let file = File::create(&tmp).map_err(io)?;
        let end = (0..6).map(|i| header.section(i)).map(|s| s.offset + s.bytes).max().unwrap_or(ALIGN);
        file.set_len(end).map_err(io)?;
        Ok(DatasetWriter { path: path.to_path_buf(), tmp, file, header, finished: false })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    fn write_at(&self, section: Section, offset: usize, bytes: &[u8]) -> Result<()> {
        assert!(offset + bytes.len() <= section.bytes as usize, "write past the end of a section");
        self.file
            .write_all_at(bytes, section.offset + offset as u64)
            .map_err(|e| Error::Io(format!("{}: cannot write: {e}", self.tmp.display())))
    }

    /// Frame i's image (RGB u8 [H, W, 3]) and head mask (u8 [H, W]).
    pub fn write_frame(&self, i: usize, rgb: &[u8], mask: &[u8]) -> Result<()> {
        let (n, m) = (self.header.rgb_bytes(), self.header.mask_bytes());
        assert!(rgb.len() == n && mask.len() == m, "frame size does not match the header");
        self.write_at(self.header.rgb, i * n, rgb)?;
        self.write_at(self.header.masks, i * m, mask)
    }

    /// Background b (RGB u8 [H, W, 3]).
    pub fn write_background(&self, b: usize, rgb: &[u8]) -> Result<()> {
        let n = self.header.rgb_bytes();
        assert!(rgb.len() == n, "background size does not match the header");
        self.write_at(self.header.backgrounds, b * n, rgb)
    }

    /// Writes the frame table, features [frames, window, C] (f32) and PCM, then the header, then renames.
    pub fn finish(mut self, records: &[FrameRecord], features: &[f32], pcm: &[i16]) -> Result<()> {
        let h = self.header;
        assert_eq!(records.len(), h.frame_count as usize, "one frame record per frame");
        assert_eq!(features.len(), h.frame_count as usize * h.window_len(), "one feature window per frame");
        assert_eq!(pcm.len() as u64, h.pcm_samples, "PCM length does not match the header");
        self.write_at(h.frame_table, 0, bytemuck::cast_slice(records))?;
        if h.feature_dtype == DTYPE_F16 {
            let half: Vec<f16> = features.iter().map(|&x| f16::from_f32(x)).collect();
            self.write_at(h.features, 0, bytemuck::cast_slice(&half))?;
        } else {
            self.write_at(h.features, 0, bytemuck::cast_slice(features))?;
        }
        self.write_at(h.pcm, 0, bytemuck::cast_slice(pcm))?;
        self.write_at(Section { offset: 0, bytes: ALIGN }, 0, bytemuck::bytes_of(&h))?;
        let io = |e: std::io::Error| Error::Io(format!("{}: cannot write: {e}", self.path.display()));
        self.file.sync_all().map_err(io)?;
        std::fs::rename(&self.tmp, &self.path).map_err(io)?;
        self.finished = true;
        Ok(())
    }
}

impl Drop for DatasetWriter {
    /// An unfinished file (an error part-way) is removed: nothing half-written is left behind.
    fn drop(&mut self) {
        if !self.finished {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// The header as `gensync info` prints it.
impl std::fmt::Display for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = if self.source == SOURCE_IMPORT { "import" } else { "synth" };
        let dtype = if self.feature_dtype == DTYPE_F16 { "f16" } else { "f32" };
        let seconds = self.frame_count as f64 / self.fps as f64;
        writeln!(f, "version {}, source {source}, identity {}, seed {}", self.version, self.identity, self.seed)?;
        writeln!(
            f,
            "frames {} ({seconds:.2} s at {} fps), train {} / held out {}",
            self.frame_count,
            self.fps,
            self.train_frames,
            self.frame_count - self.train_frames
        )?;
        writeln!(f, "image {}x{} RGB u8, head masks u8, backgrounds {}", self.width, self.height, self.background_count)?;
        writeln!(f, "audio {} samples at {} Hz mono i16", self.pcm_samples, self.sample_rate)?;
        writeln!(f, "features [{}, {}, {}] {dtype}", self.frame_count, self.feature_window, self.feature_channels)?;
        if self.source == SOURCE_SYNTH {
            writeln!(f, "style: mouth gain {:.3}, rounding gain {:.3}", self.mouth_gain, self.rounding_gain)?;
        }
        for (i, name) in Self::SECTION_NAMES.iter().enumerate() {
            let s = self.section(i);
            writeln!(f, "  {name:<12} offset {:>12}  bytes {:>12}", s.offset, s.bytes)?;
        }
        Ok(())
    }
}

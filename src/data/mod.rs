//! Data (SPEC §4): the memory-mapped dataset format, the built-in synthetic talking-head corpus (voice,
//! head mesh, rasterizer), audio input and features, and preview images.

pub mod audio;
pub mod features;
pub mod format;
pub mod import;
pub mod mesh;
pub mod output;
pub mod parallel;
pub mod preview;
pub mod raster;
pub mod synth;
pub mod voice;

pub use format::{Dataset, DatasetWriter, FrameRecord, Header};

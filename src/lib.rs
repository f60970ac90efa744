//! gensync: one shared audio-driven 3D Gaussian Splatting network for many speakers (GenSync), in Rust with
//! hand-written CUDA kernels and a CPU reference backend.

pub mod backend;
pub mod bench;
pub mod cpu;
pub mod cuda;
pub mod data;
pub mod demo;
pub mod error;
pub mod eval;
pub mod render;
pub mod model;
pub mod rng;
pub mod train;

pub use error::{Error, Result};

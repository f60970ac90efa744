//! The reference backend: plain-loop CPU twins of every CUDA kernel, with the same names, inputs and outputs
//! (`kernels/X.cu:foo` ↔ `src/cpu/X.rs:foo`). They define what the kernels must compute, and they run the
//! whole engine on machines without a GPU.

pub mod adam;
pub mod attention;
pub mod audio;
pub mod densify;
pub mod elementwise;
pub mod loss;
pub mod mlp;
pub mod raster;
pub mod real;
pub mod sort;
pub mod triplane;

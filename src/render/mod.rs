//! Rendering: the differentiable Gaussian rasterizer's stages chained for a batch, on either backend, and
//! `gensync render` of a canonical checkpoint.

pub mod canonical;
pub mod rasterize;

//! Rendering: the differentiable Gaussian rasterizer's stages chained for a batch, on either backend.

pub mod rasterize;

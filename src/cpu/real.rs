//! `Real`: the float type a CPU twin is generic over, so one twin runs in f32 (the reference the CUDA kernels
//! are compared with) and in f64 (what central finite differences need).

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

pub trait Real:
    Copy
    + Debug
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
{
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn floor(self) -> Self;
    fn abs(self) -> Self;

    fn zero() -> Self {
        Self::from_f64(0.0)
    }
    fn one() -> Self {
        Self::from_f64(1.0)
    }
    /// −1, 0 or +1 (0 at 0, like the derivative PyTorch gives |x| at 0); NaN stays NaN.
    fn sign(self) -> Self {
        if self > Self::zero() {
            Self::one()
        } else if self < Self::zero() {
            -Self::one()
        } else {
            self * Self::zero()
        }
    }
}

impl Real for f32 {
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn floor(self) -> Self {
        f32::floor(self)
    }
    fn abs(self) -> Self {
        f32::abs(self)
    }
}

impl Real for f64 {
    fn from_f64(v: f64) -> Self {
        v
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn floor(self) -> Self {
        f64::floor(self)
    }
    fn abs(self) -> Self {
        f64::abs(self)
    }
}

/// Converts a slice to another float type (test inputs to f64, say).
pub fn convert<A: Real, B: Real>(x: &[A]) -> Vec<B> {
    x.iter().map(|&v| B::from_f64(v.to_f64())).collect()
}

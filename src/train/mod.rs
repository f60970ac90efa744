//! Training: the canonical stage, checkpoints, learning-rate schedules, initialisation.

pub mod canonical;
pub mod canonical_gpu;
pub mod checkpoint;
pub mod init;
pub mod schedule;

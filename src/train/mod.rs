//! Training: checkpoints, learning-rate schedules, initialisation.

pub mod checkpoint;
pub mod init;
pub mod schedule;

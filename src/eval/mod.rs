//! Evaluation without pretrained networks (SPEC §8): image quality and lip-sync measures.

pub mod metrics;

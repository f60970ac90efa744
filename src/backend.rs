//! `--device auto|cpu|cuda`: which backend runs the work.

use crate::cuda::{probe_unavailable, Gpu};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// CUDA when a GPU is usable, otherwise the CPU.
    Auto,
    Cpu,
    Cuda,
}

impl std::str::FromStr for DeviceChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda),
            _ => Err(Error::input(format!("--device: expected auto, cpu or cuda, got {s:?}"))),
        }
    }
}

pub enum Backend {
    Cpu,
    Cuda(Box<Gpu>),
}

impl Backend {
    /// Opens the chosen backend. `Cuda` without a usable GPU is an input error (exit 2); `Auto` falls back to
    /// the CPU, saying why on stderr unless `quiet`.
    pub fn select(choice: DeviceChoice, quiet: bool) -> Result<Backend> {
        match choice {
            DeviceChoice::Cpu => Ok(Backend::Cpu),
            DeviceChoice::Cuda => Ok(Backend::Cuda(Box::new(Gpu::new()?))),
            DeviceChoice::Auto => match probe_unavailable() {
                Some(why) => {
                    if !quiet {
                        eprintln!("{}", cpu_fallback_note(&why));
                    }
                    Ok(Backend::Cpu)
                }
                None => Ok(Backend::Cuda(Box::new(Gpu::new()?))),
            },
        }
    }

    pub fn gpu(&self) -> Option<&Gpu> {
        match self {
            Backend::Cpu => None,
            Backend::Cuda(g) => Some(g),
        }
    }
}

/// The line printed when `--device auto` finds no GPU.
pub fn cpu_fallback_note(why: &str) -> String {
    format!("{why}: using the CPU backend")
}

//! The one error type of the engine. Every failure a user can cause (a bad file, a bad option, no GPU when
//! `--device cuda` is asked) is `Error::Input` and ends the program with one line on stderr and exit status 2;
//! anything else (a CUDA driver failure, a bug) exits with status 1. No panic is meant to reach the user.

use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// The user's input is wrong: the message names the file or option and what is wrong with it.
    Input(String),
    /// The CUDA driver or a kernel failed: the message names the operation or kernel.
    Cuda(String),
    /// An I/O failure on a path the program chose itself (output files): names the path.
    Io(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn input(msg: impl Into<String>) -> Self {
        Error::Input(msg.into())
    }

    pub fn cuda(what: impl fmt::Display, err: impl fmt::Debug) -> Self {
        Error::Cuda(format!("{what}: {err:?}"))
    }

    /// The process exit status for this error: 2 for bad input, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) => 2,
            Error::Cuda(_) | Error::Io(_) => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Input(m) | Error::Io(m) => f.write_str(m),
            Error::Cuda(m) => write!(f, "CUDA error: {m}"),
        }
    }
}

impl std::error::Error for Error {}

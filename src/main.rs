//! The `gensync` command line. Parsing and dispatch only; the work lives in the library.

use clap::{Parser, Subcommand};
use gensync::backend::{cpu_fallback_note, Backend, DeviceChoice};
use gensync::cuda::{probe_unavailable, Gpu};
use gensync::{bench, Error, Result};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "gensync", version, about = "Multi-identity audio-driven 3D Gaussian Splatting talking heads")]
struct Cli {
    /// Backend: auto (CUDA when a GPU is usable), cpu or cuda.
    #[arg(long, global = true, default_value = "auto")]
    device: String,
    /// Time every kernel launch and print a per-kernel table (CUDA backend); also written as CSV.
    #[arg(long, global = true)]
    profile: bool,
    /// Where --profile writes its CSV.
    #[arg(long, global = true, default_value = "profile.csv")]
    profile_csv: PathBuf,
    /// No progress output on stderr.
    #[arg(long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Version, the GPU (or the CPU fallback) and the kernels loaded.
    Info,
    /// Benchmarks of kernels and steps.
    Bench {
        #[command(subcommand)]
        what: BenchCmd,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// The fused multi-tensor Adam step against the card's copy bandwidth.
    Adam {
        /// Parameters updated per step.
        #[arg(long, default_value_t = 10_000_000)]
        params: usize,
        /// Timed repetitions (the median is reported).
        #[arg(long, default_value_t = 50)]
        reps: usize,
    },
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("gensync: {e}");
        std::process::exit(e.exit_code());
    }
}

fn run(cli: Cli) -> Result<()> {
    let choice: DeviceChoice = cli.device.parse()?;
    match cli.command {
        Command::Info => info(choice),
        Command::Bench { what } => {
            let backend = Backend::select(choice, cli.quiet)?;
            if cli.profile {
                if let Some(gpu) = backend.gpu() {
                    gpu.enable_profiler();
                }
            }
            let report = match what {
                BenchCmd::Adam { params, reps } => bench::adam(&backend, params, reps)?,
            };
            print!("{report}");
            if let Some(gpu) = backend.gpu() {
                write_profile(gpu, &cli.profile_csv)?;
            }
            Ok(())
        }
    }
}

fn info(choice: DeviceChoice) -> Result<()> {
    // Open the device before printing anything, so a failure leaves no partial output.
    let device = match (choice, probe_unavailable()) {
        (DeviceChoice::Cpu, _) => Err("device: CPU backend (--device cpu)".to_string()),
        (DeviceChoice::Auto, Some(why)) => Err(cpu_fallback_note(&why)),
        _ => Ok(Gpu::new()?),
    };
    println!("gensync {}", env!("CARGO_PKG_VERSION"));
    match device {
        Err(line) => println!("{line}"),
        Ok(gpu) => {
            println!("device: {}", gpu.info());
            let names = gpu.kernel_names();
            println!("kernels loaded: {}", names.len());
            for (family, name) in names {
                println!("  {family}.cu:{name}");
            }
        }
    }
    Ok(())
}

/// Prints the per-kernel table (stderr) and writes its CSV, when --profile is on.
fn write_profile(gpu: &Gpu, csv_path: &PathBuf) -> Result<()> {
    let Some(table) = gpu.profile()? else { return Ok(()) };
    eprint!("{}", table.table());
    std::fs::write(csv_path, table.csv())
        .map_err(|e| Error::Io(format!("{}: cannot write the profile CSV: {e}", csv_path.display())))
}

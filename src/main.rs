//! The `gensync` command line. Parsing and dispatch only; the work lives in the library.

use clap::{Parser, Subcommand};
use gensync::backend::{cpu_fallback_note, Backend, DeviceChoice};
use gensync::cpu::loss::Frames;
use gensync::cpu::mlp::Dense;
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
    /// Version, the GPU (or the CPU fallback) and the kernels loaded; with a dataset file, its header.
    Info {
        /// A dataset file (.gsd) whose header to print instead.
        dataset: Option<PathBuf>,
    },
    /// Write the built-in synthetic talking-head corpus (one dataset per identity), or one voice's speech,
    /// or the true video of an identity speaking a given articulation track.
    Synth(SynthArgs),
    /// Turn an ER-NeRF / GaussianTalker subject folder into a dataset file.
    Import {
        /// The subject folder (transforms_train.json, transforms_val.json, ori_imgs/ or gt_imgs/, parsing/,
        /// torso_imgs/, bc.jpg, aud.wav, optional aud_ds.npy, au.csv, .lms landmarks).
        subject: PathBuf,
        /// The dataset file to write.
        #[arg(long)]
        out: PathBuf,
        /// Audio features: builtin (log-mel from aud.wav) or deepspeech (aud_ds.npy).
        #[arg(long, default_value = "builtin")]
        features: String,
        /// Resize frames to this width (height keeps the aspect ratio; intrinsics scaled with it).
        #[arg(long)]
        size: Option<u32>,
    },
    /// Synthesize a small corpus, train its canonical stage, render the held-out frames and print PSNR and
    /// SSIM (on the GPU at 512²; on the CPU at a small size that takes a few minutes).
    Demo(DemoArgs),
    /// Train: the canonical stage (per identity: Gaussians, triplane and F_c).
    Train(TrainArgs),
    /// Render an identity's canonical Gaussians (no mouth motion yet) on dataset frames: PNGs, a contact
    /// sheet beside the ground truth, and PSNR / SSIM per frame.
    Render(RenderArgs),
    /// Benchmarks of kernels and steps.
    Bench {
        #[command(subcommand)]
        what: BenchCmd,
    },
}

#[derive(clap::Args)]
struct DemoArgs {
    /// The folder to create: corpus/, canonical.safetensors, render-KK/ with PNGs and contact sheets.
    #[arg(long, default_value = "demo")]
    out: PathBuf,
    /// Identities.
    #[arg(long, default_value_t = 2)]
    identities: u32,
    /// Seconds of video per identity [GPU 10, CPU 3].
    #[arg(long)]
    seconds: Option<f32>,
    /// Frame side in pixels [GPU 512, CPU 64].
    #[arg(long)]
    size: Option<usize>,
    /// Canonical steps per identity [GPU 8000, CPU 600].
    #[arg(long)]
    steps: Option<u32>,
}

#[derive(clap::Args)]
struct SynthArgs {
    /// Identities, one dataset file each.
    #[arg(long, default_value_t = 4)]
    identities: u32,
    /// Seconds of speech per identity.
    #[arg(long, default_value_t = 20.0)]
    seconds: f32,
    /// Image side in pixels.
    #[arg(long, default_value_t = 512)]
    size: usize,
    /// Corpus seed: the same seed gives byte-identical files.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output folder (with --render-track: the dataset file).
    #[arg(long, default_value = "corpus")]
    out: PathBuf,
    /// Also write preview-contact.png and preview-signals.png into the output folder.
    #[arg(long)]
    preview: bool,
    /// Write only speech in --voice: voice-NAME.wav and its articulation track voice-NAME.track.csv.
    #[arg(long, requires = "voice")]
    audio_only: bool,
    /// With --audio-only: an identity index of the corpus (its own voice and text) or novel:SEED.
    #[arg(long)]
    voice: Option<String>,
    /// With --audio-only: draw a new text for the voice (held-out audio).
    #[arg(long)]
    text_seed: Option<u64>,
    /// Render identity --identity speaking this track (from --audio-only) with --audio as its sound.
    #[arg(long, requires_all = ["audio", "identity"], conflicts_with = "audio_only")]
    render_track: Option<PathBuf>,
    /// With --render-track: the WAV that goes with the track.
    #[arg(long)]
    audio: Option<PathBuf>,
    /// With --render-track: which identity of the corpus to render.
    #[arg(long)]
    identity: Option<u32>,
    /// Also write each identity as an ER-NeRF / GaussianTalker subject folder (identity-KK.ernerf/), the
    /// layout `gensync import` reads: `native` (default) or `ernerf`.
    #[arg(long, default_value = "native")]
    layout: String,
    /// With --layout ernerf: frames as png (lossless) or jpeg.
    #[arg(long, default_value = "png")]
    frames: String,
}

#[derive(clap::Args)]
struct TrainArgs {
    /// Stage to train: canonical.
    #[arg(long, default_value = "canonical")]
    stage: String,
    /// The corpus folder (identity-KK.gsd files, as `gensync synth` writes them).
    #[arg(long)]
    data: PathBuf,
    /// The checkpoint to write (safetensors).
    #[arg(long)]
    out: PathBuf,
    /// Steps per identity (a resumed run continues up to this count).
    #[arg(long, default_value_t = 8000)]
    steps: u32,
    /// Identities to train, e.g. 0,2 (default: every dataset in --data).
    #[arg(long)]
    identities: Option<String>,
    /// Seed of the initialisation and of the frame order (a resumed run keeps the checkpoint's).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Continue from this checkpoint (bit-for-bit on the CPU backend).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// At most this many initial Gaussians per identity (default: every head-mesh vertex).
    #[arg(long)]
    init_points: Option<usize>,
    /// Multiplies every default learning rate (tiny CPU runs: more, to see progress in few steps).
    #[arg(long, default_value_t = 1.0)]
    lr_scale: f32,
}

#[derive(clap::Args)]
struct RenderArgs {
    /// A canonical-stage checkpoint written by `gensync train`.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Which identity of the checkpoint to render.
    #[arg(long, default_value_t = 0)]
    identity: u32,
    /// Frames to render: held-out (the last 1/11), train or all.
    #[arg(long, default_value = "held-out")]
    frames: String,
    /// The corpus folder (default: the one the checkpoint was trained on).
    #[arg(long)]
    data: Option<PathBuf>,
    /// The folder to write (must not exist, or be empty): frame-XXXXX.png, contact-sheet.png, metrics.txt.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Subcommand)]
enum BenchCmd {
    /// One canonical-stage training step (triplane, F_c, rasterizer, loss, backward, Adam) at batch 1.
    Canonical {
        /// At most this many Gaussians (taken evenly from the synthetic head mesh).
        #[arg(long, default_value_t = 50_000)]
        gaussians: usize,
        /// Image side in pixels.
        #[arg(long, default_value_t = 512)]
        size: usize,
        /// Timed repetitions (the median is reported).
        #[arg(long, default_value_t = 50)]
        reps: usize,
    },
    /// The fused multi-tensor Adam step against the card's copy bandwidth.
    Adam {
        /// Parameters updated per step.
        #[arg(long, default_value_t = 10_000_000)]
        params: usize,
        /// Timed repetitions (the median is reported).
        #[arg(long, default_value_t = 50)]
        reps: usize,
    },
    /// One dense layer (kernels/mlp.cu) forward and forward + backward, in TFLOP/s.
    Mlp {
        /// Rows (batch × points).
        #[arg(long, default_value_t = 50_000)]
        rows: usize,
        /// Input width.
        #[arg(long = "in", default_value_t = 64)]
        n_in: usize,
        /// Output width.
        #[arg(long = "out", default_value_t = 128)]
        n_out: usize,
        /// Activation: none, relu or leaky.
        #[arg(long, default_value = "relu")]
        act: String,
        /// Timed repetitions (the median is reported).
        #[arg(long, default_value_t = 50)]
        reps: usize,
    },
    /// The Gaussian rasterizer (kernels/raster.cu, sort.cu) forward and forward + backward on the face-like
    /// scene of the PyTorch + gsplat peer (means ~ N(0, 0.3²) at distance 3, focal 1200 at 512²).
    Raster {
        /// Gaussians per frame.
        #[arg(long, default_value_t = 50_000)]
        gaussians: usize,
        /// Frames, each with its own Gaussians, camera and background.
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Image side in pixels.
        #[arg(long, default_value_t = 512)]
        size: usize,
        /// Timed repetitions (the median is reported).
        #[arg(long, default_value_t = 50)]
        reps: usize,
        /// Also write the scene, d_image, our outputs and gradients as .npy files into this folder
        /// (read by bench/raster_vs_gsplat.py).
        #[arg(long)]
        dump: Option<PathBuf>,
    },
    /// The deformation network (kernels/audio.cu, attention.cu): forward + backward + Adam of one
    /// training step on random inputs.
    Deform {
        /// Gaussians of the batch's identity.
        #[arg(long, default_value_t = 50_000)]
        gaussians: usize,
        /// Frames per step.
        #[arg(long, default_value_t = 8)]
        batch: usize,
        /// Timed repetitions (the median is reported).
        #[arg(long, default_value_t = 20)]
        reps: usize,
    },
    /// The photometric loss (kernels/loss.cu: L1 + SSIM + lip L1) forward and forward + backward.
    Loss {
        /// Frames.
        #[arg(long, default_value_t = 8)]
        batch: usize,
        #[arg(long, default_value_t = 512)]
        height: usize,
        #[arg(long, default_value_t = 512)]
        width: usize,
        /// Timed repetitions (the median is reported).
        #[arg(long, default_value_t = 50)]
        reps: usize,
    },
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        Err(e) => {
            // clap's own errors (an unknown option, a value that does not parse) in one line like ours: the
            // message's first paragraph, without its "error: " and the usage that follows.
            let text = e.to_string();
            let first: Vec<&str> = text.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
            eprintln!("gensync: {}", first.join(" ").trim_start_matches("error: "));
            std::process::exit(2);
        }
    };
    if let Err(e) = run(cli) {
        eprintln!("gensync: {e}");
        std::process::exit(e.exit_code());
    }
}

fn run(cli: Cli) -> Result<()> {
    let choice: DeviceChoice = cli.device.parse()?;
    if cli.profile {
        gensync::data::output::check_output_file("--profile-csv", &cli.profile_csv)?;
    }
    match cli.command {
        Command::Info { dataset: None } => info(choice),
        Command::Info { dataset: Some(path) } => {
            let ds = gensync::data::Dataset::open(&path)?;
            print!("{}\n{}", path.display(), ds.header());
            Ok(())
        }
        Command::Synth(args) => synth(args, cli.quiet),
        Command::Import { subject, out, features, size } => {
            use gensync::data::import::{import_subject, FeatureSource, ImportOptions};
            let features = match features.as_str() {
                "builtin" => FeatureSource::Builtin,
                "deepspeech" => FeatureSource::DeepSpeech,
                other => return Err(Error::input(format!("--features: expected builtin or deepspeech, got {other:?}"))),
            };
            let s = import_subject(&subject, &out, &ImportOptions { features, size })?;
            println!(
                "{}: {} frames ({} train, {} held out), {}x{}, {} background{}; {:.1} s ({:.0} frames/s)",
                out.display(),
                s.frames,
                s.train_frames,
                s.frames - s.train_frames,
                s.width,
                s.height,
                if s.per_frame_background { "per-frame" } else { "one" },
                if s.per_frame_background { "s" } else { "" },
                s.seconds,
                s.frames as f64 / s.seconds
            );
            Ok(())
        }
        Command::Train(a) => train(a, choice, cli.quiet, cli.profile.then_some(&cli.profile_csv)),
        Command::Demo(a) => {
            let backend = Backend::select(choice, cli.quiet)?;
            let o = gensync::demo::DemoOptions {
                out: a.out,
                identities: a.identities,
                seconds: a.seconds,
                size: a.size,
                steps: a.steps,
                quiet: cli.quiet,
            };
            print!("{}", gensync::demo::demo(&backend, &o)?);
            Ok(())
        }
        Command::Render(a) => render(a, choice, cli.quiet, cli.profile.then_some(&cli.profile_csv)),
        Command::Bench { what } => {
            let backend = Backend::select(choice, cli.quiet)?;
            if cli.profile {
                if let Some(gpu) = backend.gpu() {
                    gpu.enable_profiler();
                }
            }
            let report = match what {
                BenchCmd::Adam { params, reps } => bench::adam(&backend, params, reps)?,
                BenchCmd::Canonical { gaussians, size, reps } => bench::canonical(&backend, gaussians, size, reps)?,
                BenchCmd::Mlp { rows, n_in, n_out, act, reps } => {
                    bench::mlp(&backend, Dense { rows, n_in, n_out, act: act.parse()? }, reps)?
                }
                BenchCmd::Raster { gaussians, batch, size, reps, dump } => {
                    bench::raster(&backend, gaussians, batch, size, reps, dump.as_deref())?
                }
                BenchCmd::Deform { gaussians, batch, reps } => bench::deform(&backend, gaussians, batch, reps)?,
                BenchCmd::Loss { batch, height, width, reps } => {
                    bench::loss(&backend, Frames { b: batch, h: height, w: width }, reps)?
                }
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

fn synth(a: SynthArgs, quiet: bool) -> Result<()> {
    use gensync::data::import::export::{export_ernerf, FrameFormat};
    use gensync::data::{preview, synth};
    let progress = synth::Progress { quiet };
    if a.audio_only {
        let voice = a.voice.as_deref().unwrap_or_default().parse()?;
        let o = synth::AudioOptions { voice, text_seed: a.text_seed, seconds: a.seconds, seed: a.seed, out: a.out };
        let (wav, track) = synth::write_voice(&o)?;
        println!("{}\n{}", wav.display(), track.display());
    } else if let (Some(track), Some(audio), Some(identity)) = (a.render_track, a.audio, a.identity) {
        let o = synth::TrackOptions { track, audio, identity, size: a.size, seed: a.seed, out: a.out };
        synth::write_track_dataset(&o, &progress)?;
        println!("{}", o.out.display());
    } else {
        let o = synth::CorpusOptions { identities: a.identities, seconds: a.seconds, size: a.size, seed: a.seed, out: a.out };
        let frames_as = match (a.layout.as_str(), a.frames.as_str()) {
            ("native", _) => None,
            ("ernerf", "png") => Some(FrameFormat::Png),
            ("ernerf", "jpeg") => Some(FrameFormat::Jpeg),
            ("ernerf", other) => return Err(Error::input(format!("--frames: expected png or jpeg, got {other:?}"))),
            (other, _) => return Err(Error::input(format!("--layout: expected native or ernerf, got {other:?}"))),
        };
        let paths = synth::write_corpus(&o, &progress)?;
        if let Some(frames_as) = frames_as {
            for p in &paths {
                let subject = p.with_extension("ernerf");
                export_ernerf(&gensync::data::Dataset::open(p)?, &subject, frames_as)?;
                println!("{}", subject.display());
            }
        }
        if a.preview {
            preview::write_preview(&paths, &o.out)?;
        }
        paths.iter().for_each(|p| println!("{}", p.display()));
    }
    Ok(())
}

fn train(a: TrainArgs, choice: DeviceChoice, quiet: bool, profile_csv: Option<&PathBuf>) -> Result<()> {
    use gensync::train::canonical::{parse_identities, train_canonical, CanonicalOptions};
    if a.stage != "canonical" {
        return Err(Error::input(format!("--stage {}: only canonical is implemented", a.stage)));
    }
    if a.steps == 0 {
        return Err(Error::input("--steps 0: must be at least 1"));
    }
    let identities = a.identities.as_deref().map(parse_identities).transpose()?;
    let o = CanonicalOptions {
        data: a.data,
        out: a.out,
        steps: a.steps,
        identities,
        seed: a.seed,
        resume: a.resume,
        init_points: a.init_points,
        lr_scale: a.lr_scale,
        quiet,
    };
    let backend = Backend::select(choice, quiet)?;
    if let (Some(gpu), Some(_)) = (backend.gpu(), profile_csv) {
        gpu.enable_profiler();
    }
    let report = train_canonical(&o, &backend)?;
    for r in &report.identities {
        let (k, n, seconds) = (r.index, r.gaussians, r.seconds);
        println!("identity {k}: {} steps in {seconds:.1} s, {n} Gaussians, final loss {:.4}", r.losses.len(), r.final_loss());
    }
    if let Some(gpu) = backend.gpu() {
        println!("peak device memory in use: {:.0} MiB ({})", report.peak_device_bytes as f64 / (1 << 20) as f64, gpu.info().name);
        if let Some(csv) = profile_csv {
            write_profile(gpu, csv)?;
        }
    }
    println!("{}", o.out.display());
    Ok(())
}

fn render(a: RenderArgs, choice: DeviceChoice, quiet: bool, profile_csv: Option<&PathBuf>) -> Result<()> {
    use gensync::render::canonical::{render_canonical, RenderOptions};
    let o = RenderOptions { checkpoint: a.checkpoint, identity: a.identity, frames: a.frames.parse()?, data: a.data, out: a.out, quiet };
    let backend = Backend::select(choice, quiet)?;
    let gpu = backend.gpu().filter(|_| profile_csv.is_some());
    if let Some(gpu) = gpu {
        gpu.enable_profiler();
    }
    println!("{}", render_canonical(&backend, &o)?.summary());
    match (gpu, profile_csv) {
        (Some(gpu), Some(csv)) => write_profile(gpu, csv),
        _ => Ok(()),
    }
}

/// Prints the per-kernel table (stderr) and writes its CSV, when --profile is on.
fn write_profile(gpu: &Gpu, csv_path: &PathBuf) -> Result<()> {
    let Some(table) = gpu.profile()? else { return Ok(()) };
    eprint!("{}", table.table());
    std::fs::write(csv_path, table.csv())
        .map_err(|e| Error::Io(format!("{}: cannot write the profile CSV: {e}", csv_path.display())))
}

//! `gensync demo`: the pipeline so far in one command: a small synthetic corpus, the canonical stage for
//! every identity, held-out renders with contact sheets, PSNR and SSIM. On the GPU it runs the real
//! schedule at 512²; on the CPU a small version that finishes in a few minutes on two cores.

use crate::backend::Backend;
use crate::data::synth::{write_corpus, CorpusOptions, Progress};
use crate::error::{Error, Result};
use crate::render::canonical::{render_canonical, FrameSet, RenderOptions};
use crate::train::canonical::{train_canonical, CanonicalOptions};
use std::path::PathBuf;
use std::time::Instant;

/// `gensync demo`; None means the backend's default.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The folder to create (corpus/, canonical.safetensors, render-KK/).
    pub out: PathBuf,
    pub identities: u32,
    pub seconds: Option<f32>,
    pub size: Option<usize>,
    pub steps: Option<u32>,
    pub quiet: bool,
}

/// The demo's sizes on one backend.
struct Sizes {
    seconds: f32,
    size: usize,
    steps: u32,
    /// Initial Gaussians (None: every head-mesh vertex).
    init_points: Option<usize>,
    lr_scale: f32,
}

impl Sizes {
    fn for_backend(backend: &Backend) -> Sizes {
        match backend {
            // SPEC §7's schedule and rates at the corpus's full size.
            Backend::Cuda(_) => Sizes { seconds: 10.0, size: 512, steps: 8000, init_points: None, lr_scale: 1.0 },
            // About a minute per identity on one core: few Gaussians, small frames, few steps, so the rates
            // are raised (the camera extent of the synthetic corpus makes SPEC §7's decaying rates tiny).
            Backend::Cpu => Sizes { seconds: 3.0, size: 64, steps: 600, init_points: Some(1000), lr_scale: 30.0 },
        }
    }
}

/// Runs the demo and returns the lines it prints: per identity the training and the held-out metrics.
pub fn demo(backend: &Backend, o: &DemoOptions) -> Result<String> {
    if o.out.exists() && std::fs::read_dir(&o.out).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(Error::input(format!("--out {}: exists and is not empty; the demo writes a fresh folder", o.out.display())));
    }
    if o.identities == 0 {
        return Err(Error::input("--identities 0: must be at least 1"));
    }
    let d = Sizes::for_backend(backend);
    let (seconds, size, steps) = (o.seconds.unwrap_or(d.seconds), o.size.unwrap_or(d.size), o.steps.unwrap_or(d.steps));
    if steps == 0 {
        return Err(Error::input("--steps 0: must be at least 1"));
    }
    // The held-out frames are the last 1/11 of 25 fps video: under a second there may be none to render.
    if seconds.is_nan() || seconds < 1.0 {
        return Err(Error::input(format!("--seconds {seconds}: the demo needs at least 1 s per identity (its held-out frames are the last 1/11)")));
    }
    let device = backend.gpu().map_or("CPU".to_string(), |g| g.info().name.clone());
    let mut lines = format!("gensync demo on {device}: {} identities, {seconds} s each at {size}x{size}, {steps} canonical steps\n", o.identities);
    let start = Instant::now();
    let corpus = o.out.join("corpus");
    let say = |what: &str| {
        if !o.quiet {
            eprintln!("demo: {what}");
        }
    };
    say("writing the synthetic corpus");
    let corpus_options = CorpusOptions { identities: o.identities, seconds, size, seed: 1, out: corpus.clone() };
    write_corpus(&corpus_options, &Progress { quiet: o.quiet })?;

    say("training the canonical stage");
    let checkpoint = o.out.join("canonical.safetensors");
    let train = CanonicalOptions {
        data: corpus.clone(),
        out: checkpoint.clone(),
        steps,
        identities: None,
        seed: 1,
        resume: None,
        init_points: d.init_points,
        lr_scale: d.lr_scale,
        quiet: o.quiet,
    };
    let report = train_canonical(&train, backend)?;
    for r in &report.identities {
        let (k, n, s) = (r.index, r.gaussians, r.seconds);
        lines += &format!(
            "identity {k}: trained {steps} steps in {s:.1} s ({:.2} ms/step), {n} Gaussians, loss {:.4}\n",
            1e3 * s / steps as f64,
            r.final_loss()
        );
    }

    say("rendering the held-out frames");
    for r in &report.identities {
        let k = r.index;
        let render = RenderOptions {
            checkpoint: checkpoint.clone(),
            identity: k,
            frames: FrameSet::HeldOut,
            data: Some(corpus.clone()),
            out: o.out.join(format!("render-{k:02}")),
            quiet: o.quiet,
        };
        lines += &render_canonical(backend, &render)?.summary();
        lines.push('\n');
    }
    lines += &format!("demo finished in {:.1} s\n", start.elapsed().as_secs_f64());
    Ok(lines)
}

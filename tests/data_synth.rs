//! The synthetic corpus (SPEC §4.1): determinism, learnability of mouth motion from the audio features alone,
//! mouth area following the jaw, and ground-truth video for any articulation track.

mod common;

use gensync::data::features::{features, low_band_energy, windows, N_MELS};
use gensync::data::format::{Dataset, FEATURE_WINDOW};
use gensync::data::synth::{self, CorpusOptions, Identity, Progress, FPS};
use gensync::data::voice::speak;
use std::path::PathBuf;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gensync-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn same_seed_gives_identical_files_and_different_seeds_differ() {
    let dir = temp_dir("determinism");
    let run = |seed: &str, out: &str| {
        let out = dir.join(out);
        let o = common::gensync(&["--quiet", "synth", "--identities", "2", "--seconds", "1.2", "--size", "48", "--seed", seed, "--out", out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        ["identity-00.gsd", "identity-01.gsd", "manifest.json"].map(|f| std::fs::read(out.join(f)).unwrap())
    };
    let (a, b, c) = (run("5", "a"), run("5", "b"), run("6", "c"));
    assert!(a == b, "same seed, same bytes");
    for k in 0..2 {
        assert_ne!(a[k], c[k], "identity {k}: different seeds differ");
    }
    // The two identities of one corpus differ too.
    assert_ne!(a[0], a[1]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Over 20 s of speech, an audio-only measure (low-band energy of the features) follows the jaw.
#[test]
fn jaw_opening_is_predictable_from_the_audio_features() {
    let mut worst = f64::MAX;
    for k in 0..4 {
        let id = Identity::new(1, k);
        let speech = speak(&id.voice, id.text_seed(), 20.0, FPS);
        let pcm = gensync::data::audio::to_pcm16(&speech.audio);
        let feats = features(&gensync::data::audio::from_pcm16(&pcm), 16_000);
        let frames = speech.track.jaw.len();
        let w = windows(&feats, frames, FPS);
        let low: Vec<f32> = (0..frames).map(|t| low_band_energy(&w[t * FEATURE_WINDOW * N_MELS..][..FEATURE_WINDOW * N_MELS], N_MELS)).collect();
        let r = gensync::eval::metrics::pearson(&speech.track.jaw, &low);
        println!("identity {k} (F0 {:.0} Hz): Pearson(jaw, low-band energy) = {r:.3}", id.voice.f0);
        worst = worst.min(r);
    }
    assert!(worst >= 0.6, "worst Pearson {worst:.3}");
}

/// Rendered mouth area follows the ground-truth jaw opening (small images, 20 s), and the lip box holds
/// the mouth.
#[test]
fn mouth_area_follows_the_jaw() {
    let dir = temp_dir("area");
    let paths = synth::write_corpus(
        &CorpusOptions { identities: 2, seconds: 20.0, size: 64, seed: 3, out: dir.clone() },
        &Progress { quiet: true },
    )
    .unwrap();
    for p in &paths {
        let ds = Dataset::open(p).unwrap();
        let jaw: Vec<f32> = ds.frames().iter().map(|f| f.jaw).collect();
        let area: Vec<f32> = ds.frames().iter().map(|f| f.mouth_area).collect();
        let r = gensync::eval::metrics::pearson(&jaw, &area);
        println!("{}: Pearson(jaw, mouth area) = {r:.3}", p.display());
        assert!(r >= 0.9, "{r}");
        for f in ds.frames() {
            let [x0, y0, x1, y1] = f.lip_box;
            assert!(x1 > x0 && y1 > y0, "the lips are always visible");
            assert!(f.mouth_area <= ((x1 - x0) * (y1 - y0)) as f32, "the mouth lies inside the lip box");
        }
        // The head mask covers a head-sized part of the image.
        let covered = ds.mask(0).iter().filter(|&&m| m > 127).count() as f32 / (64.0 * 64.0);
        assert!((0.1..0.6).contains(&covered), "{covered}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--audio-only` then `--render-track`: identity 1 driven by its own voice reproduces its corpus dataset
/// exactly; driven by identity 0's voice or a novel voice it gives a valid dataset of the same identity.
#[test]
fn render_track_gives_ground_truth_for_any_voice() {
    let dir = temp_dir("track");
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();
    let corpus = dir.join("corpus");
    let o = common::gensync(&["--quiet", "synth", "--identities", "2", "--seconds", "1", "--size", "40", "--seed", "9", "--out", &s(&corpus)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let voices = dir.join("voices");
    for voice in ["1", "0", "novel:77"] {
        let o = common::gensync(&["synth", "--audio-only", "--voice", voice, "--seconds", "1", "--seed", "9", "--out", &s(&voices)]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let printed = String::from_utf8(o.stdout).unwrap();
        let (wav, track) = {
            let mut l = printed.lines();
            (l.next().unwrap().to_string(), l.next().unwrap().to_string())
        };
        let out = dir.join(format!("driven-{}.gsd", voice.replace(':', "-")));
        let o = common::gensync(&["--quiet", "synth", "--render-track", &track, "--audio", &wav, "--identity", "1", "--size", "40", "--seed", "9", "--out", &s(&out)]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let driven = Dataset::open(&out).unwrap();
        assert_eq!(driven.header().identity, 1);
        if voice == "1" {
            assert!(std::fs::read(&out).unwrap() == std::fs::read(corpus.join("identity-01.gsd")).unwrap(), "own track = corpus");
        } else {
            let own = Dataset::open(&corpus.join("identity-01.gsd")).unwrap();
            assert_ne!(driven.frames()[10].jaw, own.frames()[10].jaw);
            // Same identity: the background (and the torso in it) is unchanged.
            assert_eq!(driven.background(0), own.background(0));
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn preview_and_info_work_on_a_small_corpus() {
    let dir = temp_dir("preview");
    let s = dir.to_str().unwrap();
    let o = common::gensync(&["--quiet", "synth", "--identities", "2", "--seconds", "1", "--size", "64", "--out", s, "--preview"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in ["preview-contact.png", "preview-signals.png", "manifest.json"] {
        assert!(std::fs::metadata(dir.join(f)).unwrap().len() > 100, "{f}");
    }
    let o = common::gensync(&["info", dir.join("identity-01.gsd").to_str().unwrap()]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(o.status.success() && text.contains("identity 1") && text.contains("features [25, 16, 32] f32"), "{text}");
    // Out-of-range options are input errors.
    let o = common::gensync(&["synth", "--size", "3", "--out", s]);
    assert_eq!(o.status.code(), Some(2));
    let o = common::gensync(&["synth", "--audio-only", "--voice", "nobody", "--out", s]);
    assert_eq!(o.status.code(), Some(2));
    // An --out that names a file (here a dataset) is one too.
    let file = dir.join("identity-01.gsd");
    let o = common::gensync(&["synth", "--audio-only", "--voice", "0", "--out", file.to_str().unwrap()]);
    common::assert_input_error(&o, "synth --out naming a file", "--out");
    std::fs::remove_dir_all(&dir).unwrap();
}

//! `gensync demo` end to end on the CPU at a tiny size: corpus, canonical training, held-out renders,
//! metrics printed, exit 0; and its refusal of a non-empty output folder or of too short a video.

mod common;


#[test]
fn tiny_demo_runs_on_the_cpu() {
    let dir = std::env::temp_dir().join(format!("gensync-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let args = ["--device", "cpu", "--quiet", "demo", "--out", dir.to_str().unwrap(), "--seconds", "1", "--size", "32", "--steps", "100"];
    let out = common::gensync(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed: {}{}", stdout, String::from_utf8_lossy(&out.stderr));
    for k in 0..2 {
        let line = stdout.lines().find(|l| l.starts_with(&format!("identity {k}: ")) && l.contains("PSNR")).expect("a metrics line");
        let psnr: f64 = line.split("PSNR ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
        // The exact background alone gives ≈ 20 dB (one step: 20.2); 100 steps reached 24.3 and 26.1.
        assert!(psnr > 22.5, "identity {k}: {line}");
        let render = dir.join(format!("render-{k:02}"));
        assert!(render.join("contact-sheet.png").is_file() && render.join("metrics.txt").is_file());
    }
    assert!(dir.join("canonical.safetensors").is_file());

    // A second run into the same folder is refused before anything is touched.
    let again = common::gensync(&args);
    assert_eq!(again.status.code(), Some(2));
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--out"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();

    // Too short to have held-out frames: refused before anything is written.
    let short = common::gensync(&["--device", "cpu", "--quiet", "demo", "--out", dir.to_str().unwrap(), "--seconds", "0.5"]);
    assert_eq!(short.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&short.stderr).contains("--seconds"));
    assert!(!dir.exists(), "a refused demo left {}", dir.display());
}

//! `gensync import`: a dataset written out in the ER-NeRF subject layout and imported again gives back its
//! frames, poses, masks and eye values; every missing or malformed piece of a subject is a one-line error
//! naming the file, with no output left behind.

mod common;

use gensync::data::format::{Dataset, DatasetWriter, FrameRecord, Header};
use gensync::data::import::export::{export_ernerf, FrameFormat};
use gensync::data::import::{import_subject, FeatureSource, ImportOptions};
use gensync::rng::Rng;
use std::path::{Path, PathBuf};

const W: u32 = 48;
const H: u32 = 40;
const FRAMES: usize = 11;
const C: usize = 32;

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("gensync-import-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A small dataset with known content: smooth images (so JPEG stays close), binary masks, random rigid
/// poses, eye values, lip boxes, log-mel-shaped features and PCM.
fn write_dataset(path: &Path, seed: u64) {
    let mut rng = Rng::new(seed);
    let pcm: Vec<i16> = (0..FRAMES * 640).map(|_| (rng.normal() * 3000.0) as i16).collect();
    let header = Header::new(FRAMES as u32, W, H, 25, 16_000, C as u32, pcm.len() as u64, false);
    let writer = DatasetWriter::create(path, header).unwrap();
    let mut records = Vec::new();
    for i in 0..FRAMES {
        let (a, b) = (rng.range(0.0, 6.0), rng.range(0.0, 6.0));
        let rgb: Vec<u8> = (0..H * W)
            .flat_map(|k| {
                let (x, y) = ((k % W) as f32 / W as f32, (k / W) as f32 / H as f32);
                [0.0f32, 2.0, 4.0].map(|ph| (127.5 + 100.0 * (a * x + b * y + ph).sin()) as u8)
            })
            .collect();
        let mask: Vec<u8> = (0..H * W)
            .map(|k| {
                let (x, y) = ((k % W) as f32 - W as f32 / 2.0, (k / W) as f32 - H as f32 / 2.0);
                if x * x / 300.0 + y * y / 200.0 < 1.0 { 255 } else { 0 }
            })
            .collect();
        writer.write_frame(i, &rgb, &mask).unwrap();
        let (yaw, pitch) = (rng.range(-0.3, 0.3), rng.range(-0.2, 0.2));
        let (cy_, sy_, cp, sp) = (yaw.cos(), yaw.sin(), pitch.cos(), pitch.sin());
        records.push(FrameRecord {
            world_to_camera: [
                cy_, 0.0, sy_, rng.range(-0.1, 0.1),
                sp * sy_, cp, -sp * cy_, rng.range(-0.1, 0.1),
                -cp * sy_, sp, cp * cy_, 3.0 + rng.range(-0.1, 0.1),
                0.0, 0.0, 0.0, 1.0,
            ],
            intrinsics: [60.0, 60.0, 24.0, 20.0],
            eye: rng.uniform(),
            lip_box: [16, 26, 32, 34],
            feature_index: i as u32,
            ..FrameRecord::default()
        });
    }
    let background: Vec<u8> = (0..H * W * 3).map(|k| (k % 97) as u8 + 60).collect();
    writer.write_background(0, &background).unwrap();
    let features: Vec<f32> = (0..FRAMES * 16 * C).map(|_| rng.normal()).collect();
    writer.finish(&records, &features, &pcm).unwrap();
}

fn import(dir: &Path, out: &Path, features: FeatureSource) -> gensync::Result<gensync::data::import::ImportSummary> {
    import_subject(dir, out, &ImportOptions { features, size: None })
}

#[test]
fn png_round_trip_is_exact() {
    let tmp = TempDir::new("png");
    let (native, subject, back) = (tmp.0.join("native.gsd"), tmp.0.join("subject"), tmp.0.join("back.gsd"));
    write_dataset(&native, 1);
    let a = Dataset::open(&native).unwrap();
    export_ernerf(&a, &subject, FrameFormat::Png).unwrap();
    let summary = import(&subject, &back, FeatureSource::DeepSpeech).unwrap();
    assert_eq!((summary.frames, summary.train_frames), (FRAMES, a.header().train_frames as usize));
    let b = Dataset::open(&back).unwrap();
    assert_eq!((b.header().width, b.header().height, b.header().feature_channels), (W, H, 29));
    for i in 0..FRAMES {
        let (ra, rb) = (a.frames()[i], b.frames()[i]);
        assert_eq!(a.rgb(i), b.rgb(i), "frame {i} pixels");
        assert_eq!(a.mask(i), b.mask(i), "frame {i} mask");
        assert_eq!(ra.eye, rb.eye, "frame {i} eye");
        assert_eq!(ra.intrinsics, rb.intrinsics);
        for k in 0..16 {
            assert!((ra.world_to_camera[k] - rb.world_to_camera[k]).abs() < 1e-6, "frame {i} pose[{k}]");
        }
        for (p, q) in ra.lip_box.iter().zip(rb.lip_box) {
            assert!(p.abs_diff(q) <= 1, "frame {i} lip box {:?} vs {:?}", ra.lip_box, rb.lip_box);
        }
        let (mut fa, mut fb) = (Vec::new(), Vec::new());
        a.features(i).extend_f32(&mut fa);
        b.features(i).extend_f32(&mut fb);
        for k in 0..16 {
            assert_eq!(fa[k * C..k * C + 29], fb[k * 29..(k + 1) * 29], "frame {i} features row {k}");
        }
    }
    assert_eq!(a.pcm(), b.pcm());
}

#[test]
fn jpeg_frames_and_builtin_features_and_resizing() {
    let tmp = TempDir::new("jpeg");
    let (native, subject, back) = (tmp.0.join("native.gsd"), tmp.0.join("subject"), tmp.0.join("back.gsd"));
    write_dataset(&native, 2);
    let a = Dataset::open(&native).unwrap();
    export_ernerf(&a, &subject, FrameFormat::Jpeg).unwrap();
    import(&subject, &back, FeatureSource::Builtin).unwrap();
    let b = Dataset::open(&back).unwrap();
    assert_eq!(b.header().feature_channels, 32);
    for i in 0..FRAMES {
        let psnr = psnr(a.rgb(i), b.rgb(i));
        assert!(psnr > 35.0, "frame {i}: JPEG round trip PSNR {psnr:.1} dB");
        assert_eq!(a.mask(i), b.mask(i));
        let mut f = Vec::new();
        b.features(i).extend_f32(&mut f);
        assert!(f.iter().all(|v| v.is_finite()));
    }
    let half = tmp.0.join("half.gsd");
    import_subject(&subject, &half, &ImportOptions { features: FeatureSource::Builtin, size: Some(W / 2) }).unwrap();
    let c = Dataset::open(&half).unwrap();
    assert_eq!((c.header().width, c.header().height), (W / 2, H / 2));
    assert_eq!(c.frames()[0].intrinsics, a.frames()[0].intrinsics.map(|v| v / 2.0));
    // An --out that cannot name the output file is an input error before any frame is read.
    for bad_out in [tmp.0.clone(), tmp.0.join("no-such-folder/x.gsd")] {
        let err = import_subject(&subject, &bad_out, &ImportOptions { features: FeatureSource::Builtin, size: None });
        assert!(matches!(&err, Err(gensync::Error::Input(m)) if m.starts_with("--out ")), "{}: {err:?}", bad_out.display());
    }
    for size in [0, 8, 5000, u32::MAX] {
        let err = import_subject(&subject, &half, &ImportOptions { features: FeatureSource::Builtin, size: Some(size) });
        assert!(matches!(&err, Err(gensync::Error::Input(m)) if m.starts_with(&format!("--size {size}:"))), "--size {size}: {err:?}");
    }
}

/// Each broken subject gives an error that names the broken file, and leaves no output file.
#[test]
fn malformed_subjects_are_errors_naming_the_file() {
    let tmp = TempDir::new("bad");
    let native = tmp.0.join("native.gsd");
    write_dataset(&native, 3);
    let ds = Dataset::open(&native).unwrap();
    type Break = fn(&Path);
    let cases: [(&str, Break, &str, FeatureSource); 8] = [
        ("no transforms", |d| std::fs::remove_file(d.join("transforms_val.json")).unwrap(), "transforms_val.json", FeatureSource::Builtin),
        ("missing image", |d| std::fs::remove_file(d.join("ori_imgs/3.png")).unwrap(), "ori_imgs", FeatureSource::Builtin),
        ("wrong size", |d| {
            let img = vec![0u8; 10 * 10 * 3];
            let mut e = png::Encoder::new(std::fs::File::create(d.join("ori_imgs/2.png")).unwrap(), 10, 10);
            e.set_color(png::ColorType::Rgb);
            e.write_header().unwrap().write_image_data(&img).unwrap();
        }, "2.png", FeatureSource::Builtin),
        ("truncated npy", |d| {
            let p = d.join("aud_ds.npy");
            let b = std::fs::read(&p).unwrap();
            std::fs::write(&p, &b[..b.len() - 7]).unwrap();
        }, "aud_ds.npy", FeatureSource::DeepSpeech),
        ("npy dtype", |d| {
            let p = d.join("aud_ds.npy");
            let mut bytes = std::fs::read(&p).unwrap();
            let at = bytes.windows(3).position(|w| w == b"<f4").unwrap();
            bytes[at..at + 3].copy_from_slice(b"<i4");
            std::fs::write(&p, bytes).unwrap();
        }, "aud_ds.npy", FeatureSource::DeepSpeech),
        ("npy shape", |d| {
            std::fs::write(d.join("aud_ds.npy"), gensync::data::import::npy::npy_f32_bytes(&[11, 16, 30], &vec![0.0; 11 * 16 * 30])).unwrap();
        }, "aud_ds.npy", FeatureSource::DeepSpeech),
        ("au without column", |d| std::fs::write(d.join("au.csv"), "frame, AU01_r\n1, 0.5\n").unwrap(), "au.csv", FeatureSource::Builtin),
        ("torso not RGBA", |d| {
            let img = vec![0u8; (W * H * 3) as usize];
            let mut e = png::Encoder::new(std::fs::File::create(d.join("torso_imgs/5.png")).unwrap(), W, H);
            e.set_color(png::ColorType::Rgb);
            e.write_header().unwrap().write_image_data(&img).unwrap();
        }, "torso_imgs/5.png", FeatureSource::Builtin),
    ];
    for (k, (what, breaks, names, features)) in cases.iter().enumerate() {
        let subject = tmp.0.join(format!("subject{k}"));
        export_ernerf(&ds, &subject, FrameFormat::Png).unwrap();
        breaks(&subject);
        let out = tmp.0.join(format!("out{k}.gsd"));
        let err = import(&subject, &out, *features).expect_err(what).to_string();
        assert!(err.contains(names), "{what}: {err}");
        assert_eq!(err.lines().count(), 1, "{what}: {err}");
        assert!(matches!(import(&subject, &out, *features), Err(gensync::Error::Input(_))), "{what}: exit 2");
        let left: Vec<_> = std::fs::read_dir(&tmp.0).unwrap().filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("out{k}"))).collect();
        assert!(left.is_empty(), "{what}: output left behind: {:?}", left.iter().map(|e| e.file_name()).collect::<Vec<_>>());
    }
}

/// The acceptance round trip: a synthetic identity → ER-NeRF layout (PNG frames) → import equals the
/// native dataset: frames pixel-exact, poses to 1e-6, eye values exact, masks exact after the parsing map's
/// binarisation (the native mask holds anti-aliased coverage, a parsing map only classes), and the built-in
/// features recomputed from aud.wav equal the native ones.
#[test]
fn synthetic_subject_round_trip() {
    use gensync::data::synth::{write_corpus, CorpusOptions, Progress};
    let tmp = TempDir::new("synth");
    let o = CorpusOptions { identities: 1, seconds: 1.2, size: 64, seed: 5, out: tmp.0.join("corpus") };
    let native = &write_corpus(&o, &Progress { quiet: true }).unwrap()[0];
    let a = Dataset::open(native).unwrap();
    let subject = tmp.0.join("subject");
    export_ernerf(&a, &subject, FrameFormat::Png).unwrap();
    let back = tmp.0.join("back.gsd");
    import(&subject, &back, FeatureSource::Builtin).unwrap();
    let b = Dataset::open(&back).unwrap();
    assert_eq!(a.len(), b.len());
    assert_eq!(a.header().train_frames, b.header().train_frames);
    for i in 0..a.len() {
        let (ra, rb) = (a.frames()[i], b.frames()[i]);
        assert_eq!(a.rgb(i), b.rgb(i), "frame {i} pixels");
        let binary: Vec<u8> = a.mask(i).iter().map(|&m| if m >= 128 { 255 } else { 0 }).collect();
        assert_eq!(binary, b.mask(i), "frame {i} mask");
        assert_eq!(ra.eye, rb.eye, "frame {i} eye");
        assert_eq!(ra.intrinsics, rb.intrinsics, "frame {i} intrinsics");
        for k in 0..16 {
            assert!((ra.world_to_camera[k] - rb.world_to_camera[k]).abs() < 1e-6, "frame {i} pose[{k}]");
        }
        let (mut fa, mut fb) = (Vec::new(), Vec::new());
        a.features(i).extend_f32(&mut fa);
        b.features(i).extend_f32(&mut fb);
        let worst = fa.iter().zip(&fb).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-3, "frame {i}: features differ by {worst}");
    }
    // bc.jpg is the one lossy piece of the layout.
    let psnr = psnr(a.background(0), b.background(0));
    assert!(psnr > 35.0, "background through bc.jpg: {psnr:.1} dB");
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let se: f64 = a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum();
    10.0 * (255.0f64.powi(2) / (se / a.len() as f64).max(1e-12)).log10()
}

/// The commands users run: `synth --layout ernerf` then `import`; a bad option is a one-line error, exit 2.
#[test]
fn synth_ernerf_then_import_from_the_command_line() {
    let tmp = TempDir::new("cli");
    let corpus = tmp.0.join("corpus");
    let synth = common::gensync(&["synth", "--quiet", "--identities", "1", "--seconds", "0.6", "--size", "32", "--layout", "ernerf",
        "--frames", "jpeg", "--out", corpus.to_str().unwrap()]);
    assert!(synth.status.success(), "{}", String::from_utf8_lossy(&synth.stderr));
    let subject = corpus.join("identity-00.ernerf");
    assert!(subject.join("transforms_train.json").exists() && subject.join("ori_imgs/0.jpg").exists());
    let out = tmp.0.join("imported.gsd");
    let import = common::gensync(&["import", subject.to_str().unwrap(), "--out", out.to_str().unwrap(), "--features", "deepspeech"]);
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));
    assert!(String::from_utf8_lossy(&import.stdout).contains("15 frames"), "{}", String::from_utf8_lossy(&import.stdout));
    assert_eq!(Dataset::open(&out).unwrap().header().feature_channels, 29);
    let bad = common::gensync(&["import", subject.to_str().unwrap(), "--out", tmp.0.join("x.gsd").to_str().unwrap(), "--features", "mfcc"]);
    common::assert_input_error(&bad, "import --features mfcc", "--features");
    assert!(!tmp.0.join("x.gsd").exists());
}

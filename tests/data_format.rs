//! The dataset format (SPEC §4.2): round trips through the writer and the memory-mapped reader, and every
//! kind of bad input (truncated, foreign, wrong version, offsets past the end, bad WAVs) giving a one-line
//! error that names the file and the field, with exit status 2 from the CLI.

mod common;

use gensync::data::audio::{read_wav, write_wav};
use gensync::data::format::{Dataset, DatasetWriter, FrameRecord, Header, DTYPE_F16, FLAG_PER_FRAME_BACKGROUND};
use gensync::rng::Rng;
use std::path::{Path, PathBuf};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gensync-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A small dataset with random content; returns what was written.
struct Written {
    records: Vec<FrameRecord>,
    features: Vec<f32>,
    pcm: Vec<i16>,
    rgb: Vec<Vec<u8>>,
    masks: Vec<Vec<u8>>,
    backgrounds: Vec<Vec<u8>>,
}

fn write_random(path: &Path, frames: u32, size: u32, channels: u32, f16: bool, per_frame_bg: bool) -> Written {
    let mut rng = Rng::new(11);
    let mut header = Header::new(frames, size, size, 25, 16_000, channels, 1234, per_frame_bg);
    if f16 {
        header.feature_dtype = DTYPE_F16;
        header.lay_out();
    }
    let n = (size * size) as usize;
    let mut bytes = |len: usize| (0..len).map(|_| rng.below(256) as u8).collect::<Vec<u8>>();
    let rgb: Vec<Vec<u8>> = (0..frames).map(|_| bytes(n * 3)).collect();
    let masks: Vec<Vec<u8>> = (0..frames).map(|_| bytes(n)).collect();
    let backgrounds: Vec<Vec<u8>> = (0..header.background_count).map(|_| bytes(n * 3)).collect();
    let mut rng = Rng::new(12);
    let records: Vec<FrameRecord> = (0..frames)
        .map(|i| FrameRecord {
            world_to_camera: std::array::from_fn(|_| rng.normal()),
            intrinsics: [100.0, 100.0, size as f32 / 2.0, size as f32 / 2.0],
            eye: rng.uniform(),
            jaw: rng.uniform(),
            rounding: rng.uniform(),
            mouth_area: rng.range(0.0, 50.0),
            lip_box: [1, 2, size - 1, size],
            feature_index: frames - 1 - i,
            background_index: if per_frame_bg { i } else { 0 },
            ..Default::default()
        })
        .collect();
    let features: Vec<f32> = (0..frames as usize * 16 * channels as usize).map(|_| rng.normal()).collect();
    let pcm: Vec<i16> = (0..1234).map(|_| rng.below(65536) as i16).collect();
    let writer = DatasetWriter::create(path, header).unwrap();
    // Frames out of order, as the renderer's threads write them.
    for i in (0..frames as usize).rev() {
        writer.write_frame(i, &rgb[i], &masks[i]).unwrap();
    }
    for (b, bg) in backgrounds.iter().enumerate() {
        writer.write_background(b, bg).unwrap();
    }
    writer.finish(&records, &features, &pcm).unwrap();
    Written { records, features, pcm, rgb, masks, backgrounds }
}

#[test]
fn round_trip_f32_and_f16_features_shared_and_per_frame_backgrounds() {
    let dir = temp_dir("roundtrip");
    for (f16, per_frame_bg, channels) in [(false, false, 32), (true, true, 29)] {
        let path = dir.join(format!("rt-{f16}.gsd"));
        let w = write_random(&path, 7, 24, channels, f16, per_frame_bg);
        let ds = Dataset::open(&path).unwrap();
        let h = ds.header();
        assert_eq!((h.frame_count, h.width, h.height, h.feature_channels, h.pcm_samples), (7, 24, 24, channels, 1234));
        assert_eq!(h.flags & FLAG_PER_FRAME_BACKGROUND != 0, per_frame_bg);
        assert_eq!(ds.frames(), &w.records[..]);
        assert_eq!(ds.pcm(), &w.pcm[..]);
        let mut window = Vec::new();
        for i in 0..7 {
            assert_eq!(ds.rgb(i), &w.rgb[i][..]);
            assert_eq!(ds.mask(i), &w.masks[i][..]);
            assert_eq!(ds.background(i), &w.backgrounds[w.records[i].background_index as usize][..]);
            window.clear();
            ds.features(i).extend_f32(&mut window);
            let k = w.records[i].feature_index as usize * 16 * channels as usize;
            let expected = &w.features[k..k + 16 * channels as usize];
            // f16 keeps 11 significant bits: relative error ≤ 2^-11 for normal values.
            let tol = if f16 { 1e-3 } else { 0.0 };
            assert!(window.iter().zip(expected).all(|(a, b)| (a - b).abs() <= tol * b.abs().max(1.0)), "frame {i}");
        }
        // Sections are 4096-aligned and inside the file.
        for s in 0..6 {
            assert_eq!(h.section(s).offset % 4096, 0);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs the built binary; returns (exit status, stderr).
fn gensync(args: &[&str]) -> (i32, String) {
    let out = common::gensync(args);
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `gensync info FILE` must fail with status 2 and exactly one line naming the file and `field`, and the
/// library must return the same error.
fn assert_rejected(path: &Path, field: &str) {
    let err = Dataset::open(path).err().expect("a corrupt dataset must not open").to_string();
    let name = path.display().to_string();
    assert!(err.contains(&name) && err.contains(field), "error {err:?} should name {name} and {field}");
    let (code, stderr) = gensync(&["info", &name]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(stderr.contains(&name) && stderr.contains(field), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn patch(path: &Path, offset: usize, bytes: &[u8]) {
    let mut data = std::fs::read(path).unwrap();
    data[offset..offset + bytes.len()].copy_from_slice(bytes);
    std::fs::write(path, data).unwrap();
}

#[test]
fn corrupt_datasets_are_rejected_with_the_file_and_field() {
    let dir = temp_dir("corrupt");
    let good = dir.join("good.gsd");
    write_random(&good, 5, 16, 32, false, false);
    let (code, stdout_err) = gensync(&["info", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout_err}");
    let len = std::fs::metadata(&good).unwrap().len() as usize;
    let case = |name: &str| {
        let p = dir.join(name);
        std::fs::copy(&good, &p).unwrap();
        p
    };

    let truncated = case("truncated.gsd");
    std::fs::OpenOptions::new().write(true).open(&truncated).unwrap().set_len(len as u64 - 1000).unwrap();
    assert_rejected(&truncated, "header.masks.offset");

    let tiny = case("tiny.gsd");
    std::fs::OpenOptions::new().write(true).open(&tiny).unwrap().set_len(100).unwrap();
    assert_rejected(&tiny, "header");

    let magic = case("magic.gsd");
    patch(&magic, 0, b"RIFF");
    assert_rejected(&magic, "header.magic");

    let version = case("version.gsd");
    patch(&version, 8, &99u32.to_le_bytes());
    assert_rejected(&version, "header.version");

    // Header layout: sections start at byte 96 (offset, bytes) in the order frame_table, features, pcm,
    // backgrounds, rgb, masks.
    let past_end = case("past-end.gsd");
    patch(&past_end, 96 + 16 * 4, &(1u64 << 40).to_le_bytes());
    assert_rejected(&past_end, "header.rgb.offset");

    let wrap = case("wrap.gsd");
    patch(&wrap, 96 + 16 * 5, &(u64::MAX - 4095).to_le_bytes());
    assert_rejected(&wrap, "header.masks.offset");

    let size = case("size.gsd");
    patch(&size, 96 + 16 + 8, &12u64.to_le_bytes());
    assert_rejected(&size, "header.features.bytes");

    let frames = case("frames.gsd");
    patch(&frames, 24, &1_000_000u32.to_le_bytes());
    assert_rejected(&frames, "header.frame_table.bytes");

    // A frame record pointing past the feature windows (record 2's feature_index at byte 112 of it).
    let record = case("record.gsd");
    patch(&record, 4096 + 2 * 128 + 112, &77u32.to_le_bytes());
    assert_rejected(&record, "frame_table[2].feature_index");

    let missing = dir.join("missing.gsd");
    assert_rejected(&missing, "cannot open");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_wavs_are_rejected_with_the_file_and_field() {
    let dir = temp_dir("wav");
    let not_wav = dir.join("not.wav");
    std::fs::write(&not_wav, b"this is not a RIFF file at all, just text").unwrap();
    let empty = dir.join("empty.wav");
    write_wav(&empty, &[], 16_000).unwrap();
    let track = dir.join("t.track.csv");
    std::fs::write(&track, "# gensync articulation track v1, fps 25\nframe,jaw,rounding\n0,0.1,0.2\n").unwrap();
    for (wav, field) in [(&not_wav, "RIFF/WAVE header"), (&empty, "data chunk")] {
        let err = read_wav(wav).unwrap_err().to_string();
        assert!(err.contains(&wav.display().to_string()) && err.contains(field), "{err}");
        let out = dir.join("out.gsd");
        let (code, stderr) = gensync(&[
            "--quiet",
            "synth",
            "--render-track",
            track.to_str().unwrap(),
            "--audio",
            wav.to_str().unwrap(),
            "--identity",
            "0",
            "--size",
            "32",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 2, "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
        assert!(stderr.contains(&wav.display().to_string()) && stderr.contains(field), "{stderr}");
        // Nothing half-written.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 3, "no output left behind");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn wav_reader_mixes_channels_and_resamples() {
    let dir = temp_dir("wavread");
    let path = dir.join("stereo.wav");
    let spec = hound::WavSpec { channels: 2, sample_rate: 48_000, bits_per_sample: 24, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for i in 0..48_000 {
        let v = (0.5 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 48_000.0).sin() * 8_388_607.0) as i32;
        w.write_sample(v).unwrap();
        w.write_sample(-v / 2).unwrap();
    }
    w.finalize().unwrap();
    let x = read_wav(&path).unwrap();
    assert_eq!(x.len(), 16_000);
    // (v − v/2) / 2 = v/4: amplitude 0.125.
    let peak = x[1000..15000].iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!((peak - 0.125).abs() < 0.003, "{peak}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Reads every frame of a ~1 GB dataset through the map: anonymous resident memory must stay ≤ 200 MB.
/// `cargo test --release --test data_format -- --ignored --nocapture` (writes 1 GB to the temp folder).
#[test]
#[ignore = "writes a 1 GB file; run by hand"]
fn reading_a_1gb_dataset_keeps_anonymous_memory_small() {
    let dir = temp_dir("1gb");
    let path = dir.join("big.gsd");
    let (frames, size) = (1300u32, 512u32);
    let header = Header::new(frames, size, size, 25, 16_000, 32, 16_000 * 52, false);
    let writer = DatasetWriter::create(&path, header).unwrap();
    let n = (size * size) as usize;
    let mut rgb = vec![0u8; n * 3];
    let mut mask = vec![0u8; n];
    for i in 0..frames as usize {
        rgb.iter_mut().enumerate().for_each(|(k, v)| *v = (k + i) as u8);
        mask.iter_mut().enumerate().for_each(|(k, v)| *v = (k * 3 + i) as u8);
        writer.write_frame(i, &rgb, &mask).unwrap();
    }
    writer.write_background(0, &rgb).unwrap();
    let records: Vec<FrameRecord> = (0..frames).map(|i| FrameRecord { feature_index: i, ..Default::default() }).collect();
    writer.finish(&records, &vec![0.0; frames as usize * 16 * 32], &vec![0; 16_000 * 52]).unwrap();
    drop((rgb, mask));
    let file_mb = std::fs::metadata(&path).unwrap().len() as f64 / 1e6;

    let before = status_kb("RssAnon:");
    let ds = Dataset::open(&path).unwrap();
    // Pass 1 drops each frame's pages after reading it; pass 2 keeps them mapped (page cache, RssFile).
    for release in [true, false] {
        let (mut checksum, mut peak_anon, mut peak_file) = (0u64, 0u64, 0u64);
        for i in 0..ds.len() {
            checksum += ds.rgb(i).iter().map(|&v| v as u64).sum::<u64>() + ds.mask(i).iter().map(|&v| v as u64).sum::<u64>();
            if release {
                ds.release_frame(i);
            }
            if i % 50 == 0 || i + 1 == ds.len() {
                peak_anon = peak_anon.max(status_kb("RssAnon:"));
                peak_file = peak_file.max(status_kb("RssFile:"));
            }
        }
        println!(
            "dataset {file_mb:.0} MB, {} frames read (release_frame {release}, checksum {checksum}): RssAnon {before} kB before, peak {peak_anon} kB; RssFile peak {peak_file} kB",
            ds.len(),
        );
        assert!(peak_anon <= 200 * 1024, "RssAnon {peak_anon} kB");
    }
    drop(ds);
    std::fs::remove_dir_all(&dir).unwrap();
}

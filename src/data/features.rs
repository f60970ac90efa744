//! Built-in audio features (SPEC §4.4): log-mel spectrogram of 16 kHz mono audio (Hann window, n_fft 512,
//! hop 320 = 50 Hz, 32 mel bands), normalised per file to zero mean and unit variance per band, then cut into
//! one window of 16 feature frames per video frame, [16, C] like DeepSpeech's [16, 29].

use super::format::FEATURE_WINDOW;
use rustfft::{num_complex::Complex, FftPlanner};
use std::f64::consts::PI;

pub const N_FFT: usize = 512;
pub const HOP: usize = 320;
pub const N_MELS: usize = 32;
const F_MIN: f64 = 20.0;
/// Added to mel power before the log, so silence stays finite (−18.4 nats, about 80 dB below a full-scale tone).
const LOG_FLOOR: f64 = 1e-8;

fn hz_to_mel(f: f64) -> f64 {
    2595.0 * (1.0 + f / 700.0).log10()
}

fn mel_to_hz(m: f64) -> f64 {
    700.0 * (10f64.powf(m / 2595.0) - 1.0)
}

/// Triangular mel filters (HTK mel scale, peak 1) over the N_FFT/2 + 1 power bins, [N_MELS][bins].
pub fn mel_filterbank(sample_rate: u32) -> Vec<Vec<f64>> {
    let bins = N_FFT / 2 + 1;
    let (lo, hi) = (hz_to_mel(F_MIN), hz_to_mel(sample_rate as f64 / 2.0));
    let edges: Vec<f64> = (0..N_MELS + 2).map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (N_MELS + 1) as f64)).collect();
    (0..N_MELS)
        .map(|m| {
            let (left, centre, right) = (edges[m], edges[m + 1], edges[m + 2]);
            (0..bins)
                .map(|b| {
                    let f = b as f64 * sample_rate as f64 / N_FFT as f64;
                    ((f - left) / (centre - left)).min((right - f) / (right - centre)).max(0.0)
                })
                .collect()
        })
        .collect()
}

/// The periodic Hann window of length N_FFT.
pub fn hann() -> Vec<f64> {
    (0..N_FFT).map(|i| 0.5 - 0.5 * (2.0 * PI * i as f64 / N_FFT as f64).cos()).collect()
}

/// Feature frames for `samples` samples: frame j is centred on sample j·HOP (the signal is zero-padded by
/// N_FFT/2 on both sides), so frame j is at time j / 50 s.
pub fn feature_frames(samples: usize) -> usize {
    samples / HOP + 1
}

/// Log-mel power, not normalised, [frames][N_MELS] in f64.
pub fn log_mel(x: &[f32], sample_rate: u32) -> Vec<[f64; N_MELS]> {
    let fft = FftPlanner::<f64>::new().plan_fft_forward(N_FFT);
    let (window, bank) = (hann(), mel_filterbank(sample_rate));
    let mut buf = vec![Complex::new(0.0, 0.0); N_FFT];
    (0..feature_frames(x.len()))
        .map(|j| {
            for (i, c) in buf.iter_mut().enumerate() {
                let k = (j * HOP + i) as isize - (N_FFT / 2) as isize;
                let v = if k >= 0 && (k as usize) < x.len() { x[k as usize] as f64 } else { 0.0 };
                *c = Complex::new(v * window[i], 0.0);
            }
            fft.process(&mut buf);
            let power: Vec<f64> = buf[..N_FFT / 2 + 1].iter().map(|c| c.norm_sqr()).collect();
            let mut out = [0.0; N_MELS];
            for (o, filter) in out.iter_mut().zip(&bank) {
                *o = (filter.iter().zip(&power).map(|(w, p)| w * p).sum::<f64>() + LOG_FLOOR).ln();
            }
            out
        })
        .collect()
}

/// Zero mean and unit variance per band over the file; bands that never change (silence) become 0.
pub fn normalise(frames: &mut [[f64; N_MELS]]) {
    let n = frames.len().max(1) as f64;
    for b in 0..N_MELS {
        let mean = frames.iter().map(|f| f[b]).sum::<f64>() / n;
        let var = frames.iter().map(|f| (f[b] - mean).powi(2)).sum::<f64>() / n;
        let scale = if var > 1e-12 { 1.0 / var.sqrt() } else { 0.0 };
        for f in frames.iter_mut() {
            f[b] = (f[b] - mean) * scale;
        }
    }
}

/// The normalised log-mel features of a clip, [feature_frames][N_MELS].
pub fn features(x: &[f32], sample_rate: u32) -> Vec<[f64; N_MELS]> {
    let mut f = log_mel(x, sample_rate);
    normalise(&mut f);
    f
}

/// Feature frame at the centre of video frame t: frame t covers [t/fps, (t+1)/fps) s, centred at
/// (t + 0.5)/fps s, which is feature frame (t + 0.5)·50/fps (= 2t + 1 at 25 fps).
fn centre_frame(t: usize, fps: u32) -> isize {
    (((t as f64 + 0.5) * (crate::data::audio::SAMPLE_RATE as f64 / HOP as f64) / fps as f64).round()) as isize
}

/// One window of FEATURE_WINDOW feature frames per video frame, centred on it ([centre − 8, centre + 8)),
/// edges repeated past either end: [video_frames, FEATURE_WINDOW, C] flattened, f32.
pub fn windows<const C: usize>(features: &[[f64; C]], video_frames: usize, fps: u32) -> Vec<f32> {
    let last = features.len() as isize - 1;
    let mut out = Vec::with_capacity(video_frames * FEATURE_WINDOW * C);
    for t in 0..video_frames {
        let first = centre_frame(t, fps) - (FEATURE_WINDOW / 2) as isize;
        for k in 0..FEATURE_WINDOW as isize {
            let row = &features[(first + k).clamp(0, last) as usize];
            out.extend(row.iter().map(|&v| v as f32));
        }
    }
    out
}

/// Mel bands 3..=11 span about 270–1000 Hz, where F1 (which follows the jaw) and most voicing energy lie.
const LOW_BANDS: std::ops::RangeInclusive<usize> = 3..=11;

/// An audio-only estimate of mouth opening from one feature window [window, C] of the built-in log-mel
/// features: the mean normalised low-band log energy of the three feature frames the video frame spans
/// (the window's centre and its neighbours).
pub fn low_band_energy(window: &[f32], channels: usize) -> f32 {
    let centre = FEATURE_WINDOW / 2;
    let rows = [centre - 1, centre, centre + 1].map(|r| &window[r * channels..(r + 1) * channels]);
    rows.iter().flat_map(|row| row[LOW_BANDS].iter()).sum::<f32>() / (3 * LOW_BANDS.count()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn log_mel_matches_a_direct_dft_in_f64() {
        let mut rng = Rng::new(3);
        let x: Vec<f32> = (0..4000)
            .map(|i| (0.3 * (i as f64 * 0.21).sin()) as f32 + 0.2 * rng.normal() * (i as f32 / 4000.0))
            .collect();
        let fast = log_mel(&x, 16_000);
        let (window, bank) = (hann(), mel_filterbank(16_000));
        let mut worst = 0.0f64;
        for (j, row) in fast.iter().enumerate() {
            let frame: Vec<f64> = (0..N_FFT)
                .map(|i| {
                    let k = (j * HOP + i) as isize - 256;
                    if k >= 0 && (k as usize) < x.len() { x[k as usize] as f64 * window[i] } else { 0.0 }
                })
                .collect();
            let power: Vec<f64> = (0..=N_FFT / 2)
                .map(|b| {
                    let (mut re, mut im) = (0.0, 0.0);
                    for (i, v) in frame.iter().enumerate() {
                        let ph = -2.0 * PI * ((b * i) % N_FFT) as f64 / N_FFT as f64;
                        re += v * ph.cos();
                        im += v * ph.sin();
                    }
                    re * re + im * im
                })
                .collect();
            for (m, filter) in bank.iter().enumerate() {
                let e: f64 = filter.iter().zip(&power).map(|(w, p)| w * p).sum();
                let reference = (e + LOG_FLOOR).ln();
                worst = worst.max((reference - row[m]).abs());
            }
        }
        println!("worst |log-mel − DFT reference| = {worst:.2e}");
        // Both in f64: only rounding differs.
        assert!(worst < 1e-9, "worst |log-mel − DFT reference| = {worst}");
        assert_eq!(fast.len(), 4000 / 320 + 1);
    }

    #[test]
    fn mel_filters_tile_the_spectrum() {
        let bank = mel_filterbank(16_000);
        assert_eq!(bank.len(), N_MELS);
        let peaks: Vec<usize> =
            bank.iter().map(|f| f.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0).collect();
        assert!(peaks.windows(2).all(|p| p[0] <= p[1]), "centres rise: {peaks:?}");
        assert!(bank.iter().all(|f| f.iter().any(|&w| w > 0.5)), "every band sees a bin");
    }

    #[test]
    fn normalised_bands_have_zero_mean_unit_variance_and_windows_centre_on_frames() {
        let x: Vec<f32> = (0..32_000).map(|i| (i as f32 * 0.05).sin() * (i as f32 / 5000.0).sin()).collect();
        let f = features(&x, 16_000);
        for b in 0..N_MELS {
            let mean = f.iter().map(|r| r[b]).sum::<f64>() / f.len() as f64;
            let var = f.iter().map(|r| r[b] * r[b]).sum::<f64>() / f.len() as f64;
            assert!(mean.abs() < 1e-9 && (var - 1.0).abs() < 1e-6, "band {b}: {mean} {var}");
        }
        let w = windows(&f, 50, 25);
        assert_eq!(w.len(), 50 * FEATURE_WINDOW * N_MELS);
        // Frame 10 is centred at 0.42 s = feature frame 21; its window starts at 13.
        assert_eq!(&w[10 * FEATURE_WINDOW * N_MELS..][..N_MELS], &f[13].map(|v| v as f32)[..]);
    }
}

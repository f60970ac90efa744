//! Audio in and out: WAV files of any rate and channel count become 16 kHz mono f32 (SPEC §4.4) through a
//! windowed-sinc resampler whose low-pass removes what the new rate cannot hold; PCM is written as 16-bit WAV.

use crate::{Error, Result};
use std::f64::consts::PI;
use std::path::Path;

/// The engine's audio rate (SPEC §5a).
pub const SAMPLE_RATE: u32 = 16_000;

/// Reads a WAV file as mono f32 in [-1, 1] at SAMPLE_RATE (channels averaged, resampled if needed).
pub fn read_wav(path: &Path) -> Result<Vec<f32>> {
    let name = path.display();
    let bad = |what: &str, e: &dyn std::fmt::Display| Error::input(format!("{name}: {what}: {e}"));
    let mut reader = hound::WavReader::open(path).map_err(|e| match e {
        hound::Error::IoError(io) => bad("cannot open", &io),
        other => bad("RIFF/WAVE header: not a readable WAV file", &other),
    })?;
    let spec = reader.spec();
    let channels = spec.channels as usize;
    let int_bits_ok = spec.sample_format == hound::SampleFormat::Float || (1..=32).contains(&spec.bits_per_sample);
    if channels == 0 || spec.sample_rate == 0 || !int_bits_ok {
        return Err(bad("fmt chunk", &format!("{} channels, {} bits at {} Hz", spec.channels, spec.bits_per_sample, spec.sample_rate)));
    }
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().collect::<std::result::Result<_, _>>(),
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            reader.samples::<i32>().map(|s| s.map(|v| v as f32 * scale)).collect()
        }
    }
    .map_err(|e| bad("data chunk", &e))?;
    if interleaved.len() < channels {
        return Err(bad("data chunk", &"0 samples: the file holds no audio"));
    }
    let mono: Vec<f32> =
        interleaved.chunks_exact(channels).map(|c| c.iter().sum::<f32>() / channels as f32).collect();
    Ok(resample(&mono, spec.sample_rate, SAMPLE_RATE))
}

/// Writes mono PCM as a 16-bit WAV (temp file, then rename).
pub fn write_wav(path: &Path, pcm: &[i16], sample_rate: u32) -> Result<()> {
    let tmp = path.with_extension("wav.tmp");
    let io = |e: hound::Error| Error::Io(format!("{}: cannot write: {e}", path.display()));
    let spec = hound::WavSpec { channels: 1, sample_rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let result = (|| {
        let mut w = hound::WavWriter::create(&tmp, spec)?;
        let mut w16 = w.get_i16_writer(pcm.len() as u32);
        for &s in pcm {
            w16.write_sample(s);
        }
        w16.flush()?;
        w.finalize()
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::Io(format!("{}: cannot write: {e}", path.display())))
}

/// f32 in [-1, 1] to i16, rounding and clipping; the inverse of `from_pcm16` (and of `read_wav` on 16-bit
/// files), so PCM survives a round trip through f32 unchanged.
pub fn to_pcm16(x: &[f32]) -> Vec<i16> {
    x.iter().map(|&v| (v * 32768.0).round().clamp(-32768.0, 32767.0) as i16).collect()
}

pub fn from_pcm16(x: &[i16]) -> Vec<f32> {
    x.iter().map(|&v| v as f32 / 32768.0).collect()
}

/// Zero crossings of the sinc on each side of the resampling kernel: a Blackman-windowed sinc of this length
/// has a stopband below −70 dB and a transition band of about 3.4 / ZERO_CROSSINGS of the cut-off.
const ZERO_CROSSINGS: usize = 32;
/// Cut-off as a fraction of the lower Nyquist frequency, leaving the transition band room below it.
const CUTOFF: f64 = 0.9;

/// Band-limited resampling from `from` Hz to `to` Hz with a Blackman-windowed sinc, cut off at
/// CUTOFF × min(from, to) / 2 so nothing above the new Nyquist frequency aliases. Polyphase: the ratio
/// to/from = up/down in lowest terms, and output n sits at input position n·down/up, whose fractional part
/// is one of `up` phases, each with its own precomputed kernel.
pub fn resample(x: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || x.is_empty() {
        return x.to_vec();
    }
    let g = gcd(from as u64, to as u64);
    let (up, down) = ((to as u64 / g) as usize, (from as u64 / g) as usize);
    // Cut-off in cycles per input sample; the kernel is h(t) = 2fc·sinc(2fc·t)·w(t), t in input samples.
    let fc = CUTOFF * 0.5 * (to.min(from) as f64) / from as f64;
    let half = (ZERO_CROSSINGS as f64 / (2.0 * fc)).ceil() as i64;
    let taps = 2 * half as usize + 1;
    let kernel = |t: f64| {
        let w = 0.42 + 0.5 * (PI * t / half as f64).cos() + 0.08 * (2.0 * PI * t / half as f64).cos();
        let s = if t == 0.0 { 1.0 } else { (2.0 * PI * fc * t).sin() / (2.0 * PI * fc * t) };
        2.0 * fc * s * w
    };
    // phases[p][j]: weight of input (base + j − half) for output phase p / up.
    let phases: Vec<Vec<f32>> = (0..up)
        .map(|p| {
            let frac = p as f64 / up as f64;
            (0..taps).map(|j| kernel(j as f64 - half as f64 - frac) as f32).collect()
        })
        .collect();
    let n_out = (x.len() as u64 * up as u64).div_ceil(down as u64) as usize;
    (0..n_out)
        .map(|n| {
            let pos = n as u64 * down as u64;
            let base = (pos / up as u64) as i64;
            let h = &phases[(pos % up as u64) as usize];
            let lo = (base - half).max(0);
            let hi = (base + half).min(x.len() as i64 - 1);
            (lo..=hi).map(|k| x[k as usize] * h[(k - base + half) as usize]).sum()
        })
        .collect()
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, seconds: f64) -> Vec<f32> {
        (0..(rate as f64 * seconds) as usize).map(|i| (2.0 * PI * freq * i as f64 / rate as f64).sin() as f32).collect()
    }

    /// Amplitude of `freq` in x (a single-bin DFT over the middle, away from the edges).
    fn amplitude(x: &[f32], freq: f64, rate: u32) -> f64 {
        let mid = &x[x.len() / 4..3 * x.len() / 4];
        let (mut re, mut im) = (0.0, 0.0);
        for (i, &v) in mid.iter().enumerate() {
            let ph = 2.0 * PI * freq * i as f64 / rate as f64;
            re += v as f64 * ph.cos();
            im += v as f64 * ph.sin();
        }
        2.0 * (re * re + im * im).sqrt() / mid.len() as f64
    }

    #[test]
    fn resampler_preserves_a_sine_frequency() {
        for (from, freq) in [(44_100, 1000.0), (48_000, 3000.0), (8_000, 440.0), (22_050, 6000.0)] {
            let y = resample(&sine(freq, from, 1.0), from, SAMPLE_RATE);
            assert_eq!(y.len(), 16_000, "{from} Hz → 16 kHz: one second stays one second");
            let a = amplitude(&y, freq, SAMPLE_RATE);
            println!("{from} Hz → 16 kHz: {freq} Hz amplitude {a:.5}");
            assert!((a - 1.0).abs() < 0.01, "{from} Hz → 16 kHz: {freq} Hz amplitude {a}");
            // Nothing at a neighbouring frequency: the tone did not move.
            assert!(amplitude(&y, freq * 1.05, SAMPLE_RATE) < 0.01);
        }
    }

    #[test]
    fn resampler_suppresses_aliasing() {
        // 12 kHz at 48 kHz would fold to 4 kHz at 16 kHz without the low-pass.
        let y = resample(&sine(12_000.0, 48_000, 1.0), 48_000, SAMPLE_RATE);
        let alias = amplitude(&y, 4000.0, SAMPLE_RATE);
        let rms = (y[4000..12000].iter().map(|v| (v * v) as f64).sum::<f64>() / 8000.0).sqrt();
        println!("12 kHz at 48 kHz → 16 kHz: 4 kHz alias amplitude {alias:.1e}, output rms {rms:.1e} (input amplitude 1)");
        assert!(alias < 1e-3 && rms < 1e-3, "alias amplitude {alias}, rms {rms}");
    }
}

//! The synthetic voice (SPEC §4.1): random phoneme sequences with prosody, spoken by a cascade formant
//! synthesizer at 16 kHz, and the articulation (jaw opening, lip rounding) that produced them.
//!
//! Articulation comes first: each phone has jaw, rounding and F2/F3 targets, smoothed by a Gaussian of
//! COARTICULATION_MS so neighbouring phones blend (anticipation included). The acoustics follow it: F1 is a
//! fixed function of the jaw (`f1_hz`) and voicing grows louder with the jaw, so the audio determines the
//! mouth. Sources: a Rosenberg glottal pulse train (F0 with declination, accents and jitter) through F1–F3
//! (+F4) resonators; shaped noise for fricatives and bursts; stops are a closure then a burst; phrases are
//! separated by pauses. Everything is drawn from `Rng` streams, so a (voice, text seed) pair is reproducible.

use crate::rng::Rng;
use std::f32::consts::PI;

use super::audio::SAMPLE_RATE;

/// Articulation and source controls are planned at 1 kHz and interpolated per sample.
const CONTROL_HZ: usize = 1000;
const SAMPLES_PER_CONTROL: usize = SAMPLE_RATE as usize / CONTROL_HZ;
/// Coarticulation: σ of the Gaussian blending the articulator targets of neighbouring phones.
const COARTICULATION_MS: f32 = 22.0;
/// σ for the source amplitudes: fast enough for bursts, slow enough to avoid clicks.
const SOURCE_SMOOTH_MS: f32 = 3.0;

/// F1 as the jaw sets it (adult male scale, before the voice's formant scale): 250 Hz closed to 745 Hz at the
/// widest /a/.
pub fn f1_hz(jaw: f32) -> f32 {
    250.0 + 550.0 * jaw
}

/// A speaker's voice.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Voice {
    /// Mean F0 in Hz (male ~100–140, female ~180–240).
    pub f0: f32,
    /// Formant frequencies relative to an adult male vocal tract (shorter tracts are higher).
    pub formant_scale: f32,
    /// Speaking rate relative to average (durations are divided by it).
    pub rate: f32,
    /// Aspiration noise mixed into voicing.
    pub breathiness: f32,
}

impl Voice {
    /// A random voice: half male, half female.
    pub fn random(seed: u64) -> Voice {
        let mut r = Rng::new(seed);
        let female = r.uniform() < 0.5;
        Voice {
            f0: if female { r.range(180.0, 240.0) } else { r.range(100.0, 140.0) },
            formant_scale: if female { r.range(1.1, 1.2) } else { r.range(0.95, 1.05) },
            rate: r.range(0.85, 1.2),
            breathiness: r.range(0.02, 0.12),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Vowel,
    Fricative,
    Stop,
    Nasal,
    Approximant,
    Pause,
}

/// One phone's targets (adult male formants). Noise is a band-pass at `noise_hz` of width `noise_bw`.
#[derive(Clone, Copy, Debug)]
struct Phone {
    kind: Kind,
    voiced: bool,
    jaw: f32,
    round: f32,
    f2: f32,
    f3: f32,
    noise_hz: f32,
    noise_bw: f32,
    noise_amp: f32,
    ms: f32,
}

/// A row of the phone tables (one argument per column).
#[allow(clippy::too_many_arguments)]
const fn phone(kind: Kind, voiced: bool, jaw: f32, round: f32, f2: f32, f3: f32, noise: (f32, f32, f32), ms: f32) -> Phone {
    Phone { kind, voiced, jaw, round, f2, f3, noise_hz: noise.0, noise_bw: noise.1, noise_amp: noise.2, ms }
}

const NO_NOISE: (f32, f32, f32) = (1000.0, 1000.0, 0.0);
use Kind::*;
/// Vowels: /a æ ɛ i ɪ ɔ u ʌ/ (Peterson–Barney F2/F3; F1 comes from the jaw).
const VOWELS: [Phone; 8] = [
    phone(Vowel, true, 0.90, 0.05, 1090.0, 2440.0, NO_NOISE, 120.0),
    phone(Vowel, true, 0.75, 0.0, 1720.0, 2410.0, NO_NOISE, 120.0),
    phone(Vowel, true, 0.52, 0.0, 1840.0, 2480.0, NO_NOISE, 100.0),
    phone(Vowel, true, 0.06, 0.0, 2290.0, 3010.0, NO_NOISE, 100.0),
    phone(Vowel, true, 0.25, 0.0, 1990.0, 2550.0, NO_NOISE, 80.0),
    phone(Vowel, true, 0.58, 0.75, 840.0, 2410.0, NO_NOISE, 120.0),
    phone(Vowel, true, 0.08, 1.0, 870.0, 2240.0, NO_NOISE, 110.0),
    phone(Vowel, true, 0.70, 0.1, 1190.0, 2390.0, NO_NOISE, 90.0),
];
/// Consonants: /p b t d k g f v s z ʃ m n l r w j/.
const CONSONANTS: [Phone; 17] = [
    phone(Stop, false, 0.0, 0.1, 900.0, 2300.0, (900.0, 1500.0, 0.5), 90.0),
    phone(Stop, true, 0.0, 0.1, 900.0, 2300.0, (900.0, 1500.0, 0.35), 80.0),
    phone(Stop, false, 0.12, 0.0, 1700.0, 2600.0, (4500.0, 3000.0, 0.45), 85.0),
    phone(Stop, true, 0.12, 0.0, 1700.0, 2600.0, (4000.0, 3000.0, 0.3), 75.0),
    phone(Stop, false, 0.2, 0.1, 1900.0, 2400.0, (2200.0, 1200.0, 0.5), 90.0),
    phone(Stop, true, 0.2, 0.1, 1900.0, 2400.0, (2000.0, 1200.0, 0.35), 80.0),
    phone(Fricative, false, 0.08, 0.0, 1300.0, 2500.0, (5500.0, 6000.0, 0.10), 100.0),
    phone(Fricative, true, 0.08, 0.0, 1300.0, 2500.0, (5500.0, 6000.0, 0.07), 80.0),
    phone(Fricative, false, 0.10, 0.0, 1700.0, 2600.0, (6300.0, 3000.0, 0.3), 110.0),
    phone(Fricative, true, 0.10, 0.0, 1700.0, 2600.0, (6000.0, 3000.0, 0.2), 90.0),
    phone(Fricative, false, 0.14, 0.55, 1800.0, 2300.0, (3500.0, 2500.0, 0.3), 110.0),
    phone(Nasal, true, 0.0, 0.1, 1000.0, 2300.0, NO_NOISE, 80.0),
    phone(Nasal, true, 0.12, 0.0, 1500.0, 2500.0, NO_NOISE, 70.0),
    phone(Approximant, true, 0.22, 0.0, 1200.0, 2800.0, NO_NOISE, 65.0),
    phone(Approximant, true, 0.2, 0.4, 1200.0, 1600.0, NO_NOISE, 65.0),
    phone(Approximant, true, 0.08, 0.9, 700.0, 2200.0, NO_NOISE, 60.0),
    phone(Approximant, true, 0.08, 0.0, 2200.0, 3000.0, NO_NOISE, 60.0),
];
const PAUSE: Phone = phone(Pause, false, 0.02, 0.0, 1400.0, 2500.0, NO_NOISE, 300.0);

/// A phone as scheduled: start and length in control ticks, emphasis and F0 target.
struct Scheduled {
    phone: Phone,
    start: usize,
    len: usize,
    stress: f32,
}

/// Random text: phrases of 3–7 words of 1–3 syllables (C)(C)V(C), pauses between phrases, stress on one
/// syllable per word, lengthening at the end of a phrase. Returns the schedule and the phrase boundaries.
fn plan(voice: &Voice, rng: &mut Rng, ticks: usize) -> (Vec<Scheduled>, Vec<(usize, usize)>) {
    let mut out = Vec::new();
    let mut phrases = Vec::new();
    let mut t = 0;
    let push = |out: &mut Vec<Scheduled>, p: Phone, stress: f32, stretch: f32, rng: &mut Rng, t: &mut usize| {
        let ms = p.ms * stretch * rng.range(0.8, 1.25) / voice.rate;
        let len = (ms * CONTROL_HZ as f32 / 1000.0).round().max(1.0) as usize;
        out.push(Scheduled { phone: p, start: *t, len, stress });
        *t += len;
    };
    // Lead-in silence so the clip starts with a closed mouth.
    push(&mut out, PAUSE, 0.0, rng.range(0.4, 0.8), rng, &mut t);
    while t < ticks {
        let phrase_start = t;
        let words = 3 + rng.below(5) as usize;
        for w in 0..words {
            let syllables = 1 + rng.below(3) as usize;
            let stressed = rng.below(syllables as u64) as usize;
            for s in 0..syllables {
                let last = w + 1 == words && s + 1 == syllables;
                let stress = if s == stressed { rng.range(0.6, 1.0) } else { rng.range(0.0, 0.3) };
                let stretch = if last { 1.5 } else { 1.0 } * (1.0 + 0.35 * stress);
                let onset = [0usize, 1, 1, 1, 2][rng.below(5) as usize];
                for _ in 0..onset {
                    let c = CONSONANTS[rng.below(CONSONANTS.len() as u64) as usize];
                    push(&mut out, c, stress, 1.0, rng, &mut t);
                }
                let v = VOWELS[rng.below(VOWELS.len() as u64) as usize];
                push(&mut out, v, stress, stretch, rng, &mut t);
                if rng.uniform() < 0.35 {
                    let c = CONSONANTS[rng.below(CONSONANTS.len() as u64) as usize];
                    push(&mut out, c, stress, 1.0, rng, &mut t);
                }
            }
            if rng.uniform() < 0.1 && w + 1 < words {
                push(&mut out, PAUSE, 0.0, rng.range(0.15, 0.3), rng, &mut t);
            }
        }
        phrases.push((phrase_start, t));
        push(&mut out, PAUSE, 0.0, rng.range(0.6, 1.6), rng, &mut t);
    }
    (out, phrases)
}

/// Gaussian smoothing of a control track (σ in ticks), edges repeated.
fn smooth(x: &[f32], sigma: f32) -> Vec<f32> {
    let r = (3.0 * sigma).ceil() as isize;
    let w: Vec<f32> = (-r..=r).map(|k| (-0.5 * (k as f32 / sigma).powi(2)).exp()).collect();
    let norm: f32 = w.iter().sum();
    let last = x.len() as isize - 1;
    (0..x.len() as isize)
        .map(|i| (-r..=r).map(|k| x[(i + k).clamp(0, last) as usize] * w[(k + r) as usize]).sum::<f32>() / norm)
        .collect()
}

/// Control tracks at CONTROL_HZ.
struct Controls {
    jaw: Vec<f32>,
    round: Vec<f32>,
    f2: Vec<f32>,
    f3: Vec<f32>,
    f0: Vec<f32>,
    voicing: Vec<f32>,
    noise: Vec<f32>,
    noise_hz: Vec<f32>,
    noise_bw: Vec<f32>,
}

fn controls(voice: &Voice, rng: &mut Rng, ticks: usize) -> Controls {
    let (schedule, phrases) = plan(voice, rng, ticks);
    let n = schedule.last().map_or(ticks, |s| s.start + s.len).max(ticks);
    let mut c = Controls {
        jaw: vec![0.0; n],
        round: vec![0.0; n],
        f2: vec![0.0; n],
        f3: vec![0.0; n],
        f0: vec![0.0; n],
        voicing: vec![0.0; n],
        noise: vec![0.0; n],
        noise_hz: vec![0.0; n],
        noise_bw: vec![0.0; n],
    };
    for s in &schedule {
        let p = s.phone;
        let loud = 0.75 + 0.4 * s.stress;
        for i in s.start..s.start + s.len {
            c.jaw[i] = p.jaw;
            c.round[i] = p.round;
            c.f2[i] = p.f2;
            c.f3[i] = p.f3;
            c.noise_hz[i] = p.noise_hz;
            c.noise_bw[i] = p.noise_bw;
            let into = i - s.start;
            let (voicing, noise) = match p.kind {
                Vowel => (loud, 0.0),
                Approximant => (0.6 * loud, 0.0),
                Nasal => (0.35 * loud, 0.0),
                Fricative => (if p.voiced { 0.3 } else { 0.0 }, p.noise_amp),
                // Closure (silent, or a faint voice bar), then a burst in the last 15 ms.
                Stop => {
                    let burst = into + 15 >= s.len;
                    (if p.voiced && !burst { 0.08 } else { 0.0 }, if burst { p.noise_amp } else { 0.0 })
                }
                Pause => (0.0, 0.0),
            };
            c.voicing[i] = voicing;
            c.noise[i] = noise;
        }
    }
    // F0: per phrase a declining line from a random start, accents on stressed syllables, a final fall.
    for &(a, b) in &phrases {
        let range = rng.range(0.15, 0.3);
        let len = (b - a).max(1) as f32;
        for i in a..b.min(n) {
            let x = (i - a) as f32 / len;
            c.f0[i] = voice.f0 * (1.0 + range * (0.5 - x) - 0.15 * (x - 0.85).max(0.0) / 0.15);
        }
    }
    for s in &schedule {
        if s.phone.kind == Vowel && s.stress > 0.5 {
            for i in s.start..(s.start + s.len).min(n) {
                c.f0[i] *= 1.0 + 0.12 * s.stress;
            }
        }
    }
    for f in c.f0.iter_mut() {
        if *f == 0.0 {
            *f = voice.f0 * 0.9;
        }
    }
    let sigma = |ms: f32| ms * CONTROL_HZ as f32 / 1000.0;
    for track in [&mut c.jaw, &mut c.round, &mut c.f2, &mut c.f3] {
        *track = smooth(track, sigma(COARTICULATION_MS));
    }
    c.f0 = smooth(&c.f0, sigma(40.0));
    for track in [&mut c.voicing, &mut c.noise, &mut c.noise_hz, &mut c.noise_bw] {
        *track = smooth(track, sigma(SOURCE_SMOOTH_MS));
    }
    c
}

/// Klatt's two-pole resonator (unit gain at DC), retuned every sample.
#[derive(Default)]
struct Resonator {
    y1: f32,
    y2: f32,
}

impl Resonator {
    fn step(&mut self, x: f32, freq: f32, bw: f32) -> f32 {
        let t = 1.0 / SAMPLE_RATE as f32;
        let c = -(-2.0 * PI * bw * t).exp();
        let b = 2.0 * (-PI * bw * t).exp() * (2.0 * PI * freq * t).cos();
        let a = 1.0 - b - c;
        let y = a * x + b * self.y1 + c * self.y2;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

/// Band-pass biquad with 0 dB peak gain (RBJ cookbook), for noise sources.
#[derive(Default)]
struct BandPass {
    x1: f32,
    x2: f32,
    y1: f32,
    y2: f32,
}

impl BandPass {
    fn step(&mut self, x: f32, freq: f32, bw: f32) -> f32 {
        let w0 = 2.0 * PI * freq.min(0.45 * SAMPLE_RATE as f32) / SAMPLE_RATE as f32;
        let alpha = w0.sin() * (bw / freq).max(0.05) / 2.0;
        let a0 = 1.0 + alpha;
        let y = (alpha * (x - self.x2) + 2.0 * w0.cos() * self.y1 - (1.0 - alpha) * self.y2) / a0;
        self.x2 = self.x1;
        self.x1 = x;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

/// Rosenberg glottal flow over one period, phase in [0, 1): opening to 40 %, closing to 60 %, then closed.
fn glottal_flow(phase: f32) -> f32 {
    const OPEN: f32 = 0.4;
    const CLOSE: f32 = 0.6;
    if phase < OPEN {
        0.5 * (1.0 - (PI * phase / OPEN).cos())
    } else if phase < CLOSE {
        (0.5 * PI * (phase - OPEN) / (CLOSE - OPEN)).cos()
    } else {
        0.0
    }
}

/// Speech and the articulation that made it.
pub struct Utterance {
    /// 16 kHz mono in [-1, 1].
    pub audio: Vec<f32>,
    /// Articulatory jaw opening and lip rounding per video frame, averaged over the frame's interval
    /// (before any identity's speaking-style gain).
    pub track: Track,
}

/// Articulation per video frame (at `fps`).
#[derive(Clone, Debug, PartialEq)]
pub struct Track {
    pub fps: u32,
    pub jaw: Vec<f32>,
    pub rounding: Vec<f32>,
}

/// `seconds` of random speech in `voice`, text drawn from `text_seed`, with its articulation at `fps`.
pub fn speak(voice: &Voice, text_seed: u64, seconds: f32, fps: u32) -> Utterance {
    let mut rng = Rng::new(text_seed);
    let ticks = (seconds * CONTROL_HZ as f32).round() as usize;
    let c = controls(voice, &mut rng, ticks);
    let samples = ticks * SAMPLES_PER_CONTROL;
    let mut audio = Vec::with_capacity(samples);
    let (mut r1, mut r2, mut r3, mut r4) = (Resonator::default(), Resonator::default(), Resonator::default(), Resonator::default());
    let (mut bp1, mut bp2) = (BandPass::default(), BandPass::default());
    let (mut phase, mut previous_flow) = (0.0f32, 0.0f32);
    let mut period_jitter = 1.0;
    let lerp = |v: &[f32], i: usize, f: f32| v[i] + (v[(i + 1).min(v.len() - 1)] - v[i]) * f;
    let s = voice.formant_scale;
    for n in 0..samples {
        let (i, f) = (n / SAMPLES_PER_CONTROL, (n % SAMPLES_PER_CONTROL) as f32 / SAMPLES_PER_CONTROL as f32);
        let jaw = lerp(&c.jaw, i, f);
        let f0 = lerp(&c.f0, i, f) * period_jitter;
        phase += f0 / SAMPLE_RATE as f32;
        if phase >= 1.0 {
            phase -= 1.0;
            period_jitter = 1.0 + 0.01 * rng.normal();
        }
        let flow = glottal_flow(phase);
        // Radiation: the derivative of the flow; aspiration noise rides on the open phase.
        let mut source = (flow - previous_flow) * 8.0 + voice.breathiness * flow * rng.normal() * 0.3;
        previous_flow = flow;
        // Open vowels are louder: voicing grows with the jaw, as F1 does.
        source *= lerp(&c.voicing, i, f) * (0.45 + 0.65 * jaw);
        let voiced = r3.step(
            r2.step(r1.step(source, s * f1_hz(jaw), 60.0 + 40.0 * jaw), s * lerp(&c.f2, i, f) * (1.0 - 0.08 * lerp(&c.round, i, f)), 90.0),
            s * lerp(&c.f3, i, f),
            150.0,
        );
        let voiced = r4.step(voiced, s * 3500.0, 250.0);
        let (nz, nbw) = (lerp(&c.noise_hz, i, f) * s, lerp(&c.noise_bw, i, f) * s);
        let noise = bp2.step(bp1.step(rng.normal(), nz, nbw), nz, nbw) * lerp(&c.noise, i, f) * 2.0;
        audio.push(voiced + noise + 1e-4 * rng.normal());
    }
    let peak = audio.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    for v in audio.iter_mut() {
        *v *= 0.8 / peak;
    }
    let per_frame = CONTROL_HZ / fps as usize;
    let frames = ticks / per_frame;
    let mean = |v: &[f32], t: usize| v[t * per_frame..(t + 1) * per_frame].iter().sum::<f32>() / per_frame as f32;
    let track = Track {
        fps,
        jaw: (0..frames).map(|t| mean(&c.jaw, t)).collect(),
        rounding: (0..frames).map(|t| mean(&c.round, t)).collect(),
    };
    Utterance { audio, track }
}

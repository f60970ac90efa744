//! The built-in synthetic corpus (`gensync synth`, SPEC §4.1): identities with a look, a voice and a speaking
//! style; their speech, head motion and blinks; the rendered video with per-frame ground truth; one dataset
//! file per identity and a JSON manifest.
//!
//! Every random choice comes from an `Rng` stream named by (corpus seed, identity, purpose), so a seed gives
//! byte-identical files whatever the thread count. The same functions render any identity for any
//! articulation track (`render_track`), so audio from another identity or a novel voice has a ground-truth
//! video too: identity B driven by its own track reproduces B's corpus frames exactly.

use super::audio::{self, SAMPLE_RATE};
use super::features;
use super::format::{DatasetWriter, FrameRecord, Header, SOURCE_SYNTH};
use super::mesh::{head_mesh, torso_mesh, Expression, Look};
use super::output::write_text;
use super::parallel::map_frames;
use super::raster::{Canvas, Intrinsics, Rigid, Shader, TEXTURE};
use super::voice::{speak, Track, Voice};
use crate::rng::{mix, Rng};
use crate::{Error, Result};
use std::f32::consts::PI;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub const FPS: u32 = 25;
/// Articulatory jaw opening that a mouth gain of 1 shows as fully open (the widest vowel is 0.9).
const JAW_FULL: f32 = 1.3;
/// The head turns about this point (head space): the top of the neck.
const PIVOT: [f32; 3] = [0.0, -0.1, -0.02];

/// What a random stream is for; part of its seed so streams never overlap.
#[derive(Clone, Copy)]
enum Purpose {
    Look = 1,
    Voice,
    Text,
    Pose,
    Blink,
    Texture,
    Backdrop,
    Style,
}

fn stream(seed: u64, identity: u32, purpose: Purpose) -> u64 {
    mix(mix(seed) ^ ((identity as u64) << 8 | purpose as u64))
}

/// An identity of a corpus: look, voice and speaking style.
pub struct Identity {
    pub index: u32,
    pub corpus_seed: u64,
    pub look: Look,
    pub voice: Voice,
    /// Shown jaw opening = clamp(mouth_gain × articulatory jaw / JAW_FULL).
    pub mouth_gain: f32,
    /// Shown rounding = clamp(rounding_gain × articulatory rounding).
    pub rounding_gain: f32,
    shader: Shader,
    backdrop: Backdrop,
}

impl Identity {
    pub fn new(corpus_seed: u64, index: u32) -> Identity {
        let mut look_rng = Rng::new(stream(corpus_seed, index, Purpose::Look));
        let look = Look::random(&mut look_rng);
        let mut style = Rng::new(stream(corpus_seed, index, Purpose::Style));
        let detail = detail_texture(&mut Rng::new(stream(corpus_seed, index, Purpose::Texture)));
        Identity {
            index,
            corpus_seed,
            voice: Voice::random(stream(corpus_seed, index, Purpose::Voice)),
            mouth_gain: style.range(0.6, 1.4),
            rounding_gain: style.range(0.6, 1.4),
            shader: Shader { detail, iris: look.iris },
            backdrop: Backdrop::random(&mut Rng::new(stream(corpus_seed, index, Purpose::Backdrop))),
            look,
        }
    }

    /// The seed of this identity's own text.
    pub fn text_seed(&self) -> u64 {
        stream(self.corpus_seed, self.index, Purpose::Text)
    }

    /// What the face shows for an articulatory (jaw, rounding) and an eye value.
    pub fn expression(&self, jaw: f32, rounding: f32, eye: f32) -> Expression {
        Expression {
            jaw: (self.mouth_gain * jaw / JAW_FULL).clamp(0.0, 1.0),
            rounding: (self.rounding_gain * rounding).clamp(0.0, 1.0),
            eye,
        }
    }
}

/// Per-identity grey skin/hair detail: value noise over four octaves plus pores, around 1.
fn detail_texture(rng: &mut Rng) -> Vec<f32> {
    let mut out = vec![1.0f32; TEXTURE * TEXTURE];
    for (cells, amp) in [(4usize, 0.05f32), (16, 0.04), (64, 0.035), (128, 0.03)] {
        let grid: Vec<f32> = (0..cells * cells).map(|_| rng.range(-1.0, 1.0)).collect();
        let at = |i: usize, j: usize| grid[(j % cells) * cells + i % cells];
        for y in 0..TEXTURE {
            for x in 0..TEXTURE {
                let (gx, gy) = (x as f32 * cells as f32 / TEXTURE as f32, y as f32 * cells as f32 / TEXTURE as f32);
                let (i, j) = (gx as usize, gy as usize);
                let (fx, fy) = (gx.fract(), gy.fract());
                let top = at(i, j) + (at(i + 1, j) - at(i, j)) * fx;
                let bottom = at(i, j + 1) + (at(i + 1, j + 1) - at(i, j + 1)) * fx;
                out[y * TEXTURE + x] += amp * (top + (bottom - top) * fy);
            }
        }
    }
    let freckles = rng.uniform() < 0.3;
    for _ in 0..if freckles { 1500 } else { 600 } {
        let k = rng.below((TEXTURE * TEXTURE) as u64) as usize;
        out[k] *= if freckles { 0.82 } else { 0.92 };
    }
    out
}

/// A studio backdrop: a vertical gradient between two colours with a few soft blobs.
struct Backdrop {
    top: [f32; 3],
    bottom: [f32; 3],
    /// (x, y, radius) in image fractions and colour.
    blobs: Vec<([f32; 3], [f32; 3])>,
}

impl Backdrop {
    fn random(rng: &mut Rng) -> Backdrop {
        let base = [rng.range(0.15, 0.85), rng.range(0.15, 0.85), rng.range(0.15, 0.85)];
        let top = base.map(|c| (c * rng.range(0.8, 1.2)).min(1.0));
        let bottom = base.map(|c| c * rng.range(0.4, 0.8));
        let blobs = (0..4)
            .map(|_| {
                let pos = [rng.uniform(), rng.uniform(), rng.range(0.1, 0.35)];
                (pos, [rng.uniform(), rng.uniform(), rng.uniform()])
            })
            .collect();
        Backdrop { top, bottom, blobs }
    }

    /// Colour at (x, y) in image fractions.
    fn color(&self, x: f32, y: f32) -> [f32; 3] {
        let mut c = [0, 1, 2].map(|i| self.top[i] + (self.bottom[i] - self.top[i]) * y);
        for (p, col) in &self.blobs {
            let d2 = ((x - p[0]).powi(2) + (y - p[1]).powi(2)) / (p[2] * p[2]);
            let w = 0.35 * (-d2).exp();
            for i in 0..3 {
                c[i] += (col[i] - c[i]) * w;
            }
        }
        c
    }
}

/// Head motion: per axis a sum of three slow sinusoids whose amplitudes add up to the axis' limit
/// (yaw ±15°, pitch ±8°, roll ±5°, translation ±8 mm sideways and vertically, ±10 mm in depth).
pub fn head_poses(seed: u64, identity: u32, frames: usize) -> Vec<Rigid> {
    let mut rng = Rng::new(stream(seed, identity, Purpose::Pose));
    let limits = [15f32.to_radians(), 8f32.to_radians(), 5f32.to_radians(), 0.008, 0.008, 0.01];
    let waves: Vec<Vec<(f32, f32, f32)>> = limits
        .iter()
        .map(|&limit| {
            let raw: Vec<(f32, f32, f32)> = (0..3).map(|_| (rng.range(0.2, 1.0), rng.range(0.03, 0.35), rng.range(0.0, 2.0 * PI))).collect();
            let total: f32 = raw.iter().map(|w| w.0).sum();
            raw.into_iter().map(|(a, f, p)| (a * limit / total, f, p)).collect()
        })
        .collect();
    (0..frames)
        .map(|t| {
            let time = (t as f32 + 0.5) / FPS as f32;
            let v: Vec<f32> = waves.iter().map(|w| w.iter().map(|(a, f, p)| a * (2.0 * PI * f * time + p).sin()).sum()).collect();
            Rigid::head_pose(v[0], v[1], v[2], PIVOT, [v[3], v[4], v[5]])
        })
        .collect()
}

/// AU45-like eye closure per frame: blinks every 2–6 s (close in 80 ms, hold 40 ms, open in 150 ms).
pub fn blinks(seed: u64, identity: u32, frames: usize) -> Vec<f32> {
    let mut rng = Rng::new(stream(seed, identity, Purpose::Blink));
    let seconds = frames as f32 / FPS as f32;
    let mut events = Vec::new();
    let mut t = rng.range(0.5, 3.0);
    while t < seconds + 1.0 {
        events.push((t, rng.range(0.8, 1.0)));
        t += rng.range(2.0, 6.0);
    }
    (0..frames)
        .map(|f| {
            let time = (f as f32 + 0.5) / FPS as f32;
            events
                .iter()
                .map(|&(start, peak)| {
                    let d = time - start;
                    peak * match d {
                        d if !(0.0..=0.27).contains(&d) => 0.0,
                        d if d < 0.08 => d / 0.08,
                        d if d < 0.12 => 1.0,
                        d => 1.0 - (d - 0.12) / 0.15,
                    }
                })
                .fold(0.0, f32::max)
        })
        .collect()
}

/// Where a rendering's progress lines go.
pub struct Progress {
    pub quiet: bool,
}

impl Progress {
    fn line(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }
}

/// Renders `identity` speaking `track` (articulatory) with its own head motion and blinks, and writes the
/// dataset to `path` with `audio` (16 kHz mono) as its PCM and features.
pub fn write_dataset(identity: &Identity, track: &Track, audio: &[f32], size: usize, path: &Path, progress: &Progress) -> Result<()> {
    let frames = track.jaw.len();
    if frames == 0 {
        return Err(Error::input(format!("{}: the articulation track has no frames", path.display())));
    }
    let pcm = audio::to_pcm16(audio);
    let feats = features::features(&audio::from_pcm16(&pcm), SAMPLE_RATE);
    let windows = features::windows(&feats, frames, FPS);
    let mut header = Header::new(frames as u32, size as u32, size as u32, FPS, SAMPLE_RATE, features::N_MELS as u32, pcm.len() as u64, false);
    header.seed = identity.corpus_seed;
    header.identity = identity.index;
    header.source = SOURCE_SYNTH;
    header.mouth_gain = identity.mouth_gain;
    header.rounding_gain = identity.rounding_gain;
    let writer = DatasetWriter::create(path, header)?;

    let k = Intrinsics::for_size(size);
    let mut base = Canvas::new(size, |x, y| identity.backdrop.color(x / size as f32, y / size as f32));
    base.draw(&torso_mesh(&identity.look), &Rigid::head_pose(0.0, 0.0, 0.0, PIVOT, [0.0; 3]), &k, &identity.shader);
    writer.write_background(0, &base.resolve().rgb)?;

    let poses = head_poses(identity.corpus_seed, identity.index, frames);
    let eyes = blinks(identity.corpus_seed, identity.index, frames);
    let start = Instant::now();
    let records = map_frames(frames, |i| {
        let e = identity.expression(track.jaw[i], track.rounding[i], eyes[i]);
        let mut canvas = base.clone();
        canvas.draw(&head_mesh(&identity.look, &e), &poses[i], &k, &identity.shader);
        let frame = canvas.resolve();
        writer.write_frame(i, &frame.rgb, &frame.mask)?;
        if (i + 1) % 100 == 0 {
            let rate = (i + 1) as f64 / start.elapsed().as_secs_f64();
            progress.line(&format!(
                "  {}: frame {}/{frames}, {rate:.1} frames/s, ETA {:.0} s",
                path.display(),
                i + 1,
                (frames - i - 1) as f64 / rate
            ));
        }
        Ok(FrameRecord {
            world_to_camera: poses[i].matrix(),
            intrinsics: [k.fx, k.fy, k.cx, k.cy],
            eye: e.eye,
            jaw: e.jaw,
            rounding: e.rounding,
            mouth_area: frame.mouth_area,
            lip_box: frame.lip_box.unwrap_or([0; 4]),
            feature_index: i as u32,
            ..Default::default()
        })
    })?;
    writer.finish(&records, &windows, &pcm)
}

/// `gensync synth`: the corpus.
#[derive(Clone, Debug)]
pub struct CorpusOptions {
    pub identities: u32,
    pub seconds: f32,
    pub size: usize,
    pub seed: u64,
    pub out: PathBuf,
}

/// The dataset file of identity k in a corpus folder.
pub fn dataset_path(dir: &Path, k: u32) -> PathBuf {
    dir.join(format!("identity-{k:02}.gsd"))
}

fn check_seconds(seconds: f32) -> Result<()> {
    if !(seconds.is_finite() && (0.2..=36_000.0).contains(&seconds)) {
        return Err(Error::input(format!("--seconds {seconds}: must be between 0.2 and 36000")));
    }
    Ok(())
}

/// The image sides the engine writes (synth, import): 16 to 4096 pixels.
pub(crate) fn check_size(size: usize) -> Result<()> {
    if !(16..=4096).contains(&size) {
        return Err(Error::input(format!("--size {size}: must be between 16 and 4096 pixels")));
    }
    Ok(())
}

fn create_dir(dir: &Path) -> Result<()> {
    // An --out that names a file is the caller's mistake (exit 2), not the system's.
    if dir.exists() && !dir.is_dir() {
        return Err(Error::input(format!("--out {}: is a file; the output is a folder", dir.display())));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::Io(format!("{}: cannot create the output folder: {e}", dir.display())))
}

/// Writes every identity's dataset and `manifest.json`; returns the dataset paths.
pub fn write_corpus(o: &CorpusOptions, progress: &Progress) -> Result<Vec<PathBuf>> {
    if !(1..=10_000).contains(&o.identities) {
        return Err(Error::input(format!("--identities {}: must be between 1 and 10000", o.identities)));
    }
    check_seconds(o.seconds)?;
    check_size(o.size)?;
    create_dir(&o.out)?;
    let mut entries = Vec::new();
    let mut paths = Vec::new();
    for k in 0..o.identities {
        let id = Identity::new(o.seed, k);
        let speech = speak(&id.voice, id.text_seed(), o.seconds, FPS);
        let path = dataset_path(&o.out, k);
        progress.line(&format!(
            "identity {}/{}: F0 {:.0} Hz, mouth gain {:.2} → {}",
            k + 1,
            o.identities,
            id.voice.f0,
            id.mouth_gain,
            path.display()
        ));
        write_dataset(&id, &speech.track, &speech.audio, o.size, &path, progress)?;
        entries.push(format!(
            "    {{\"index\": {k}, \"file\": \"{}\", \"frames\": {}, \"f0\": {:.2}, \"formant_scale\": {:.4}, \"rate\": {:.4}, \"mouth_gain\": {:.4}, \"rounding_gain\": {:.4}}}",
            path.file_name().unwrap().to_string_lossy(),
            speech.track.jaw.len(),
            id.voice.f0,
            id.voice.formant_scale,
            id.voice.rate,
            id.mouth_gain,
            id.rounding_gain
        ));
        paths.push(path);
    }
    let manifest = format!(
        "{{\n  \"format\": \"gensync synthetic corpus\",\n  \"version\": 1,\n  \"seed\": {},\n  \"seconds\": {},\n  \"size\": {},\n  \"fps\": {FPS},\n  \"sample_rate\": {SAMPLE_RATE},\n  \"identities\": [\n{}\n  ]\n}}\n",
        o.seed,
        o.seconds,
        o.size,
        entries.join(",\n")
    );
    write_text(&o.out.join("manifest.json"), &manifest)?;
    Ok(paths)
}

/// A voice named on the command line: identity k of the corpus seed, or `novel:SEED`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum VoiceChoice {
    Identity(u32),
    Novel(u64),
}

impl std::str::FromStr for VoiceChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<VoiceChoice> {
        let bad = || Error::input(format!("--voice {s}: expected an identity index (e.g. 2) or novel:SEED (e.g. novel:7)"));
        match s.strip_prefix("novel:") {
            Some(seed) => seed.parse().map(VoiceChoice::Novel).map_err(|_| bad()),
            None => s.parse().map(VoiceChoice::Identity).map_err(|_| bad()),
        }
    }
}

/// `gensync synth --audio-only`: speech in one voice and its articulation track.
pub struct AudioOptions {
    pub voice: VoiceChoice,
    /// Text seed; None = the identity's own text (a novel voice uses its seed).
    pub text_seed: Option<u64>,
    pub seconds: f32,
    pub seed: u64,
    pub out: PathBuf,
}

/// Writes `voice-NAME.wav` and `voice-NAME.track.csv` into `out`; returns both paths.
pub fn write_voice(o: &AudioOptions) -> Result<(PathBuf, PathBuf)> {
    check_seconds(o.seconds)?;
    let (voice, own_text, name) = match o.voice {
        VoiceChoice::Identity(k) => {
            let id = Identity::new(o.seed, k);
            (id.voice, id.text_seed(), format!("{k:02}"))
        }
        // Salted ("novel" in ASCII) so novel voice s never equals a corpus identity's voice stream.
        VoiceChoice::Novel(s) => (Voice::random(mix(s ^ 0x6e6f76656c)), s, format!("novel-{s}")),
    };
    let text = o.text_seed.unwrap_or(own_text);
    let name = if o.text_seed.is_some() { format!("{name}-text-{text}") } else { name };
    let speech = speak(&voice, text, o.seconds, FPS);
    create_dir(&o.out)?;
    let wav = o.out.join(format!("voice-{name}.wav"));
    let csv = o.out.join(format!("voice-{name}.track.csv"));
    audio::write_wav(&wav, &audio::to_pcm16(&speech.audio), SAMPLE_RATE)?;
    write_text(&csv, &track_csv(&speech.track))?;
    Ok((wav, csv))
}

const TRACK_HEADER: &str = "# gensync articulation track v1";

fn track_csv(t: &Track) -> String {
    let mut s = format!("{TRACK_HEADER}, fps {}\nframe,jaw,rounding\n", t.fps);
    for (i, (j, r)) in t.jaw.iter().zip(&t.rounding).enumerate() {
        // Shortest round-trip decimals: a track read back renders exactly the same frames.
        s.push_str(&format!("{i},{j},{r}\n"));
    }
    s
}

/// Reads a track written by `--audio-only` (25 fps articulatory jaw and rounding in [0, 1]).
pub fn read_track(path: &Path) -> Result<Track> {
    let name = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| Error::input(format!("{name}: cannot read the track: {e}")))?;
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    if first != format!("{TRACK_HEADER}, fps {FPS}") {
        return Err(Error::input(format!("{name}: line 1: expected \"{TRACK_HEADER}, fps {FPS}\"")));
    }
    lines.next();
    let (mut jaw, mut rounding) = (Vec::new(), Vec::new());
    for (n, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        let value = |i: usize| fields.get(i).and_then(|f| f.trim().parse::<f32>().ok()).filter(|v| (0.0..=1.0).contains(v));
        match (value(1), value(2)) {
            (Some(j), Some(r)) if fields.len() == 3 => {
                jaw.push(j);
                rounding.push(r);
            }
            _ => return Err(Error::input(format!("{name}: line {}: expected frame,jaw,rounding with values in [0, 1]", n + 3))),
        }
    }
    if jaw.is_empty() {
        return Err(Error::input(format!("{name}: no frames")));
    }
    Ok(Track { fps: FPS, jaw, rounding })
}

/// `gensync synth --render-track`: identity B of the corpus seed speaking a given track and audio.
pub struct TrackOptions {
    pub track: PathBuf,
    pub audio: PathBuf,
    pub identity: u32,
    pub size: usize,
    pub seed: u64,
    pub out: PathBuf,
}

pub fn write_track_dataset(o: &TrackOptions, progress: &Progress) -> Result<()> {
    check_size(o.size)?;
    let track = read_track(&o.track)?;
    let audio = audio::read_wav(&o.audio)?;
    if let Some(dir) = o.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dir(dir)?;
    }
    write_dataset(&Identity::new(o.seed, o.identity), &track, &audio, o.size, &o.out, progress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::mesh::material;

    /// Lips together hide the mouth interior from every head pose, and the interior grows with the jaw.
    #[test]
    fn closed_mouth_shows_no_interior_at_any_pose() {
        let size = 96;
        let k = Intrinsics::for_size(size);
        for index in 0..3 {
            let id = Identity::new(4, index);
            let poses = head_poses(4, index, 250);
            for (i, pose) in poses.iter().enumerate().step_by(25) {
                let interior = |jaw: f32, rounding: f32| {
                    let mut c = Canvas::new(size, |_, _| [0.5; 3]);
                    c.draw(&head_mesh(&id.look, &Expression { jaw, rounding, eye: 0.0 }), pose, &k, &id.shader);
                    c.material.iter().filter(|&&m| material::is_mouth_interior(m)).count()
                };
                assert_eq!(interior(0.0, 0.0), 0, "identity {index}, frame {i}");
                assert_eq!(interior(0.0, 1.0), 0, "identity {index}, frame {i}, rounded");
                let (half, full) = (interior(0.5, 0.0), interior(1.0, 0.0));
                assert!(0 < half && half < full, "identity {index}, frame {i}: {half} {full}");
            }
        }
    }
}

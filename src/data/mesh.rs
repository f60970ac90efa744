//! The parametric head (SPEC §4.1): an identity's look and the triangle mesh of its head for one expression
//! (jaw opening, lip rounding, eye closure), plus the static torso.
//!
//! Head space (the dataset's world): metres, x to the subject's left as seen by the camera (image right),
//! y up, z out of the face; origin near the centre of the skull. The skull and face are one deformed
//! ellipsoid over (θ azimuth, 0 = front; φ elevation) whose bumps make nose, brow ridge, cheeks, chin and lips.
//! The mesh is cut along the lip line: vertices below it follow the jaw's rotation about a hinge behind the
//! mouth, with a weight that falls to zero at the mouth corners, so opening the jaw opens a lens-shaped gap
//! through which the dark mouth cavity, teeth and tongue show. Eyeballs sit in the face with spherical-cap
//! lids that close with the eye value; hair is a shell above a hairline; ears, neck and shoulders are
//! ellipsoids and cylinders. Every part's triangles are wound to face away from the part's centre, so the
//! rasterizer can cull back faces.

use crate::rng::Rng;
use std::f32::consts::{FRAC_PI_2, PI};

/// Triangle materials: what the rasterizer reports per pixel, for masks, mouth area and the lip box.
pub mod material {
    pub const SKIN: u8 = 0;
    pub const LIP: u8 = 1;
    pub const HAIR: u8 = 2;
    pub const EYE: u8 = 3;
    pub const TEETH: u8 = 4;
    pub const MOUTH: u8 = 5;
    pub const TONGUE: u8 = 6;
    pub const TORSO: u8 = 7;
    pub const BACKGROUND: u8 = 255;

    /// Part of the head mask (everything but torso and background).
    pub fn is_head(m: u8) -> bool {
        m <= TONGUE
    }

    /// Visible mouth interior: what the mouth-opening area counts.
    pub fn is_mouth_interior(m: u8) -> bool {
        matches!(m, TEETH | MOUTH | TONGUE)
    }

    /// Inside the lip box.
    pub fn is_lip_region(m: u8) -> bool {
        m == LIP || is_mouth_interior(m)
    }
}

/// Eyeball white; the shader paints iris and pupil relative to it.
pub const SCLERA: [f32; 3] = [0.92, 0.9, 0.88];

/// Largest jaw rotation (radians) at opening 1: about 3 cm between the lips.
const MAX_JAW_ANGLE: f32 = 0.3;
/// Elevation of the lip line on the skull parameterisation.
const PHI_MOUTH: f32 = -0.40;
/// Jaw hinge (head space), behind and slightly above the mouth.
const HINGE: [f32; 3] = [0.0, 0.0, -0.02];
/// Skull grid: columns around, rows below and above the lip line (the lip line is a row exactly).
const COLS: usize = 220;
const ROWS_BELOW: usize = 40;
const ROWS_ABOVE: usize = 72;

/// An identity's appearance, drawn from its seed.
#[derive(Clone, Debug)]
pub struct Look {
    pub skin: [f32; 3],
    pub lip: [f32; 3],
    pub hair: [f32; 3],
    pub iris: [f32; 3],
    pub shirt: [f32; 3],
    /// Skull semi-axes (x, y, z) in metres.
    pub radii: [f32; 3],
    pub nose: f32,
    pub cheeks: f32,
    pub chin: f32,
    /// Mouth half-width as an angle on the skull.
    pub mouth_width: f32,
    pub hair_volume: f32,
    pub hairline: f32,
    /// Lip thickness (elevation angle of the upper and lower lip bands).
    pub lip_height: [f32; 2],
}

impl Look {
    pub fn random(rng: &mut Rng) -> Look {
        let tone = rng.uniform();
        let skin_light = [0.93, 0.76, 0.64];
        let skin_dark = [0.38, 0.25, 0.18];
        let mut skin = [0.0; 3];
        for c in 0..3 {
            skin[c] = skin_light[c] + (skin_dark[c] - skin_light[c]) * tone + 0.03 * rng.normal();
        }
        let lip = [skin[0] * 0.85 + 0.1, skin[1] * 0.55, skin[2] * 0.6];
        let hairs = [[0.08, 0.06, 0.05], [0.25, 0.16, 0.09], [0.55, 0.38, 0.2], [0.75, 0.6, 0.35], [0.45, 0.15, 0.07], [0.6, 0.6, 0.6]];
        let hair = hairs[rng.below(hairs.len() as u64) as usize];
        let irises = [[0.25, 0.15, 0.08], [0.2, 0.35, 0.55], [0.3, 0.4, 0.2], [0.12, 0.08, 0.05]];
        let iris = irises[rng.below(irises.len() as u64) as usize];
        let shirt = [rng.range(0.1, 0.8), rng.range(0.1, 0.8), rng.range(0.1, 0.8)];
        Look {
            skin,
            lip,
            hair,
            iris,
            shirt,
            radii: [0.075 * rng.range(0.93, 1.07), 0.097 * rng.range(0.95, 1.05), 0.095 * rng.range(0.95, 1.05)],
            nose: rng.range(0.8, 1.25),
            cheeks: rng.range(0.5, 1.5),
            chin: rng.range(0.6, 1.4),
            mouth_width: rng.range(0.27, 0.33),
            hair_volume: rng.range(0.006, 0.02),
            hairline: rng.range(0.6, 0.85),
            lip_height: [rng.range(0.045, 0.07), rng.range(0.06, 0.09)],
        }
    }
}

/// What the face is doing in one frame (as shown, after the identity's speaking-style gains).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Expression {
    /// Jaw opening in [0, 1].
    pub jaw: f32,
    /// Lip rounding in [0, 1].
    pub rounding: f32,
    /// Eye closure in [0, 1] (AU45-like, 0 open).
    pub eye: f32,
}

/// A vertex before lighting: head-space position and normal, albedo, texture coordinates.
#[derive(Clone, Copy, Debug, Default)]
pub struct Vertex {
    pub pos: [f32; 3],
    pub normal: [f32; 3],
    pub albedo: [f32; 3],
    pub uv: [f32; 2],
}

#[derive(Default)]
pub struct Mesh {
    pub vertices: Vec<Vertex>,
    pub triangles: Vec<[u32; 3]>,
    pub materials: Vec<u8>,
}

pub fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

pub fn add(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

pub fn sub(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

pub fn scale(a: [f32; 3], s: f32) -> [f32; 3] {
    [a[0] * s, a[1] * s, a[2] * s]
}

pub fn cross(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

pub fn dot(a: [f32; 3], b: [f32; 3]) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub fn normalize(a: [f32; 3]) -> [f32; 3] {
    let n = dot(a, a).sqrt().max(1e-20);
    scale(a, 1.0 / n)
}

pub fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    add(a, scale(sub(b, a), t))
}

/// Rotation about the x axis through `pivot` by `angle` (front points go down for positive angles).
fn rotate_x(p: [f32; 3], pivot: [f32; 3], angle: f32) -> [f32; 3] {
    let (s, c) = angle.sin_cos();
    let (y, z) = (p[1] - pivot[1], p[2] - pivot[2]);
    [p[0], pivot[1] + y * c - z * s, pivot[2] + y * s + z * c]
}

fn bump(theta: f32, phi: f32, centre: (f32, f32), sigma: (f32, f32), amp: f32) -> f32 {
    let (a, b) = ((theta - centre.0) / sigma.0, (phi - centre.1) / sigma.1);
    amp * (-0.5 * (a * a + b * b)).exp()
}

impl Mesh {
    /// Appends a (rows+1)×(cols+1) grid from `point(i, j)`, keeping the cells `keep(i, j)` accepts, with
    /// triangles facing away from `centre`. `wrap` joins the last column to the first.
    fn grid(
        &mut self,
        rows: usize,
        cols: usize,
        wrap: bool,
        centre: [f32; 3],
        material: impl Fn(usize, usize) -> Option<u8>,
        point: impl Fn(usize, usize) -> Vertex,
    ) {
        let base = self.vertices.len() as u32;
        let width = if wrap { cols } else { cols + 1 };
        for i in 0..=rows {
            for j in 0..width {
                self.vertices.push(point(i, j));
            }
        }
        let index = |i: usize, j: usize| base + (i * width + j % width) as u32;
        for i in 0..rows {
            for j in 0..cols {
                if let Some(m) = material(i, j) {
                    let (a, b, c, d) = (index(i, j), index(i, j + 1), index(i + 1, j + 1), index(i + 1, j));
                    self.push_facing(centre, [a, b, c], m);
                    self.push_facing(centre, [a, c, d], m);
                }
            }
        }
    }

    /// Adds a triangle wound so its normal points away from `centre`; degenerate ones are dropped.
    fn push_facing(&mut self, centre: [f32; 3], t: [u32; 3], m: u8) {
        let [a, b, c] = t.map(|k| self.vertices[k as usize].pos);
        let n = cross(sub(b, a), sub(c, a));
        if dot(n, n) < 1e-18 {
            return;
        }
        let centroid = scale(add(add(a, b), c), 1.0 / 3.0);
        self.triangles.push(if dot(n, sub(centroid, centre)) >= 0.0 { t } else { [t[0], t[2], t[1]] });
        self.materials.push(m);
    }

    /// Smooth vertex normals: area-weighted sums of the faces around each vertex.
    fn compute_normals(&mut self) {
        let mut acc = vec![[0.0f32; 3]; self.vertices.len()];
        for t in &self.triangles {
            let [a, b, c] = t.map(|k| self.vertices[k as usize].pos);
            let n = cross(sub(b, a), sub(c, a));
            for &k in t {
                acc[k as usize] = add(acc[k as usize], n);
            }
        }
        for (v, n) in self.vertices.iter_mut().zip(acc) {
            v.normal = normalize(n);
        }
    }

    /// An ellipsoid (centre, semi-axes) with `rows`×`cols` cells, every cell of one material, vertices
    /// transformed by `place` after construction (jaw motion).
    #[allow(clippy::too_many_arguments)]
    fn ellipsoid(
        &mut self,
        centre: [f32; 3],
        radii: [f32; 3],
        rows: usize,
        cols: usize,
        albedo: [f32; 3],
        m: u8,
        place: impl Fn([f32; 3]) -> [f32; 3],
    ) {
        let placed_centre = place(centre);
        self.grid(rows, cols, true, placed_centre, |_, _| Some(m), |i, j| {
            let phi = -FRAC_PI_2 + PI * i as f32 / rows as f32;
            let theta = 2.0 * PI * j as f32 / cols as f32;
            let d = [theta.sin() * phi.cos(), phi.sin(), theta.cos() * phi.cos()];
            let p = add(centre, [d[0] * radii[0], d[1] * radii[1], d[2] * radii[2]]);
            Vertex { pos: place(p), albedo, uv: [d[0], d[1]], ..Default::default() }
        });
    }
}

/// The skull surface at (θ, φ) before the jaw moves: ellipsoid, jaw taper, and the facial bumps.
fn skull_point(look: &Look, theta: f32, phi: f32) -> [f32; 3] {
    let [rx, ry, rz] = look.radii;
    let d = [theta.sin() * phi.cos(), phi.sin(), theta.cos() * phi.cos()];
    // Narrower towards the chin, flatter in front.
    let taper = 1.0 - 0.24 * smoothstep(0.0, -1.3, phi);
    let mut p = [d[0] * rx * taper, 0.02 + d[1] * ry, d[2] * rz * (1.0 - 0.12 * smoothstep(0.3, 1.2, theta.abs()))];
    let n = look.nose;
    let front = 1.0 - smoothstep(0.8, 1.4, theta.abs());
    let mut out = 0.0;
    out += bump(theta, phi, (0.0, 0.30), (0.07, 0.12), 0.006 * n);
    out += bump(theta, phi, (0.0, 0.08), (0.08, 0.10), 0.009 * n);
    out += bump(theta, phi, (0.0, -0.08), (0.10, 0.07), 0.018 * n);
    for side in [-1.0, 1.0] {
        out += bump(theta, phi, (0.13 * side, -0.14), (0.06, 0.05), 0.007 * n);
        out += bump(theta, phi, (0.33 * side, 0.45), (0.2, 0.07), 0.006);
        out += bump(theta, phi, (0.34 * side, 0.25), (0.12, 0.09), -0.005);
        out += bump(theta, phi, (0.55 * side, -0.08), (0.2, 0.18), 0.007 * look.cheeks);
    }
    out += bump(theta, phi, (0.0, 0.42), (0.1, 0.08), 0.004);
    out += bump(theta, phi, (0.0, -0.9), (0.4, 0.2), 0.014 * look.chin);
    out += bump(theta, phi, (0.0, PHI_MOUTH + 0.05), (0.25, 0.05), 0.006);
    out += bump(theta, phi, (0.0, PHI_MOUTH - 0.06), (0.25, 0.05), 0.007);
    p = add(p, scale(normalize(d), out * front));
    p
}

/// How much of the jaw's rotation a skull vertex below the lip line follows.
fn jaw_weight(look: &Look, e: &Expression, theta: f32, phi: f32) -> f32 {
    let half_width = look.mouth_width * (1.0 - 0.35 * e.rounding);
    let mouth = 1.0 - smoothstep(0.55 * half_width, half_width, theta.abs());
    let below = smoothstep(PHI_MOUTH, PHI_MOUTH - 0.3, phi) * (1.0 - smoothstep(0.7, 1.3, theta.abs()));
    mouth.max(below)
}

/// Lip colour weight at (θ, φ): upper and lower bands around the lip line, rounded at the corners.
fn lipness(look: &Look, theta: f32, phi: f32) -> f32 {
    let w = look.mouth_width * 1.08;
    let across = (1.0 - (theta / w).powi(2)).max(0.0).sqrt();
    let height = if phi >= PHI_MOUTH {
        // Cupid's bow: a dip at the centre of the upper lip.
        look.lip_height[0] * across * (1.0 - 0.25 * (-(theta / 0.05).powi(2)).exp())
    } else {
        look.lip_height[1] * across
    };
    1.0 - smoothstep(height - 0.012, height + 0.004, (phi - PHI_MOUTH).abs())
}

fn phi_of_row(i: usize) -> f32 {
    if i <= ROWS_BELOW {
        -FRAC_PI_2 + (PHI_MOUTH + FRAC_PI_2) * i as f32 / ROWS_BELOW as f32
    } else {
        PHI_MOUTH + (FRAC_PI_2 - PHI_MOUTH) * (i - ROWS_BELOW) as f32 / ROWS_ABOVE as f32
    }
}

/// The head (everything the mask covers) in head space for one expression.
pub fn head_mesh(look: &Look, e: &Expression) -> Mesh {
    let mut mesh = Mesh::default();
    let jaw_angle = e.jaw * MAX_JAW_ANGLE;
    let brow = mix(look.skin, look.hair, 0.7);
    let theta_of = |j: usize| -PI + 2.0 * PI * j as f32 / COLS as f32;
    let skin_vertex = |i: usize, j: usize, lower: bool| {
        let (theta, phi) = (theta_of(j), phi_of_row(i));
        let mut p = skull_point(look, theta, phi);
        // Rounding pushes the lips forward and together.
        let lips = (1.0 - smoothstep(0.9, 1.4, theta.abs() / look.mouth_width)) * (1.0 - smoothstep(0.06, 0.14, (phi - PHI_MOUTH).abs()));
        p[0] *= 1.0 - 0.3 * e.rounding * lips;
        p[2] += 0.008 * e.rounding * lips;
        if lower {
            p = rotate_x(p, HINGE, jaw_angle * jaw_weight(look, e, theta, phi));
        }
        let lip = lipness(look, theta, phi);
        let brows = bump(theta.abs(), phi, (0.33, 0.5), (0.14, 0.035), 1.0).min(1.0);
        let blush = bump(theta.abs(), phi, (0.55, -0.05), (0.15, 0.12), 0.08);
        let mut albedo = mix(mix(look.skin, brow, brows), look.lip, lip);
        albedo[0] += blush;
        Vertex { pos: p, albedo, uv: [(theta + PI) / (2.0 * PI), (phi + FRAC_PI_2) / PI], ..Default::default() }
    };
    // Skull rows at and below the lip line take the lower copy (they follow the jaw); the lip line row is
    // duplicated so the two lips can part.
    let centre = [0.0, 0.02, 0.0];
    // A cell is lip when its centre is (cells are indexed by their lower row over the whole skull).
    let lip_material = |i: usize, j: usize| {
        let (theta, phi) = (theta_of(j) + PI / COLS as f32, 0.5 * (phi_of_row(i) + phi_of_row(i + 1)));
        Some(if lipness(look, theta, phi) > 0.5 { material::LIP } else { material::SKIN })
    };
    let lower_lip_row = mesh.vertices.len() + ROWS_BELOW * COLS;
    mesh.grid(ROWS_BELOW, COLS, true, centre, lip_material, |i, j| skin_vertex(i, j, true));
    let upper_lip_row = mesh.vertices.len();
    mesh.grid(ROWS_ABOVE, COLS, true, centre, |i, j| lip_material(i + ROWS_BELOW, j), |i, j| {
        skin_vertex(i + ROWS_BELOW, j, false)
    });
    // Outside the mouth the two copies of the lip line coincide (jaw weight 0 past the corners), so the
    // surface stays watertight; their normals are averaged below so no crease shows.

    let mouth_front = skull_point(look, 0.0, PHI_MOUTH);
    let y_mouth = mouth_front[1];
    let jaw = |w: f32| move |p: [f32; 3]| rotate_x(p, HINGE, jaw_angle * w);
    // Mouth cavity (half on the jaw), tongue (on the jaw).
    mesh.ellipsoid([0.0, y_mouth - 0.004, mouth_front[2] - 0.046], [0.026, 0.017, 0.03], 14, 20, [0.16, 0.04, 0.05], material::MOUTH, jaw(0.5));
    mesh.ellipsoid([0.0, y_mouth - 0.01, mouth_front[2] - 0.042], [0.018, 0.007, 0.022], 8, 16, [0.5, 0.18, 0.2], material::TONGUE, jaw(1.0));
    // Teeth: arcs just behind the lips; the upper row hangs from the skull, the lower rides the jaw.
    let teeth = [0.93, 0.9, 0.82];
    // (top, bottom, jaw weight, half-width angle, depth behind the lips); the lower row is narrower and deeper
    // so its ends stay inside the cheeks, which follow the jaw less than it does.
    for (top, bottom, w, half, depth) in [(y_mouth + 0.002, y_mouth - 0.007, 0.0, 0.5, 0.009), (y_mouth - 0.001, y_mouth - 0.009, 1.0, 0.38, 0.011)] {
        let radius = 0.03;
        let arc_centre = [0.0, 0.0, mouth_front[2] - depth - radius];
        let place = jaw(w);
        let cols = 24;
        mesh.grid(2, cols, false, place([0.0, y_mouth, arc_centre[2] - 1.0]), |_, _| Some(material::TEETH), |i, j| {
            let a = half * (2.0 * j as f32 / cols as f32 - 1.0);
            let y = top + (bottom - top) * i as f32 / 2.0;
            let p = [radius * a.sin(), y, arc_centre[2] + radius * a.cos()];
            Vertex { pos: place(p), albedo: teeth, uv: [a, 0.0], ..Default::default() }
        });
    }
    // Eyes: eyeball spheres pushed through the skin, with lids as caps of a slightly larger sphere.
    for side in [-1.0f32, 1.0] {
        let (theta, phi) = (0.34 * side, 0.21);
        let surface = skull_point(look, theta, phi);
        let forward = normalize([0.12 * side, 0.0, 1.0]);
        let r = 0.0135;
        let c = sub(surface, scale(forward, 0.0075));
        // Eye frame: forward, right (x), up (y).
        let right = normalize(cross([0.0, 1.0, 0.0], forward));
        let up = cross(forward, right);
        let at = |radius: f32, azimuth: f32, elevation: f32| {
            let d = add(add(scale(forward, azimuth.cos() * elevation.cos()), scale(right, azimuth.sin() * elevation.cos())), scale(up, elevation.sin()));
            (add(c, scale(d, radius)), d)
        };
        mesh.grid(16, 24, true, c, |_, _| Some(material::EYE), |i, j| {
            let (p, d) = at(r, 2.0 * PI * j as f32 / 24.0, -FRAC_PI_2 + PI * i as f32 / 16.0);
            Vertex { pos: p, albedo: SCLERA, uv: [dot(d, right), dot(d, up)], ..Default::default() }
        });
        // Upper lid edge from 0.42 rad open to −0.3 closed, where it meets the lower lid.
        let lid_edge = 0.42 - 0.72 * e.eye;
        let rows = 8;
        // (first elevation, last elevation, the row at the lid's free edge)
        for (from, to, free_row) in [(lid_edge, FRAC_PI_2, 0), (-FRAC_PI_2, -0.32, rows)] {
            mesh.grid(rows, 16, false, c, |_, _| Some(material::SKIN), |i, j| {
                let elevation = from + (to - from) * i as f32 / rows as f32;
                let (p, _) = at(r * 1.07, -1.3 + 2.6 * j as f32 / 16.0, elevation);
                // Lashes darken the free edge.
                let edge = if i == free_row { 0.25 } else { 1.0 };
                Vertex { pos: p, albedo: scale(look.skin, 0.92 * edge), uv: [0.5, 0.5], ..Default::default() }
            });
        }
        // Ear.
        let ear_centre = [side * (look.radii[0] + 0.001), 0.008, -0.012];
        mesh.ellipsoid(ear_centre, [0.008, 0.03, 0.017], 10, 16, mix(look.skin, [0.9, 0.5, 0.5], 0.1), material::SKIN, |p| p);
    }
    // Hair: a shell over the skull above a wavy hairline that drops towards the back. Below the hairline the
    // shell dips under the skin, so the visible hairline is where the two surfaces cross: smooth at any
    // resolution rather than following the grid's cells.
    let hairline = |theta: f32| {
        look.hairline - 0.55 * smoothstep(0.35, 1.3, theta.abs()) - 0.7 * smoothstep(1.9, 2.8, theta.abs()) + 0.03 * (theta * 23.0).sin()
    };
    let hair_rows = 48;
    let hair_phi = |i: usize| -0.6 + (FRAC_PI_2 + 0.6) * i as f32 / hair_rows as f32;
    mesh.grid(
        hair_rows,
        COLS / 2,
        true,
        centre,
        |i, j| {
            let theta = -PI + 2.0 * PI * (j as f32 + 0.5) / (COLS / 2) as f32;
            (hair_phi(i) > hairline(theta) - 0.12).then_some(material::HAIR)
        },
        |i, j| {
            let (theta, phi) = (-PI + 2.0 * PI * j as f32 / (COLS / 2) as f32, hair_phi(i));
            let p = skull_point(look, theta, phi);
            let line = hairline(theta);
            let thickness = -0.004 + (0.006 + look.hair_volume * smoothstep(line, line + 0.5, phi)) * smoothstep(line - 0.08, line + 0.02, phi);
            let d = normalize(sub(p, centre));
            Vertex { pos: add(p, scale(d, thickness)), albedo: look.hair, uv: [(theta + PI) / (2.0 * PI), (phi + FRAC_PI_2) / PI], ..Default::default() }
        },
    );
    // Neck: an elliptic cylinder from inside the head down under the collar.
    let neck_cols = 32;
    let neck_axis = [0.0, -0.13, -0.02];
    mesh.grid(8, neck_cols, true, neck_axis, |_, _| Some(material::SKIN), |i, j| {
        let a = 2.0 * PI * j as f32 / neck_cols as f32;
        let y = -0.03 - 0.14 * i as f32 / 8.0;
        let p = [0.044 * a.sin(), y, -0.02 + 0.042 * a.cos()];
        Vertex { pos: p, albedo: scale(look.skin, 0.9), uv: [a / (2.0 * PI), 0.1 + y], ..Default::default() }
    });
    mesh.compute_normals();
    for j in 0..COLS {
        let (a, b) = (lower_lip_row + j, upper_lip_row + j);
        let n = normalize(add(mesh.vertices[a].normal, mesh.vertices[b].normal));
        mesh.vertices[a].normal = n;
        mesh.vertices[b].normal = n;
    }
    mesh
}

/// Shoulders and collar, which stay still while the head moves (rendered into the background).
pub fn torso_mesh(look: &Look) -> Mesh {
    let mut mesh = Mesh::default();
    mesh.ellipsoid([0.0, -0.225, -0.03], [0.21, 0.085, 0.11], 16, 48, look.shirt, material::TORSO, |p| p);
    let collar = scale(look.shirt, 0.7);
    mesh.grid(2, 32, true, [0.0, -0.145, -0.02], |_, _| Some(material::TORSO), |i, j| {
        let a = 2.0 * PI * j as f32 / 32.0;
        let y = -0.125 - 0.04 * i as f32 / 2.0;
        Vertex { pos: [0.062 * a.sin(), y, -0.02 + 0.058 * a.cos()], albedo: collar, ..Default::default() }
    });
    mesh.compute_normals();
    mesh
}

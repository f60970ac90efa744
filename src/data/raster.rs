//! The synthetic corpus's CPU renderer: a z-buffered triangle rasterizer at twice the output resolution
//! (2×2 supersampling), Gouraud-interpolated Lambert + ambient lighting, per-pixel texture detail, back-face
//! culling, and a material id per sample from which the head mask, mouth area and lip box are measured.
//!
//! Cameras follow SPEC §5a (OpenCV: x right, y down, z forward; pixel centres at +0.5). Head space is y up and
//! z towards the camera, so the rest pose is a 180° turn about x placed `DISTANCE` in front of the camera.

use super::mesh::{cross, dot, material, normalize, sub, Mesh, SCLERA};

/// Camera distance to the head origin (metres) and the visible height at that distance.
const DISTANCE: f32 = 0.75;
const VIEW_HEIGHT: f32 = 0.36;
/// How far the head origin sits above the image centre (metres at DISTANCE), leaving room for shoulders.
const HEAD_RAISE: f32 = 0.01;
/// Lighting: towards the key light (upper left, in front; camera space), plus ambient.
const LIGHT: [f32; 3] = [-0.45, -0.55, -0.7];
const AMBIENT: f32 = 0.35;
const DIFFUSE: f32 = 0.75;
/// Supersampling factor per axis.
pub const SS: usize = 2;

/// Pinhole intrinsics in output pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Intrinsics {
    pub fx: f32,
    pub fy: f32,
    pub cx: f32,
    pub cy: f32,
}

impl Intrinsics {
    pub fn for_size(size: usize) -> Intrinsics {
        let f = size as f32 * DISTANCE / VIEW_HEIGHT;
        Intrinsics { fx: f, fy: f, cx: size as f32 / 2.0, cy: size as f32 / 2.0 }
    }
}

/// A rigid transform p ↦ R p + t, R row-major.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rigid {
    pub r: [[f32; 3]; 3],
    pub t: [f32; 3],
}

impl Rigid {
    pub fn apply(&self, p: [f32; 3]) -> [f32; 3] {
        let r = &self.r;
        [dot(r[0], p) + self.t[0], dot(r[1], p) + self.t[1], dot(r[2], p) + self.t[2]]
    }

    pub fn rotate(&self, v: [f32; 3]) -> [f32; 3] {
        [dot(self.r[0], v), dot(self.r[1], v), dot(self.r[2], v)]
    }

    /// Row-major 4×4.
    pub fn matrix(&self) -> [f32; 16] {
        let (r, t) = (&self.r, &self.t);
        [r[0][0], r[0][1], r[0][2], t[0], r[1][0], r[1][1], r[1][2], t[1], r[2][0], r[2][1], r[2][2], t[2], 0.0, 0.0, 0.0, 1.0]
    }

    /// The head-to-camera transform for a head turned by yaw (about y), pitch (about x), roll (about z), in
    /// radians, about `pivot`, then moved by `shift` (head space, metres).
    pub fn head_pose(yaw: f32, pitch: f32, roll: f32, pivot: [f32; 3], shift: [f32; 3]) -> Rigid {
        let (sy, cy) = yaw.sin_cos();
        let (sp, cp) = pitch.sin_cos();
        let (sr, cr) = roll.sin_cos();
        let ry = [[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]];
        let rx = [[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]];
        let rz = [[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]];
        let head = matmul(&matmul(&ry, &rx), &rz);
        // Head space to camera: flip y and z (y up → down, z towards the camera → away from it).
        let flip = [[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]];
        let r = matmul(&flip, &head);
        let rp = [dot(head[0], pivot), dot(head[1], pivot), dot(head[2], pivot)];
        let moved = [pivot[0] - rp[0] + shift[0], pivot[1] - rp[1] + shift[1], pivot[2] - rp[2] + shift[2]];
        let t = [moved[0], -moved[1] - HEAD_RAISE, -moved[2] + DISTANCE];
        Rigid { r, t }
    }
}

fn matmul(a: &[[f32; 3]; 3], b: &[[f32; 3]; 3]) -> [[f32; 3]; 3] {
    let mut m = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            m[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    m
}

/// Per-material texture detail: skin and hair multiply their albedo by a grey detail map; eyes draw iris
/// and pupil from their local coordinates; teeth get dark gaps.
pub struct Shader {
    /// Grey multiplier [TEXTURE, TEXTURE], sampled with wrap-around.
    pub detail: Vec<f32>,
    pub iris: [f32; 3],
}

pub const TEXTURE: usize = 256;

impl Shader {
    fn sample(&self, u: f32, v: f32) -> f32 {
        let (x, y) = (u * TEXTURE as f32, v * TEXTURE as f32);
        let (x0, y0) = (x.floor(), y.floor());
        let (fx, fy) = (x - x0, y - y0);
        let at = |i: f32, j: f32| self.detail[(j as i64).rem_euclid(TEXTURE as i64) as usize * TEXTURE + (i as i64).rem_euclid(TEXTURE as i64) as usize];
        let top = at(x0, y0) + (at(x0 + 1.0, y0) - at(x0, y0)) * fx;
        let bottom = at(x0, y0 + 1.0) + (at(x0 + 1.0, y0 + 1.0) - at(x0, y0 + 1.0)) * fx;
        top + (bottom - top) * fy
    }

    /// Colour multiplier for a sample of material `m` at texture coordinates `uv`.
    fn pattern(&self, m: u8, uv: [f32; 2]) -> [f32; 3] {
        match m {
            material::SKIN | material::LIP => [self.sample(uv[0], uv[1]); 3],
            // Strands: the detail map stretched along the hair.
            material::HAIR => [self.sample(uv[0] * 3.0, uv[1] * 0.25).powi(3); 3],
            material::EYE => {
                let r = (uv[0] * uv[0] + uv[1] * uv[1]).sqrt();
                if r < 0.17 {
                    SCLERA.map(|w| 0.03 / w)
                } else if r < 0.42 {
                    let ring = 0.75 + 0.25 * (r * 40.0).sin();
                    [0, 1, 2].map(|c| self.iris[c] * ring / SCLERA[c])
                } else {
                    [1.0; 3]
                }
            }
            material::TEETH => {
                let gap = (uv[0] * 22.0).sin().abs();
                [0.55 + 0.45 * gap.powf(0.15); 3]
            }
            _ => [1.0; 3],
        }
    }
}

/// A supersampled frame being drawn: colour, inverse depth (0 = nothing) and material per sample.
#[derive(Clone)]
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pub color: Vec<[f32; 3]>,
    pub inv_depth: Vec<f32>,
    pub material: Vec<u8>,
}

impl Canvas {
    /// A canvas at SS× `size`, filled by `background(x, y)` at sample centres in output pixels.
    pub fn new(size: usize, background: impl Fn(f32, f32) -> [f32; 3]) -> Canvas {
        let n = size * SS;
        let color = (0..n * n)
            .map(|k| background(((k % n) as f32 + 0.5) / SS as f32, ((k / n) as f32 + 0.5) / SS as f32))
            .collect();
        Canvas { width: n, height: n, color, inv_depth: vec![0.0; n * n], material: vec![material::BACKGROUND; n * n] }
    }

    /// Draws `mesh` (head space) seen through `pose` and intrinsics `k`.
    pub fn draw(&mut self, mesh: &Mesh, pose: &Rigid, k: &Intrinsics, shader: &Shader) {
        let light = normalize(LIGHT);
        let s = SS as f32;
        // Screen position (samples), 1/z and lit colour per vertex.
        let projected: Vec<([f32; 3], [f32; 3])> = mesh
            .vertices
            .iter()
            .map(|v| {
                let p = pose.apply(v.pos);
                let n = pose.rotate(v.normal);
                let shade = AMBIENT + DIFFUSE * dot(n, light).max(0.0);
                let z = p[2].max(1e-4);
                ([(k.fx * p[0] / z + k.cx) * s, (k.fy * p[1] / z + k.cy) * s, 1.0 / z], v.albedo.map(|a| a * shade))
            })
            .collect();
        let camera: Vec<[f32; 3]> = mesh.vertices.iter().map(|v| pose.apply(v.pos)).collect();
        for (t, &m) in mesh.triangles.iter().zip(&mesh.materials) {
            let [a, b, c] = t.map(|i| i as usize);
            // Back faces (normal pointing away from the camera) are hidden by the front of their part.
            let n = cross(sub(camera[b], camera[a]), sub(camera[c], camera[a]));
            if dot(n, camera[a]) >= 0.0 {
                continue;
            }
            let uv = [mesh.vertices[a].uv, mesh.vertices[b].uv, mesh.vertices[c].uv];
            self.fill([projected[a], projected[b], projected[c]], uv, m, shader);
        }
    }

    /// Scan-converts one triangle: samples whose centre is inside (either winding) and nearer than what is
    /// there take its interpolated colour.
    fn fill(&mut self, v: [([f32; 3], [f32; 3]); 3], uv: [[f32; 2]; 3], m: u8, shader: &Shader) {
        let [(p0, c0), (p1, c1), (p2, c2)] = v;
        let area = (p1[0] - p0[0]) * (p2[1] - p0[1]) - (p1[1] - p0[1]) * (p2[0] - p0[0]);
        if area.abs() < 1e-12 || p0[2] <= 0.0 {
            return;
        }
        let x0 = p0[0].min(p1[0]).min(p2[0]).floor().max(0.0) as usize;
        let y0 = p0[1].min(p1[1]).min(p2[1]).floor().max(0.0) as usize;
        let x1 = (p0[0].max(p1[0]).max(p2[0]).ceil() as isize).min(self.width as isize);
        let y1 = (p0[1].max(p1[1]).max(p2[1]).ceil() as isize).min(self.height as isize);
        if x1 <= x0 as isize || y1 <= y0 as isize {
            return;
        }
        let inv_area = 1.0 / area;
        let edge = |a: [f32; 3], b: [f32; 3], x: f32, y: f32| (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0]);
        for y in y0..y1 as usize {
            let py = y as f32 + 0.5;
            for x in x0..x1 as usize {
                let px = x as f32 + 0.5;
                let l0 = edge(p1, p2, px, py) * inv_area;
                let l1 = edge(p2, p0, px, py) * inv_area;
                let l2 = 1.0 - l0 - l1;
                if l0 < 0.0 || l1 < 0.0 || l2 < 0.0 {
                    continue;
                }
                let inv_z = l0 * p0[2] + l1 * p1[2] + l2 * p2[2];
                let k = y * self.width + x;
                if inv_z <= self.inv_depth[k] {
                    continue;
                }
                let albedo = [0, 1, 2].map(|i| l0 * c0[i] + l1 * c1[i] + l2 * c2[i]);
                let tex = [l0 * uv[0][0] + l1 * uv[1][0] + l2 * uv[2][0], l0 * uv[0][1] + l1 * uv[1][1] + l2 * uv[2][1]];
                let pattern = shader.pattern(m, tex);
                self.inv_depth[k] = inv_z;
                self.material[k] = m;
                self.color[k] = [0, 1, 2].map(|i| albedo[i] * pattern[i]);
            }
        }
    }

    /// Averages each SS×SS block: RGB u8 [H, W, 3], head coverage u8 [H, W], and what the ground truth needs.
    pub fn resolve(&self) -> Resolved {
        let (w, h) = (self.width / SS, self.height / SS);
        let mut out = Resolved { rgb: vec![0; w * h * 3], mask: vec![0; w * h], mouth_area: 0.0, lip_box: None };
        let per = (SS * SS) as f32;
        let mut lip: Option<[usize; 4]> = None;
        let mut mouth_samples = 0usize;
        for y in 0..h {
            for x in 0..w {
                let mut sum = [0.0f32; 3];
                let (mut head, mut lips) = (0usize, false);
                for dy in 0..SS {
                    for dx in 0..SS {
                        let k = (y * SS + dy) * self.width + x * SS + dx;
                        let c = self.color[k];
                        for i in 0..3 {
                            sum[i] += c[i];
                        }
                        let m = self.material[k];
                        head += material::is_head(m) as usize;
                        mouth_samples += material::is_mouth_interior(m) as usize;
                        lips |= material::is_lip_region(m);
                    }
                }
                let p = y * w + x;
                for (o, s) in out.rgb[p * 3..p * 3 + 3].iter_mut().zip(sum) {
                    *o = (s / per * 255.0).round().clamp(0.0, 255.0) as u8;
                }
                out.mask[p] = (head as f32 / per * 255.0).round() as u8;
                if lips {
                    lip = Some(match lip {
                        None => [x, y, x + 1, y + 1],
                        Some(b) => [b[0].min(x), b[1].min(y), b[2].max(x + 1), b[3].max(y + 1)],
                    });
                }
            }
        }
        out.mouth_area = mouth_samples as f32 / per;
        out.lip_box = lip.map(|b| b.map(|v| v as u32));
        out
    }
}

/// A frame at output resolution with its measured ground truth.
pub struct Resolved {
    pub rgb: Vec<u8>,
    pub mask: Vec<u8>,
    /// Pixels of visible mouth interior (fractional: samples / SS²).
    pub mouth_area: f32,
    /// Bounding box of lip and mouth samples, half-open pixels; None when the lips are not visible.
    pub lip_box: Option<[u32; 4]>,
}

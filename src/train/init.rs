//! Initial Gaussian scales from the point cloud (3D Gaussian Splatting's rule): each Gaussian starts
//! isotropic with log-scale ln(sqrt(mean squared distance to its 3 nearest neighbours)). A uniform grid
//! with about two points per cell keeps this O(N) for the tens of thousands of initial points.

use std::collections::HashMap;

/// Neighbours averaged.
const K: usize = 3;
/// Floor on the mean squared distance, so coincident points do not give ln(0).
const MIN_DIST2: f64 = 1e-14;
/// Grid rings searched before an isolated point falls back to a scan of all points.
const MAX_RING: i64 = 6;

/// Per point, the isotropic log-scale [s, s, s] with s = ln(sqrt(mean of the K smallest squared distances)).
pub fn knn_log_scales(points: &[[f32; 3]]) -> Vec<[f32; 3]> {
    if points.len() <= 1 {
        return vec![[MIN_DIST2.sqrt().ln() as f32; 3]; points.len()];
    }
    let (lo, hi) = points.iter().fold(([f64::MAX; 3], [f64::MIN; 3]), |(mut lo, mut hi), p| {
        for a in 0..3 {
            lo[a] = lo[a].min(p[a] as f64);
            hi[a] = hi[a].max(p[a] as f64);
        }
        (lo, hi)
    });
    let volume: f64 = (0..3).map(|a| (hi[a] - lo[a]).max(1e-9)).product();
    let cell = (2.0 * volume / points.len() as f64).cbrt().max(1e-9);
    let key = |p: &[f32; 3]| -> [i64; 3] { [0, 1, 2].map(|a| ((p[a] as f64 - lo[a]) / cell).floor() as i64) };
    let mut grid: HashMap<[i64; 3], Vec<u32>> = HashMap::new();
    for (i, p) in points.iter().enumerate() {
        grid.entry(key(p)).or_default().push(i as u32);
    }
    points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let c = key(p);
            let dist2 = |j: usize| -> f64 { (0..3).map(|a| (p[a] as f64 - points[j][a] as f64).powi(2)).sum() };
            let mut best = [f64::MAX; K];
            // Grow the searched cube ring by ring until the K-th best distance lies inside it.
            let mut settled = false;
            for ring in 0..=MAX_RING {
                for dx in -ring..=ring {
                    for dy in -ring..=ring {
                        for dz in -ring..=ring {
                            if dx.abs().max(dy.abs()).max(dz.abs()) != ring {
                                continue;
                            }
                            for &j in grid.get(&[c[0] + dx, c[1] + dy, c[2] + dz]).into_iter().flatten() {
                                if j as usize != i {
                                    keep_smallest(&mut best, dist2(j as usize));
                                }
                            }
                        }
                    }
                }
                let covered = ring as f64 * cell; // every point within this distance has been seen
                if best[K - 1] <= covered * covered {
                    settled = true;
                    break;
                }
            }
            if !settled {
                best = [f64::MAX; K];
                (0..points.len()).filter(|&j| j != i).for_each(|j| keep_smallest(&mut best, dist2(j)));
            }
            let found: Vec<f64> = best.into_iter().filter(|d| *d < f64::MAX).collect();
            let mean = found.iter().sum::<f64>() / found.len() as f64;
            [mean.max(MIN_DIST2).sqrt().ln() as f32; 3]
        })
        .collect()
}

/// Inserts `d2` into the sorted K smallest distances if it belongs there.
fn keep_smallest(best: &mut [f64; K], d2: f64) {
    if d2 < best[K - 1] {
        best[K - 1] = d2;
        best.sort_by(f64::total_cmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn matches_brute_force() {
        let mut rng = Rng::new(4);
        for n in [2usize, 3, 5, 200, 3000] {
            // A shell, like the head-surface initialisation, a few outliers, and one point so far away that
            // the grid search gives up and scans.
            let pts: Vec<[f32; 3]> = (0..n)
                .map(|k| {
                    let v = [rng.normal(), rng.normal(), rng.normal()];
                    let r = if k == 1 { 1000.0 } else if k % 97 == 0 { 5.0 } else { 1.0 } / (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
                    v.map(|x| x * r)
                })
                .collect();
            let fast = knn_log_scales(&pts);
            for (i, p) in pts.iter().enumerate() {
                let mut d: Vec<f64> = pts
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, q)| (0..3).map(|a| (p[a] as f64 - q[a] as f64).powi(2)).sum())
                    .collect();
                d.sort_by(f64::total_cmp);
                let k = d.len().min(K);
                let want = (d[..k].iter().sum::<f64>() / k as f64).max(MIN_DIST2).sqrt().ln() as f32;
                assert!((fast[i][0] - want).abs() < 1e-5, "n={n} point {i}: {} vs {want}", fast[i][0]);
            }
        }
    }
}

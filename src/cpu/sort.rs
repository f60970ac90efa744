//! CPU twins of kernels/sort.cu: the exclusive prefix sum (scan_lookback), the digit histograms of every pass
//! (radix_hist_all), one stable 8-bit LSD radix pass (radix_onesweep), and the whole sort over the bits asked
//! for. How the kernels split the work into tiles and chain them (look-back) leaves these results unchanged.

/// Bits sorted per pass (RADIX_BITS in the kernel).
pub const RADIX_BITS: u32 = 8;
/// Digit values per pass (RADIX in the kernel).
pub const RADIX: usize = 1 << RADIX_BITS;

/// out[i] = Σ_{j<i} input[j]; returns the total.
pub fn exclusive_scan(input: &[i32], out: &mut [i32]) -> i64 {
    assert_eq!(input.len(), out.len(), "exclusive_scan: length mismatch");
    let mut s = 0i64;
    for (o, &v) in out.iter_mut().zip(input) {
        *o = s as i32;
        s += v as i64;
    }
    s
}

/// The digit of `key` in `pass`: bits 8·pass .. 8·pass + 7.
fn digit(key: u64, pass: u32) -> usize {
    ((key >> (pass * RADIX_BITS)) as usize) & (RADIX - 1)
}

/// hist[p][d] = number of keys whose digit in pass p is d, for passes p < `passes`, all from the input keys.
pub fn radix_histograms(keys: &[u64], passes: u32) -> Vec<[usize; RADIX]> {
    let mut hist = vec![[0usize; RADIX]; passes as usize];
    for &k in keys {
        for (p, h) in hist.iter_mut().enumerate() {
            h[digit(k, p as u32)] += 1;
        }
    }
    hist
}

/// One stable counting pass on the digit of `pass`: `keys`/`values` in, `keys_out`/`values_out` out.
/// `hist` is that pass's row of `radix_histograms` (a pass permutes the keys, so every pass's counts can be
/// taken from the unsorted keys); digit d starts at Σ_{e<d} hist[e], and equal digits keep their order.
pub fn radix_sort_pass(
    keys: &[u64],
    values: &[u32],
    pass: u32,
    hist: &[usize; RADIX],
    keys_out: &mut [u64],
    values_out: &mut [u32],
) {
    let mut base = [0usize; RADIX];
    let mut s = 0;
    for d in 0..RADIX {
        base[d] = s;
        s += hist[d];
    }
    assert_eq!(s, keys.len(), "radix_sort_pass: the histogram counts {s} keys, not {}", keys.len());
    for (&k, &v) in keys.iter().zip(values) {
        let d = digit(k, pass);
        keys_out[base[d]] = k;
        values_out[base[d]] = v;
        base[d] += 1;
    }
}

/// Passes needed to sort the low `bits` bits.
pub fn radix_passes(bits: u32) -> u32 {
    bits.div_ceil(RADIX_BITS)
}

/// Stable sort of (key, value) pairs by the low `bits` bits of the key, in place, by the kernel's passes.
pub fn radix_sort(keys: &mut Vec<u64>, values: &mut Vec<u32>, bits: u32) {
    let mut k2 = vec![0u64; keys.len()];
    let mut v2 = vec![0u32; values.len()];
    let hist = radix_histograms(keys, radix_passes(bits));
    for (p, h) in hist.iter().enumerate() {
        radix_sort_pass(keys, values, p as u32, h, &mut k2, &mut v2);
        std::mem::swap(keys, &mut k2);
        std::mem::swap(values, &mut v2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn radix_sort_is_a_stable_sort_on_the_low_bits() {
        let mut rng = Rng::new(3);
        let n = 5000;
        let mut keys: Vec<u64> = (0..n).map(|_| rng.next_u64() & ((1 << 20) - 1) | (rng.below(4) << 40)).collect();
        let mut values: Vec<u32> = (0..n as u32).collect();
        let mut want: Vec<(u64, u32)> = keys.iter().map(|k| k & ((1 << 20) - 1)).zip(values.clone()).collect();
        want.sort_by_key(|p| p.0); // std's sort_by_key is stable
        radix_sort(&mut keys, &mut values, 20);
        let got: Vec<(u64, u32)> = keys.iter().map(|k| k & ((1 << 20) - 1)).zip(values).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn radix_sort_of_64_bits_is_a_full_stable_sort() {
        let mut rng = Rng::new(4);
        let mut keys: Vec<u64> = (0..3000).map(|_| rng.next_u64() >> (rng.below(4) * 16)).collect();
        keys.extend_from_within(..500); // equal keys
        let mut values: Vec<u32> = (0..keys.len() as u32).collect();
        let mut want: Vec<(u64, u32)> = keys.iter().copied().zip(values.clone()).collect();
        want.sort_by_key(|p| p.0);
        radix_sort(&mut keys, &mut values, 64);
        assert_eq!(keys.into_iter().zip(values).collect::<Vec<_>>(), want);
    }

    /// The histograms the kernel takes once from the unsorted keys are those of every pass's input.
    #[test]
    fn histograms_of_the_input_are_those_of_every_pass() {
        let mut rng = Rng::new(5);
        let mut keys: Vec<u64> = (0..4000).map(|_| rng.next_u64() & ((1 << 44) - 1)).collect();
        let mut values: Vec<u32> = (0..4000).collect();
        let hist = radix_histograms(&keys, 6);
        let (mut k2, mut v2) = (vec![0u64; keys.len()], vec![0u32; keys.len()]);
        for p in 0..6u32 {
            assert_eq!(radix_histograms(&keys, 6)[p as usize], hist[p as usize], "pass {p}");
            radix_sort_pass(&keys, &values, p, &hist[p as usize], &mut k2, &mut v2);
            std::mem::swap(&mut keys, &mut k2);
            std::mem::swap(&mut values, &mut v2);
        }
        assert!(keys.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn scan_is_exclusive() {
        let mut out = [0; 4];
        assert_eq!(exclusive_scan(&[3, 0, 2, 5], &mut out), 10);
        assert_eq!(out, [0, 3, 3, 5]);
    }
}

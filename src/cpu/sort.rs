//! CPU twins of kernels/sort.cu: the exclusive prefix sum (scan_reduce + scan_spine + scan_apply) and one
//! stable 8-bit LSD radix pass (radix_hist + radix_scatter), and the whole sort over the bits asked for.

/// Bits sorted per pass (RADIX_BITS in the kernel).
pub const RADIX_BITS: u32 = 8;
const RADIX: usize = 1 << RADIX_BITS;

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

/// One stable counting pass on digit (key >> shift) & 255: `keys`/`values` in, `keys_out`/`values_out` out.
pub fn radix_sort_pass(keys: &[u64], values: &[u32], shift: u32, keys_out: &mut [u64], values_out: &mut [u32]) {
    let digit = |k: u64| ((k >> shift) as usize) & (RADIX - 1);
    let mut hist = [0usize; RADIX];
    for &k in keys {
        hist[digit(k)] += 1;
    }
    let mut base = [0usize; RADIX];
    let mut s = 0;
    for d in 0..RADIX {
        base[d] = s;
        s += hist[d];
    }
    for (&k, &v) in keys.iter().zip(values) {
        let d = digit(k);
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
    for p in 0..radix_passes(bits) {
        radix_sort_pass(keys, values, p * RADIX_BITS, &mut k2, &mut v2);
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
    fn scan_is_exclusive() {
        let mut out = [0; 4];
        assert_eq!(exclusive_scan(&[3, 0, 2, 5], &mut out), 10);
        assert_eq!(out, [0, 3, 3, 5]);
    }
}

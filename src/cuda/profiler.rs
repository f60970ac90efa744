//! Per-kernel profiler. With `--profile`, every launch is bracketed by two CUDA events and carries the bytes it
//! moves and the FLOP it does, as declared by its launcher (formulas in each kernel's header comment). The
//! report aggregates per kernel: calls, total ms, mean µs, GB/s and TFLOP/s, printed as a table and as CSV.
//!
//! Event timing adds a few µs per launch, so the profiled total is a little above the unprofiled one; use it
//! for the split between kernels, and CUDA-event timing of whole steps (bench) for totals.

use std::collections::BTreeMap;
use std::fmt::Write;

/// What one launch moves through device memory and computes, as declared by the launcher.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cost {
    pub bytes: u64,
    pub flop: u64,
}

/// One kernel's totals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KernelStats {
    pub calls: u64,
    pub total_ms: f64,
    pub bytes: u64,
    pub flop: u64,
}

impl KernelStats {
    pub fn mean_us(&self) -> f64 {
        1000.0 * self.total_ms / self.calls.max(1) as f64
    }
    pub fn gb_per_s(&self) -> f64 {
        if self.total_ms > 0.0 { self.bytes as f64 / (self.total_ms * 1e6) } else { 0.0 }
    }
    pub fn tflop_per_s(&self) -> f64 {
        if self.total_ms > 0.0 { self.flop as f64 / (self.total_ms * 1e9) } else { 0.0 }
    }
}

/// Per-kernel totals, sorted by kernel name; `table` lists them by total time.
#[derive(Debug, Clone, Default)]
pub struct ProfileTable {
    pub kernels: BTreeMap<String, KernelStats>,
}

impl ProfileTable {
    pub fn add(&mut self, kernel: &str, ms: f64, cost: Cost) {
        let s = self.kernels.entry(kernel.to_string()).or_default();
        s.calls += 1;
        s.total_ms += ms;
        s.bytes += cost.bytes;
        s.flop += cost.flop;
    }

    fn by_time(&self) -> Vec<(&String, &KernelStats)> {
        let mut rows: Vec<_> = self.kernels.iter().collect();
        rows.sort_by(|a, b| b.1.total_ms.total_cmp(&a.1.total_ms).then(a.0.cmp(b.0)));
        rows
    }

    pub fn total_ms(&self) -> f64 {
        self.kernels.values().map(|s| s.total_ms).sum()
    }

    /// A fixed-width table, slowest kernel first, with a total line.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<28} {:>7} {:>10} {:>10} {:>12} {:>12} {:>9} {:>9}",
            "kernel", "calls", "total ms", "mean us", "bytes", "FLOP", "GB/s", "TFLOP/s"
        );
        for (name, s) in self.by_time() {
            let _ = writeln!(
                out,
                "{:<28} {:>7} {:>10.3} {:>10.2} {:>12} {:>12} {:>9.1} {:>9.3}",
                name,
                s.calls,
                s.total_ms,
                s.mean_us(),
                s.bytes,
                s.flop,
                s.gb_per_s(),
                s.tflop_per_s()
            );
        }
        let _ = writeln!(out, "{:<28} {:>7} {:>10.3}", "total", "", self.total_ms());
        out
    }

    /// The same rows as CSV with a header line.
    pub fn csv(&self) -> String {
        let mut out = String::from("kernel,calls,total_ms,mean_us,bytes,flop,gb_per_s,tflop_per_s\n");
        for (name, s) in self.by_time() {
            let _ = writeln!(
                out,
                "{},{},{:.6},{:.3},{},{},{:.3},{:.6}",
                name,
                s.calls,
                s.total_ms,
                s.mean_us(),
                s.bytes,
                s.flop,
                s.gb_per_s(),
                s.tflop_per_s()
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_and_derives_rates() {
        let mut t = ProfileTable::default();
        t.add("adam_step", 0.1, Cost { bytes: 280_000_000, flop: 120_000_000 });
        t.add("adam_step", 0.1, Cost { bytes: 280_000_000, flop: 120_000_000 });
        t.add("fill", 0.05, Cost { bytes: 4_000, flop: 0 });
        let a = &t.kernels["adam_step"];
        assert_eq!(a.calls, 2);
        assert!((a.mean_us() - 100.0).abs() < 1e-9);
        assert!((a.gb_per_s() - 2800.0).abs() < 1e-6);
        assert!((a.tflop_per_s() - 1.2).abs() < 1e-9);
        let table = t.table();
        let first_row = table.lines().nth(1).unwrap();
        assert!(first_row.starts_with("adam_step"), "slowest first: {table}");
        assert!(table.lines().last().unwrap().contains("0.250"));
        let csv = t.csv();
        assert_eq!(csv.lines().count(), 3);
        assert!(csv.lines().nth(1).unwrap().starts_with("adam_step,2,0.200000,100.000,560000000,"));
    }
}

//! The command line: info, device selection and its errors (one line, exit 2, nothing on stdout).

mod common;

use std::process::Command;

fn gensync(args: &[&str]) -> std::process::Output {
    Command::new(common::gensync_bin()).args(args).output().expect("run gensync")
}

#[test]
fn info_names_the_device_or_the_cpu_fallback() {
    let out = gensync(&["info"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with(&format!("gensync {}", env!("CARGO_PKG_VERSION"))), "{text}");
    match gensync::cuda::probe_unavailable() {
        Some(why) => assert!(text.contains(&format!("{why}: using the CPU backend")), "{text}"),
        None => assert!(text.contains("device: ") && text.contains("adam.cu:adam_step"), "{text}"),
    }
}

#[test]
fn device_cuda_without_a_gpu_is_a_one_line_error() {
    let out = gensync(&["--device", "cuda", "info"]);
    match gensync::cuda::probe_unavailable() {
        Some(why) => {
            assert_eq!(out.status.code(), Some(2));
            assert!(out.stdout.is_empty(), "partial output: {:?}", String::from_utf8_lossy(&out.stdout));
            let err = String::from_utf8(out.stderr).unwrap();
            assert_eq!(err, format!("gensync: --device cuda: {why}\n"));
        }
        None => assert!(out.status.success()),
    }
}

#[test]
fn bad_device_name_is_a_one_line_error() {
    let out = gensync(&["--device", "gpu", "info"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--device"), "{err}");
}

#[test]
fn bench_adam_runs_on_the_cpu_backend() {
    let out = gensync(&["--device", "cpu", "bench", "adam", "--params", "10000", "--reps", "3"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("adam (cpu): 10000 parameters in 6 tensors"), "{text}");
    let bad = gensync(&["--device", "cpu", "bench", "adam", "--params", "0"]);
    assert_eq!(bad.status.code(), Some(2));
}

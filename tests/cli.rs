//! The command line: info, device selection and its errors (one line, exit 2, nothing on stdout).

mod common;

#[test]
fn info_names_the_device_or_the_cpu_fallback() {
    let out = common::gensync(&["info"]);
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
    let out = common::gensync(&["--device", "cuda", "info"]);
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
    let out = common::gensync(&["--device", "gpu", "info"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--device"), "{err}");
}

#[test]
fn bench_adam_runs_on_the_cpu_backend() {
    let out = common::gensync(&["--device", "cpu", "bench", "adam", "--params", "10000", "--reps", "3"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("adam (cpu): 10000 parameters in 6 tensors"), "{text}");
    let bad = common::gensync(&["--device", "cpu", "bench", "adam", "--params", "0"]);
    assert_eq!(bad.status.code(), Some(2));
}

/// `args` fail as bad input (common::assert_input_error) with a message that mentions `needle`.
fn one_line_error(args: &[&str], needle: &str) {
    common::assert_input_error(&common::gensync(args), &format!("{args:?}"), needle);
}

/// Sizes a bench cannot hold (up to usize::MAX, where building its inputs overflowed) are input errors that
/// name the option, before anything is allocated.
#[test]
fn bench_sizes_out_of_range_are_one_line_errors() {
    let max = usize::MAX.to_string();
    for (args, needle) in [
        (vec!["bench", "adam", "--params", &max], "--params"),
        (vec!["bench", "raster", "--gaussians", &max], "--gaussians"),
        (vec!["bench", "raster", "--size", "0"], "--size"),
        (vec!["bench", "mlp", "--rows", &max], "--rows"),
        (vec!["bench", "mlp", "--rows", "1000000", "--in", "4096"], "--rows × the wider of --in, --out"),
        (vec!["bench", "loss", "--height", &max], "--height"),
        (vec!["bench", "deform", "--batch", &max], "--batch"),
        (vec!["bench", "deform", "--gaussians", "4000000", "--batch", "8"], "--gaussians × --batch"),
        (vec!["bench", "deform", "--reps", "0"], "--reps"),
        (vec!["bench", "canonical", "--gaussians", "0"], "--gaussians"),
    ] {
        let mut full = vec!["--device", "cpu", "--quiet"];
        full.extend(args);
        one_line_error(&full, needle);
    }
}

/// What the parser rejects (a value of the wrong type, an unknown option, a missing one) is one line too, and
/// so is a --profile-csv that cannot be written (checked before any work).
#[test]
fn parse_and_option_errors_are_one_line() {
    one_line_error(&["demo", "--size", "x"], "--size");
    one_line_error(&["demo", "--identities", &usize::MAX.to_string()], "--identities");
    one_line_error(&["synth", "--no-such-option"], "--no-such-option");
    one_line_error(&["train", "--data", "corpus"], "--out");
    one_line_error(&["--profile", "--profile-csv", "/no/such/folder/p.csv", "info"], "--profile-csv");
}

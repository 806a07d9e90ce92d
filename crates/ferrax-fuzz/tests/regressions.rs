//! The regression corpus and a short seeded fuzz run.
//!
//! Every file of `crates/ferrax-fuzz/regressions/` is an input the fuzzer once found
//! (minimized). Each is replayed through the same driver the fuzzer uses, in a worker
//! process (so an abort fails this test instead of killing it): no panic, no abort, no hang,
//! no broken invariant (whatever parses round-trips, every pass's program type-checks, jit
//! agrees with eval). `.cli` files need the `ferrax` binary (`target/debug/ferrax`, built by
//! `cargo test --workspace`) and are skipped without it.

use std::path::{Path, PathBuf};
use std::time::Duration;

fn worker() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ferrax-fuzz"))
}

#[test]
fn every_regression_input_passes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the regressions folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "fx" || e == "dat" || e == "cli")
        })
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no regression inputs in {}",
        dir.display()
    );
    let bin = ferrax_fuzz::targets::cli::ferrax_binary(None, false).ok();
    let results = ferrax_fuzz::replay(
        &files,
        &worker(),
        bin.as_deref(),
        Duration::from_secs(15),
        &[0, 1, 2],
    );
    let failing: Vec<String> = results
        .iter()
        .filter(|r| !r.failures.is_empty())
        .map(|r| {
            format!(
                "{}:\n    {}",
                r.path.file_name().unwrap_or_default().to_string_lossy(),
                r.failures.join("\n    ")
            )
        })
        .collect();
    assert!(
        failing.is_empty(),
        "{} of {} regression inputs fail:\n{}",
        failing.len(),
        results.len(),
        failing.join("\n")
    );
}

#[test]
fn a_short_seeded_fuzz_run_finds_nothing() {
    let findings = std::env::temp_dir().join(format!("ferrax-fuzz-test-{}", std::process::id()));
    let mut summary = String::new();
    let mut failures = 0;
    for (target, n) in [("random", 150), ("programs", 400), ("nist", 30)] {
        let mut opts = ferrax_fuzz::Options::new(target, 20_261_129, worker());
        opts.iterations = Some(n);
        opts.findings = findings.clone();
        opts.minimize = false;
        opts.timeout = Duration::from_secs(60);
        let (_, f) = ferrax_fuzz::fuzz(&opts).expect("a known target");
        failures += f.failures();
        summary.push_str(&f.summary());
    }
    let _ = std::fs::remove_dir_all(&findings);
    assert_eq!(failures, 0, "the seeded run found:\n{summary}");
}

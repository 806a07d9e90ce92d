//! A Levenberg-Marquardt iteration whose trial steps can never be accepted ends, with
//! `Termination::NoProgress`, instead of trying forever. Found by the fuzzer: Lanczos2 with
//! one abscissa replaced by 1e308 (`fixtures/lanczos2_x_1e308.dat`) made the predicted
//! reduction NaN from the second start, so no trial was accepted and none stopped the loop.

use std::sync::mpsc;
use std::time::Duration;

use ferrax_solvers::least_squares::{Method, Termination};
use ferrax_solvers::{nist, LsqOptions};

#[test]
fn a_step_that_can_never_be_accepted_ends_the_solve() {
    let text = include_str!("fixtures/lanczos2_x_1e308.dat");
    let p = nist::parse_dat(text, "lanczos2_x_1e308.dat").unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let opts = LsqOptions {
            max_iterations: 20,
            method: Method::LevenbergMarquardt,
            ..Default::default()
        };
        let _ = tx.send(nist::run(&p, 2, &opts).map(|r| r.fit.termination));
    });
    // before the fix this never returned
    let got = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the solve ended");
    assert_eq!(got.unwrap(), Termination::NoProgress);
}

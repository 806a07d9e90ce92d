//! Target `nist`: malformed NIST StRD files through the solvers' NIST entry points.
//!
//! Inputs are the 27 real `.dat` files of `crates/ferrax-solvers/data/nist`, mutated:
//! the generic text mutations (`mutate`), plus NIST-shaped ones: another problem's name in
//! `Dataset Name:` (so a model meets data and parameters that are not its own), a parameter
//! line removed or repeated, the header's line ranges changed, numbers made huge, NaN or
//! empty. The worker runs `nist::parse_dat`, `residual_fn` and `run` from both starts (and
//! from a bad one) with few iterations; the invariants are no panic, no abort, no hang, a
//! fit that returns as many parameters as the file declares, and no fit of a file that
//! declares more or fewer parameters than its problem's model has (issue 10, item 8).

use rand::seq::SliceRandom;
use rand::Rng;

use crate::job::Job;
use crate::mutate;
use crate::targets::Ctx;

/// The real files' texts.
pub fn real_files() -> Vec<(String, String)> {
    let dir = ferrax_solvers::nist::data_dir();
    ferrax_solvers::nist::ALL
        .iter()
        .filter_map(|n| {
            std::fs::read_to_string(dir.join(format!("{n}.dat")))
                .ok()
                .map(|t| (n.to_string(), t))
        })
        .collect()
}

/// One NIST-shaped mutation.
fn nist_mutation(text: &str, names: &[String], rng: &mut impl Rng) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    match rng.gen_range(0..5) {
        0 => {
            // another problem's name
            let other = names.choose(rng).expect("names");
            for l in lines.iter_mut() {
                if l.starts_with("Dataset Name:") {
                    *l = format!("Dataset Name:  {other}  (renamed by the fuzzer)");
                }
            }
        }
        1 => {
            // a parameter line removed or repeated (b1 = ... lines)
            let params: Vec<usize> = (0..lines.len())
                .filter(|&i| {
                    let t = lines[i].trim_start();
                    t.starts_with('b') && t.contains('=') && t.len() > 4
                })
                .collect();
            if let Some(&i) = params.choose(rng) {
                if rng.gen_bool(0.5) {
                    lines[i].clear();
                } else {
                    let l = lines[i].clone();
                    // the copy replaces the blank line after the parameters, if any
                    if let Some(j) = (i + 1..lines.len()).find(|&j| lines[j].trim().is_empty()) {
                        lines[j] = l;
                    }
                }
            }
        }
        2 => {
            // a header range changed
            let heads: Vec<usize> = (0..lines.len().min(15))
                .filter(|&i| lines[i].contains("(lines"))
                .collect();
            if let Some(&i) = heads.choose(rng) {
                let n = mutate::INTERESTING_NUMBERS[..20]
                    .choose(rng)
                    .expect("numbers");
                let l = &lines[i];
                if let Some(k) = l.find("(lines") {
                    let tail = &l[k..];
                    let new_tail = if rng.gen_bool(0.5) {
                        tail.replacen(|c: char| c.is_ascii_digit(), n, 1)
                    } else {
                        format!("(lines {n} to {})", rng.gen_range(0..300))
                    };
                    lines[i] = format!("{}{new_tail}", &l[..k]);
                }
            }
        }
        3 => {
            // a data or start value made extreme
            let i = rng.gen_range(0..lines.len().max(1));
            if let Some(l) = lines.get_mut(i) {
                let words: Vec<&str> = l.split_whitespace().collect();
                if !words.is_empty() {
                    let k = rng.gen_range(0..words.len());
                    let v = [
                        "nan", "inf", "-inf", "1e308", "-1e308", "0", "1e-320", "", "x",
                    ]
                    .choose(rng)
                    .expect("values");
                    let mut w: Vec<String> = words.iter().map(|s| s.to_string()).collect();
                    w[k] = v.to_string();
                    *l = w.join("  ");
                }
            }
        }
        _ => {
            // truncated data
            let keep = rng.gen_range(0..=lines.len());
            lines.truncate(keep);
        }
    }
    lines.join("\n")
}

pub fn run(ctx: &mut Ctx) {
    let files = real_files();
    if files.is_empty() {
        eprintln!("nist: no .dat files found; target skipped");
        return;
    }
    let names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    let texts: Vec<String> = files.iter().map(|(_, t)| t.clone()).collect();
    let mut done = 0;
    while ctx.budget.more(done) {
        done += 1;
        let (_, base) = files.choose(&mut ctx.rng).expect("files");
        let mut text = base.clone();
        for _ in 0..ctx.rng.gen_range(1..3) {
            text = if ctx.rng.gen_bool(0.5) {
                nist_mutation(&text, &names, &mut ctx.rng)
            } else {
                mutate::mutate(&text, &texts, &mut ctx.rng).0
            };
        }
        let job = Job::Nist {
            text,
            seed: ctx.rng.gen(),
        };
        ctx.run_job(&job);
    }
}

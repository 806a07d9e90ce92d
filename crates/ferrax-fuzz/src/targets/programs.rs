//! Target `programs`: byte-level and structured mutations of program texts.
//!
//! The corpus starts with the hand-written seeds (`seeds`, every primitive) and the printed
//! forms of random well-typed programs (`gen`). Each input is one to four stacked mutations
//! (`mutate`) of a corpus entry; it runs through every stage in the worker. A mutated text
//! that is still accepted joins the corpus (up to a bound), so mutations compound into
//! well-typed programs nobody wrote.

use rand::seq::SliceRandom;
use rand::Rng;

use crate::job::Job;
use crate::supervisor::Outcome;
use crate::targets::Ctx;
use crate::{gen, mutate, seeds};

const MAX_CORPUS: usize = 3000;

pub fn run(ctx: &mut Ctx) {
    let mut corpus: Vec<String> = seeds::SEEDS.iter().map(|s| s.to_string()).collect();
    for i in 0..60 {
        corpus.push(gen::random_program(&mut ctx.rng, i % 2 == 0));
    }
    let mut done = 0;
    while ctx.budget.more(done) {
        done += 1;
        let base = corpus.choose(&mut ctx.rng).expect("a corpus").clone();
        let (text, _what) = mutate::mutate(&base, &corpus, &mut ctx.rng);
        let job = Job::Program {
            text: text.clone(),
            seed: ctx.rng.gen(),
            generated: false,
        };
        if let Outcome::Done(r) = ctx.run_job(&job) {
            if r.accepted && text.len() < 20_000 && text != base {
                if corpus.len() < MAX_CORPUS {
                    corpus.push(text);
                } else {
                    let k = ctx.rng.gen_range(seeds::SEEDS.len()..corpus.len());
                    corpus[k] = text;
                }
            }
        }
    }
}

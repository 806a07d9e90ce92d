//! Target `random`: random well-typed programs through every stage.
//!
//! Each input is a program from the generator (`gen`): every primitive, random shapes with
//! zero-sized dimensions, every dtype, special literal values. Half of them leave out the
//! primitives whose compiled kernels may differ in the last bits, so the compiled path is
//! compared with the reference evaluator bit for bit (NaN payloads and zero signs noted,
//! not failed). Generated texts must parse and print back to themselves.

use rand::Rng;

use crate::gen;
use crate::job::Job;
use crate::targets::Ctx;

pub fn run(ctx: &mut Ctx) {
    let mut done = 0;
    while ctx.budget.more(done) {
        done += 1;
        let exact = ctx.rng.gen_bool(0.5);
        let text = gen::random_program(&mut ctx.rng, exact);
        let job = Job::Program {
            text,
            seed: ctx.rng.gen(),
            generated: true,
        };
        ctx.run_job(&job);
    }
}

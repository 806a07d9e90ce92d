//! The columns of the coverage matrix (`docs/coverage.md`): which op-table rows each per-row
//! test claims to check, in one predicate that both the matrix (`tests/coverage.rs`) and the
//! per-row tests read, and a [`Tally`] with which those tests prove it. A test picks its rows
//! with [`Column::rows`], counts every check it completes with [`Tally::checked`], and ends
//! with [`Tally::assert_every_claimed_row_checked`], which fails naming each claimed row it
//! never checked (one skipped on every seed, say). So a ✓ in the matrix is observed, not
//! inferred: it stands for a row some test checked.

use std::collections::BTreeMap;

use super::{op_table, Gen, OpRow};
use ferrax::{Aval, DType, Linearity, Primitive};

/// One column of the coverage matrix: a property checked row by row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Column {
    /// Known values in f64 (`primitives.rs`).
    KnownF64,
    /// Known values in f32 (`primitives.rs`).
    KnownF32,
    /// The shape rule rejects bad operands with a precise message (`primitives.rs`).
    Rejects,
    /// print → parse → print is the identity and computes the same (`primitives.rs`).
    RoundTrip,
    /// jvp against finite differences; a zero tangent for an integer or bool output
    /// (`jvp.rs`).
    Jvp,
    /// linearize then apply equals jvp, and the linear program checks as linear (`jvp.rs`).
    Linearize,
    /// The primitive's own transpose rule ran in an adjoint check: the row's linear program
    /// applies the primitive (`reverse.rs`).
    TransposeRule,
    /// ⟨c, J t⟩ = ⟨Jᵀ c, t⟩ and transposing twice gives J back (`reverse.rs`).
    Adjoint,
    /// vmap equals the loop over slices, for every axis choice (`vmap.rs`).
    Vmap,
    /// A jit plan equals the reference evaluator, for every dtype (`jit.rs`).
    Jit,
    /// The random-program generator produces the primitive (`programs.rs`).
    RandomPrograms,
}

impl Column {
    /// Every column, in the matrix's order.
    pub const ALL: [Column; 11] = [
        Column::KnownF64,
        Column::KnownF32,
        Column::Rejects,
        Column::RoundTrip,
        Column::Jvp,
        Column::Linearize,
        Column::TransposeRule,
        Column::Adjoint,
        Column::Vmap,
        Column::Jit,
        Column::RandomPrograms,
    ];

    /// The column's heading in the matrix.
    pub fn header(self) -> &'static str {
        match self {
            Column::KnownF64 => "known values f64",
            Column::KnownF32 => "known values f32",
            Column::Rejects => "shape rule rejects",
            Column::RoundTrip => "text round trip",
            Column::Jvp => "jvp vs finite differences",
            Column::Linearize => "linearize = jvp, linear check",
            Column::TransposeRule => "transpose rule",
            Column::Adjoint => "adjoint identity, transpose twice",
            Column::Vmap => "vmap = loop, all axis choices",
            Column::Jit => "jit = reference, every dtype",
            Column::RandomPrograms => "random programs",
        }
    }

    /// Whether the column's test claims to check `row`.
    pub fn claims(self, row: &OpRow) -> bool {
        let has = |d: DType| row.dtypes.contains(&d);
        match self {
            Column::KnownF64 => has(DType::F64) && !row.known.is_empty(),
            Column::KnownF32 => has(DType::F32) && !row.known.is_empty(),
            Column::Rejects => !row.rejects.is_empty(),
            Column::RoundTrip | Column::Vmap | Column::Jit => true,
            // The derivative checks run in f64.
            Column::Jvp | Column::Linearize | Column::Adjoint => has(DType::F64),
            // A linear primitive with a float output: its tangent goes through the primitive
            // itself, so transposing the linear program runs its rule.
            // (A `while`'s linear program is a `while_linear`, whose own rows check that rule;
            // a custom rule's is the rule's equations, or a `custom_lin`, whose row checks it.)
            Column::TransposeRule => {
                Column::Adjoint.claims(row)
                    && row.prim.linearity() != Linearity::NotLinear
                    && !matches!(
                        row.prim,
                        Primitive::While { .. }
                            | Primitive::CustomJvp { .. }
                            | Primitive::CustomVjp { .. }
                    )
                    && out_avals(row, DType::F64)
                        .iter()
                        .any(|a| a.dtype.is_float())
            }
            // `select` is made by the comparison rows' generator, `cond`, `scan` and `while`
            // by the recipes' control steps. Not `while_linear`: linearization makes it, and
            // random programs are linearized, which a program applying it cannot be with
            // respect to its residuals (reverse over reverse, not built). Nor the custom
            // rules: the API builds them from closures (`custom_rules.rs` composes them). Nor
            // `named_map`, built from a closure too, whose collectives need the map
            // (`collectives.rs` composes it with every transformation).
            Column::RandomPrograms => {
                !matches!(row.gen, Gen::Skip)
                    || matches!(row.prim, Primitive::Select)
                    || (row.prim.is_control_flow()
                        && !matches!(
                            row.prim,
                            Primitive::WhileLinear { .. }
                                | Primitive::CustomJvp { .. }
                                | Primitive::CustomVjp { .. }
                                | Primitive::CustomLin { .. }
                                | Primitive::NamedMap { .. }
                        ))
            }
        }
    }

    /// The op-table rows the column claims, in table order.
    pub fn rows(self) -> Vec<OpRow> {
        op_table().into_iter().filter(|r| self.claims(r)).collect()
    }
}

/// The output avals of a row's example operands of dtype `d`.
fn out_avals(row: &OpRow, d: DType) -> Vec<Aval> {
    let avals = (row.avals)(d);
    let refs: Vec<&Aval> = avals.iter().collect();
    row.prim_for(d)
        .out_avals(&refs)
        .unwrap_or_else(|e| panic!("{}: {e}", row.name))
}

/// Counts, per column and row, the checks a per-row test completed.
pub struct Tally {
    columns: Vec<Column>,
    counts: BTreeMap<(Column, &'static str), usize>,
}

impl Tally {
    /// A tally for a test that checks `columns`.
    pub fn new(columns: &[Column]) -> Self {
        Tally {
            columns: columns.to_vec(),
            counts: BTreeMap::new(),
        }
    }

    /// Records one completed check of `row` for `column` (which must claim the row: a
    /// check the matrix does not show is a bug in the claim).
    pub fn checked(&mut self, column: Column, row: &OpRow) {
        assert!(
            self.columns.contains(&column),
            "{column:?} is not one of this tally's columns {:?}",
            self.columns
        );
        assert!(
            column.claims(row),
            "row {} was checked for `{}`, which does not claim it",
            row.name,
            column.header()
        );
        *self.counts.entry((column, row.name)).or_default() += 1;
    }

    /// How many checks of `row` completed for `column`.
    pub fn count(&self, column: Column, row: &str) -> usize {
        self.counts.get(&(column, row)).copied().unwrap_or(0)
    }

    /// Fails naming every row that one of the tally's columns claims but that no check
    /// completed for.
    pub fn assert_every_claimed_row_checked(&self) {
        let mut missing = vec![];
        for &column in &self.columns {
            let never: Vec<&str> = column
                .rows()
                .iter()
                .filter(|r| self.count(column, r.name) == 0)
                .map(|r| r.name)
                .collect();
            if !never.is_empty() {
                missing.push(format!("`{}`: {}", column.header(), never.join(", ")));
            }
        }
        assert!(
            missing.is_empty(),
            "rows the coverage matrix claims but no check completed for (skipped every \
             time?):\n  {}",
            missing.join("\n  ")
        );
    }
}

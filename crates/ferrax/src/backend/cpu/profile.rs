//! Profiling compiled plans: time per primitive (with parameters) on this thread.
//!
//! Off unless started with [`profile_start`]; while off, a plan pays one thread-local check
//! per step.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

thread_local! {
    static PROFILE: RefCell<Option<HashMap<String, (f64, usize)>>> = const { RefCell::new(None) };
}

/// A clock started for one step when profiling is on (`None` costs nothing to stop).
pub(crate) fn start() -> Option<Instant> {
    PROFILE.with(|p| p.borrow().is_some()).then(Instant::now)
}

/// Adds the time since `t0` to the entry `name` (built only when profiling is on).
pub(crate) fn stop(t0: Option<Instant>, name: impl FnOnce() -> String) {
    let Some(t0) = t0 else { return };
    let secs = t0.elapsed().as_secs_f64();
    PROFILE.with(|p| {
        if let Some(m) = p.borrow_mut().as_mut() {
            let e = m.entry(name()).or_insert((0.0, 0));
            e.0 += secs;
            e.1 += 1;
        }
    });
}

/// Starts recording the time plans spend per primitive (with parameters) on this thread.
pub fn profile_start() {
    PROFILE.with(|p| *p.borrow_mut() = Some(HashMap::new()));
}

/// Stops recording and returns `(primitive, seconds, steps)`, the most expensive first.
/// Fused groups appear as `fused[prim+prim+...]`.
pub fn profile_stop() -> Vec<(String, f64, usize)> {
    let m = PROFILE.with(|p| p.borrow_mut().take()).unwrap_or_default();
    let mut v: Vec<(String, f64, usize)> = m.into_iter().map(|(k, (t, n))| (k, t, n)).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v
}

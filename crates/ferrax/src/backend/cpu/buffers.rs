//! Buffer reuse for execution plans.
//!
//! Sits under the plans (`plan`): a `Plan` owns a [`BufferPool`]. While the
//! plan runs, the pool is installed as this thread's current pool; every intermediate whose
//! last use has passed and whose buffer nobody else holds is handed back to it, and the
//! kernels that need a fresh output buffer (fused elementwise groups, matrix products, sums
//! over leading axes, broadcasts) take one from it. When the run ends the pool goes back to
//! the plan, so the next call of the same plan starts with the buffers of the last one:
//! after the first call a plan's intermediates are made from recycled memory, and what a
//! plan keeps is bounded by what one of its runs frees.
//!
//! Only large float buffers are kept (small ones are cheap to allocate), and a buffer is
//! reused only for a request between half its capacity and its capacity, so a pool never
//! hands a huge block to a small value; among those, the most recently freed is taken (as
//! an allocator would), since it is the likeliest to be in cache. Outputs returned to the caller are never taken back.

use std::cell::RefCell;
use std::sync::Mutex;

use crate::ir::{Array, Data};

/// Buffers shorter than this many elements are not kept.
const MIN_LEN: usize = 4096;
/// At most this many buffers of each dtype are kept.
const MAX_KEPT: usize = 64;

/// Free float buffers, by dtype.
#[derive(Default)]
pub(crate) struct Pool {
    f32s: Vec<Vec<f32>>,
    f64s: Vec<Vec<f64>>,
}

impl Pool {
    fn len(&self) -> usize {
        self.f32s.len() + self.f64s.len()
    }
}

/// The pool a plan owns between runs. Cloning a plan gives the clone an empty pool.
#[derive(Default)]
pub(crate) struct BufferPool(Mutex<Pool>);

impl Clone for BufferPool {
    fn clone(&self) -> Self {
        BufferPool::default()
    }
}

impl std::fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kept = self.0.try_lock().map(|p| p.len()).unwrap_or(0);
        write!(f, "BufferPool({kept} kept)")
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Pool>> = const { RefCell::new(None) };
}

/// While alive, the plan's pool is this thread's current pool; dropping it gives the pool
/// back to the plan and restores whatever was current before (runs may nest when a rayon
/// worker steals a job that runs another plan).
pub(crate) struct Installed<'a> {
    home: &'a BufferPool,
    previous: Option<Pool>,
}

impl BufferPool {
    /// Makes this pool the thread's current one. If another thread is running the same
    /// plan and holds the pool, this run starts with an empty one.
    pub(crate) fn install(&self) -> Installed<'_> {
        let mine = self
            .0
            .try_lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default();
        let previous = CURRENT.with(|c| c.replace(Some(mine)));
        Installed {
            home: self,
            previous,
        }
    }

    /// How many buffers the pool holds now (for tests).
    pub(crate) fn kept(&self) -> usize {
        self.0.try_lock().map(|p| p.len()).unwrap_or(0)
    }
}

impl Drop for Installed<'_> {
    fn drop(&mut self) {
        let mine = CURRENT.with(|c| c.replace(self.previous.take()));
        if let (Some(mine), Ok(mut home)) = (mine, self.home.0.try_lock()) {
            // two concurrent runs of one plan: keep the fuller pool
            if mine.len() >= home.len() {
                *home = mine;
            }
        }
    }
}

/// Float element types the pool keeps.
pub(crate) trait Pooled: Copy + Default {
    fn list(pool: &mut Pool) -> &mut Vec<Vec<Self>>;
}

impl Pooled for f32 {
    fn list(pool: &mut Pool) -> &mut Vec<Vec<f32>> {
        &mut pool.f32s
    }
}

impl Pooled for f64 {
    fn list(pool: &mut Pool) -> &mut Vec<Vec<f64>> {
        &mut pool.f64s
    }
}

/// The allocator refused a buffer (the kernel that asked reports which op and aval).
pub(crate) struct Refused;

/// An empty vector with room for `n` elements: a recycled buffer when the current pool has
/// one that fits, a new allocation otherwise (`Refused` when the allocator refuses: sizes
/// come from user shapes, so this must not abort).
pub(crate) fn with_capacity<T: Pooled>(n: usize) -> Result<Vec<T>, Refused> {
    if let Some(mut v) = recycled(n) {
        v.clear();
        return Ok(v);
    }
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Refused)?;
    advise_huge_pages(&mut v);
    Ok(v)
}

/// A recycled buffer of `n` elements whose values are unspecified but initialized (as its
/// last user left it), when the current pool has one that fits: for kernels that overwrite
/// every element in place, with neither a pass of zeros first nor a scratch copy.
pub(crate) fn recycled_initialized<T: Pooled>(n: usize) -> Option<Vec<T>> {
    let mut v = recycled(n)?;
    // a pooled buffer was a whole value: its first `len` elements are initialized
    v.resize(n, T::default());
    Some(v)
}

/// The most recently freed pooled buffer that holds `n` elements and is not more than twice
/// too big (the last one freed is the likeliest to be still in cache), if any.
fn recycled<T: Pooled>(n: usize) -> Option<Vec<T>> {
    if n < MIN_LEN {
        return None;
    }
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        let list = T::list(c.as_mut()?);
        let k = (0..list.len())
            .rev()
            .find(|&k| list[k].capacity() >= n && list[k].capacity() <= 2 * n)?;
        Some(list.swap_remove(k))
    })
}

/// Bytes from which a fresh buffer is worth backing with transparent huge pages.
const HUGE_FROM: usize = 4 << 20;

/// Asks Linux to back a fresh, large (not yet touched) buffer with 2 MiB pages where the
/// system allows it (`madvise` mode of transparent huge pages): glibc maps such blocks
/// fresh from the OS on every allocation, and the first write then faults once per 4 KiB
/// page, which costs more than the kernel's write itself (2.4 against 7 GB/s measured for
/// a 128 MiB output). Advice only: if it is refused, nothing changes.
fn advise_huge_pages<T>(v: &mut Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        let bytes = v.capacity() * std::mem::size_of::<T>();
        if bytes < HUGE_FROM {
            return;
        }
        const PAGE: usize = 2 << 20;
        let start = v.as_mut_ptr() as usize;
        let first = start.next_multiple_of(PAGE);
        let end = (start + bytes) & !(PAGE - 1);
        if end > first {
            // SAFETY: [first, end) lies within the vector's allocation (rounded inward to
            // whole 2 MiB pages); MADV_HUGEPAGE changes how the pages are backed, never
            // their contents or validity, and its result is only advice.
            unsafe {
                libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = v;
}

/// `n` zeros, in a recycled buffer when one fits.
pub(crate) fn zeroed<T: Pooled>(n: usize) -> Result<Vec<T>, Refused> {
    let mut v = with_capacity(n)?;
    v.resize(n, T::default());
    Ok(v)
}

/// Hands a dead value's buffer to the current pool when nobody else holds it; otherwise
/// (or with no pool installed) just drops it.
pub(crate) fn recycle(a: Array) {
    let installed = CURRENT.with(|c| c.borrow().is_some());
    if !installed || !a.is_unique() || a.size() < MIN_LEN {
        return;
    }
    let data = a.into_data();
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        let Some(pool) = c.as_mut() else { return };
        match data {
            Data::F32(v) if pool.f32s.len() < MAX_KEPT => pool.f32s.push(v),
            Data::F64(v) if pool.f64s.len() < MAX_KEPT => pool.f64s.push(v),
            _ => {}
        }
    });
}

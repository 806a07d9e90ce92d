//! The communicator between processes: MPI (through the `mpi` crate), behind the `mpi`
//! feature.
//!
//! Sits beside `spmd`'s `ThreadComm`: a process started by `mpirun` is one member of a
//! named axis, and `api::mpi::MpiAxis::spmd` runs its program with this communicator
//! installed, so the plan's collectives reach the other processes. Like the threads, every
//! collective gathers all the members' operands and each member computes its result with
//! the same formulas, in member order: a process's result is bit for bit the one member
//! `rank` of an in-process `named_map` computes. (MPI's own reductions add in an order the
//! library picks, which would give up that equality.)
//!
//! A collective is two rounds of MPI's non-blocking `Iallgather`, each waited for with a
//! deadline, so that no member ever waits without bound:
//!
//! 1. a header from every member: what it brings (a value, a failure, or the end of its
//!    run) and how many bytes;
//! 2. the bytes themselves (`Iallgatherv`): the encoded value, or the failure's message.
//!
//! Every member sees the same headers, so every member takes the same decision: a value
//! whose shape or dtype differs from another member's, or a member that failed (its `fail`
//! takes part in the round the others are waiting in) makes every member return an error
//! naming the collective, the members and their values; a member that ended its run while
//! others are still in a collective means the members ran different programs, also an
//! error on all. A member that never arrives is waited for at most the deadline; the
//! buffers of a round abandoned that way are leaked on purpose (MPI may still write to them;
//! the run is over, and the process is expected to end).
//!
//! MPI is initialized for one thread (`MPI_THREAD_SINGLE` semantics with the calls made
//! from the initializing thread), so each call checks it is on that thread.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use ::mpi::ffi;

use super::spmd::Communicator;
use crate::ir::{Array, DType, Data, Error, Result};

/// What a member brings to a round.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Value = 1,
    Failure = 2,
    Done = 3,
}

impl Kind {
    fn of(code: u64) -> Option<Kind> {
        [Kind::Value, Kind::Failure, Kind::Done]
            .into_iter()
            .find(|k| *k as u64 == code)
    }
}

/// What a process's collectives moved, counted over its runs.
#[derive(Default, Debug)]
pub(crate) struct Traffic {
    pub(crate) collectives: AtomicU64,
    pub(crate) rounds: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    /// Set when a round was abandoned at its deadline: its requests may still be matched by
    /// a late process, so no later round on this communicator could be trusted.
    pub(crate) broken: Mutex<Option<Error>>,
}

/// The members of a named axis as the processes of an MPI communicator.
pub(crate) struct MpiComm {
    raw: ffi::MPI_Comm,
    traffic: Arc<Traffic>,
    size: usize,
    wait: Duration,
    thread: ThreadId,
    failed: Mutex<Option<Error>>,
}

// SAFETY: `raw` is a handle to a communicator that `api::mpi::MpiAxis` owns and keeps alive
// for as long as a run uses it; every MPI call made through it first checks that it runs on
// the thread that initialized MPI (`on_thread`), so MPI is never entered from two threads.
unsafe impl Send for MpiComm {}
unsafe impl Sync for MpiComm {}

impl MpiComm {
    /// A communicator over `raw`'s `size` processes, waiting at most `wait` per round; MPI
    /// calls only from `thread`; what it moves is added to `traffic`.
    pub(crate) fn new(
        raw: ffi::MPI_Comm,
        size: usize,
        wait: Duration,
        thread: ThreadId,
        traffic: Arc<Traffic>,
    ) -> Self {
        MpiComm {
            raw,
            traffic,
            size,
            wait,
            thread,
            failed: Mutex::new(None),
        }
    }

    fn on_thread(&self, what: &str) -> Result<()> {
        if std::thread::current().id() == self.thread {
            Ok(())
        } else {
            Err(Error::input(
                what,
                "MPI collectives run on the thread that initialized MPI: a collective over \
                 an MPI axis was reached on another thread (a map over another axis nested \
                 inside the MPI run cannot use the MPI axis)",
            ))
        }
    }

    fn set_failed(&self, e: &Error) {
        if let Ok(mut f) = self.failed.lock() {
            f.get_or_insert_with(|| e.clone());
        }
    }

    /// Waits for `request` until the deadline; `Ok(false)` if it did not complete.
    fn wait_for(&self, mut request: ffi::MPI_Request, what: &str) -> Result<bool> {
        // a bound too long to add to the clock is no bound
        let deadline = Instant::now().checked_add(self.wait);
        let mut polls = 0u32;
        loop {
            let mut done: c_int = 0;
            // SAFETY: `request` is a live request of this process; the status is ignored.
            let rc = unsafe { ffi::MPI_Test(&mut request, &mut done, ffi::RSMPI_STATUS_IGNORE) };
            if rc != 0 {
                return Err(Error::input(what, format!("MPI_Test failed (code {rc})")));
            }
            if done != 0 {
                return Ok(true);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
            // spin briefly (a collective among busy members completes in microseconds),
            // then sleep: on an oversubscribed machine the waiting member must yield its core
            polls += 1;
            if polls < 2000 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }

    /// The error of a round a member never reached.
    fn timed_out(&self, rank: usize, what: &str) -> Error {
        let e = Error::input(
            what,
            format!(
                "member {rank} waited {:?} at `{what}` for the other {} MPI processes: a \
                 process never reached it (it stopped, stalled, or ran another program)",
                self.wait,
                self.size - 1
            ),
        );
        self.set_failed(&e);
        if let Ok(mut b) = self.traffic.broken.lock() {
            b.get_or_insert_with(|| e.clone());
        }
        e
    }

    /// Every member's bytes, gathered into one buffer (`counts[i]` bytes from member `i`,
    /// in member order). `Ok(None)` if the round did not complete in time; its buffers are
    /// then leaked, since MPI may still write into them.
    fn gather(&self, send: Vec<u8>, counts: Vec<c_int>, what: &str) -> Result<Option<Vec<u8>>> {
        let mut displs = Vec::with_capacity(counts.len());
        let mut total: c_int = 0;
        for &c in &counts {
            displs.push(total);
            total = total.checked_add(c).ok_or_else(|| {
                Error::exhausted(
                    what,
                    "the members' values together exceed MPI's count limit (2 GiB) for one \
                     collective",
                )
            })?;
        }
        // never an empty buffer: an empty Vec's dangling pointer is 0x1, which Open MPI
        // reads as MPI_IN_PLACE
        let mut send = send;
        send.reserve(1);
        let mut recv = Vec::with_capacity(total as usize + 1);
        recv.resize(total as usize, 0u8);
        let mut request: ffi::MPI_Request = unsafe { ffi::RSMPI_REQUEST_NULL };
        // SAFETY: the buffers outlive the request: either it completes below before they are
        // touched again, or they are leaked (`mem::forget`) with it.
        let rc = unsafe {
            ffi::MPI_Iallgatherv(
                send.as_ptr() as *const c_void,
                send.len() as c_int,
                ffi::RSMPI_UINT8_T,
                recv.as_mut_ptr() as *mut c_void,
                counts.as_ptr(),
                displs.as_ptr(),
                ffi::RSMPI_UINT8_T,
                self.raw,
                &mut request,
            )
        };
        if rc != 0 {
            return Err(Error::input(
                what,
                format!("MPI_Iallgatherv failed (code {rc})"),
            ));
        }
        let waited = self.wait_for(request, what);
        if !matches!(waited, Ok(true)) {
            // the request may still be live: MPI may read `send`, `counts` and `displs` and
            // write `recv` later, so none of them may be freed
            std::mem::forget(send);
            std::mem::forget(recv);
            std::mem::forget(displs);
            std::mem::forget(counts);
            return waited.map(|_| None);
        }
        self.traffic.rounds.fetch_add(1, Relaxed);
        self.traffic
            .bytes_sent
            .fetch_add(send.len() as u64, Relaxed);
        self.traffic
            .bytes_received
            .fetch_add(recv.len() as u64, Relaxed);
        Ok(Some(recv))
    }

    /// One round: every member's kind and bytes, in member order.
    fn round(
        &self,
        rank: usize,
        kind: Kind,
        payload: Vec<u8>,
        what: &str,
    ) -> Result<Vec<(Kind, Vec<u8>)>> {
        self.on_thread(what)?;
        let Ok(len) = c_int::try_from(payload.len()) else {
            // the others must still hear of it: go through the round as a failure
            let e = Error::exhausted(
                what,
                format!(
                    "member {rank}'s value has {} bytes, over MPI's count limit (2 GiB)",
                    payload.len()
                ),
            );
            self.fail(rank, e.clone());
            return Err(e);
        };
        let mut header = Vec::with_capacity(16);
        header.extend((kind as u64).to_le_bytes());
        header.extend((len as u64).to_le_bytes());
        let Some(headers) = self.gather(header, vec![16; self.size], what)? else {
            return Err(self.timed_out(rank, what));
        };
        let mut kinds = Vec::with_capacity(self.size);
        let mut counts = Vec::with_capacity(self.size);
        for h in headers.chunks_exact(16) {
            let word = |i: usize| u64::from_le_bytes(h[i..i + 8].try_into().unwrap_or([0; 8]));
            let k = Kind::of(word(0))
                .ok_or_else(|| Error::internal(format!("an MPI header of kind {}", word(0))))?;
            kinds.push(k);
            counts.push(c_int::try_from(word(8)).map_err(|_| {
                Error::internal(format!("an MPI header announcing {} bytes", word(8)))
            })?);
        }
        let Some(bytes) = self.gather(payload, counts.clone(), what)? else {
            return Err(self.timed_out(rank, what));
        };
        let mut out = Vec::with_capacity(self.size);
        let mut at = 0usize;
        for (k, c) in kinds.into_iter().zip(counts) {
            let end = at + c as usize;
            out.push((k, bytes[at..end].to_vec()));
            at = end;
        }
        Ok(out)
    }

    /// The error every member returns when member `who` failed with `message`.
    fn failed_member(&self, rank: usize, who: usize, what: &str, message: &[u8]) -> Error {
        let e = Error::input(
            what,
            format!(
                "member {rank} stopped at `{what}`: MPI process {who} failed ({})",
                String::from_utf8_lossy(message)
            ),
        );
        self.set_failed(&e);
        e
    }
}

impl Communicator for MpiComm {
    fn size(&self) -> usize {
        self.size
    }

    fn all_gather(&self, rank: usize, x: Array, what: &str) -> Result<Vec<Array>> {
        if let Some(e) = self.failure() {
            return Err(e);
        }
        self.traffic.collectives.fetch_add(1, Relaxed);
        let all = self.round(rank, Kind::Value, encode(&x), what)?;
        if let Some((who, (_, msg))) = all.iter().enumerate().find(|(_, m)| m.0 == Kind::Failure) {
            return Err(self.failed_member(rank, who, what, msg));
        }
        if let Some(who) = all.iter().position(|m| m.0 == Kind::Done) {
            let e = Error::input(
                what,
                format!(
                    "member {rank} is at `{what}` while MPI process {who} has finished its \
                     run: the processes ran different programs"
                ),
            );
            self.set_failed(&e);
            return Err(e);
        }
        let values = all
            .iter()
            .map(|(_, b)| decode(b, what))
            .collect::<Result<Vec<_>>>()?;
        let mine = x.aval();
        if values.iter().any(|v| v.aval() != mine) {
            let avals: Vec<String> = values
                .iter()
                .enumerate()
                .map(|(i, v)| format!("process {i}: {}", v.aval()))
                .collect();
            let e = Error::shape(
                what,
                format!(
                    "the MPI processes gave operands of different shapes or dtypes ({})",
                    avals.join(", ")
                ),
            );
            self.set_failed(&e);
            return Err(e);
        }
        Ok(values)
    }

    fn fail(&self, rank: usize, err: Error) {
        if self.failure().is_some() {
            // the others already know: the failure came through a round
            return;
        }
        self.set_failed(&err);
        // meet the others in the round they wait in (a collective or their `finish`)
        let _ = self.round(
            rank,
            Kind::Failure,
            err.to_string().into_bytes(),
            "named_map",
        );
    }

    fn failure(&self) -> Option<Error> {
        self.failed.lock().ok().and_then(|f| f.clone())
    }

    fn finish(&self, rank: usize) -> Result<()> {
        if let Some(e) = self.failure() {
            return Err(e);
        }
        let what = "the end of the run";
        let all = self.round(rank, Kind::Done, vec![], what)?;
        if let Some((who, (_, msg))) = all.iter().enumerate().find(|(_, m)| m.0 == Kind::Failure) {
            return Err(self.failed_member(rank, who, what, msg));
        }
        if let Some(who) = all.iter().position(|m| m.0 == Kind::Value) {
            let e = Error::input(
                "named_map",
                format!(
                    "member {rank} finished its run while MPI process {who} is at a \
                     collective: the processes ran different programs"
                ),
            );
            self.set_failed(&e);
            return Err(e);
        }
        Ok(())
    }
}

fn dtype_code(d: DType) -> u8 {
    DType::ALL.iter().position(|x| *x == d).unwrap_or(0) as u8
}

/// A value as bytes: dtype, rank, dimensions, then the elements, little-endian.
fn encode(x: &Array) -> Vec<u8> {
    let mut b = Vec::with_capacity(16 + 8 * x.ndim() + x.bytes());
    b.push(dtype_code(x.dtype()));
    b.extend((x.ndim() as u32).to_le_bytes());
    for &d in x.shape() {
        b.extend((d as u64).to_le_bytes());
    }
    match x.data() {
        Data::F32(v) => v.iter().for_each(|e| b.extend(e.to_le_bytes())),
        Data::F64(v) => v.iter().for_each(|e| b.extend(e.to_le_bytes())),
        Data::I32(v) => v.iter().for_each(|e| b.extend(e.to_le_bytes())),
        Data::I64(v) => v.iter().for_each(|e| b.extend(e.to_le_bytes())),
        Data::Bool(v) => b.extend(v.iter().map(|&e| e as u8)),
    }
    b
}

/// The value `encode` wrote; an error naming `what` if the bytes do not hold one.
fn decode(b: &[u8], what: &str) -> Result<Array> {
    let bad = || Error::internal(format!("a malformed value arrived over MPI at `{what}`"));
    let (&code, rest) = b.split_first().ok_or_else(bad)?;
    let dtype = *DType::ALL.get(code as usize).ok_or_else(bad)?;
    let ndim = u32::from_le_bytes(
        rest.get(..4)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?,
    );
    let mut at = 4;
    let mut shape = Vec::new();
    for _ in 0..ndim {
        let d = rest.get(at..at + 8).ok_or_else(bad)?;
        shape.push(
            usize::try_from(u64::from_le_bytes(d.try_into().map_err(|_| bad())?))
                .map_err(|_| bad())?,
        );
        at += 8;
    }
    let body = &rest[at..];
    let n = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(bad)?;
    let width = match dtype {
        DType::F32 | DType::I32 => 4,
        DType::F64 | DType::I64 => 8,
        DType::Bool => 1,
    };
    if n.checked_mul(width) != Some(body.len()) {
        return Err(bad());
    }
    let data = match dtype {
        DType::F32 => Data::F32(
            body.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        DType::I32 => Data::I32(
            body.chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        DType::F64 => Data::F64(
            body.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
        ),
        DType::I64 => Data::I64(
            body.chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
        ),
        DType::Bool => Data::Bool(body.iter().map(|&e| e != 0).collect()),
    };
    Array::from_data(data, &shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_the_wire_format() {
        for a in [
            Array::from_vec(vec![1.5f64, -0.0, f64::NAN, 3.0], &[2, 2]).unwrap(),
            Array::from_vec(vec![1.5f32, 2.5, 7.0], &[3]).unwrap(),
            Array::from_vec(vec![-3i32, 4], &[2, 1]).unwrap(),
            Array::from_vec(vec![i64::MIN], &[]).unwrap(),
            Array::from_vec(vec![true, false, true], &[3]).unwrap(),
            Array::from_vec(Vec::<f64>::new(), &[0, 4]).unwrap(),
        ] {
            let back = decode(&encode(&a), "test").unwrap();
            assert_eq!(back.aval(), a.aval());
            assert_eq!(encode(&back), encode(&a)); // bits, NaN payloads included
        }
        let mut cut = encode(&Array::from_slice(&[1.0f64, 2.0]));
        cut.pop();
        assert!(decode(&cut, "psum")
            .unwrap_err()
            .to_string()
            .contains("psum"));
        assert!(decode(&[9], "psum").is_err());
    }
}

//! Fuzzing support shared by the crates' fuzz tests (dm-binlog's binlog decoders, dm-task's
//! config parsers): how many cases a run makes and from which seed (`DM_FUZZ_CASES`, 10^5 by
//! default across every fuzz test; `DM_FUZZ_SEED`), a small deterministic random source, the
//! allocation bound a case must stay under, and a counting global allocator that measures the
//! peak a call holds.
//!
//! A test binary installs the allocator itself:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: dm_testkit::fuzz::CountingAllocator = dm_testkit::fuzz::CountingAllocator;
//! ```
//!
//! The allocator counts per thread (nextest runs each test in its own process, `cargo test`
//! runs tests on threads of one process: per-thread counts serve both). A block freed on
//! another thread than the one that allocated it makes the counts of both threads
//! approximate; the decoders measured allocate and free on the calling thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts every allocation of the test binary, then hands it to the system allocator.
pub struct CountingAllocator;

thread_local! {
    // Const-initialised cells without destructors: usable from the allocator at any time,
    // including while a thread is being torn down.
    static HELD: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn grow(bytes: usize) {
    let _ = HELD.try_with(|held| {
        let now = held.get().saturating_add(bytes as isize);
        held.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn shrink(bytes: usize) {
    let _ = HELD.try_with(|held| held.set(held.get().saturating_sub(bytes as isize)));
}

// SAFETY (of the `unsafe` below): every method forwards to `System` with the caller's own
// arguments, unchanged; the counting touches only const-initialised thread-locals, which never
// allocate.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (see above).
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            grow(layout.size());
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (see above).
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            grow(layout.size());
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        shrink(layout.size());
        // SAFETY: forwarded as is (see above).
        unsafe { System.dealloc(pointer, layout) }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is (see above).
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            // While moving, both blocks exist.
            grow(new_size);
            shrink(layout.size());
        }
        moved
    }
}

/// Runs `work` and returns its result with the peak number of bytes it held at once on this
/// thread (above what the thread held before).
pub fn peak_of<T>(work: impl FnOnce() -> T) -> (T, usize) {
    let before = HELD.with(Cell::get);
    PEAK.with(|peak| peak.set(before));
    let result = work();
    let peak = PEAK.with(Cell::get);
    (result, peak.saturating_sub(before).max(0) as usize)
}

/// The total number of fuzz cases of one run, across every crate's fuzz tests
/// (`DM_FUZZ_CASES`, 100,000 by default).
pub fn total_cases() -> u64 {
    std::env::var("DM_FUZZ_CASES")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100_000)
}

/// A test's share of [`total_cases`] (at least one case).
pub fn cases(share: f64) -> u64 {
    ((total_cases() as f64 * share).round() as u64).max(1)
}

/// The seed of a run (`DM_FUZZ_SEED`; fixed by default, so runs repeat).
pub fn seed() -> u64 {
    std::env::var("DM_FUZZ_SEED")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0x5eed_f00d)
}

/// The most a case may hold at once: a fixed allowance (a reader's buffers, a zstd window of
/// the content claimed up to MySQL's default-level window) plus a multiple of the input for
/// the decoded values.
pub fn allocation_bound(input: usize) -> usize {
    (16 << 20) + 64 * input
}

/// SplitMix64: a small deterministic random source.
pub struct Random(u64);

impl Random {
    /// A source starting at `seed`.
    pub fn new(seed: u64) -> Self {
        Random(seed)
    }

    /// The next number.
    pub fn number(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: usize) -> usize {
        if bound == 0 {
            0
        } else {
            (self.number() % bound as u64) as usize
        }
    }

    /// True once in `one_in` times.
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    /// One of `items` (which must not be empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

//! A counting global allocator for this test binary: the fuzz tests measure the peak of the
//! bytes a decoding call holds at once, per thread (nextest runs each test in its own process,
//! `cargo test` runs tests on threads of one process: per-thread counts serve both).
//!
//! A block freed on another thread than the one that allocated it makes the counts of both
//! threads approximate; the decoders measured here allocate and free on the calling thread.

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

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Runs `work` and returns its result with the peak number of bytes it held at once on this
/// thread (above what the thread held before).
pub fn peak_of<T>(work: impl FnOnce() -> T) -> (T, usize) {
    let before = HELD.with(Cell::get);
    PEAK.with(|peak| peak.set(before));
    let result = work();
    let peak = PEAK.with(Cell::get);
    (result, peak.saturating_sub(before).max(0) as usize)
}

#[test]
fn the_counter_sees_allocations() {
    let (_, peak) = peak_of(|| vec![0u8; 3 << 20].len());
    assert!(peak >= 3 << 20, "{peak}");
    let (_, peak) = peak_of(|| 1 + 1);
    assert!(peak < 1 << 10, "{peak}");
}

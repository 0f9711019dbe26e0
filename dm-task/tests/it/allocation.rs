//! The counting allocator of this test binary (`dm_testkit::fuzz`): the fuzz tests measure
//! the peak of the bytes a call holds at once.

pub use dm_testkit::fuzz::peak_of;

#[global_allocator]
static ALLOCATOR: dm_testkit::fuzz::CountingAllocator = dm_testkit::fuzz::CountingAllocator;

#[test]
fn the_counter_sees_allocations() {
    let (_, peak) = peak_of(|| vec![0u8; 3 << 20].len());
    assert!(peak >= 3 << 20, "{peak}");
    let (_, peak) = peak_of(|| 1 + 1);
    assert!(peak < 1 << 10, "{peak}");
}

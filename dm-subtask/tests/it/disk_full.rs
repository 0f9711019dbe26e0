//! A `full` task whose dump directory is on a full file system (a 4 MiB tmpfs the test mounts,
//! filled but for 192 KiB): the subtask pauses with DM-15010 naming the directory in its
//! status, tries again with its backoff and pauses again while the disk is still full, leaves
//! no torn chunk file (no `.partial`, no `metadata.json`, every chunk file complete); once
//! space is freed it resumes by itself, dumps and loads, and the downstream ends equal to the
//! upstream. The recovery time (space freed -> load finished) is printed for the README's
//! reliability table.

use std::path::Path;
use std::time::{Duration, Instant};

use dm_subtask::{AutoResume, Stage, Subtask, SubtaskStatus, Unit};
use dm_testkit::{TmpfsMount, or_skip};

use crate::{servers, shop, source_file, spec, task_file, wait_equal, wait_status};

/// The subtask's current error, when it is paused by one.
fn paused_error(status: &SubtaskStatus) -> Option<&dm_subtask::ProcessError> {
    if status.stage != Stage::Paused {
        return None;
    }
    status.result.as_ref()?.errors.first()
}

/// Chunk files in `directory`: none being written (`.partial`), and the dump not complete.
fn assert_no_torn_file(directory: &Path) {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return; // nothing was written at all
    };
    for entry in entries {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        assert!(
            !name.ends_with(".partial"),
            "a torn chunk file is left: {name}"
        );
        assert_ne!(name, "metadata.json", "the dump is not complete");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_pauses_the_dump_and_it_resumes_by_itself_after_space_is_freed() {
    let mount = or_skip!(TmpfsMount::new(4 << 20));
    let (upstream, downstream) = servers("subtask-disk-full").await;
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    // About 700 KB of INSERT statements.
    upstream.execute(&shop(25_000)).await.expect("data");
    mount.fill(192 << 10).expect("filler");

    let sections = format!(
        "mydumpers:\n  global:\n    threads: 2\n    rows: 2000\nloaders:\n  global:\n    pool-size: 2\n    dir: {}\n",
        mount.path().join("dump").display()
    );
    let task = task_file("sub_disk_full", "full", &downstream, &sections).replace(
        "    syncer-config-name: global\n",
        "    syncer-config-name: global\n    mydumper-config-name: global\n    loader-config-name: global\n",
    );
    let mut spec = spec(&task, &source_file(&upstream));
    // A fixed backoff, so that the checks below fall between two attempts and the recovery
    // time is bounded by it.
    spec.auto_resume = AutoResume {
        backoff_min: Duration::from_secs(2),
        backoff_max: Duration::from_secs(2),
        jitter: false,
        ..AutoResume::default()
    };
    let directory = mount.path().join("dump.sub_disk_full");
    let subtask = Subtask::new(spec).spawn();

    let first = wait_status(&subtask, "paused by the full disk", |status| {
        paused_error(status).is_some()
    })
    .await;
    let error = paused_error(&first).expect("an error");
    // A full dump directory is the dump's error, whatever the loader was doing beside it.
    assert_eq!(first.unit, Some(Unit::Dump), "{first:#?}");
    assert_eq!(error.unit, Unit::Dump, "{error:#?}");
    assert_eq!(error.code.to_string(), "DM-15010", "{error:#?}");
    assert!(
        error.message.contains(&directory.display().to_string()),
        "the error names the dump directory: {error:#?}"
    );
    assert!(error.message.contains("bytes are free"), "{error:#?}");
    assert_eq!(error.class, dm_core::ErrorClass::Transient);
    assert!(error.workaround.contains("free space"), "{error:#?}");
    assert_no_torn_file(&directory);

    // Still full: the auto-resume dumps again and pauses again, leaving no torn file.
    let again = wait_status(&subtask, "paused again by the full disk", |status| {
        status.auto_resume.total_attempts >= 2 && paused_error(status).is_some()
    })
    .await;
    assert_eq!(
        paused_error(&again).map(|error| error.code.to_string()),
        Some("DM-15010".to_owned())
    );
    assert_no_torn_file(&directory);

    mount.free_filler().expect("free the filler");
    let freed = Instant::now();
    let finished = wait_status(&subtask, "finished after space was freed", |status| {
        status.stage == Stage::Finished
    })
    .await;
    let recovery = freed.elapsed();
    assert!(finished.result.is_none(), "{finished:#?}");
    wait_equal(&upstream, &downstream, "shop", &subtask).await;
    let status = subtask.wait().await.expect("the subtask ends");
    assert_eq!(status.stage, Stage::Finished);
    eprintln!(
        "dump disk full: space freed -> full task finished in {recovery:?} (auto-resume backoff 2 s, {} auto-resumes in all)",
        status.auto_resume.total_attempts
    );
}

//! The full migration, wired: dump to a directory, load a directory, or dump straight into
//! the loader; each returns where the syncer continues ([`Handoff`]).
//!
//! ```text
//! dump_to_directory: dumper --DumpItem--> write_directory
//! load_directory:    read_directory --DumpItem--> loader          (resumes: skips loaded chunks)
//! migrate_stream:    dumper --DumpItem--> loader, no disk         (resumes: stored plan, new
//!                    snapshot, hand-off from the first snapshot in safe mode until the last)
//! ```
//!
//! A load failing with a transient error (deadlock, lost connection) is resumed up to five
//! times: resuming loads only the chunks not yet marked, so a retry never loads one twice.
//!
//! Invariant: a load marked finished is not repeated: a restarted task goes straight to the
//! hand-off it stored. Of two errors (the producer's and the loader's), the one that caused
//! the other is returned.

use std::path::Path;
use std::sync::Arc;

use dm_core::Flavor;
use dm_core::sink::LoadSinkFactory;
use dm_task::filter::BlockAllowList;
use tokio::sync::mpsc;

use crate::directory::{Compression, DumpDirectory, read_directory, write_directory};
use crate::dumper::{DumpOptions, ResumePlan, dump};
use crate::error::DumpError;
use crate::loader::{Handoff, LoadStage, Loader};
use crate::progress::Progress;

/// The origin recorded for a direct stream.
pub const STREAM_ORIGIN: &str = "stream";

fn first_cause(
    producer: Result<(), DumpError>,
    consumer: Result<Handoff, DumpError>,
) -> Result<Handoff, DumpError> {
    match (producer, consumer) {
        (Err(error), Err(DumpError::Interrupted(_))) | (Err(error), Ok(_)) => Err(error),
        (_, consumer) => consumer,
    }
}

/// Dumps the upstream into `directory` (which must not hold a complete dump).
pub async fn dump_to_directory(
    options: &DumpOptions,
    filter: &BlockAllowList,
    directory: &Path,
    compression: Compression,
    progress: Arc<Progress>,
) -> Result<DumpDirectory, DumpError> {
    let (sender, receiver) = mpsc::channel(options.snapshot.connections.max(1));
    let fresh = ResumePlan::default();
    let (dumped, written) = tokio::join!(
        dump(options, filter, &fresh, sender, progress),
        write_directory(directory, compression, receiver)
    );
    match (dumped, written) {
        (Err(DumpError::Interrupted(_)), Err(error)) | (Ok(_), Err(error)) => Err(error),
        (Err(error), _) => Err(error),
        (Ok(_), written) => written,
    }
}

/// Loads a dump directory; a load of it interrupted earlier continues with the chunks not yet
/// loaded, and a finished one is not repeated.
pub async fn load_directory<Sinks: LoadSinkFactory>(
    loader: &Loader<Sinks>,
    pool_size: usize,
    directory: &Path,
    progress: Arc<Progress>,
) -> Result<Handoff, DumpError> {
    let dump = read_directory(directory)?;
    let stored = loader.stored(dump.header.flavor).await?;
    if let Some(stored) = &stored
        && stored.stage == LoadStage::Finished
    {
        return Ok(Handoff::new(
            stored.location.clone(),
            stored.exit_point.clone(),
        ));
    }
    let mut finished = stored
        .map(|stored| stored.resume.finished)
        .unwrap_or_default();
    let origin = directory.display().to_string();
    let mut retries = load_retries();
    loop {
        let (sender, receiver) = mpsc::channel(pool_size.max(1));
        let (streamed, loaded) = tokio::join!(
            dump.stream(&finished, sender),
            loader.load(&origin, receiver, progress.clone())
        );
        match first_cause(streamed, loaded) {
            Ok(handoff) => {
                loader.mark_finished().await?;
                return Ok(handoff);
            }
            Err(error) if again(&mut retries, &error).await => {
                finished = loader
                    .stored(dump.header.flavor)
                    .await?
                    .map(|stored| stored.resume.finished)
                    .unwrap_or_default();
            }
            Err(error) => return Err(error),
        }
    }
}

/// Attempts of a load that fails with transient errors (a deadlock, a lost connection): each
/// resumes with the chunks not yet loaded, so retrying is always safe.
const ATTEMPTS: u32 = 5;

/// The retries of a load: 1 s, 2 s, 4 s, 8 s between the [`ATTEMPTS`].
fn load_retries() -> dm_core::Retry {
    let backoff = dm_core::Backoff::doubling(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(8),
    );
    dm_core::Retry::new(backoff).at_most(ATTEMPTS - 1)
}

/// Whether to try again after `error` (waits before saying yes; logs the retry, which handles
/// the error; an error returned is logged by its handler).
async fn again(retries: &mut dm_core::Retry, error: &DumpError) -> bool {
    use dm_core::ClassifiedError;
    let Some(delay) = retries.next_delay(error.class()) else {
        return false;
    };
    tracing::warn!(
        error = %error,
        code = %error.code(),
        attempt = retries.retries() + 2,
        delay = ?delay,
        "load failed with a transient error, resuming with the chunks not yet loaded"
    );
    tokio::time::sleep(delay).await;
    retries.waited();
    true
}

/// Dumps straight into the loader, with no files. An interrupted stream load resumes with a new
/// snapshot for the chunks not yet loaded; the hand-off then replays from the first snapshot
/// idempotently until the newest one.
pub async fn migrate_stream<Sinks: LoadSinkFactory>(
    options: &DumpOptions,
    filter: &BlockAllowList,
    loader: &Loader<Sinks>,
    dump_progress: Arc<Progress>,
    load_progress: Arc<Progress>,
) -> Result<Handoff, DumpError> {
    let flavor: Flavor = options.snapshot.flavor;
    let stored = loader.stored(flavor).await?;
    if let Some(stored) = &stored
        && stored.stage == LoadStage::Finished
    {
        return Ok(Handoff::new(
            stored.location.clone(),
            stored.exit_point.clone(),
        ));
    }
    let mut resume = stored.map(|stored| stored.resume).unwrap_or_default();
    let mut retries = load_retries();
    loop {
        let (sender, receiver) = mpsc::channel(options.snapshot.connections.max(1));
        let (dumped, loaded) = tokio::join!(
            dump(options, filter, &resume, sender, dump_progress.clone()),
            loader.load(STREAM_ORIGIN, receiver, load_progress.clone())
        );
        match first_cause(dumped.map(|_| ()), loaded) {
            Ok(handoff) => {
                loader.mark_finished().await?;
                return Ok(handoff);
            }
            Err(error) if again(&mut retries, &error).await => {
                resume = loader
                    .stored(flavor)
                    .await?
                    .map(|stored| stored.resume)
                    .unwrap_or_default();
            }
            Err(error) => return Err(error),
        }
    }
}

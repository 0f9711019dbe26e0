//! The progress bar of a subtask's dump and load (`quickstart`, `dm-syncer`): it follows the
//! subtask's status until the sync unit starts, the subtask ends, or an error pauses it that
//! does not resume by itself. Include it with `#[path = "shared/bar.rs"] mod bar;`.
//!
//! ```text
//!   dump  [=======>                ]  35.0%  21000 rows, 1.2 MiB at 3.4 MiB/s, chunks 3/9, ETA 1 s
//!   done  [========================] 100.0%  60012 rows in 9 chunks, dumped and loaded in 0.5 s
//! ```

use std::time::{Duration, Instant};

use dm::core::ErrorClass;
use dm::subtask::{Stage, SubtaskHandle, SubtaskStatus, Unit};
use indicatif::{ProgressBar, ProgressStyle};

/// A bar for the dump and the load (hidden when stderr is not a terminal).
pub struct FullProgressBar {
    bar: ProgressBar,
    started: Instant,
    /// The auto-resume attempts already told (each pause by a transient error is one line).
    announced: std::cell::Cell<u32>,
}

impl FullProgressBar {
    /// A bar, started now.
    pub fn new() -> FullProgressBar {
        let bar = ProgressBar::new(1000);
        if let Ok(style) = ProgressStyle::with_template("  {prefix:<5} [{bar:40}] {msg}") {
            bar.set_style(style.progress_chars("=> "));
        }
        FullProgressBar {
            bar,
            started: Instant::now(),
            announced: std::cell::Cell::new(0),
        }
    }

    /// Shows the dump's and load's progress until the sync unit starts or the subtask stops,
    /// finishes or is paused by an error that needs the user; returns that status.
    pub async fn follow(&self, subtask: &SubtaskHandle) -> SubtaskStatus {
        loop {
            let status = subtask.status();
            self.show(&status);
            if past_the_full_units(&status) {
                return status;
            }
            // Cancel-safe: `wait_for` waits on a clone of the status receiver.
            let waited = subtask.wait_for(past_the_full_units);
            match tokio::time::timeout(Duration::from_millis(100), waited).await {
                // Time to show the progress again.
                Err(_) => {}
                Ok(Ok(status)) => {
                    self.show(&status);
                    return status;
                }
                // The subtask ended.
                Ok(Err(_)) => return subtask.status(),
            }
        }
    }

    fn show(&self, status: &SubtaskStatus) {
        if status.auto_resume.total_attempts > self.announced.get() {
            self.announced.set(status.auto_resume.total_attempts);
            if let Some(line) = auto_resume_line(status) {
                // Printed whether or not the bar is shown (no terminal: hidden).
                self.bar.suspend(|| eprintln!("{line}"));
            }
        }
        let (prefix, progress) = match (status.unit, &status.dump, &status.load) {
            (Some(Unit::Load), _, Some(load)) => ("load", &load.progress),
            (_, Some(dump), _) => ("dump", dump),
            (_, None, Some(load)) => ("load", &load.progress),
            _ => return,
        };
        self.bar.set_prefix(prefix);
        self.bar.set_position((progress.percent * 10.0) as u64);
        self.bar.set_message(format!(
            "{:>5.1}%  {} rows, {:.1} MiB at {:.1} MiB/s, chunks {}/{}, ETA {}",
            progress.percent,
            progress.rows,
            progress.bytes as f64 / 1048576.0,
            progress.bytes_per_second as f64 / 1048576.0,
            progress.chunks_done,
            progress.chunks_total,
            progress
                .eta_seconds
                .map_or("-".into(), |seconds| format!("{seconds} s"))
        ));
    }

    /// Ends the bar with the load's summary (printed as a line when there is no terminal).
    pub fn finish(&self, status: &SubtaskStatus) {
        let summary = match &status.load {
            Some(load) if load.progress.chunks_total == 0 => {
                "nothing left to load (an earlier run of the task loaded it, or there is no table)"
                    .to_owned()
            }
            Some(load) => format!(
                "{} rows in {} chunks, dumped and loaded in {:.1} s",
                load.progress.rows,
                load.progress.chunks_total,
                self.started.elapsed().as_secs_f64()
            ),
            None => match &status.dump {
                Some(dump) => format!(
                    "{} rows in {} chunks, dumped in {:.1} s",
                    dump.rows,
                    dump.chunks_total,
                    self.started.elapsed().as_secs_f64()
                ),
                None => return,
            },
        };
        self.bar.set_prefix("done");
        self.bar.set_position(1000);
        if self.bar.is_hidden() {
            println!("  {summary}");
        }
        self.bar.finish_with_message(summary);
    }

    /// Leaves the bar where it is (an error stopped the dump or load).
    pub fn abandon(&self) {
        self.bar.abandon();
    }
}

/// The dump and load are over for now: the sync unit runs, the subtask ended, or an error
/// that does not resume by itself paused it.
fn past_the_full_units(status: &SubtaskStatus) -> bool {
    status.unit == Some(Unit::Sync)
        || matches!(status.stage, Stage::Stopped | Stage::Finished)
        || (status.stage == Stage::Paused
            && status
                .error()
                .is_none_or(|error| error.class != ErrorClass::Transient))
}

/// The line that tells a pause by a transient error and when it resumes, while it waits.
pub fn auto_resume_line(status: &SubtaskStatus) -> Option<String> {
    if status.stage != Stage::Paused {
        return None;
    }
    let resume = &status.auto_resume;
    let (error, backoff) = (resume.last_error.as_ref()?, resume.backoff?);
    Some(format!(
        "paused by a transient error ({}): {}; resuming in {:.1} s (attempt {})",
        error.code,
        error.message,
        backoff.as_secs_f64(),
        resume.attempts
    ))
}

//! The examples' logs: the libraries' `tracing` events on stderr, filtered by `RUST_LOG`
//! (`RUST_LOG=info`, `RUST_LOG=dm_binlog=debug,dm_subtask=info`, ...).
//!
//! Without `RUST_LOG` nothing is logged: each example prints its own progress lines and one
//! report per error, and a log line would say the same thing twice.

use tracing_subscriber::EnvFilter;

/// Installs the fmt subscriber on stderr, filtered by `RUST_LOG` (off when unset; a filter
/// that does not parse is named on stderr and ignored).
pub fn init() {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(&directives)
            .unwrap_or_else(|error| {
                eprintln!("RUST_LOG ignored: {error}");
                EnvFilter::new("off")
            }),
        _ => EnvFilter::new("off"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

//! Server processes owned by a test: find the binary, pick a port, start, stop, clean up.
//!
//! Every server runs in its own temp directory and process group. It is stopped by PID when its
//! handle drops (on panic too, since unwinding runs `Drop`), and its directory is removed. A
//! small `sh` watchdog per server covers the case `Drop` cannot: when the test process itself is
//! killed (`kill -9`, a test-runner timeout), the watchdog's stdin pipe closes, and it kills the
//! server and removes the directory. So no server outlives the test that started it.

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use crate::error::TestkitError;

/// Finds an executable: the environment variable `override_variable` if set, else `name` on
/// `PATH`, else in `/usr/sbin` and `/usr/local/sbin` (where Debian puts `mariadbd`).
pub fn find_binary(name: &str, override_variable: &str) -> Result<PathBuf, TestkitError> {
    if let Some(path) = std::env::var_os(override_variable) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(TestkitError::MissingBinary {
                binary: path.display().to_string(),
                hint: format!("{override_variable} points to a file that does not exist"),
            })
        };
    }
    let path_variable = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_variable)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|directory| directory.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| TestkitError::MissingBinary {
            binary: name.to_owned(),
            hint: format!(
                "install it (the README's set-up command does: `bash scripts/setup.sh`) or set {override_variable}"
            ),
        })
}

/// Checks that a binary given as an explicit path exists.
pub fn require_file(path: &Path, what: &str) -> Result<PathBuf, TestkitError> {
    if path.is_file() {
        Ok(path.to_owned())
    } else {
        Err(TestkitError::MissingBinary {
            binary: path.display().to_string(),
            hint: format!("no {what} at this path"),
        })
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now. Another process may take it
/// before the server binds it; callers retry the start with a new port when the bind fails.
pub fn free_port() -> Result<u16, TestkitError> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(|source| TestkitError::Io {
        action: "find a free port on 127.0.0.1".into(),
        source,
    })?;
    listener
        .local_addr()
        .map(|address| address.port())
        .map_err(|source| TestkitError::Io {
            action: "read the port of a bound socket".into(),
            source,
        })
}

/// Whether this process runs as root (servers then need `--user=root`).
pub fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|metadata| metadata.uid() == 0)
}

/// Whether a process with this PID exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// Makes a fresh temp directory `<tmp>/dm-testkit-<kind>-XXXXXX` that is not removed
/// automatically (the owning [`ServerProcess`] removes it).
pub fn make_server_directory(kind: &str) -> Result<PathBuf, TestkitError> {
    tempfile::Builder::new()
        .prefix(&format!("dm-testkit-{kind}-"))
        .tempdir()
        .map(tempfile::TempDir::keep)
        .map_err(|source| TestkitError::Io {
            action: format!("create a temp directory for {kind}"),
            source,
        })
}

/// Reads the last `lines` lines of a log file (for error messages).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A watchdog shell: reads PIDs line by line on stdin; on EOF (the test process ended or
/// dropped the handle) it kills the last PID, waits for it, and removes the directory.
const WATCHDOG_SCRIPT: &str = r#"pid=
while read -r line; do pid=$line; done
if [ -n "$pid" ]; then
  kill -9 "$pid" 2>/dev/null
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
fi
rm -rf -- "$1"
"#;

/// One server process with its directory and watchdog.
#[derive(Debug)]
pub struct ServerProcess {
    name: String,
    directory: PathBuf,
    child: Option<Child>,
    watchdog: Option<(Child, ChildStdin)>,
}

impl ServerProcess {
    /// Adopts `directory` (removed on drop) for a server called `name` in messages.
    pub fn new(name: impl Into<String>, directory: PathBuf) -> Self {
        ServerProcess {
            name: name.into(),
            directory,
            child: None,
            watchdog: None,
        }
    }

    /// The server's directory.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// The running server's PID, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The PID of the watchdog shell.
    pub fn watchdog_pid(&self) -> Option<u32> {
        self.watchdog.as_ref().map(|(child, _)| child.id())
    }

    /// Starts `command` (stdout and stderr to `<dir>/<log_name>`) in its own process group, and
    /// tells the watchdog its PID.
    pub fn spawn(&mut self, mut command: Command, log_name: &str) -> Result<(), TestkitError> {
        if self.child.is_some() {
            return Err(TestkitError::Io {
                action: format!("start {} while it is already running", self.name),
                source: std::io::Error::other("already running"),
            });
        }
        let log_path = self.directory.join(log_name);
        let open_log = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .map_err(|source| TestkitError::Io {
                    action: format!("open {}", log_path.display()),
                    source,
                })
        };
        command
            .stdin(Stdio::null())
            .stdout(open_log()?)
            .stderr(open_log()?)
            .process_group(0);
        let child = command.spawn().map_err(|source| TestkitError::Io {
            action: format!("start {} ({:?})", self.name, command.get_program()),
            source,
        })?;
        let pid = child.id();
        self.child = Some(child);
        self.tell_watchdog(&pid.to_string())
    }

    fn tell_watchdog(&mut self, line: &str) -> Result<(), TestkitError> {
        if self.watchdog.is_none() {
            let mut child = Command::new("sh")
                .arg("-c")
                .arg(WATCHDOG_SCRIPT)
                .arg("dm-testkit-watchdog")
                .arg(&self.directory)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .map_err(|source| TestkitError::Io {
                    action: "start the watchdog shell".into(),
                    source,
                })?;
            let stdin = child.stdin.take().ok_or_else(|| TestkitError::Io {
                action: "open the watchdog's stdin".into(),
                source: std::io::Error::other("no stdin pipe"),
            })?;
            self.watchdog = Some((child, stdin));
        }
        if let Some((_, stdin)) = &mut self.watchdog {
            writeln!(stdin, "{line}")
                .and_then(|()| stdin.flush())
                .map_err(|source| TestkitError::Io {
                    action: "tell the watchdog the server PID".into(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Whether the server process has exited (reaping it if so).
    pub fn has_exited(&mut self) -> bool {
        match &mut self.child {
            Some(child) => !matches!(child.try_wait(), Ok(None)),
            None => true,
        }
    }

    /// Asks the server to shut down cleanly (SIGTERM) without waiting; poll
    /// [`ServerProcess::has_exited`], then call [`ServerProcess::kill`] to reap it (or force it).
    pub fn terminate(&self) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Sends SIGKILL (a crash) and reaps the process.
    pub fn kill(&mut self) -> Result<(), TestkitError> {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.forget_pid()
    }

    fn forget_pid(&mut self) -> Result<(), TestkitError> {
        if self.watchdog.is_some() {
            self.tell_watchdog("")?;
        }
        Ok(())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.directory);
        if let Some((mut watchdog, stdin)) = self.watchdog.take() {
            // EOF: the watchdog finds no live PID, removes the (already removed) directory, exits.
            drop(stdin);
            let _ = watchdog.wait();
        }
    }
}

//! A small file system for disk-full tests: a size-limited tmpfs mounted on a fresh temp
//! directory, unmounted when the handle drops (on panic too).
//!
//! ```text
//! test --TmpfsMount::new(4 MiB)--> mount -t tmpfs -o size=4194304 tmpfs <tmp>/dm-testkit-tmpfs-XXXX
//!      --fill(leave_free)-------> <mount>/filler (zeros) until about `leave_free` bytes are free
//!      --free_filler()----------> removes it: the space is back
//!      --drop-------------------> umount (lazily when busy), remove the directory
//! ```
//!
//! Mounting needs root (CAP_SYS_ADMIN). Without it, [`TmpfsMount::new`] returns
//! [`TestkitError::NotPermitted`], which [`crate::or_skip!`] skips outside CI and fails in CI.
//! A test killed with SIGKILL leaves the mount behind (nothing runs after SIGKILL); it is small,
//! and `umount <tmp>/dm-testkit-tmpfs-*` removes it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::TestkitError;

/// The filler's name in the mount.
const FILLER: &str = "filler";

/// A size-limited tmpfs on a temp directory; unmounted on drop.
#[derive(Debug)]
pub struct TmpfsMount {
    /// The mount point (a temp directory, removed after the unmount).
    path: PathBuf,
    /// The size given to the mount.
    size: u64,
}

impl TmpfsMount {
    /// Mounts a tmpfs of `size` bytes on a fresh temp directory.
    pub fn new(size: u64) -> Result<TmpfsMount, TestkitError> {
        let path = crate::process::make_server_directory("tmpfs")?;
        let output = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(&path)
            .output();
        let refused = match output {
            Ok(output) if output.status.success() => None,
            Ok(output) => Some(String::from_utf8_lossy(&output.stderr).trim().to_owned()),
            Err(error) => Some(format!("running mount failed: {error}")),
        };
        if let Some(reason) = refused {
            let _ = std::fs::remove_dir(&path);
            return Err(TestkitError::NotPermitted {
                what: format!("mount a {size}-byte tmpfs on {}", path.display()),
                hint: format!("{reason}; run the tests as root (CAP_SYS_ADMIN)"),
            });
        }
        Ok(TmpfsMount { path, size })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The size given to the mount.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes free on the mount.
    pub fn free_bytes(&self) -> Result<u64, TestkitError> {
        let output = Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(&self.path)
            .output()
            .map_err(|source| TestkitError::Io {
                action: format!("run df on {}", self.path.display()),
                source,
            })?;
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .nth(1)
            .and_then(|line| line.trim().parse().ok())
            .ok_or_else(|| TestkitError::Io {
                action: format!("read df's answer for {}", self.path.display()),
                source: std::io::Error::other(String::from_utf8_lossy(&output.stderr).into_owned()),
            })
    }

    /// Writes a filler file so that about `leave_free` bytes stay free (rounded to pages);
    /// returns its path.
    pub fn fill(&self, leave_free: u64) -> Result<PathBuf, TestkitError> {
        let path = self.path.join(FILLER);
        let io = |source| TestkitError::Io {
            action: format!("write the filler {}", path.display()),
            source,
        };
        let fill = self.free_bytes()?.saturating_sub(leave_free);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        let block = vec![0u8; 64 * 1024];
        let mut left = fill;
        while left > 0 {
            let piece = left.min(block.len() as u64) as usize;
            file.write_all(&block[..piece]).map_err(io)?;
            left -= piece as u64;
        }
        file.sync_all().map_err(io)?;
        Ok(path)
    }

    /// Removes the filler: the space it took is free again.
    pub fn free_filler(&self) -> Result<(), TestkitError> {
        let path = self.path.join(FILLER);
        std::fs::remove_file(&path).map_err(|source| TestkitError::Io {
            action: format!("remove the filler {}", path.display()),
            source,
        })
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|status| status.success());
        if !unmounted {
            // Still busy (a server or a file left open): detach it now, it goes when closed.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

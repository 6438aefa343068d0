//! What one job may keep on disk. Attachments a read spools and documents a send downloads
//! go to a private directory per job, removed with everything in it however the job ends,
//! and count against one budget per job, `EMAIL_MAX_DOCUMENT_BYTES` (README "Configuration"):
//! a mail server or a document store decides how many bytes come, so without it one job
//! could fill the disk under every other job of the process.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{EmailError, ErrorCode, Result};

/// The default budget: what common mail services take as one message (25 MiB).
pub const DEFAULT_MAX_DOCUMENT_BYTES: u64 = 25 * 1024 * 1024;

/// The budget in words, for error messages.
pub fn describe_limit(bytes: u64) -> String {
    format!(
        "{} (EMAIL_MAX_DOCUMENT_BYTES, {bytes} bytes)",
        if bytes.is_multiple_of(1024 * 1024) {
            format!("{} MiB", bytes / (1024 * 1024))
        } else {
            format!("{bytes} bytes")
        }
    )
}

/// The bytes one job may still write.
#[derive(Debug, Clone)]
pub struct Allowance {
    limit: u64,
    used: u64,
}

impl Allowance {
    pub fn with_limit(limit: u64) -> Self {
        Allowance { limit, used: 0 }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn used(&self) -> u64 {
        self.used
    }

    /// Counts `bytes` about to be written; false (and nothing counted) if they do not fit.
    #[must_use]
    pub fn take(&mut self, bytes: u64) -> bool {
        match self.used.checked_add(bytes) {
            Some(total) if total <= self.limit => {
                self.used = total;
                true
            }
            _ => false,
        }
    }

    /// Returns bytes whose file was removed.
    pub fn give_back(&mut self, bytes: u64) {
        self.used = self.used.saturating_sub(bytes);
    }
}

/// A job's private directory; removed with everything in it when dropped.
#[derive(Debug)]
pub struct SpoolDir(PathBuf);

impl SpoolDir {
    pub fn create() -> Result<SpoolDir> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "email-connector-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| {
            EmailError::new(
                ErrorCode::Internal,
                format!("cannot create a spool directory for attachments: {e}"),
            )
        })?;
        Ok(SpoolDir(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for SpoolDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowance_counts_refuses_past_its_limit_and_takes_bytes_back() {
        let mut allowance = Allowance::with_limit(100);
        assert!(allowance.take(60));
        assert!(!allowance.take(41));
        assert!(allowance.take(40));
        assert!(!allowance.take(1));
        assert!(!allowance.take(u64::MAX));
        allowance.give_back(60);
        assert_eq!(allowance.used(), 40);
        assert!(allowance.take(60));
    }

    #[test]
    fn the_directory_goes_with_its_files() {
        let dir = SpoolDir::create().unwrap();
        let path = dir.path().to_path_buf();
        std::fs::write(path.join("a"), b"x").unwrap();
        drop(dir);
        assert!(!path.exists());
    }
}

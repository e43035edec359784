//! What the quarantine's tests share: a temporary directory removed on drop, and a realistic
//! inspection report and entry to store.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use serde_json::{Value, json};

use super::entry::NewEntry;
use super::time::Timestamp;

/// A fresh directory under the system temporary directory, removed with everything in it
/// when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let name = format!(
            "inspect-quarantine-test-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir(&path).expect("create a temporary directory");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Held while a test starts a child process, and while a test checks that `Store::open`
/// swept. A child being started holds copies of every file this process has open until it
/// executes its program (close-on-exec acts only then), a store's lock file included, so for
/// that moment it looks like a live writer and `open` rightly skips the sweep.
pub fn no_child_starting() -> MutexGuard<'static, ()> {
    static STARTING: Mutex<()> = Mutex::new(());
    STARTING.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A report in the shape the daemon serializes: two hits, one uninspectable part, TLS.
pub fn report(sender: &str, subject: &str) -> Value {
    json!({
        "version": 1,
        "rules": "sha256:0f00",
        "message": {"size": 120, "received_bytes": 120, "sha256": "", "message_id": "<m1@example.net>",
                    "subject": subject, "truncated": false},
        "envelope": {
            "client": {"name": "mail.example.net", "addr": "192.0.2.7", "port": 41234},
            "helo": "mail.example.net",
            "sender": sender,
            "sender_args": [],
            "recipients": ["alice@example.org", "bob@example.org"],
            "queue_id": "4F2A1C",
            "tls": {"version": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384", "bits": 256},
            "macros": {}
        },
        "decision": "quarantine",
        "dry_run": false,
        "score": 70,
        "reasons": ["score 70 >= quarantine threshold 50", "encrypted-archive at 2: quarantine"],
        "hits": [
            {"rule": "invoice_lure", "engine": "regex", "part_path": "1", "target": "subject",
             "snippet": "Your \\x1b[31minvoice", "score": 40},
            {"rule": "zip_with_exe", "engine": "yara", "part_path": "2", "target": "attachment",
             "filename": "invoice.zip", "snippet": "PK\\x03\\x04", "score": 30}
        ],
        "coverage": {"complete": false, "uninspectable": [
            {"reason": "encrypted-archive", "part_path": "2!docs/a.exe", "detail": "zip entry is encrypted"}
        ]},
        "anomalies": [],
        "parts": [],
        "targets": {},
        "timings": {"walk_us": 1, "regex_us": 1, "yara_us": 1, "total_us": 3}
    })
}

/// An entry received at `received` (RFC 3339).
pub fn new_entry(received: &str, sender: &str, subject: &str) -> NewEntry {
    let at = Timestamp::parse_rfc3339(received).expect("a test time").to_system_time();
    NewEntry::from_report(report(sender, subject), at)
}

/// A small message with the given subject.
pub fn message(subject: &str) -> Vec<u8> {
    format!(
        "From: Eve <eve@example.net>\r\nTo: alice@example.org\r\nSubject: {subject}\r\n\
         Message-ID: <m1@example.net>\r\n\r\nPlease see the attached invoice.\r\n"
    )
    .into_bytes()
}

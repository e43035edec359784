//! The quarantine store: a directory tree that the daemon writes held messages into and the
//! review CLI reads and changes at the same time, with no server between them.
//!
//! # Layout
//!
//! ```text
//! <root>/.lock                             advisory lock file (empty, 0600)
//! <root>/<YYYYMMDD>/                       one directory per UTC day received (0700)
//! <root>/<YYYYMMDD>/<id>.eml               the message, byte for byte as received (0600)
//! <root>/<YYYYMMDD>/<id>.json              its metadata: an [`Entry`] (0600)
//! <root>/<YYYYMMDD>/<id>.json.tmp          metadata being written; never read
//! ```
//!
//! Day directories keep every directory small, so listing a recent day or purging an old one
//! never reads the whole store; ids start with the same date, so an id names its directory.
//!
//! # Atomicity
//!
//! An entry exists exactly when its `<id>.json` exists; renaming the metadata into place is
//! the commit point. `put` writes and syncs the message file first (created with `O_EXCL`,
//! which is also how it claims the id), syncs the directory, then writes the metadata to a
//! temporary file, syncs it, renames it over `<id>.json` and syncs the directory again.
//! A kill at any moment therefore leaves one of:
//! - nothing, or a partial or whole `<id>.eml` with no metadata: not an entry (nothing lists
//!   it), garbage;
//! - that plus a partial or whole `<id>.json.tmp`: garbage;
//! - the whole entry.
//!
//! The syncs are for power loss, which a kill does not cause: the directory sync between the
//! message and the metadata makes sure the metadata can never survive a crash that the
//! message's own directory entry did not.
//!
//! State changes rewrite the metadata the same way (temporary file, sync, rename, sync), so a
//! reader sees the old metadata or the new, never a mix. Deleting writes the `deleted` state
//! first and removes the message bytes after, and purging removes the metadata first and the
//! message after, so an interruption leaves at worst message bytes that no live entry needs.
//!
//! Garbage — temporary files, message files without metadata, message files of deleted
//! entries — is removed by a sweep under the exclusive lock, so only when no writer is active.
//! [`Store::open`] sweeps what names alone reveal (temporary files, message files without
//! metadata), which keeps opening cheap, and skips the sweep if a writer is active;
//! [`Store::purge`] always sweeps, and also reads the metadata beside each message file to
//! remove the bytes of a delete cut short. Files the store does not recognise are left alone:
//! deleting what we do not understand is never the safe default.
//!
//! # Locking
//!
//! Every writer (`put`, `set_state`, `delete`) holds `<root>/.lock` shared; the sweep and
//! `purge` hold it exclusive, so whatever unfinished file the sweep finds belongs to a writer
//! that died. A state change also holds an exclusive `flock` on the entry's `<id>.json` for its
//! read-modify-write, re-checking after the lock is granted that the file it locked is still
//! the one at that name (a rename may have replaced it meanwhile). Readers take no lock: they
//! only ever open whole files. All locks are advisory `flock(2)` locks, released by the kernel
//! when a process dies, so a killed CLI or daemon never leaves the store locked.

use std::collections::HashSet;
use std::fs::{self, DirBuilder, File};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::durable::{self, DIR_MODE, LockKind};
use super::entry::{Change, DAEMON, ENTRY_VERSION, Entry, HistoryEvent, Location, NewEntry, State};
use super::error::{StoreError, at};
use super::id::Id;
use super::ownership::{self, Owner};
use super::time::{Civil, Timestamp};

const LOCK_FILE: &str = ".lock";
const MESSAGE_SUFFIX: &str = ".eml";
const META_SUFFIX: &str = ".json";
const TEMP_SUFFIX: &str = ".json.tmp";
/// Held by `quarantine release` for its whole run.
const RELEASE_LOCK_FILE: &str = ".release.lock";
/// Fresh ids `put` tries when the one drawn is taken. With 48 random bits per second a second
/// draw is already astronomically unlikely; the bound only keeps a broken generator from
/// looping forever.
const ID_ATTEMPTS: usize = 8;

/// A quarantine store rooted at a directory. Cheap to clone; holds no open files, so one
/// `Store` can be shared by every thread of the daemon.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// Who gets what this process creates in the store: the root directory's owner when we
    /// are root and it is not (see `ownership`); `None`, ourselves.
    owner: Option<Owner>,
}

/// Which entries [`Store::list`] returns. Every field left `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Received at or after.
    pub since: Option<Timestamp>,
    /// Received at or before.
    pub until: Option<Timestamp>,
    /// A rule that hit (exact name).
    pub rule: Option<String>,
    /// Part of the envelope sender, case-insensitive (`example.net` matches `eve@example.net`).
    pub sender: Option<String>,
    /// Part of any envelope recipient, case-insensitive.
    pub recipient: Option<String>,
    /// The decision (exact: `quarantine`, `reject`, …).
    pub decision: Option<String>,
    /// An uninspected reason (exact: `encrypted-archive`, …).
    pub reason: Option<String>,
    pub state: Option<State>,
    /// At most this many entries, the newest.
    pub limit: Option<usize>,
}

/// What [`Store::list`] found: the matching entries, newest first, and every metadata file
/// that could not be read. One unreadable file does not hide the rest of the quarantine.
#[derive(Debug, Default)]
pub struct Listing {
    pub entries: Vec<Entry>,
    pub problems: Vec<StoreError>,
}

/// What [`Store::purge`] removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Purged {
    /// Entries older than the cutoff, oldest first.
    pub entries: Vec<Id>,
    /// Leftovers of interrupted writes: temporary files, message files without metadata,
    /// message files of deleted entries.
    pub garbage: Vec<PathBuf>,
}

impl Store {
    /// Opens the store at `root`, creating it (and missing parents) with mode 0700 if needed —
    /// what the daemon calls at start. An existing directory keeps its mode: a group-readable
    /// store for a reviewers' group is the administrator's choice to make. Fails if the store cannot be written, so a daemon that
    /// could not quarantine finds out at start rather than at its first quarantined message.
    /// Removes garbage left by interrupted writers when no writer is active.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        if !root.is_dir() {
            if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty() && !p.is_dir()) {
                DirBuilder::new().recursive(true).mode(DIR_MODE).create(parent).map_err(at(parent))?;
            }
            let owner = root.parent().and_then(ownership::inherited);
            if durable::ensure_dir(root, owner).map_err(at(root))?
                && let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty())
            {
                durable::sync_dir(parent).map_err(at(parent))?;
            }
        }
        Store::init(root)
    }

    /// Opens an existing store: what the review CLI calls, so a mistyped `--store` is an error
    /// instead of a new, empty quarantine.
    pub fn open_existing(root: &Path) -> Result<Store, StoreError> {
        if !root.is_dir() {
            return Err(StoreError::NoStore(root.to_path_buf()));
        }
        Store::init(root)
    }

    fn init(root: &Path) -> Result<Store, StoreError> {
        let store = Store { root: root.to_path_buf(), owner: ownership::inherited(root) };
        check_writable(root)?;
        let lock_path = store.lock_path();
        let lock = durable::open_lock_file(&lock_path, store.owner).map_err(at(&lock_path))?;
        if durable::try_lock(&lock, LockKind::Exclusive).map_err(at(&lock_path))? {
            store.sweep(false, false)?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Stores a held message and returns its id, only once message and metadata are durable
    /// (synced, directory entries included). On any error (a full disk, an I/O error) nothing
    /// of the entry is left behind and the error is returned: the daemon must then tempfail,
    /// never accept a message it could not keep.
    ///
    /// Blocks on `fsync` (milliseconds on a disk): call it from a blocking thread.
    pub fn put(&self, message: &[u8], new: NewEntry) -> Result<Id, StoreError> {
        let received = Timestamp::from_system_time(new.received).ok_or_else(|| {
            StoreError::Invalid("the time received is outside 1970–9999; check the system clock".into())
        })?;
        let _writer = self.lock_store(LockKind::Shared)?;
        let dir = self.root.join(received.day_name());
        if durable::ensure_dir(&dir, self.owner).map_err(at(&dir))? {
            durable::sync_dir(&self.root).map_err(at(&self.root))?;
        }
        let (id, file) = self.claim_id(received)?;
        let entry = Entry {
            version: ENTRY_VERSION,
            id: id.clone(),
            received,
            queue_id: new.queue_id,
            message_id: new.message_id,
            subject: new.subject,
            envelope: new.envelope,
            location: new.location,
            size: message.len() as u64,
            sha256: crate::hex::sha256(message),
            history: vec![HistoryEvent {
                at: received,
                state: State::Held,
                who: DAEMON.to_string(),
                action: "quarantine".to_string(),
                result: format!("held: {} score={}", new.decision, new.score),
            }],
            decision: new.decision,
            score: new.score,
            rules: new.rules,
            uninspected: new.uninspected,
            state: State::Held,
            report: new.report,
        };
        match self.write_new(file, message, &entry) {
            Ok(()) => Ok(id),
            Err(e) => {
                self.roll_back(&id);
                Err(e)
            }
        }
    }

    /// The metadata of an entry.
    pub fn get(&self, id: &Id) -> Result<Entry, StoreError> {
        let path = self.meta_path(id);
        match fs::read(&path) {
            Ok(bytes) => parse_entry(&path, id, &bytes),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(StoreError::NotFound(id.clone())),
            Err(e) => Err(at(&path)(e)),
        }
    }

    /// The message bytes, exactly as received. Their SHA-256 and size are checked against the
    /// metadata: a mismatch is [`StoreError::Corrupt`], never silently different bytes.
    pub fn message(&self, id: &Id) -> Result<Vec<u8>, StoreError> {
        let entry = self.get(id)?;
        if entry.state == State::Deleted {
            return Err(StoreError::Deleted(id.clone()));
        }
        if entry.location == Location::Mta {
            return Err(StoreError::Invalid(format!(
                "{id}: the message is in the MTA's hold queue (queue id {}), not in this store",
                entry.queue_id.as_deref().unwrap_or("unknown")
            )));
        }
        let path = self.message_path(id);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                // Deleted or purged since we read the metadata, or really missing.
                return match self.get(id) {
                    Ok(e) if e.state == State::Deleted => Err(StoreError::Deleted(id.clone())),
                    Ok(_) => Err(StoreError::Corrupt { path, detail: "message file missing".into() }),
                    Err(e) => Err(e),
                };
            }
            Err(e) => return Err(at(&path)(e)),
        };
        if bytes.len() as u64 != entry.size || crate::hex::sha256(&bytes) != entry.sha256 {
            return Err(StoreError::Corrupt {
                path,
                detail: format!(
                    "message is {} bytes with sha256 {}, metadata says {} bytes with sha256 {}",
                    bytes.len(),
                    crate::hex::sha256(&bytes),
                    entry.size,
                    entry.sha256
                ),
            });
        }
        Ok(bytes)
    }

    /// The entries matching `filter`, newest first (by time received, then id).
    pub fn list(&self, filter: &Filter) -> Result<Listing, StoreError> {
        let mut listing = Listing::default();
        let limit = filter.limit.unwrap_or(usize::MAX);
        for (day, dir) in self.days()?.into_iter().rev() {
            if listing.entries.len() >= limit {
                break;
            }
            if !filter.covers_day(day) {
                continue;
            }
            let mut found = Vec::new();
            for id in ids_in(&dir)? {
                match self.get(&id) {
                    Ok(e) if filter.matches(&e) => found.push(e),
                    Ok(_) | Err(StoreError::NotFound(_)) => {}
                    Err(e) => listing.problems.push(e),
                }
            }
            found.sort_by(|a, b| (b.received, &b.id).cmp(&(a.received, &a.id)));
            listing.entries.extend(found);
        }
        listing.entries.truncate(limit);
        Ok(listing)
    }

    /// Changes an entry's state and appends `change` to its history, under the entry's lock,
    /// refusing changes [`State::can_become`] does not allow. Changing to `deleted` removes
    /// the message bytes, as [`Store::delete`] does. Returns the updated entry.
    ///
    /// An error after the new metadata was renamed into place (the directory sync failed)
    /// means the change is visible but may not survive a power loss.
    pub fn set_state(&self, id: &Id, state: State, change: Change) -> Result<Entry, StoreError> {
        let _writer = self.lock_store(LockKind::Shared)?;
        let (locked, path) = self.lock_entry(id)?;
        let mut bytes = Vec::new();
        (&locked).read_to_end(&mut bytes).map_err(at(&path))?;
        let mut entry = parse_entry(&path, id, &bytes)?;
        if !entry.state.can_become(state) {
            return Err(StoreError::Transition { id: id.clone(), from: entry.state, to: state });
        }
        entry.state = state;
        entry.history.push(HistoryEvent {
            at: Timestamp::now(),
            state,
            who: change.who,
            action: change.action,
            result: change.result,
        });
        self.write_meta(&entry)?;
        if state == State::Deleted {
            let message = self.message_path(id);
            durable::remove_if_present(&message).map_err(at(&message))?;
            let dir = self.day_dir(id);
            durable::sync_dir(&dir).map_err(at(&dir))?;
        }
        drop(locked);
        Ok(entry)
    }

    /// Deletes a held or released message: removes its bytes and keeps the metadata, in state
    /// `deleted`, as a tombstone. The record of what was held, why, and who deleted it is
    /// what an auditor asks for later; it is small, and `purge` removes it with the rest when
    /// it ages out.
    pub fn delete(&self, id: &Id, who: &str) -> Result<Entry, StoreError> {
        let change = Change {
            who: who.to_string(),
            action: "delete".to_string(),
            result: "message bytes removed".to_string(),
        };
        self.set_state(id, State::Deleted, change)
    }

    /// Removes every entry received more than `older_than` ago, whatever its state
    /// (retention), and the garbage of interrupted writes. With `dry_run`, changes nothing
    /// and reports what it would remove.
    pub fn purge(&self, older_than: Duration, dry_run: bool) -> Result<Purged, StoreError> {
        self.purge_before(Timestamp::now().saturating_sub(older_than), dry_run)
    }

    /// [`Store::purge`] with an explicit cutoff: entries received before `cutoff` go.
    pub fn purge_before(&self, cutoff: Timestamp, dry_run: bool) -> Result<Purged, StoreError> {
        let _exclusive = self.lock_store(LockKind::Exclusive)?;
        let garbage = self.sweep(true, dry_run)?;
        let mut entries = Vec::new();
        for (day, dir) in self.days()? {
            if day >= cutoff {
                break;
            }
            let mut removed = false;
            for id in ids_in(&dir)?.into_iter().filter(|id| id.time() < cutoff) {
                if !dry_run {
                    // Metadata first: once it is gone the entry is gone, and a message file
                    // left by an interruption here is garbage for the next sweep.
                    let meta = self.meta_path(&id);
                    durable::remove_if_present(&meta).map_err(at(&meta))?;
                    let message = self.message_path(&id);
                    durable::remove_if_present(&message).map_err(at(&message))?;
                    removed = true;
                }
                entries.push(id);
            }
            if removed {
                durable::sync_dir(&dir).map_err(at(&dir))?;
                self.remove_if_empty(&dir)?;
            }
        }
        entries.sort();
        Ok(Purged { entries, garbage })
    }

    /// Removes the leftovers of interrupted writes; the caller holds the store lock
    /// exclusively, so no writer is active and every unfinished file belongs to a dead one.
    /// Temporary files and message files without metadata are found from names alone, which
    /// keeps the sweep in [`Store::open`] cheap; `thorough` also reads the metadata beside
    /// each message file to find deletes that were cut short after the commit (`purge`).
    fn sweep(&self, thorough: bool, dry_run: bool) -> Result<Vec<PathBuf>, StoreError> {
        let mut garbage = Vec::new();
        for (_, dir) in self.days()? {
            let names = file_names(&dir)?;
            let has_meta: HashSet<&str> = names.iter().filter_map(|n| n.strip_suffix(META_SUFFIX)).collect();
            let mut here = Vec::new();
            for name in &names {
                let path = dir.join(name);
                if name.strip_suffix(TEMP_SUFFIX).is_some_and(|stem| Id::parse(stem).is_ok()) {
                    here.push(path);
                } else if let Some(id) = name.strip_suffix(MESSAGE_SUFFIX).and_then(|s| Id::parse(s).ok()) {
                    if !has_meta.contains(id.as_str()) {
                        // A message that never got its metadata.
                        here.push(path);
                    } else if thorough
                        && let Ok(e) = self.get(&id)
                        && e.state == State::Deleted
                    {
                        // A delete cut short after the commit. (Unreadable metadata: the
                        // bytes are kept, they may be all that is left.)
                        here.push(path);
                    }
                }
            }
            if !dry_run {
                for path in &here {
                    durable::remove_if_present(path).map_err(at(path))?;
                }
                if !here.is_empty() {
                    durable::sync_dir(&dir).map_err(at(&dir))?;
                }
                self.remove_if_empty(&dir)?;
            }
            garbage.extend(here);
        }
        Ok(garbage)
    }

    fn remove_if_empty(&self, dir: &Path) -> Result<(), StoreError> {
        if file_names(dir)?.is_empty() {
            match fs::remove_dir(dir) {
                Ok(()) => durable::sync_dir(&self.root).map_err(at(&self.root))?,
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(at(dir)(e)),
            }
        }
        Ok(())
    }

    /// Creates the message file under a fresh id; `O_EXCL` makes the id ours.
    fn claim_id(&self, received: Timestamp) -> Result<(Id, File), StoreError> {
        for _ in 0..ID_ATTEMPTS {
            let id = Id::generate(received).map_err(at(Path::new("getrandom")))?;
            let path = self.message_path(&id);
            match durable::create_new(&path, self.owner) {
                // A tombstone keeps its id taken after its message file is gone.
                Ok(_) if self.meta_path(&id).exists() => {
                    durable::remove_if_present(&path).map_err(at(&path))?
                }
                Ok(f) => return Ok((id, f)),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(at(&path)(e)),
            }
        }
        let dir = self.root.join(received.day_name());
        Err(at(&dir)(std::io::Error::new(ErrorKind::AlreadyExists, "no free id after several random draws")))
    }

    fn write_new(&self, mut file: File, message: &[u8], entry: &Entry) -> Result<(), StoreError> {
        let path = self.message_path(&entry.id);
        file.write_all(message).map_err(at(&path))?;
        file.sync_all().map_err(at(&path))?;
        drop(file);
        // The message's name must be durable before any metadata can name it.
        let dir = self.day_dir(&entry.id);
        durable::sync_dir(&dir).map_err(at(&dir))?;
        self.write_meta(entry)
    }

    /// Writes `<id>.json` atomically: temporary file, sync, rename (the commit), directory sync.
    fn write_meta(&self, entry: &Entry) -> Result<(), StoreError> {
        let tmp = self.temp_path(&entry.id);
        let dest = self.meta_path(&entry.id);
        let json = serde_json::to_vec_pretty(entry)
            .map_err(|e| StoreError::Invalid(format!("{}: cannot serialize metadata: {e}", entry.id)))?;
        let written = (|| {
            let mut f = durable::create_replacing(&tmp, self.owner).map_err(at(&tmp))?;
            f.write_all(&json).map_err(at(&tmp))?;
            f.sync_all().map_err(at(&tmp))?;
            drop(f);
            fs::rename(&tmp, &dest).map_err(at(&dest))
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written?;
        let dir = self.day_dir(&entry.id);
        durable::sync_dir(&dir).map_err(at(&dir))
    }

    /// Undoes a failed `put`: every file of the id goes (best effort; the sweep gets the rest).
    fn roll_back(&self, id: &Id) {
        let _ = fs::remove_file(self.meta_path(id));
        let _ = fs::remove_file(self.temp_path(id));
        let _ = fs::remove_file(self.message_path(id));
        let _ = durable::sync_dir(&self.day_dir(id));
    }

    /// Serialises releases: held for the whole of a `quarantine release`, so that two
    /// reviewers releasing the same entry cannot both send it (the second finds it released).
    /// Dropping the file releases the lock.
    pub fn release_lock(&self) -> Result<File, StoreError> {
        let path = self.root.join(RELEASE_LOCK_FILE);
        let f = durable::open_lock_file(&path, self.owner).map_err(at(&path))?;
        durable::lock(&f, LockKind::Exclusive).map_err(at(&path))?;
        Ok(f)
    }

    fn lock_store(&self, kind: LockKind) -> Result<File, StoreError> {
        let path = self.lock_path();
        let f = durable::open_lock_file(&path, self.owner).map_err(at(&path))?;
        durable::lock(&f, kind).map_err(at(&path))?;
        Ok(f)
    }

    /// Locks `<id>.json` exclusively and returns it open, making sure the file locked is the
    /// one currently at that name: a writer that renamed a new version into place while we
    /// waited leaves us holding the old one, so we lock again.
    fn lock_entry(&self, id: &Id) -> Result<(File, PathBuf), StoreError> {
        let path = self.meta_path(id);
        loop {
            let f = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == ErrorKind::NotFound => return Err(StoreError::NotFound(id.clone())),
                Err(e) => return Err(at(&path)(e)),
            };
            durable::lock(&f, LockKind::Exclusive).map_err(at(&path))?;
            let held = f.metadata().map_err(at(&path))?;
            match fs::metadata(&path) {
                Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => return Ok((f, path)),
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::NotFound => return Err(StoreError::NotFound(id.clone())),
                Err(e) => return Err(at(&path)(e)),
            }
        }
    }

    /// The day directories, oldest first, with the first millisecond of each day.
    fn days(&self) -> Result<Vec<(Timestamp, PathBuf)>, StoreError> {
        let mut days: Vec<(Timestamp, PathBuf)> = file_names(&self.root)?
            .into_iter()
            .filter_map(|name| Some((day_start(&name)?, self.root.join(name))))
            .filter(|(_, p)| p.is_dir())
            .collect();
        days.sort();
        Ok(days)
    }

    fn lock_path(&self) -> PathBuf {
        self.root.join(LOCK_FILE)
    }

    fn day_dir(&self, id: &Id) -> PathBuf {
        self.root.join(id.day())
    }

    fn message_path(&self, id: &Id) -> PathBuf {
        self.day_dir(id).join(format!("{id}{MESSAGE_SUFFIX}"))
    }

    fn meta_path(&self, id: &Id) -> PathBuf {
        self.day_dir(id).join(format!("{id}{META_SUFFIX}"))
    }

    fn temp_path(&self, id: &Id) -> PathBuf {
        self.day_dir(id).join(format!("{id}{TEMP_SUFFIX}"))
    }
}

impl Filter {
    pub fn matches(&self, e: &Entry) -> bool {
        let has = |field: &Option<String>, test: &dyn Fn(&str) -> bool| field.as_deref().is_none_or(test);
        self.since.is_none_or(|t| e.received >= t)
            && self.until.is_none_or(|t| e.received <= t)
            && has(&self.rule, &|r| e.rules.iter().any(|x| x == r))
            && has(&self.sender, &|s| contains_folded(&e.envelope.sender, s))
            && has(&self.recipient, &|s| e.envelope.recipients.iter().any(|r| contains_folded(r, s)))
            && has(&self.decision, &|d| e.decision == d)
            && has(&self.reason, &|r| e.uninspected.iter().any(|x| x == r))
            && self.state.is_none_or(|s| e.state == s)
    }

    /// Whether any entry received on the day starting at `start` can match.
    fn covers_day(&self, start: Timestamp) -> bool {
        self.since.is_none_or(|t| start.end_of_day() >= t) && self.until.is_none_or(|t| start <= t)
    }
}

fn contains_folded(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

fn parse_entry(path: &Path, id: &Id, bytes: &[u8]) -> Result<Entry, StoreError> {
    let entry: Entry = serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: format!("unreadable metadata: {e}"),
    })?;
    if entry.id != *id {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("metadata is for id {}", entry.id),
        });
    }
    Ok(entry)
}

/// `20261128` → its first millisecond; `None` for any other name.
fn day_start(name: &str) -> Option<Timestamp> {
    if name.len() != 8 || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| name[r].parse::<u32>().ok();
    Timestamp::from_civil(Civil {
        year: i64::from(n(0..4)?),
        month: n(4..6)?,
        day: n(6..8)?,
        hour: 0,
        minute: 0,
        second: 0,
        millis: 0,
    })
}

/// The names in `dir` that are UTF-8 (the store writes no others). A directory that vanished
/// (purged meanwhile) is empty.
fn file_names(dir: &Path) -> Result<Vec<String>, StoreError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(at(dir)(e)),
    };
    let mut names = Vec::new();
    for item in rd {
        if let Ok(name) = item.map_err(at(dir))?.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

/// The ids of the entries (metadata files) in a day directory.
fn ids_in(dir: &Path) -> Result<Vec<Id>, StoreError> {
    Ok(file_names(dir)?
        .iter()
        .filter_map(|n| n.strip_suffix(META_SUFFIX).and_then(|s| Id::parse(s).ok()))
        .collect())
}

/// The store must be writable by us (checked with the real uid, as `access(2)` does), or the
/// daemon would only find out when a message needs quarantining.
fn check_writable(root: &Path) -> Result<(), StoreError> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(root.as_os_str().as_bytes())
        .map_err(|_| StoreError::Invalid(format!("{}: path contains a NUL byte", root.display())))?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        return Err(at(root)(std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests;

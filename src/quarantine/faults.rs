//! The store's promises under real faults, tested with real faults: a writer process killed
//! with SIGKILL at random moments, and a file system that is actually full.
//!
//! The kill test re-runs this test binary as the child: `crash_child_writer` is an ignored
//! test that does nothing unless the parent names it and sets `CHILD_ENV`, so it costs nothing
//! in a normal run and needs no separate binary.

use std::collections::HashSet;
use std::ffi::CString;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use super::durable::{self, LockKind};
use super::entry::{Change, State};
use super::error::StoreError;
use super::id::Id;
use super::store::{Filter, Store};
use super::test_support::{TempDir, new_entry, no_child_starting};
use super::time::Timestamp;

/// Set to the store directory in the child writer's environment.
const CHILD_ENV: &str = "INSPECT_QUARANTINE_CRASH_CHILD";
/// The largest message the child writes, in bytes.
const CHILD_SIZE_ENV: &str = "INSPECT_QUARANTINE_CRASH_MAX_SIZE";
const ROUNDS: usize = 20;

/// The libtest name of a test in this module (its path without the crate name).
fn test_name(f: &str) -> String {
    let module = module_path!();
    let module = module.split_once("::").map_or(module, |(_, rest)| rest);
    format!("{module}::{f}")
}

/// A message of about `size` bytes, different for each `n`.
fn body(n: u64, size: usize) -> Vec<u8> {
    let mut m = format!("From: writer@example.net\r\nSubject: message {n}\r\n\r\n").into_bytes();
    let line = format!("line of message {n} ...............................................\r\n");
    while m.len() < size {
        m.extend_from_slice(line.as_bytes());
    }
    m
}

/// A small xorshift generator: the kill moments need spread, not quality. The seed is printed
/// so a failing run can be repeated.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let seed = Timestamp::now().unix_millis() as u64 ^ (u64::from(std::process::id()) << 32) | 1;
        eprintln!("kill-moment seed {seed}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
#[ignore = "the writer that killed_writers_never_leave_a_torn_entry runs in a child process"]
fn crash_child_writer() {
    let Some(root) = std::env::var_os(CHILD_ENV) else { return };
    // The parent's clock starts here, so kills land in open's sweep and in the writes rather
    // than in the test harness starting up.
    println!("READY");
    let store = Store::open(Path::new(&root)).expect("open the store");
    let max_size: u64 = std::env::var(CHILD_SIZE_ENV).ok().and_then(|s| s.parse().ok()).unwrap_or(48_000);
    // Which writes update or delete shifts from child to child, so that every kind is
    // interrupted even when a child lives for one write only.
    let seed = u64::from(std::process::id());
    for n in 0u64.. {
        let size = 200 + ((n * 7919 + seed * 31) % max_size) as usize;
        let new = new_entry(&Timestamp::now().rfc3339(), "writer@example.net", &format!("message {n}"));
        let id = store.put(&body(n, size), new).expect("put");
        // Printed only once put has returned: the parent's list of what must survive.
        println!("ACK {id}");
        if (n + seed) % 3 == 0 {
            let change = Change { who: "writer".into(), action: "note".into(), result: n.to_string() };
            store.set_state(&id, State::Held, change).expect("set_state");
            println!("UPD {id}");
        }
        if (n + seed) % 4 == 1 {
            store.delete(&id, "writer").expect("delete");
            println!("DEL {id}");
        }
    }
}

#[derive(Default)]
struct Acknowledged {
    stored: HashSet<Id>,
    updated: HashSet<Id>,
    deleted: HashSet<Id>,
}

impl Acknowledged {
    /// Reads the child's output; a line cut by the kill was never acknowledged. The words
    /// are the last two of a line: the harness's own text may precede the first.
    fn read(&mut self, out: &str) {
        for line in out.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
            let mut words = line.split_whitespace().rev();
            let (Some(id), Some(what)) = (words.next(), words.next()) else { continue };
            let Ok(id) = Id::parse(id) else { continue };
            match what {
                "ACK" => self.stored.insert(id),
                "UPD" => self.updated.insert(id),
                "DEL" => self.deleted.insert(id),
                _ => false,
            };
        }
    }
}

/// Files in the store's day directories that are not part of a whole entry: temporary files
/// and message files without metadata.
fn leftovers(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for day in fs::read_dir(root).into_iter().flatten().flatten().filter(|d| d.path().is_dir()) {
        for f in fs::read_dir(day.path()).unwrap().flatten() {
            let name = f.file_name().into_string().unwrap();
            let orphan = name
                .strip_suffix(".eml")
                .is_some_and(|stem| !day.path().join(format!("{stem}.json")).exists());
            if name.ends_with(".tmp") || orphan {
                out.push(f.path());
            }
        }
    }
    out
}

/// What a reader sees must be whole: every entry listed reads, every message matches its
/// SHA-256, and everything acknowledged is there in the state acknowledged.
fn check_whole(store: &Store, acked: &Acknowledged) {
    let listing = store.list(&Filter::default()).unwrap();
    assert!(listing.problems.is_empty(), "torn metadata: {:?}", listing.problems);
    let listed: HashSet<&Id> = listing.entries.iter().map(|e| &e.id).collect();
    for e in &listing.entries {
        match (e.state, store.message(&e.id)) {
            (State::Held, Ok(bytes)) => assert_eq!(bytes.len() as u64, e.size),
            (State::Deleted, Err(StoreError::Deleted(_))) => {}
            (state, other) => panic!("{}: {state} with message {other:?}", e.id),
        }
    }
    for id in &acked.stored {
        assert!(listed.contains(id), "acknowledged {id} is not listed");
        let e = store.get(id).unwrap();
        if acked.deleted.contains(id) {
            assert_eq!(e.state, State::Deleted, "{id}: acknowledged delete lost");
        }
        if acked.updated.contains(id) {
            assert!(e.history.iter().any(|h| h.who == "writer" && h.action == "note"), "{id}: update lost");
        }
    }
}

/// Runs `ROUNDS` child writers on the store at `root`, each killed with SIGKILL 5–50 ms after
/// it started, and checks the store after each kill. Returns a summary line.
fn kill_rounds(root: &Path, max_size: usize) -> String {
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng::seeded();
    let mut acked = Acknowledged::default();
    let mut leftovers_seen = 0;
    for _ in 0..ROUNDS {
        let starting = no_child_starting();
        let mut child = Command::new(&exe)
            .args([
                &test_name("crash_child_writer"),
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, root)
            .env(CHILD_SIZE_ENV, max_size.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        drop(starting);
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut out = String::new();
        while !out.contains("READY") {
            assert_ne!(stdout.read_line(&mut out).unwrap(), 0, "the child writer did not start: {out}");
        }
        // The point of the test is a kill at an arbitrary moment, so this wait is the
        // experiment, not synchronisation.
        thread::sleep(Duration::from_millis(5 + rng.below(46)));
        child.kill().unwrap();
        child.wait().unwrap();
        stdout.read_to_string(&mut out).unwrap();
        acked.read(&out);
        if !root.exists() {
            continue;
        }
        leftovers_seen += leftovers(root).len();

        // As a reader sees the store before anything is cleaned: a writer's lock held, so
        // open does not sweep.
        let lock = durable::open_lock_file(&root.join(".lock"), None).unwrap();
        durable::lock(&lock, LockKind::Shared).unwrap();
        check_whole(&Store::open(root).unwrap(), &acked);
        drop(lock);

        // Open with no writer active removes what the killed writer left.
        let starting = no_child_starting();
        let store = Store::open(root).unwrap();
        assert_eq!(leftovers(root), Vec::<PathBuf>::new(), "open left garbage behind");
        drop(starting);
        check_whole(&store, &acked);
    }
    // Purge's thorough sweep also removes the bytes of a delete cut short.
    let store = Store::open(root).unwrap();
    store.purge_before(Timestamp::parse_rfc3339("2000-01-01").unwrap(), false).unwrap();
    for e in store.list(&Filter::default()).unwrap().entries.iter().filter(|e| e.state == State::Deleted) {
        assert!(!root.join(e.id.day()).join(format!("{}.eml", e.id)).exists(), "{}: bytes kept", e.id);
    }
    check_whole(&store, &acked);
    assert!(!acked.stored.is_empty(), "no put completed in {ROUNDS} rounds: the test tested nothing");
    format!(
        "{ROUNDS} rounds, {} entries acknowledged ({} updated, {} deleted), none lost; \
         {leftovers_seen} leftover files found after kills, all swept",
        acked.stored.len(),
        acked.updated.len(),
        acked.deleted.len()
    )
}

#[test]
fn killed_writers_never_leave_a_torn_entry() {
    let dir = TempDir::new();
    let summary = kill_rounds(&dir.path().join("quarantine"), 48_000);
    eprintln!("on {}: {summary}", std::env::temp_dir().display());
}

/// The same on a tmpfs, where syncing costs nothing: many more writes per round, so the kills
/// land at many more points of `put`, `set_state` and `delete`.
#[test]
#[ignore = "needs root (mounts a tmpfs): run by tests/run as root"]
fn killed_writers_never_leave_a_torn_entry_on_a_fast_file_system() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "mounting a tmpfs needs root: run by tests/run as root");
    let dir = TempDir::new();
    let _fs = Tmpfs::mount(dir.path(), "size=256m,mode=0700")
        .expect("running as root, but mount(2) refused a tmpfs");
    let summary = kill_rounds(&dir.path().join("quarantine"), 8_000);
    eprintln!("on tmpfs: {summary}");
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, options: &str) -> std::io::Result<Tmpfs> {
        let target = CString::new(at.as_os_str().as_bytes()).unwrap();
        let (fstype, data) = (CString::new("tmpfs").unwrap(), CString::new(options).unwrap());
        // SAFETY: every pointer is a valid NUL-terminated string that outlives the call.
        let rc = unsafe {
            libc::mount(fstype.as_ptr(), target.as_ptr(), fstype.as_ptr(), 0, data.as_ptr().cast())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Tmpfs(at.to_path_buf()))
    }

    fn free_bytes(&self) -> u64 {
        let path = CString::new(self.0.as_os_str().as_bytes()).unwrap();
        // SAFETY: `st` is written by statvfs; `path` is a valid NUL-terminated string.
        unsafe {
            let mut st: libc::statvfs = std::mem::zeroed();
            assert_eq!(libc::statvfs(path.as_ptr(), &mut st), 0);
            st.f_bavail as u64 * st.f_frsize as u64
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let target = CString::new(self.0.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Every entry in the store is whole and nothing else is there.
fn assert_only_whole_entries(root: &Path, store: &Store, want: &[Id]) {
    assert_eq!(leftovers(root), Vec::<PathBuf>::new(), "a failed put left files behind");
    let listing = store.list(&Filter::default()).unwrap();
    assert!(listing.problems.is_empty(), "{:?}", listing.problems);
    let mut listed: Vec<Id> = listing.entries.iter().map(|e| e.id.clone()).collect();
    listed.sort();
    let mut want = want.to_vec();
    want.sort();
    assert_eq!(listed, want);
    for id in &want {
        store.message(id).unwrap();
    }
}

#[test]
#[ignore = "needs root (mounts a tmpfs): run by tests/run as root"]
fn a_full_file_system_fails_put_and_leaves_no_partial_entry() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "mounting a 64 KiB tmpfs to fill needs root: run by tests/run as root"
    );
    let dir = TempDir::new();
    let mnt = dir.path().join("small");
    fs::create_dir(&mnt).unwrap();
    let fs_ =
        Tmpfs::mount(&mnt, "size=64k,mode=0700").expect("running as root, but mount(2) refused a tmpfs");
    let root = mnt.join("quarantine");
    let store = Store::open(&root).unwrap();
    let received = Timestamp::now().saturating_sub(Duration::from_secs(7200)).rfc3339();
    let entry = |n: u64| new_entry(&received, "writer@example.net", &format!("message {n}"));

    // Fill it: the message file is what runs out of room.
    let mut stored = Vec::new();
    let mut failure = None;
    for n in 0..64u64 {
        match store.put(&body(n, 3000 + n as usize * 1500), entry(n)) {
            Ok(id) => stored.push(id),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let e = failure.expect("64 KiB took 64 messages without an error");
    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
    assert!(!stored.is_empty(), "not even one message fitted");
    assert_only_whole_entries(&root, &store, &stored);

    // A message that fills exactly the room left: now the metadata is what does not fit, and
    // the message already written must go too.
    let free = fs_.free_bytes();
    eprintln!(
        "64 KiB tmpfs: {} entries stored, then ENOSPC; {free} bytes left for \
         a message that fits exactly",
        stored.len()
    );
    if free > 0 {
        let e = store.put(&vec![b'x'; free as usize], entry(100)).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
        assert_only_whole_entries(&root, &store, &stored);
    }

    // Room made by purge is usable again.
    let purged = store.purge(Duration::from_secs(3600), false).unwrap();
    assert_eq!(purged.entries.len(), stored.len());
    let id = store.put(&body(200, 3000), entry(200)).unwrap();
    assert_only_whole_entries(&root, &store, &[id]);
    drop(store);
    drop(fs_);
}

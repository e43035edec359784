use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use super::super::test_support::{TempDir, message, new_entry, no_child_starting};
use super::*;

fn at(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap()
}

fn change(who: &str, action: &str, result: &str) -> Change {
    Change { who: who.into(), action: action.into(), result: result.into() }
}

fn put(store: &Store, received: &str, sender: &str, subject: &str) -> Id {
    store.put(&message(subject), new_entry(received, sender, subject)).unwrap()
}

fn ids(entries: &[Entry]) -> Vec<Id> {
    entries.iter().map(|e| e.id.clone()).collect()
}

fn all(store: &Store) -> Vec<Entry> {
    let listing = store.list(&Filter::default()).unwrap();
    assert!(listing.problems.is_empty(), "{:?}", listing.problems);
    listing.entries
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every file under `dir`, relative names.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for day in fs::read_dir(dir).unwrap() {
        let day = day.unwrap().path();
        if day.is_dir() {
            for f in fs::read_dir(&day).unwrap() {
                out.push(f.unwrap().file_name().into_string().unwrap());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn put_then_get_round_trips_metadata_and_message() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let bytes = message("Invoice");
    let new = new_entry("2026-11-28T20:15:02.250Z", "eve@example.net", "Invoice");
    let id = store.put(&bytes, new.clone()).unwrap();
    assert!(id.as_str().starts_with("20261128T201502Z-"), "{id}");

    let e = store.get(&id).unwrap();
    assert_eq!(e.id, id);
    assert_eq!(e.version, ENTRY_VERSION);
    assert_eq!(e.received, at("2026-11-28T20:15:02.250Z"));
    assert_eq!(e.envelope, new.envelope);
    assert_eq!((e.queue_id, e.message_id, e.subject), (new.queue_id, new.message_id, new.subject));
    assert_eq!((e.decision.as_str(), e.score), ("quarantine", 70));
    assert_eq!(e.rules, ["invoice_lure", "zip_with_exe"]);
    assert_eq!(e.uninspected, ["encrypted-archive"]);
    assert_eq!(e.size, bytes.len() as u64);
    assert_eq!(e.sha256, crate::hex::sha256(&bytes));
    assert_eq!(e.report, new.report);
    assert_eq!(e.state, State::Held);
    assert_eq!(e.history.len(), 1);
    assert_eq!((e.history[0].state, e.history[0].who.as_str()), (State::Held, DAEMON));
    assert_eq!(store.message(&id).unwrap(), bytes);
    assert!(dir.path().join("20261128").join(format!("{id}.eml")).is_file());
    assert!(dir.path().join("20261128").join(format!("{id}.json")).is_file());
}

#[test]
fn a_message_whose_bytes_changed_is_corrupt() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let id = put(&store, "2026-11-28T20:15:02Z", "eve@example.net", "Invoice");
    let path = dir.path().join("20261128").join(format!("{id}.eml"));
    let mut bytes = fs::read(&path).unwrap();
    bytes[0] ^= 1;
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(store.message(&id), Err(StoreError::Corrupt { .. })));
}

#[test]
fn unknown_ids_are_not_found() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let id = Id::parse("20261128T201502Z-000000000000").unwrap();
    assert!(matches!(store.get(&id), Err(StoreError::NotFound(_))));
    assert!(matches!(store.message(&id), Err(StoreError::NotFound(_))));
    assert!(matches!(store.delete(&id, "alice"), Err(StoreError::NotFound(_))));
}

#[test]
fn list_is_newest_first_across_days_and_within_a_second() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let a = put(&store, "2026-11-27T23:59:59Z", "a@x", "a");
    let b = put(&store, "2026-11-28T00:00:00Z", "b@x", "b");
    let c = put(&store, "2026-11-28T10:00:00.100Z", "c@x", "c");
    let d = put(&store, "2026-11-28T10:00:00.900Z", "d@x", "d");
    let e = put(&store, "2027-01-01T00:00:00Z", "e@x", "e");
    assert_eq!(ids(&all(&store)), [e, d, c, b, a]);
}

#[test]
fn list_filters_on_every_field() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let old = put(&store, "2026-11-01T08:00:00Z", "Eve@Example.NET", "old");
    let mut other = new_entry("2026-11-20T08:00:00Z", "bob@other.org", "other");
    other.rules = vec!["macro_doc".into()];
    other.uninspected = vec![];
    other.decision = "reject".into();
    other.envelope.recipients = vec!["carol@example.com".into()];
    let other = store.put(b"Subject: other\r\n\r\nx", other).unwrap();
    let new = put(&store, "2026-11-28T08:00:00Z", "eve@example.net", "new");
    store.set_state(&new, State::Released, change("alice", "release", "250 ok")).unwrap();

    let check = |f: Filter, want: &[&Id]| {
        let got = store.list(&f).unwrap();
        assert!(got.problems.is_empty());
        assert_eq!(ids(&got.entries), want.iter().map(|i| (*i).clone()).collect::<Vec<_>>(), "{f:?}");
    };
    check(Filter::default(), &[&new, &other, &old]);
    check(Filter { since: Some(at("2026-11-20T08:00:00Z")), ..Filter::default() }, &[&new, &other]);
    check(Filter { until: Some(at("2026-11-20T08:00:00Z")), ..Filter::default() }, &[&other, &old]);
    check(
        Filter { since: Some(at("2026-11-02")), until: Some(at("2026-11-27")), ..Filter::default() },
        &[&other],
    );
    check(Filter { rule: Some("macro_doc".into()), ..Filter::default() }, &[&other]);
    check(Filter { rule: Some("macro".into()), ..Filter::default() }, &[]);
    check(Filter { sender: Some("EXAMPLE.net".into()), ..Filter::default() }, &[&new, &old]);
    check(Filter { recipient: Some("carol@".into()), ..Filter::default() }, &[&other]);
    check(Filter { recipient: Some("alice@example.org".into()), ..Filter::default() }, &[&new, &old]);
    check(Filter { decision: Some("reject".into()), ..Filter::default() }, &[&other]);
    check(Filter { reason: Some("encrypted-archive".into()), ..Filter::default() }, &[&new, &old]);
    check(Filter { state: Some(State::Released), ..Filter::default() }, &[&new]);
    check(Filter { state: Some(State::Held), ..Filter::default() }, &[&other, &old]);
    check(Filter { limit: Some(2), ..Filter::default() }, &[&new, &other]);
    check(Filter { limit: Some(0), ..Filter::default() }, &[]);
    check(Filter { sender: Some("eve".into()), state: Some(State::Held), ..Filter::default() }, &[&old]);
}

#[test]
fn an_unreadable_metadata_file_is_reported_and_the_rest_still_listed() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let good = put(&store, "2026-11-28T08:00:00Z", "a@x", "good");
    let bad = put(&store, "2026-11-28T09:00:00Z", "b@x", "bad");
    fs::write(dir.path().join("20261128").join(format!("{bad}.json")), b"{\"version\": 1, \"id\"").unwrap();
    let listing = store.list(&Filter::default()).unwrap();
    assert_eq!(ids(&listing.entries), [good]);
    assert_eq!(listing.problems.len(), 1);
    assert!(matches!(listing.problems[0], StoreError::Corrupt { .. }));
    assert!(matches!(store.get(&bad), Err(StoreError::Corrupt { .. })));
}

#[test]
fn metadata_naming_another_id_is_corrupt() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let a = put(&store, "2026-11-28T08:00:00Z", "a@x", "a");
    let b = put(&store, "2026-11-28T09:00:00Z", "b@x", "b");
    let day = dir.path().join("20261128");
    fs::copy(day.join(format!("{a}.json")), day.join(format!("{b}.json"))).unwrap();
    assert!(matches!(store.get(&b), Err(StoreError::Corrupt { .. })));
}

#[test]
fn set_state_appends_each_change_to_the_history() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let id = put(&store, "2026-11-28T08:00:00Z", "a@x", "a");
    let e = store.set_state(&id, State::Held, change("alice", "release via smtp", "421 try later")).unwrap();
    assert_eq!(e.state, State::Held);
    let e = store.set_state(&id, State::Released, change("bob", "release via smtp", "250 queued")).unwrap();
    assert_eq!(e.state, State::Released);
    let stored = store.get(&id).unwrap();
    assert_eq!(stored, e);
    let trail: Vec<_> = stored.history.iter().map(|h| (h.state, h.who.as_str(), h.result.as_str())).collect();
    assert_eq!(
        trail,
        [
            (State::Held, DAEMON, "held: quarantine score=70"),
            (State::Held, "alice", "421 try later"),
            (State::Released, "bob", "250 queued"),
        ]
    );
    // Released messages keep their bytes until purged.
    assert_eq!(store.message(&id).unwrap(), message("a"));
}

#[test]
fn illegal_transitions_are_refused_and_change_nothing() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let released = put(&store, "2026-11-28T08:00:00Z", "a@x", "a");
    store.set_state(&released, State::Released, change("alice", "release", "250")).unwrap();
    let before = store.get(&released).unwrap();
    for to in [State::Held, State::Released] {
        match store.set_state(&released, to, change("mallory", "x", "y")) {
            Err(StoreError::Transition { from: State::Released, to: t, .. }) => assert_eq!(t, to),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(store.get(&released).unwrap(), before);

    let deleted = put(&store, "2026-11-28T09:00:00Z", "b@x", "b");
    store.delete(&deleted, "alice").unwrap();
    for to in State::ALL {
        assert!(matches!(
            store.set_state(&deleted, to, change("mallory", "x", "y")),
            Err(StoreError::Transition { from: State::Deleted, .. })
        ));
    }
}

#[test]
fn delete_removes_the_bytes_and_keeps_a_tombstone() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let id = put(&store, "2026-11-28T08:00:00Z", "a@x", "a");
    let e = store.delete(&id, "alice").unwrap();
    assert_eq!(e.state, State::Deleted);
    let last = e.history.last().unwrap();
    assert_eq!((last.state, last.who.as_str(), last.action.as_str()), (State::Deleted, "alice", "delete"));
    assert!(!dir.path().join("20261128").join(format!("{id}.eml")).exists());
    assert_eq!(store.get(&id).unwrap(), e);
    assert!(matches!(store.message(&id), Err(StoreError::Deleted(_))));
    assert_eq!(ids(&all(&store)), [id]);
}

#[test]
fn files_are_0600_and_directories_0700_whatever_the_umask() {
    // The most permissive umask there is; the store must not rely on it. (Process-wide, but
    // every file this crate's tests check is created by the store, which sets modes itself.)
    // SAFETY: umask has no preconditions.
    let old = unsafe { libc::umask(0) };
    let dir = TempDir::new();
    let root = dir.path().join("var").join("quarantine");
    let store = Store::open(&root).unwrap();
    let id = put(&store, "2026-11-28T08:00:00Z", "a@x", "a");
    store.set_state(&id, State::Held, change("alice", "note", "rewrites the metadata")).unwrap();
    // SAFETY: as above.
    unsafe { libc::umask(old) };

    assert_eq!(mode(&dir.path().join("var")), 0o700);
    assert_eq!(mode(&root), 0o700);
    assert_eq!(mode(&root.join(".lock")), 0o600);
    let day = root.join("20261128");
    assert_eq!(mode(&day), 0o700);
    assert_eq!(mode(&day.join(format!("{id}.eml"))), 0o600);
    assert_eq!(mode(&day.join(format!("{id}.json"))), 0o600);
}

#[test]
fn open_existing_refuses_a_missing_directory() {
    let dir = TempDir::new();
    let missing = dir.path().join("nope");
    assert!(matches!(Store::open_existing(&missing), Err(StoreError::NoStore(_))));
    assert!(!missing.exists(), "open_existing must not create the store");
    Store::open(&missing).unwrap();
    Store::open_existing(&missing).unwrap();
}

#[test]
fn open_refuses_a_file_where_the_store_should_be() {
    let dir = TempDir::new();
    let file = dir.path().join("file");
    fs::write(&file, b"").unwrap();
    assert!(matches!(Store::open(&file), Err(StoreError::Io { .. })));
}

#[test]
fn put_refuses_a_time_the_store_cannot_record() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let mut new = new_entry("2026-11-28T08:00:00Z", "a@x", "a");
    new.received = std::time::SystemTime::UNIX_EPOCH - Duration::from_secs(1);
    assert!(matches!(store.put(b"x", new), Err(StoreError::Invalid(_))));
    assert!(all(&store).is_empty());
}

/// Leaves what interrupted writers leave: a partial message with no metadata, a temporary
/// metadata file, and a delete cut short after its commit. Returns (whole id, cut-delete id).
fn plant_garbage(store: &Store, root: &Path) -> (Id, Id) {
    let whole = put(store, "2026-11-28T08:00:00Z", "a@x", "whole");
    let cut = put(store, "2026-11-28T09:00:00Z", "b@x", "cut");
    let kept_bytes = fs::read(root.join("20261128").join(format!("{cut}.eml"))).unwrap();
    store.delete(&cut, "alice").unwrap();
    let day = root.join("20261128");
    fs::write(day.join(format!("{cut}.eml")), kept_bytes).unwrap();
    fs::write(day.join("20261128T100000Z-aaaaaaaaaaaa.eml"), b"From: half").unwrap();
    fs::write(day.join("20261128T110000Z-bbbbbbbbbbbb.eml"), b"whole message, metadata never written")
        .unwrap();
    fs::write(day.join("20261128T110000Z-bbbbbbbbbbbb.json.tmp"), b"{\"version\":").unwrap();
    fs::create_dir(root.join("20261127")).unwrap();
    fs::write(root.join("20261127").join("20261127T100000Z-cccccccccccc.json.tmp"), b"").unwrap();
    (whole, cut)
}

#[test]
fn open_removes_temporary_files_and_messages_without_metadata() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let (whole, cut) = plant_garbage(&store, dir.path());

    let _no_child = no_child_starting();
    let reopened = Store::open(dir.path()).unwrap();
    // The cut-short delete needs its metadata read; open leaves it to purge.
    let mut want =
        vec![format!("{cut}.eml"), format!("{cut}.json"), format!("{whole}.eml"), format!("{whole}.json")];
    want.sort();
    assert_eq!(files_under(dir.path()), want);
    assert!(!dir.path().join("20261127").exists(), "an emptied day directory was kept");
    assert_eq!(reopened.message(&whole).unwrap(), message("whole"));
    assert!(matches!(reopened.message(&cut), Err(StoreError::Deleted(_))));
}

#[test]
fn purge_also_removes_the_bytes_of_a_delete_cut_short() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let (whole, cut) = plant_garbage(&store, dir.path());

    let dry = store.purge_before(at("2000-01-01"), true).unwrap();
    assert!(dry.entries.is_empty());
    assert_eq!(dry.garbage.len(), 5, "{:?}", dry.garbage);
    assert_eq!(files_under(dir.path()).len(), 8, "a dry run removed something");

    let purged = store.purge_before(at("2000-01-01"), false).unwrap();
    assert_eq!(purged, dry);
    let mut want = vec![format!("{cut}.json"), format!("{whole}.eml"), format!("{whole}.json")];
    want.sort();
    assert_eq!(files_under(dir.path()), want);
}

#[test]
fn the_sweep_leaves_files_it_does_not_recognise_and_unreadable_entries_alone() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let id = put(&store, "2026-11-28T08:00:00Z", "a@x", "a");
    let day = dir.path().join("20261128");
    fs::write(day.join(format!("{id}.json")), b"not json").unwrap();
    fs::write(day.join("notes.txt"), b"admin's notes").unwrap();
    fs::write(day.join("x.tmp"), b"someone else's").unwrap();
    fs::write(dir.path().join("README"), b"").unwrap();
    store.purge_before(at("2000-01-01"), false).unwrap();
    Store::open(dir.path()).unwrap();
    let mut want = vec![format!("{id}.eml"), format!("{id}.json"), "notes.txt".into(), "x.tmp".into()];
    want.sort();
    assert_eq!(files_under(dir.path()), want);
    assert!(dir.path().join("README").exists());
}

#[test]
fn open_does_not_sweep_while_a_writer_holds_the_store() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let day = dir.path().join("20261128");
    fs::create_dir(&day).unwrap();
    // A put in progress: message written, metadata not yet.
    let in_flight = day.join("20261128T100000Z-aaaaaaaaaaaa.eml");
    fs::write(&in_flight, b"From: in flight").unwrap();
    let writer = store.lock_store(LockKind::Shared).unwrap();
    Store::open(dir.path()).unwrap();
    assert!(in_flight.exists(), "open swept a file a live writer owns");
    drop(writer);
    let _no_child = no_child_starting();
    Store::open(dir.path()).unwrap();
    assert!(!in_flight.exists(), "with no writer, the orphan is garbage");
}

#[test]
fn purge_removes_entries_older_than_the_cutoff_whatever_their_state() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let held = put(&store, "2026-10-01T08:00:00Z", "a@x", "old held");
    let released = put(&store, "2026-10-02T08:00:00Z", "b@x", "old released");
    store.set_state(&released, State::Released, change("alice", "release", "250")).unwrap();
    let deleted = put(&store, "2026-10-03T08:00:00Z", "c@x", "old deleted");
    store.delete(&deleted, "alice").unwrap();
    let boundary = put(&store, "2026-10-31T00:00:00Z", "d@x", "at the cutoff");
    let recent = put(&store, "2026-11-28T08:00:00Z", "e@x", "recent");

    let cutoff = at("2026-10-31T00:00:00Z");
    let dry = store.purge_before(cutoff, true).unwrap();
    assert_eq!(dry.entries, [held.clone(), released.clone(), deleted.clone()]);
    assert_eq!(all(&store).len(), 5, "a dry run removed something");

    let purged = store.purge_before(cutoff, false).unwrap();
    assert_eq!(purged.entries, dry.entries);
    assert_eq!(ids(&all(&store)), [recent, boundary]);
    for gone in [&held, &released, &deleted] {
        assert!(matches!(store.get(gone), Err(StoreError::NotFound(_))));
        assert!(!dir.path().join(gone.day()).exists(), "emptied day directory {} kept", gone.day());
    }
}

#[test]
fn purge_by_age_counts_back_from_now() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let now = Timestamp::now();
    let old = put(&store, &now.saturating_sub(Duration::from_secs(31 * 86_400)).rfc3339(), "a@x", "old");
    let young = put(&store, &now.saturating_sub(Duration::from_secs(3600)).rfc3339(), "b@x", "young");
    let purged = store.purge(Duration::from_secs(30 * 86_400), false).unwrap();
    assert_eq!(purged.entries, [old]);
    assert_eq!(ids(&all(&store)), [young]);
}

#[test]
fn concurrent_state_changes_lose_no_history() {
    const THREADS: usize = 4;
    const CHANGES: usize = 25;
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let targets: Vec<Id> =
        (0..3).map(|i| put(&store, &format!("2026-11-28T08:00:0{i}Z"), "a@x", "contended")).collect();
    thread::scope(|s| {
        for t in 0..THREADS {
            let (store, targets) = (&store, &targets);
            s.spawn(move || {
                for n in 0..CHANGES {
                    for id in targets {
                        let who = format!("thread {t}");
                        store.set_state(id, State::Held, change(&who, "attempt", &n.to_string())).unwrap();
                    }
                }
            });
        }
    });
    for id in &targets {
        let e = store.get(id).unwrap();
        assert_eq!(e.history.len(), 1 + THREADS * CHANGES, "lost updates on {id}");
        for t in 0..THREADS {
            let mine: Vec<String> = e
                .history
                .iter()
                .filter(|h| h.who == format!("thread {t}"))
                .map(|h| h.result.clone())
                .collect();
            let want: Vec<String> = (0..CHANGES).map(|n| n.to_string()).collect();
            assert_eq!(mine, want, "thread {t}'s changes out of order or lost on {id}");
        }
    }
}

#[test]
fn readers_never_see_torn_metadata_while_writers_work() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let contended: Vec<Id> =
        (0..3).map(|i| put(&store, &format!("2026-11-28T08:00:0{i}Z"), "a@x", "contended")).collect();
    let writing = Arc::new(AtomicBool::new(true));
    let (mut reads, mut puts) = (0usize, Vec::new());
    thread::scope(|s| {
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (store, contended, writing) = (&store, &contended, Arc::clone(&writing));
                s.spawn(move || {
                    let mut n = 0;
                    // At least a few rounds even if the writers are done first.
                    while writing.load(Ordering::Acquire) || n < 5 {
                        let listing = store.list(&Filter::default()).unwrap();
                        assert!(listing.problems.is_empty(), "torn metadata: {:?}", listing.problems);
                        for id in contended {
                            let e = store.get(id).unwrap();
                            assert_eq!(e.state, State::Held);
                            assert_eq!(store.message(id).unwrap(), message("contended"));
                        }
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let (store, contended) = (&store, &contended);
                s.spawn(move || {
                    let mut mine = Vec::new();
                    for n in 0..20 {
                        for id in contended {
                            store
                                .set_state(id, State::Held, change("writer", "attempt", &"x".repeat(n * 50)))
                                .unwrap();
                        }
                        let t = format!("2026-11-29T0{w}:00:{n:02}Z");
                        mine.push(put(store, &t, "b@x", "new"));
                    }
                    mine
                })
            })
            .collect();
        for w in writers {
            puts.extend(w.join().unwrap());
        }
        writing.store(false, Ordering::Release);
        for r in readers {
            reads += r.join().unwrap();
        }
    });
    assert!(reads >= 10);
    let listed: HashSet<Id> = ids(&all(&store)).into_iter().collect();
    assert_eq!(listed.len(), 3 + puts.len());
    assert!(puts.iter().all(|id| listed.contains(id)));
}

/// Root working in a store that belongs to the daemon's user (a reviewer's `quarantine` command,
/// a trial `serve`) leaves everything it creates to that user, so the daemon can still open it.
#[test]
#[ignore = "needs root (gives files to another user): run by tests/run as root"]
fn what_root_creates_in_another_users_store_stays_theirs() {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "only root can give files away: run by tests/run as root");
    let dir = TempDir::new();
    let state = dir.path().join("state");
    fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
    let root = state.join("quarantine");
    let store = Store::open(&root).unwrap();
    let id = put(&store, "2026-11-28T20:15:02Z", "eve@example.net", "Invoice");
    store.set_state(&id, State::Released, change("root", "release", "ok")).unwrap();
    drop(store.release_lock().unwrap());
    // The store, its lock files, the day directory, the message and its (rewritten) metadata.
    let mut paths = vec![root.clone()];
    let mut i = 0;
    while i < paths.len() {
        if paths[i].is_dir() {
            let inside: Vec<_> = fs::read_dir(&paths[i]).unwrap().map(|e| e.unwrap().path()).collect();
            paths.extend(inside);
        }
        i += 1;
    }
    assert_eq!(paths.len(), 6, "{paths:?}");
    for p in &paths {
        let meta = fs::symlink_metadata(p).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (65534, 65534), "{}", p.display());
    }
}

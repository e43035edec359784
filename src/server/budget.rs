//! The in-flight byte budget: how much message data all connections together may hold in
//! memory, so that memory is bounded by the configuration and not by the traffic.
//!
//! A message grows in memory while the budget has room, taking it in grants of
//! [`GRANT`] bytes as it grows. When the budget has no room, the message goes on in a spool
//! file instead: an unlinked temporary file in `spool_dir` (nothing is left behind by a crash),
//! written packet by packet. No message ever waits for room while it is still arriving — a
//! wait there could deadlock, every holder waiting for the MTA to send more — so a spooled
//! message only waits at end of message, holding nothing, for room to be read back and
//! inspected; the messages ahead of it are either inspecting (and finish) or arriving (and
//! spool), so the wait always ends. A message larger than the whole budget waits for the whole
//! budget. If the spool cannot be written, the message gets the configured `on_error`.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::milter::EndOfMessage;
use crate::milter::session::Session;

/// Room is taken in steps of this many bytes, so that a message growing by 64 KiB packets
/// touches the shared semaphore once every few packets rather than at every one.
pub const GRANT: usize = 256 * 1024;

/// The budget shared by every connection. Permits count KiB.
pub struct Budget {
    room: Arc<Semaphore>,
    capacity_kib: u32,
    spool_dir: PathBuf,
}

impl Budget {
    pub fn new(bytes: usize, spool_dir: PathBuf) -> Budget {
        let capacity_kib = u32::try_from(bytes / 1024).unwrap_or(u32::MAX).max(1);
        Budget { room: Arc::new(Semaphore::new(capacity_kib as usize)), capacity_kib, spool_dir }
    }

    /// Bytes of message data held in memory right now, by every connection.
    pub fn in_use(&self) -> usize {
        (self.capacity_kib as usize - self.room.available_permits()) * 1024
    }
}

fn kib(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

/// One connection's share: the room its message in progress holds, or its spool file.
#[derive(Default)]
pub struct MessageMemory {
    /// Which message (see [`Session::message_number`]) this accounts for.
    number: u64,
    held: Option<OwnedSemaphorePermit>,
    held_bytes: usize,
    spool: Option<Spool>,
    /// The spool could not be written: the message is dropped as it arrives and gets
    /// `on_error` at its end.
    failed: bool,
}

impl MessageMemory {
    /// Forgets the message: its room goes back to the budget, its spool file away.
    pub fn reset(&mut self) {
        *self = MessageMemory::default();
    }

    /// The spool failed for this message; the caller applies `on_error`.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Whether the message in progress lives in a spool file.
    pub fn spooled(&self) -> bool {
        self.spool.is_some()
    }

    /// Accounts for what the last packet added to the message in progress: takes more room,
    /// or moves the message to (or on in) its spool file.
    pub async fn after_packet(&mut self, budget: &Budget, session: &mut Session) {
        if !session.in_message() {
            if self.number != 0 || self.held.is_some() || self.spool.is_some() {
                self.reset();
            }
            return;
        }
        if session.message_number() != self.number {
            self.reset();
            self.number = session.message_number();
        }
        let buffered = session.buffered();
        if buffered == 0 {
            return;
        }
        if self.failed {
            drop(session.take_buffered());
            return;
        }
        if let Some(spool) = &mut self.spool {
            let bytes = session.take_buffered();
            if let Err(e) = spool.write(bytes).await {
                self.fail(&e);
            }
            return;
        }
        if buffered <= self.held_bytes {
            return;
        }
        let want = (buffered - self.held_bytes).div_ceil(GRANT) * GRANT;
        match Arc::clone(&budget.room).try_acquire_many_owned(kib(want)) {
            Ok(permit) => {
                match &mut self.held {
                    Some(held) => held.merge(permit),
                    None => self.held = Some(permit),
                }
                self.held_bytes += want;
            }
            Err(_) => {
                let bytes = session.take_buffered();
                tracing::debug!(bytes = bytes.len(), "in-flight budget full; spooling the message");
                let spooled = match Spool::create(&budget.spool_dir).await {
                    Ok(mut spool) => spool.write(bytes).await.map(|()| spool),
                    Err(e) => Err(e),
                };
                self.held = None;
                self.held_bytes = 0;
                match spooled {
                    Ok(spool) => self.spool = Some(spool),
                    Err(e) => self.fail(&e),
                }
            }
        }
    }

    fn fail(&mut self, e: &std::io::Error) {
        tracing::warn!(error = %e, "cannot spool a message past the in-flight budget; it will get on_error");
        self.failed = true;
        self.spool = None;
        self.held = None;
        self.held_bytes = 0;
    }

    /// At end of message: a spooled message waits for room in the budget and is read back in
    /// front of its last bytes. Holds the room until [`MessageMemory::reset`].
    pub async fn load(&mut self, budget: &Budget, eom: &mut EndOfMessage) {
        let Some(mut spool) = self.spool.take() else { return };
        let total = spool.len + eom.message.len();
        let want = kib(total).min(budget.capacity_kib);
        let Ok(permit) = Arc::clone(&budget.room).acquire_many_owned(want).await else { return };
        self.held = Some(permit);
        self.held_bytes = want as usize * 1024;
        match spool.read_all(total).await {
            Ok(mut all) => {
                all.extend_from_slice(&eom.message);
                eom.message = all;
            }
            Err(e) => self.fail(&e),
        }
    }
}

/// An unlinked temporary file holding the beginning of one message. Its I/O runs on the
/// blocking pool (the file moves there and back), never on the async runtime.
struct Spool {
    file: Option<std::fs::File>,
    len: usize,
}

/// Names for spool files where `O_TMPFILE` is not supported (they are unlinked at once).
static SPOOL_SEQUENCE: AtomicU64 = AtomicU64::new(0);

impl Spool {
    async fn create(dir: &Path) -> std::io::Result<Spool> {
        let dir = dir.to_path_buf();
        let file = tokio::task::spawn_blocking(move || open_unlinked(&dir))
            .await
            .map_err(std::io::Error::other)??;
        Ok(Spool { file: Some(file), len: 0 })
    }

    /// Runs `f` on the file on the blocking pool.
    async fn with_file<R: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut std::fs::File) -> std::io::Result<R> + Send + 'static,
    ) -> std::io::Result<R> {
        let mut file = self.file.take().ok_or_else(|| std::io::Error::other("spool file lost"))?;
        let (file, result) = tokio::task::spawn_blocking(move || {
            let result = f(&mut file);
            (file, result)
        })
        .await
        .map_err(std::io::Error::other)?;
        self.file = Some(file);
        result
    }

    async fn write(&mut self, bytes: Vec<u8>) -> std::io::Result<()> {
        let n = bytes.len();
        self.with_file(move |f| f.write_all(&bytes)).await?;
        self.len += n;
        Ok(())
    }

    async fn read_all(&mut self, capacity: usize) -> std::io::Result<Vec<u8>> {
        let len = self.len as u64;
        self.with_file(move |f| {
            f.seek(SeekFrom::Start(0))?;
            let mut out = Vec::with_capacity(capacity);
            f.take(len).read_to_end(&mut out)?;
            Ok(out)
        })
        .await
    }
}

fn open_unlinked(dir: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmpfile = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(dir);
    match tmpfile {
        Ok(f) => Ok(f),
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            Err(e)
        }
        Err(_) => {
            let n = SPOOL_SEQUENCE.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(".inspect-milter-spool-{}-{n}", std::process::id()));
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            std::fs::remove_file(&path)?;
            Ok(f)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::milter::command::{Command, Family};

    fn session_in_body(budget_cap: usize) -> Session {
        let mut s = Session::new(budget_cap);
        s.handle(Command::OptNeg { version: 6, actions: 0x1ff, protocol: 0x1f_ffff }).unwrap();
        s.handle(Command::Connect { hostname: b"c", family: Family::Inet, port: 1, address: b"192.0.2.1" })
            .unwrap();
        s.handle(Command::Helo(b"c")).unwrap();
        s.handle(Command::Mail(vec![b"<a@example.org>"])).unwrap();
        s.handle(Command::Rcpt(vec![b"<b@example.org>"])).unwrap();
        s.handle(Command::EndOfHeaders).unwrap();
        s
    }

    #[tokio::test]
    async fn a_message_past_the_budget_is_spooled_and_read_back_whole() {
        let dir = std::env::temp_dir();
        let budget = Budget::new(512 * 1024, dir);
        // A first message takes the whole budget and stays in memory.
        let mut first = session_in_body(64 << 20);
        let mut first_memory = MessageMemory::default();
        first.handle(Command::Body(&vec![b'x'; 500 * 1024])).unwrap();
        first_memory.after_packet(&budget, &mut first).await;
        assert!(!first_memory.spooled());
        assert_eq!(budget.in_use(), 512 * 1024);
        // The second finds no room: it goes to disk, chunk by chunk, holding no memory.
        let mut second = session_in_body(64 << 20);
        let mut memory = MessageMemory::default();
        let mut expected = b"\r\n".to_vec();
        for i in 0..5u8 {
            let chunk = vec![b'a' + i; 100_000];
            expected.extend_from_slice(&chunk);
            second.handle(Command::Body(&chunk)).unwrap();
            memory.after_packet(&budget, &mut second).await;
            assert!(memory.spooled());
            assert_eq!(second.buffered(), 0, "nothing of a spooled message stays in memory");
        }
        assert_eq!(budget.in_use(), 512 * 1024, "the spooled message took no room");
        let Ok(crate::milter::session::Step::Filter(eom)) = second.handle(Command::EndOfMessage(b"tail"))
        else {
            panic!("end of message expected")
        };
        let mut eom = *eom;
        eom.message.shrink_to_fit();
        expected.extend_from_slice(b"tail");
        // At end of message it waits for room: the first message finishing makes it.
        let shared = &budget;
        let load = async move {
            memory.load(shared, &mut eom).await;
            (memory, eom)
        };
        tokio::pin!(load);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut load).await.is_err(),
            "no room while the first message holds the budget"
        );
        first_memory.reset();
        let (memory, eom) = load.await;
        assert!(!memory.failed());
        assert_eq!(eom.message, expected, "spool and last bytes, in order");
        assert_eq!(
            budget.in_use(),
            500_006usize.div_ceil(1024) * 1024,
            "the read-back message holds its room"
        );
        drop(memory);
        assert_eq!(budget.in_use(), 0);
    }

    #[tokio::test]
    async fn an_unwritable_spool_fails_the_message_and_keeps_memory_bounded() {
        let budget = Budget::new(256 * 1024, PathBuf::from("/nonexistent/spool"));
        let mut s = session_in_body(64 << 20);
        let mut memory = MessageMemory::default();
        for _ in 0..4 {
            s.handle(Command::Body(&vec![b'x'; 200 * 1024])).unwrap();
            memory.after_packet(&budget, &mut s).await;
        }
        assert!(memory.failed());
        assert_eq!(s.buffered(), 0);
        assert_eq!(budget.in_use(), 0);
    }

    use std::time::Duration;
}

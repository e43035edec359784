//! One milter connection: read packets, feed the session, write replies, and at end of
//! message run the filter on the pool while keeping the MTA's timers alive with PROGRESS.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::{Instant, interval_at, timeout_at};
use tracing::{debug, trace, warn};

use super::budget::MessageMemory;
use super::listen::Stream;
use super::{Phase, Shared};
use crate::milter::codec::{self, MAX_PACKET};
use crate::milter::command::Command;
use crate::milter::response::Response;
use crate::milter::session::{Session, Step};
use crate::milter::{EndOfMessage, Filter, Verdict};

/// The read buffer of a connection between messages: enough for the commands of an SMTP
/// session's start; a message's body chunks get 64 KiB more while it lasts.
const IDLE_READ_BUFFER: usize = 8 * 1024;

/// Why a connection ended, for the one log line it gets.
enum End {
    /// The MTA closed it or said QUIT.
    Closed,
    Idle,
    MessageTimeout,
    Shutdown,
    Protocol(String),
    Io(std::io::Error),
}

pub(super) async fn serve(mut stream: Stream, shared: Arc<Shared>, mut phase: watch::Receiver<Phase>) {
    let opts = &shared.options;
    let metrics = crate::metrics::get();
    metrics.connections.inc();
    let mut session = Session::new(opts.max_message_size);
    let mut buf: Vec<u8> = Vec::with_capacity(IDLE_READ_BUFFER);
    let mut start = 0usize;
    let mut out: Vec<u8> = Vec::new();
    // The filter snapshot of the message in progress (taken when the message begins).
    let mut snapshot: Option<Arc<dyn Filter>> = None;
    let mut message_deadline: Option<Instant> = None;
    // The message in progress's share of the in-flight budget, or its spool file.
    let mut memory = MessageMemory::default();
    // A BODY packet whose payload is being read straight into the message buffer.
    let mut direct: Option<Direct> = None;

    let end = 'conn: loop {
        // Handle every whole packet already buffered.
        loop {
            let (command, used) = match codec::decode(&buf[start..]) {
                Ok(Some((packet, used))) => match Command::parse(packet) {
                    Ok(c) => (c, used),
                    Err(e) => break 'conn End::Protocol(e.to_string()),
                },
                Ok(None) => break,
                Err(e) => break 'conn End::Protocol(e.to_string()),
            };
            trace!(?command, "received");
            let was_in_message = session.in_message();
            let step = session.handle(command);
            start += used;
            let step = match step {
                Ok(s) => s,
                Err(e) => break 'conn End::Protocol(e.to_string()),
            };
            if !was_in_message && session.in_message() {
                snapshot = Some(Arc::clone(&shared.filters.borrow()));
                shared.begun.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                message_deadline = Some(Instant::now() + opts.message_timeout);
            }
            match step {
                Step::Reply(replies) => {
                    replies.iter().for_each(|r| r.encode(&mut out));
                    memory.after_packet(&shared.budget, &mut session).await;
                }
                Step::Close => break 'conn End::Closed,
                Step::Filter(eom) => {
                    let filter = snapshot.take().unwrap_or_else(|| Arc::clone(&shared.filters.borrow()));
                    message_deadline = None;
                    let mut eom = *eom;
                    if memory.spooled() {
                        // Replies so far go out before the wait for room.
                        if let Err(e) = stream.write_all(&out).await {
                            break 'conn End::Io(e);
                        }
                        out.clear();
                        let load = memory.load(&shared.budget, &mut eom);
                        if let Err(end) = with_progress(&mut stream, &shared, &mut phase, load).await {
                            break 'conn end;
                        }
                    }
                    let verdict = if memory.failed() {
                        crate::metrics::get().filter_errors.inc();
                        shared.options.on_error.clone()
                    } else {
                        match run_filter(&mut stream, &shared, filter, eom, &mut phase).await {
                            Ok(v) => v,
                            Err(end) => break 'conn end,
                        }
                    };
                    memory.reset();
                    match session.finish(verdict) {
                        Ok(replies) => replies.iter().for_each(|r| r.encode(&mut out)),
                        Err(e) => break 'conn End::Protocol(e.to_string()),
                    }
                }
            }
        }
        if !session.in_message() {
            snapshot = None;
            message_deadline = None;
            memory.reset();
        }
        // All replies for what was read go out in one write.
        if !out.is_empty() {
            if let Err(e) = stream.write_all(&out).await {
                break End::Io(e);
            }
            out.clear();
        }
        if *phase.borrow() != Phase::Running && !session.in_message() {
            break End::Shutdown;
        }
        // Make room: drop consumed bytes, and reserve for at least one more header.
        if start > 0 {
            buf.drain(..start);
            start = 0;
        }
        if buf.is_empty() && !session.in_message() && buf.capacity() > IDLE_READ_BUFFER {
            // Between messages the connection may stay idle for long: it keeps a small
            // buffer, not room for body chunks (1,000 idle connections would hold 64 MB).
            buf = Vec::with_capacity(IDLE_READ_BUFFER);
        } else if buf.capacity() - buf.len() < 4096 {
            buf.reserve((64 * 1024).min(MAX_PACKET as usize));
        }
        let now = Instant::now();
        if message_deadline.is_some_and(|m| m <= now) {
            break End::MessageTimeout;
        }
        let idle_deadline = now + opts.idle_timeout;
        let deadline = message_deadline.map_or(idle_deadline, |m| m.min(idle_deadline));
        let in_message = session.in_message();
        // Where the next bytes go. In a message's body the next packet is nearly always a
        // body chunk: it is read into the message buffer itself, its 5-byte header over the
        // buffer's last 5 bytes (put back afterwards), so its payload lands where it belongs
        // without a copy (see `settle`). Anything else is read into `buf`.
        let mut lent: Option<Lent> = None;
        let (target, limit) = match &direct {
            Some(d) => match session.body_buffer(d.remaining) {
                Some(raw) => (raw, d.remaining),
                None => break End::Protocol("a body chunk in progress no longer fits the message".into()),
            },
            // Only into room the buffer already has: growing it for a chunk that may not come
            // (the end of message) would double a buffer sized for the whole message.
            None => {
                let room = session.body_room().unwrap_or(0);
                match session
                    .body_buffer(0)
                    .filter(|raw| buf.is_empty() && raw.len() >= 5 && raw.capacity() - raw.len() >= 4096)
                {
                    Some(raw) => {
                        let at = raw.len() - 5;
                        let mut keep = [0u8; 5];
                        keep.copy_from_slice(&raw[at..]);
                        let spare = raw.capacity() - raw.len();
                        raw.truncate(at);
                        lent = Some(Lent { at, keep, room });
                        (raw, 5 + spare.min(BODY_CHUNK))
                    }
                    None => (&mut buf, usize::MAX),
                }
            }
        };
        let mut limited = (&mut stream).take(limit as u64);
        let read = tokio::select! {
            read = timeout_at(deadline, limited.read_buf(target)) => match read {
                Ok(Ok(0)) => Err(End::Closed),
                Ok(Ok(n)) => Ok(n),
                Ok(Err(e)) => Err(End::Io(e)),
                Err(_) if message_deadline.is_some_and(|m| m <= Instant::now()) => Err(End::MessageTimeout),
                Err(_) => Err(End::Idle),
            },
            changed = phase.changed() => {
                // Drain: an idle connection closes at once; a message in flight goes on.
                if changed.is_err() || *phase.borrow() == Phase::Stop || !in_message {
                    Err(End::Shutdown)
                } else {
                    Ok(0)
                }
            }
        };
        if let Some(lent) = lent {
            // The session's stage and cap are as they were when the buffer was lent.
            let Some(raw) = session.body_buffer(0) else {
                break End::Protocol("the message buffer went away during a read".into());
            };
            direct = settle(raw, lent, &mut buf);
        } else if let (Some(d), Ok(n)) = (&mut direct, &read) {
            d.remaining -= n;
        }
        if let Err(end) = read {
            break end;
        }
        if let Some(d) = direct.as_ref().filter(|d| d.remaining == 0) {
            let payload = d.payload;
            direct = None;
            match session.body_appended(payload) {
                Ok(replies) => replies.iter().for_each(|r| r.encode(&mut out)),
                Err(e) => break End::Protocol(e.to_string()),
            }
            memory.after_packet(&shared.budget, &mut session).await;
        }
    };
    metrics.connections.dec();
    if matches!(end, End::Protocol(_)) {
        metrics.protocol_errors.inc();
    }
    let queue_id = session.queue_id().unwrap_or("-").to_string();
    let in_message = session.in_message();
    match end {
        End::Closed if in_message => {
            debug!(queue_id, "MTA closed the connection in the middle of a message; it was dropped")
        }
        End::Closed => debug!("connection closed"),
        End::Idle => debug!("idle timeout; connection closed"),
        End::MessageTimeout => {
            warn!(queue_id, "message not finished within the message timeout; connection closed")
        }
        End::Shutdown => debug!("connection closed for shutdown"),
        End::Protocol(why) => warn!(queue_id, error = %why, "protocol error; connection closed"),
        End::Io(e) => debug!(error = %e, "connection error"),
    }
}

/// The largest body chunk Postfix and Sendmail send (libmilter's `MILTER_CHUNK_SIZE`); a
/// larger one is read in place too, in two reads.
const BODY_CHUNK: usize = 65535;

/// The payload of a BODY packet being read straight into the message buffer.
struct Direct {
    payload: usize,
    remaining: usize,
}

/// The message buffer's last 5 bytes, lent to a read for a packet header.
struct Lent {
    /// Where they were, and so where what was read begins.
    at: usize,
    keep: [u8; 5],
    /// Bytes the message could still take before the size cap when they were lent.
    room: usize,
}

/// After a read into the message buffer `raw` over the bytes `lent` describes: a BODY packet
/// that fits the message whole stays in place, the lent bytes put back, and whatever followed
/// it moves to `buf`; anything else (another command, a chunk past the size cap) moves to
/// `buf` whole, to be handled as any packet. Returns the body chunk in progress, if any.
fn settle(raw: &mut Vec<u8>, lent: Lent, buf: &mut Vec<u8>) -> Option<Direct> {
    let Lent { at, keep, room } = lent;
    let payload = raw
        .get(at..at + 5)
        .filter(|h| h[4] == crate::milter::command::code::BODY)
        .map(|h| u32::from_be_bytes([h[0], h[1], h[2], h[3]]))
        .filter(|&len| (1..=MAX_PACKET).contains(&len))
        .map(|len| len as usize - 1)
        .filter(|&payload| payload <= room);
    match payload {
        Some(payload) => {
            let here = (raw.len() - at - 5).min(payload);
            let end = at + 5 + here;
            buf.extend_from_slice(&raw[end..]);
            raw.truncate(end);
            raw[at..at + 5].copy_from_slice(&keep);
            Some(Direct { payload, remaining: payload - here })
        }
        None => {
            buf.extend_from_slice(&raw[at..]);
            raw.truncate(at);
            raw.extend_from_slice(&keep);
            None
        }
    }
}

/// Runs `work` while sending PROGRESS, so the MTA's timers do not fire. `Err` ends the
/// connection.
async fn with_progress<T>(
    stream: &mut Stream,
    shared: &Shared,
    phase: &mut watch::Receiver<Phase>,
    work: impl std::future::Future<Output = T>,
) -> Result<T, End> {
    tokio::pin!(work);
    let every = shared.options.progress_interval;
    let mut ticker = interval_at(Instant::now() + every, every);
    let progress = Response::Progress.to_bytes();
    loop {
        tokio::select! {
            r = &mut work => return Ok(r),
            _ = ticker.tick() => {
                trace!("progress");
                stream.write_all(&progress).await.map_err(End::Io)?;
            }
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow() == Phase::Stop {
                    return Err(End::Shutdown);
                }
            }
        }
    }
}

/// Runs the filter on the pool, sending PROGRESS while it works. `Err` ends the connection.
async fn run_filter(
    stream: &mut Stream,
    shared: &Shared,
    filter: Arc<dyn Filter>,
    eom: EndOfMessage,
    phase: &mut watch::Receiver<Phase>,
) -> Result<Verdict, End> {
    let queue_id = eom.envelope.queue_id.clone().unwrap_or_else(|| "-".to_string());
    let job = shared.pool.run(move || {
        let verdict = filter.end_of_message(&eom);
        // The message's buffer goes on to a later message, pages and all.
        crate::memory::recycle(eom.message);
        verdict
    });
    let result = with_progress(stream, shared, phase, job).await?;
    Ok(match result {
        Ok(Ok(verdict)) => verdict,
        Ok(Err(e)) => {
            crate::metrics::get().filter_errors.inc();
            warn!(queue_id, error = %e, "filter failed; applying on_error");
            shared.options.on_error.clone()
        }
        Err(panic) => {
            crate::metrics::get().filter_errors.inc();
            warn!(queue_id, error = %panic, "filter panicked; applying on_error");
            shared.options.on_error.clone()
        }
    })
}

//! `inspect-milter quarantine list|show|delete|purge`: the security reviewer's view of the
//! quarantine — what is held, why each message was held (every hit with its rule, part and
//! snippet, every part that could not be inspected), what happened to it since, and the
//! commands that delete and age out entries.
//!
//! Everything printed for people goes through `terminal::escape`, because subjects, senders,
//! headers and snippets are written by whoever sent the mail. Raw message bytes are written
//! only to a file or to a standard output that is not a terminal.
//!
//! Exit codes, as for every subcommand: 0 success (an empty listing included — it is not a
//! finding), 2 error (no store, no such id, an unreadable or corrupt entry, a refused change).

use std::io::{self, IsTerminal, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::Value;

use super::entry::{Entry, State};
use super::error::StoreError;
use super::id::Id;
use super::store::{Filter, Store};
use super::terminal::{escape, escape_bytes, escape_cut, json_safe};
use super::time::{Timestamp, parse_duration};
use crate::config::ConfigSource;

/// Success.
pub const EXIT_OK: u8 = 0;
/// An error: the store cannot be opened or read, an id does not exist, a change was refused.
pub const EXIT_ERROR: u8 = 2;

/// The decisions a listing can be filtered on (the design's names).
const DECISIONS: [&str; 6] = ["accept", "tag", "quarantine", "reject", "tempfail", "discard"];
/// Column widths past which attacker-chosen text is cut in the table.
const SENDER_WIDTH: usize = 32;
const SUBJECT_WIDTH: usize = 48;
const RULES_WIDTH: usize = 40;
/// `show` prints at most this many header lines, each cut to `HEADER_WIDTH` characters: a
/// hostile message can carry megabytes of headers, and `--raw` has them all.
const MAX_HEADER_LINES: usize = 100;
const HEADER_WIDTH: usize = 200;

#[derive(Debug, Args)]
pub struct QuarantineArgs {
    /// The quarantine store directory [default: the configuration's `quarantine.dir`].
    #[arg(long, value_name = "DIR", global = true)]
    pub store: Option<PathBuf>,
    /// Configuration file, for `quarantine.dir` and `release` [default: $INSPECT_MILTER_CONFIG,
    /// else /etc/inspect-milter/config.yaml when it exists, as the daemon's, else the built-in
    /// defaults].
    #[arg(long, short = 'c', value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: QuarantineCommand,
}

#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// List quarantined messages, newest first.
    List(ListArgs),
    /// Show one message: envelope, headers, why it was held, coverage, TLS and history.
    Show(ShowArgs),
    /// Delete messages: their bytes are removed; the record of what was held, why, and who
    /// deleted it stays until purged.
    Delete(DeleteArgs),
    /// Remove every entry received longer ago than a given age, whatever its state.
    Purge(PurgeArgs),
    /// Deliver held messages, marked so the milter does not hold them again.
    ///
    /// Our copy goes to the original recipients (or --to) over SMTP to `release.relay` with
    /// STARTTLS (required by default), or through the MTA's sendmail program
    /// (`release.method`). A message the MTA holds (quarantine.mode hold or both) is released
    /// there with `postsuper -H QUEUE_ID`, which works only when this command runs on the
    /// Postfix host.
    Release(ReleaseArgs),
}

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// Entries to release.
    #[arg(required = true, value_name = "ID")]
    pub ids: Vec<String>,
    /// Deliver to these recipients instead of the original ones (repeatable).
    #[arg(long = "to", value_name = "ADDR", value_parser = recipient)]
    pub to: Vec<String>,
    /// Say what would be done, and do nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// A `--to` address as it goes into `RCPT TO:<…>`: `local@domain` (or `postmaster`), with no
/// space, control character or angle bracket. Refused rather than cleaned up, so the message
/// never goes to an address other than the one typed.
fn recipient(s: &str) -> Result<String, String> {
    if let Some(c) = s.chars().find(|c| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>')) {
        return Err(format!("{:?} is not allowed in an address", c));
    }
    let ok = match s.rsplit_once('@') {
        Some((local, domain)) => !local.is_empty() && !domain.is_empty(),
        None => s.eq_ignore_ascii_case("postmaster"),
    };
    if !ok {
        return Err("expected local@domain (or postmaster)".to_string());
    }
    Ok(s.to_string())
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Received at or after WHEN: an age (`2h`, `7d`) or a date (`2026-11-28`,
    /// `2026-11-28T20:00:00Z`).
    #[arg(long, value_name = "WHEN", value_parser = When::parse)]
    pub since: Option<When>,
    /// Received at or before WHEN: an age or a date, as for `--since`.
    #[arg(long, value_name = "WHEN", value_parser = When::parse)]
    pub until: Option<When>,
    /// Only messages this rule hit (exact rule name).
    #[arg(long, value_name = "RULE")]
    pub rule: Option<String>,
    /// Only senders containing TEXT (case-insensitive).
    #[arg(long, value_name = "TEXT")]
    pub sender: Option<String>,
    /// Only messages with a recipient containing TEXT (case-insensitive).
    #[arg(long, value_name = "TEXT")]
    pub recipient: Option<String>,
    /// Only messages with this decision.
    #[arg(long, value_name = "DECISION", value_parser = DECISIONS)]
    pub decision: Option<String>,
    /// Only messages with a part not inspected for this reason (`encrypted-archive`, …).
    // Only the reasons there are: a misspelt one would match nothing and look like an empty
    // quarantine.
    #[arg(long, value_name = "REASON", value_parser = clap::builder::PossibleValuesParser::new(crate::inspect::Reason::ALL.map(crate::inspect::Reason::as_str)))]
    pub reason: Option<String>,
    /// Only messages in this state.
    #[arg(long, value_name = "STATE", value_parser = ["held", "released", "deleted"])]
    pub state: Option<String>,
    /// At most N messages, the newest.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// One JSON object per line (the metadata without the full report; `show --json` has it).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The message's id, as `list` prints it.
    #[arg(value_name = "ID")]
    pub id: String,
    /// The whole entry as JSON, inspection report included.
    #[arg(long, conflicts_with_all = ["raw", "output"])]
    pub json: bool,
    /// Write the original message, byte for byte, to standard output (refused when that is a
    /// terminal: the bytes may hold escape sequences).
    #[arg(long, conflicts_with = "output")]
    pub raw: bool,
    /// Write the original message to FILE (created with mode 0600; an existing file is never
    /// overwritten).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The ids of the messages to delete.
    #[arg(value_name = "ID", required = true)]
    pub ids: Vec<String>,
    /// Say what would be deleted; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Remove entries received longer ago than AGE (`30d`, `12h`, `2w`). Required: there is no
    /// default retention, since removing held mail must be asked for.
    #[arg(long, value_name = "AGE", value_parser = parse_duration, required = true)]
    pub older_than: Duration,
    /// Say what would be removed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// A point in time as typed on the command line: an age before now, or a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Ago(Duration),
    At(Timestamp),
}

impl When {
    pub fn parse(s: &str) -> Result<When, String> {
        if let Ok(d) = parse_duration(s) {
            return Ok(When::Ago(d));
        }
        Timestamp::parse_rfc3339(s).map(When::At).map_err(|_| {
            format!(
                "invalid time {s:?}: expected an age such as 2h or 7d, or a date such as 2026-11-28 \
                 or 2026-11-28T20:00:00Z"
            )
        })
    }

    pub fn resolve(self, now: Timestamp) -> Timestamp {
        match self {
            When::Ago(d) => now.saturating_sub(d),
            When::At(t) => t,
        }
    }
}

/// Where a command writes, and the facts about its surroundings it depends on; tests pass
/// buffers and fixed values.
pub struct Console<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    /// Standard output is a terminal: raw message bytes are not written to it.
    pub out_is_terminal: bool,
    /// "Now", for ages such as `--since 2h` and `--older-than 30d`.
    pub now: Timestamp,
    /// Who is acting, for the history of what they change.
    pub user: String,
}

/// Runs a `quarantine` subcommand on the real standard output and error; returns the exit code.
pub fn run(args: QuarantineArgs, source: &ConfigSource) -> u8 {
    let out_is_terminal = io::stdout().is_terminal();
    let (stdout, stderr) = (io::stdout(), io::stderr());
    let (mut out, mut err) = (stdout.lock(), stderr.lock());
    let mut console = Console {
        out: &mut out,
        err: &mut err,
        out_is_terminal,
        now: Timestamp::now(),
        user: current_user(),
    };
    run_with(args, source, &mut console)
}

/// Opens the store named by `--store` (or the configuration's) and runs the subcommand.
pub fn run_with(args: QuarantineArgs, source: &ConfigSource, c: &mut Console<'_>) -> u8 {
    let config = match source.load() {
        Ok(config) => config,
        Err(e) => {
            let _ = writeln!(c.err, "inspect-milter: {e}");
            return EXIT_ERROR;
        }
    };
    let root = args.store.clone().unwrap_or_else(|| config.quarantine.dir.clone());
    let store = match Store::open_existing(&root) {
        Ok(s) => s,
        Err(e) => {
            let code = report_error(c, &e);
            // Which file said where the store is, when nobody typed it.
            if args.store.is_none() && !source.is_given() {
                let _ = writeln!(c.err, "inspect-milter: quarantine.dir from {source}");
            }
            return code;
        }
    };
    match args.command {
        QuarantineCommand::List(a) => run_list(&store, &a, c),
        QuarantineCommand::Show(a) => run_show(&store, &a, c),
        QuarantineCommand::Delete(a) => run_delete(&store, &a, c),
        QuarantineCommand::Purge(a) => run_purge(&store, &a, c),
        QuarantineCommand::Release(a) => super::release::run_release(&store, &a, c, &config.release),
    }
}

/// `quarantine list`.
pub fn run_list(store: &Store, a: &ListArgs, c: &mut Console<'_>) -> u8 {
    finish(c, |c| {
        let filter = Filter {
            since: a.since.map(|w| w.resolve(c.now)),
            until: a.until.map(|w| w.resolve(c.now)),
            rule: a.rule.clone(),
            sender: a.sender.clone(),
            recipient: a.recipient.clone(),
            decision: a.decision.clone(),
            reason: a.reason.clone(),
            state: a.state.as_deref().and_then(|s| s.parse::<State>().ok()),
            limit: a.limit,
        };
        let listing = match store.list(&filter) {
            Ok(l) => l,
            Err(e) => return Ok(report_error(c, &e)),
        };
        if a.json {
            for e in &listing.entries {
                let mut v = serde_json::to_value(e).map_err(io::Error::other)?;
                if let Some(o) = v.as_object_mut() {
                    o.remove("report");
                }
                writeln!(c.out, "{}", json_safe(&v.to_string()))?;
            }
        } else if listing.entries.is_empty() {
            writeln!(c.out, "no quarantined messages match")?;
        } else {
            write_table(c.out, &listing.entries)?;
        }
        let mut code = EXIT_OK;
        for p in &listing.problems {
            code = report_error(c, p);
        }
        Ok(code)
    })
}

/// `quarantine show`.
pub fn run_show(store: &Store, a: &ShowArgs, c: &mut Console<'_>) -> u8 {
    finish(c, |c| {
        let entry = match Id::parse(&a.id).and_then(|id| store.get(&id)) {
            Ok(e) => e,
            Err(e) => return Ok(report_error(c, &e)),
        };
        if a.json {
            let json = serde_json::to_string_pretty(&entry).map_err(io::Error::other)?;
            writeln!(c.out, "{}", json_safe(&json))?;
            return Ok(EXIT_OK);
        }
        let message = store.message(&entry.id);
        if let Some(path) = &a.output {
            let bytes = match message {
                Ok(b) => b,
                Err(e) => return Ok(report_error(c, &e)),
            };
            let written =
                std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).and_then(
                    |mut f| {
                        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
                        f.write_all(&bytes)?;
                        f.sync_all()
                    },
                );
            if let Err(e) = written {
                let e = StoreError::Io { path: path.clone(), source: e };
                return Ok(report_error(c, &e));
            }
            writeln!(c.err, "wrote {} bytes to {}", bytes.len(), escape(&path.display().to_string()))?;
            return Ok(EXIT_OK);
        }
        if a.raw {
            if c.out_is_terminal {
                writeln!(
                    c.err,
                    "inspect-milter: refusing to write a raw message to a terminal (it may hold escape \
                     sequences); redirect standard output or use --output FILE"
                )?;
                return Ok(EXIT_ERROR);
            }
            return match message {
                Ok(bytes) => {
                    c.out.write_all(&bytes)?;
                    Ok(EXIT_OK)
                }
                Err(e) => Ok(report_error(c, &e)),
            };
        }
        write_entry(c.out, &entry, message.as_deref().ok())?;
        match message {
            Ok(_) | Err(StoreError::Deleted(_)) => Ok(EXIT_OK),
            Err(e) => Ok(report_error(c, &e)),
        }
    })
}

/// `quarantine delete`: each id on its own; any failure makes the exit code 2, and the others
/// are still deleted.
pub fn run_delete(store: &Store, a: &DeleteArgs, c: &mut Console<'_>) -> u8 {
    finish(c, |c| {
        let mut code = EXIT_OK;
        for raw in &a.ids {
            let entry = match Id::parse(raw).and_then(|id| store.get(&id)) {
                Ok(e) => e,
                Err(e) => {
                    code = report_error(c, &e);
                    continue;
                }
            };
            let subject = escape_cut(entry.subject.as_deref().unwrap_or(""), SUBJECT_WIDTH);
            if entry.state == State::Deleted {
                writeln!(c.out, "{}: already deleted", entry.id)?;
            } else if a.dry_run {
                writeln!(c.out, "would delete {} ({}, subject: {subject})", entry.id, entry.state)?;
            } else {
                match store.delete(&entry.id, &c.user) {
                    Ok(_) => writeln!(c.out, "deleted {} (subject: {subject})", entry.id)?,
                    Err(e) => code = report_error(c, &e),
                }
            }
        }
        Ok(code)
    })
}

/// `quarantine purge`.
pub fn run_purge(store: &Store, a: &PurgeArgs, c: &mut Console<'_>) -> u8 {
    finish(c, |c| {
        let cutoff = c.now.saturating_sub(a.older_than);
        let purged = match store.purge_before(cutoff, a.dry_run) {
            Ok(p) => p,
            Err(e) => return Ok(report_error(c, &e)),
        };
        let (verb, removing) =
            if a.dry_run { ("would purge", "would remove") } else { ("purged", "removed") };
        for id in &purged.entries {
            writeln!(c.out, "{verb} {id}")?;
        }
        for path in &purged.garbage {
            writeln!(c.out, "{removing} leftover {}", escape(&path.display().to_string()))?;
        }
        writeln!(c.out, "{verb} {} entries received before {} UTC", purged.entries.len(), cutoff.human())?;
        Ok(EXIT_OK)
    })
}

/// Runs `body`; a failure to write the output (a closed pipe) is exit code 2.
pub(super) fn finish(c: &mut Console<'_>, body: impl FnOnce(&mut Console<'_>) -> io::Result<u8>) -> u8 {
    body(c).unwrap_or(EXIT_ERROR)
}

pub(super) fn report_error(c: &mut Console<'_>, e: &StoreError) -> u8 {
    let _ = writeln!(c.err, "inspect-milter: {}", escape(&e.to_string()));
    EXIT_ERROR
}

fn write_table(out: &mut dyn Write, entries: &[Entry]) -> io::Result<()> {
    const HEAD: [&str; 8] =
        ["ID", "RECEIVED (UTC)", "STATE", "DECISION", "SCORE", "SENDER", "SUBJECT", "RULES"];
    let rows: Vec<[String; 8]> = entries
        .iter()
        .map(|e| {
            [
                e.id.to_string(),
                e.received.human(),
                e.state.to_string(),
                escape_cut(&e.decision, 12),
                e.score.to_string(),
                sender_shown(&e.envelope.sender, SENDER_WIDTH),
                escape_cut(e.subject.as_deref().unwrap_or(""), SUBJECT_WIDTH),
                escape_cut(&e.rules.join(","), RULES_WIDTH),
            ]
        })
        .collect();
    let mut widths = HEAD.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let head = HEAD.map(str::to_string);
    for row in std::iter::once(&head).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            let pad = " ".repeat(w - cell.chars().count());
            match i {
                0 => {}
                _ => line.push_str("  "),
            }
            if i == 4 {
                line.push_str(&pad);
                line.push_str(cell);
            } else if i == HEAD.len() - 1 {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&pad);
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn sender_shown(sender: &str, width: usize) -> String {
    if sender.is_empty() { "<>".to_string() } else { escape_cut(sender, width) }
}

/// The human view of one entry. `message` is `None` when the bytes are gone or unreadable.
fn write_entry(out: &mut dyn Write, e: &Entry, message: Option<&[u8]>) -> io::Result<()> {
    let r = &e.report;
    let field = |out: &mut dyn Write, name: &str, value: &str| writeln!(out, "{name:<12}{value}");
    field(out, "id", e.id.as_str())?;
    field(out, "state", e.state.as_str())?;
    let kept = match e.location {
        super::Location::Store => "this store",
        super::Location::Mta => "the MTA's hold queue (by queue id)",
        super::Location::Both => "this store and the MTA's hold queue",
    };
    field(out, "kept in", kept)?;
    field(out, "received", &format!("{} UTC", e.received.human()))?;
    field(out, "decision", &format!("{}  score={}", escape(&e.decision), e.score))?;
    field(out, "rules", &escape(&e.rules.join(", ")))?;
    field(out, "sender", &sender_shown(&e.envelope.sender, usize::MAX))?;
    field(out, "recipients", &escape(&e.envelope.recipients.join(", ")))?;
    let mut client = escape(e.envelope.client_name.as_deref().unwrap_or("unknown"));
    if let Some(addr) = &e.envelope.client_addr {
        client.push_str(&format!(" [{}]", escape(addr)));
    }
    if let Some(helo) = &e.envelope.helo {
        client.push_str(&format!("  helo={}", escape(helo)));
    }
    field(out, "client", &client)?;
    field(out, "tls", &tls_line(&r["envelope"]["tls"]))?;
    field(out, "queue id", &escape(e.queue_id.as_deref().unwrap_or("-")))?;
    field(out, "message-id", &escape(e.message_id.as_deref().unwrap_or("-")))?;
    field(out, "subject", &escape(e.subject.as_deref().unwrap_or("")))?;
    field(out, "size", &format!("{} bytes  sha256 {}", e.size, escape(&e.sha256)))?;

    writeln!(out, "\nwhy")?;
    let reasons = strings(&r["reasons"]);
    if reasons.is_empty() {
        writeln!(out, "  (the report gives no reasons)")?;
    }
    for reason in reasons {
        writeln!(out, "  {}", escape(reason))?;
    }

    writeln!(out, "\nhits")?;
    let hits = r["hits"].as_array().map(Vec::as_slice).unwrap_or_default();
    if hits.is_empty() {
        writeln!(out, "  none")?;
    }
    for h in hits {
        let text = |k: &str| escape(h[k].as_str().unwrap_or("?"));
        let mut line = format!(
            "  {}  [{}]  score={}  part={}  {}",
            text("rule"),
            text("engine"),
            h["score"].as_i64().unwrap_or(0),
            text("part_path"),
            text("target"),
        );
        if let Some(f) = h["filename"].as_str() {
            line.push_str(&format!(" \"{}\"", escape(f)));
        }
        if let Some(s) = h["snippet"].as_str().filter(|s| !s.is_empty()) {
            line.push_str(&format!(": {}", escape(s)));
        }
        writeln!(out, "{line}")?;
    }

    let coverage = &r["coverage"];
    let uninspectable = coverage["uninspectable"].as_array().map(Vec::as_slice).unwrap_or_default();
    let verdict = match coverage["complete"].as_bool() {
        Some(true) if uninspectable.is_empty() => "complete",
        Some(_) => "partial",
        None => "unknown (the report has no coverage)",
    };
    writeln!(out, "\ncoverage    {verdict}")?;
    for u in uninspectable {
        let text = |k: &str| escape(u[k].as_str().unwrap_or("?"));
        writeln!(out, "  {}  part={}: {}", text("reason"), text("part_path"), text("detail"))?;
    }
    for a in r["anomalies"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let text = |k: &str| escape(a[k].as_str().unwrap_or("?"));
        writeln!(out, "  anomaly {}  part={}: {}", text("code"), text("part_path"), text("detail"))?;
    }

    writeln!(out, "\nheaders")?;
    match message {
        Some(bytes) => write_headers(out, bytes)?,
        None if e.state == State::Deleted => writeln!(out, "  (message deleted)")?,
        None => writeln!(out, "  (message unreadable)")?,
    }

    writeln!(out, "\nhistory")?;
    for h in &e.history {
        writeln!(
            out,
            "  {}  {:<8}  {}  {}: {}",
            h.at.human(),
            h.state.as_str(),
            escape(&h.who),
            escape(&h.action),
            escape(&h.result)
        )?;
    }
    Ok(())
}

/// `TLSv1.3 TLS_AES_256_GCM_SHA384 256 bits`, or why there is nothing to say.
fn tls_line(tls: &Value) -> String {
    let Some(version) = tls["version"].as_str() else {
        return "none (cleartext from the client, or the MTA sent no TLS macros)".to_string();
    };
    let mut s = escape(version);
    if let Some(cipher) = tls["cipher"].as_str() {
        s.push(' ');
        s.push_str(&escape(cipher));
    }
    if let Some(bits) = tls["bits"].as_u64() {
        s.push_str(&format!(" {bits} bits"));
    }
    s
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str).collect()
}

/// The message's header block, line by line, escaped and bounded.
fn write_headers(out: &mut dyn Write, message: &[u8]) -> io::Result<()> {
    for (n, line) in message.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if n == MAX_HEADER_LINES {
            writeln!(out, "  … (more header lines; `show --raw` has them all)")?;
            break;
        }
        let shown = escape_bytes(line);
        let cut: String = if shown.chars().count() > HEADER_WIDTH {
            shown.chars().take(HEADER_WIDTH - 1).chain(std::iter::once('…')).collect()
        } else {
            shown
        };
        writeln!(out, "  {cut}")?;
    }
    Ok(())
}

/// The person acting: the user who ran `sudo` when there is one (root tells an auditor
/// nothing), else the name of the real user id, else the number.
fn current_user() -> String {
    if let Ok(u) = std::env::var("SUDO_USER")
        && !u.is_empty()
    {
        return u;
    }
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    super::ownership::user_name(uid).unwrap_or_else(|| format!("uid {uid}"))
}

#[cfg(test)]
mod tests;

//! `quarantine release`: delivering a held message a reviewer judged safe.
//!
//! Our copy goes out with the release mark ([`super::release_mark`]) so the milter, which
//! sees it again on its way in, delivers it instead of holding it again; over SMTP with
//! STARTTLS to the configured relay, or through the MTA's `sendmail`. A message the MTA holds
//! is released in the MTA with `postsuper -H` (milters do not see it again). Every attempt is
//! recorded in the entry's history: who, when, how, and what the relay answered; a failed one
//! leaves the entry held.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::SystemTime;

use super::cli::{Console, EXIT_ERROR, EXIT_OK, ReleaseArgs, finish, report_error};
use super::entry::{Change, Entry, Location, State};
use super::release_mark::{Secret, apply};
use super::store::Store;
use super::terminal::escape;
use super::{Id, StoreError};
use crate::config::release::{ReleaseConfig, ReleaseMethod};
use crate::smtp::{SmtpOptions, deliver};

/// How one entry would be or was released.
enum Route {
    /// `postsuper -H <queue id>`.
    Postsuper(String),
    /// Our copy, over SMTP or sendmail.
    Copy(ReleaseMethod),
}

pub fn run_release(store: &Store, a: &ReleaseArgs, c: &mut Console<'_>, cfg: &ReleaseConfig) -> u8 {
    finish(c, |c| {
        // One release at a time per store: the state is read after the lock is taken, so an
        // entry released by someone else meanwhile is seen as released.
        let _guard = match store.release_lock() {
            Ok(g) => g,
            Err(e) => return Ok(report_error(c, &e)),
        };
        let mut code = EXIT_OK;
        for raw in &a.ids {
            let entry = match Id::parse(raw).and_then(|id| store.get(&id)) {
                Ok(e) => e,
                Err(e) => {
                    code = report_error(c, &e);
                    continue;
                }
            };
            if entry.state != State::Held {
                writeln!(
                    c.err,
                    "inspect-milter: {}: is {}, not held; nothing to release",
                    entry.id, entry.state
                )?;
                code = EXIT_ERROR;
                continue;
            }
            let recipients = if a.to.is_empty() { entry.envelope.recipients.clone() } else { a.to.clone() };
            if recipients.is_empty() {
                writeln!(c.err, "inspect-milter: {}: no recipients recorded; give them with --to", entry.id)?;
                code = EXIT_ERROR;
                continue;
            }
            let route = match (entry.location, &entry.queue_id) {
                (Location::Store, _) => Route::Copy(cfg.method),
                (Location::Mta | Location::Both, Some(q)) => Route::Postsuper(q.clone()),
                (Location::Mta | Location::Both, None) => {
                    writeln!(
                        c.err,
                        "inspect-milter: {}: held at the MTA but no queue id was recorded",
                        entry.id
                    )?;
                    code = EXIT_ERROR;
                    continue;
                }
            };
            let how = describe(&route, cfg, &recipients);
            if a.dry_run {
                writeln!(c.out, "would release {} {how}", entry.id)?;
                continue;
            }
            let result = match &route {
                Route::Postsuper(q) => postsuper(q),
                Route::Copy(method) => send_copy(store, &entry, *method, cfg, &recipients),
            };
            let change =
                |result: String| Change { who: c.user.clone(), action: format!("release {how}"), result };
            match result {
                Ok(reply) => match store.set_state(&entry.id, State::Released, change(reply.clone())) {
                    Ok(_) => writeln!(c.out, "released {} {how}: {}", entry.id, escape(&reply))?,
                    Err(e) => code = report_error(c, &e),
                },
                Err(why) => {
                    // The attempt is part of the record; the entry stays held.
                    let _ = store.set_state(&entry.id, State::Held, change(format!("failed: {why}")));
                    writeln!(c.err, "inspect-milter: {}: not released: {}", entry.id, escape(&why))?;
                    code = EXIT_ERROR;
                }
            }
        }
        Ok(code)
    })
}

fn describe(route: &Route, cfg: &ReleaseConfig, recipients: &[String]) -> String {
    let to = recipients.join(",");
    match route {
        Route::Postsuper(q) => format!("from the MTA's hold queue (postsuper -H {q})"),
        Route::Copy(ReleaseMethod::Smtp) => {
            format!("via smtp inet:{}:{} (starttls {:?}) to {to}", cfg.host, cfg.port, cfg.starttls)
                .to_lowercase()
        }
        Route::Copy(ReleaseMethod::Sendmail) => format!("via {} to {to}", cfg.sendmail.display()),
    }
}

fn send_copy(
    store: &Store,
    entry: &Entry,
    method: ReleaseMethod,
    cfg: &ReleaseConfig,
    rcpts: &[String],
) -> Result<String, String> {
    let message = store.message(&entry.id).map_err(|e: StoreError| e.to_string())?;
    let secret = Secret::load_or_create(&cfg.secret_file)
        .map_err(|e| format!("release secret {}: {e}", cfg.secret_file.display()))?;
    let marked = apply(&secret, &entry.id, SystemTime::now(), &message);
    let sender = entry.envelope.sender.as_str();
    match method {
        ReleaseMethod::Smtp => {
            let opts = SmtpOptions {
                host: cfg.host.clone(),
                port: cfg.port,
                starttls: cfg.starttls,
                tls_name: cfg.tls_name.clone(),
                ca_file: cfg.ca_file.clone(),
                helo: cfg.helo.clone(),
                timeout: cfg.timeout,
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let d = rt.block_on(deliver(&opts, sender, rcpts, &marked)).map_err(|e| e.to_string())?;
            Ok(match d.tls {
                Some(v) => format!("{} ({v})", d.reply),
                None => format!("{} (no TLS)", d.reply),
            })
        }
        ReleaseMethod::Sendmail => {
            // `-i`: a line with a single dot is data; `--` ends options, so no recipient can
            // be taken for one. No shell is involved.
            let mut child = Command::new(&cfg.sendmail)
                .arg("-i")
                .arg("-f")
                .arg(sender)
                .arg("--")
                .args(rcpts)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("{}: {e}", cfg.sendmail.display()))?;
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(&marked).map_err(|e| e.to_string())?;
            }
            let out = child.wait_with_output().map_err(|e| e.to_string())?;
            if out.status.success() {
                Ok(format!("{} accepted it", cfg.sendmail.display()))
            } else {
                Err(format!(
                    "{} failed ({}): {}",
                    cfg.sendmail.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        }
    }
}

fn postsuper(queue_id: &str) -> Result<String, String> {
    // Queue ids are letters and digits; anything else was not written by Postfix.
    if queue_id.is_empty() || !queue_id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!("{queue_id:?} is not a Postfix queue id"));
    }
    let out = Command::new("postsuper").args(["-H", queue_id]).output().map_err(|e| {
        format!("postsuper: {e} (release from the hold queue works only on the Postfix host)")
    })?;
    let text = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if out.status.success() && text.contains("Released") {
        Ok(text)
    } else {
        Err(format!(
            "postsuper -H {queue_id}: {}",
            if text.is_empty() { "not in the hold queue" } else { &text }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::durable::{self, LockKind};
    use super::*;

    #[test]
    fn one_release_at_a_time_per_store() {
        let dir = std::env::temp_dir().join(format!("im-release-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir).unwrap();
        let guard = store.release_lock().unwrap();
        let other = durable::open_lock_file(&dir.join(".release.lock"), None).unwrap();
        assert!(!durable::try_lock(&other, LockKind::Exclusive).unwrap(), "a second release waits");
        drop(guard);
        assert!(
            durable::try_lock(&other, LockKind::Exclusive).unwrap(),
            "and goes on when the first is done"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

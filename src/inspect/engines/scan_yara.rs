//! The YARA engine: each scannable target through yara-x, with the design's external variables
//! set for that target and the transport.
//!
//! A yara-x scanner is neither `Send` nor `Sync` and costs about a millisecond to create, so
//! each scan thread keeps one, built from the current rule set and rebuilt when the set
//! changes. Every scan has a timeout (whole seconds, at least 2: yara-x's clock ticks once a
//! second, so 1 s would abort ordinary scans); a scan that times out or panics leaves its part
//! uninspected — recorded as such, never passed over in silence.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use crate::inspect::engines::hit::{Engine, Hit, snippet};
use crate::inspect::target::Target;
use crate::inspect::{Deadline, Stage};
use crate::rules::yara::YaraRules;

/// The transport and client facts every scan sees.
#[derive(Debug, Clone, Default)]
pub struct ScanContext {
    pub tls_version: String,
    pub tls_cipher: String,
    pub client_addr: String,
    pub authenticated: bool,
}

/// A part the engine could not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    pub part_path: String,
    pub why: &'static str,
}

/// The scanner a thread keeps. Field order matters: `scanner` borrows from `rules` and is
/// dropped first.
struct Cached {
    scanner: yara_x::Scanner<'static>,
    rules: Arc<yara_x::Rules>,
}

thread_local! {
    static SCANNER: RefCell<Option<Cached>> = const { RefCell::new(None) };
}

fn with_scanner<R>(rules: &Arc<yara_x::Rules>, f: impl FnOnce(&mut yara_x::Scanner<'static>) -> R) -> R {
    SCANNER.with(|cell| {
        let mut slot = cell.borrow_mut();
        if !slot.as_ref().is_some_and(|c| Arc::ptr_eq(&c.rules, rules)) {
            *slot = None;
            let rules = Arc::clone(rules);
            // SAFETY: the scanner borrows the rule set inside an `Arc` that `Cached` owns and
            // keeps alive for as long as the scanner exists (the scanner field is dropped
            // first); the `Rules` value never moves while the `Arc` lives.
            let borrowed: &'static yara_x::Rules = unsafe { &*Arc::as_ptr(&rules) };
            let mut scanner = yara_x::Scanner::new(borrowed);
            scanner.max_matches_per_pattern(100);
            *slot = Some(Cached { scanner, rules });
        }
        let cached = slot.as_mut().expect("a scanner was just put in place");
        f(&mut cached.scanner)
    })
}

/// Drops this thread's scanner (after a panic left it in an unknown state).
fn forget_scanner() {
    SCANNER.with(|cell| {
        if let Ok(mut slot) = cell.try_borrow_mut() {
            *slot = None;
        }
    });
}

/// The timeout of a scan without a deadline (tools and benchmarks): a scan still ends.
const NO_DEADLINE: Duration = Duration::from_secs(60);

/// Scans every target YARA looks at. Targets not reached before `deadline`, and scans that
/// time out or fail, come back as [`Unfinished`].
pub fn scan(
    yara: &YaraRules,
    targets: &[Target<'_>],
    ctx: &ScanContext,
    deadline: Deadline,
) -> (Vec<Hit>, Vec<Unfinished>) {
    let mut hits = Vec::new();
    let mut unfinished = Vec::new();
    let mut late = false;
    for t in targets {
        let Some(part_kind) = t.kind.yara_part_kind() else { continue };
        late = late || deadline.passed(Stage::Yara);
        if late {
            unfinished.push(Unfinished { part_path: t.part_path.clone(), why: "scan-timeout" });
            continue;
        }
        // yara-x times out in whole seconds, 1–2 s after the timeout given (see `deadline`):
        // at least 2 s, or the scan could be stopped before it began.
        let left = deadline.remaining().unwrap_or(NO_DEADLINE);
        let secs = left.as_secs_f64().ceil().max(2.0) as u64;
        let result = catch_unwind(AssertUnwindSafe(|| {
            with_scanner(&yara.rules, |scanner| {
                scan_one(scanner, yara, t, part_kind, ctx, Duration::from_secs(secs))
            })
        }));
        match result {
            Ok(Ok(mut found)) => hits.append(&mut found),
            Ok(Err(why)) => unfinished.push(Unfinished { part_path: t.part_path.clone(), why }),
            Err(_) => {
                forget_scanner();
                tracing::warn!(part = %t.part_path, "YARA scan panicked; part left uninspected");
                unfinished.push(Unfinished { part_path: t.part_path.clone(), why: "scanner-panic" });
            }
        }
    }
    (hits, unfinished)
}

fn scan_one(
    scanner: &mut yara_x::Scanner<'static>,
    yara: &YaraRules,
    t: &Target<'_>,
    part_kind: &str,
    ctx: &ScanContext,
    timeout: Duration,
) -> Result<Vec<Hit>, &'static str> {
    let filename = t.filename.clone().unwrap_or_default();
    let extension = t.extension().unwrap_or_default();
    let content_type = t.content_type.clone().unwrap_or_default();
    let set = |scanner: &mut yara_x::Scanner<'static>| -> Result<(), yara_x::errors::VariableError> {
        scanner.set_global("part_kind", part_kind)?;
        scanner.set_global("part_path", t.part_path.as_str())?;
        scanner.set_global("filename", filename.as_str())?;
        scanner.set_global("filepath", filename.as_str())?;
        scanner.set_global("extension", extension.as_str())?;
        scanner.set_global("content_type", content_type.as_str())?;
        scanner.set_global("filetype", content_type.as_str())?;
        scanner.set_global("depth", i64::from(t.depth))?;
        scanner.set_global("in_archive", t.in_archive)?;
        scanner.set_global("tls_version", ctx.tls_version.as_str())?;
        scanner.set_global("tls_cipher", ctx.tls_cipher.as_str())?;
        scanner.set_global("client_addr", ctx.client_addr.as_str())?;
        scanner.set_global("authenticated", ctx.authenticated)?;
        Ok(())
    };
    set(scanner).map_err(|_| "scanner-setup")?;
    scanner.set_timeout(timeout);
    let results = match scanner.scan(&t.data) {
        Ok(r) => r,
        Err(yara_x::errors::ScanError::Timeout) => return Err("scan-timeout"),
        Err(_) => return Err("scan-error"),
    };
    let mut hits = Vec::new();
    for rule in results.matching_rules() {
        let id = rule.identifier();
        let meta = yara.meta.get(id);
        let first = rule.patterns().flat_map(|p| p.matches()).map(|m| m.range()).min_by_key(|r| r.start);
        hits.push(Hit {
            rule: id.to_string(),
            engine: Engine::Yara,
            part_path: t.part_path.clone(),
            target: part_kind.to_string(),
            content_type: t.content_type.clone(),
            filename: t.filename.clone(),
            offset: first.as_ref().map(|r| r.start as u64),
            snippet: first.map(|r| snippet(&t.data, r.start, r.end)).unwrap_or_default(),
            score: meta.map_or(0, |m| m.score),
            action: meta.and_then(|m| m.action),
            description: meta.map(|m| m.description.clone()).unwrap_or_default(),
        });
    }
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::inspect::target::TargetKind;
    use crate::rules::yara::{YaraOptions, compile};

    fn rules(src: &str) -> YaraRules {
        let mut d = Vec::new();
        compile(&[("t.yar", src)], &YaraOptions { relaxed_syntax: false }, &mut d)
            .unwrap_or_else(|| panic!("{d:?}"))
    }

    fn target(kind: TargetKind, path: &str, data: &'static [u8], filename: Option<&str>) -> Target<'static> {
        Target {
            kind,
            part_path: path.into(),
            data: Cow::Borrowed(data),
            content_type: Some("application/octet-stream".into()),
            filename: filename.map(str::to_string),
            depth: 2,
            in_archive: kind == TargetKind::ArchiveMember,
            header_name: None,
            link_text: None,
        }
    }

    fn far() -> Deadline {
        Deadline::after(Duration::from_secs(30))
    }

    #[test]
    fn globals_are_set_per_target() {
        let y = rules(
            r#"rule exe_in_zip { meta: score = 7 action = "reject"
                 strings: $mz = "MZ"
                 condition: $mz at 0 and in_archive and extension == "exe" and part_kind == "archive_member" and depth == 2 }
               rule tls_only { condition: tls_version == "TLSv1.3" and part_kind == "attachment" }"#,
        );
        let targets = [
            target(TargetKind::Attachment, "2", b"MZ\x90\x00", Some("a.exe")),
            target(TargetKind::ArchiveMember, "2!x/a.EXE", b"MZ\x90\x00", Some("x/a.EXE")),
            target(TargetKind::Url, "1", b"MZ", None),
        ];
        let ctx = ScanContext { tls_version: "TLSv1.3".into(), ..Default::default() };
        let (hits, unfinished) = scan(&y, &targets, &ctx, far());
        assert!(unfinished.is_empty());
        let got: Vec<(&str, &str)> = hits.iter().map(|h| (h.rule.as_str(), h.part_path.as_str())).collect();
        assert_eq!(got, vec![("tls_only", "2"), ("exe_in_zip", "2!x/a.EXE")]);
        let h = &hits[1];
        assert_eq!((h.score, h.action, h.offset), (7, Some(crate::rules::RuleAction::Reject), Some(0)));
        assert_eq!(h.snippet, "MZ\\x90\\x00");
    }

    #[test]
    fn a_scanner_is_reused_and_rebuilt_for_a_new_rule_set() {
        let a = rules("rule a { condition: true }");
        let b = rules("rule b { condition: true }");
        let t = [target(TargetKind::Attachment, "1", b"x", None)];
        assert_eq!(scan(&a, &t, &ScanContext::default(), far()).0[0].rule, "a");
        assert_eq!(scan(&b, &t, &ScanContext::default(), far()).0[0].rule, "b");
        assert_eq!(scan(&a, &t, &ScanContext::default(), far()).0[0].rule, "a");
    }

    #[test]
    fn past_the_deadline_parts_are_unfinished_not_skipped_silently() {
        let y = rules("rule a { condition: true }");
        let t = [target(TargetKind::Attachment, "1", b"x", None), target(TargetKind::Text, "2", b"y", None)];
        let (hits, unfinished) =
            scan(&y, &t, &ScanContext::default(), Deadline::at(std::time::Instant::now()));
        assert!(hits.is_empty());
        assert_eq!(
            unfinished,
            vec![
                Unfinished { part_path: "1".into(), why: "scan-timeout" },
                Unfinished { part_path: "2".into(), why: "scan-timeout" },
            ]
        );
    }
}

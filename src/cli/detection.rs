//! `inspect-milter detection --bad DIR… --good DIR…`: how well a rule set separates known-bad
//! from known-good mail — detection rate, false-positive rate, and the rules behind both.
//!
//! "Flagged" means a decision of `tag` or stronger, the same line `scan`'s exit code draws.
//! `--sample I/N` keeps only the files whose path hashes to I modulo N, so a corpus can be
//! split once into a half to tune rules on and a half only ever measured.
//!
//! Besides the totals it shows the rates per source (each subdirectory of a `--bad` or `--good`
//! directory), and what each tag threshold would cost: how many bad and good messages would be
//! flagged at thresholds 1 to 15, so a tuning round sees the trade-off. `--json` gives the same.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::scan::{collect, par_map};
use super::{EXIT_ERROR, EXIT_OK, RulesArgs};
use crate::config::ConfigSource;
use crate::inspect::{Decision, Report};
use crate::milter::Envelope;
use crate::pipeline::Pipeline;

#[derive(Debug, Args)]
pub struct DetectionArgs {
    /// Directory of known-bad mail (phishing, malware, spam); repeatable; read recursively.
    #[arg(long, value_name = "DIR", required = true)]
    pub bad: Vec<PathBuf>,
    /// Directory of known-good mail; repeatable; read recursively.
    #[arg(long, value_name = "DIR", required = true)]
    pub good: Vec<PathBuf>,
    /// Only files whose relative path hashes to I modulo N (e.g. 0/2 and 1/2 for two halves).
    #[arg(long, value_name = "I/N")]
    pub sample: Option<String>,
    #[command(flatten)]
    pub rules: RulesArgs,
    /// How many rules to list.
    #[arg(long, default_value_t = 25)]
    pub top: usize,
    /// Also list every false positive and every missed bad message.
    #[arg(long)]
    pub verbose: bool,
    /// The same numbers as one JSON object.
    #[arg(long)]
    pub json: bool,
}

struct Scanned {
    path: String,
    /// The subdirectory of the `--bad`/`--good` directory the file is in (that directory's own
    /// name for files directly in it).
    source: String,
    decision: Decision,
    score: i64,
    /// Flagged whatever the score: a rule's action or an uninspected part's policy.
    floor: bool,
    rules: Vec<String>,
    uninspected: Vec<String>,
}

/// The tag thresholds the trade-off table shows.
const THRESHOLDS: std::ops::RangeInclusive<i64> = 1..=15;

fn flagged(v: &[Scanned]) -> usize {
    v.iter().filter(|s| s.decision != Decision::Accept).count()
}

fn flagged_at(v: &[Scanned], threshold: i64) -> usize {
    v.iter().filter(|s| s.floor || s.score >= threshold).count()
}

fn pct(n: usize, d: usize) -> f64 {
    if d == 0 { 0.0 } else { 100.0 * n as f64 / d as f64 }
}

/// Per source: (name, messages, flagged), in name order.
fn by_source(v: &[Scanned]) -> Vec<(String, usize, usize)> {
    let mut m: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for s in v {
        let e = m.entry(&s.source).or_default();
        e.0 += 1;
        e.1 += usize::from(s.decision != Decision::Accept);
    }
    m.into_iter().map(|(k, (n, f))| (k.to_string(), n, f)).collect()
}

fn decisions(v: &[Scanned]) -> BTreeMap<Decision, usize> {
    let mut by: BTreeMap<Decision, usize> = BTreeMap::new();
    for s in v {
        *by.entry(s.decision).or_default() += 1;
    }
    by
}

pub fn run(args: DetectionArgs, config: &ConfigSource) -> u8 {
    let sample = match args.sample.as_deref().map(parse_sample).transpose() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("inspect-milter: --sample: {e}");
            return EXIT_ERROR;
        }
    };
    let (pipeline, _) = match args.rules.pipeline(None, config) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let tag_at = pipeline.policy.tag_at;
    let bad = scan_dirs(&pipeline, &args.bad, sample, threads, tag_at);
    let good = scan_dirs(&pipeline, &args.good, sample, threads, tag_at);
    let (bad, good) = match (bad, good) {
        (Ok(b), Ok(g)) => (b, g),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("inspect-milter: {e}");
            return EXIT_ERROR;
        }
    };
    if args.json {
        let json = to_json(&pipeline.inspector.rules.identity, sample, &bad, &good, tag_at);
        println!("{}", serde_json::to_string_pretty(&json).unwrap_or_default());
        return EXIT_OK;
    }
    let mut out = std::io::stdout().lock();
    let (fb, fg) = (flagged(&bad), flagged(&good));
    let _ = writeln!(out, "rules {}", pipeline.inspector.rules.identity);
    if let Some((i, n)) = sample {
        let _ = writeln!(out, "sample {i}/{n}");
    }
    let _ = writeln!(
        out,
        "detection       {fb:>5} / {:<5} = {:6.2}%  (bad mail flagged: tag or stronger)",
        bad.len(),
        pct(fb, bad.len())
    );
    let _ = writeln!(
        out,
        "false positives {fg:>5} / {:<5} = {:6.2}%  (good mail flagged)",
        good.len(),
        pct(fg, good.len())
    );
    for (label, set) in [("bad", &bad), ("good", &good)] {
        let line: Vec<String> = decisions(set).iter().map(|(d, n)| format!("{d}={n}")).collect();
        let _ = writeln!(out, "decisions {label:<4}  {}", line.join(" "));
    }
    let _ = writeln!(out, "\n{:<4} {:<32} {:>6} {:>8} {:>8}", "side", "source", "files", "flagged", "rate");
    for (label, set) in [("bad", &bad), ("good", &good)] {
        for (source, n, f) in by_source(set) {
            let _ = writeln!(out, "{label:<4} {source:<32} {n:>6} {f:>8} {:>7.2}%", pct(f, n));
        }
    }
    let _ = writeln!(
        out,
        "\ntag threshold (now {tag_at}): flagged at each, counting rule actions and uninspected-part policy"
    );
    let _ = writeln!(out, "{:>9} {:>14} {:>14}", "threshold", "bad", "good");
    for t in THRESHOLDS {
        let (b, g) = (flagged_at(&bad, t), flagged_at(&good, t));
        let mark = if t == tag_at { " <" } else { "" };
        let _ = writeln!(
            out,
            "{t:>9} {b:>5} {:>7.2}% {g:>5} {:>7.2}%{mark}",
            pct(b, bad.len()),
            pct(g, good.len())
        );
    }
    let mut rules: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for s in &bad {
        for r in &s.rules {
            rules.entry(r).or_default().0 += 1;
        }
    }
    for s in &good {
        for r in &s.rules {
            rules.entry(r).or_default().1 += 1;
        }
    }
    let mut ranked: Vec<_> = rules.into_iter().collect();
    ranked.sort_by(|a, b| (b.1.0, a.1.1).cmp(&(a.1.0, b.1.1)).then(a.0.cmp(b.0)));
    let _ = writeln!(out, "\n{:<40} {:>6} {:>6}", "rule", "bad", "good");
    for (rule, (b, g)) in ranked.iter().take(args.top) {
        let _ = writeln!(out, "{rule:<40} {b:>6} {g:>6}");
    }
    let mut reasons: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (label, set) in [("bad", &bad), ("good", &good)] {
        for s in set.iter() {
            for u in &s.uninspected {
                *reasons.entry((label, u)).or_default() += 1;
            }
        }
    }
    if !reasons.is_empty() {
        let _ = writeln!(out, "\nuninspected parts");
        for ((label, reason), n) in reasons {
            let _ = writeln!(out, "  {label:<4} {reason:<22} {n}");
        }
    }
    if args.verbose {
        let _ = writeln!(out, "\nfalse positives");
        for s in good.iter().filter(|s| s.decision != Decision::Accept) {
            let _ = writeln!(out, "  {} {} {}", s.decision, s.path, s.rules.join(","));
        }
        let _ = writeln!(out, "\nmissed");
        for s in bad.iter().filter(|s| s.decision == Decision::Accept) {
            let _ = writeln!(out, "  {} {}", s.path, s.rules.join(","));
        }
    }
    EXIT_OK
}

/// The report as JSON: totals, decisions, per-source rates, the threshold table and the rules.
fn to_json(
    rules: &str,
    sample: Option<(u64, u64)>,
    bad: &[Scanned],
    good: &[Scanned],
    tag_at: i64,
) -> serde_json::Value {
    use serde_json::json;
    let side = |v: &[Scanned]| {
        let mut rules: BTreeMap<&str, usize> = BTreeMap::new();
        for s in v {
            for r in &s.rules {
                *rules.entry(r).or_default() += 1;
            }
        }
        json!({
            "messages": v.len(),
            "flagged": flagged(v),
            "rate": pct(flagged(v), v.len()),
            "decisions": decisions(v),
            "sources": by_source(v)
                .into_iter()
                .map(|(source, n, f)| json!({"source": source, "messages": n, "flagged": f, "rate": pct(f, n)}))
                .collect::<Vec<_>>(),
            "rules": rules,
        })
    };
    json!({
        "rules": rules,
        "sample": sample.map(|(i, n)| format!("{i}/{n}")),
        "tag_at": tag_at,
        "bad": side(bad),
        "good": side(good),
        "thresholds": THRESHOLDS
            .map(|t| json!({"tag_at": t, "bad": flagged_at(bad, t), "good": flagged_at(good, t)}))
            .collect::<Vec<_>>(),
    })
}

fn parse_sample(s: &str) -> Result<(u64, u64), String> {
    let (i, n) = s.split_once('/').ok_or("expected I/N, like 0/2")?;
    let (i, n): (u64, u64) =
        (i.parse().map_err(|_| "I is not a number")?, n.parse().map_err(|_| "N is not a number")?);
    if n == 0 || i >= n {
        return Err("need 0 <= I < N".into());
    }
    Ok((i, n))
}

/// `dir`'s own name and the first directory of `rel` under it (`ham/usrp-users`), so that two
/// directories with a subdirectory of the same name stay apart; `dir`'s name alone for a file
/// directly in it.
fn source_of(dir: &std::path::Path, rel: &str) -> String {
    let name =
        dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
    match rel.split_once(std::path::MAIN_SEPARATOR) {
        Some((first, _)) => format!("{name}/{first}"),
        None => name,
    }
}

/// FNV-1a: stable across runs and machines, unlike the standard hasher.
fn path_hash(rel: &str) -> u64 {
    rel.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn scan_dirs(
    pipeline: &Pipeline,
    dirs: &[PathBuf],
    sample: Option<(u64, u64)>,
    threads: usize,
    tag_at: i64,
) -> Result<Vec<Scanned>, String> {
    let mut paths = Vec::new();
    let mut sources: std::collections::HashMap<PathBuf, String> = std::collections::HashMap::new();
    for d in dirs {
        let mut found = Vec::new();
        collect(d, &mut found).map_err(|e| format!("{}: {e}", d.display()))?;
        for p in found {
            let rel = p.strip_prefix(d).unwrap_or(&p).to_string_lossy().into_owned();
            if sample.is_none_or(|(i, n)| path_hash(&rel) % n == i) {
                sources.insert(p.clone(), source_of(d, &rel));
                paths.push(p);
            }
        }
    }
    Ok(par_map(&paths, threads, |path| {
        let raw = std::fs::read(path).ok()?;
        let report: Report = pipeline.run(&raw, &Envelope::default(), false, raw.len() as u64);
        let action = report.hits.iter().any(|h| h.action.is_some());
        Some(Scanned {
            path: path.display().to_string(),
            source: sources.get(path).cloned().unwrap_or_default(),
            floor: action || (report.decision != Decision::Accept && report.score < tag_at),
            score: report.score,
            decision: report.decision,
            rules: report.deciding_rules().iter().map(|s| s.to_string()).collect(),
            uninspected: report.coverage.uninspectable.iter().map(|u| u.reason.to_string()).collect(),
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_split_a_corpus_into_disjoint_halves() {
        assert_eq!(parse_sample("1/2"), Ok((1, 2)));
        assert!(parse_sample("2/2").is_err());
        assert!(parse_sample("x").is_err());
        let names: Vec<String> = (0..1000).map(|i| format!("dir/sample-{i}.eml")).collect();
        let half = names.iter().filter(|n| path_hash(n).is_multiple_of(2)).count();
        assert!((400..600).contains(&half), "{half}");
        assert_eq!(path_hash("a"), 0xaf63_dc4c_8601_ec8c, "FNV-1a is stable");
    }

    fn scanned(source: &str, decision: Decision, score: i64, floor: bool) -> Scanned {
        Scanned {
            path: format!("{source}/x.eml"),
            source: source.into(),
            decision,
            score,
            floor,
            rules: vec!["r".into()],
            uninspected: Vec::new(),
        }
    }

    #[test]
    fn sources_thresholds_and_json_agree() {
        let set = vec![
            scanned("a", Decision::Tag, 6, false),
            scanned("a", Decision::Accept, 2, false),
            scanned("b", Decision::Quarantine, 0, true),
        ];
        assert_eq!(by_source(&set), vec![("a".to_string(), 2, 1), ("b".to_string(), 1, 1)]);
        assert_eq!(flagged_at(&set, 1), 3);
        assert_eq!(flagged_at(&set, 3), 2);
        assert_eq!(flagged_at(&set, 7), 1, "a floor holds at every threshold");
        let json = to_json("id", Some((1, 2)), &set, &[], 5);
        assert_eq!(json["bad"]["sources"][0]["flagged"], 1);
        assert_eq!(json["thresholds"][2], serde_json::json!({"tag_at": 3, "bad": 2, "good": 0}));
        assert_eq!(json["sample"], "1/2");
        assert_eq!(source_of(std::path::Path::new("/c/ham"), "x.eml"), "ham");
        assert_eq!(source_of(std::path::Path::new("/c/ham"), "news/x.eml"), "ham/news");
    }
}

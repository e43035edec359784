//! `inspect-milter detection --bad DIR… --good DIR…`: how well a rule set separates known-bad
//! from known-good mail — detection rate, false-positive rate, and the rules behind both.
//!
//! "Flagged" means a decision of `tag` or stronger, the same line `scan`'s exit code draws.
//! `--sample I/N` keeps only the files whose path hashes to I modulo N, so a corpus can be
//! split once into a half to tune rules on and a half only ever measured.

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
}

struct Scanned {
    path: String,
    decision: Decision,
    rules: Vec<String>,
    uninspected: Vec<String>,
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
    let bad = scan_dirs(&pipeline, &args.bad, sample, threads);
    let good = scan_dirs(&pipeline, &args.good, sample, threads);
    let (bad, good) = match (bad, good) {
        (Ok(b), Ok(g)) => (b, g),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("inspect-milter: {e}");
            return EXIT_ERROR;
        }
    };
    let flagged = |v: &[Scanned]| v.iter().filter(|s| s.decision != Decision::Accept).count();
    let pct = |n: usize, d: usize| if d == 0 { 0.0 } else { 100.0 * n as f64 / d as f64 };
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
        let mut by: BTreeMap<Decision, usize> = BTreeMap::new();
        for s in set.iter() {
            *by.entry(s.decision).or_default() += 1;
        }
        let line: Vec<String> = by.iter().map(|(d, n)| format!("{d}={n}")).collect();
        let _ = writeln!(out, "decisions {label:<4}  {}", line.join(" "));
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

fn parse_sample(s: &str) -> Result<(u64, u64), String> {
    let (i, n) = s.split_once('/').ok_or("expected I/N, like 0/2")?;
    let (i, n): (u64, u64) =
        (i.parse().map_err(|_| "I is not a number")?, n.parse().map_err(|_| "N is not a number")?);
    if n == 0 || i >= n {
        return Err("need 0 <= I < N".into());
    }
    Ok((i, n))
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
) -> Result<Vec<Scanned>, String> {
    let mut paths = Vec::new();
    for d in dirs {
        let mut found = Vec::new();
        collect(d, &mut found).map_err(|e| format!("{}: {e}", d.display()))?;
        for p in found {
            let rel = p.strip_prefix(d).unwrap_or(&p).to_string_lossy().into_owned();
            if sample.is_none_or(|(i, n)| path_hash(&rel) % n == i) {
                paths.push(p);
            }
        }
    }
    Ok(par_map(&paths, threads, |path| {
        let raw = std::fs::read(path).ok()?;
        let report: Report = pipeline.run(&raw, &Envelope::default(), false, raw.len() as u64);
        Some(Scanned {
            path: path.display().to_string(),
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
}

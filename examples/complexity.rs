//! The complexity campaign: every case of `tests/complexity_inputs.rs` inspected by the whole
//! engine (walk, signals, the shipped regex and YARA rules) at N and 10·N bytes, with the time
//! of each and their ratio. Linear work gives a ratio near 10; above 15 is a bug (marked `!!`),
//! and so is a case that reaches the deadline (`deadline`).
//!
//! `cargo run --release --example complexity [-- --size BYTES] [--filter TEXT] [--timeout SECS]`
//! (N defaults to 100 KiB; each time is the best of three runs). Exits 1 when any case is
//! marked.

#[path = "../tests/hostile_inputs.rs"]
mod hostile_inputs;

#[path = "../tests/complexity_inputs.rs"]
mod complexity_inputs;

use std::sync::Arc;
use std::time::{Duration, Instant};

use inspect_milter::inspect::engine::Inspector;
use inspect_milter::inspect::{Limits, Reason};
use inspect_milter::milter::Envelope;
use inspect_milter::rules::{self, CompileOptions};

/// Worst acceptable growth of time from N to 10·N.
const MAX_RATIO: f64 = 15.0;

fn main() {
    let mut size = 100 * 1024;
    let mut filter = String::new();
    let mut timeout = 60;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--size" => size = value().parse().unwrap_or_else(|_| usage()),
            "--filter" => filter = value(),
            "--timeout" => timeout = value().parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    let (set, diags) = rules::compile(&rules::shipped_sources(), CompileOptions::default());
    let Some(set) = set else {
        eprintln!("the shipped rules do not compile: {diags:?}");
        std::process::exit(2);
    };
    let engine = Inspector {
        rules: Arc::new(set),
        limits: Limits::default(),
        scan_timeout: Duration::from_secs(timeout),
        hash_message: false,
        trusted_authserv_ids: Vec::new(),
    };
    let envelope = Envelope::default();
    println!(
        "{:<32} {:<9} {:>10} {:>11} {:>11} {:>7}   at 10·N: walk / regex / yara ms",
        "case", "stage", "N bytes", "N ms", "10·N ms", "ratio"
    );
    let mut bad = 0;
    for case in complexity_inputs::cases().iter().filter(|c| c.name.contains(&filter)) {
        let small = (case.build)(size);
        let large = (case.build)(size * 10);
        let (t1, _) = best_of_three(&engine, &small, &envelope);
        let (t10, timings) = best_of_three(&engine, &large, &envelope);
        let ratio = t10.as_secs_f64() / t1.as_secs_f64().max(1e-6);
        let mark = if timings.3 {
            "deadline"
        } else if ratio > MAX_RATIO && t10 > Duration::from_millis(5) {
            "!!"
        } else {
            ""
        };
        if !mark.is_empty() {
            bad += 1;
        }
        println!(
            "{:<32} {:<9} {:>10} {:>11.2} {:>11.2} {:>7.1}   {:.1} / {:.1} / {:.1} {mark}",
            case.name,
            case.stage,
            small.len(),
            ms(t1),
            ms(t10),
            ratio,
            timings.0,
            timings.1,
            timings.2,
        );
    }
    println!("{bad} case(s) above a ratio of {MAX_RATIO} or at the deadline");
    std::process::exit(i32::from(bad > 0));
}

/// Best wall time of three inspections, and the walk/regex/YARA split (ms) of the last, with
/// whether it reached the deadline.
fn best_of_three(engine: &Inspector, raw: &[u8], envelope: &Envelope) -> (Duration, (f64, f64, f64, bool)) {
    let mut best = Duration::MAX;
    let mut split = (0.0, 0.0, 0.0, false);
    for _ in 0..3 {
        let started = Instant::now();
        let found = engine.inspect(raw, envelope);
        let took = started.elapsed();
        best = best.min(took);
        let t = &found.timings;
        let late = found.uninspectable.iter().any(|u| u.reason == Reason::ScanTimeout);
        split = (t.walk_us as f64 / 1e3, t.regex_us as f64 / 1e3, t.yara_us as f64 / 1e3, late);
        if late {
            break;
        }
    }
    (best, split)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn usage() -> ! {
    eprintln!("usage: complexity [--size BYTES] [--filter TEXT] [--timeout SECS]");
    std::process::exit(2);
}

//! Walks message files and prints each walk's summary as JSON (one object per
//! file, or a one-line count with `--brief`). Used to measure the walk on
//! hostile inputs (`/usr/bin/time -v`) and to look at real mail.

use std::time::Instant;

use inspect_milter::inspect::{Limits, walk};

fn main() {
    let mut brief = false;
    let mut files = Vec::new();
    for arg in std::env::args().skip(1) {
        if arg == "--brief" {
            brief = true;
        } else {
            files.push(arg);
        }
    }
    if files.is_empty() {
        eprintln!("usage: walk [--brief] FILE.eml...");
        std::process::exit(2);
    }
    let limits = Limits::default();
    for file in files {
        let raw = match std::fs::read(&file) {
            Ok(raw) => raw,
            Err(err) => {
                eprintln!("{file}: {err}");
                std::process::exit(2);
            }
        };
        let start = Instant::now();
        let walked = walk(&raw, &limits);
        let elapsed = start.elapsed();
        if brief {
            let bytes: usize = walked.targets.iter().map(|t| t.data.len()).sum();
            let reasons: Vec<String> =
                walked.uninspectable.iter().map(|u| format!("{}={}", u.reason, u.part_path)).collect();
            let anomalies: Vec<&str> = walked.anomalies.iter().map(|a| a.code.as_str()).collect();
            println!(
                "{file}\t{} bytes\t{:?}\t{} parts\t{} targets\t{bytes} target bytes\tuninspectable [{}]\tanomalies [{}]",
                raw.len(),
                elapsed,
                walked.parts.len(),
                walked.targets.len(),
                reasons.join(","),
                anomalies.join(",")
            );
        } else {
            let json = serde_json::to_string_pretty(&walked.summary()).expect("summary serializes");
            println!("{json}");
        }
    }
}

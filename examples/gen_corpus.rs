//! Writes the deterministic benchmark corpus (see `benches/corpus.rs`) to a directory, so that
//! `scan`, the peers and anyone reproducing a number can read the very same messages.
//!
//! ```sh
//! cargo run --release --example gen_corpus -- --out /tmp/mail-corpus [--count 400] [--seed 20240601]
//! ```

#[path = "../benches/corpus.rs"]
mod corpus;

use std::path::PathBuf;

fn main() {
    let mut out: Option<PathBuf> = None;
    let mut count = 400usize;
    let mut seed = corpus::DEFAULT_SEED;
    let mut args = std::env::args().skip(1);
    let usage = || -> ! {
        eprintln!("usage: gen_corpus --out DIR [--count N] [--seed S]");
        std::process::exit(2)
    };
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--out" => out = Some(PathBuf::from(value)),
            "--count" => count = value.parse().unwrap_or_else(|_| usage()),
            "--seed" => seed = value.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    let Some(out) = out else { usage() };
    match corpus::write_dir(&out, seed, count) {
        Ok(summary) => println!("wrote {} (seed {seed}): {summary}", out.display()),
        Err(e) => {
            eprintln!("{}: {e}", out.display());
            std::process::exit(2)
        }
    }
}

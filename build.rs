//! Embeds the shipped rule pack (`rules/*.yar`, `rules/*.yaml`) into the binary, so that
//! `inspect-milter serve` with no configuration inspects with it wherever it runs.

use std::fmt::Write;
use std::path::Path;

fn main() {
    // Read when the script runs, not when it is compiled: a compiled build script can be
    // reused for another checkout of the same source.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR is set by cargo");
    let dir = Path::new(&manifest).join("rules");
    println!("cargo:rerun-if-changed={}", dir.display());
    // A binary without its pack would accept everything by default: no pack, no build.
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the shipped rule pack {} cannot be read: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    files.retain(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yar" | "yara" | "yaml" | "yml")));
    assert!(!files.is_empty(), "the shipped rule pack {} has no rule files", dir.display());
    files.sort();
    let mut out = String::from("/// The shipped rule pack: (path relative to the package, contents).\n");
    out.push_str("pub const SHIPPED: &[(&str, &str)] = &[\n");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f.file_name().and_then(|n| n.to_str()).expect("rule file names are UTF-8");
        writeln!(out, "    (\"rules/{name}\", include_str!({:?})),", f.display().to_string()).unwrap();
    }
    out.push_str("];\n");
    let dest =
        Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR is set by cargo")).join("shipped_rules.rs");
    std::fs::write(dest, out).expect("writing shipped_rules.rs");
}

//! Embeds the shipped rule pack (`rules/*.yar`, `rules/*.yaml`) into the binary, so that
//! `inspect-milter serve` with no configuration inspects with it wherever it runs.

use std::fmt::Write;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yar" | "yara" | "yaml" | "yml")));
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

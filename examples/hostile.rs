//! Writes the hostile test inputs to a directory, so that the walk can be
//! measured on them in release mode:
//! `cargo run --release --example hostile -- DIR` then
//! `/usr/bin/time -v target/release/examples/walk --brief DIR/NAME.eml`.

#[path = "../tests/hostile_inputs.rs"]
mod hostile_inputs;

use hostile_inputs::*;

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: hostile DIR");
        std::process::exit(2);
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("create output directory");
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("recursive-zip-bomb", with_attachment("42.zip", "application/zip", &recursive_bomb(6, 16, 1 << 20))),
        (
            "overlapping-zip-bomb",
            with_attachment("o.zip", "application/zip", &overlapping_bomb(20_000, 1 << 20)),
        ),
        ("deep-multipart-1000", deep_multipart(1000)),
        ("deep-message-100000", deep_messages(100_000)),
        ("encoded-deep-message-20000", encoded_deep_messages(20_000)),
        ("parts-10000", many_parts(10_000)),
        ("single-line-100mb", single_line_body(100 * 1024 * 1024)),
        ("header-100kib", huge_header(100 * 1024)),
    ];
    for (name, bytes) in inputs {
        let path = dir.join(format!("{name}.eml"));
        std::fs::write(&path, bytes).expect("write input");
        println!("{}", path.display());
    }
}

//! `inspect-milter manual --out DIR` (hidden): writes the man pages and shell completions from
//! the command-line definition itself, so they never drift from what the binary accepts. The
//! package build runs it.

use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory};

use super::{Cli, EXIT_ERROR, EXIT_OK};

#[derive(Debug, Args)]
pub struct ManualArgs {
    /// Directory to write `man/*.1` and `completions/` into.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

pub fn run(args: ManualArgs) -> u8 {
    match write_all(&args.out) {
        Ok(n) => {
            println!("wrote {n} files under {}", args.out.display());
            EXIT_OK
        }
        Err(e) => {
            eprintln!("inspect-milter: {}: {e}", args.out.display());
            EXIT_ERROR
        }
    }
}

fn write_all(out: &Path) -> std::io::Result<usize> {
    let man = out.join("man");
    let completions = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    let mut cmd = Cli::command();
    cmd.build();
    let mut n = 0;
    // The pages leave out clap's `help` subcommands: they would name pages that do not exist.
    let mut for_pages = without_help(Cli::command());
    for_pages.build();
    n += page(&for_pages, "inspect-milter", &man)?;
    for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh, clap_complete::Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd, "inspect-milter", &completions)?;
        n += 1;
    }
    Ok(n)
}

fn without_help(cmd: clap::Command) -> clap::Command {
    cmd.disable_help_subcommand(true).mut_subcommands(without_help)
}

/// One page for the command and, recursively, one per visible subcommand
/// (`inspect-milter-quarantine-list.1`, like git's).
fn page(cmd: &clap::Command, name: &str, dir: &Path) -> std::io::Result<usize> {
    let cmd = cmd.clone().name(name.to_string());
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
    std::fs::write(dir.join(format!("{name}.1")), buf)?;
    let mut n = 1;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        n += page(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    /// Every page another page names (`inspect\-milter\-x(1)`) is written too.
    #[test]
    fn pages_name_only_pages_that_exist() {
        let dir = std::env::temp_dir().join(format!("inspect-milter-manual-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        super::write_all(&dir).unwrap();
        let man = dir.join("man");
        let mut named = 0;
        for page in std::fs::read_dir(&man).unwrap().map(|e| e.unwrap().path()) {
            let text = std::fs::read_to_string(&page).unwrap().replace("\\-", "-");
            for (i, _) in text.match_indices("inspect-milter-") {
                let rest = &text[i..];
                let Some(end) = rest.find("(1)") else { continue };
                let name = &rest[..end];
                if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    named += 1;
                    assert!(man.join(format!("{name}.1")).exists(), "{} names {name}(1)", page.display());
                }
            }
        }
        assert!(named > 0, "the pages name their subcommands' pages");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

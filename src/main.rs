//! The `inspect-milter` command: one binary, one subcommand per task.

use std::process::ExitCode;

fn main() -> ExitCode {
    inspect_milter::cli::main()
}

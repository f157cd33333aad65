use std::process::ExitCode;

fn main() -> ExitCode {
    writ::cli::main()
}

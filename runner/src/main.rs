//! Entry point: everything is in the library's `main`, which returns the exit code.

fn main() -> std::process::ExitCode {
    runner::main()
}

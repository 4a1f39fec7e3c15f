//! The `gateway` binary: a thin shell over [`gateway::cli`].

fn main() -> std::process::ExitCode {
    gateway::cli::main()
}

//! The `teams-archiver` program, built here so end-to-end tests can start and kill it.

fn main() -> std::process::ExitCode {
    teams_archiver::main()
}

//! The `teams-archiver` binary.

fn main() -> std::process::ExitCode {
    teams_archiver::main()
}

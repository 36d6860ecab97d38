//! The `teams-archiver` program, built here so end-to-end tests can start and kill it.

/// The same allocator as the released binary (see crates/cli/src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    teams_archiver::main()
}

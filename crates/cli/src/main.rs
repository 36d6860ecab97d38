//! The `teams-archiver` binary.

/// mimalloc: the archiver allocates and frees many column buffers from several threads;
/// glibc's allocator spends much of a run growing and trimming its arenas and holds
/// freed memory in ways that inflate the peak resident size.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    teams_archiver::main()
}

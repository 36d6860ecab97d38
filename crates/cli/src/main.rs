//! `teams-archiver`: the command line over fetch, transform, sink and export.
fn main() {}

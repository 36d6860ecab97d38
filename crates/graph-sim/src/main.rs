//! `graph-sim`: serve a simulated Microsoft Graph tenant on a local port.
fn main() {}

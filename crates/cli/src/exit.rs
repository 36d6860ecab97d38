//! Exit codes, so that a scheduler can tell a clean night from a partial one.

use std::process::ExitCode;

/// What a finished command means for whoever started it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for was archived (or exported, or verified).
    Success,
    /// The command could not run: bad credentials, unreachable archive, bad configuration.
    Fatal,
    /// The command line itself was wrong (clap reports these with the same code).
    Usage,
    /// Some scopes, files or items failed; everything else was archived and committed.
    /// Rerunning retries only what failed.
    PartialFailure,
    /// `verify` found a file or row that does not match its recorded digest.
    Mismatch,
}

impl Outcome {
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Fatal => 1,
            Outcome::Usage => 2,
            Outcome::PartialFailure => 3,
            Outcome::Mismatch => 4,
        }
    }
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> Self {
        ExitCode::from(outcome.code())
    }
}

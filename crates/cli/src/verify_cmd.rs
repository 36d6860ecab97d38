//! `teams-archiver verify`: archive and export checks from the export crate.

use crate::args::VerifyArgs;
use crate::exit::Outcome;

pub async fn run(args: VerifyArgs) -> anyhow::Result<Outcome> {
    anyhow::bail!("verify is not built yet ({:?})", args.archive)
}

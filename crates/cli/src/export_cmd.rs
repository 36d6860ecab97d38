//! `teams-archiver export`: the export crate, driven from the command line.

use crate::args::ExportArgs;
use crate::exit::Outcome;
use crate::progress::Progress;

pub async fn run(args: ExportArgs, _progress: Progress) -> anyhow::Result<Outcome> {
    anyhow::bail!("export is not built yet (asked for {:?})", args.formats)
}

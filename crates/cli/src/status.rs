//! `teams-archiver status`: the pipeline's status report, printed.

use crate::args::StatusArgs;
use archive::records::Outcome;

pub async fn run(args: StatusArgs) -> anyhow::Result<Outcome> {
    let text =
        pipeline::status::report(&args.out, args.state.as_deref(), args.shard, args.runs).await?;
    outln!("{}", text.trim_end());
    Ok(Outcome::Success)
}

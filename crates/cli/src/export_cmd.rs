//! `teams-archiver export`: the export crate, driven from the command line.

use anyhow::Context;

use crate::args::{ExportArgs, ExportFormat};
use crate::progress::Display;
use archive::records::Outcome;

pub async fn run(args: ExportArgs, display: Display) -> anyhow::Result<Outcome> {
    let selection = export::Selection {
        custodians: args.custodians.clone(),
        chats: args.chats.clone(),
        team: args.team.clone(),
        channel: args.channel.clone(),
        from: args.from,
        to: args.to,
        keywords: args.keywords.clone(),
        include_deleted: args.include_deleted,
        all_versions: args.all_versions,
    };
    let formats = args
        .formats
        .iter()
        .map(|f| match f {
            ExportFormat::Rsmf => export::Format::Rsmf,
            ExportFormat::Jsonl => export::Format::Jsonl,
            ExportFormat::Csv => export::Format::Csv,
            ExportFormat::Html => export::Format::Html,
            ExportFormat::Mail => export::Format::Mail,
        })
        .collect();
    let mut request = export::ExportRequest::new(&args.archive, &args.out, formats, selection);
    request.memory_budget_bytes = args.memory_budget_mib.get() * 1024 * 1024;
    request.csv_raw = args.csv_raw;
    request.allow_unrecorded = args.allow_unrecorded;
    tracing::info!(archive = %args.archive, out = %args.out.display(), formats = ?args.formats, "export started");
    let spinner = display.spinner("export");
    spinner.set_message(format!("reading {}", args.archive));
    let started = std::time::Instant::now();
    let report = export::export(request)
        .await
        .with_context(|| format!("exporting {} to {}", args.archive, args.out.display()))?;
    spinner.finish_and_clear();
    let totals = &report.totals;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let mail = match totals.mail_messages {
        0 => String::new(),
        n => format!(" and {n} mail messages ({} versions)", totals.mail_versions),
    };
    outln!(
        "exported {} messages ({} versions){mail} from {} conversations ({} conversation-days) into {} files in {}, {:.1}s ({:.0} messages/s)",
        totals.messages,
        totals.versions,
        totals.conversations,
        totals.conversation_days,
        totals.outputs,
        args.out.display(),
        secs,
        totals.messages as f64 / secs,
    );
    outln!(
        "  read {} rows in {} partitions, {} archive files; manifest {}",
        totals.rows_read,
        totals.partitions,
        totals.archive_files,
        report.manifest.display()
    );
    for path in &report.altered_files {
        outln!(
            "  altered archive file, not exported: {path} (its SHA-256 differs from the archive's record)"
        );
    }
    for path in &report.missing_files {
        outln!(
            "  missing archive file, its rows not exported: {path} (the archive's records list it)"
        );
    }
    for path in &report.unrecorded_files {
        if args.allow_unrecorded {
            outln!("  unrecorded archive file, exported as --allow-unrecorded asks: {path}");
        } else {
            outln!(
                "  unrecorded archive file, not exported: {path} (no commit record or run summary lists it)"
            );
        }
    }
    for error in report.errors.iter().take(20) {
        outln!("  error: {error}");
    }
    if totals.errors > 20 {
        outln!(
            "  ... and {} more errors (all in the manifest)",
            totals.errors - 20
        );
    }
    let refused_unrecorded = !args.allow_unrecorded && !report.unrecorded_files.is_empty();
    let damaged = !report.altered_files.is_empty() || !report.missing_files.is_empty();
    Ok(if damaged || refused_unrecorded {
        Outcome::Mismatch
    } else if totals.errors > 0 {
        Outcome::PartialFailure
    } else {
        Outcome::Success
    })
}

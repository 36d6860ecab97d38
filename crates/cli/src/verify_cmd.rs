//! `teams-archiver verify`: archive and export checks from the export crate.

use anyhow::Context;

use crate::args::VerifyArgs;
use archive::records::Outcome;

fn print(what: &str, report: &export::VerifyReport) {
    for problem in &report.problems {
        outln!("{problem}");
    }
    let blobs = match report.blobs_checked {
        0 => String::new(),
        n => format!(", {n} blobs"),
    };
    outln!(
        "{what}: {} files{blobs} and {} rows checked, {} problems",
        report.files_checked,
        report.rows_checked,
        report.problems.len()
    );
}

pub async fn run(args: VerifyArgs) -> anyhow::Result<Outcome> {
    let mut clean = true;
    if let Some(archive) = &args.archive {
        let report = export::verify_archive(
            archive,
            &export::ExpectedHeads {
                heads: args.expect_heads.clone(),
                allow_later_records: args.allow_later_records,
                verify_key: args
                    .verify_key
                    .as_deref()
                    .map(archive::signing::VerifyKey::load)
                    .transpose()
                    .context("reading --verify-key")?,
            },
        )
        .await
        .with_context(|| format!("verifying the archive {archive}"))?;
        for head in &report.chain_heads {
            outln!("chain {} {} {}", head.writer, head.sequence, head.sha256);
        }
        print(&format!("archive {archive}"), &report);
        clean &= report.is_clean();
    }
    if let Some(dir) = &args.export {
        let report = export::verify_export(dir)
            .with_context(|| format!("verifying the export {}", dir.display()))?;
        print(&format!("export {}", dir.display()), &report);
        clean &= report.is_clean();
    }
    Ok(if clean {
        Outcome::Success
    } else {
        Outcome::Mismatch
    })
}

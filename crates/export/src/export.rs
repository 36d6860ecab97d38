//! The export pipeline. For each date partition the selection needs, in date order: read
//! the day's custodian rows, stream the day's `chat_messages` files into a sort that
//! groups each message's versions (spilling to disk past the memory budget), then hand
//! the day to the writer, which sorts messages into transcript order and feeds every
//! format. Reading the next day overlaps writing this one.
//!
//! All versions of a message share its partition (the day of `createdDateTime`), so a
//! day is complete on its own and memory does not grow with the archive.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use archive::Table;
use archive::records::FileCheck;

use chrono::{NaiveDate, SecondsFormat, Utc};
use futures::TryStreamExt;
use tokio::sync::mpsc;

use crate::columns::Strings;
use crate::content::{Blobs, CONTENT_COLUMNS, ContentIndex};
use crate::conversation::ConversationKey;
use crate::directory::{self, Directory};
use crate::error::ExportError;
use crate::formats::csv::CsvWriter;
use crate::formats::html::HtmlWriter;
use crate::formats::jsonl::JsonlWriter;
use crate::formats::mail::MailWriter;
use crate::formats::rsmf::{RsmfLimits, RsmfWriter};
use crate::formats::{ConversationDay, FormatWriter};
use crate::mail_rows::MailRow;
use crate::manifest::{MANIFEST_FILE, ManifestHead, SelectionRecord, Totals, write_manifest};
use crate::message::{Message, grouped};
use crate::output::Outputs;
use crate::reader::{self, Archive, ArchiveFile, ArchiveFileRead, RecordedFile};
use crate::rows::{TableRow, VersionRow};
use crate::selection::{Format, Selection};
use crate::sort::ExternalSorter;
use crate::spool::Spool;
use crate::view::MessageView;

/// What to export, from where, to where.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// The archive: a folder or an object store URL.
    pub archive: String,
    /// The export folder: created, or empty.
    pub out: PathBuf,
    pub formats: Vec<Format>,
    pub selection: Selection,
    pub rsmf: RsmfLimits,
    /// Memory for sorting rows (a third each for the day being read and the two sorts of
    /// the day being written); past it, sorted runs go to disk in the export folder (and
    /// are removed when done).
    pub memory_budget_bytes: usize,
    /// Names the tool in the manifest and the files, e.g. `teams-archiver 0.1.0`.
    pub generator: String,
    /// CSV cells exactly as archived, without neutralising those a spreadsheet would run
    /// as formulas (see [`Format::Csv`]).
    pub csv_raw: bool,
    /// Export rows of archive files that no commit record or run summary lists too. Off,
    /// such files are not read: whoever can write the bucket could have put them there.
    pub allow_unrecorded: bool,
}

impl ExportRequest {
    pub fn new(archive: &str, out: &Path, formats: Vec<Format>, selection: Selection) -> Self {
        ExportRequest {
            archive: archive.to_string(),
            out: out.to_path_buf(),
            formats,
            selection,
            rsmf: RsmfLimits::default(),
            memory_budget_bytes: 256 * 1024 * 1024,
            generator: format!("teams-archiver {}", env!("CARGO_PKG_VERSION")),
            csv_raw: false,
            allow_unrecorded: false,
        }
    }
}

/// What an export did.
#[derive(Debug, Clone)]
pub struct ExportReport {
    pub manifest: PathBuf,
    pub totals: Totals,
    /// Problems with single rows or records (all of them are in the manifest); the
    /// rows were still exported as far as they could be read.
    pub errors: Vec<String>,
    /// Archive files read whose SHA-256 differs from the archive's own record of them.
    pub altered_files: Vec<String>,
    /// Archive files read that no commit record or run summary lists.
    pub unrecorded_files: Vec<String>,
    /// Files the archive's records list, in the partitions read, that it no longer holds:
    /// their rows are not in the export.
    pub missing_files: Vec<String>,
}

/// How many problems a report carries; the manifest has them all.
const REPORTED_ERRORS: usize = 100;

/// Runs an export. Fails on what stops it (an unreadable archive, a full disk); problems
/// with single rows are listed in the manifest and the report, and the rest goes on.
pub async fn export(request: ExportRequest) -> Result<ExportReport, ExportError> {
    let mut formats = request.formats.clone();
    formats.sort();
    formats.dedup();
    if formats.is_empty() {
        return Err(ExportError::Request("choose at least one --format".into()));
    }
    let selection = request
        .selection
        .clone()
        .normalized()
        .map_err(ExportError::Request)?;
    let archive = Archive::open(&request.archive)?;
    let (recorded, record_problems) = archive.recorded_files().await?;
    if recorded.is_empty() && record_problems.is_empty() && !archive.holds_any_table().await? {
        return Err(ExportError::Request(format!(
            "{} is not an archive: it holds no records and no table folders",
            archive.url()
        )));
    }
    prepare_out_dir(&request.out)?;
    let work = tempfile::Builder::new()
        .prefix(".export-work-")
        .tempdir_in(&request.out)
        .map_err(ExportError::io("create work folder in", &request.out))?;

    let errors: Spool<String> = Spool::create(work.path(), "errors")?;
    let mut reader = Reader {
        archive,
        recorded: HashMap::new(),
        files: Spool::create(work.path(), "archive-files")?,
        altered: Vec::new(),
        unrecorded: Vec::new(),
        missing: Vec::new(),
        problems: Vec::new(),
        allow_unrecorded: request.allow_unrecorded,
    };
    reader.recorded = recorded.into_iter().collect();
    reader.problems.extend(record_problems);

    let directory = Arc::new(reader.load_directory().await?);
    let mut custodian_ids = Vec::new();
    for custodian in &selection.custodians {
        custodian_ids.push(
            directory
                .resolve_custodian(custodian)
                .map_err(ExportError::Request)?,
        );
    }
    custodian_ids.sort();
    custodian_ids.dedup();

    // Three sorts hold rows at once: the day being read, and the two of the day being written.
    let budget = (request.memory_budget_bytes / 3).max(1);
    let want_chat = formats.iter().any(|f| f.is_chat());
    let want_mail = formats.contains(&Format::Mail) && selection.wants_mail();
    let mut days = BTreeSet::new();
    for (wanted, table) in [
        (want_chat, Table::ChatMessages),
        (want_mail, Table::MailMessages),
    ] {
        if wanted {
            days.extend(reader.archive.partitions(table).await?);
            // A day whose every file is gone is still read, so that they are named.
            days.extend(reader.recorded_days(table));
        }
    }
    days.retain(|d| selection.wants_day(*d));
    let outputs = Outputs::new(&request.out, Spool::create(work.path(), "outputs")?);
    let blobs = Blobs::new(
        reader.archive.store(),
        reader.archive.url(),
        tokio::runtime::Handle::current(),
        Spool::create(work.path(), "blobs-read")?,
    );
    let writer = DayWriter {
        writers: formats
            .iter()
            .filter_map(|f| -> Option<Box<dyn FormatWriter + Send>> {
                Some(match f {
                    Format::Rsmf => Box::new(RsmfWriter::new(
                        request.rsmf,
                        &request.generator,
                        work.path(),
                    )),
                    Format::Jsonl => Box::new(JsonlWriter::new(selection.all_versions)),
                    Format::Csv => {
                        Box::new(CsvWriter::new(selection.all_versions, request.csv_raw))
                    }
                    Format::Html => Box::new(HtmlWriter::new(&request.generator)),
                    Format::Mail => return None,
                })
            })
            .collect(),
        mail: want_mail.then(|| {
            MailWriter::new(
                selection.all_versions,
                selection.keyword_needles(),
                &request.generator,
            )
        }),
        blobs,
        every_version: selection.all_versions
            && formats
                .iter()
                .any(|f| matches!(f, Format::Jsonl | Format::Csv)),
        directory: Arc::clone(&directory),
        selection: selection.clone(),
        needles: selection.keyword_needles(),
        custodians: custodian_ids.clone(),
        budget,
        outputs,
        errors,
        first_errors: Vec::new(),
        totals: Totals::default(),
        conversations: HashSet::new(),
    };

    // The writer works on one day while the reader reads the next.
    let (days_tx, mut days_rx) = mpsc::channel::<DayRows>(1);
    let writing = tokio::task::spawn_blocking(move || -> Result<DayWriter, ExportError> {
        let mut writer = writer;
        while let Some(day) = days_rx.blocking_recv() {
            writer.write_day(day)?;
        }
        writer.finish()?;
        Ok(writer)
    });
    let how = DayRead {
        selection: &selection,
        budget,
        custodians: &custodian_ids,
        wanted: Wanted {
            chat: want_chat,
            mail: want_mail,
        },
    };
    let mut partitions = 0;
    let mut rows_read = 0;
    let mut reading = Ok(());
    for day in days {
        // A day is read only once the writer has taken the one before: one day being
        // written and one being read, never more, whatever the archive holds.
        let Ok(slot) = days_tx.reserve().await else {
            break; // the writer failed; its error is reported below
        };
        let spill = work.path().join(day.format("%Y-%m-%d").to_string());
        match reader.read_day(day, &spill, &how).await {
            Ok(rows) => {
                partitions += 1;
                rows_read += rows.rows_read;
                slot.send(rows);
            }
            Err(e) => {
                reading = Err(e);
                break;
            }
        }
    }
    drop(days_tx);
    let mut writer = match writing.await {
        Ok(Ok(writer)) => writer,
        Ok(Err(e)) => return Err(e),
        Err(join) => {
            return Err(ExportError::Request(format!(
                "the export writer stopped: {join}"
            )));
        }
    };
    reading?;

    for problem in std::mem::take(&mut reader.problems) {
        writer.note(problem)?;
    }
    let mut totals = writer.totals.clone();
    totals.partitions = partitions;
    totals.rows_read = rows_read;
    totals.errors = writer.errors.len();
    totals.conversations = writer.conversations.len() as u64;
    if let Some(mail) = &writer.mail {
        totals.mail_messages = mail.messages;
        totals.mail_versions = mail.versions;
    }
    totals.files_copied = writer.blobs.files;
    totals.file_bytes_copied = writer.blobs.bytes;
    let report_errors = std::mem::take(&mut writer.first_errors);
    let errors = writer.errors;
    let outputs = writer.outputs.finish()?;
    totals.outputs = outputs.len();
    reader.altered.extend(writer.blobs.altered);
    reader.files.append(writer.blobs.reads)?;
    totals.archive_files = reader.files.len();

    let selection_record = SelectionRecord {
        formats: formats.iter().map(|f| f.name().to_string()).collect(),
        custodians: selection.custodians.clone(),
        custodian_ids,
        chats: selection.chats.clone(),
        team: selection.team.clone(),
        channel: selection.channel.clone(),
        from: selection
            .from
            .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        to: selection
            .to
            .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        keywords: selection.keywords.clone(),
        include_deleted: selection.include_deleted,
        all_versions: selection.all_versions,
    };
    let created_at = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let manifest_path = request.out.join(MANIFEST_FILE);
    let head = ManifestHead {
        tool: &request.generator,
        created_at: &created_at,
        archive: reader.archive.url(),
        selection: &selection_record,
        totals: &totals,
    };
    let file =
        std::fs::File::create(&manifest_path).map_err(ExportError::io("create", &manifest_path))?;
    let mut out = std::io::BufWriter::new(file);
    write_manifest(&mut out, &head, errors, reader.files, outputs)
        .and_then(|()| std::io::Write::flush(&mut out))
        .and_then(|()| out.get_ref().sync_all())
        .map_err(ExportError::io("write", &manifest_path))?;
    drop(work);
    Ok(ExportReport {
        manifest: manifest_path,
        totals,
        errors: report_errors,
        altered_files: reader.altered,
        unrecorded_files: reader.unrecorded,
        missing_files: reader.missing,
    })
}

/// The export folder must be new or empty: an export is one set of files.
fn prepare_out_dir(out: &Path) -> Result<(), ExportError> {
    std::fs::create_dir_all(out).map_err(ExportError::io("create", out))?;
    let mut entries = std::fs::read_dir(out).map_err(ExportError::io("list", out))?;
    if entries.next().is_some() {
        return Err(ExportError::Request(format!(
            "the export folder {} is not empty; choose a new folder",
            out.display()
        )));
    }
    Ok(())
}

/// One day's rows, read and sorted (or sorting) by message.
struct DayRows {
    day: NaiveDate,
    spill: PathBuf,
    /// Chat and channel message versions, when a chat format is asked for.
    versions: Option<ExternalSorter<VersionRow>>,
    /// Mail message versions, when mail is.
    mail: Option<ExternalSorter<MailRow>>,
    rows_read: u64,
}

/// What every day's read shares.
#[derive(Clone, Copy)]
struct DayRead<'a> {
    selection: &'a Selection,
    /// Bytes the day's sorts may hold in memory.
    budget: usize,
    /// The custodians selected by id; empty when the selection names none.
    custodians: &'a [String],
    wanted: Wanted,
}

/// Which messages the formats asked for show.
#[derive(Clone, Copy)]
struct Wanted {
    chat: bool,
    mail: bool,
}

/// Reads the archive: files are hashed, checked against their records and listed.
struct Reader {
    archive: Archive,
    recorded: HashMap<String, RecordedFile>,
    files: Spool<ArchiveFileRead>,
    altered: Vec<String>,
    unrecorded: Vec<String>,
    /// Recorded files of the partitions read that the archive no longer holds.
    missing: Vec<String>,
    problems: Vec<String>,
    allow_unrecorded: bool,
}

impl Reader {
    /// The Parquet files of one partition of a table. A file the records list there that
    /// the archive no longer holds is named among the missing and the problems.
    async fn files(
        &mut self,
        table: Table,
        day: NaiveDate,
    ) -> Result<Vec<ArchiveFile>, ExportError> {
        let files = self.archive.files(table, day).await?;
        let Some(dir) = reader::partition_dir(table, day) else {
            return Ok(files);
        };
        let prefix = format!("{dir}/");
        let listed: HashSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
        let mut missing: Vec<(&String, &RecordedFile)> = self
            .recorded
            .iter()
            .filter(|(path, _)| path.starts_with(&prefix) && !listed.contains(path.as_str()))
            .collect();
        missing.sort_by(|a, b| a.0.cmp(b.0));
        for (path, record) in missing {
            self.problems.push(format!(
                "{path}: listed by {} with {} rows, but missing from the archive: its rows are not exported",
                record.recorded_in.join(", "),
                record.rows
            ));
            self.missing.push(path.clone());
        }
        Ok(files)
    }

    /// The days of `table` that the archive's records list files for.
    fn recorded_days(&self, table: Table) -> BTreeSet<NaiveDate> {
        let prefix = format!("{}/", table.folder());
        self.recorded
            .keys()
            .filter_map(|path| {
                reader::partition_day(path.strip_prefix(&prefix)?.split('/').next()?)
            })
            .collect()
    }

    /// Hashes a file, then streams its batches (`columns` only) through `each`.
    ///
    /// A file that cannot be decoded (damaged, or not the shape of its table) is named
    /// among the problems and the export goes on: the rows read before the damage are
    /// exported, the rest of that file cannot be. Storage errors stop the export.
    ///
    /// A file whose SHA-256 differs from its record is not read, nor (unless allowed) one
    /// that no record lists: its rows are not what the archive committed.
    async fn read_file(
        &mut self,
        file: &ArchiveFile,
        columns: &[&str],
        mut each: impl FnMut(&arrow::record_batch::RecordBatch, u64) -> Result<(), String>,
    ) -> Result<(), ExportError> {
        let sha256 = self.archive.sha256(file).await?;
        let recorded = self.recorded.get(&file.path);
        let check = reader::check_against(recorded, &sha256);
        let refused = match check {
            FileCheck::Match => None,
            FileCheck::Mismatch => {
                Some("not exported: its SHA-256 differs from the archive's record".to_string())
            }
            FileCheck::Unrecorded if self.allow_unrecorded => None,
            FileCheck::Unrecorded => Some(
                "not exported: no commit record or run summary lists it (--allow-unrecorded exports it)"
                    .to_string(),
            ),
        };
        let mut rows = 0u64;
        let mut damage = None;
        let batches = match &refused {
            Some(_) => None,
            None => Some(self.archive.batches(file, columns).await),
        };
        match batches {
            None => {}
            Some(batches) => match batches {
                Ok(mut batches) => loop {
                    match batches.try_next().await {
                        Ok(Some(batch)) => {
                            if let Err(reason) = each(&batch, rows) {
                                damage = Some(reason);
                                break;
                            }
                            rows += batch.num_rows() as u64;
                        }
                        Ok(None) => break,
                        Err(e @ ExportError::Store { .. }) => return Err(e),
                        Err(e) => {
                            damage = Some(e.chain());
                            break;
                        }
                    }
                },
                Err(e @ ExportError::Store { .. }) => return Err(e),
                Err(e) => damage = Some(e.chain()),
            },
        }
        match check {
            FileCheck::Mismatch => self.altered.push(file.path.clone()),
            FileCheck::Unrecorded => self.unrecorded.push(file.path.clone()),
            FileCheck::Match => {}
        }
        if let Some(reason) = &damage {
            self.problems.push(format!(
                "{}: could not be read past row {rows}, so its later rows are not exported: {reason}",
                file.path
            ));
        }
        if let Some(reason) = &refused {
            self.problems.push(format!("{}: {reason}", file.path));
        }
        self.files.push(&ArchiveFileRead {
            path: file.path.clone(),
            table: file.table.clone(),
            partition: file.partition.clone(),
            bytes: file.bytes,
            sha256,
            rows,
            recorded_sha256: recorded.map(|r| r.sha256.clone()),
            check,
            error: damage.or(refused),
        })
    }

    /// Every snapshot of `directory/users` and `directory/chats`.
    async fn load_directory(&mut self) -> Result<Directory, ExportError> {
        let mut directory = Directory::default();
        for (table, columns) in [
            (Table::DirectoryUsers, directory::USER_COLUMNS),
            (Table::DirectoryChats, directory::CHAT_COLUMNS),
        ] {
            let mut days: BTreeSet<NaiveDate> =
                self.archive.partitions(table).await?.into_iter().collect();
            days.extend(self.recorded_days(table));
            for day in days {
                for file in self.files(table, day).await? {
                    self.read_file(&file, columns, |batch, _| {
                        if table == Table::DirectoryUsers {
                            directory.add_users(batch)
                        } else {
                            directory.add_chats(batch)
                        }
                    })
                    .await?;
                }
            }
        }
        Ok(directory)
    }

    /// The day's content rows and custodian rows, then its message versions, into a sort
    /// by message.
    async fn read_day(
        &mut self,
        day: NaiveDate,
        spill: &Path,
        how: &DayRead<'_>,
    ) -> Result<DayRows, ExportError> {
        let DayRead {
            selection,
            budget,
            custodians: selected_custodians,
            wanted,
        } = *how;
        let mut contents = ContentIndex::default();
        for file in self.files(Table::MessageContents, day).await? {
            self.read_file(&file, CONTENT_COLUMNS, |batch, first| {
                contents.add(batch, first)
            })
            .await?;
        }
        // Both sorts of a day being read share its third of the budget.
        let budget = if wanted.chat && wanted.mail {
            (budget / 2).max(1)
        } else {
            budget
        };
        let mut rows_read = 0u64;
        let versions = if wanted.chat {
            Some(
                self.read_chat_day(day, spill, how, budget, &contents, &mut rows_read)
                    .await?,
            )
        } else {
            None
        };
        let mail = if wanted.mail {
            let mut mail = ExternalSorter::new(spill, "mail", budget);
            let keep = |row: &mut MailRow| {
                if (!selected_custodians.is_empty()
                    && !selected_custodians.contains(&row.custodian))
                    || !selection.wants_time(row.received_us, day)
                {
                    return false;
                }
                row.contents = contents.of(true, &row.content_sha256);
                true
            };
            self.sort_rows(day, keep, &mut mail, &mut rows_read).await?;
            Some(mail)
        } else {
            None
        };
        tracing::debug!(%day, rows_read, "partition read");
        Ok(DayRows {
            day,
            spill: spill.to_path_buf(),
            versions,
            mail,
            rows_read,
        })
    }

    /// The day's custodian rows, then its chat message versions, into a sort by message.
    /// `budget` is its share of the day's.
    async fn read_chat_day(
        &mut self,
        day: NaiveDate,
        spill: &Path,
        how: &DayRead<'_>,
        budget: usize,
        contents: &ContentIndex,
        rows_read: &mut u64,
    ) -> Result<ExternalSorter<VersionRow>, ExportError> {
        let (selection, selected_custodians) = (how.selection, how.custodians);
        let mut custodians = CustodianIndex::default();
        for file in self.files(Table::ChatMessageCustodians, day).await? {
            self.read_file(
                &file,
                &["custodian_user_id", "content_sha256"],
                |batch, first| custodians.add(batch, first),
            )
            .await?;
        }
        let mut versions = ExternalSorter::new(spill, "versions", budget);
        let keep = |row: &mut VersionRow| {
            if !selection.wants_conversation(&row.conversation)
                || !selection.wants_time(row.created_us, day)
            {
                return false;
            }
            row.custodians = custodians.of(&row.content_sha256);
            row.contents = contents.of(false, &row.content_sha256);
            // Channel messages have no custodian: a custodian selection leaves them out.
            // (Chat versions held by others stay, so a message some selected custodian
            // held keeps all its versions.)
            selected_custodians.is_empty()
                || row
                    .custodians
                    .iter()
                    .any(|c| selected_custodians.contains(c))
                || !row.conversation.is_channel()
        };
        self.sort_rows(day, keep, &mut versions, rows_read).await?;
        tracing::debug!(%day, spilled_runs = versions.spilled_runs(), "chat partition read");
        Ok(versions)
    }

    /// Reads the day's files of `T`'s table into `sorter`: each row `keep` accepts, once
    /// it has filled in what the row needs. Every row read is counted in `rows_read`.
    async fn sort_rows<T: TableRow>(
        &mut self,
        day: NaiveDate,
        mut keep: impl FnMut(&mut T) -> bool,
        sorter: &mut ExternalSorter<T>,
        rows_read: &mut u64,
    ) -> Result<(), ExportError> {
        for file in self.files(T::TABLE, day).await? {
            let path: Arc<str> = file.path.as_str().into();
            // A spill that fails is the export's error, not damage to the file being
            // read: it stops the batches and is returned once the file is left.
            let mut pushed = Ok(());
            self.read_file(&file, T::columns(), |batch, first| {
                *rows_read += batch.num_rows() as u64;
                for mut row in T::from_batch(batch, &path, first)? {
                    if !keep(&mut row) {
                        continue;
                    }
                    if let Err(e) = sorter.push(row) {
                        pushed = Err(e);
                        return Ok(());
                    }
                }
                Ok(())
            })
            .await?;
            pushed?;
        }
        Ok(())
    }
}

/// Which mailboxes held each version of one day: content hash to custodian ids.
#[derive(Default)]
struct CustodianIndex {
    names: Vec<String>,
    ids: HashMap<String, u32>,
    by_version: HashMap<[u8; 32], Vec<u32>>,
}

impl CustodianIndex {
    fn add(&mut self, batch: &arrow::record_batch::RecordBatch, first: u64) -> Result<(), String> {
        let custodian = Strings::required(batch, "custodian_user_id")?;
        let sha = Strings::required(batch, "content_sha256")?;
        for row in 0..batch.num_rows() {
            let position = first + row as u64;
            let (Some(custodian), Some(sha)) = (custodian.get(row), sha.get(row)) else {
                return Err(format!(
                    "row {position}: custodian_user_id or content_sha256 is null"
                ));
            };
            let mut key = [0u8; 32];
            hex::decode_to_slice(sha, &mut key)
                .map_err(|_| format!("row {position}: content_sha256 {sha:?} is not a SHA-256"))?;
            let next = self.names.len() as u32;
            let id = *self.ids.entry(custodian.to_string()).or_insert_with(|| {
                self.names.push(custodian.to_string());
                next
            });
            let held = self.by_version.entry(key).or_default();
            if !held.contains(&id) {
                held.push(id);
            }
        }
        Ok(())
    }

    fn of(&self, sha: &str) -> Vec<String> {
        let mut key = [0u8; 32];
        if hex::decode_to_slice(sha, &mut key).is_err() {
            return Vec::new();
        }
        let mut names: Vec<String> = self
            .by_version
            .get(&key)
            .into_iter()
            .flatten()
            .map(|&i| self.names[i as usize].clone())
            .collect();
        names.sort();
        names
    }
}

/// Turns each day into transcript-ordered messages for every format.
struct DayWriter {
    writers: Vec<Box<dyn FormatWriter + Send>>,
    mail: Option<MailWriter>,
    /// Copies the blobs messages point to into the export.
    blobs: Blobs,
    /// Every version's content is shown (JSONL or CSV with every version), not only the
    /// latest's and the shown text's.
    every_version: bool,
    directory: Arc<Directory>,
    selection: Selection,
    needles: Vec<String>,
    custodians: Vec<String>,
    budget: usize,
    outputs: Outputs,
    errors: Spool<String>,
    first_errors: Vec<String>,
    totals: Totals,
    conversations: HashSet<ConversationKey>,
}

impl DayWriter {
    fn wants(&self, message: &Message) -> bool {
        if !self.selection.include_deleted && message.is_deleted() {
            return false;
        }
        if !self.custodians.is_empty()
            && !message
                .custodians()
                .iter()
                .any(|c| self.custodians.iter().any(|s| s == c))
        {
            return false;
        }
        self.needles.is_empty() || message.mentions_any(&self.needles)
    }

    fn write_day(&mut self, rows: DayRows) -> Result<(), ExportError> {
        if let Some(versions) = rows.versions {
            self.write_chat_day(rows.day, &rows.spill, versions)?;
        }
        if let (Some(mail), Some(sorter)) = (self.mail.as_mut(), rows.mail) {
            let mut problems = Vec::new();
            mail.write_day(
                rows.day,
                sorter,
                &self.directory,
                &mut self.blobs,
                &mut self.outputs,
                &mut problems,
            )?;
            for problem in problems {
                self.note(problem)?;
            }
            self.note_blob_problems()?;
        }
        let _ = std::fs::remove_dir_all(&rows.spill);
        Ok(())
    }

    fn write_chat_day(
        &mut self,
        day: NaiveDate,
        spill: &Path,
        versions: ExternalSorter<VersionRow>,
    ) -> Result<(), ExportError> {
        let mut messages: ExternalSorter<Message> =
            ExternalSorter::new(spill, "messages", self.budget);
        for message in grouped(versions.finish()?) {
            let message = message?;
            if self.wants(&message) {
                messages.push(message)?;
            }
        }
        let directory = Arc::clone(&self.directory);
        let custodians = self.custodians.clone();
        let mut current: Option<ConversationKey> = None;
        for message in messages.finish()? {
            let message = message?;
            if current.as_ref() != Some(message.conversation()) {
                if let Some(done) = current.take() {
                    self.end(day, &done, &directory, &custodians)?;
                }
                let conversation = message.conversation().clone();
                let day = ConversationDay {
                    day,
                    conversation: &conversation,
                    directory: &directory,
                    selected_custodians: &custodians,
                };
                for writer in &mut self.writers {
                    writer.begin(&day, &mut self.outputs)?;
                }
                self.totals.conversation_days += 1;
                self.conversations.insert(conversation.clone());
                current = Some(conversation);
            }
            let conversation = current.clone().unwrap_or(ConversationKey::Unknown);
            let day = ConversationDay {
                day,
                conversation: &conversation,
                directory: &directory,
                selected_custodians: &custodians,
            };
            let mut view = MessageView::new(&message, &directory);
            for problem in &view.problems {
                self.note(problem.clone())?;
            }
            let latest = message.versions().len() - 1;
            for (i, version) in message.versions().iter().enumerate() {
                if i == latest || i == view.shown || self.every_version {
                    view.contents[i] = version
                        .contents
                        .iter()
                        .map(|piece| self.blobs.export(piece.clone(), &mut self.outputs))
                        .collect::<Result<_, _>>()?;
                }
            }
            self.note_blob_problems()?;
            for writer in &mut self.writers {
                writer.message(&day, &view, &mut self.outputs)?;
            }
            self.totals.messages += 1;
            self.totals.versions += message.versions().len() as u64;
        }
        if let Some(done) = current {
            self.end(day, &done, &directory, &custodians)?;
        }
        Ok(())
    }

    /// Blobs that could not be copied, each named once.
    fn note_blob_problems(&mut self) -> Result<(), ExportError> {
        for problem in std::mem::take(&mut self.blobs.problems) {
            self.note(problem)?;
        }
        Ok(())
    }

    fn end(
        &mut self,
        day: NaiveDate,
        conversation: &ConversationKey,
        directory: &Directory,
        custodians: &[String],
    ) -> Result<(), ExportError> {
        let day = ConversationDay {
            day,
            conversation,
            directory,
            selected_custodians: custodians,
        };
        for writer in &mut self.writers {
            writer.end(&day, &mut self.outputs)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), ExportError> {
        for writer in &mut self.writers {
            writer.finish(&mut self.outputs)?;
        }
        if let Some(mail) = &mut self.mail {
            mail.finish(&mut self.outputs)?;
        }
        Ok(())
    }

    /// A problem with one row or record: kept for the manifest, the first few for the report.
    fn note(&mut self, problem: String) -> Result<(), ExportError> {
        tracing::warn!("{problem}");
        if self.first_errors.len() < REPORTED_ERRORS {
            self.first_errors.push(problem.clone());
        }
        self.errors.push(&problem)
    }
}

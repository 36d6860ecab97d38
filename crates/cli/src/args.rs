//! The command line: what each command does and every flag it takes.

use std::path::PathBuf;

use anyhow::Context;
use archive::signing::SigningKey;
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::logging::LogFormat;

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  fatal: the command could not run (credentials, configuration, unreachable storage)
  2  usage error
  3  partial failure: some scopes, files or items failed; the rest was archived
  4  verify found a mismatch

Start with `teams-archiver demo`, then `teams-archiver <command> --help`.";

/// Archive Microsoft Teams chat and channel messages, and Outlook mail, from Microsoft
/// Graph as date-partitioned Parquet, keeping every version of every message.
#[derive(Debug, Parser)]
#[command(name = "teams-archiver", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "TEAMS_ARCHIVER_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// Hide the progress display (it is hidden anyway when stderr is not a terminal).
    #[arg(long, global = true)]
    pub no_progress: bool,

    /// Permissions of what the run creates (archive files and folders on local disk,
    /// exports, temporary files) as an octal umask: 0077 for the owner only, 0027 to let
    /// the group read. Default: the umask inherited (systemd's UMask=, the shell's). The
    /// state folder is 0700 with 0600 files whatever the umask.
    #[arg(long, global = true, value_name = "OCTAL", value_parser = parse_umask, env = "TEAMS_ARCHIVER_UMASK")]
    pub umask: Option<u32>,

    #[command(subcommand)]
    pub command: Command,
}

fn parse_time(value: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("expected an RFC 3339 time such as 2024-05-01T00:00:00Z ({e})"))
}

fn parse_umask(value: &str) -> Result<u32, String> {
    u32::from_str_radix(value.trim_start_matches("0o"), 8)
        .ok()
        .filter(|mask| *mask <= 0o777)
        .ok_or_else(|| {
            format!("expected an octal umask from 000 to 777 such as 0077, got {value:?}")
        })
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Archive saved Graph responses (pages, single items or JSONL) from files.
    ///
    /// Use it to migrate an existing export, or to archive what another tool fetched.
    /// Each input is a file or a folder (searched for *.json, *.jsonl, *.ndjson). A
    /// file may hold a Graph page (`{"value": [...]}`), a single item, or one item per
    /// line. Items already in the archive are not stored again.
    ///
    /// Example:
    ///   teams-archiver ingest --out ./archive saved-pages/
    Ingest(IngestArgs),

    /// Archive new and changed messages from Microsoft Graph: the nightly job.
    ///
    /// Plans scopes (each user's chats, each channel, each user's mail folders), runs
    /// them concurrently within Graph's limits as delta rounds resumed from their
    /// checkpoints, writes new message versions, and moves each checkpoint only after
    /// the data it covers is durable. Killed at any moment, a rerun picks up where the
    /// last commit left off, and no version is stored twice.
    ///
    /// The client secret comes from TEAMS_ARCHIVER_CLIENT_SECRET (or --client-secret-file,
    /// or --certificate). S3 settings come from the usual AWS_* variables.
    ///
    /// Examples:
    ///   teams-archiver sync --tenant-id T --client-id C --out s3://bucket/teams
    ///   teams-archiver sync --source chats --user alice@contoso.com --out ./archive
    ///   teams-archiver sync --shard 2/8 --out s3://bucket/teams   # worker 2 of 8
    Sync(SyncArgs),

    /// Run the whole pipeline against the embedded Graph simulator, into ./archive.
    ///
    /// Starts a simulated tenant, archives it, edits and deletes a few messages, runs an
    /// incremental sync, and prints DuckDB queries to try on the result.
    Demo(DemoArgs),

    /// Show the checkpoints of every scope and the last runs of an archive.
    Status(StatusArgs),

    /// Export messages for legal review: RSMF 2.0, JSONL, CSV or HTML transcripts.
    ///
    /// Reads only the date partitions the selection needs and streams, so an archive of
    /// any size exports in bounded memory. Every export writes export_manifest.json: the
    /// selection, the archive files read and every output file with its SHA-256.
    ///
    /// Examples:
    ///   teams-archiver export --archive ./archive --out ./matter-42 --format rsmf --format html \
    ///       --custodian alice@contoso.com --from 2024-01-01T00:00:00Z --to 2024-07-01T00:00:00Z
    ///   teams-archiver export --archive s3://bucket/teams --out ./kw --format jsonl --keyword invoice
    Export(ExportArgs),

    /// Check an archive (or an export) against its recorded SHA-256 digests.
    ///
    /// Recomputes the digest of every archive file against the commit records and run
    /// summaries, and each row's content_sha256 against its raw_json; reports missing, extra
    /// and altered files and rows. With --export, checks an export against its manifest.
    Verify(VerifyArgs),

    /// Print the archive's table schemas, or write them with their SQL views.
    ///
    /// Example:
    ///   teams-archiver schema --out schemas/
    Schema(SchemaArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindHint {
    /// Decide per item: chatMessage or mail message, by its `@odata.type` or its properties.
    Auto,
    /// Every item is a Teams chatMessage (chat or channel).
    Chat,
    /// Every item is an Outlook mail message (delta removals included).
    Mail,
}

/// Where `sync` and `ingest` write, and the key that signs what they write.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Where the archive is: a folder, file://..., s3://bucket/prefix, az://..., gs://...
    #[arg(long, value_name = "DIR|URL")]
    pub out: String,

    /// Where checkpoints and the write-ahead record live (default: <out>/_state).
    #[arg(long, value_name = "DIR|URL")]
    pub state: Option<String>,

    /// Sign every commit record and run summary with this Ed25519 private key (PKCS#8
    /// PEM, as `openssl genpkey -algorithm ed25519` writes it). Keep it outside the
    /// archive; `verify --verify-key` then proves that the key's holder wrote the records.
    #[arg(long, value_name = "PEM", env = "TEAMS_ARCHIVER_SIGNING_KEY")]
    pub signing_key: Option<PathBuf>,
}

impl TargetArgs {
    /// The signing key, read from its file.
    pub fn signing_key(&self) -> anyhow::Result<Option<std::sync::Arc<SigningKey>>> {
        self.signing_key
            .as_deref()
            .map(|path| SigningKey::load(path).map(std::sync::Arc::new))
            .transpose()
            .context("reading --signing-key")
    }
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// What the items are.
    #[arg(long, value_enum, default_value_t = KindHint::Auto)]
    pub kind: KindHint,

    /// Record these chat messages as held by this user's mailbox (a Graph user id).
    #[arg(long, value_name = "USER_ID")]
    pub custodian: Option<String>,

    /// Memory for the whole run, in MiB. An eighth of it holds rows waiting to be
    /// written; files are committed when that fills.
    #[arg(long, value_name = "MIB", default_value = "256")]
    pub memory_budget_mib: std::num::NonZeroUsize,

    /// Worker threads that parse and transform (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Where items wait, sorted by day, between reading and archiving (default: the
    /// system's temporary folder, TMPDIR). Needs about as much free space as the inputs
    /// take, best on a local disk rather than a RAM-backed tmpfs; removed when the run
    /// ends, or by the next run here if this one is killed.
    #[arg(long, value_name = "DIR")]
    pub spill_dir: Option<PathBuf>,

    /// Longest line of a JSONL file, and largest page file (*.json, read whole), in MiB.
    /// A longer line or larger file is named and skipped (the run then exits 3) rather
    /// than read into memory whole.
    #[arg(long, value_name = "MIB", default_value_t = 16)]
    pub max_line_mib: usize,

    /// Files or folders of saved Graph responses.
    #[arg(required = true, value_name = "FILES_OR_DIRS")]
    pub inputs: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Write the schema files (Arrow JSON, column reference, DuckDB and Spark views) here.
    /// Without it, print the Arrow schemas.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum)]
pub enum SourceKind {
    /// Every user's chats (getAllMessages/delta), with custodian records.
    Chats,
    /// Every team channel (messages/delta) and the replies of changed messages.
    Channels,
    /// Every user's mail folders (messages/delta), removals included.
    Mail,
}

#[derive(Debug, Clone, Args)]
pub struct GraphArgs {
    /// The Entra ID (Azure AD) tenant id.
    #[arg(long, env = "TEAMS_ARCHIVER_TENANT_ID", value_name = "ID")]
    pub tenant_id: String,

    /// The app registration's client (application) id.
    #[arg(long, env = "TEAMS_ARCHIVER_CLIENT_ID", value_name = "ID")]
    pub client_id: String,

    /// Read the client secret from this file instead of TEAMS_ARCHIVER_CLIENT_SECRET.
    #[arg(long, value_name = "FILE", conflicts_with = "certificate")]
    pub client_secret_file: Option<PathBuf>,

    /// Authenticate with a certificate: a PEM file holding the private key and the
    /// certificate registered for the app.
    #[arg(long, value_name = "PEM")]
    pub certificate: Option<PathBuf>,

    /// A client secret given by the program itself (the demo), never by a flag: secrets on
    /// a command line end up in shell histories and process lists.
    #[arg(skip)]
    pub client_secret: Option<String>,

    /// Microsoft Graph's base URL (national clouds, a proxy, or a simulator).
    #[arg(
        long,
        value_name = "URL",
        default_value = "https://graph.microsoft.com"
    )]
    pub graph_url: String,

    /// The identity platform's base URL (national clouds, or a simulator).
    #[arg(
        long,
        value_name = "URL",
        default_value = "https://login.microsoftonline.com"
    )]
    pub login_url: String,

    /// Accept http:// Graph and login URLs. Without it they are refused: the secret,
    /// tokens and messages would cross the network unencrypted. For a local simulator
    /// or a TLS-terminating proxy on this machine only.
    #[arg(long)]
    pub allow_insecure_http: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub graph: GraphArgs,

    #[command(flatten)]
    pub target: TargetArgs,

    /// What to archive (repeat the flag for several; default: chats and channels).
    #[arg(long = "source", value_enum, value_name = "SOURCE")]
    pub sources: Vec<SourceKind>,

    /// Only these users (Graph id or userPrincipalName; repeatable). Default: every user.
    #[arg(long = "user", value_name = "ID_OR_UPN")]
    pub users: Vec<String>,

    /// Only these teams (Graph id; repeatable). Default: every team.
    #[arg(long = "team", value_name = "ID")]
    pub teams: Vec<String>,

    /// This process is worker K of N: it takes the users and teams whose stable hash
    /// falls to it, so N workers share one archive without coordination.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<archive::layout::Shard>,

    /// Scopes fetched at the same time (Graph's own limits apply on top).
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub concurrency: usize,

    /// First run only: archive messages changed after this time (RFC 3339). Without it
    /// a first run archives all the history Graph offers.
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    pub since: Option<DateTime<Utc>>,

    /// Memory for the whole run, in MiB. Peak memory stays within the budget plus a floor
    /// of 64 MiB (the program, its runtime and TLS, and what the allocator keeps): size a
    /// pod's limit or systemd's MemoryMax= at budget + 64 MiB. A quarter of the budget
    /// holds the rows being gathered into files (files are committed when it fills), a
    /// quarter the rows waiting while a commit runs, a sixteenth the rows scopes gather;
    /// the rest covers what those do not count (encoders, pages in flight). A larger
    /// budget means fewer, larger files. The run summary records the peak.
    #[arg(long, value_name = "MIB", default_value = "256")]
    pub memory_budget_mib: std::num::NonZeroUsize,

    /// Commit at least this often (seconds), so a long first round keeps its progress.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub commit_interval: u64,

    /// Items per page asked of Graph ($top or odata.maxpagesize).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub page_size: u32,

    /// The payment model of Microsoft's protected Teams APIs the app is set up for
    /// (getAllMessages, chat delta, team history): A for security and compliance apps,
    /// B otherwise. Sent as `model=` on every protected call.
    #[arg(long, value_enum, value_name = "MODEL", default_value_t = PaymentModel::A)]
    pub payment_model: PaymentModel,

    /// Retries of one request (throttling, server errors, dropped connections, broken
    /// bodies, with backoff) before its scope is reported as failed.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub max_retries: u32,

    /// What to capture of the content messages point to, stored once by SHA-256 under
    /// `blobs/` and listed in `message_contents`: `inline` (inline images of chat and
    /// channel messages, and mail attachments), `all` (also the SharePoint and OneDrive
    /// files messages link; needs Files.Read.All or Sites.Read.All) or `none`.
    #[arg(long, value_enum, value_name = "WHAT", default_value_t = ContentMode::Inline)]
    pub content: ContentMode,

    /// Content larger than this (MiB) is recorded as `too_large` and not fetched.
    /// Downloads stream to disk, so the cap bounds disk and time, not memory.
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    pub content_max_mib: u64,

    /// Also store each mail message version's MIME (`/messages/{id}/$value`), the
    /// native form eDiscovery review tools load.
    #[arg(long)]
    pub mail_mime: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ContentMode {
    None,
    Inline,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PaymentModel {
    A,
    B,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to write the demo archive.
    #[arg(long, value_name = "DIR", default_value = "archive")]
    pub out: PathBuf,

    /// Users in the simulated tenant.
    #[arg(long, value_name = "N", default_value_t = 12)]
    pub users: usize,

    /// Seed of the simulated tenant (same seed, same tenant).
    #[arg(long, value_name = "N", default_value_t = 7)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The archive: a folder or URL.
    #[arg(long, value_name = "DIR|URL")]
    pub out: String,

    /// Where checkpoints live (default: <out>/_state).
    #[arg(long, value_name = "DIR|URL")]
    pub state: Option<String>,

    /// Show the checkpoints of worker K of N (as `sync --shard K/N` keeps them).
    #[arg(long, value_name = "K/N")]
    pub shard: Option<archive::layout::Shard>,

    /// How many of the latest runs to show.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub runs: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum)]
pub enum ExportFormat {
    /// Relativity Short Message Format 2.0: one .rsmf per conversation and day.
    Rsmf,
    /// One message version per line, with every archived column and raw_json.
    Jsonl,
    /// The flat columns, RFC 4180, UTF-8 with a header.
    Csv,
    /// A readable transcript per conversation and day.
    Html,
    /// An EML per mail message version (its archived MIME when there is one) and an mbox
    /// per mailbox.
    Mail,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// The archive to read: a folder, file://..., s3://bucket/prefix, az://..., gs://...
    #[arg(long, value_name = "DIR|URL")]
    pub archive: String,

    /// The folder to write the export into (created; must be empty).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Output formats (repeatable).
    #[arg(long = "format", value_enum, required = true, value_name = "FORMAT")]
    pub formats: Vec<ExportFormat>,

    /// Messages held by these custodians (Graph user id or userPrincipalName; repeatable).
    #[arg(long = "custodian", value_name = "USER_ID_OR_UPN")]
    pub custodians: Vec<String>,

    /// Messages of these chats (repeatable).
    #[arg(long = "chat", value_name = "CHAT_ID")]
    pub chats: Vec<String>,

    /// Messages of this team's channels.
    #[arg(long, value_name = "ID")]
    pub team: Option<String>,

    /// Messages of this channel.
    #[arg(long, value_name = "ID")]
    pub channel: Option<String>,

    /// Messages created at or after this time (RFC 3339).
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    pub from: Option<DateTime<Utc>>,

    /// Messages created before this time (RFC 3339).
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    pub to: Option<DateTime<Utc>>,

    /// Messages whose text contains this word, case-insensitive (repeatable: any of them).
    #[arg(long = "keyword", value_name = "WORD")]
    pub keywords: Vec<String>,

    /// Include messages that were deleted (their last version shows the deletion).
    #[arg(long)]
    pub include_deleted: bool,

    /// Export every archived version, not only the latest of each message.
    #[arg(long)]
    pub all_versions: bool,

    /// Memory for sorting a day's messages, in MiB; past it, sorted runs go to disk in
    /// the export folder (removed when done).
    #[arg(long, value_name = "MIB", default_value = "256")]
    pub memory_budget_mib: std::num::NonZeroUsize,

    /// Write CSV cells exactly as archived. By default a cell beginning with = + - @, a
    /// tab or a carriage return gets a leading ' so that spreadsheets show it as text
    /// instead of running it as a formula.
    #[arg(long)]
    pub csv_raw: bool,

    /// Also export rows of archive files that no commit record or run summary lists. By
    /// default such files are not read, each is named, and the exit code is 4: anyone
    /// who can write the bucket could have put them there. Files whose SHA-256 differs
    /// from their record are never exported.
    #[arg(long)]
    pub allow_unrecorded: bool,
}

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The archive to check: a folder or URL (required unless --export is given).
    #[arg(long, value_name = "DIR|URL", required_unless_present = "export")]
    pub archive: Option<String>,

    /// An export folder to check against its export_manifest.json.
    #[arg(long, value_name = "DIR")]
    pub export: Option<PathBuf>,

    /// A chain head (the SHA-256 that `sync`, `ingest` or `verify` printed on its `chain
    /// <writer> <sequence> <sha256>` line, kept outside the archive). Exit code 4 unless
    /// that record is still in its writer's chain with every record up to it unaltered,
    /// and (without --allow-later-records) no record follows it. Repeatable, one per
    /// writer.
    #[arg(long = "expect-head", value_name = "SHA256", requires = "archive")]
    pub expect_heads: Vec<String>,

    /// Records after an expected head are fine: an older head is being checked. Without
    /// it, each is reported, since it was written by a run whose head was not recorded,
    /// or forged.
    #[arg(long, requires = "expect_heads")]
    pub allow_later_records: bool,

    /// Every commit record and run summary must carry a valid signature by this Ed25519
    /// public key (PEM from `openssl pkey -pubout`, or the 64 hex digits `sync` logs).
    /// Without it, signatures are not checked.
    #[arg(long, value_name = "PEM", requires = "archive")]
    pub verify_key: Option<PathBuf>,
}

//! The writer on local disk: layout, encoding, deterministic names, deduplication,
//! no overwrite, errors, checkpoints and the memory budget.

mod common;

use parquet::file::metadata::KeyValue;
use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;

use archive::records::CommitRecord;
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use common::*;
use parquet::basic::{LogicalType, TimeUnit, TimestampType};
use sink::{ArchiveWriter, Checkpoint, CheckpointStore, SinkError, WriterOptions};

fn options() -> WriterOptions {
    WriterOptions {
        run_id: "test-run".into(),
        ..Default::default()
    }
}

async fn open(archive: &std::path::Path, state: &std::path::Path) -> ArchiveWriter {
    open_local(archive, state, options()).await
}

/// Opens the writer again, with what opening it found and repaired.
async fn reopen(
    archive: &std::path::Path,
    state: &std::path::Path,
) -> (ArchiveWriter, sink::RecoveryReport) {
    ArchiveWriter::open(
        archive.to_str().unwrap(),
        state.to_str().unwrap(),
        vec![message_spec()],
        options(),
    )
    .await
    .unwrap()
}

fn read_file(
    path: &std::path::Path,
) -> (Vec<RecordBatch>, parquet::file::metadata::ParquetMetaData) {
    read_parquet(bytes::Bytes::from(std::fs::read(path).unwrap()))
}

/// The content hash of every row in the archive's files.
fn archived_shas(archive: &std::path::Path) -> Vec<String> {
    parquet_files(archive, TABLE)
        .iter()
        .flat_map(|file| read_file(file).0)
        .flat_map(|b| shas(&b))
        .collect()
}

#[tokio::test]
async fn writes_partitioned_parquet_that_reads_back() {
    let (_dir, archive, state) = local_dirs();
    let mut writer = open(&archive, &state).await;
    let input = messages("m", 30, 3, 200);
    let stats = writer.append(TABLE, &batch(&input)).unwrap();
    assert_eq!(
        (stats.rows_in, stats.rows_new, stats.rows_duplicate),
        (30, 30, 0)
    );
    let report = writer.commit(vec![]).await.unwrap();
    assert_eq!(report.files.len(), 3);
    assert_eq!(report.rows, 30);

    let files = parquet_files(&archive, TABLE);
    let relative: Vec<String> = files
        .iter()
        .map(|f| f.strip_prefix(&archive).unwrap().display().to_string())
        .collect();
    for (path, day) in relative
        .iter()
        .zip(["2024-05-01", "2024-05-02", "2024-05-03"])
    {
        let prefix = format!("chat_messages/date={day}/part-");
        assert!(path.starts_with(&prefix), "{path}");
        let hash = path
            .strip_prefix(&prefix)
            .unwrap()
            .strip_suffix(".parquet")
            .unwrap();
        assert_eq!(hash.len(), 32);
        assert!(
            hash.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }

    let mut read_back = BTreeSet::new();
    for file in &files {
        let (batches, metadata) = read_file(file);
        let schema = batches[0].schema();
        assert!(
            schema.column_with_name("date").is_none(),
            "date is a hive partition only"
        );
        assert_eq!(schema.fields().len(), 6);
        let created = schema.field_with_name("created_date_time").unwrap();
        assert_eq!(
            created.data_type(),
            &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into()))
        );
        // The Parquet schema itself: MICROS, adjusted to UTC; three-level lists.
        let parquet_schema = metadata.file_metadata().schema_descr();
        let created = parquet_schema
            .columns()
            .iter()
            .find(|c| c.name() == "created_date_time")
            .unwrap();
        assert_eq!(
            created.logical_type_ref(),
            Some(&LogicalType::Timestamp(TimestampType {
                is_adjusted_to_u_t_c: true,
                unit: TimeUnit::MICROS
            }))
        );
        let paths: Vec<String> = parquet_schema
            .columns()
            .iter()
            .map(|c| c.path().string())
            .collect();
        assert!(
            paths.contains(&"tags.list.element".to_string()),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"mentions.list.element.user_id".to_string()),
            "{paths:?}"
        );
        let row_group = metadata.row_group(0);
        assert!(
            row_group
                .columns()
                .iter()
                .all(|c| matches!(c.compression(), parquet::basic::Compression::ZSTD(_)))
        );
        assert!(
            row_group.column(0).statistics().is_some(),
            "statistics are written"
        );
        let key_value = metadata
            .file_metadata()
            .key_value_metadata()
            .cloned()
            .unwrap_or_default();
        let schema_version = KeyValue::new(
            archive::SCHEMA_VERSION_KEY.to_string(),
            archive::SCHEMA_VERSION.to_string(),
        );
        assert_eq!(
            key_value,
            vec![schema_version],
            "the schema version, and nothing but the Parquet schema describes the columns"
        );

        for b in &batches {
            let order = index_order(b);
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(order, sorted, "rows are in version-key order");
            read_back.extend(shas(b));
        }
    }
    let expected: BTreeSet<String> = input.iter().map(|m| m.sha()).collect();
    assert_eq!(read_back, expected);

    // The commit record lists exactly these files with their sizes and hashes.
    let commits: Vec<_> = std::fs::read_dir(archive.join("_archive/commits"))
        .unwrap()
        .collect();
    assert_eq!(commits.len(), 1);
    let record: CommitRecord =
        serde_json::from_slice(&std::fs::read(commits[0].as_ref().unwrap().path()).unwrap())
            .unwrap();
    assert_eq!(record.files, report.files);
    for file in &record.files {
        let bytes = std::fs::read(archive.join(&file.path)).unwrap();
        assert_eq!(file.bytes, bytes.len() as u64);
        assert_eq!(
            file.sha256,
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
        );
    }
}

#[tokio::test]
async fn same_rows_make_the_same_file_in_any_order() {
    let dir = tempfile::tempdir().unwrap();
    let input = messages("d", 50, 1, 100);
    let mut reversed = input.clone();
    reversed.reverse();

    let mut names_and_bytes = Vec::new();
    for (i, rows) in [&input, &reversed].into_iter().enumerate() {
        let archive = dir.path().join(format!("out{i}"));
        let mut writer = open(&archive, &dir.path().join(format!("state{i}"))).await;
        // Split differently each time: arrival order must not matter.
        for chunk in rows.chunks(7 + i * 10) {
            writer.append(TABLE, &batch(chunk)).unwrap();
        }
        writer.commit(vec![]).await.unwrap();
        let files = parquet_files(&archive, TABLE);
        assert_eq!(files.len(), 1);
        names_and_bytes.push((
            files[0].strip_prefix(&archive).unwrap().to_path_buf(),
            std::fs::read(&files[0]).unwrap(),
        ));
    }
    assert_eq!(
        names_and_bytes[0].0, names_and_bytes[1].0,
        "same rows, same name"
    );
    assert!(
        names_and_bytes[0].1 == names_and_bytes[1].1,
        "same rows, same bytes"
    );
}

#[tokio::test]
async fn a_version_is_stored_once() {
    let (_dir, archive, state) = local_dirs();
    let input = messages("x", 20, 2, 64);
    let mut writer = open(&archive, &state).await;

    // Repeats inside a batch and across buffered batches.
    let mut doubled = input[..10].to_vec();
    doubled.extend_from_slice(&input[..10]);
    let stats = writer.append(TABLE, &batch(&doubled)).unwrap();
    assert_eq!((stats.rows_new, stats.rows_duplicate), (10, 10));
    let stats = writer.append(TABLE, &batch(&input)).unwrap();
    assert_eq!((stats.rows_new, stats.rows_duplicate), (10, 10));
    writer.commit(vec![]).await.unwrap();

    // Repeats of committed rows, in this writer and in a reopened one.
    let stats = writer.append(TABLE, &batch(&input)).unwrap();
    assert_eq!((stats.rows_new, stats.rows_duplicate), (0, 20));
    let report = writer.commit(vec![]).await.unwrap();
    assert!(report.files.is_empty() && report.commit_id.is_none());
    drop(writer);
    let mut writer = open(&archive, &state).await;
    let stats = writer.append(TABLE, &batch(&input)).unwrap();
    assert_eq!((stats.rows_new, stats.rows_duplicate), (0, 20));

    let all = archived_shas(&archive);
    assert_eq!(all.len(), 20);
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), 20);
}

#[tokio::test]
async fn a_new_index_is_rebuilt_from_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("out");
    let input = messages("r", 40, 4, 64);
    let mut writer = open(&archive, &dir.path().join("state-a")).await;
    writer.append(TABLE, &batch(&input[..25])).unwrap();
    writer.commit(vec![]).await.unwrap();
    drop(writer);

    // Another state (another machine, or a lost cache): the index catches up.
    let (mut writer, report) = reopen(&archive, &dir.path().join("state-b")).await;
    assert_eq!(report.commit_records_applied, 1);
    assert_eq!(report.keys_indexed, 25);
    let stats = writer.append(TABLE, &batch(&input)).unwrap();
    assert_eq!((stats.rows_new, stats.rows_duplicate), (15, 25));
}

#[tokio::test]
async fn an_index_that_knows_more_than_the_archive_is_rebuilt() {
    let (_dir, archive, state) = local_dirs();
    let input = messages("s", 10, 1, 64);
    let mut writer = open(&archive, &state).await;
    writer.append(TABLE, &batch(&input)).unwrap();
    writer.commit(vec![]).await.unwrap();
    drop(writer);

    // The archive is replaced by an empty one; the index must not drop its rows.
    std::fs::remove_dir_all(&archive).unwrap();
    let (mut writer, report) = reopen(&archive, &state).await;
    assert!(report.index_rebuilt);
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    let stats = writer.append(TABLE, &batch(&input)).unwrap();
    assert_eq!(stats.rows_new, 10);
}

#[tokio::test]
async fn a_damaged_index_is_replaced_and_rebuilt_from_the_archive() {
    let (_dir, archive, state) = local_dirs();
    let input = messages("t", 30, 3, 64);
    let mut writer = open(&archive, &state).await;
    writer.append(TABLE, &batch(&input[..20])).unwrap();
    writer.commit(vec![]).await.unwrap();
    let index = writer.index_path().to_path_buf();
    drop(writer);

    for damage in [5000, 0] {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&index)
            .unwrap();
        file.set_len(damage).unwrap();
        drop(file);
        let (mut writer, report) = reopen(&archive, &state).await;
        // An empty file is a new index, caught up without being called rebuilt.
        assert_eq!(report.index_rebuilt, damage > 0, "cut to {damage} bytes");
        assert_eq!(report.keys_indexed, 20, "cut to {damage} bytes");
        let stats = writer.append(TABLE, &batch(&input)).unwrap();
        assert_eq!((stats.rows_new, stats.rows_duplicate), (10, 20));
    }
}

#[tokio::test]
async fn an_existing_file_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let input = messages("o", 12, 1, 64);

    // Write the rows once elsewhere to learn the file's name and bytes.
    let first = dir.path().join("first");
    let mut writer = open(&first, &dir.path().join("state-first")).await;
    writer.append(TABLE, &batch(&input)).unwrap();
    writer.commit(vec![]).await.unwrap();
    let source = parquet_files(&first, TABLE).remove(0);
    let relative = source.strip_prefix(&first).unwrap().to_path_buf();

    // Place that file in a new archive, without a commit record: the writer must adopt
    // it as it is, not write it again.
    let archive = dir.path().join("out");
    let target = archive.join(&relative);
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::copy(&source, &target).unwrap();
    let before = std::fs::metadata(&target).unwrap();

    let mut writer = open(&archive, &dir.path().join("state")).await;
    writer.append(TABLE, &batch(&input)).unwrap();
    let report = writer.commit(vec![]).await.unwrap();
    let after = std::fs::metadata(&target).unwrap();
    assert_eq!(
        (before.ino(), before.mtime_nsec()),
        (after.ino(), after.mtime_nsec())
    );
    assert_eq!(report.files.len(), 1);
    assert_eq!(report.files[0].path, relative.display().to_string());
    assert_eq!(report.files[0].bytes, after.len());
    assert_eq!(parquet_files(&archive, TABLE).len(), 1);
}

#[tokio::test]
async fn a_damaged_file_under_a_new_files_name_is_left_and_the_rows_take_the_next_name() {
    let dir = tempfile::tempdir().unwrap();
    let input = messages("d", 12, 1, 64);
    let first = dir.path().join("first");
    let mut writer = open(&first, &dir.path().join("state-first")).await;
    writer.append(TABLE, &batch(&input)).unwrap();
    writer.commit(vec![]).await.unwrap();
    let relative = parquet_files(&first, TABLE)
        .remove(0)
        .strip_prefix(&first)
        .unwrap()
        .to_path_buf();
    let name = relative.file_name().unwrap().to_str().unwrap().to_string();
    let second_name = name.replace(".parquet", "-1.parquet");

    // The first name holds a truncated file, the second as many rows of other messages.
    let archive = dir.path().join("out");
    let truncated = archive.join(&relative);
    std::fs::create_dir_all(truncated.parent().unwrap()).unwrap();
    std::fs::write(&truncated, b"PAR1 cut short").unwrap();
    let other = dir.path().join("other");
    let mut writer = open(&other, &dir.path().join("state-other")).await;
    writer
        .append(TABLE, &batch(&messages("x", 12, 1, 64)))
        .unwrap();
    writer.commit(vec![]).await.unwrap();
    let other_rows = archive.join(relative.with_file_name(&second_name));
    std::fs::copy(parquet_files(&other, TABLE).remove(0), &other_rows).unwrap();
    let other_bytes = std::fs::read(&other_rows).unwrap();

    let mut writer = open(&archive, &dir.path().join("state")).await;
    writer.append(TABLE, &batch(&input)).unwrap();
    let report = writer.commit(vec![]).await.unwrap();
    let written = relative.with_file_name(name.replace(".parquet", "-2.parquet"));
    assert_eq!(report.files.len(), 1);
    assert_eq!(report.files[0].path, written.display().to_string());
    assert_eq!(report.warnings.len(), 2, "{:?}", report.warnings);
    assert!(
        report.warnings[0].contains("cannot be read"),
        "{:?}",
        report.warnings
    );
    assert!(
        report.warnings[1].contains("holds other rows"),
        "as many rows, other keys: {:?}",
        report.warnings
    );
    let (batches, _) = read_file(&archive.join(&written));
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 12);

    // A new index learns the rows from the commit record of the file that holds them.
    let mut writer = open(&archive, &dir.path().join("state-again")).await;
    let stats = writer.append(TABLE, &batch(&input)).unwrap();
    assert_eq!((stats.rows_new, stats.rows_duplicate), (0, 12));
    assert_eq!(std::fs::read(&truncated).unwrap(), b"PAR1 cut short");
    assert_eq!(std::fs::read(&other_rows).unwrap(), other_bytes);
}

#[tokio::test]
async fn large_partitions_split_into_files_of_the_target_size() {
    let (_dir, archive, state) = local_dirs();
    let mut writer = open_local(
        &archive,
        &state,
        WriterOptions {
            target_file_bytes: 512 * 1024,
            row_group_rows: 500,
            ..options()
        },
    )
    .await;
    let input = messages("big", 3000, 1, 400);
    for chunk in input.chunks(500) {
        writer.append(TABLE, &batch(chunk)).unwrap();
    }
    let report = writer.commit(vec![]).await.unwrap();
    assert!(report.files.len() >= 3, "{} files", report.files.len());
    assert_eq!(report.files.iter().map(|f| f.rows).sum::<u64>(), 3000);
    // The rows are shared out evenly (the last file takes the remainder), and files
    // larger than a row group are split into row groups of at most `row_group_rows`.
    let rows: Vec<u64> = report.files.iter().map(|f| f.rows).collect();
    let (least, most) = (rows.iter().min().unwrap(), rows.iter().max().unwrap());
    assert!(most - least < rows.len() as u64, "uneven files: {rows:?}");
    assert!(*most > 500, "no file is larger than a row group: {rows:?}");
    for file in parquet_files(&archive, TABLE) {
        let (_, metadata) = read_file(&file);
        let groups: Vec<i64> = metadata.row_groups().iter().map(|g| g.num_rows()).collect();
        assert!(groups.iter().all(|&n| n <= 500), "{file:?}: {groups:?}");
        if groups.iter().sum::<i64>() > 500 {
            assert!(groups.len() >= 2, "{file:?}: {groups:?}");
        }
    }
}

#[tokio::test]
async fn bad_batches_are_errors_that_name_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = open(&dir.path().join("out"), &dir.path().join("state")).await;

    let err = writer
        .append("nope", &batch(&messages("e", 1, 1, 10)))
        .unwrap_err();
    assert!(matches!(err, SinkError::UnknownTable { .. }), "{err}");
    assert!(err.to_string().contains("chat_messages"), "{err}");

    // A column of the wrong type.
    let good = batch(&messages("e", 3, 1, 10));
    let mut fields: Vec<Field> = good
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields[2] = Field::new("body_content", DataType::LargeUtf8, true);
    let mut columns = good.columns().to_vec();
    columns[2] = arrow::compute::cast(&columns[2], &DataType::LargeUtf8).unwrap();
    let wrong = RecordBatch::try_new(std::sync::Arc::new(Schema::new(fields)), columns).unwrap();
    let err = writer.append(TABLE, &wrong).unwrap_err().to_string();
    assert!(
        err.contains("body_content") && err.contains("LargeUtf8"),
        "{err}"
    );

    // A missing column.
    let short = good.project(&[0, 1, 2, 3, 4, 5]).unwrap();
    let err = writer.append(TABLE, &short).unwrap_err().to_string();
    assert!(err.contains("`date`") && err.contains("missing"), "{err}");

    // A null version key.
    let nullable_schema = std::sync::Arc::new(Schema::new(
        message_schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ));
    let spec = archive::TableSpec {
        name: "nullable",
        schema: nullable_schema.clone(),
        partition_column: "date",
        key_columns: &["content_sha256"],
        key_day_column: Some("created_date_time"),
        order_columns: &[],
        statistics_columns: &[],
    };
    let (mut writer, _) = ArchiveWriter::open(
        dir.path().join("out2").to_str().unwrap(),
        dir.path().join("state2").to_str().unwrap(),
        vec![spec],
        options(),
    )
    .await
    .unwrap();
    let mut columns = good.columns().to_vec();
    columns[5] = std::sync::Arc::new(arrow::array::StringArray::from(vec![
        Some("a"),
        None,
        Some("c"),
    ]));
    let with_null = RecordBatch::try_new(nullable_schema.clone(), columns).unwrap();
    let err = writer
        .append("nullable", &with_null)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("row 1") && err.contains("content_sha256"),
        "{err}"
    );
    let mut columns = good.columns().to_vec();
    columns[6] = std::sync::Arc::new(arrow::array::Date32Array::from(vec![
        Some(1),
        Some(2),
        None,
    ]));
    let with_null = RecordBatch::try_new(nullable_schema, columns).unwrap();
    let err = writer
        .append("nullable", &with_null)
        .unwrap_err()
        .to_string();
    assert!(err.contains("row 2") && err.contains("`date`"), "{err}");
    assert_eq!(
        writer.buffered_rows(),
        0,
        "a refused batch leaves nothing behind"
    );

    // A bad spec.
    let err = ArchiveWriter::open(
        dir.path().join("out3").to_str().unwrap(),
        dir.path().join("state3").to_str().unwrap(),
        vec![archive::TableSpec {
            key_columns: &["missing"],
            order_columns: &[],
            statistics_columns: &[],
            ..message_spec()
        }],
        options(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("`missing`"), "{err}");
}

#[tokio::test]
async fn checkpoints_follow_the_data_and_round_trip_any_scope() {
    let (_dir, archive, state) = local_dirs();
    let mut writer = open(&archive, &state).await;
    writer
        .append(TABLE, &batch(&messages("c", 5, 1, 10)))
        .unwrap();
    let scopes = ["chats/user/1", "..", "", "ünïcode scope", "a~2Fb"];
    let checkpoints: Vec<Checkpoint> = scopes
        .iter()
        .enumerate()
        .map(|(i, s)| Checkpoint {
            scope: s.to_string(),
            value: serde_json::json!({ "deltaLink": format!("https://graph/{i}") }),
        })
        .collect();
    let report = writer.commit(checkpoints.clone()).await.unwrap();
    assert_eq!(report.checkpoints, 5);
    assert!(!state.join("write-ahead.json").exists());

    let store = CheckpointStore::open(state.to_str().unwrap()).unwrap();
    for checkpoint in &checkpoints {
        assert_eq!(
            store.load(&checkpoint.scope).await.unwrap(),
            Some(checkpoint.value.clone())
        );
    }
    assert_eq!(store.load("never").await.unwrap(), None);
    let listed = store.list().await.unwrap();
    let mut expected: Vec<_> = checkpoints
        .iter()
        .map(|c| (c.scope.clone(), c.value.clone()))
        .collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(listed, expected);
    for entry in std::fs::read_dir(state.join("checkpoints")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"~-_.".contains(&b)),
            "{name}"
        );
    }
    // Nothing of the checkpoints reaches the archive.
    for file in walk(&archive) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).to_string();
        assert!(!text.contains("https://graph/"), "{}", file.display());
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn buffered_rows_stay_within_the_memory_budget() {
    let (_dir, archive, state) = local_dirs();
    let budget = 512 * 1024;
    let mut writer = open_local(
        &archive,
        &state,
        WriterOptions {
            memory_budget_bytes: budget,
            ..options()
        },
    )
    .await;
    // 20,000 rows over 60 partitions, in batches of 200: many times the budget.
    let input = messages("mem", 20_000, 60, 300);
    let mut largest_step = 0;
    let mut commits = 0;
    let mut peak = 0;
    for chunk in input.chunks(200) {
        let before = writer.buffered_bytes();
        writer.append(TABLE, &batch(chunk)).unwrap();
        largest_step = largest_step.max(writer.buffered_bytes() - before);
        peak = peak.max(writer.buffered_bytes());
        if writer.needs_commit() {
            writer.commit(vec![]).await.unwrap();
            commits += 1;
            assert_eq!(writer.buffered_bytes(), 0);
        }
    }
    writer.commit(vec![]).await.unwrap();
    assert!(commits >= 10, "{commits} commits");
    assert!(
        peak < budget + largest_step,
        "peak {peak} exceeds budget {budget} + one batch {largest_step}"
    );
    let rows: usize = parquet_files(&archive, TABLE)
        .iter()
        .map(|f| read_file(f).0.iter().map(|b| b.num_rows()).sum::<usize>())
        .sum();
    assert_eq!(rows, 20_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_runs_inside_spawned_tasks_on_a_multi_threaded_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("out");
    let state = dir.path().join("state");
    let input = messages("mt", 500, 5, 200);
    let task = tokio::spawn({
        let (archive, state) = (archive.clone(), state.clone());
        async move {
            let mut writer = open(&archive, &state).await;
            writer.append(TABLE, &batch(&input)).unwrap();
            let checkpoint = Checkpoint {
                scope: "s".into(),
                value: serde_json::json!(1),
            };
            let report = writer.commit(vec![checkpoint]).await.unwrap();
            assert_eq!(writer.checkpoints().list().await.unwrap().len(), 1);
            report
        }
    });
    let report = task.await.unwrap();
    assert_eq!((report.files.len(), report.rows), (5, 500));
    assert_eq!(parquet_files(&archive, TABLE).len(), 5);
}

/// The chain of records survives a stop at any point of writing a record: a record marked
/// pending that is there moves the head when the writer opens again; one that never got
/// written is dropped, and the next record links to the last one that exists.
#[tokio::test]
async fn the_chain_survives_a_stop_while_a_record_is_written() {
    use archive::records::{ChainHead, PendingRecord, Record, RunSummary, record_sha256};

    let (_dir, archive, state) = local_dirs();
    let mut writer = open(&archive, &state).await;
    writer
        .append(TABLE, &batch(&messages("c", 10, 1, 50)))
        .unwrap();
    let report = writer.commit(vec![]).await.unwrap();
    let commit_key = format!(
        "_archive/commits/{}.json",
        report.commit_id.clone().unwrap()
    );
    let commit_bytes = std::fs::read(archive.join(&commit_key)).unwrap();
    let commit = CommitRecord::from_json(&commit_bytes).unwrap();
    let link = commit.chain.clone().expect("a chained commit record");
    assert_eq!((link.sequence, link.previous_sha256.as_deref()), (1, None));
    let head = writer.chain_head().clone();
    assert_eq!(head.sequence, 1);
    assert_eq!(
        head.sha256.as_deref(),
        Some(record_sha256(&commit_bytes).as_str())
    );
    drop(writer);

    // Stopped after the commit record was written, before the head moved.
    let chain_path = state.join("chain.json");
    let mut stopped = ChainHead::new(&head.writer);
    stopped.pending = Some(PendingRecord {
        key: commit_key.clone(),
        link: link.clone(),
        sha256: record_sha256(&commit_bytes),
    });
    std::fs::write(&chain_path, stopped.to_json()).unwrap();
    let writer = open(&archive, &state).await;
    assert_eq!(
        writer.chain_head(),
        &head,
        "the written record moved the head"
    );
    drop(writer);

    // Stopped before the record was written: the pending mark goes, the head stays.
    let mut stopped = head.clone();
    stopped.pending = Some(PendingRecord {
        key: "_archive/runs/never-written.json".into(),
        link: head.next_link(),
        sha256: "00".repeat(32),
    });
    std::fs::write(&chain_path, stopped.to_json()).unwrap();
    let mut writer = open(&archive, &state).await;
    assert_eq!(writer.chain_head(), &head);

    let mut summary = RunSummary::new(
        "next-run",
        archive::records::Command::Sync,
        chrono::Utc::now(),
    );
    let after = writer.write_run_summary(&mut summary).await.unwrap();
    let summary_bytes = std::fs::read(archive.join("_archive/runs/next-run.json")).unwrap();
    let written = RunSummary::from_json(&summary_bytes).unwrap();
    let summary_link = written.chain.expect("a chained summary");
    assert_eq!(summary_link.sequence, 2);
    assert_eq!(summary_link.previous_sha256, head.sha256);
    assert_eq!(after.sha256, Some(record_sha256(&summary_bytes)));
    let saved = ChainHead::from_json(&std::fs::read(&chain_path).unwrap()).unwrap();
    assert_eq!(saved, after);
    assert!(saved.pending.is_none());
}

/// A run killed between publishing a blob (a link to its staging file) and removing the
/// staging name left both; storing the blob again clears that name, and leaves alone an
/// upload of the same blob that another writer has in progress.
#[tokio::test]
async fn a_blob_published_by_a_killed_run_loses_its_staging_name_on_the_next_put() {
    use sha2::Digest as _;
    let dir = tempfile::tempdir().unwrap();
    let archive = sink::Location::parse(dir.path().to_str().unwrap()).unwrap();
    let blobs = sink::BlobStore::new(archive);
    let bytes = b"the bytes of an image".to_vec();
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    let source = dir.path().join("source");
    std::fs::write(&source, &bytes).unwrap();
    assert_eq!(
        blobs.put_file(&sha, &source).await.unwrap(),
        sink::BlobPut::Created
    );
    let blob = dir.path().join(archive::layout::blob_key(&sha).unwrap());
    let left_by_the_kill = blob.with_file_name(format!("{sha}#1"));
    std::fs::hard_link(&blob, &left_by_the_kill).unwrap();
    let in_progress = blob.with_file_name(format!("{sha}#2"));
    std::fs::write(&in_progress, &bytes[..4]).unwrap();

    assert_eq!(
        blobs.put_file(&sha, &source).await.unwrap(),
        sink::BlobPut::AlreadyPresent
    );
    assert!(!left_by_the_kill.exists());
    assert!(in_progress.exists());
    assert_eq!(std::fs::metadata(&blob).unwrap().nlink(), 1);
    assert_eq!(std::fs::read(&blob).unwrap(), bytes);
}

/// `batch(messages)` with `body_content` null except in the rows `keep` says.
fn batch_with_bodies(messages: &[Message], keep: impl Fn(&Message) -> bool) -> RecordBatch {
    let full = batch(messages);
    let bodies = arrow::array::StringArray::from_iter(
        messages.iter().map(|m| keep(m).then_some(m.body.as_str())),
    );
    let mut columns = full.columns().to_vec();
    let body = full.schema().index_of("body_content").unwrap();
    columns[body] = std::sync::Arc::new(bodies);
    RecordBatch::try_new(full.schema(), columns).unwrap()
}

#[tokio::test]
async fn leaves_empty_in_a_files_first_rows_have_no_codec_and_later_values_read_back() {
    let (_dir, archive, state) = local_dirs();
    let mut writer = open(&archive, &state).await;
    // Two days of 2,000 rows each, more than the first rows that decide a leaf's codec:
    // on the first day no row has a body; on the second only rows past the first 1,500
    // of the file's order do, so the leaf is empty in the rows that decide and its later
    // values are stored without a codec.
    let input = messages("sparse", 4000, 2, 64);
    let keys = index_order(&batch(&input));
    let mut second_day: Vec<usize> = (0..input.len())
        .filter(|&i| input[i].day() % 2 == 1)
        .collect();
    second_day.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
    let late: BTreeSet<&str> = second_day[1500..]
        .iter()
        .map(|&i| input[i].id.as_str())
        .collect();
    let with_body = |m: &Message| late.contains(m.id.as_str());
    writer
        .append(TABLE, &batch_with_bodies(&input, with_body))
        .unwrap();
    writer.commit(vec![]).await.unwrap();

    let expected: BTreeSet<(String, String)> = input
        .iter()
        .filter(|m| with_body(m))
        .map(|m| (m.id.clone(), m.body.clone()))
        .collect();
    assert!(!expected.is_empty());
    let mut read = BTreeSet::new();
    let mut checked_empty_file = false;
    let mut checked_late_values = false;
    for file in parquet_files(&archive, TABLE) {
        let (batches, metadata) = read_file(&file);
        let rows: i64 = metadata.row_groups().iter().map(|g| g.num_rows()).sum();
        assert!(
            rows > 1024,
            "{file:?} holds {rows} rows: more than one sample"
        );
        for batch in &batches {
            let ids = batch.column_by_name("id").unwrap().as_string::<i32>();
            let bodies = batch
                .column_by_name("body_content")
                .unwrap()
                .as_string::<i32>();
            for row in 0..batch.num_rows() {
                if bodies.is_valid(row) {
                    read.insert((ids.value(row).to_string(), bodies.value(row).to_string()));
                }
            }
        }
        let body = metadata
            .file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .position(|c| c.path().string() == "body_content")
            .unwrap();
        let group = metadata.row_group(0);
        if batches
            .iter()
            .all(|b| b.column_by_name("body_content").unwrap().null_count() == b.num_rows())
        {
            assert_eq!(
                group.column(body).compression(),
                parquet::basic::Compression::UNCOMPRESSED,
                "{file:?}: a leaf with no value has no codec"
            );
            checked_empty_file = true;
        } else {
            assert_eq!(
                group.column(body).compression(),
                parquet::basic::Compression::UNCOMPRESSED,
                "{file:?}: a leaf empty in the first rows has no codec, though values follow"
            );
            checked_late_values = true;
        }
        let id = group.column(0);
        assert!(
            matches!(id.compression(), parquet::basic::Compression::ZSTD(_)),
            "{file:?}: a leaf with values keeps zstd"
        );
    }
    assert!(
        checked_empty_file,
        "the first day's file has no body at all"
    );
    assert!(
        checked_late_values,
        "the second day's file has bodies only after its first rows"
    );
    assert_eq!(
        read, expected,
        "every body reads back, whatever its leaf's codec"
    );
}

/// A commit can keep the days still receiving rows buffered: the other days are published
/// and the kept ones stay known (a repeat of a kept row is a duplicate), no checkpoint
/// moves, and the next commit publishes each kept day as one file with its later rows.
#[tokio::test]
async fn a_commit_keeps_growing_days_buffered_and_the_next_writes_each_as_one_file() {
    let (_dir, archive, state) = local_dirs();
    let mut writer = open(&archive, &state).await;
    let first = messages("a", 60, 3, 100); // 2024-05-01 to 05-03
    writer.append(TABLE, &batch(&first)).unwrap();
    let third_day = 19_846; // 2024-05-03
    let report = writer
        .commit_except(|days| days >= third_day)
        .await
        .unwrap();
    assert_eq!(report.files.len(), 2, "the first two days are published");
    assert_eq!((report.rows, report.rows_kept), (40, 20));
    assert_eq!(report.checkpoints, 0);
    assert_eq!(writer.buffered_rows(), 20);
    assert!(writer.buffered_bytes() > 0);

    let repeat = writer.append(TABLE, &batch(&first)).unwrap();
    assert_eq!((repeat.rows_new, repeat.rows_duplicate), (0, 60));
    let later: Vec<_> = messages("b", 30, 3, 100) // 10 a day
        .into_iter()
        .filter(|m| m.created_us >= 1_714_694_400_000_000) // 2024-05-03 on
        .collect();
    writer.append(TABLE, &batch(&later)).unwrap();
    let report = writer.commit(vec![]).await.unwrap();
    assert_eq!(
        report.files.len(),
        1,
        "the kept day and its later rows: one file"
    );
    assert_eq!((report.rows, report.rows_kept), (30, 0));
    assert!(report.files[0].path.contains("date=2024-05-03"));

    assert_eq!(parquet_files(&archive, TABLE).len(), 3);
    let all = archived_shas(&archive);
    // 60 first rows and the 10 later ones of the kept day, each once.
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), 70);
    assert_eq!(all.len(), 70);
}

/// Nothing is kept when every buffered day is still growing, nor when the kept days would
/// take more than half the memory budget: the commit publishes everything.
#[tokio::test]
async fn a_commit_keeps_nothing_when_all_or_too_much_would_stay() {
    let (_dir, archive, state) = local_dirs();
    let mut writer = open(&archive, &state).await;
    writer
        .append(TABLE, &batch(&messages("a", 20, 2, 100)))
        .unwrap();
    let report = writer.commit_except(|_| true).await.unwrap();
    assert_eq!((report.files.len(), report.rows_kept), (2, 0));
    assert_eq!(writer.buffered_rows(), 0);

    let small = WriterOptions {
        memory_budget_bytes: 64 * 1024,
        ..options()
    };
    let (_dir, archive, state) = local_dirs();
    let mut writer = open_local(&archive, &state, small).await;
    writer
        .append(TABLE, &batch(&messages("a", 200, 2, 2_000)))
        .unwrap();
    let report = writer.commit_except(|days| days >= 19_845).await.unwrap();
    assert_eq!((report.files.len(), report.rows_kept), (2, 0));
    assert_eq!(writer.buffered_rows(), 0);
}

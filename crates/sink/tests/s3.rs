//! The writer against moto's S3 server over real HTTP: layout, encoding, deterministic
//! names, deduplication across machines, no overwrite, and an Object Lock bucket.

mod common;

use std::collections::BTreeSet;

use archive::records::CommitRecord;
use common::*;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use sink::{ArchiveWriter, Checkpoint, CheckpointStore, Location, WriterOptions};

fn options(index_dir: &std::path::Path) -> WriterOptions {
    WriterOptions {
        run_id: "s3-test".into(),
        index_dir: Some(index_dir.to_path_buf()),
        ..Default::default()
    }
}

async fn open(archive: &str, state: &str, index_dir: &std::path::Path) -> ArchiveWriter {
    ArchiveWriter::open_at(
        s3_location(archive),
        s3_location(state),
        vec![message_spec()],
        options(index_dir),
    )
    .await
    .unwrap()
    .0
}

async fn get(location: &Location, key: &str) -> bytes::Bytes {
    location
        .store()
        .get(&Path::parse(key).unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
}

#[tokio::test]
async fn writes_partitioned_parquet_to_s3_and_reads_it_back() {
    let bucket = fresh_bucket("sink-s3", false);
    let index = tempfile::tempdir().unwrap();
    let (archive_url, state_url) = (
        format!("s3://{bucket}/archive"),
        format!("s3://{bucket}/state"),
    );
    let mut writer = open(&archive_url, &state_url, index.path()).await;
    let input = messages("s3", 40, 2, 500);
    writer.append(TABLE, &batch(&input)).unwrap();
    let checkpoint = Checkpoint {
        scope: "chats/user/1".into(),
        value: serde_json::json!({"deltaLink": "https://graph.microsoft.com/...token"}),
    };
    let report = writer.commit(vec![checkpoint.clone()]).await.unwrap();
    assert_eq!(report.files.len(), 2);

    let archive = s3_location(&archive_url);
    let listed = keys(&archive).await;
    let data: Vec<&String> = listed.iter().filter(|k| k.ends_with(".parquet")).collect();
    assert_eq!(data.len(), 2, "{listed:?}");
    assert!(data[0].starts_with("chat_messages/date=2024-05-01/part-"));
    assert!(data[1].starts_with("chat_messages/date=2024-05-02/part-"));
    let records: Vec<&String> = listed
        .iter()
        .filter(|k| k.starts_with("_archive/commits/"))
        .collect();
    assert_eq!(records.len(), 1);
    assert_eq!(listed.len(), 3, "nothing else in the archive: {listed:?}");

    let mut read_back = BTreeSet::new();
    for key in &data {
        let (batches, metadata) = read_parquet(get(&archive, key).await);
        assert!(batches[0].schema().column_with_name("date").is_none());
        let created = metadata
            .file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .find(|c| c.name() == "created_date_time")
            .unwrap()
            .logical_type_ref()
            .cloned();
        assert_eq!(
            created,
            Some(parquet::basic::LogicalType::Timestamp(
                parquet::basic::TimestampType {
                    is_adjusted_to_u_t_c: true,
                    unit: parquet::basic::TimeUnit::MICROS
                }
            ))
        );
        for b in &batches {
            read_back.extend(shas(b));
        }
    }
    assert_eq!(read_back, input.iter().map(|m| m.sha()).collect());

    let record: CommitRecord = serde_json::from_slice(&get(&archive, records[0]).await).unwrap();
    assert_eq!(record.files, report.files);
    for file in &record.files {
        let bytes = get(&archive, &file.path).await;
        assert_eq!(
            file.sha256,
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
        );
    }

    // Checkpoints are in the state location, and only there.
    let state = CheckpointStore::at(s3_location(&state_url));
    assert_eq!(
        state.load(&checkpoint.scope).await.unwrap(),
        Some(checkpoint.value)
    );
    assert_eq!(
        keys(&s3_location(&state_url)).await,
        vec!["chain.json", "checkpoints/chats~2Fuser~2F1.json"]
    );
    assert!(!String::from_utf8_lossy(&get(&archive, records[0]).await).contains("token"));
}

#[tokio::test]
async fn same_rows_on_s3_make_one_file_with_one_name() {
    let bucket = fresh_bucket("sink-det", false);
    let index = tempfile::tempdir().unwrap();
    let input = messages("det", 30, 1, 200);

    // Two archives, rows in different orders: same name and same bytes.
    let mut names = Vec::new();
    for (i, rows) in [input.clone(), input.iter().rev().cloned().collect()]
        .iter()
        .enumerate()
    {
        let archive = format!("s3://{bucket}/a{i}");
        let mut writer = open(
            &archive,
            &format!("s3://{bucket}/s{i}"),
            &index.path().join(i.to_string()),
        )
        .await;
        writer.append(TABLE, &batch(rows)).unwrap();
        let report = writer.commit(vec![]).await.unwrap();
        names.push((report.files[0].path.clone(), report.files[0].sha256.clone()));
    }
    assert_eq!(names[0], names[1]);

    // Another machine (a fresh index) writing the same rows to the first archive
    // catches up from its commit records and writes nothing.
    let (mut writer, recovery) = ArchiveWriter::open_at(
        s3_location(&format!("s3://{bucket}/a0")),
        s3_location(&format!("s3://{bucket}/s-other")),
        vec![message_spec()],
        options(&index.path().join("other")),
    )
    .await
    .unwrap();
    assert_eq!(
        (recovery.commit_records_applied, recovery.keys_indexed),
        (1, 30)
    );
    let stats = writer.append(TABLE, &batch(&input)).unwrap();
    assert_eq!(stats.rows_new, 0);
    assert!(writer.commit(vec![]).await.unwrap().files.is_empty());

    // A file already under its name (no commit record) is adopted, not rewritten.
    let archive = s3_location(&format!("s3://{bucket}/a2"));
    let source = get(&s3_location(&format!("s3://{bucket}/a0")), &names[0].0).await;
    let target = Path::parse(&names[0].0).unwrap();
    archive.store().put(&target, source.into()).await.unwrap();
    let before = archive.store().head(&target).await.unwrap();
    let mut writer = open(
        &format!("s3://{bucket}/a2"),
        &format!("s3://{bucket}/s2"),
        &index.path().join("2"),
    )
    .await;
    writer.append(TABLE, &batch(&input)).unwrap();
    let report = writer.commit(vec![]).await.unwrap();
    let after = archive.store().head(&target).await.unwrap();
    assert_eq!(
        (before.e_tag, before.last_modified),
        (after.e_tag, after.last_modified)
    );
    assert_eq!(
        (report.files[0].path.clone(), report.files[0].sha256.clone()),
        names[0]
    );
}

#[tokio::test]
async fn an_object_lock_bucket_is_written_without_overwrites_or_deletes() {
    let locked = fresh_bucket("sink-lock", true);
    let plain = fresh_bucket("sink-lock-state", false);
    let index = tempfile::tempdir().unwrap();
    let archive_url = format!("s3://{locked}/archive");
    let state_url = format!("s3://{plain}/state");

    // Small files (single conditional PUT) and one over the multipart threshold.
    let small = messages("lock", 60, 3, 300);
    // Hex of a hash chain: about half compressible, so ~13 MB of Parquet.
    let large: Vec<Message> = (0..4_000)
        .map(|i| {
            let mut block = <sha2::Sha256 as sha2::Digest>::digest(format!("seed {i}"));
            let mut noise = String::with_capacity(6_400);
            for _ in 0..100 {
                noise.push_str(&hex::encode(block));
                block = <sha2::Sha256 as sha2::Digest>::digest(block);
            }
            Message::new(format!("big-{i}"), 1_714_608_000_000_000 + i as i64, noise)
        })
        .collect();

    let mut writer = open(&archive_url, &state_url, index.path()).await;
    writer.append(TABLE, &batch(&small)).unwrap();
    writer.commit(vec![]).await.unwrap();
    for chunk in large.chunks(500) {
        writer.append(TABLE, &batch(chunk)).unwrap();
    }
    let report = writer.commit(vec![]).await.unwrap();
    assert!(
        report.files.iter().any(|f| f.bytes > 10 * 1024 * 1024),
        "one file goes out as a multipart upload: {:?}",
        report.files.iter().map(|f| f.bytes).collect::<Vec<_>>()
    );
    drop(writer);

    // Replays, from this machine and from a fresh index, store nothing again.
    for index_dir in [index.path().to_path_buf(), index.path().join("fresh")] {
        let mut writer = open(&archive_url, &state_url, &index_dir).await;
        writer.append(TABLE, &batch(&small)).unwrap();
        writer.append(TABLE, &batch(&large[..500])).unwrap();
        assert_eq!(writer.buffered_rows(), 0);
        assert!(writer.commit(vec![]).await.unwrap().files.is_empty());
    }

    // The default layout keeps the state inside the archive (`<out>/_state`), so in
    // the locked bucket too: checkpoints get new versions and the write-ahead record a
    // delete marker, which Object Lock allows; archive objects are untouched.
    let inside = format!("s3://{locked}/inside");
    for (round, rows) in [&small[..30], &small[..]].into_iter().enumerate() {
        let mut writer = open(
            &inside,
            &format!("{inside}/_state"),
            &index.path().join("inside"),
        )
        .await;
        writer.append(TABLE, &batch(rows)).unwrap();
        let checkpoint = Checkpoint {
            scope: "chats/user/1".into(),
            value: serde_json::json!({ "round": round }),
        };
        writer.commit(vec![checkpoint]).await.unwrap();
    }
    let state = CheckpointStore::at(s3_location(&format!("{inside}/_state")));
    assert_eq!(
        state.load("chats/user/1").await.unwrap(),
        Some(serde_json::json!({ "round": 1 }))
    );

    let versions = bucket_versions(&locked);
    let archive_objects: Vec<_> = versions
        .iter()
        .filter(|(k, ..)| !k.contains("/_state/"))
        .collect();
    for (key, count, markers) in &archive_objects {
        assert_eq!(
            (*count, *markers),
            (1, 0),
            "{key}: {count} versions, {markers} delete markers"
        );
    }
    let data = archive_objects
        .iter()
        .filter(|(k, ..)| k.ends_with(".parquet"))
        .count();
    let records = archive_objects
        .iter()
        .filter(|(k, ..)| k.contains("/_archive/commits/"))
        .count();
    assert_eq!((data >= 4 + 3, records), (true, 4), "{versions:?}");

    // The archive's rows, read back from the locked bucket: each version once.
    let archive = s3_location(&archive_url);
    let mut all = Vec::new();
    for key in keys(&archive)
        .await
        .iter()
        .filter(|k| k.ends_with(".parquet"))
    {
        for b in read_parquet(get(&archive, key).await).0 {
            all.extend(shas(&b));
        }
    }
    assert_eq!(all.len(), small.len() + large.len());
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), all.len());
}

#[tokio::test]
async fn s3_errors_name_the_operation_and_keep_the_service_reply() {
    let index = tempfile::tempdir().unwrap();
    let missing = format!("s3://no-such-bucket-{}/archive", std::process::id());
    let err = ArchiveWriter::open_at(
        s3_location(&missing),
        s3_location(&format!("{missing}/_state")),
        vec![message_spec()],
        options(index.path()),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains(&missing), "{err}");
    assert!(err.contains("NoSuchBucket"), "{err}");
}

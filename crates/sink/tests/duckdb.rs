//! DuckDB reads what the writer wrote: hive `date` partitions, timestamps with time
//! zone, lists and structs, every row once.

mod common;

use common::*;
use sink::WriterOptions;

const QUERY: &str = r#"
import duckdb, json, sys
con = duckdb.connect()
source = f"read_parquet('{sys.argv[1]}/chat_messages/*/*.parquet', hive_partitioning=true)"
columns = {name: kind for name, kind, *_ in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
days = con.execute(f"SELECT CAST(date AS VARCHAR), count(*) FROM {source} GROUP BY 1 ORDER BY 1").fetchall()
distinct = con.execute(f"SELECT count(DISTINCT content_sha256), count(*) FROM {source}").fetchone()
row = con.execute(
    f"SELECT CAST(created_date_time AT TIME ZONE 'UTC' AS VARCHAR), tags, mentions[1].user_id, date "
    f"FROM {source} WHERE id = 'duck-7'").fetchone()
print(json.dumps({"columns": columns, "days": days, "distinct": distinct,
                  "row": [row[0], row[1], row[2], str(row[3])]}))
"#;

#[tokio::test]
async fn duckdb_reads_the_archive_with_hive_partitions() {
    let (_dir, archive, state) = local_dirs();
    let mut writer = open_local(
        &archive,
        &state,
        WriterOptions {
            run_id: "duckdb".into(),
            ..Default::default()
        },
    )
    .await;
    let input = messages("duck", 90, 3, 120);
    // Two commits, so partitions hold more than one file.
    writer.append(TABLE, &batch(&input[..50])).unwrap();
    writer.commit(vec![]).await.unwrap();
    writer.append(TABLE, &batch(&input)).unwrap();
    writer.commit(vec![]).await.unwrap();

    let out = run_python(QUERY, &[archive.to_str().unwrap()]);
    let result: serde_json::Value = serde_json::from_str(&out).unwrap();
    let columns = &result["columns"];
    assert_eq!(columns["date"], "DATE", "{columns}");
    assert_eq!(
        columns["created_date_time"], "TIMESTAMP WITH TIME ZONE",
        "{columns}"
    );
    assert_eq!(columns["tags"], "VARCHAR[]", "{columns}");
    assert_eq!(
        columns["mentions"], "STRUCT(user_id VARCHAR, display_name VARCHAR)[]",
        "{columns}"
    );
    assert_eq!(
        result["days"],
        serde_json::json!([["2024-05-01", 30], ["2024-05-02", 30], ["2024-05-03", 30]])
    );
    assert_eq!(result["distinct"], serde_json::json!([90, 90]));

    let seventh = &input[7];
    let expected_time = chrono::DateTime::from_timestamp_micros(seventh.created_us)
        .unwrap()
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string();
    let row = &result["row"];
    assert_eq!(
        row[0].as_str().unwrap(),
        expected_time.trim_end_matches(".000000")
    );
    assert_eq!(row[2], "uduck-7");
    assert_eq!(row[3], "2024-05-02");
}

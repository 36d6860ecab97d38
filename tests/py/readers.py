"""Read an archive with DuckDB and with Spark, through raw files and the shipped views.

    readers.py ARCHIVE_DIR REPO_ROOT

Prints one JSON object: per table, the row count each reader sees in the files and in
the `<table>_all_versions` and `<table>_latest` views, and the rows whose `raw_sha256` is
not the SHA-256 of their `raw_json`; the types each reader gives `date` and
`created_date_time`; the senders each reads through the nested `from.user.display_name`.
DuckDB also reports the schema versions in the files' key-value metadata, and the
chat_messages rows that break the files' order (conversation, then time).
"""
import json, os, sys

archive, repo = sys.argv[1], sys.argv[2]
tables = {
    "chat_messages": "chat_messages",
    "chat_message_custodians": "chat_message_custodians",
    "mail_messages": "mail_messages",
    "directory_users": "directory/users",
    "directory_chats": "directory/chats",
    "message_contents": "message_contents",
}


def statements(path):
    sql = open(path, encoding="utf-8").read().replace("${ARCHIVE}", archive)
    lines = [l for l in sql.splitlines() if not l.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


result = {"duckdb": {}, "spark": {}}

import duckdb
con = duckdb.connect()
for statement in statements(os.path.join(repo, "schemas/duckdb/views.sql")):
    con.execute(statement)
for name, folder in tables.items():
    files = con.execute(
        f"SELECT count(*) FROM read_parquet('{archive}/{folder}/*/*.parquet', hive_partitioning=true, union_by_name=true)"
    ).fetchone()[0]
    result["duckdb"][name] = {
        "files": files,
        "all_versions": con.execute(f"SELECT count(*) FROM {name}_all_versions").fetchone()[0],
        "latest": con.execute(f"SELECT count(*) FROM {name}_latest").fetchone()[0],
    }
    if name not in ("chat_message_custodians", "message_contents"):
        result["duckdb"][name]["raw_sha256_mismatches"] = con.execute(
            f"SELECT count(*) FROM read_parquet('{archive}/{folder}/*/*.parquet', hive_partitioning=true, union_by_name=true) WHERE sha256(raw_json) <> raw_sha256"
        ).fetchone()[0]
result["duckdb"]["senders"] = con.execute(
    f"""SELECT count("from".user.display_name) FROM read_parquet('{archive}/chat_messages/*/*.parquet', hive_partitioning=true)"""
).fetchone()[0]
result["duckdb"]["schema_versions"] = sorted(r[0] for r in con.execute(
    f"""SELECT DISTINCT decode(value) FROM parquet_kv_metadata('{archive}/*/*/*.parquet') WHERE decode(key) = 'teams_archiver.schema_version'"""
).fetchall())
result["duckdb"]["files_without_schema_version"] = con.execute(
    f"""SELECT count(*) FROM glob('{archive}/**/*.parquet') g WHERE g.file NOT IN (
        SELECT file_name FROM parquet_kv_metadata('{archive}/**/*.parquet') WHERE decode(key) = 'teams_archiver.schema_version')"""
).fetchone()[0]
result["duckdb"]["rows_out_of_order"] = con.execute(
    f"""SELECT count(*) FROM (
        SELECT (chat_id, team_id, channel_id, created_date_time) AS k,
               lag((chat_id, team_id, channel_id, created_date_time)) OVER (PARTITION BY filename ORDER BY file_row_number) AS previous
        FROM read_parquet('{archive}/chat_messages/*/*.parquet', filename=true, file_row_number=true))
        WHERE previous IS NOT NULL AND k < previous"""
).fetchone()[0]
result["duckdb"]["types"] = list(con.execute(
    f"SELECT typeof(date), typeof(created_date_time) FROM read_parquet('{archive}/chat_messages/*/*.parquet', hive_partitioning=true) LIMIT 1"
).fetchone())

from pyspark.sql import SparkSession
spark = (SparkSession.builder.master("local[2]").appName("teams-archiver-readers")
         .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "4")
         .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
         .getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
for statement in statements(os.path.join(repo, "schemas/spark/views.sql")):
    spark.sql(statement)
for name, folder in tables.items():
    files = spark.read.parquet(f"{archive}/{folder}").count()
    result["spark"][name] = {
        "files": files,
        "all_versions": spark.sql(f"SELECT count(*) FROM {name}_all_versions").collect()[0][0],
        "latest": spark.sql(f"SELECT count(*) FROM {name}_latest").collect()[0][0],
    }
    if name not in ("chat_message_custodians", "message_contents"):
        result["spark"][name]["raw_sha256_mismatches"] = spark.read.parquet(f"{archive}/{folder}") \
            .where("sha2(raw_json, 256) <> raw_sha256").count()
result["spark"]["senders"] = spark.read.parquet(f"{archive}/chat_messages") \
    .selectExpr("`from`.user.display_name AS sender").where("sender IS NOT NULL").count()
schema = spark.read.parquet(f"{archive}/chat_messages").schema
result["spark"]["types"] = [schema["date"].dataType.simpleString(),
                            schema["created_date_time"].dataType.simpleString()]
spark.stop()
print(json.dumps(result))

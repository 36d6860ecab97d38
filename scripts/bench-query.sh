#!/usr/bin/env bash
# Benchmark: queries over our archive against the same queries over DuckDB's lossless conversion.
#
#   scripts/bench-query.sh [MESSAGES]            default: 200000
#   BENCH_SKIP_BUILD=1 scripts/bench-query.sh    use the release binary as it is
#   SKIP_SPARK=1 scripts/bench-query.sh          DuckDB queries only
#
# 1. Generates MESSAGES getAllMessages messages with ../shared/bench/gen_chat_pages.py under
#    target/bench-ingest/pages-N (the pages scripts/bench-ingest.sh uses; generated once).
# 2. Archives them with the release build of `ingest`, and converts them with
#    ../shared/bench/duckdb_lossless.py (typed columns + raw_json + raw_sha256, zstd, one hive
#    partition per UTC day), both under target/bench-query/ (rebuilt every run).
# 3. In one DuckDB session (SET threads=2, TimeZone UTC) runs each query against both, one
#    warm-up then best of 3, the same question written per side:
#      messages per day   count(*) grouped by the UTC date of the created time (the column, on
#                         both sides, not the hive `date`)
#      ILIKE              count(*) where the body content ILIKE '%contract%'
#      chat transcript    SELECT * of the chat with most messages (found once, untimed), ordered
#                         by created time, materialised as an Arrow table
#      latest version     per id keep the row with the greatest last-modified time (QUALIFY
#                         row_number() ... = 1), then count(*)
#      SELECT * LIMIT     SELECT * LIMIT 1000, materialised as an Arrow table
#    Ours is read with read_parquet('<dir>/chat_messages/*/*.parquet', hive_partitioning=true),
#    DuckDB's with read_parquet('<dir>/**/*.parquet', hive_partitioning=true), as an analyst
#    reads files of one schema version; a last line times count(*) through union_by_name=true
#    (what the shipped views use to read files of every version) against the plain read.
#    Prints ours ms, DuckDB ms and their ratio per query, then the median ratio (goal <= 1.0x) and
#    the largest (goal: every query <= 2x), the DESCRIBE column counts of both and the Parquet leaf
#    column count of one file of each. Both sides' results are compared: a difference is an error.
# 4. Unless SKIP_SPARK=1, times messages per day and ILIKE in PySpark (local[2]; startup and
#    DataFrame creation outside the timings, shown on their own row) on both.
# FAIL lines are results, not errors: the exit status is non-zero only when something broke.
set -euo pipefail
cd "$(dirname "$0")/.."
messages=${1:-200000}
source scripts/bench-common.sh
work=$root/target/bench-query
mkdir -p "$work"

echo "==> $messages messages"
src=$(pages "$messages")
archive=$work/archive
peer=$work/duckdb-lossless
rm -rf "$archive" "$peer"
echo "==> building both datasets"
ours=$("$py" scripts/measure.py -- "$bin" --no-progress ingest --kind chat --out "$archive" "$src")
echo "teams-archiver ingest: $(field "$ours" seconds) s"
theirs=$("$py" scripts/measure.py -- "$py" "$lossless" "$src" "$peer" 2)
echo "duckdb_lossless.py:    $(field "$theirs" seconds) s"

SKIP_SPARK=${SKIP_SPARK:-0} "$py" - "$archive" "$peer" <<'PY'
import glob, os, statistics, sys, time

import duckdb
import pyarrow.parquet as pq

archive, peer = sys.argv[1], sys.argv[2]
ours_src = f"read_parquet('{archive}/chat_messages/*/*.parquet', hive_partitioning=true)"
ours_by_name = (f"read_parquet('{archive}/chat_messages/*/*.parquet', "
                "hive_partitioning=true, union_by_name=true)")
peer_src = f"read_parquet('{peer}/**/*.parquet', hive_partitioning=true)"
WARMUP, RUNS = 1, 3
problems = []


def best_ms(fn):
    """One warm-up, then the best of RUNS timed calls; returns (ms, last result)."""
    for _ in range(WARMUP):
        fn()
    best, result = float("inf"), None
    for _ in range(RUNS):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best * 1000, result


def table(title, rows):
    print(f"\n{title}")
    print(f"{'query':<22} {'ours ms':>10} {'duckdb-lossless ms':>19} {'ratio':>7}")
    for name, a, b, note in rows:
        print(f"{name:<22} {a:>10.1f} {b:>19.1f} {a / b:>6.2f}x{note}")


con = duckdb.connect()
con.execute("SET threads=2")
con.execute("SET TimeZone='UTC'")  # created time ::DATE is the UTC day, as both partitionings
con.execute(f"CREATE VIEW ours AS SELECT * FROM {ours_src}")
con.execute(f"CREATE VIEW peer AS SELECT * FROM {peer_src}")

# The chat with most messages (ties: smallest id), once, untimed; both sides must agree.
chat = con.sql("SELECT chat_id FROM ours GROUP BY chat_id ORDER BY count(*) DESC, chat_id LIMIT 1").fetchall()[0][0]
peer_chat = con.sql("SELECT chatId FROM peer GROUP BY chatId ORDER BY count(*) DESC, chatId LIMIT 1").fetchall()[0][0]
if chat != peer_chat:
    problems.append(f"busiest chat differs: ours {chat}, duckdb {peer_chat}")
lit = "'" + chat.replace("'", "''") + "'"


def rows(q):
    return lambda: con.sql(q).fetchall()


def arrow(q):
    return lambda: con.sql(q).to_arrow_table()


# name, ours, duckdb, summary of a result (compared between the sides)
queries = [
    ("messages per day",
     rows("SELECT created_date_time::DATE AS day, count(*) FROM ours GROUP BY day"),
     rows('SELECT "createdDateTime"::DATE AS day, count(*) FROM peer GROUP BY day'),
     lambda r: sorted(r)),
    ("ILIKE '%contract%'",
     rows("SELECT count(*) FROM ours WHERE body_content ILIKE '%contract%'"),
     rows("SELECT count(*) FROM peer WHERE body.content ILIKE '%contract%'"),
     lambda r: r),
    ("chat transcript",
     arrow(f"SELECT * FROM ours WHERE chat_id = {lit} ORDER BY created_date_time"),
     arrow(f'SELECT * FROM peer WHERE "chatId" = {lit} ORDER BY "createdDateTime"'),
     lambda t: sorted(t.column("id").to_pylist())),
    ("latest version",
     rows("SELECT count(*) FROM (SELECT id FROM ours QUALIFY row_number() OVER "
          "(PARTITION BY id ORDER BY last_modified_date_time DESC) = 1)"),
     rows('SELECT count(*) FROM (SELECT id FROM peer QUALIFY row_number() OVER '
          '(PARTITION BY id ORDER BY "lastModifiedDateTime" DESC) = 1)'),
     lambda r: r),
    ("SELECT * LIMIT 1000",
     arrow("SELECT * FROM ours LIMIT 1000"),
     arrow("SELECT * FROM peer LIMIT 1000"),
     lambda t: t.num_rows),
]

print(f"busiest chat: {chat}")
results = []
for name, ours_q, peer_q, summary in queries:
    a, ra = best_ms(ours_q)
    b, rb = best_ms(peer_q)
    same = summary(ra) == summary(rb)
    if not same:
        problems.append(f"{name}: results differ (ours {str(summary(ra))[:200]}, duckdb {str(summary(rb))[:200]})")
    results.append((name, a, b, "" if same else "  RESULTS DIFFER"))
table("DuckDB 2 threads, best of 3 after 1 warm-up", results)
ratios = [a / b for _, a, b, _ in results]
med, worst = statistics.median(ratios), max(ratios)
worst_name = results[ratios.index(worst)][0]
print(f"median ratio: {med:.2f}x (goal <= 1.0x) -> {'PASS' if med <= 1.0 else 'FAIL'}")
print(f"max ratio: {worst:.2f}x ({worst_name}) (goal: every query <= 2x) -> {'PASS' if worst <= 2.0 else 'FAIL'}")

plain_ms, _ = best_ms(rows(f"SELECT count(*) FROM {ours_src}"))
by_name_ms, _ = best_ms(rows(f"SELECT count(*) FROM {ours_by_name}"))
print(f"count(*) on ours: {plain_ms:.1f} ms plain, {by_name_ms:.1f} ms with union_by_name=true (the views)")
ours_cols = len(con.sql(f"DESCRIBE SELECT * FROM {ours_src}").fetchall())
peer_cols = len(con.sql(f"DESCRIBE SELECT * FROM {peer_src}").fetchall())
ours_file = sorted(glob.glob(f"{archive}/chat_messages/*/*.parquet"))[0]
peer_file = sorted(glob.glob(f"{peer}/**/*.parquet", recursive=True))[0]
print(f"columns (DESCRIBE, top level, with hive date): ours {ours_cols}, duckdb-lossless {peer_cols}")
print(f"Parquet leaf columns of one file: ours {pq.ParquetFile(ours_file).metadata.num_columns} "
      f"({os.path.relpath(ours_file, archive)}), duckdb-lossless {pq.ParquetFile(peer_file).metadata.num_columns}")
con.close()

if os.environ.get("SKIP_SPARK") == "1":
    print("\nSpark skipped (SKIP_SPARK=1)")
else:
    from pyspark.sql import SparkSession
    from pyspark.errors import AnalysisException

    t = time.perf_counter()
    spark = (SparkSession.builder.master("local[2]").appName("bench-query")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.session.timeZone", "UTC")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    print(f"\nSpark local[2] started in {time.perf_counter() - t:.1f} s (not timed below)")

    def load_ours():
        return spark.read.option("mergeSchema", "true").parquet(f"{archive}/chat_messages")

    # DuckDB writes inferred UUID columns as FIXED_LEN_BYTE_ARRAY (UUID), which Spark refuses
    # to infer a schema from; then it gets the columns these queries use, declared.
    peer_schema = ("id STRING, chatId STRING, createdDateTime TIMESTAMP, "
                   "body STRUCT<contentType: STRING, content: STRING>")

    def load_peer_inferred():
        return spark.read.parquet(peer)

    def load_peer_declared():
        return spark.read.schema(peer_schema).parquet(peer)

    load_peer = load_peer_inferred
    spark.sparkContext.setLogLevel("OFF")  # the failed probe would log a task's stack trace
    try:
        load_peer().columns
    except AnalysisException as e:
        if "PARQUET_TYPE_ILLEGAL" not in str(e):
            raise
        print("Spark cannot infer the DuckDB files' schema (" + str(e).splitlines()[0][:120] +
              "); it is given the columns the queries use")
        load_peer = load_peer_declared
    finally:
        spark.sparkContext.setLogLevel("ERROR")

    spark_rows = []
    a, df = best_ms(load_ours)
    b, pdf = best_ms(load_peer)
    df.createOrReplaceTempView("ours")
    pdf.createOrReplaceTempView("peer")
    spark_rows.append(("load (read + schema)", a, b, "  (not a query: DataFrame creation)"))

    def sql(q):
        return lambda: spark.sql(q).collect()

    spark_queries = [
        ("messages per day",
         sql("SELECT to_date(created_date_time) AS day, count(*) AS n FROM ours GROUP BY 1"),
         sql("SELECT to_date(createdDateTime) AS day, count(*) AS n FROM peer GROUP BY 1"),
         lambda r: sorted((x[0], x[1]) for x in r)),
        ("ILIKE '%contract%'",
         sql("SELECT count(*) FROM ours WHERE body_content ILIKE '%contract%'"),
         sql("SELECT count(*) FROM peer WHERE body.content ILIKE '%contract%'"),
         lambda r: [x[0] for x in r]),
    ]
    for name, ours_q, peer_q, summary in spark_queries:
        a, ra = best_ms(ours_q)
        b, rb = best_ms(peer_q)
        same = summary(ra) == summary(rb)
        if not same:
            problems.append(f"spark {name}: results differ")
        spark_rows.append((name, a, b, "" if same else "  RESULTS DIFFER"))
    table("PySpark local[2], best of 3 after 1 warm-up", spark_rows)
    spark.stop()

if problems:
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    sys.exit(1)
PY

//! End-to-end tests of the `teams-archiver` binary against the Graph simulator,
//! local disk, moto's S3 server, DuckDB and Spark.

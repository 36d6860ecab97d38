//! Date-partitioned Parquet over object_store: deterministic file names, a commit
//! protocol that makes a checkpoint follow durable data, and the checkpoint store.

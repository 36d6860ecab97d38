//! Checking writers' chains of records: every commit record and run summary names its
//! writer, its sequence number and the SHA-256 of the record before it, so a record
//! changed, removed or slipped in breaks the chain where it happened, and a chain
//! rewritten from some record on ends in another head than the one its writer printed.

use std::collections::BTreeMap;

use crate::records::ChainLink;

/// A commit record or run summary as found in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainedRecord {
    /// Its key in the archive.
    pub key: String,
    /// SHA-256 of its bytes.
    pub sha256: String,
    /// `None` for a record that names no chain.
    pub link: Option<ChainLink>,
}

/// The last record of one writer's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub writer: String,
    pub sequence: u64,
    pub sha256: String,
}

/// What a check of every chain found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainReport {
    /// One per writer, by writer id.
    pub heads: Vec<Head>,
    /// (record key, what is wrong), each naming the writer and sequence.
    pub problems: Vec<(String, String)>,
    /// Per writer: the highest sequence up to which every record is present, single and
    /// linked to the one before.
    pub intact_through: BTreeMap<String, u64>,
}

/// Checks every writer's chain.
pub fn check(records: &[ChainedRecord]) -> ChainReport {
    let mut report = ChainReport::default();
    let mut writers: BTreeMap<&str, BTreeMap<u64, Vec<&ChainedRecord>>> = BTreeMap::new();
    for record in records {
        match &record.link {
            Some(link) => writers
                .entry(link.writer.as_str())
                .or_default()
                .entry(link.sequence)
                .or_default()
                .push(record),
            None => report.problems.push((
                record.key.clone(),
                "names no chain: it was not written by this version, or its chain was removed"
                    .into(),
            )),
        }
    }
    for (writer, by_sequence) in writers {
        let last = by_sequence.keys().next_back().copied().unwrap_or(0);
        let mut intact = true;
        let mut intact_through = 0;
        for sequence in 1..=last {
            let Some(found) = by_sequence.get(&sequence) else {
                let next = by_sequence
                    .range(sequence..)
                    .next()
                    .map(|(_, r)| r[0].key.clone())
                    .unwrap_or_default();
                report.problems.push((
                    next,
                    format!(
                        "chain {writer}: record {sequence} is missing (removed from the archive)"
                    ),
                ));
                intact = false;
                continue;
            };
            if found.len() > 1 {
                let keys: Vec<&str> = found.iter().map(|r| r.key.as_str()).collect();
                report.problems.push((
                    found[0].key.clone(),
                    format!(
                        "chain {writer}: records {} all claim sequence {sequence}",
                        keys.join(", ")
                    ),
                ));
                intact = false;
            }
            let record = found[0];
            let previous = record
                .link
                .as_ref()
                .and_then(|l| l.previous_sha256.as_deref());
            let expected = if sequence == 1 {
                None
            } else {
                by_sequence
                    .get(&(sequence - 1))
                    .map(|r| r[0].sha256.as_str())
            };
            let linked = match (sequence, previous, expected) {
                (1, None, _) => true,
                (_, Some(p), Some(e)) => p == e,
                // A missing predecessor was already reported.
                (_, Some(_), None) => false,
                _ => false,
            };
            if !linked && (sequence == 1 || expected.is_some()) {
                report.problems.push((
                    record.key.clone(),
                    format!(
                        "chain {writer}: record {sequence} names previous sha256 {}, but record {} has sha256 {} (a record was changed)",
                        previous.unwrap_or("none"),
                        sequence.saturating_sub(1),
                        expected.unwrap_or("none")
                    ),
                ));
            }
            intact &= linked;
            if intact {
                intact_through = sequence;
            }
        }
        if let Some(head) = by_sequence.get(&last) {
            report.heads.push(Head {
                writer: writer.to_string(),
                sequence: last,
                sha256: head[0].sha256.clone(),
            });
        }
        report
            .intact_through
            .insert(writer.to_string(), intact_through);
    }
    report
}

/// Whether a head printed earlier (by `sync`, `ingest` or `verify`) is still in its chain
/// with everything up to it unaltered: its link, or what differs.
pub fn expect_head<'r>(
    report: &ChainReport,
    records: &'r [ChainedRecord],
    sha256: &str,
) -> Result<&'r ChainLink, String> {
    let wanted = sha256.trim().to_ascii_lowercase();
    let Some(record) = records.iter().find(|r| r.sha256 == wanted) else {
        return Err(format!(
            "no commit record or run summary has sha256 {wanted}: the record at that head, or one before it, was changed or removed"
        ));
    };
    let Some(link) = &record.link else {
        return Err(format!("{} names no chain", record.key));
    };
    let intact = report
        .intact_through
        .get(&link.writer)
        .copied()
        .unwrap_or(0);
    if intact < link.sequence {
        return Err(format!(
            "chain {} is broken at record {} of the {} up to head {wanted} ({})",
            link.writer,
            intact + 1,
            link.sequence,
            record.key
        ));
    }
    Ok(link)
}

/// The records of a writer's chain after `sequence`, in order.
pub fn after<'r>(
    records: &'r [ChainedRecord],
    writer: &str,
    sequence: u64,
) -> Vec<&'r ChainedRecord> {
    let mut later: Vec<&ChainedRecord> = records
        .iter()
        .filter(|r| {
            r.link
                .as_ref()
                .is_some_and(|l| l.writer == writer && l.sequence > sequence)
        })
        .collect();
    later.sort_by_key(|r| r.link.as_ref().map(|l| l.sequence));
    later
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{ChainHead, record_sha256};

    fn chain(writer: &str, n: usize) -> Vec<ChainedRecord> {
        let mut head = ChainHead::new(writer);
        (0..n)
            .map(|i| {
                let link = head.next_link();
                let bytes = format!("record {writer} {i} {link:?}");
                let sha = record_sha256(bytes.as_bytes());
                head.advance(&link, sha.clone());
                ChainedRecord {
                    key: format!("_archive/commits/{writer}-{i}.json"),
                    sha256: sha,
                    link: Some(link),
                }
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_has_one_head_and_no_problem() {
        let mut records = chain("a", 4);
        records.extend(chain("b", 2));
        let report = check(&records);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(report.heads.len(), 2);
        assert_eq!(report.heads[0].sequence, 4);
        assert_eq!(report.heads[0].sha256, records[3].sha256);
        assert!(expect_head(&report, &records, &records[1].sha256).is_ok());
        assert!(expect_head(&report, &records, &records[5].sha256.to_uppercase()).is_ok());
    }

    #[test]
    fn a_changed_record_breaks_the_link_after_it() {
        let mut records = chain("a", 4);
        records[1].sha256 = record_sha256(b"forged");
        let report = check(&records);
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        assert!(report.problems[0].1.contains("record 3"));
        assert_eq!(report.intact_through["a"], 2);
        let head = records[3].sha256.clone();
        let err = expect_head(&report, &records, &head).unwrap_err();
        assert!(err.contains("broken at record 3"), "{err}");
        // A forger who rewrites every later record too ends with another head.
        let original_head = head;
        let mut rewritten = chain("a", 1);
        let mut head_state = ChainHead::new("a");
        head_state.advance(
            rewritten[0].link.as_ref().unwrap(),
            rewritten[0].sha256.clone(),
        );
        for i in 1..4 {
            let link = head_state.next_link();
            let sha = record_sha256(format!("forged {i}").as_bytes());
            head_state.advance(&link, sha.clone());
            rewritten.push(ChainedRecord {
                key: format!("_archive/commits/a-{i}.json"),
                sha256: sha,
                link: Some(link),
            });
        }
        let report = check(&rewritten);
        assert!(report.problems.is_empty());
        let err = expect_head(&report, &rewritten, &original_head).unwrap_err();
        assert!(err.contains("no commit record"), "{err}");
    }

    #[test]
    fn removed_duplicated_and_unchained_records_are_named() {
        let mut records = chain("a", 5);
        records.remove(2);
        let report = check(&records);
        assert!(
            report
                .problems
                .iter()
                .any(|(_, p)| p.contains("record 3 is missing")),
            "{:?}",
            report.problems
        );
        assert_eq!(report.intact_through["a"], 2);

        let mut records = chain("a", 3);
        let mut twin = records[1].clone();
        twin.key = "_archive/runs/slipped-in.json".into();
        twin.sha256 = record_sha256(b"twin");
        records.push(twin);
        let report = check(&records);
        assert!(report.problems.iter().any(|(_, p)| p.contains("all claim")));

        let records = vec![ChainedRecord {
            key: "_archive/runs/old.json".into(),
            sha256: record_sha256(b"old"),
            link: None,
        }];
        let report = check(&records);
        assert_eq!(report.problems[0].0, "_archive/runs/old.json");
    }

    #[test]
    fn the_first_record_names_no_previous() {
        let mut records = chain("a", 2);
        records[0].link.as_mut().unwrap().previous_sha256 = Some(record_sha256(b"x"));
        let report = check(&records);
        assert_eq!(report.intact_through["a"], 0);
        assert_eq!(report.problems.len(), 1);
    }
}

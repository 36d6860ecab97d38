//! Which scopes a run covers: every user's chats and mail, every team's channels,
//! narrowed by --user, --team and --shard.

use sha2::{Digest, Sha256};

use crate::args::Shard;

/// Whether an owner (a user or team id) falls to this shard. The hash is stable across
/// machines, versions and runs, so a scope always belongs to the same worker.
pub fn in_shard(owner_id: &str, shard: Option<Shard>) -> bool {
    match shard {
        None => true,
        Some(shard) => shard_of(owner_id, shard.count) == shard.index,
    }
}

/// The shard (1..=count) an owner id falls to.
pub fn shard_of(owner_id: &str, count: u32) -> u32 {
    let digest = Sha256::digest(owner_id.to_ascii_lowercase().as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % u64::from(count)) as u32 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_owner_falls_to_exactly_one_shard() {
        let count = 5;
        let ids: Vec<String> = (0..1000).map(|i| format!("user-{i}")).collect();
        let mut sizes = vec![0usize; count as usize];
        for id in &ids {
            let owners: Vec<u32> = (1..=count)
                .filter(|&k| in_shard(id, Some(Shard { index: k, count })))
                .collect();
            assert_eq!(owners.len(), 1, "{id} in {owners:?}");
            sizes[(owners[0] - 1) as usize] += 1;
        }
        // Roughly even: no shard gets less than half its share.
        assert!(sizes.iter().all(|&n| n > 100), "{sizes:?}");
    }

    #[test]
    fn the_hash_is_stable() {
        // Fixed values: changing the hash would move scopes between workers.
        assert_eq!(shard_of("alice", 8), shard_of("ALICE", 8));
        assert_eq!(shard_of("0b4f1cf6-54c8-4820-bbb7-2a1f4257ade5", 4), 1);
    }
}

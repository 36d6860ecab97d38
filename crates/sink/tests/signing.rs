//! A writer given a signing key signs every record it writes, and a stop between writing a
//! record and signing it is completed by the next open: no record is left unsigned.

mod common;

use std::sync::Arc;

use archive::layout::signature_key;
use archive::records::{ChainHead, PendingRecord, Record, RunSummary, record_sha256};
use archive::signing::{RecordSignature, SigningKey, VerifyKey};
use common::*;

/// An Ed25519 key from a fixed seed: PKCS#8 v1 is a fixed prefix and the 32 seed bytes.
fn test_key() -> SigningKey {
    let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
    der.extend_from_slice(&[7u8; 32]);
    SigningKey::from_pkcs8(&der).unwrap()
}

fn verify_key(key: &SigningKey) -> VerifyKey {
    let mut spki = hex::decode("302a300506032b6570032100").unwrap();
    spki.extend_from_slice(&hex::decode(key.public_key_hex()).unwrap());
    VerifyKey::from_spki(&spki).unwrap()
}

fn options(key: &Arc<SigningKey>) -> sink::WriterOptions {
    sink::WriterOptions {
        signing_key: Some(Arc::clone(key)),
        ..Default::default()
    }
}

/// The record at `key` has a valid signature by `verify`.
fn assert_signed(archive: &std::path::Path, key: &str, verify: &VerifyKey) {
    let bytes = std::fs::read(archive.join(key)).unwrap();
    let signature = std::fs::read(archive.join(signature_key(key)))
        .unwrap_or_else(|e| panic!("{key} has no signature: {e}"));
    let signature = RecordSignature::from_json(&signature).unwrap();
    assert_eq!(
        verify.check(&signature, key, &record_sha256(&bytes)),
        Ok(())
    );
}

#[tokio::test]
async fn every_record_is_signed_even_after_a_stop_before_its_signature() {
    let key = Arc::new(test_key());
    let verify = verify_key(&key);
    let (_dir, archive, state) = local_dirs();
    let mut writer = open_local(&archive, &state, options(&key)).await;
    writer
        .append(TABLE, &batch(&messages("s", 10, 1, 50)))
        .unwrap();
    let report = writer.commit(vec![]).await.unwrap();
    let commit_key = format!("_archive/commits/{}.json", report.commit_id.unwrap());
    assert_signed(&archive, &commit_key, &verify);
    let before_summary = writer.chain_head().clone();
    let mut summary = RunSummary::new("r1", archive::records::Command::Ingest, chrono::Utc::now());
    let head = writer.write_run_summary(&mut summary).await.unwrap();
    let summary_key = "_archive/runs/r1.json";
    assert_signed(&archive, summary_key, &verify);
    drop(writer);

    // Stopped after the summary was written, before it was signed and the head moved.
    std::fs::remove_file(archive.join(signature_key(summary_key))).unwrap();
    let bytes = std::fs::read(archive.join(summary_key)).unwrap();
    let mut stopped = before_summary.clone();
    stopped.pending = Some(PendingRecord {
        key: summary_key.to_string(),
        link: before_summary.next_link(),
        sha256: record_sha256(&bytes),
    });
    std::fs::write(state.join("chain.json"), stopped.to_json()).unwrap();
    let writer = open_local(&archive, &state, options(&key)).await;
    assert_eq!(
        writer.chain_head(),
        &head,
        "the written record moved the head"
    );
    assert_signed(&archive, summary_key, &verify);
    let saved = ChainHead::from_json(&std::fs::read(state.join("chain.json")).unwrap()).unwrap();
    assert!(saved.pending.is_none());
}

//! Ed25519 signatures over the archive's records. A writer given a private key signs each
//! commit record and run summary it writes; `verify` given the public key checks that
//! every record carries a valid signature by it. Someone who can write the bucket but does
//! not hold the key can neither forge a record nor rewrite a chain without it showing.
//!
//! A signature covers the record's key and the SHA-256 of its exact bytes (the same digest
//! the next record in the chain names), so it is checked without reading the record again
//! and cannot be moved onto another record. Keys are the files OpenSSL makes:
//!
//! ```text
//! openssl genpkey -algorithm ed25519 -out archive-signing.pem      # keep outside the archive
//! openssl pkey -in archive-signing.pem -pubout -out archive-verify.pem
//! ```

use std::path::Path;

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

/// `format` of signature documents.
pub const SIGNATURE_FORMAT: &str = "teams-archiver/signature/1";

/// A key that could not be loaded, naming the file and why.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct KeyError {
    pub path: String,
    pub reason: String,
}

/// The signature algorithms a signature document can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureAlgorithm {
    Ed25519,
}

/// The signature of one record (`_archive/signatures/<commits|runs>/<id>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordSignature {
    pub format: String,
    pub algorithm: SignatureAlgorithm,
    /// The signer's public key, 32 bytes as lowercase hex: which key to check it with.
    pub public_key: String,
    /// The key of the signed record in the archive.
    pub record: String,
    /// SHA-256 of the signed record's bytes.
    pub record_sha256: String,
    /// The Ed25519 signature of [`signed_message`], lowercase hex.
    pub signature: String,
}

impl RecordSignature {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a signature serialises")
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let signature: RecordSignature =
            serde_json::from_slice(bytes).map_err(|e| format!("not a signature document: {e}"))?;
        if signature.format != SIGNATURE_FORMAT {
            return Err(format!(
                "format `{}` is not {SIGNATURE_FORMAT}",
                signature.format
            ));
        }
        Ok(signature)
    }
}

/// What is signed: the record's key and digest, behind a fixed label so that the
/// signature means nothing in any other protocol.
pub fn signed_message(record_key: &str, record_sha256: &str) -> Vec<u8> {
    format!("{SIGNATURE_FORMAT}\nrecord {record_key}\nsha256 {record_sha256}\n").into_bytes()
}

/// A writer's private key.
pub struct SigningKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("public_key", &self.public_key_hex())
            .finish()
    }
}

impl SigningKey {
    /// Reads an Ed25519 private key: PKCS#8 as PEM (`-----BEGIN PRIVATE KEY-----`, what
    /// `openssl genpkey -algorithm ed25519` writes) or DER.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let der = read_key(path, "PRIVATE KEY")?;
        Self::from_pkcs8(&der).map_err(|reason| KeyError {
            path: path.display().to_string(),
            reason,
        })
    }

    /// A key from PKCS#8 DER bytes.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, String> {
        Ed25519KeyPair::from_pkcs8(der)
            .map(|pair| SigningKey { pair })
            .map_err(|e| format!("not an Ed25519 private key in PKCS#8: {e}"))
    }

    /// The public key, lowercase hex: what `verify --verify-key` checks against.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.pair.public_key().as_ref())
    }

    /// Signs the record stored at `record_key` whose bytes hash to `record_sha256`.
    pub fn sign(&self, record_key: &str, record_sha256: &str) -> RecordSignature {
        let signature = self.pair.sign(&signed_message(record_key, record_sha256));
        RecordSignature {
            format: SIGNATURE_FORMAT.to_string(),
            algorithm: SignatureAlgorithm::Ed25519,
            public_key: self.public_key_hex(),
            record: record_key.to_string(),
            record_sha256: record_sha256.to_string(),
            signature: hex::encode(signature.as_ref()),
        }
    }
}

/// A public key that signatures are checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyKey {
    raw: [u8; 32],
}

/// DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 key bytes follow it.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

impl VerifyKey {
    /// Reads an Ed25519 public key: SubjectPublicKeyInfo as PEM (`-----BEGIN PUBLIC
    /// KEY-----`, what `openssl pkey -pubout` writes) or DER, or the 64 hex digits that
    /// `sync` logs as the signing key.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let fail = |reason: String| KeyError {
            path: path.display().to_string(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(raw) = hex::decode(text.trim())
            && let Ok(raw) = <[u8; 32]>::try_from(raw.as_slice())
        {
            return Ok(VerifyKey { raw });
        }
        let der = read_key(path, "PUBLIC KEY")?;
        Self::from_spki(&der).map_err(fail)
    }

    /// A key from SubjectPublicKeyInfo DER bytes.
    pub fn from_spki(der: &[u8]) -> Result<Self, String> {
        der.strip_prefix(&ED25519_SPKI_PREFIX)
            .and_then(|raw| <[u8; 32]>::try_from(raw).ok())
            .map(|raw| VerifyKey { raw })
            .ok_or_else(|| "not an Ed25519 public key (SubjectPublicKeyInfo)".to_string())
    }

    /// The key, lowercase hex.
    pub fn hex(&self) -> String {
        hex::encode(self.raw)
    }

    /// Whether `signature` is this key's valid signature of the record stored at
    /// `record_key` with bytes hashing to `record_sha256`; what is wrong if not.
    pub fn check(
        &self,
        signature: &RecordSignature,
        record_key: &str,
        record_sha256: &str,
    ) -> Result<(), String> {
        if signature.public_key != self.hex() {
            return Err(format!(
                "signed by key {}, not by the expected key {}",
                signature.public_key,
                self.hex()
            ));
        }
        if signature.record != record_key || signature.record_sha256 != record_sha256 {
            return Err(format!(
                "the signature is of {} with sha256 {}, but the record is {record_key} with sha256 {record_sha256}",
                signature.record, signature.record_sha256
            ));
        }
        let bytes = hex::decode(&signature.signature)
            .map_err(|_| "the signature is not hex".to_string())?;
        UnparsedPublicKey::new(&ED25519, self.raw)
            .verify(&signed_message(record_key, record_sha256), &bytes)
            .map_err(|_| {
                "the signature does not verify: the record or its signature was changed".to_string()
            })
    }
}

/// The DER bytes of a key file: the PEM block with `label`, or the file itself when it is
/// not PEM.
fn read_key(path: &Path, label: &str) -> Result<Vec<u8>, KeyError> {
    let fail = |reason: String| KeyError {
        path: path.display().to_string(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    if !bytes.starts_with(b"-----BEGIN") {
        return Ok(bytes);
    }
    let block = pem::parse(&bytes).map_err(|e| fail(format!("not a PEM file: {e}")))?;
    if block.tag() != label {
        return Err(fail(format!(
            "holds a PEM `{}`, not a `{label}`",
            block.tag()
        )));
    }
    Ok(block.into_contents())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_pair() -> (SigningKey, VerifyKey) {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8v1(&aws_lc_rs::rand::SystemRandom::new())
            .expect("a key is generated");
        let signing = SigningKey::from_pkcs8(pkcs8.as_ref()).unwrap();
        let mut spki = ED25519_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(signing.pair.public_key().as_ref());
        (signing, VerifyKey::from_spki(&spki).unwrap())
    }

    #[test]
    fn a_signature_verifies_for_its_record_only() {
        let (signing, verify) = key_pair();
        let key = "_archive/commits/c1.json";
        let signature = signing.sign(key, "aa");
        let parsed = RecordSignature::from_json(&signature.to_json()).unwrap();
        assert_eq!(verify.check(&parsed, key, "aa"), Ok(()));
        assert!(
            verify
                .check(&parsed, key, "ab")
                .unwrap_err()
                .contains("sha256")
        );
        assert!(
            verify
                .check(&parsed, "_archive/commits/c2.json", "aa")
                .is_err()
        );
        let mut forged = parsed.clone();
        forged.record_sha256 = "ab".into();
        assert!(
            verify
                .check(&forged, key, "ab")
                .unwrap_err()
                .contains("does not verify")
        );
        let (other, _) = key_pair();
        assert!(
            verify
                .check(&other.sign(key, "aa"), key, "aa")
                .unwrap_err()
                .contains("not by the expected key")
        );
    }

    #[test]
    fn keys_load_from_pem_der_and_hex_files_and_wrong_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let pkcs8 =
            Ed25519KeyPair::generate_pkcs8v1(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
        let private = dir.path().join("key.pem");
        let pem_text = pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.as_ref().to_vec()));
        std::fs::write(&private, pem_text).unwrap();
        let signing = SigningKey::load(&private).unwrap();
        let hex_file = dir.path().join("key.hex");
        std::fs::write(&hex_file, format!("{}\n", signing.public_key_hex())).unwrap();
        let verify = VerifyKey::load(&hex_file).unwrap();
        assert_eq!(verify.hex(), signing.public_key_hex());

        let err = VerifyKey::load(&private).unwrap_err();
        assert!(err.to_string().contains("not a `PUBLIC KEY`"), "{err}");
        let garbage = dir.path().join("garbage");
        std::fs::write(&garbage, b"\x00\x01").unwrap();
        let err = SigningKey::load(&garbage).unwrap_err();
        assert!(err.to_string().starts_with(&garbage.display().to_string()));
        assert!(SigningKey::load(&dir.path().join("absent")).is_err());
    }
}

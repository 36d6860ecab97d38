//! A gibibyte attachment is generated as it is sent: the simulator streams it (and hashes
//! it once) without holding it, so the test process stays small. Alone in its own test
//! binary so the process's peak memory is this test's.

use graph_sim::{AttachmentKind, NewAttachment, SimConfig};
use sha2::Digest as _;

mod common;
use common::Client;

/// Peak resident memory of this process, from /proc (Linux), in bytes.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gibibyte_attachment_streams_with_flat_memory() {
    const SIZE: u64 = 1 << 30;
    let sim = graph_sim::start(SimConfig::small()).await.expect("start");
    let client = Client::new(&sim).await;
    let user = sim.directory().users[0].id.clone();
    let posted = tokio::task::spawn_blocking({
        let sim = sim.handle();
        move || {
            sim.add_mail_with(
                &user,
                "inbox",
                "the big one",
                "<p>attached</p>",
                &[NewAttachment {
                    kind: AttachmentKind::File,
                    name: "dump.zip".into(),
                    size: Some(SIZE),
                    content_type: None,
                    is_inline: false,
                }],
            )
        }
    })
    .await
    .expect("joined")
    .expect("mail");
    let attachment = &posted.attachments[0];
    assert_eq!(attachment.size, SIZE);

    let mut response = client
        .http
        .get(format!("{}{}", client.base, attachment.url))
        .bearer_auth(&client.token)
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.content_length(), Some(SIZE));
    let mut sha = sha2::Sha256::new();
    let mut received = 0u64;
    while let Some(chunk) = response.chunk().await.expect("chunk") {
        received += chunk.len() as u64;
        sha.update(&chunk);
    }
    assert_eq!(received, SIZE);
    assert_eq!(Some(hex::encode(sha.finalize())), attachment.sha256);
    if let Some(peak) = peak_rss() {
        assert!(peak < 256 << 20, "peak memory {} MiB", peak >> 20);
    }
}

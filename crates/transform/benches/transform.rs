//! Transform throughput over getAllMessages-shaped items (the mix of
//! `gen_chat_pages.py`: html and text bodies, reply quotes, file and card attachments,
//! mentions, reactions, edits, system events), made by a small deterministic generator.
//!
//!     CARGO_TARGET_DIR=target-release cargo bench -p transform --bench transform

use chrono::{DateTime, Utc};
use divan::counter::{BytesCount, ItemsCount};
// The simulator's words that go into HTML and JSON as they are.
use graph_sim::PLAIN_WORDS as WORDS;
use transform::{ChatMessageBuilder, RowContext, canonical_sha256, html_to_text};

fn main() {
    divan::main();
}

const MESSAGES: usize = 20_000;

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn sentence(&mut self, lo: u64, hi: u64) -> String {
        let n = lo + self.below(hi - lo + 1);
        (0..n)
            .map(|_| WORDS[self.below(WORDS.len() as u64) as usize])
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn iso(ms: u64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms as i64)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn user(rng: &mut Rng) -> String {
    let n = rng.below(500);
    format!(
        r##"{{"id":"{n:08x}-54c8-4820-bbb7-2a1f4257ade5","displayName":"User {n}","userIdentityType":"aadUser","@odata.type":"#microsoft.graph.teamworkUserIdentity"}}"##
    )
}

fn message(rng: &mut Rng, i: usize) -> String {
    let created = 1_704_067_200_000 + rng.below(90 * 86_400_000);
    let id = created * 1000 + i as u64 % 1000;
    let chat = format!("19:{:032x}@thread.v2", rng.below(2000));
    let sender = user(rng);
    let kind = rng.below(100);
    let mut from = format!(r#"{{"application":null,"device":null,"user":{sender}}}"#);
    let mut message_type = "message";
    let mut event = "null".to_string();
    let mut attachments = String::new();
    let mut mentions = String::new();
    let body = if kind < 35 {
        format!(
            r#"{{"contentType":"html","content":"<div><blockquote itemscope=\"\" itemtype=\"http://schema.skype.com/Reply\" itemid=\"{}\"><strong itemprop=\"mri\">User</strong><p itemprop=\"preview\">{}</p></blockquote><p>{}</p></div>"}}"#,
            id - 997,
            rng.sentence(1, 8),
            rng.sentence(3, 60)
        )
    } else if kind < 45 {
        let att = rng.next();
        attachments = format!(
            r#"{{"id":"{att}","contentType":"reference","contentUrl":"https://contoso.sharepoint.com/sites/s/Shared%20Documents/{att}.docx","content":null,"name":"{att}.docx","thumbnailUrl":null,"teamsAppId":null}}"#
        );
        format!(
            r#"{{"contentType":"html","content":"<p>{}</p><attachment id=\"{att}\"></attachment>"}}"#,
            rng.sentence(2, 20)
        )
    } else if kind < 50 {
        let att = rng.next();
        from = r#"{"application":{"id":"app-1","displayName":"Build Bot","applicationIdentityType":"bot"},"device":null,"user":null}"#.into();
        attachments = format!(
            r#"{{"id":"{att}","contentType":"application/vnd.microsoft.card.adaptive","contentUrl":null,"content":"{{\"type\": \"AdaptiveCard\", \"version\": \"1.4\", \"body\": [{{\"type\": \"TextBlock\", \"text\": \"{}\"}}]}}","name":null,"thumbnailUrl":null,"teamsAppId":null}}"#,
            rng.sentence(4, 30)
        );
        format!(r#"{{"contentType":"html","content":"<attachment id=\"{att}\"></attachment>"}}"#)
    } else if kind < 58 {
        let target = user(rng);
        mentions = format!(
            r#"{{"id":0,"mentionText":"User","mentioned":{{"application":null,"device":null,"conversation":null,"tag":null,"user":{target}}}}}"#
        );
        format!(
            r#"{{"contentType":"html","content":"<div><at id=\"0\">User</at> {}</div>"}}"#,
            rng.sentence(2, 30)
        )
    } else if kind < 62 {
        message_type = "systemEventMessage";
        from = "null".into();
        event = format!(
            r##"{{"@odata.type":"#microsoft.graph.callEndedEventMessageDetail","callId":"{}","callDuration":"PT12M3S","callEventType":"call","callParticipants":[{{"participant":{{"application":null,"device":null,"user":{sender}}}}}],"initiator":{{"application":null,"device":null,"user":{sender}}}}}"##,
            rng.next()
        );
        r#"{"contentType":"html","content":"<systemEventMessage/>"}"#.to_string()
    } else {
        format!(
            r#"{{"contentType":"text","content":"{}"}}"#,
            rng.sentence(1, 40)
        )
    };
    let reactions = if rng.below(100) < 15 {
        format!(
            r#"{{"reactionType":"like","displayName":null,"reactionContentUrl":null,"createdDateTime":"{}","user":{{"application":null,"device":null,"user":{}}}}}"#,
            iso(created + 60_000),
            user(rng)
        )
    } else {
        String::new()
    };
    let created = iso(created);
    format!(
        r##"{{"@odata.type":"#microsoft.graph.chatMessage","id":"{id}","replyToId":null,"etag":"{id}","messageType":"{message_type}","createdDateTime":"{created}","lastModifiedDateTime":"{created}","lastEditedDateTime":null,"deletedDateTime":null,"subject":null,"summary":null,"chatId":"{chat}","importance":"normal","locale":"en-us","webUrl":null,"channelIdentity":null,"policyViolation":null,"eventDetail":{event},"from":{from},"body":{body},"attachments":[{attachments}],"mentions":[{mentions}],"reactions":[{reactions}],"messageHistory":[]}}"##
    )
}

fn items() -> Vec<String> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    (0..MESSAGES).map(|i| message(&mut rng, i)).collect()
}

fn context() -> RowContext<'static> {
    RowContext {
        source: "bench",
        fetched_at: DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc),
        run_id: "bench",
        custodian_user_id: Some("0b4f1cf6-54c8-4820-bbb7-2a1f4257ade5"),
    }
}

/// Items through `ChatMessageBuilder`, finished into batches every 8,192 rows.
#[divan::bench(sample_count = 10)]
fn chat_messages(bencher: divan::Bencher) {
    let items = items();
    let bytes: usize = items.iter().map(String::len).sum();
    let ctx = context();
    bencher
        .counter(ItemsCount::new(items.len()))
        .counter(BytesCount::new(bytes))
        .bench_local(|| {
            let mut builder = ChatMessageBuilder::new();
            let mut rows = 0;
            for item in &items {
                builder.append(item, &ctx).unwrap();
                if builder.len() == 8192 {
                    rows += builder.finish().messages.num_rows();
                }
            }
            rows += builder.finish().messages.num_rows();
            assert_eq!(rows, items.len());
        });
}

/// The version hash alone.
#[divan::bench(sample_count = 10)]
fn canonical_hash(bencher: divan::Bencher) {
    let items = items();
    bencher
        .counter(ItemsCount::new(items.len()))
        .bench_local(|| {
            for item in &items {
                divan::black_box(canonical_sha256(item).unwrap());
            }
        });
}

/// `body_text` of the HTML bodies alone.
#[divan::bench(sample_count = 10)]
fn body_text(bencher: divan::Bencher) {
    let bodies: Vec<String> = items()
        .iter()
        .filter_map(|i| {
            let v: serde_json::Value = serde_json::from_str(i).unwrap();
            (v["body"]["contentType"] == "html")
                .then(|| v["body"]["content"].as_str().unwrap().to_string())
        })
        .collect();
    bencher
        .counter(ItemsCount::new(bodies.len()))
        .bench_local(|| {
            for b in &bodies {
                divan::black_box(html_to_text(b));
            }
        });
}

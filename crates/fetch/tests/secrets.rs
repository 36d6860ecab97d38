//! The client secret, the private key, client assertions, access tokens and delta or skip
//! tokens never reach logs (every target, TRACE level) or error messages.
//!
//! Its own test binary: it installs the process-wide log subscriber.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use fetch::{Credential, PaymentModel, RoundStart, Scope};
use futures::StreamExt;
use graph_sim::{
    Billing, EndpointKind, Fault, FaultPlan, FaultRule, RetryAfter, SimConfig, Target,
};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_and_tokens_never_reach_logs_or_errors() {
    let logs = Captured::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(logs.clone())
        .try_init()
        .expect("the only subscriber of this test binary");

    let faults = FaultPlan::none()
        .with(FaultRule::every(
            Fault::TooManyRequests {
                retry_after: RetryAfter::Millis(20),
            },
            6,
        ))
        .with(FaultRule::every(Fault::IncompleteJson, 5))
        .with(FaultRule::every(Fault::ConnectionReset, 7))
        .with(FaultRule::every(Fault::ExpiredToken, 9))
        .with(FaultRule::every(Fault::Status { status: 503 }, 11))
        .with(FaultRule::every(Fault::TruncatedBody, 13));
    let sim = sim(SimConfig {
        faults,
        ..SimConfig::small()
    })
    .await;
    let client = client(&sim);
    let directory = sim.directory();
    let mut said: Vec<String> = Vec::new();

    // Everything a sync does, through the faults.
    for stream in [collect(client.users()).await, collect(client.teams()).await] {
        stream.ok();
    }
    let mut delta_links = Vec::new();
    for user in &directory.users {
        let got = round(&client, &chats_of(&user.id), initial(5)).await.ok();
        said.extend(got.pages.iter().map(|p| format!("{p:?}")));
        delta_links.push((chats_of(&user.id), got.delta_link()));
        collect(client.user_chats(&user.id)).await.ok();
        collect(client.mail_folders(&user.id)).await.ok();
    }
    for team in &directory.teams {
        collect(client.channels(&team.id)).await.ok();
        for channel in &team.channels {
            let scope = Scope::Channel {
                team_id: team.id.clone(),
                channel_id: channel.id.clone(),
            };
            let got = round(&client, &scope, initial(4)).await.ok();
            for root in got.ids() {
                collect(client.replies(&team.id, &channel.id, &root))
                    .await
                    .ok();
            }
            delta_links.push((scope, got.delta_link()));
        }
    }
    for folder in directory.mail_folders.iter().take(6) {
        let scope = Scope::MailFolder {
            user_id: folder.user_id.clone(),
            folder_id: folder.id.clone(),
        };
        let got = round(&client, &scope, initial(3)).await.ok();
        delta_links.push((scope, got.delta_link()));
    }
    for (scope, link) in &delta_links {
        said.push(format!("{:?}", RoundStart::Resume { link: link.clone() }));
        round(&client, scope, RoundStart::Resume { link: link.clone() })
            .await
            .ok();
    }
    let user = directory.users[0].id.clone();
    round(
        &client,
        &chats_of(&user),
        window_until(chrono::Utc::now(), 5),
    )
    .await
    .ok();
    sim.set_faults(FaultPlan::none());

    // A certificate login.
    let certificate = sim.client_certificate();
    let with_certificate = client_with(&sim, |c| {
        c.credential = Credential::Certificate {
            private_key_pem: certificate.private_key_pem.clone(),
            certificate_pem: certificate.certificate_pem.clone(),
        }
    });
    round(&with_certificate, &chats_of(&user), initial(50))
        .await
        .ok();
    said.push(format!("{with_certificate:?}"));
    said.push(format!("{client:?}"));
    said.push(format!("{:?}", with_certificate.config()));

    // Every kind of error, displayed and debugged.
    let mut errors = Vec::new();
    let wrong = client_with(&sim, |c| {
        c.credential = Credential::Secret(format!("{}x", sim.client_secret()))
    });
    errors.push(round(&wrong, &chats_of(&user), initial(5)).await.error);
    errors.push(round(&client, &chats_of("nobody"), initial(5)).await.error);
    sim.set_billing(Billing {
        model_a: false,
        model_b: false,
        evaluation_items: 0,
    });
    let billed = client_with(&sim, |c| c.payment_model = Some(PaymentModel::B));
    errors.push(
        round(
            &billed,
            &chats_of(&user),
            window_until(chrono::Utc::now(), 5),
        )
        .await
        .error,
    );
    // The chat delta carries the payment model too: billing back for the cases below.
    sim.set_billing(Billing::default());
    sim.set_faults(FaultPlan::none().with(
        FaultRule::every(Fault::IncompleteJson, 1).on(Target::PathContains("skiptoken".into())),
    ));
    errors.push(round(&client, &chats_of(&user), initial(3)).await.error);
    sim.set_faults(FaultPlan::none().with(
        FaultRule::every(Fault::ConnectionReset, 1).on(Target::PathContains("skiptoken".into())),
    ));
    errors.push(round(&client, &chats_of(&user), initial(3)).await.error);
    sim.set_faults(
        FaultPlan::none().with(
            FaultRule::every(Fault::Status { status: 500 }, 1)
                .on(Target::Endpoint(EndpointKind::MailDelta)),
        ),
    );
    let (scope, link) = delta_links.last().cloned().expect("a mail round");
    errors.push(
        round(&client, &scope, RoundStart::Resume { link })
            .await
            .error,
    );
    sim.set_faults(FaultPlan::none());
    sim.advance_clock(Duration::from_secs(30 * 24 * 3600));
    for (scope, link) in delta_links.iter().take(3) {
        errors.push(
            round(&client, scope, RoundStart::Resume { link: link.clone() })
                .await
                .error,
        );
    }
    let mut stream = std::pin::pin!(client.round(&chats_of(&user), initial(2)));
    let page = stream.next().await.expect("a page").expect("ok");
    said.push(format!("{page:?}"));
    sim.expire_state_tokens();
    errors.push(stream.next().await.and_then(Result::err));

    for error in errors {
        let error = error.expect("each case above fails");
        said.push(error.to_string());
        said.push(format!("{error:?}"));
    }

    let log =
        String::from_utf8_lossy(&logs.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
    assert!(
        log.contains("graph request") && log.contains("retrying") && log.contains("access token"),
        "the capture works:\n{}",
        &log[..log.len().min(2000)]
    );
    let said = said.join("\n");
    assert!(said.contains("<redacted>"), "tokens were there to redact");

    let mut secrets = sim.issued_secrets();
    // The key as a whole and line by line.
    secrets.extend(
        certificate
            .private_key_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::to_string),
    );
    let state_tokens = sim.issued_state_tokens();
    assert!(
        state_tokens.len() > 50,
        "many state tokens were issued: {}",
        state_tokens.len()
    );
    let access_tokens = sim.issued_access_tokens();
    assert!(
        access_tokens.len() > 3,
        "tokens were refreshed and assertions signed: {}",
        access_tokens.len()
    );
    let mut checked = 0;
    for secret in &secrets {
        // Whole values, and their tails: distinct even where tokens share a header.
        for needle in [secret.as_str(), &secret[secret.len().saturating_sub(24)..]] {
            if needle.len() < 16 {
                continue;
            }
            assert!(
                !log.contains(needle),
                "a secret reached the logs: …{}",
                &needle[needle.len() - 6..]
            );
            assert!(
                !said.contains(needle),
                "a secret reached an error or Debug output: …{}",
                &needle[needle.len() - 6..]
            );
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked} secrets checked");
}

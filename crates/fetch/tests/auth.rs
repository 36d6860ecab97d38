//! Logging in: client secret or certificate, tokens shared and refreshed before they
//! expire and when Graph rejects them, and clear errors when the login is refused.

mod common;

use std::time::Duration;

use common::*;
use fetch::{Credential, FetchError, GraphClient};
use graph_sim::EndpointKind;

#[tokio::test]
async fn one_token_serves_every_request_and_every_clone() {
    let sim = sim(quiet()).await;
    let client = client(&sim);
    let users = sim.directory().users;
    let mut tasks = Vec::new();
    for user in users.clone() {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            round(&client, &chats_of(&user.id), initial(5))
                .await
                .ok()
                .pages
                .len()
        }));
    }
    for task in tasks {
        assert!(task.await.expect("task") > 0);
    }
    assert_eq!(sim.stats().access_tokens_issued, 1);
    assert_eq!(sim.stats().total(EndpointKind::Token), 1);
}

#[tokio::test]
async fn a_certificate_signs_an_assertion_the_login_accepts() {
    let sim = sim(quiet()).await;
    let certificate = sim.client_certificate();
    let client = client_with(&sim, |c| {
        c.credential = Credential::Certificate {
            private_key_pem: certificate.private_key_pem.clone(),
            certificate_pem: certificate.certificate_pem.clone(),
        }
    });
    let user = sim.directory().users[0].clone();
    let got = round(&client, &chats_of(&user.id), initial(20)).await.ok();
    assert_eq!(got.distinct(), expected_chats(&sim, &user.id));
    // A second login signs a fresh assertion (a reused one would be refused as a replay).
    sim.expire_access_tokens();
    round(&client, &chats_of(&user.id), initial(20)).await.ok();
    assert_eq!(sim.stats().access_tokens_issued, 2);

    let stranger = sim.unregistered_certificate();
    let refused = client_with(&sim, |c| {
        c.credential = Credential::Certificate {
            private_key_pem: stranger.private_key_pem.clone(),
            certificate_pem: stranger.certificate_pem.clone(),
        }
    });
    let error = round(&refused, &chats_of(&user.id), initial(20))
        .await
        .error
        .expect("an unknown certificate");
    match &error {
        FetchError::Auth {
            status: Some(401),
            code: Some(code),
            detail,
            ..
        } => {
            assert_eq!(code, "invalid_client");
            assert!(detail.contains("not registered"), "{detail}");
        }
        other => panic!("expected an auth error, got {other}"),
    }
}

/// A login endpoint that answers 200 with a body that does not end (up to 64 MiB): the
/// client stops reading at its limit and names it, instead of holding it all.
#[tokio::test]
async fn an_endless_token_response_is_cut_at_the_limit() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut sent = 0usize;
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = vec![0u8; 64 * 1024];
            let _ = socket.read(&mut request).await;
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
            if socket.write_all(head.as_bytes()).await.is_err() {
                continue;
            }
            let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
            for _ in 0..1024 {
                if socket.write_all(chunk.as_bytes()).await.is_err() {
                    break;
                }
                sent += 64 * 1024;
            }
        }
        sent
    });
    let base = url::Url::parse(&format!("http://{address}/")).unwrap();
    let mut config = fetch::ClientConfig::new(
        base.clone(),
        base,
        "tenant",
        "client",
        Credential::Secret("secret-value".into()),
    );
    config.allow_insecure_http = true;
    config.retry.max_retries = 0;
    let client = GraphClient::new(config).unwrap();
    let first = futures::StreamExt::next(&mut Box::pin(client.users()))
        .await
        .expect("an answer");
    let error = first.expect_err("no token");
    assert!(
        matches!(&error, FetchError::Auth { detail, .. } if detail.contains("limit")),
        "{error}"
    );
    server.abort();
}

#[test]
fn plain_http_urls_are_refused_unless_allowed() {
    for (graph, login) in [
        ("http://graph.example/", "https://login.example/"),
        ("https://graph.example/", "http://login.example/"),
    ] {
        let mut config = fetch::ClientConfig::new(
            url::Url::parse(graph).unwrap(),
            url::Url::parse(login).unwrap(),
            "tenant",
            "client",
            Credential::Secret("secret-value".into()),
        );
        let error = GraphClient::new(config.clone()).expect_err("http is refused");
        assert!(
            matches!(error, FetchError::Config { .. })
                && error.to_string().contains("not https")
                && error.to_string().contains("--allow-insecure-http"),
            "{error}"
        );
        config.allow_insecure_http = true;
        assert!(GraphClient::new(config).is_ok(), "{graph} {login}");
    }
}

#[test]
fn broken_certificates_are_configuration_errors() {
    let mut config = fetch::ClientConfig::new(
        url::Url::parse("https://graph.microsoft.com/").unwrap(),
        url::Url::parse("https://login.microsoftonline.com/").unwrap(),
        "tenant",
        "client",
        Credential::Certificate {
            private_key_pem: "not a key".into(),
            certificate_pem: "not a certificate".into(),
        },
    );
    let error = GraphClient::new(config.clone()).expect_err("a bad key");
    assert!(
        matches!(error, FetchError::Config { .. }) && error.to_string().contains("private key"),
        "{error}"
    );
    config.credential = Credential::Secret(String::new());
    assert!(matches!(
        GraphClient::new(config),
        Err(FetchError::Config { .. })
    ));
}

#[tokio::test]
async fn a_wrong_secret_or_tenant_is_refused_once_and_named() {
    let sim = sim(quiet()).await;
    let user = sim.directory().users[0].clone();
    let wrong = client_with(&sim, |c| {
        c.credential = Credential::Secret("not-the-secret".into())
    });
    let error = round(&wrong, &chats_of(&user.id), initial(5))
        .await
        .error
        .expect("refused");
    match &error {
        FetchError::Auth {
            status: Some(401),
            code: Some(code),
            detail,
            url,
            scope,
        } => {
            assert_eq!(code, "invalid_client");
            assert!(detail.starts_with("AADSTS7000215"), "{detail}");
            assert!(url.as_str().ends_with("/oauth2/v2.0/token"));
            assert_eq!(scope, &format!("chats of user {}", user.id));
        }
        other => panic!("expected an auth error, got {other}"),
    }
    assert_eq!(
        sim.stats().total(EndpointKind::Token),
        1,
        "a refused secret is not retried"
    );
    assert_eq!(sim.stats().admitted, 0, "no Graph call without a token");

    let elsewhere = client_with(&sim, |c| {
        c.tenant_id = "00000000-0000-0000-0000-000000000000".into()
    });
    let error = round(&elsewhere, &chats_of(&user.id), initial(5))
        .await
        .error
        .expect("unknown tenant");
    assert!(error.to_string().contains("AADSTS90002"), "{error}");
}

#[tokio::test]
async fn tokens_are_refreshed_before_they_expire() {
    let sim = sim(quiet()).await;
    sim.set_access_token_lifetime(Duration::from_secs(2));
    let client = client(&sim);
    let user = sim.directory().users[0].clone();
    round(&client, &chats_of(&user.id), initial(50)).await.ok();
    // Past four fifths of the lifetime the client gets a new token before using the old one.
    tokio::time::sleep(Duration::from_millis(1700)).await;
    round(&client, &chats_of(&user.id), initial(50)).await.ok();
    let stats = sim.stats();
    assert_eq!(stats.access_tokens_issued, 2);
    assert_eq!(
        stats.with_status(401),
        0,
        "no request went out with an expired token"
    );
}

#[tokio::test]
async fn a_rejected_token_is_replaced_and_the_request_repeated() {
    let sim = sim(quiet()).await;
    let client = client(&sim);
    let user = sim.directory().users[0].clone();
    round(&client, &chats_of(&user.id), initial(50)).await.ok();
    sim.expire_access_tokens();
    let got = round(&client, &chats_of(&user.id), initial(50)).await.ok();
    assert_eq!(got.distinct(), expected_chats(&sim, &user.id));
    let stats = sim.stats();
    assert_eq!(stats.with_status(401), 1);
    assert_eq!(stats.access_tokens_issued, 2);
}

#[tokio::test]
async fn a_struggling_login_endpoint_is_retried() {
    use graph_sim::{Fault, FaultPlan, FaultRule, RetryAfter, Target};
    let sim = sim(quiet()).await;
    sim.set_faults(
        FaultPlan::none()
            .with(
                FaultRule::times(Fault::Status { status: 503 }, 1)
                    .on(Target::Endpoint(EndpointKind::Token)),
            )
            .with(
                FaultRule::times(
                    Fault::TooManyRequests {
                        retry_after: RetryAfter::Millis(20),
                    },
                    1,
                )
                .on(Target::Endpoint(EndpointKind::Token)),
            )
            .with(
                FaultRule::times(Fault::ConnectionReset, 1)
                    .on(Target::Endpoint(EndpointKind::Token)),
            )
            .with(
                FaultRule::times(Fault::IncompleteJson, 1)
                    .on(Target::Endpoint(EndpointKind::Token)),
            ),
    );
    let client = client(&sim);
    let user = sim.directory().users[0].clone();
    let got = round(&client, &chats_of(&user.id), initial(50)).await.ok();
    assert_eq!(got.distinct(), expected_chats(&sim, &user.id));
    let stats = sim.stats();
    assert_eq!(
        stats.total(EndpointKind::Token),
        5,
        "four failures, then a token"
    );
    assert_eq!(stats.access_tokens_issued, 2, "one lost in a cut response");
}

//! Shared by the integration tests: a simulator, a client for it, and rounds collected
//! into what a test compares with the simulator's ground truth.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::time::Duration;

use fetch::{
    ClientConfig, Credential, FetchError, GraphClient, Page, RequestTypeLimits, RetryPolicy,
    RoundStart, Scope,
};
use futures::{Stream, StreamExt};
use graph_sim::{RunningSim, Sim, SimConfig};

pub async fn sim(config: SimConfig) -> RunningSim {
    graph_sim::start(config)
        .await
        .expect("the simulator starts on a loopback port")
}

/// A small tenant without replays, for tests that count items exactly.
pub fn quiet() -> SimConfig {
    SimConfig {
        replay_per_mille: 0,
        ..SimConfig::small()
    }
}

/// Client settings for tests: Graph's limits off the table, quick retries.
pub fn config(sim: &Sim) -> ClientConfig {
    let mut config = ClientConfig::new(
        sim.graph_url(),
        sim.login_url(),
        sim.tenant_id(),
        sim.client_id(),
        Credential::Secret(sim.client_secret().to_string()),
    );
    // The simulator serves plain HTTP on the loopback address.
    config.allow_insecure_http = true;
    config.limits.requests_per_second = 10_000;
    config.limits.request_types = RequestTypeLimits::all(10_000);
    config.limits.team_requests_per_second = 10_000;
    config.limits.channel_requests_per_second = 10_000;
    config.limits.mailbox_concurrency = 64;
    config.limits.mailbox_requests_per_ten_minutes = 1_000_000;
    config.retry = RetryPolicy {
        max_retries: 6,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(200),
        max_retry_after: Duration::from_secs(5),
    };
    config.timeouts.request = Duration::from_secs(10);
    config
}

pub fn client(sim: &Sim) -> GraphClient {
    GraphClient::new(config(sim)).expect("a valid client configuration")
}

pub fn client_with(sim: &Sim, change: impl FnOnce(&mut ClientConfig)) -> GraphClient {
    let mut config = config(sim);
    change(&mut config);
    GraphClient::new(config).expect("a valid client configuration")
}

/// Every page of a stream until it ends or fails.
pub struct Collected {
    pub pages: Vec<Page>,
    pub error: Option<FetchError>,
}

impl Collected {
    pub fn ok(self) -> Collected {
        if let Some(error) = &self.error {
            panic!("the round failed: {error}");
        }
        self
    }

    /// Every item as sent, in order, replays included.
    pub fn items(&self) -> Vec<String> {
        self.pages
            .iter()
            .flat_map(|p| p.iter().map(str::to_string))
            .collect()
    }

    /// The distinct items as sent.
    pub fn distinct(&self) -> BTreeSet<String> {
        self.items().into_iter().collect()
    }

    /// The items as sent, checking none came twice (for simulators without replays).
    pub fn exact(&self) -> BTreeSet<String> {
        let items = self.items();
        let distinct: BTreeSet<String> = items.iter().cloned().collect();
        assert_eq!(items.len(), distinct.len(), "no item was returned twice");
        distinct
    }

    pub fn values(&self) -> Vec<serde_json::Value> {
        self.items()
            .iter()
            .map(|i| serde_json::from_str(i).expect("items are JSON"))
            .collect()
    }

    pub fn ids(&self) -> BTreeSet<String> {
        self.values()
            .iter()
            .map(|v| v["id"].as_str().expect("items have ids").to_string())
            .collect()
    }

    pub fn delta_link(&self) -> String {
        let last = self.pages.last().expect("at least one page");
        last.link
            .delta()
            .map(str::to_string)
            .expect("the last page of a delta round has a deltaLink")
    }
}

pub async fn collect(stream: impl Stream<Item = Result<Page, FetchError>>) -> Collected {
    let mut stream = std::pin::pin!(stream);
    let mut pages = Vec::new();
    while let Some(next) = stream.next().await {
        match next {
            Ok(page) => pages.push(page),
            Err(error) => {
                assert!(
                    stream.next().await.is_none(),
                    "a stream ends after its error"
                );
                return Collected {
                    pages,
                    error: Some(error),
                };
            }
        }
    }
    Collected { pages, error: None }
}

pub async fn round(client: &GraphClient, scope: &Scope, start: RoundStart) -> Collected {
    collect(client.round(scope, start)).await
}

/// The next round of `scope`, from the deltaLink that `previous` ended with; it must succeed.
pub async fn next_round(client: &GraphClient, scope: &Scope, previous: &Collected) -> Collected {
    let link = previous.delta_link();
    round(client, scope, RoundStart::Resume { link }).await.ok()
}

/// A getAllMessages window over all history before `to`.
pub fn window_until(to: chrono::DateTime<chrono::Utc>, page_size: u32) -> RoundStart {
    RoundStart::Window {
        from: None,
        to,
        page_size,
    }
}

pub fn initial(page_size: u32) -> RoundStart {
    RoundStart::Initial {
        since: None,
        page_size,
    }
}

pub fn chats_of(user_id: &str) -> Scope {
    Scope::UserChats {
        user_id: user_id.to_string(),
    }
}

/// The chats of each of the tenant's users, in the directory's order.
pub fn every_users_chats(sim: &Sim) -> Vec<Scope> {
    sim.directory()
        .users
        .iter()
        .map(|u| chats_of(&u.id))
        .collect()
}

/// The chat messages the simulator holds for a custodian, as JSON text.
pub fn expected_chats(sim: &Sim, user_id: &str) -> BTreeSet<String> {
    sim.snapshot()
        .chat_messages_of(user_id)
        .into_iter()
        .map(|m| m.json.clone())
        .collect()
}

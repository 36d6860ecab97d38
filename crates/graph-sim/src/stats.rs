//! What the simulator saw: requests per endpoint and status, faults, throttling, replays.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::faults::EndpointKind;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestCount {
    pub endpoint: EndpointKind,
    pub status: u16,
    pub count: u64,
}

/// One throttling bucket: the app, a team, or a mailbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketStats {
    /// `app`, `team:{id}` or `mailbox:{user id}`.
    pub bucket: String,
    pub limit: Option<u32>,
    /// `requests/s` (a sliding one-second window) or `in flight`.
    pub unit: String,
    pub admitted: u64,
    /// 429s this bucket caused.
    pub throttled: u64,
    /// The most requests seen in one window, or in flight at once.
    pub max_observed: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimStats {
    pub requests: Vec<RequestCount>,
    /// 429s sent because a limit was exceeded (not injected faults).
    pub throttled: u64,
    /// Injected faults by kind (`429`, `503`, `status`, `connection-reset`, ...).
    pub faults: BTreeMap<String, u64>,
    /// Items served a second time within a delta round.
    pub replays: u64,
    pub access_tokens_issued: u64,
    pub buckets: Vec<BucketStats>,
    /// Most Graph requests being served at once.
    pub max_in_flight: u32,
    /// Graph requests admitted past auth and throttling.
    pub admitted: u64,
    /// Time from the first to the last admitted Graph request.
    pub admitted_span: Duration,
    /// Requests to pre-authenticated download URLs.
    #[serde(default)]
    pub downloads: u64,
    /// Of those, how many carried an `Authorization` header (a client should send its
    /// token to Graph only).
    #[serde(default)]
    pub downloads_with_authorization: u64,
}

impl SimStats {
    pub fn count(&self, endpoint: EndpointKind, status: u16) -> u64 {
        self.requests
            .iter()
            .filter(|r| r.endpoint == endpoint && r.status == status)
            .map(|r| r.count)
            .sum()
    }

    /// Requests to an endpoint, any status.
    pub fn total(&self, endpoint: EndpointKind) -> u64 {
        self.requests
            .iter()
            .filter(|r| r.endpoint == endpoint)
            .map(|r| r.count)
            .sum()
    }

    /// Requests answered with a status, any endpoint.
    pub fn with_status(&self, status: u16) -> u64 {
        self.requests
            .iter()
            .filter(|r| r.status == status)
            .map(|r| r.count)
            .sum()
    }

    pub fn fault_count(&self, kind: &str) -> u64 {
        self.faults.get(kind).copied().unwrap_or(0)
    }

    pub fn bucket(&self, name: &str) -> Option<&BucketStats> {
        self.buckets.iter().find(|b| b.bucket == name)
    }

    /// Admitted Graph requests per second between the first and the last.
    pub fn admitted_rate(&self) -> f64 {
        let secs = self.admitted_span.as_secs_f64();
        if secs <= 0.0 {
            return 0.0;
        }
        (self.admitted.saturating_sub(1)) as f64 / secs
    }
}

#[derive(Default)]
pub(crate) struct StatsState {
    pub requests: BTreeMap<(EndpointKind, u16), u64>,
    pub throttled: u64,
    pub faults: BTreeMap<String, u64>,
    pub replays: u64,
    pub admitted: u64,
    pub first_admitted: Option<Instant>,
    pub last_admitted: Option<Instant>,
    pub downloads: u64,
    pub downloads_with_authorization: u64,
}

impl StatsState {
    pub(crate) fn record(&mut self, endpoint: EndpointKind, status: u16) {
        *self.requests.entry((endpoint, status)).or_default() += 1;
    }

    pub(crate) fn admitted(&mut self) {
        let now = Instant::now();
        self.admitted += 1;
        self.first_admitted.get_or_insert(now);
        self.last_admitted = Some(now);
    }

    pub(crate) fn fault(&mut self, kind: &str) {
        *self.faults.entry(kind.to_string()).or_default() += 1;
    }
}

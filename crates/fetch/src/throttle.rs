//! Pacing under Graph's limits: the published Teams rate of each request type, 4
//! requests/s per team and 1 per channel whatever URL form names them, requests in flight
//! and per 10 minutes per mailbox, and an app-wide rate that adapts to what the server
//! really allows. Pauses (of a team, a channel or a mailbox) last as long as `Retry-After`
//! asks.
//!
//! The adaptive rate: on a 429 that no narrower limit explains, the client counts the
//! requests Graph answered in the last second (a sliding window refuses once it holds its
//! limit, so that count is the limit) and paces at 90% of it; at most one decrease per
//! second, since requests in flight together meet the same full window. If it was sending
//! far above that (the first second of a run), the window stays full for a while: the app
//! waits out `Retry-After` once instead of collecting a 429 per request. After that it
//! climbs 1% a second, faster the longer Graph stays quiet (doubling every 3 s after 5 s),
//! so it finds a limit raised again and returns to the published ceiling.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use percent_encoding::percent_decode_str;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;

use crate::config::Limits;

const SECOND: Duration = Duration::from_secs(1);

/// The Teams request types with a published per-app-per-tenant limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum RequestClass {
    ChatMessagesExport,
    ChannelMessagesExport,
    ChannelMessage,
    Channels,
    OtherTeamsGet,
}

/// The limits a request counts against, read from its URL. Keys are normalised: the
/// OData key form (`teams('{id}')`) and the path form (`teams/{id}`) name the same team,
/// and percent-escapes are decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Route {
    pub class: Option<RequestClass>,
    pub team: Option<String>,
    /// `{team}/{channel}`.
    pub channel: Option<String>,
    pub mailbox: Option<String>,
}

/// Path segments below the version, with `name('key')` split in two, keys decoded.
pub(crate) fn segments(url: &Url) -> Vec<String> {
    let mut out = Vec::new();
    for raw in url.path_segments().into_iter().flatten() {
        let segment = percent_decode_str(raw).decode_utf8_lossy().into_owned();
        match segment.find("('") {
            Some(open) if open > 0 && segment.ends_with("')") => {
                out.push(segment[..open].to_string());
                out.push(segment[open + 2..segment.len() - 2].replace("''", "'"));
            }
            _ => out.push(segment),
        }
    }
    // The service root may sit below a path prefix (a proxy): start at the version.
    match out
        .iter()
        .position(|s| s.eq_ignore_ascii_case("v1.0") || s.eq_ignore_ascii_case("beta"))
    {
        Some(i) => out.split_off(i + 1),
        None => out,
    }
}

impl Route {
    pub(crate) fn of(url: &Url) -> Route {
        let segments = segments(url);
        let name = |i: usize| segments.get(i).map(|s| s.to_ascii_lowercase());
        let mut route = Route::default();
        match name(0).as_deref() {
            Some("teams") => {
                if let Some(team) = segments.get(1) {
                    route.team = Some(team.clone());
                    route.class = Some(RequestClass::OtherTeamsGet);
                    match (name(2).as_deref(), name(3).as_deref()) {
                        (Some("allchannels" | "channels"), None) => {
                            route.class = Some(RequestClass::Channels);
                        }
                        (Some("channels"), Some("getallmessages" | "allmessages")) => {
                            route.class = Some(RequestClass::ChannelMessagesExport);
                        }
                        (Some("channels"), Some(_)) => {
                            route.channel = Some(format!("{team}/{}", segments[3]));
                            if name(4).as_deref() == Some("messages") {
                                route.class = Some(RequestClass::ChannelMessage);
                            }
                        }
                        _ => {}
                    }
                } else {
                    route.class = Some(RequestClass::OtherTeamsGet);
                }
            }
            Some("users") => {
                let user = segments.get(1);
                match (name(2).as_deref(), name(3).as_deref()) {
                    (Some("mailfolders" | "messages"), _) => route.mailbox = user.cloned(),
                    (Some("chats"), Some("getallmessages" | "allmessages")) => {
                        route.class = Some(RequestClass::ChatMessagesExport);
                    }
                    (Some("chats"), _) => route.class = Some(RequestClass::OtherTeamsGet),
                    _ => {}
                }
            }
            _ => {}
        }
        route
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn pacer(per_second: f64, burst: NonZeroU32) -> DefaultDirectRateLimiter {
    RateLimiter::direct(quota(per_second, burst))
}

/// One request every 1/rate seconds, with a small burst so a request that woke late can
/// catch up: at most `burst + rate x T` requests in any T seconds.
fn quota(per_second: f64, burst: NonZeroU32) -> Quota {
    let period = Duration::from_secs_f64(1.0 / per_second.max(0.01));
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

/// The burst a per-second limit affords: a quarter of the room between the limit and the
/// pace, at least one; the rest absorbs network and scheduling jitter.
fn burst(limit: u32, headroom: f64) -> NonZeroU32 {
    let room = f64::from(limit) * (1.0 - headroom) / 4.0;
    NonZeroU32::new(room.floor() as u32).unwrap_or(NonZeroU32::MIN)
}

/// The app-wide rate: down to what the server answered in the last second on a 429 the
/// narrower limits do not explain, up again gradually while Graph is quiet. One schedule
/// of send slots whose spacing changes in place, so a change of rate never lets two
/// schedules run side by side.
struct AdaptiveRate {
    ceiling: f64,
    floor: f64,
    /// Slots a request that woke late may catch up on.
    burst: f64,
    state: Mutex<RateState>,
}

struct RateState {
    current: f64,
    /// The next free send slot.
    next_slot: Instant,
    /// When the rate last went down (the start of the current quiet spell).
    decreased_at: Option<Instant>,
    increased_at: Instant,
    /// Requests Graph answered (not with 429) in the last second.
    answered: VecDeque<Instant>,
}

impl AdaptiveRate {
    fn new(ceiling: f64, burst: NonZeroU32) -> Self {
        let now = Instant::now();
        AdaptiveRate {
            ceiling,
            floor: (ceiling * 0.02).max(0.5),
            burst: f64::from(burst.get()),
            state: Mutex::new(RateState {
                current: ceiling,
                next_slot: now,
                decreased_at: None,
                increased_at: now,
                answered: VecDeque::new(),
            }),
        }
    }

    /// Take the next send slot and wait for it.
    async fn until_ready(&self) {
        let at = {
            let now = Instant::now();
            let mut state = lock(&self.state);
            let interval = Duration::from_secs_f64(1.0 / state.current);
            let catch_up = interval.mul_f64((self.burst - 1.0).max(0.0));
            let earliest = now.checked_sub(catch_up).unwrap_or(now);
            let at = state.next_slot.max(earliest);
            state.next_slot = at + interval;
            at
        };
        if at > Instant::now() {
            tokio::time::sleep_until(at.into()).await;
        }
    }

    fn set(&self, state: &mut RateState, rate: f64) {
        state.current = rate.clamp(self.floor, self.ceiling);
    }

    /// Lower the rate after a 429; true if the client was sending far above what Graph
    /// allowed (so Graph's window stays full for a while).
    fn throttled(&self) -> bool {
        let now = Instant::now();
        let mut state = lock(&self.state);
        if state
            .decreased_at
            .is_some_and(|at| now.duration_since(at) < SECOND)
        {
            return false;
        }
        while state
            .answered
            .front()
            .is_some_and(|&t| now.duration_since(t) >= SECOND)
        {
            state.answered.pop_front();
        }
        let answered = state.answered.len() as f64;
        let overshoot = answered >= 2.0 && state.current > 1.5 * answered;
        let lowered = if answered >= 2.0 {
            (answered * 0.9).min(state.current)
        } else {
            state.current * 0.5
        };
        tracing::info!(
            from = state.current,
            to = lowered.max(self.floor),
            answered_last_second = answered,
            "Graph throttled the app; pacing at what it allowed"
        );
        self.set(&mut state, lowered);
        state.decreased_at = Some(now);
        state.increased_at = now;
        overshoot
    }

    fn answered(&self) {
        let now = Instant::now();
        let mut state = lock(&self.state);
        state.answered.push_back(now);
        while state
            .answered
            .front()
            .is_some_and(|&t| now.duration_since(t) >= SECOND)
        {
            state.answered.pop_front();
        }
        if state.current >= self.ceiling || now.duration_since(state.increased_at) < SECOND {
            return;
        }
        let quiet = state
            .decreased_at
            .map(|at| now.duration_since(at).as_secs_f64())
            .unwrap_or(f64::MAX);
        let doublings = ((quiet - 5.0) / 3.0).floor().clamp(0.0, 16.0);
        let step = (state.current * 0.01).max(0.25) * 2f64.powf(doublings);
        let raised = state.current + step;
        self.set(&mut state, raised);
        state.increased_at = now;
    }

    fn current(&self) -> f64 {
        lock(&self.state).current
    }
}

/// Requests sent in the last second on a key, to tell whether a 429 is that key's own.
#[derive(Default)]
struct Recent(HashMap<String, VecDeque<Instant>>);

impl Recent {
    fn record(&mut self, key: &str, now: Instant) {
        let sent = self.0.entry(key.to_string()).or_default();
        sent.push_back(now);
        while sent
            .front()
            .is_some_and(|&t| now.duration_since(t) >= SECOND)
        {
            sent.pop_front();
        }
    }

    fn count(&self, key: &str, now: Instant) -> usize {
        self.0
            .get(key)
            .map(|sent| {
                sent.iter()
                    .filter(|&&t| now.duration_since(t) < SECOND)
                    .count()
            })
            .unwrap_or(0)
    }
}

pub(crate) struct Throttle {
    app: AdaptiveRate,
    classes: HashMap<RequestClass, DefaultDirectRateLimiter>,
    teams: DefaultKeyedRateLimiter<String>,
    channels: DefaultKeyedRateLimiter<String>,
    mailbox_rates: DefaultKeyedRateLimiter<String>,
    mailboxes: Mutex<HashMap<String, Arc<Semaphore>>>,
    mailbox_concurrency: usize,
    team_limit: u32,
    channel_limit: u32,
    in_flight: Arc<Semaphore>,
    paused: Mutex<HashMap<String, Instant>>,
    recent: Mutex<Recent>,
}

/// Held while a request is in flight.
pub(crate) struct Permit {
    _in_flight: Option<OwnedSemaphorePermit>,
    _mailbox: Option<OwnedSemaphorePermit>,
}

fn team_key(team: &str) -> String {
    format!("team:{team}")
}

fn channel_key(channel: &str) -> String {
    format!("channel:{channel}")
}

fn mailbox_key(mailbox: &str) -> String {
    format!("mailbox:{mailbox}")
}

const APP: &str = "app";

impl Throttle {
    pub(crate) fn new(limits: &Limits) -> Self {
        let headroom = limits.headroom.clamp(0.1, 1.0);
        let rate = |limit: u32| (f64::from(limit.max(1)) * headroom, burst(limit, headroom));
        let types = &limits.request_types;
        let classes = [
            (RequestClass::ChatMessagesExport, types.chat_messages_export),
            (
                RequestClass::ChannelMessagesExport,
                types.channel_messages_export,
            ),
            (RequestClass::ChannelMessage, types.channel_message),
            (RequestClass::Channels, types.channels),
            (RequestClass::OtherTeamsGet, types.other_teams_get),
        ]
        .into_iter()
        .map(|(class, limit)| {
            let (per_second, burst) = rate(limit);
            (class, pacer(per_second, burst))
        })
        .collect();
        let (app, app_burst) = rate(limits.requests_per_second);
        let (team, team_burst) = rate(limits.team_requests_per_second);
        let (channel, channel_burst) = rate(limits.channel_requests_per_second);
        // Ten minutes' worth: pace at the headroom's share of the average, with the rest
        // as a burst, so that no 10-minute window holds more than the limit.
        let per_ten_minutes = f64::from(limits.mailbox_requests_per_ten_minutes.max(1));
        let mailbox_burst = NonZeroU32::new((per_ten_minutes * (1.0 - headroom)).floor() as u32)
            .unwrap_or(NonZeroU32::MIN);
        Throttle {
            app: AdaptiveRate::new(app, app_burst),
            classes,
            teams: RateLimiter::keyed(quota(team, team_burst)),
            channels: RateLimiter::keyed(quota(channel, channel_burst)),
            mailbox_rates: RateLimiter::keyed(quota(
                per_ten_minutes * headroom / 600.0,
                mailbox_burst,
            )),
            mailboxes: Mutex::new(HashMap::new()),
            mailbox_concurrency: limits.mailbox_concurrency.max(1) as usize,
            team_limit: limits.team_requests_per_second.max(1),
            channel_limit: limits.channel_requests_per_second.max(1),
            in_flight: Arc::new(Semaphore::new(limits.max_concurrency.max(1) as usize)),
            paused: Mutex::new(HashMap::new()),
            recent: Mutex::new(Recent::default()),
        }
    }

    /// Wait until the request may go: pauses over, channel, team and mailbox pace, mailbox
    /// and global slots, request type and app pace (in that order, so no slot is held while
    /// waiting on a team).
    pub(crate) async fn acquire(&self, route: &Route) -> Permit {
        let mut keys = vec![APP.to_string()];
        keys.extend(route.team.as_deref().map(team_key));
        keys.extend(route.channel.as_deref().map(channel_key));
        keys.extend(route.mailbox.as_deref().map(mailbox_key));
        self.wait_out_pauses(&keys).await;
        if let Some(channel) = &route.channel {
            self.channels.until_key_ready(channel).await;
        }
        if let Some(team) = &route.team {
            self.teams.until_key_ready(team).await;
        }
        let mailbox = match &route.mailbox {
            Some(mailbox) => {
                self.mailbox_rates.until_key_ready(mailbox).await;
                let semaphore = lock(&self.mailboxes)
                    .entry(mailbox.clone())
                    .or_insert_with(|| Arc::new(Semaphore::new(self.mailbox_concurrency)))
                    .clone();
                semaphore.acquire_owned().await.ok()
            }
            None => None,
        };
        // The semaphores are never closed, so acquiring always succeeds.
        let in_flight = self.in_flight.clone().acquire_owned().await.ok();
        if let Some(class) = route.class
            && let Some(pacer) = self.classes.get(&class)
        {
            pacer.until_ready().await;
        }
        self.app.until_ready().await;
        // A 429 may have paused a key while this request waited its turn.
        self.wait_out_pauses(&keys).await;
        let now = Instant::now();
        let mut recent = lock(&self.recent);
        for key in &keys[1..] {
            recent.record(key, now);
        }
        Permit {
            _in_flight: in_flight,
            _mailbox: mailbox,
        }
    }

    async fn wait_out_pauses(&self, keys: &[String]) {
        for key in keys {
            loop {
                let until = lock(&self.paused).get(key).copied();
                match until {
                    Some(until) if until > Instant::now() => {
                        tokio::time::sleep_until(until.into()).await
                    }
                    _ => break,
                }
            }
        }
    }

    /// Graph said 429 to a request on this route. If the route's channel or team was at its
    /// published limit in the last second, the 429 is that key's: pause it for
    /// `Retry-After`. Otherwise a wider limit spoke (the request type's or the app's,
    /// possibly lower than published): lower the app-wide rate to what Graph allowed (and
    /// rest the route's mailbox, if any). The request itself waits `Retry-After` before it
    /// is sent again.
    pub(crate) fn throttled(&self, route: &Route, retry_after: Option<Duration>) {
        let now = Instant::now();
        let local = {
            let recent = lock(&self.recent);
            let channel = route
                .channel
                .as_deref()
                .map(channel_key)
                .filter(|k| recent.count(k, now) >= self.channel_limit as usize);
            let team = route
                .team
                .as_deref()
                .map(team_key)
                .filter(|k| recent.count(k, now) >= self.team_limit as usize);
            channel.or(team)
        };
        let mut pause_keys = Vec::new();
        match local {
            Some(key) => pause_keys.push(key),
            None => {
                if self.app.throttled() {
                    pause_keys.push(APP.to_string());
                }
                // The client keeps each mailbox within Outlook's limits itself, so a 429
                // there is most likely a wider limit's; the mailbox rests too.
                pause_keys.extend(route.mailbox.as_deref().map(mailbox_key));
            }
        }
        let Some(pause) = retry_after else {
            return;
        };
        let until = now + pause;
        let mut paused = lock(&self.paused);
        for key in pause_keys {
            let entry = paused.entry(key).or_insert(until);
            *entry = (*entry).max(until);
        }
    }

    /// Graph answered a request (anything but 429).
    pub(crate) fn answered(&self) {
        self.app.answered();
    }

    /// The app-wide rate the client currently aims at.
    pub(crate) fn app_rate(&self) -> f64 {
        self.app.current()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(url: &str) -> Route {
        Route::of(&Url::parse(url).unwrap())
    }

    #[test]
    fn routes_come_from_the_url_path_in_either_key_form() {
        let plain = route("https://g/v1.0/teams/T1/channels/19:c@thread.tacv2/messages/delta");
        assert_eq!(
            plain,
            Route {
                class: Some(RequestClass::ChannelMessage),
                team: Some("T1".into()),
                channel: Some("T1/19:c@thread.tacv2".into()),
                mailbox: None
            }
        );
        assert_eq!(
            route("https://g/v1.0/teams('T1')/channels('19%3Ac%40thread.tacv2')/messages/delta"),
            plain
        );
        let export =
            route("https://proxy/graph/v1.0/teams('T1')/channels/getallMessages?$skiptoken=x");
        assert_eq!(export.team.as_deref(), Some("T1"));
        assert_eq!(export.class, Some(RequestClass::ChannelMessagesExport));
        assert_eq!(export.channel, None);
        let mail = route("https://g/v1.0/users/U1/mailFolders/F/messages/delta?$skiptoken=x");
        assert_eq!(mail.mailbox.as_deref(), Some("U1"));
        assert_eq!(mail.class, None);
        let chats = route("https://g/beta/users/U1/chats/getAllMessages/delta");
        assert_eq!(chats.class, Some(RequestClass::ChatMessagesExport));
        assert_eq!((chats.team, chats.mailbox), (None, None));
    }

    #[tokio::test]
    async fn a_429_nothing_narrower_explains_lowers_the_app_rate_once_per_burst() {
        let throttle = Throttle::new(&Limits {
            requests_per_second: 100,
            headroom: 1.0,
            ..Limits::default()
        });
        throttle.throttled(&Route::default(), Some(Duration::ZERO));
        assert!(
            (throttle.app_rate() - 50.0).abs() < 1e-9,
            "nothing answered yet: halve"
        );
        throttle.throttled(&Route::default(), Some(Duration::ZERO));
        assert!(
            (throttle.app_rate() - 50.0).abs() < 1e-9,
            "one decrease per burst of 429s"
        );
        throttle.answered();
        assert!(
            (throttle.app_rate() - 50.0).abs() < 1e-9,
            "no recovery within a second of a 429"
        );
    }

    #[tokio::test]
    async fn the_app_rate_drops_to_what_graph_answered_in_the_last_second() {
        let throttle = Throttle::new(&Limits {
            requests_per_second: 200,
            headroom: 1.0,
            ..Limits::default()
        });
        for _ in 0..40 {
            throttle.answered();
        }
        throttle.throttled(&Route::default(), None);
        assert!(
            (throttle.app_rate() - 36.0).abs() < 1e-9,
            "{}",
            throttle.app_rate()
        );
    }

    #[tokio::test]
    async fn a_429_on_mail_lowers_the_app_rate_and_rests_the_mailbox() {
        let throttle = Throttle::new(&Limits {
            requests_per_second: 100,
            headroom: 1.0,
            ..Limits::default()
        });
        let mail = route("https://g/v1.0/users/U/mailFolders/F/messages/delta");
        throttle.throttled(&mail, Some(Duration::from_millis(400)));
        assert!((throttle.app_rate() - 50.0).abs() < 1e-9);
        let started = Instant::now();
        drop(throttle.acquire(&mail).await);
        assert!(started.elapsed() >= Duration::from_millis(390));
    }

    #[tokio::test]
    async fn a_throttled_team_at_its_limit_waits_out_its_retry_after() {
        let throttle = Throttle::new(&Limits {
            team_requests_per_second: 1,
            ..Limits::default()
        });
        let team = route("https://g/v1.0/teams('T')/allChannels");
        drop(throttle.acquire(&team).await);
        throttle.throttled(&team, Some(Duration::from_secs(2)));
        assert!(
            (throttle.app_rate() - 190.0).abs() < 1e-9,
            "the team's own limit: the app keeps its pace"
        );
        let started = Instant::now();
        let _permit = throttle
            .acquire(&route("https://g/v1.0/teams/T/allChannels"))
            .await;
        // Longer than the team's pace (about a second): the pause held it.
        assert!(started.elapsed() >= Duration::from_millis(1900));
    }
}

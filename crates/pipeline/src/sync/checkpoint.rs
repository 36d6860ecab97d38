//! Where a scope stands between runs, and how it moves: a state machine whose every
//! transition is a pure function of the state and what a page (or Graph) said. The
//! checkpoint is saved in the state location only after the rows it covers are durable;
//! it holds Graph's links, so it never goes anywhere else.

use chrono::{DateTime, Duration, Utc};
use fetch::PageLink;
use serde::{Deserialize, Serialize};

/// How far before the last archived change a resync (or the delta round after a
/// backfill window) starts, so that changes whose timestamps arrive out of order are not
/// missed. What comes twice is dropped by the version index.
pub const RESYNC_OVERLAP: Duration = Duration::hours(1);

/// The next step of a scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// A backfill by time window (messages last modified in `(from, to)`), part-way
    /// at `next_link` if given. Chats with `--since`, chat resyncs, channel history.
    Window {
        from: Option<DateTime<Utc>>,
        to: DateTime<Utc>,
        next_link: Option<String>,
    },
    /// A delta round to start, with changes after `since` (all Graph offers when none).
    DeltaStart { since: Option<DateTime<Utc>> },
    /// A delta round part-way: the nextLink to continue from, and when the round began.
    DeltaNext {
        link: String,
        round_started_at: DateTime<Utc>,
    },
    /// A delta round complete: the deltaLink the next round starts from, and when the
    /// completed round began (the changes it covers were made before then).
    DeltaDone {
        link: String,
        round_started_at: DateTime<Utc>,
    },
    /// Nothing more to read: a source without delta rounds (a team's history) whose
    /// window is complete.
    Done,
}

/// What a scope's checkpoint holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeCheckpoint {
    pub phase: Phase,
    /// The latest lastModifiedDateTime archived for this scope: where a resync starts.
    pub watermark: Option<DateTime<Utc>>,
    /// Resyncs this scope has needed, for `status`.
    pub resyncs: u32,
    /// The run that saved it.
    pub run_id: String,
    pub saved_at: DateTime<Utc>,
    /// When the scope last finished a round with everything archived.
    pub last_success: Option<DateTime<Utc>>,
}

/// How a kind of source moves: what follows a complete window, and how it starts again
/// when Graph has forgotten its delta state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// A complete window hands over to delta rounds (else the scope is done).
    pub has_delta: bool,
    pub resync: Resync,
}

/// How a source starts again when Graph has forgotten its delta state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resync {
    /// Backfill by time window from shortly before the watermark, then a new delta
    /// round (chats: getAllMessages takes a lastModifiedDateTime filter).
    Window,
    /// A new delta round with changes after shortly before the watermark (channels).
    DeltaSince,
    /// A new delta round over everything (mail: its delta filters only on
    /// receivedDateTime, which an old message changed during the gap keeps).
    FullDelta,
}

/// What happened that moves a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A page's rows were handed to the writer; it carried this link.
    Page(&'a PageLink),
    /// Graph no longer knows the round's state (410 Gone, `syncStateNotFound`).
    ResyncRequired,
}

/// What the scope does after a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The current round goes on (its stream has more pages).
    Continue,
    /// The current round is over; start a new one from the new phase.
    NewRound,
    /// The scope is up to date for this run.
    Done,
}

/// The times a transition depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub now: DateTime<Utc>,
    /// When the run began: a round that began earlier (resumed from a previous run) is
    /// followed by another, so that a run that ends well has every change made before it
    /// started.
    pub run_started: DateTime<Utc>,
    /// When the current round began.
    pub round_started: DateTime<Utc>,
}

/// A transition that cannot be: the page contradicts the round.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Impossible(pub &'static str);

impl ScopeCheckpoint {
    /// The checkpoint of a scope that has none yet.
    pub fn first(phase: Phase, now: DateTime<Utc>) -> Self {
        ScopeCheckpoint {
            phase,
            watermark: None,
            resyncs: 0,
            run_id: String::new(),
            saved_at: now,
            last_success: None,
        }
    }

    /// When a round started from this state began: a round resumed mid-way began when
    /// it was first started; any other begins now.
    pub fn round_started(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match &self.phase {
            Phase::DeltaNext {
                round_started_at, ..
            } => *round_started_at,
            // A window part-way covers changes up to `to`, when it was planned.
            Phase::Window {
                to,
                next_link: Some(_),
                ..
            } => *to,
            _ => now,
        }
    }

    /// The state after `event`, and what the scope does next. `watermark` is the
    /// latest change handed over with the page's rows.
    pub fn next(
        &self,
        event: Event<'_>,
        rules: Rules,
        clock: &Clock,
    ) -> Result<(ScopeCheckpoint, Step), Impossible> {
        let mut next = self.clone();
        next.saved_at = clock.now;
        let step = match (event, &self.phase) {
            (Event::ResyncRequired, _) => {
                let from = self.watermark.map(|w| w - RESYNC_OVERLAP);
                next.resyncs += 1;
                next.phase = match rules.resync {
                    Resync::Window => Phase::Window {
                        from,
                        to: clock.now,
                        next_link: None,
                    },
                    Resync::DeltaSince => Phase::DeltaStart { since: from },
                    Resync::FullDelta => Phase::DeltaStart { since: None },
                };
                Step::NewRound
            }
            (_, Phase::Done) => {
                return Err(Impossible(
                    "a page for a scope that has nothing more to read",
                ));
            }
            (Event::Page(PageLink::Next(link)), Phase::Window { from, to, .. }) => {
                next.phase = Phase::Window {
                    from: *from,
                    to: *to,
                    next_link: Some(link.to_string()),
                };
                Step::Continue
            }
            (Event::Page(PageLink::Last | PageLink::Delta(_)), Phase::Window { to, .. }) => {
                if rules.has_delta {
                    // Everything up to `to` is in; a delta round takes over from there.
                    next.phase = Phase::DeltaStart {
                        since: Some(*to - RESYNC_OVERLAP),
                    };
                    Step::NewRound
                } else {
                    next.phase = Phase::Done;
                    next.last_success = Some(*to);
                    Step::Done
                }
            }
            (Event::Page(PageLink::Next(link)), _) => {
                next.phase = Phase::DeltaNext {
                    link: link.to_string(),
                    round_started_at: clock.round_started,
                };
                Step::Continue
            }
            (Event::Page(PageLink::Delta(link)), _) => {
                next.phase = Phase::DeltaDone {
                    link: link.to_string(),
                    round_started_at: clock.round_started,
                };
                if clock.round_started < clock.run_started {
                    // The round began in an earlier run: changes made between then and
                    // this run's start come with one more round.
                    Step::NewRound
                } else {
                    next.last_success = Some(clock.round_started);
                    Step::Done
                }
            }
            (Event::Page(PageLink::Last), _) => {
                return Err(Impossible(
                    "a delta page with neither @odata.nextLink nor @odata.deltaLink",
                ));
            }
        };
        Ok((next, step))
    }

    /// A short description without links or tokens.
    pub fn describe(&self) -> String {
        match &self.phase {
            Phase::Window {
                from,
                to,
                next_link,
            } => format!(
                "backfill {} .. {}{}",
                from.map_or("start".into(), |f| f.to_rfc3339()),
                to.to_rfc3339(),
                if next_link.is_some() {
                    ", part-way"
                } else {
                    ""
                }
            ),
            Phase::DeltaStart { since } => format!(
                "delta round to start{}",
                since.map_or(String::new(), |s| format!(" after {}", s.to_rfc3339()))
            ),
            Phase::DeltaNext { .. } => "delta round part-way (next link saved)".into(),
            Phase::DeltaDone { .. } => "up to date (delta link saved)".into(),
            Phase::Done => "complete (nothing more to read)".into(),
        }
    }

    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a checkpoint is plain data")
    }

    pub fn from_value(value: serde_json::Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn clock() -> Clock {
        Clock {
            now: t("2024-06-01T12:00:00Z"),
            run_started: t("2024-06-01T11:00:00Z"),
            round_started: t("2024-06-01T11:30:00Z"),
        }
    }

    fn at(phase: Phase, watermark: Option<DateTime<Utc>>) -> ScopeCheckpoint {
        ScopeCheckpoint {
            phase,
            watermark,
            resyncs: 0,
            run_id: "r".into(),
            saved_at: t("2024-05-01T00:00:00Z"),
            last_success: None,
        }
    }

    const CHATS: Rules = Rules {
        has_delta: true,
        resync: Resync::Window,
    };

    fn step(
        from: Phase,
        event: Event<'_>,
        clock: &Clock,
    ) -> Result<(ScopeCheckpoint, Step), Impossible> {
        at(from, None).next(event, CHATS, clock)
    }

    #[test]
    fn a_window_of_a_source_without_delta_ends_the_scope() {
        let c = clock();
        let window = Phase::Window {
            from: None,
            to: c.run_started,
            next_link: None,
        };
        let history = Rules {
            has_delta: false,
            resync: Resync::Window,
        };
        let (next, s) = at(window, None)
            .next(Event::Page(&PageLink::Last), history, &c)
            .unwrap();
        assert_eq!((next.phase.clone(), s), (Phase::Done, Step::Done));
        assert_eq!(next.last_success, Some(c.run_started));
        assert!(
            next.next(Event::Page(&PageLink::Last), history, &c)
                .is_err()
        );
        assert_eq!(next.describe(), "complete (nothing more to read)");
    }

    #[test]
    fn a_window_goes_page_by_page_then_hands_over_to_a_delta_round() {
        let c = clock();
        let window = Phase::Window {
            from: None,
            to: c.run_started,
            next_link: None,
        };
        let (next, s) = step(
            window.clone(),
            Event::Page(&PageLink::Next("n1".into())),
            &c,
        )
        .unwrap();
        assert_eq!(s, Step::Continue);
        assert_eq!(
            next.phase,
            Phase::Window {
                from: None,
                to: c.run_started,
                next_link: Some("n1".into())
            }
        );
        for last in [PageLink::Last, PageLink::Delta("d".into())] {
            let (next, s) = step(window.clone(), Event::Page(&last), &c).unwrap();
            assert_eq!(s, Step::NewRound);
            assert_eq!(
                next.phase,
                Phase::DeltaStart {
                    since: Some(c.run_started - RESYNC_OVERLAP)
                }
            );
        }
    }

    #[test]
    fn a_delta_round_saves_next_links_then_its_delta_link() {
        let c = clock();
        for from in [
            Phase::DeltaStart { since: None },
            Phase::DeltaDone {
                link: "d0".into(),
                round_started_at: c.run_started,
            },
        ] {
            let (next, s) = step(from, Event::Page(&PageLink::Next("n1".into())), &c).unwrap();
            assert_eq!(s, Step::Continue);
            assert_eq!(
                next.phase,
                Phase::DeltaNext {
                    link: "n1".into(),
                    round_started_at: c.round_started
                }
            );
            let (done, s) = next
                .next(Event::Page(&PageLink::Delta("d1".into())), CHATS, &c)
                .unwrap();
            assert_eq!(s, Step::Done);
            assert_eq!(
                done.phase,
                Phase::DeltaDone {
                    link: "d1".into(),
                    round_started_at: c.round_started
                }
            );
            assert_eq!(done.last_success, Some(c.round_started));
            assert_eq!(done.saved_at, c.now);
        }
    }

    #[test]
    fn a_round_begun_in_an_earlier_run_is_followed_by_another() {
        let mut c = clock();
        let resumed = at(
            Phase::DeltaNext {
                link: "n".into(),
                round_started_at: t("2024-05-31T11:00:00Z"),
            },
            None,
        );
        c.round_started = resumed.round_started(c.now);
        assert_eq!(c.round_started, t("2024-05-31T11:00:00Z"));
        let (done, s) = resumed
            .next(Event::Page(&PageLink::Delta("d".into())), CHATS, &c)
            .unwrap();
        assert_eq!(s, Step::NewRound);
        assert_eq!(done.last_success, None);
        // The next round starts now.
        assert_eq!(done.round_started(c.now), c.now);
    }

    #[test]
    fn a_delta_page_without_links_is_impossible() {
        let c = clock();
        assert!(
            step(
                Phase::DeltaStart { since: None },
                Event::Page(&PageLink::Last),
                &c
            )
            .is_err()
        );
    }

    #[test]
    fn resyncs_restart_before_the_watermark_by_the_source_s_rule() {
        let c = clock();
        let w = t("2024-05-01T10:00:00Z");
        let cp = at(
            Phase::DeltaNext {
                link: "n".into(),
                round_started_at: c.run_started,
            },
            Some(w),
        );
        let expect = [
            (
                Resync::Window,
                Phase::Window {
                    from: Some(w - RESYNC_OVERLAP),
                    to: c.now,
                    next_link: None,
                },
            ),
            (
                Resync::DeltaSince,
                Phase::DeltaStart {
                    since: Some(w - RESYNC_OVERLAP),
                },
            ),
            (Resync::FullDelta, Phase::DeltaStart { since: None }),
        ];
        for (rule, phase) in expect {
            let rules = Rules {
                has_delta: true,
                resync: rule,
            };
            let (next, s) = cp.next(Event::ResyncRequired, rules, &c).unwrap();
            assert_eq!((next.phase, s, next.resyncs), (phase, Step::NewRound, 1));
            assert_eq!(next.watermark, Some(w));
        }
        // Nothing archived yet: all history again.
        let (next, _) = at(Phase::DeltaStart { since: None }, None)
            .next(
                Event::ResyncRequired,
                Rules {
                    has_delta: true,
                    resync: Resync::DeltaSince,
                },
                &c,
            )
            .unwrap();
        assert_eq!(next.phase, Phase::DeltaStart { since: None });
    }

    #[test]
    fn checkpoints_survive_a_round_trip_and_descriptions_never_show_links() {
        let cp = at(
            Phase::DeltaDone {
                link: "https://graph/x?$deltatoken=secret".into(),
                round_started_at: t("2024-05-01T00:00:00Z"),
            },
            Some(t("2024-05-01T00:00:00Z")),
        );
        assert_eq!(ScopeCheckpoint::from_value(cp.to_value()).unwrap(), cp);
        assert!(!cp.describe().contains("secret"));
        assert_eq!(cp.describe(), "up to date (delta link saved)");
    }
}

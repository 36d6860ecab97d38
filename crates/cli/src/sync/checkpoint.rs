//! Where a scope stands between runs. Saved in the state store only after the data
//! it covers is durable; it holds Graph's links, so it never goes anywhere else.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How far before the last archived change a resync starts, so that changes whose
/// timestamps arrive out of order are not missed (the index drops what comes twice).
pub const RESYNC_OVERLAP: Duration = Duration::hours(1);

/// The next step of a scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Backfill by time window (getAllMessages, lastModifiedDateTime in (from, to)):
    /// `--since` first runs and resyncs of chats. `next_link` is where it stopped.
    Window {
        from: Option<DateTime<Utc>>,
        to: DateTime<Utc>,
        next_link: Option<String>,
    },
    /// A delta round to start, with changes after `since` (all history when none).
    DeltaStart { since: Option<DateTime<Utc>> },
    /// A delta round under way (`link` is a nextLink) or done (a deltaLink).
    Delta { link: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeCheckpoint {
    pub phase: Phase,
    /// The latest lastModifiedDateTime archived for this scope: where a resync starts.
    pub watermark: Option<DateTime<Utc>>,
    /// Resyncs this scope has needed, for the status display.
    #[serde(default)]
    pub resyncs: u32,
    pub run_id: String,
    pub saved_at: DateTime<Utc>,
}

impl ScopeCheckpoint {
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a checkpoint is plain data")
    }

    pub fn from_value(value: serde_json::Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(value)
    }

    /// Graph has forgotten this scope's delta state (410 Gone, syncStateNotFound):
    /// start again from shortly before the last archived change. `window` says whether
    /// the source can backfill by time window (chats can; channels and mail start a
    /// new delta round instead).
    pub fn resync(&self, now: DateTime<Utc>, window: bool) -> Phase {
        let from = self.watermark.map(|w| w - RESYNC_OVERLAP);
        if window {
            Phase::Window {
                from,
                to: now,
                next_link: None,
            }
        } else {
            Phase::DeltaStart { since: from }
        }
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
            Phase::Delta { link } => {
                if link.contains("deltatoken") || link.contains("deltaToken") {
                    "up to date (delta link saved)".into()
                } else {
                    "delta round part-way (next link saved)".into()
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(watermark: Option<DateTime<Utc>>) -> ScopeCheckpoint {
        ScopeCheckpoint {
            phase: Phase::Delta {
                link: "https://graph/x?$deltatoken=secret".into(),
            },
            watermark,
            resyncs: 0,
            run_id: "r".into(),
            saved_at: Utc::now(),
        }
    }

    #[test]
    fn a_checkpoint_survives_a_round_trip() {
        let cp = checkpoint(Some(Utc::now()));
        assert_eq!(ScopeCheckpoint::from_value(cp.to_value()).unwrap(), cp);
    }

    #[test]
    fn resync_starts_before_the_watermark() {
        let w: DateTime<Utc> = "2024-05-01T10:00:00Z".parse().unwrap();
        let now: DateTime<Utc> = "2024-06-01T00:00:00Z".parse().unwrap();
        let cp = checkpoint(Some(w));
        assert_eq!(
            cp.resync(now, true),
            Phase::Window {
                from: Some(w - RESYNC_OVERLAP),
                to: now,
                next_link: None
            }
        );
        assert_eq!(
            cp.resync(now, false),
            Phase::DeltaStart {
                since: Some(w - RESYNC_OVERLAP)
            }
        );
        // Nothing archived yet: all history again.
        assert_eq!(
            checkpoint(None).resync(now, false),
            Phase::DeltaStart { since: None }
        );
    }

    #[test]
    fn descriptions_never_show_links() {
        let text = checkpoint(None).describe();
        assert!(!text.contains("secret"), "{text}");
    }
}

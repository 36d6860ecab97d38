//! Timestamps the way Graph writes them.

use chrono::{DateTime, DurationRound, Timelike, Utc};

/// Graph's timestamp text: UTC, millisecond precision with trailing zeros dropped
/// (`2024-02-14T22:07:36.26Z`, `2024-02-14T22:07:36Z`).
pub fn graph_time(t: DateTime<Utc>) -> String {
    let ms = t.nanosecond() / 1_000_000 % 1000;
    let base = t.format("%Y-%m-%dT%H:%M:%S");
    if ms == 0 {
        return format!("{base}Z");
    }
    let fraction = format!("{ms:03}");
    format!("{base}.{}Z", fraction.trim_end_matches('0'))
}

/// Millisecond precision, as Graph stores times.
pub(crate) fn to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(chrono::Duration::milliseconds(1))
        .unwrap_or(t)
}

/// A filter operand: `2024-01-01T00:00:00Z`, with or without quotes or fraction.
pub(crate) fn parse_filter_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim().trim_matches('\'');
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn fractions_lose_trailing_zeros_like_graph() {
        let t = Utc.with_ymd_and_hms(2024, 2, 14, 22, 7, 36).unwrap();
        assert_eq!(graph_time(t), "2024-02-14T22:07:36Z");
        let t = t + chrono::Duration::milliseconds(260);
        assert_eq!(graph_time(t), "2024-02-14T22:07:36.26Z");
        let t = t + chrono::Duration::milliseconds(4);
        assert_eq!(graph_time(t), "2024-02-14T22:07:36.264Z");
    }

    #[test]
    fn filter_times_accept_quotes_and_fractions() {
        let t = parse_filter_time("'2024-02-14T22:07:36.5Z'").unwrap();
        assert_eq!(graph_time(t), "2024-02-14T22:07:36.5Z");
        assert!(parse_filter_time("yesterday").is_none());
    }
}

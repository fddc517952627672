//! What the writer does with the answer to one request: a pure function of the answer and the
//! facts of the chunk it carried, so every rule is tested without a runtime or a server (as
//! Vector's `RetryLogic` is). `Run::settle` carries the decision out.
//!
//! Counting what InfluxDB kept: a refused request of several lines is *bisected* unless its
//! answer gives the exact count. InfluxDB 1.x's answer cannot be trusted for that: a field-type
//! conflict inside one batch loses every line with no `dropped=` at all, `dropped=` counts
//! only the first shard that failed, and unparseable lines are listed only when every parsed
//! line was stored (a conflict hides them). Sending the halves again is safe: a line that was
//! stored is the same point when stored again. Each line then ends in a request whose answer
//! is exact (2xx: all stored; one line refused: that line), so `written` is what a
//! `count()` reads back. A budget per batch bounds the extra requests.

use std::time::Duration;

use super::http::{Outcome, Refusal};

/// Extra requests one batch may spend on bisection, per bit of its line count (a batch of
/// 5000 lines: 13 bits, 208 requests, enough to isolate about 8 bad lines among good ones).
pub const PROBES_PER_BIT: u32 = 16;

/// The bisection budget of a batch of `lines` lines.
pub fn probe_budget(lines: u64) -> u32 {
    PROBES_PER_BIT * (u64::BITS - lines.leading_zeros()).max(1)
}

/// What the writer knows about the chunk an answer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub lines: u64,
    /// The request started before the writer created the database (its "not found" is old).
    pub sent_before_db_created: bool,
    /// The writer may create the database (v1, `PERFSINK_CREATE_DATABASE`).
    pub may_create_database: bool,
    /// Extra requests the chunk's batch may still spend on bisection.
    pub probes_left: u32,
}

/// What to do with the chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Never answered: keep it for the close, which spools it or counts it as dropped.
    Keep,
    /// Count `written` lines as stored and `rejected` as refused by the server. `kind` names
    /// the refusal for the log (logged once per kind); `exact` is false when the bisection
    /// budget ran out and the server's own count was taken.
    Count {
        written: u64,
        rejected: u64,
        kind: &'static str,
        exact: bool,
        reason: String,
    },
    /// Send it again after a backoff (at least `after`).
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// 413: split it in two and send both halves.
    Split,
    /// Some lines were refused and the answer does not say exactly which: send both halves
    /// again (spending two probes).
    Bisect { reason: String },
    /// Its "database not found" is older than our `CREATE DATABASE`: send it again now.
    Resend,
    /// Create the database, then send it again.
    CreateDatabase,
    /// The database is missing and may not be created: back off and send it again.
    MissingDatabase,
    /// The credentials were refused: stop writing.
    Stop { reason: String },
}

/// The decision for `outcome` on a chunk with `facts`.
pub fn decide(outcome: &Outcome, facts: Facts) -> Decision {
    let n = facts.lines;
    match outcome {
        Outcome::Cancelled => Decision::Keep,
        Outcome::Written => count(n, 0, "written", true, String::new()),
        Outcome::Retry { after, reason } => Decision::Retry {
            after: *after,
            reason: reason.clone(),
        },
        Outcome::TooLarge if n > 1 => Decision::Split,
        Outcome::TooLarge => count(0, n, "413-line", true, "413 a single line too large".into()),
        Outcome::Rejected { refusal, reason } => rejected(refusal, reason, facts),
        Outcome::DatabaseNotFound if facts.sent_before_db_created => Decision::Resend,
        Outcome::DatabaseNotFound if facts.may_create_database => Decision::CreateDatabase,
        Outcome::DatabaseNotFound => Decision::MissingDatabase,
        Outcome::Unauthorized { reason } => Decision::Stop {
            reason: reason.clone(),
        },
    }
}

/// A 4xx refusal of some or all lines of the chunk.
fn rejected(refusal: &Refusal, reason: &str, facts: Facts) -> Decision {
    let n = facts.lines;
    let kind = refusal_kind(reason);
    let exact = |rejected: u64| count(n - rejected, rejected, kind, true, reason.to_string());
    if n <= 1 {
        return exact(n);
    }
    // 1.x lists every unparseable line, and answers so only when all the others were stored
    // (a write error would have replaced the message).
    if refusal.partial
        && refusal.unparsed > 0
        && refusal.unparsed <= n
        && refusal.dropped == Some(0)
    {
        return exact(refusal.unparsed);
    }
    // No line parsed: 1.x answers with the parse errors alone, one per line.
    if !refusal.partial && refusal.unparsed == n {
        return exact(n);
    }
    // A server never drops more lines than it was sent: all of them were refused.
    if refusal.dropped.is_some_and(|d| d >= n) {
        return exact(n);
    }
    if facts.probes_left >= 2 {
        return Decision::Bisect {
            reason: reason.to_string(),
        };
    }
    let rejected = refusal.dropped.unwrap_or(n).max(refusal.unparsed).min(n);
    count(n - rejected, rejected, kind, false, reason.to_string())
}

fn count(written: u64, rejected: u64, kind: &'static str, exact: bool, reason: String) -> Decision {
    Decision::Count {
        written,
        rejected,
        kind,
        exact,
        reason,
    }
}

/// The kind of a refusal, from the server's words, so each kind is logged once.
pub fn refusal_kind(reason: &str) -> &'static str {
    const KINDS: [(&str, &str); 6] = [
        ("field type conflict", "rejected: field type conflict"),
        ("beyond retention", "rejected: beyond retention policy"),
        ("max key length", "rejected: key too long"),
        ("unable to parse", "rejected: unparseable"),
        ("max-values-per-tag", "rejected: limit"),
        ("max series", "rejected: limit"),
    ];
    KINDS
        .iter()
        .find(|(words, _)| reason.contains(words))
        .map_or("rejected", |(_, kind)| kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(lines: u64) -> Facts {
        Facts {
            lines,
            sent_before_db_created: false,
            may_create_database: true,
            probes_left: probe_budget(lines),
        }
    }

    fn refused(dropped: Option<u64>, unparsed: u64, partial: bool, reason: &str) -> Outcome {
        Outcome::Rejected {
            refusal: Refusal {
                dropped,
                unparsed,
                partial,
            },
            reason: reason.into(),
        }
    }

    fn counted(d: Decision) -> (u64, u64, bool) {
        match d {
            Decision::Count {
                written,
                rejected,
                exact,
                ..
            } => (written, rejected, exact),
            other => panic!("not a count: {other:?}"),
        }
    }

    #[test]
    fn success_cancel_retry_and_stop() {
        assert_eq!(counted(decide(&Outcome::Written, facts(7))), (7, 0, true));
        assert_eq!(decide(&Outcome::Cancelled, facts(7)), Decision::Keep);
        let after = Some(Duration::from_secs(3));
        assert_eq!(
            decide(
                &Outcome::Retry {
                    after,
                    reason: "503".into()
                },
                facts(7)
            ),
            Decision::Retry {
                after,
                reason: "503".into()
            }
        );
        assert_eq!(
            decide(
                &Outcome::Unauthorized {
                    reason: "401".into()
                },
                facts(7)
            ),
            Decision::Stop {
                reason: "401".into()
            }
        );
    }

    #[test]
    fn too_large_splits_until_one_line_which_is_refused() {
        assert_eq!(decide(&Outcome::TooLarge, facts(2)), Decision::Split);
        assert_eq!(counted(decide(&Outcome::TooLarge, facts(1))), (0, 1, true));
    }

    #[test]
    fn database_not_found() {
        let mut f = facts(3);
        assert_eq!(
            decide(&Outcome::DatabaseNotFound, f),
            Decision::CreateDatabase
        );
        f.sent_before_db_created = true;
        assert_eq!(decide(&Outcome::DatabaseNotFound, f), Decision::Resend);
        f.sent_before_db_created = false;
        f.may_create_database = false;
        assert_eq!(
            decide(&Outcome::DatabaseNotFound, f),
            Decision::MissingDatabase
        );
    }

    #[test]
    fn a_single_refused_line_is_counted_exactly() {
        let o = refused(
            Some(0),
            0,
            true,
            "partial write: points beyond retention policy",
        );
        assert_eq!(counted(decide(&o, facts(1))), (0, 1, true));
    }

    #[test]
    fn parse_errors_alone_are_trusted() {
        // 1.6.7: `partial write: unable to parse 'm bad': invalid field format dropped=0`.
        let o = refused(Some(0), 2, true, "unable to parse");
        assert_eq!(counted(decide(&o, facts(10))), (8, 2, true));
        // Nothing parsed: one error per line.
        let o = refused(None, 3, false, "unable to parse");
        assert_eq!(counted(decide(&o, facts(3))), (0, 3, true));
    }

    #[test]
    fn untrusted_answers_bisect() {
        // A conflict inside the batch: 1.6.7 says `field type conflict`, nothing more.
        let o = refused(None, 0, false, "field type conflict");
        assert!(matches!(decide(&o, facts(8)), Decision::Bisect { .. }));
        // `dropped=` under-reports (first shard only).
        let o = refused(
            Some(1),
            0,
            true,
            "partial write: field type conflict dropped=1",
        );
        assert!(matches!(decide(&o, facts(8)), Decision::Bisect { .. }));
        // Parse errors among fewer lines than refused: a 2.x that stored nothing.
        let o = refused(None, 1, false, "unable to parse");
        assert!(matches!(decide(&o, facts(8)), Decision::Bisect { .. }));
        // More parse errors than lines cannot be right.
        let o = refused(Some(0), 9, true, "unable to parse");
        assert!(matches!(decide(&o, facts(8)), Decision::Bisect { .. }));
    }

    #[test]
    fn everything_dropped_needs_no_bisection() {
        let o = refused(
            Some(8),
            0,
            true,
            "partial write: field type conflict dropped=8",
        );
        assert_eq!(counted(decide(&o, facts(8))), (0, 8, true));
    }

    #[test]
    fn without_budget_the_servers_count_is_taken_and_marked_inexact() {
        let mut f = facts(8);
        f.probes_left = 1;
        let o = refused(
            Some(3),
            0,
            true,
            "partial write: field type conflict dropped=3",
        );
        assert_eq!(counted(decide(&o, f)), (5, 3, false));
        let o = refused(None, 0, false, "field type conflict");
        assert_eq!(counted(decide(&o, f)), (0, 8, false));
    }

    #[test]
    fn budget_grows_with_the_batch() {
        assert_eq!(probe_budget(1), PROBES_PER_BIT);
        assert_eq!(probe_budget(5000), 13 * PROBES_PER_BIT);
    }

    #[test]
    fn kinds() {
        assert_eq!(
            refusal_kind("400 partial write: field type conflict: input field"),
            "rejected: field type conflict"
        );
        assert_eq!(
            refusal_kind("partial write: points beyond retention policy dropped=1"),
            "rejected: beyond retention policy"
        );
        assert_eq!(
            refusal_kind("unable to parse 'x': bad"),
            "rejected: unparseable"
        );
        assert_eq!(refusal_kind("something else"), "rejected");
    }
}

//! Id-token authorisation rules shared by both versions.

use crate::store::id_tokens::IdTokenRecord;
use crate::store::types::Ts;
use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};
use ocpp::model::AuthorizationStatus;
use ocpp::Version;
use serde_json::{json, Map, Value};

/// The answer to an id token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenDecision {
    /// Status.
    pub status: AuthorizationStatus,
    /// Whether the token is registered at all (2.0.1 answers unknown tokens `Unknown`).
    pub known: bool,
    /// Expiry to report.
    pub expires_at: Option<DateTime<Utc>>,
    /// Parent / group token to report.
    pub parent: Option<String>,
}

/// Decides a token's status at `station` from its record; `concurrent` when it is in another
/// transaction. A station-scoped token (a booking's) is `NotAtThisLocation` at any other
/// station and `NotAtThisTime` outside its window; the version's answer maps those (1.6:
/// `Invalid`).
pub fn decide(record: Option<&IdTokenRecord>, station: &str, now: Ts, concurrent: bool) -> TokenDecision {
    let Some(r) = record else {
        return TokenDecision {
            status: AuthorizationStatus::Invalid,
            known: false,
            expires_at: None,
            parent: None,
        };
    };
    let expired = r.expires_at.is_some_and(|e| e <= now);
    let scoped = r.station_id.is_some();
    let elsewhere = r.station_id.as_deref().is_some_and(|s| s != station);
    let early = r.valid_from.is_some_and(|f| now < f);
    let stored = AuthorizationStatus::parse(&r.status).unwrap_or(AuthorizationStatus::Invalid);
    let status = match stored {
        AuthorizationStatus::Accepted if elsewhere => AuthorizationStatus::NotAtThisLocation,
        // A booking's token past its window is not "expired" for good: the booking may be
        // moved, and the push then opens a new window.
        AuthorizationStatus::Accepted if early || (scoped && expired) => AuthorizationStatus::NotAtThisTime,
        AuthorizationStatus::Accepted if expired => AuthorizationStatus::Expired,
        AuthorizationStatus::Accepted if concurrent => AuthorizationStatus::ConcurrentTx,
        other => other,
    };
    TokenDecision {
        status,
        known: true,
        expires_at: r.expires_at.map(Ts::to_datetime),
        parent: r.parent_id_token.clone(),
    }
}

/// How a transaction start or event checks that its token is not charging elsewhere.
#[derive(Debug, Clone, Copy)]
pub struct ConcurrencyCheck {
    /// The transaction being started or updated (a replay is never concurrent with itself).
    pub except: Option<i64>,
    /// Another transaction counts only if its station was heard from at or after this instant.
    pub heard_since: Ts,
}

impl ConcurrencyCheck {
    /// The check for a start or event received at `now`, with the liveness `window` in effect.
    pub fn new(except: Option<i64>, now: Ts, window: std::time::Duration) -> ConcurrencyCheck {
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        ConcurrencyCheck {
            except,
            heard_since: Ts(now.0.saturating_sub(window_ms)),
        }
    }
}

/// Looks a token up and decides. With `concurrency`, an `Accepted` token that is in another
/// transaction still plausibly going on (see [`Store::live_transaction_of_token`]) is
/// `ConcurrentTx`.
pub async fn authorize(
    store: &Store,
    token: &str,
    station: &str,
    now: Ts,
    concurrency: Option<ConcurrencyCheck>,
) -> Result<TokenDecision, StoreError> {
    let record = store.id_token(token).await?;
    let concurrent = match (&record, concurrency) {
        (Some(_), Some(check)) => store
            .live_transaction_of_token(token, check.except, check.heard_since)
            .await?
            .is_some(),
        _ => false,
    };
    Ok(decide(record.as_ref(), station, now, concurrent))
}

impl TokenDecision {
    /// The 1.6 `idTagInfo` object.
    pub fn id_tag_info(&self) -> Value {
        let mut info = Map::new();
        info.insert("status".into(), json!(self.status.v16().as_str()));
        if let Some(e) = self.expires_at {
            info.insert("expiryDate".into(), json!(super::rfc3339(e)));
        }
        if let Some(p) = &self.parent {
            info.insert("parentIdTag".into(), json!(p));
        }
        Value::Object(info)
    }

    /// The 2.0.1 `idTokenInfo` object.
    pub fn id_token_info(&self) -> Value {
        let status = if self.known { self.status.as_str() } else { "Unknown" };
        let mut info = Map::new();
        info.insert("status".into(), json!(status));
        if let Some(e) = self.expires_at {
            info.insert("cacheExpiryDateTime".into(), json!(super::rfc3339(e)));
        }
        if let Some(p) = &self.parent {
            info.insert("groupIdToken".into(), json!({"idToken": p, "type": "Central"}));
        }
        Value::Object(info)
    }

    /// The version's token-info object.
    pub fn info(&self, version: Version) -> Value {
        match version {
            Version::V16 => self.id_tag_info(),
            Version::V201 => self.id_token_info(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: &str, expires_at: Option<i64>) -> IdTokenRecord {
        IdTokenRecord {
            id_token: "T".into(),
            token_type: "ISO14443".into(),
            status: status.into(),
            expires_at: expires_at.map(Ts),
            parent_id_token: Some("GROUP".into()),
            station_id: None,
            valid_from: None,
            created_at: Ts(0),
            updated_at: Ts(0),
        }
    }

    #[test]
    fn decisions() {
        use AuthorizationStatus::*;
        let now = Ts(1_000);
        let table = [
            (None, false, Invalid, false),
            (Some(record("Accepted", None)), false, Accepted, true),
            (Some(record("Accepted", Some(2_000))), false, Accepted, true),
            (Some(record("Accepted", Some(1_000))), false, Expired, true),
            (Some(record("Accepted", None)), true, ConcurrentTx, true),
            (Some(record("Blocked", None)), true, Blocked, true),
            (Some(record("Expired", None)), false, Expired, true),
            (Some(record("Invalid", None)), false, Invalid, true),
        ];
        for (rec, concurrent, status, known) in table {
            let d = decide(rec.as_ref(), "CP", now, concurrent);
            assert_eq!((d.status, d.known), (status, known), "{rec:?} concurrent={concurrent}");
        }
    }

    #[test]
    fn scoped_tokens_hold_only_at_their_station_inside_their_window() {
        use AuthorizationStatus::*;
        let scoped = IdTokenRecord {
            station_id: Some("CP-1".into()),
            valid_from: Some(Ts(1_000)),
            ..record("Accepted", Some(2_000))
        };
        let at = |station: &str, now: i64, concurrent: bool| decide(Some(&scoped), station, Ts(now), concurrent).status;
        assert_eq!(at("CP-1", 1_000, false), Accepted);
        assert_eq!(at("CP-1", 1_999, false), Accepted);
        assert_eq!(at("CP-1", 1_999, true), ConcurrentTx);
        assert_eq!(at("CP-1", 999, false), NotAtThisTime);
        assert_eq!(at("CP-1", 2_000, false), NotAtThisTime);
        assert_eq!(at("CP-2", 1_500, false), NotAtThisLocation);
        // Location before time: the driver is at the wrong place whatever the hour.
        assert_eq!(at("CP-2", 5_000, false), NotAtThisLocation);
        // 1.6 has neither status.
        let d = decide(Some(&scoped), "CP-2", Ts(1_500), false);
        assert_eq!(d.id_tag_info()["status"], "Invalid");
        assert_eq!(d.id_token_info()["status"], "NotAtThisLocation");
    }

    #[test]
    fn concurrency_counts_stations_heard_within_the_window() {
        let check = ConcurrencyCheck::new(Some(7), Ts(1_000_000), std::time::Duration::from_secs(600));
        assert_eq!((check.except, check.heard_since), (Some(7), Ts(400_000)));
        // A window longer than the epoch does not wrap around.
        let huge = ConcurrencyCheck::new(None, Ts(5), std::time::Duration::from_secs(u64::MAX));
        assert!(huge.heard_since <= Ts(5));
    }

    #[test]
    fn wire_objects() {
        let d = decide(Some(&record("Accepted", Some(2_000))), "CP", Ts(1_000), false);
        assert_eq!(d.id_tag_info()["parentIdTag"], "GROUP");
        assert_eq!(d.id_tag_info()["expiryDate"], "1970-01-01T00:00:02.000Z");
        assert_eq!(d.id_token_info()["groupIdToken"]["idToken"], "GROUP");
        let unknown = decide(None, "CP", Ts(0), false);
        assert_eq!(unknown.id_tag_info()["status"], "Invalid");
        assert_eq!(unknown.id_token_info()["status"], "Unknown");
    }
}

//! The linking rule: a booking station names a charger the central system has seen, and only
//! connectors that charger reported.

use super::store;
use evcs_bus::StationId;
use service_kit::db::{Db, StoreError};

/// Why a station cannot be linked.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Not a central-system station id at all.
    #[error("not a valid central-system station id (1-48 characters of A-Za-z0-9-._~*=:+|@)")]
    InvalidStationId,
    /// A well-formed id of a charger that never reached the central system.
    #[error("the central system has never seen this charger")]
    UnknownCharger,
    /// Connector ids the charger never reported.
    #[error("the charger never reported connector(s) {0:?}")]
    UnknownConnectors(Vec<i64>),
    /// Reading the projection failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks `central_station_id` and `connector_ids` against the projection; returns the parsed id.
pub async fn check(db: &Db, central_station_id: &str, connector_ids: &[i64]) -> Result<StationId, LinkError> {
    let id = StationId::parse(central_station_id).map_err(|_| LinkError::InvalidStationId)?;
    if !store::known(db, id.as_str()).await? {
        return Err(LinkError::UnknownCharger);
    }
    let reported: Vec<i64> = store::connectors(db, id.as_str())
        .await?
        .into_iter()
        .map(|c| c.connector_id)
        .collect();
    let unknown = unreported(connector_ids, &reported);
    if !unknown.is_empty() {
        return Err(LinkError::UnknownConnectors(unknown));
    }
    Ok(id)
}

/// The requested ids missing from `reported`, in request order.
fn unreported(requested: &[i64], reported: &[i64]) -> Vec<i64> {
    requested.iter().copied().filter(|c| !reported.contains(c)).collect()
}

#[cfg(test)]
mod tests {
    use super::unreported;

    #[test]
    fn lists_only_connectors_the_charger_did_not_report() {
        assert_eq!(unreported(&[1, 2, 3], &[1, 3]), vec![2]);
        assert!(unreported(&[1], &[1, 2]).is_empty());
        assert!(unreported(&[], &[]).is_empty());
    }
}

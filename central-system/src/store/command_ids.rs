//! Ids for the commands the central system sends (2.0.1 remote-start ids, reservation ids),
//! allocated from a counter in the database: unique across restarts and nodes, never derived
//! from the clock.

use super::{on_db, Store, StoreError};

/// OCPP ids are 32-bit integers on the wire.
fn to_i32(id: i64) -> Result<i32, StoreError> {
    i32::try_from(id).map_err(|_| {
        StoreError::Database(sqlx::Error::Protocol(format!(
            "command id {id} exhausted the 32-bit range"
        )))
    })
}

impl Store {
    /// The next 2.0.1 `remoteStartId`.
    pub async fn next_remote_start_id(&self) -> Result<i32, StoreError> {
        let id: i64 = on_db!(self.db(), |pool| {
            sqlx::query_scalar(
                "UPDATE command_ids SET last_id = last_id + 1 WHERE kind = 'remote_start' RETURNING last_id",
            )
            .fetch_one(pool)
            .await?
        });
        to_i32(id)
    }

    /// The next reservation id: above both the counter and every id already recorded, since
    /// operators may also choose reservation ids themselves.
    pub async fn next_reservation_id(&self) -> Result<i32, StoreError> {
        let id: i64 = on_db!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            // Locks the counter row first (PostgreSQL: row lock; SQLite: the write lock), so
            // concurrent allocations queue here and each sees the other's result.
            sqlx::query("UPDATE command_ids SET last_id = last_id WHERE kind = 'reservation'")
                .execute(&mut *tx)
                .await?;
            let recorded: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(reservation_id), 0) FROM reservations")
                .fetch_one(&mut *tx)
                .await?;
            let id = sqlx::query_scalar(
                "UPDATE command_ids SET last_id = (CASE WHEN last_id < $1 THEN $1 ELSE last_id END) + 1 \
                 WHERE kind = 'reservation' RETURNING last_id",
            )
            .bind(recorded)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            id
        });
        to_i32(id)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::store::messages::Reservation;
    use crate::store::types::Ts;

    /// SQLite always; PostgreSQL too when `EVCS_TEST_POSTGRES_URL` is set.
    async fn stores() -> Vec<(Store, tempfile::TempDir)> {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ids.db").display());
        let mut out = vec![(Store::connect(&url).await.unwrap(), dir)];
        if let Ok(base) = std::env::var("EVCS_TEST_POSTGRES_URL") {
            if !base.is_empty() {
                let (url, _) = service_kit::test_db::create(&base, "evcs_test").await;
                out.push((Store::connect(&url).await.unwrap(), tempfile::tempdir().unwrap()));
            }
        }
        out
    }

    #[tokio::test]
    async fn ids_are_allocated_in_sequence_and_concurrently_unique() {
        for (store, _dir) in stores().await {
            let backend = store.backend();
            assert_eq!(store.next_remote_start_id().await.unwrap(), 1, "{backend}");
            assert_eq!(store.next_remote_start_id().await.unwrap(), 2, "{backend}");
            let mut tasks = Vec::new();
            for _ in 0..20 {
                let store = store.clone();
                tasks.push(tokio::spawn(async move { store.next_remote_start_id().await.unwrap() }));
            }
            let mut ids = Vec::new();
            for t in tasks {
                ids.push(t.await.unwrap());
            }
            ids.sort_unstable();
            assert_eq!(ids, (3..23).collect::<Vec<_>>(), "{backend}");
        }
    }

    #[tokio::test]
    async fn reservation_ids_skip_the_ones_operators_chose() {
        for (store, _dir) in stores().await {
            let backend = store.backend();
            assert_eq!(store.next_reservation_id().await.unwrap(), 1, "{backend}");
            store.auto_register("CP-R", "Accepted", Ts::now()).await.unwrap();
            let chosen = Reservation {
                reservation_id: 40,
                evse_id: 1,
                id_token: "TAG".into(),
                expires_at: Ts::now(),
                status: "Accepted".into(),
                updated_at: Ts::now(),
            };
            store.upsert_reservation("CP-R", &chosen).await.unwrap();
            assert_eq!(store.next_reservation_id().await.unwrap(), 41, "{backend}");
            assert_eq!(store.next_reservation_id().await.unwrap(), 42, "{backend}");
        }
    }
}

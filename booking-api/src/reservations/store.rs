//! The durable state of a booking on the charger: claims, completions and the changes a
//! booking transition makes. Every claim is a conditional UPDATE of a lease (`*_due_at`): of
//! two replicas that see the same work, one wins and the other moves on.

use crate::bookings::rules::Status;
use service_kit::db::{on_db, on_tx, Db, StoreError, Tx};

/// A token push to make.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenWork {
    pub id: i64,
    pub central_station_id: String,
    pub id_token: Option<String>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub token_push: String,
    pub token_rev: i64,
}

/// A reservation command to send (ReserveNow or CancelReservation).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReservationWork {
    pub id: i64,
    pub owner_id: i64,
    pub station_id: i64,
    pub central_station_id: String,
    pub id_token: Option<String>,
    pub starts_at: i64,
    pub ends_at: i64,
}

/// What a booking's status change asks of the charger side, inside the change's transaction:
/// an Approved booking's token is granted (again, with the new window when `moved`); a booking
/// that no longer holds its slot has its token revoked (if it was ever pushed) and its
/// reservation cancelled (if one was made or may have been), except on completion, when the
/// charger's transaction has used it; a moved booking's old reservation is cancelled too (a new
/// one follows at the new slot's lead time).
pub async fn after_change(tx: &mut Tx, id: i64, to: Status, moved: bool) -> Result<(), sqlx::Error> {
    let holds = matches!(to, Status::Approved | Status::CheckedIn);
    on_tx!(tx, |conn| {
        if to == Status::Approved {
            sqlx::query("UPDATE bookings SET token_push = 'grant', token_rev = token_rev + 1 WHERE id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
        } else if !holds {
            sqlx::query(
                "UPDATE bookings SET token_push = 'revoke', token_rev = token_rev + 1 WHERE id = $1 AND token_rev > 0",
            )
            .bind(id)
            .execute(&mut *conn)
            .await?;
        }
        if moved || (!holds && to != Status::Completed) {
            // 'Reserving': a ReserveNow is in flight and may land; NULL with a status: an
            // earlier attempt timed out and may have landed.
            sqlx::query(
                "UPDATE bookings SET reservation_state = 'Cancel' WHERE id = $1 AND \
                 (reservation_state IN ('Reserving', 'Reserved') \
                  OR (reservation_state IS NULL AND reservation_status IS NOT NULL))",
            )
            .bind(id)
            .execute(&mut *conn)
            .await?;
        }
        Ok::<_, sqlx::Error>(())
    })
}

/// Token pushes due at `now`, oldest booking first.
pub async fn due_tokens(db: &Db, now: i64, limit: i64) -> Result<Vec<TokenWork>, StoreError> {
    Ok(on_db!(db, |pool| {
        sqlx::query_as(
            "SELECT b.id, s.central_station_id, b.id_token, b.starts_at, b.ends_at, b.token_push, b.token_rev \
             FROM bookings b JOIN stations s ON s.id = b.station_id \
             WHERE b.token_push IS NOT NULL AND COALESCE(b.token_due_at, 0) <= $1 ORDER BY b.id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(pool)
        .await
    })?)
}

/// Claims a token push until `lease`; false when another replica has it (or it changed).
pub async fn claim_token(db: &Db, work: &TokenWork, now: i64, lease: i64) -> Result<bool, StoreError> {
    let n = on_db!(db, |pool| {
        sqlx::query(
            "UPDATE bookings SET token_due_at = $4 WHERE id = $1 AND token_rev = $2 AND token_push IS NOT NULL \
             AND COALESCE(token_due_at, 0) <= $3",
        )
        .bind(work.id)
        .bind(work.token_rev)
        .bind(now)
        .bind(lease)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(n == 1)
}

/// Ends a claimed token push: done (`retry_at` None) or due again at `retry_at`. A booking
/// changed since the claim (its `token_rev` moved) only gets its lease released, so the newer
/// push goes out at once.
pub async fn finish_token(
    db: &Db,
    work: &TokenWork,
    lease: i64,
    retry_at: Option<i64>,
    now: i64,
) -> Result<(), StoreError> {
    on_db!(db, |pool| {
        let n = sqlx::query(
            "UPDATE bookings SET token_push = CASE WHEN $3 IS NULL THEN NULL ELSE token_push END, token_due_at = $3 \
             WHERE id = $1 AND token_rev = $2 AND token_due_at = $4",
        )
        .bind(work.id)
        .bind(work.token_rev)
        .bind(retry_at)
        .bind(lease)
        .execute(pool)
        .await?
        .rows_affected();
        if n == 0 {
            sqlx::query("UPDATE bookings SET token_due_at = $2 WHERE id = $1 AND token_due_at = $3")
                .bind(work.id)
                .bind(now)
                .bind(lease)
                .execute(pool)
                .await?;
        }
        Ok::<_, sqlx::Error>(())
    })?;
    Ok(())
}

const WORK_COLUMNS: &str = "b.id, b.owner_id, b.station_id, s.central_station_id, b.id_token, b.starts_at, b.ends_at";

/// Approved bookings whose reservation is due: no reservation yet, the slot starts within
/// `lead_ms` of `now` and has not ended.
pub async fn due_reservations(db: &Db, now: i64, lead_ms: i64, limit: i64) -> Result<Vec<ReservationWork>, StoreError> {
    let sql = format!(
        "SELECT {WORK_COLUMNS} FROM bookings b JOIN stations s ON s.id = b.station_id \
         WHERE b.status = 'Approved' AND b.reservation_state IS NULL AND b.starts_at <= $1 AND b.ends_at > $2 \
         AND COALESCE(b.reservation_due_at, 0) <= $2 ORDER BY b.starts_at, b.id LIMIT $3"
    );
    Ok(on_db!(db, |pool| {
        sqlx::query_as(&sql)
            .bind(now.saturating_add(lead_ms))
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await
    })?)
}

/// Reservations to cancel on the charger, due at `now`.
pub async fn due_cancellations(db: &Db, now: i64, limit: i64) -> Result<Vec<ReservationWork>, StoreError> {
    let sql = format!(
        "SELECT {WORK_COLUMNS} FROM bookings b JOIN stations s ON s.id = b.station_id \
         WHERE b.reservation_state = 'Cancel' AND COALESCE(b.reservation_due_at, 0) <= $1 ORDER BY b.id LIMIT $2"
    );
    Ok(on_db!(db, |pool| {
        sqlx::query_as(&sql).bind(now).bind(limit).fetch_all(pool).await
    })?)
}

/// Claims a ReserveNow (state NULL -> 'Reserving', leased until `lease`); false when another
/// replica has it or the booking changed.
pub async fn claim_reserve(db: &Db, id: i64, now: i64, lease: i64) -> Result<bool, StoreError> {
    let n = on_db!(db, |pool| {
        sqlx::query(
            "UPDATE bookings SET reservation_state = 'Reserving', reservation_due_at = $3 \
             WHERE id = $1 AND status = 'Approved' AND reservation_state IS NULL AND COALESCE(reservation_due_at, 0) <= $2",
        )
        .bind(id)
        .bind(now)
        .bind(lease)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(n == 1)
}

/// Claims a CancelReservation until `lease`.
pub async fn claim_cancel(db: &Db, id: i64, now: i64, lease: i64) -> Result<bool, StoreError> {
    let n = on_db!(db, |pool| {
        sqlx::query(
            "UPDATE bookings SET reservation_due_at = $3 \
             WHERE id = $1 AND reservation_state = 'Cancel' AND COALESCE(reservation_due_at, 0) <= $2",
        )
        .bind(id)
        .bind(now)
        .bind(lease)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(n == 1)
}

/// What the reservation is after a command: `state` (NULL to try again at `due_at`), the
/// charger's `status` and the `note`, provided the booking is still as claimed (`expected`
/// state, our `lease`). Otherwise (the booking changed meanwhile, e.g. cancelled while its
/// ReserveNow was in flight) only the lease is released, with the status recorded, so the next
/// step (the CancelReservation) goes out at once. With `reopen`, a booking that is Approved
/// again (it was moved: the new slot gets its own reservation) goes back to no reservation
/// instead of `state`. True when the outcome was applied.
#[allow(clippy::too_many_arguments)]
pub async fn settle(
    tx: &mut Tx,
    id: i64,
    expected: &str,
    lease: i64,
    state: Option<&str>,
    status: &str,
    note: Option<&str>,
    due_at: Option<i64>,
    reopen: bool,
    now: i64,
) -> Result<bool, sqlx::Error> {
    on_tx!(tx, |conn| {
        let n = sqlx::query(
            "UPDATE bookings SET reservation_state = CASE WHEN $8 = 1 AND status = 'Approved' THEN NULL ELSE $4 END, \
             reservation_status = $5, reservation_note = $6, reservation_due_at = $7 \
             WHERE id = $1 AND reservation_state = $2 AND reservation_due_at = $3",
        )
        .bind(id)
        .bind(expected)
        .bind(lease)
        .bind(state)
        .bind(status)
        .bind(note)
        .bind(due_at)
        .bind(i64::from(reopen))
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if n == 0 {
            sqlx::query(
                "UPDATE bookings SET reservation_status = $2, reservation_note = $3, reservation_due_at = $4 \
                 WHERE id = $1 AND reservation_due_at = $5",
            )
            .bind(id)
            .bind(status)
            .bind(note)
            .bind(now)
            .bind(lease)
            .execute(&mut *conn)
            .await?;
        }
        Ok(n == 1)
    })
}

/// Records a reservation status the charger reported (2.0.1 ReservationStatusUpdate) on the
/// booking it names, if that booking is at this charger: `Expired` and `Removed` end the
/// reservation. Returns whether a booking matched.
pub async fn charger_status(
    tx: &mut Tx,
    central_station_id: &str,
    reservation_id: i64,
    status: &str,
) -> Result<bool, sqlx::Error> {
    let n = on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE bookings SET reservation_status = $3, reservation_state = CASE \
               WHEN $3 IN ('Expired', 'Removed') AND reservation_state IN ('Reserving', 'Reserved') THEN 'Ended' \
               ELSE reservation_state END \
             WHERE id = $1 AND station_id IN (SELECT id FROM stations WHERE central_station_id = $2)",
        )
        .bind(reservation_id)
        .bind(central_station_id)
        .bind(status)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(n > 0)
}

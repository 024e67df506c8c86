//! `evcs --demo N` also shows the booking flow: one more simulated charger, `DEMO-BOOKED`
//! (OCPP 2.0.1), linked to a booking station, and a loop that plays an EV owner and the
//! station's staff through the booking API's own HTTP endpoints on loopback: book the next
//! 15-minute slot, approve it, scan the owner's QR check-in token; the charger starts on the
//! connector the booking holds, meters for about a minute, stops; the session and its receipt
//! appear, priced by the demo station's tariff, and the session's invoice is issued. Then again,
//! on the next free slot.
//!
//! The demo accounts (password [`PASSWORD`]) are printed at start, so a newcomer can log in and
//! watch: `GET /api/v1/sessions`, the live socket `/api/v1/live`, `GET /api/v1/bookings`,
//! `GET /api/v1/invoices`.

use anyhow::{bail, Context};
use booking_api::accounts::store as accounts;
use booking_api::accounts::tokens;
use booking_api::app::AppState as BookingState;
use chrono::{DateTime, Utc};
use firmware_sim::charger::{self, Control, Event, Handle};
use firmware_sim::spec::StationSpec;
use ocpp::Version;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The booked charger's station id.
pub const CHARGER: &str = "DEMO-BOOKED";
/// The password of every demo account.
pub const PASSWORD: &str = "demo-password-1";
const BACKOFFICE: &str = "demo-backoffice@evcs.local";
const OPERATOR: &str = "demo-operator@evcs.local";
const OWNER_NIC: &str = "912345678V";
/// How long each booked session charges.
const CHARGE: Duration = Duration::from_secs(60);

/// Starts the booked charger against the central system at `central` and the loop against the
/// booking API at `booking`. Returns the charger (keep it alive).
pub async fn start(state: BookingState, central: SocketAddr, booking: SocketAddr) -> anyhow::Result<Handle> {
    let url = format!("ws://127.0.0.1:{}/ocpp", central.port());
    let mut spec = StationSpec::new(CHARGER, Version::V201, &url);
    spec.timing.meter_interval = 10;
    let (handle, events) = charger::spawn(spec)?;
    let controls = handle.sender();
    tokio::spawn(async move {
        let api = Api {
            addr: SocketAddr::from(([127, 0, 0, 1], booking.port())),
        };
        if let Err(e) = run(&state, &api, controls, events).await {
            tracing::warn!(error = %e, "the booking demo stopped");
        }
    });
    Ok(handle)
}

async fn run(
    state: &BookingState,
    api: &Api,
    controls: tokio::sync::mpsc::UnboundedSender<Control>,
    mut events: tokio::sync::broadcast::Receiver<Event>,
) -> anyhow::Result<()> {
    let admin = admin_token(state).await?;
    let (backoffice, operator, owner, station) = setup(state, api, &admin).await?;
    println!(
        "booking demo: station {station} is linked to {CHARGER}; log in to the booking API as \
         {OWNER_NIC} (owner), {OPERATOR} (operator) or {BACKOFFICE} (BackOffice), password {PASSWORD}"
    );
    loop {
        if state.shutdown.is_cancelled() {
            return Ok(());
        }
        match one_booking(api, &backoffice, &operator, &owner, station, &controls, &mut events).await {
            Ok(id) => tracing::info!(
                booking = id,
                "demo booking charged; see GET /api/v1/bookings/{id}/session"
            ),
            Err(e) => tracing::warn!(error = %e, "a demo booking did not go through; trying the next slot"),
        }
        tokio::select! {
            _ = state.shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(20)) => {}
        }
    }
}

/// An access token of the first admin, issued directly: its password was printed once, on the
/// first start, and the demo must work on later starts too.
async fn admin_token(state: &BookingState) -> anyhow::Result<String> {
    let (admin, _) = accounts::credentials(&state.db, None, Some(&state.config.admin_email))
        .await?
        .context("the first admin account is missing")?;
    let issued = tokens::issue(state, &admin)
        .await
        .map_err(|p| anyhow::anyhow!("issuing the admin's token: {}", p.detail))?;
    Ok(issued.access_token)
}

/// The demo accounts and station, created on the first start and found on later ones.
async fn setup(state: &BookingState, api: &Api, admin: &str) -> anyhow::Result<(String, String, String, i64)> {
    // The station can only be linked once the central system has reported the charger.
    for _ in 0..300 {
        if booking_api::chargers::store::known(&state.db, CHARGER).await? {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let backoffice = match api.login(BACKOFFICE).await {
        Ok(token) => token,
        Err(_) => {
            let app = api
                .call(
                    "POST",
                    "/api/v1/backoffice-applications",
                    None,
                    json!({ "email": BACKOFFICE, "name": "Demo BackOffice", "phone": "+94771234567",
                            "password": PASSWORD, "businessName": "Demo Charging Ltd" }),
                    201,
                )
                .await?;
            api.call(
                "POST",
                &format!("/api/v1/backoffice-applications/{}/approve", app["id"]),
                Some(admin),
                Value::Null,
                200,
            )
            .await?;
            api.login(BACKOFFICE).await?
        }
    };
    let stations = api
        .call("GET", "/api/v1/stations?limit=100", Some(&backoffice), Value::Null, 200)
        .await?;
    let existing = stations["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["centralStationId"] == CHARGER)
        .and_then(|s| s["id"].as_i64());
    let station = match existing {
        Some(id) => id,
        None => {
            let weekly: Vec<Value> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
                .iter()
                .map(|d| json!({ "day": d, "open": "00:00", "close": "24:00" }))
                .collect();
            let id = api
                .call(
                    "POST",
                    "/api/v1/stations",
                    Some(&backoffice),
                    json!({
                        "centralStationId": CHARGER,
                        "name": "Demo Station",
                        "address": "1 Demo Road",
                        "latitude": 6.9271,
                        "longitude": 79.8612,
                        "timeZone": "UTC",
                        "slotMinutes": 15,
                        "autoApprove": false,
                        "connectors": [{ "connectorId": 1, "type": "CCS2", "maxPowerKw": 50 }],
                        "schedule": { "weekly": weekly, "exceptions": [] },
                    }),
                    201,
                )
                .await?["id"]
                .as_i64()
                .context("station id")?;
            // The demo's Admin approves the demo BackOffice's claim of the charger.
            api.call(
                "POST",
                &format!("/api/v1/stations/{id}/claim"),
                Some(admin),
                json!({ "decision": "Approved", "note": "demo" }),
                200,
            )
            .await?;
            // Energy at 70 LKR/kWh with 18 % VAT, so every demo session ends in an invoice.
            let tariff = api
                .call(
                    "POST",
                    "/api/v1/tariffs",
                    Some(&backoffice),
                    json!({ "name": "Demo energy", "tariff": { "currency": "LKR", "elements": [
                        { "price_components": [{ "type": "ENERGY", "price": 70, "vat": 18, "step_size": 1 }] }] } }),
                    201,
                )
                .await?;
            api.call(
                "PUT",
                &format!("/api/v1/stations/{id}/tariff"),
                Some(&backoffice),
                json!({ "tariffId": tariff["id"] }),
                200,
            )
            .await?;
            id
        }
    };
    let operator = match api.login(OPERATOR).await {
        Ok(token) => token,
        Err(_) => {
            api.call(
                "POST",
                "/api/v1/operators",
                Some(&backoffice),
                json!({ "email": OPERATOR, "name": "Demo Operator", "phone": "+94770000002",
                        "password": PASSWORD, "stationIds": [station] }),
                201,
            )
            .await?;
            api.login(OPERATOR).await?
        }
    };
    let owner = match api.login(OWNER_NIC).await {
        Ok(token) => token,
        Err(_) => {
            api.call(
                "POST",
                "/api/v1/owners",
                None,
                json!({ "nic": OWNER_NIC, "name": "Demo Driver", "email": "demo-owner@evcs.local",
                        "phone": "+94770000001", "password": PASSWORD }),
                201,
            )
            .await?;
            api.login(OWNER_NIC).await?
        }
    };
    Ok((backoffice, operator, owner, station))
}

/// Books, approves, checks in and charges one slot; returns the booking id.
async fn one_booking(
    api: &Api,
    backoffice: &str,
    operator: &str,
    owner: &str,
    station: i64,
    controls: &tokio::sync::mpsc::UnboundedSender<Control>,
    events: &mut tokio::sync::broadcast::Receiver<Event>,
) -> anyhow::Result<i64> {
    let slots = api
        .call(
            "GET",
            &format!("/api/v1/stations/{station}/slots?available=true"),
            Some(owner),
            Value::Null,
            200,
        )
        .await?;
    let soon = Utc::now() + chrono::Duration::seconds(5);
    let slot = slots
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["startsAt"].as_str())
        .find(|s| s.parse::<DateTime<Utc>>().is_ok_and(|t| t >= soon))
        .context("no free slot in the next day")?
        .to_string();
    let booking = api
        .call(
            "POST",
            "/api/v1/bookings",
            Some(owner),
            json!({ "stationId": station, "slotStart": slot }),
            201,
        )
        .await?;
    let id = booking["id"].as_i64().context("booking id")?;
    let starts: DateTime<Utc> = slot.parse()?;
    api.call(
        "POST",
        &format!("/api/v1/bookings/{id}/approve"),
        Some(backoffice),
        Value::Null,
        200,
    )
    .await?;
    let token = api
        .call(
            "POST",
            &format!("/api/v1/bookings/{id}/checkin-token"),
            Some(owner),
            Value::Null,
            201,
        )
        .await?["token"]
        .as_str()
        .context("check-in token")?
        .to_string();
    // The driver arrives when check-in opens (15 minutes before the start, by default).
    let opens = starts - chrono::Duration::minutes(14);
    if let Ok(wait) = (opens - Utc::now()).to_std() {
        tokio::time::sleep(wait).await;
    }
    let _ = controls.send(Control::Plug(1));
    let handle = api
        .call(
            "POST",
            "/api/v1/checkin",
            Some(operator),
            json!({ "token": token }),
            200,
        )
        .await?;
    if handle["remoteStart"]["code"] != "ACCEPTED" {
        let _ = controls.send(Control::Unplug(1));
        bail!("the charger did not start: {}", handle["remoteStart"]);
    }
    let started = wait_for(events, |e| matches!(e, Event::TransactionStarted(1, _))).await;
    if !started {
        let _ = controls.send(Control::Unplug(1));
        bail!("the charger never started the booked session");
    }
    tokio::time::sleep(CHARGE).await;
    let _ = controls.send(Control::Stop(1));
    wait_for(events, |e| matches!(e, Event::TransactionEnded(1, _))).await;
    let _ = controls.send(Control::Unplug(1));
    Ok(id)
}

async fn wait_for(events: &mut tokio::sync::broadcast::Receiver<Event>, pred: impl Fn(&Event) -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(e)) if pred(&e) => return true,
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            _ => return false,
        }
    }
}

/// A minimal HTTP/1.0 JSON client for the booking API on loopback: one request per connection,
/// the response delimited by the close (no chunked encoding to undo).
struct Api {
    addr: SocketAddr,
}

impl Api {
    async fn login(&self, identifier: &str) -> anyhow::Result<String> {
        let r = self
            .call(
                "POST",
                "/api/v1/auth/login",
                None,
                json!({ "identifier": identifier, "password": PASSWORD }),
                200,
            )
            .await?;
        Ok(r["accessToken"].as_str().context("access token")?.to_string())
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Value,
        want: u16,
    ) -> anyhow::Result<Value> {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let auth = bearer
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.0\r\nHost: {}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        let mut stream = TcpStream::connect(self.addr).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut raw)).await??;
        let text = String::from_utf8_lossy(&raw);
        let (head, rest) = text.split_once("\r\n\r\n").context("an HTTP response")?;
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("an HTTP status")?;
        let json: Value = serde_json::from_str(rest).unwrap_or_else(|_| Value::String(rest.to_string()));
        if status != want {
            bail!("{method} {path}: {status} {json}");
        }
        Ok(json)
    }
}

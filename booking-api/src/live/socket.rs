//! `GET /api/v1/live`: the WebSocket endpoint.
//!
//! Authentication, with the same access token as the REST API, before the upgrade (401
//! otherwise):
//! - `Authorization: Bearer <token>` (any client that can set headers), or
//! - for browsers, which cannot: `Sec-WebSocket-Protocol: evcs.live.v1, bearer.<token>`; the
//!   server answers with `evcs.live.v1` only. The token is never accepted in the URL
//!   (`?access_token=` is refused with 400 `TOKEN_IN_QUERY`): URLs end up in access logs and
//!   proxies, headers do not.
//!
//! Messages are JSON text frames. First `{"type":"hello","stream":S,"seq":N}` (N: the last
//! sequence number published), then `{"seq":N,"type":"session"|"booking"|"connector"|"alert",
//! "data":{...}}`. A client that reconnects with `?since=N&stream=S` first gets what it missed,
//! or `{"type":"resync","stream":S,"seq":N}`: refetch over REST, then follow from N.
//!
//! Bounds: [`super::MAX_CONNECTIONS_PER_ACCOUNT`] (429 `LIVE_CONNECTION_LIMIT`); a connection
//! more than [`super::SEND_BACKLOG`] messages behind, or whose write does not finish within
//! [`SEND_TIMEOUT`], is closed (code 4008: resume with `since`); inbound messages are capped
//! at [`MAX_INBOUND_BYTES`] (the client has nothing to say but pings and close). The socket
//! closes (4001) when the token expires, and (1001) when the service shuts down.

use super::hub::{Message as Published, Resume};
use super::{Kind, Live};
use crate::api::auth::{Caller, Role};
use crate::app::AppState;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use service_kit::db::{on_db, Db, StoreError};
use service_kit::extract::ApiQuery;
use service_kit::problem::Problem;
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// The subprotocol a browser offers (with `bearer.<token>`), and the one the server selects.
pub const SUBPROTOCOL: &str = "evcs.live.v1";
/// Largest message a client may send.
pub const MAX_INBOUND_BYTES: usize = 4096;
/// A write that takes longer means a reader that does not read: it is dropped.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Pings keep proxies from closing a quiet socket; a staff member's station scope is re-read
/// at the same pace, so a scope taken away stops the messages within this time.
const TICK: Duration = Duration::from_secs(20);
/// Outbound bytes tungstenite may hold for a socket whose writes fail.
const MAX_WRITE_BUFFER: usize = 256 * 1024;

/// Live routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/live", get(upgrade))
}

/// Query of `GET /live`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LiveQuery {
    /// The last sequence number the client saw.
    since: Option<u64>,
    /// The stream that number belongs to (from `hello`).
    stream: Option<String>,
    /// Refused: tokens do not belong in URLs.
    #[serde(rename = "access_token")]
    access_token: Option<String>,
}

/// The token of the request: the Authorization header, else a `bearer.` subprotocol.
fn token(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return v.strip_prefix("Bearer ").map(|t| t.trim().to_string());
    }
    offered(headers)
        .into_iter()
        .find_map(|p| p.strip_prefix("bearer.").map(str::to_string))
}

/// The subprotocols the client offered.
fn offered(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// What one connection may see.
#[derive(Debug)]
struct Viewer {
    caller: Caller,
    /// Token expiry (seconds since the epoch).
    expires: i64,
    /// Staff: the stations in scope now.
    stations: HashSet<i64>,
}

impl Viewer {
    fn sees(&self, m: &Published) -> bool {
        match self.caller.role {
            Role::Admin => true,
            Role::Owner => {
                matches!(m.kind, Kind::Session | Kind::Booking) && m.audience.owner_id == Some(self.caller.id)
            }
            Role::Operator | Role::BackOffice => {
                matches!(m.kind, Kind::Session | Kind::Connector | Kind::Alert)
                    && m.audience.station_id.is_some_and(|s| self.stations.contains(&s))
            }
        }
    }
}

/// The stations an operator is assigned to, or a BackOffice owns; none for other roles.
async fn stations_of(db: &Db, caller: &Caller) -> Result<HashSet<i64>, StoreError> {
    let sql = match caller.role {
        Role::Operator => "SELECT station_id FROM operator_stations WHERE operator_id = $1",
        Role::BackOffice => "SELECT id FROM stations WHERE backoffice_id = $1",
        Role::Admin | Role::Owner => return Ok(HashSet::new()),
    };
    let ids: Vec<i64> = on_db!(db, |pool| sqlx::query_scalar(sql).bind(caller.id).fetch_all(pool).await)?;
    Ok(ids.into_iter().collect())
}

/// `GET /live` (every role): upgrades to the live socket.
async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<ApiQuery<LiveQuery>, Problem>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match prepare(&state, &headers, query, ws).await {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    }
}

async fn prepare(
    state: &AppState,
    headers: &HeaderMap,
    query: Result<ApiQuery<LiveQuery>, Problem>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Problem> {
    let ApiQuery(query) = query?;
    if query.access_token.is_some() {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "TOKEN_IN_QUERY",
            "send the token in the Authorization header, or as the subprotocol bearer.<token> with evcs.live.v1; never in the URL",
        ));
    }
    let ws = ws.map_err(|r| Problem::new(StatusCode::BAD_REQUEST, "NOT_A_WEBSOCKET", r.body_text()))?;
    let protocols = offered(headers);
    if !protocols.is_empty() && !protocols.contains(&SUBPROTOCOL) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "UNSUPPORTED_SUBPROTOCOL",
            format!("offer the subprotocol {SUBPROTOCOL}"),
        ));
    }
    let token = token(headers).ok_or_else(|| service_kit::extract::unauthorized("missing bearer token"))?;
    let (caller, expires) = Caller::from_token(state, &token)?;
    let stations = stations_of(&state.db, &caller).await?;
    let permit = state.live.admit(caller.id).ok_or_else(|| {
        Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "LIVE_CONNECTION_LIMIT",
            format!(
                "at most {} live connections per account",
                super::MAX_CONNECTIONS_PER_ACCOUNT
            ),
        )
    })?;
    let viewer = Viewer {
        caller,
        expires,
        stations,
    };
    let state = state.clone();
    let ws = if protocols.is_empty() {
        ws
    } else {
        ws.protocols([SUBPROTOCOL])
    };
    Ok(ws
        .read_buffer_size(MAX_INBOUND_BYTES)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .max_message_size(MAX_INBOUND_BYTES)
        .max_frame_size(MAX_INBOUND_BYTES)
        .on_upgrade(move |socket| async move {
            let _permit = permit;
            run(socket, state, viewer, query.since, query.stream).await;
        }))
}

/// Why a connection ends.
enum End {
    /// The client left or the connection broke: nothing to send.
    Gone,
    /// Close with this code and reason.
    Close(u16, &'static str),
}

fn frame(json: String) -> Message {
    Message::Text(json.into())
}

async fn send(socket: &mut WebSocket, message: Message) -> Result<(), End> {
    match tokio::time::timeout(SEND_TIMEOUT, socket.send(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Gone),
        Err(_) => Err(End::Gone),
    }
}

async fn run(mut socket: WebSocket, state: AppState, viewer: Viewer, since: Option<u64>, stream: Option<String>) {
    let end = follow(&mut socket, &state, viewer, since, stream).await;
    if let End::Close(code, reason) = end {
        let close = Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        let _ = tokio::time::timeout(SEND_TIMEOUT, socket.send(close)).await;
    }
}

async fn follow(
    socket: &mut WebSocket,
    state: &AppState,
    mut viewer: Viewer,
    since: Option<u64>,
    stream: Option<String>,
) -> End {
    let live: &Live = &state.live;
    let sequencer = live.sequencer();
    let (resume, last, mut receiver) = sequencer.subscribe(since, stream.as_deref());
    let hello = serde_json::json!({ "type": "hello", "stream": sequencer.stream(), "seq": last });
    if let Err(end) = send(socket, frame(hello.to_string())).await {
        return end;
    }
    match resume {
        Resume::Replay(missed) => {
            for m in missed.iter().filter(|m| viewer.sees(m)) {
                if let Err(end) = send(socket, frame(m.json.clone())).await {
                    return end;
                }
            }
        }
        Resume::Resync => {
            let resync = serde_json::json!({ "type": "resync", "stream": sequencer.stream(), "seq": last });
            if let Err(end) = send(socket, frame(resync.to_string())).await {
                return end;
            }
        }
    }
    let mut tick = tokio::time::interval(TICK);
    tick.reset();
    loop {
        if state.clock.now().timestamp() >= viewer.expires {
            return End::Close(4001, "token expired");
        }
        tokio::select! {
            _ = state.shutdown.cancelled() => return End::Close(1001, "shutting down"),
            published = receiver.recv() => match published {
                Ok(m) => {
                    if viewer.sees(&m) {
                        if let Err(end) = send(socket, frame(m.json.clone())).await {
                            return end;
                        }
                    }
                }
                Err(RecvError::Lagged(_)) => return End::Close(4008, "too slow; reconnect with since"),
                Err(RecvError::Closed) => return End::Close(1001, "shutting down"),
            },
            inbound = socket.recv() => match inbound {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return End::Gone,
                // Pings are answered by the library; the client has nothing else to say.
                Some(Ok(_)) => {}
            },
            _ = tick.tick() => {
                if let Err(end) = send(socket, Message::Ping(Vec::new().into())).await {
                    return end;
                }
                match stations_of(&state.db, &viewer.caller).await {
                    Ok(stations) => viewer.stations = stations,
                    Err(e) => tracing::warn!(error = %e, "re-reading a live viewer's scope failed"),
                }
            }
        }
    }
}

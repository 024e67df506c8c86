//! A request id on every request: taken from `X-Request-Id` when the client (or a proxy) sent a
//! sane one, generated otherwise; every log line of the request carries it (a tracing span),
//! and the response returns it.

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use rand::RngCore;
use tracing::Instrument;

/// The header.
pub const HEADER: &str = "x-request-id";

/// The request's id, as a request extension for handlers that want it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn valid(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Middleware (`axum::middleware::from_fn(request_id::layer)`).
pub async fn layer(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| valid(v))
        .map(str::to_string)
        .unwrap_or_else(|| {
            let mut raw = [0u8; 8];
            rand::rng().fill_bytes(&mut raw);
            raw.iter().map(|b| format!("{b:02x}")).collect()
        });
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| request.uri().path().to_string());
    let span = tracing::info_span!("request", id = %id, method = %request.method(), route = %route);
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        let status = response.status();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), "request done");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_sane_ids_are_taken() {
        assert!(super::valid("abc-123_x.y:z"));
        assert!(!super::valid(""));
        assert!(!super::valid("has space"));
        assert!(!super::valid(&"x".repeat(65)));
    }
}

//! Request extractors whose rejections are problems, the body limit, and the 404/405 fallbacks.
//!
//! axum's own extractors answer their rejections in `text/plain`; every handler takes these
//! instead ([`ApiJson`], [`ApiQuery`], [`ApiPath`]), so every error of every route is a problem.

use crate::problem::{FieldError, Problem};
use axum::http::StatusCode;

/// A JSON request body whose errors become 400 problems naming the field
/// (`errors: [{field, code, message}]`).
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Problem> {
        let is_json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"));
        if !is_json {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "send the body as application/json",
            ));
        }
        let ApiBody(bytes) = ApiBody::from_request(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A raw request body (for handlers that parse it themselves), read within the body limit; its
/// rejections are problems (413 over the limit).
#[derive(Debug, Clone)]
pub struct ApiBody(pub axum::body::Bytes);

impl<S> axum::extract::FromRequest<S> for ApiBody
where
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Problem> {
        axum::body::Bytes::from_request(req, state)
            .await
            .map(ApiBody)
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large()
                } else {
                    Problem::validation(format!("could not read the body: {e}"))
                }
            })
    }
}

/// Parses a JSON body; a failure names the field it happened at when there is one.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => {
            de.end()
                .map_err(|e| Problem::validation(format!("invalid request body: {e}")))?;
            Ok(v)
        }
        Err(e) => {
            let inner = e.inner();
            let message = inner.to_string();
            if inner.is_syntax() || inner.is_eof() {
                return Err(Problem::validation(format!("invalid request body: {message}")));
            }
            let path = e.path().to_string();
            let parent = if path == "." { String::new() } else { path };
            let (field, code) = if let Some(name) = backticked(&message, "missing field `") {
                (join(&parent, name), "required")
            } else if let Some(name) = backticked(&message, "unknown field `") {
                // The path already ends at the unknown field.
                let field = if parent.ends_with(name) {
                    parent.clone()
                } else {
                    join(&parent, name)
                };
                (field, "unknown_field")
            } else if parent.is_empty() {
                ("body".to_string(), "invalid_type")
            } else {
                (parent, "invalid_type")
            };
            let message = message.split(" at line ").next().unwrap_or_default().to_string();
            Err(Problem::validation(format!("invalid request body: {field}: {message}"))
                .with_errors(serde_json::to_value(vec![FieldError::new(&field, code, message)]).unwrap_or_default()))
        }
    }
}

fn backticked<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    message.strip_prefix(prefix)?.split('`').next()
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}.{name}")
    }
}

/// Query parameters whose errors become 400 problems (axum's own `Query` answers in plain text).
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _state: &S) -> Result<Self, Problem> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(q)| ApiQuery(q))
            .map_err(|e| Problem::validation(format!("invalid query string: {}", e.body_text())))
    }
}

/// Path parameters whose errors become 400 problems naming the parameter (axum's own `Path`
/// answers a non-numeric id in plain text).
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiPath<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Problem> {
        use axum::extract::path::{ErrorKind, Path};
        use axum::extract::rejection::PathRejection;
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                let message = e.body_text();
                // The parameter's name from the route pattern, so a client sees `id`, not an index.
                let names: Vec<String> = axum::extract::RawPathParams::from_request_parts(parts, state)
                    .await
                    .map(|raw| raw.iter().map(|(name, _)| name.to_string()).collect())
                    .unwrap_or_default();
                let field = match e.kind() {
                    ErrorKind::ParseErrorAtKey { key, .. } | ErrorKind::InvalidUtf8InPathParam { key } => {
                        Some(key.clone())
                    }
                    ErrorKind::ParseErrorAtIndex { index, .. } => names.get(*index).cloned(),
                    ErrorKind::ParseError { .. } if names.len() == 1 => names.first().cloned(),
                    _ => None,
                }
                .map(|name| camel_case(&name))
                .unwrap_or_else(|| "path".to_string());
                Err(
                    Problem::validation(format!("invalid path parameter: {message}")).with_errors(
                        serde_json::to_value(vec![FieldError::new(&field, "invalid_type", message)])
                            .unwrap_or_default(),
                    ),
                )
            }
            // A route whose pattern does not match its handler: a programming error.
            Err(e) => Err(Problem::internal(e.body_text())),
        }
    }
}

/// `station_id` -> `stationId`: route patterns use Rust names, the API camelCase.
fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Default largest request body, in bytes (`--max-body-bytes`).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// The body limit as a layer: extractors that read the body ([`ApiJson`]) stop at `bytes` and
/// answer 413 `PAYLOAD_TOO_LARGE`, before buffering more than that.
pub fn body_limit(bytes: usize) -> axum::extract::DefaultBodyLimit {
    axum::extract::DefaultBodyLimit::max(bytes)
}

/// 413 for a body over the limit.
pub fn too_large() -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
        "the request body is larger than this service accepts",
    )
}

/// The token of `Authorization: Bearer ...`, or the 401 problem (with `WWW-Authenticate`).
pub fn bearer(parts: &axum::http::request::Parts) -> Result<&str, Problem> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or_else(|| unauthorized("a bearer token is required"))
}

/// 401 with `WWW-Authenticate: Bearer`.
pub fn unauthorized(detail: &str) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", detail.to_string())
        .with_header(axum::http::header::WWW_AUTHENTICATE, "Bearer")
}

/// 404 for any unknown path, as a problem.
pub async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint")
}

/// 405 for a known path with another method, as a problem.
pub async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "this endpoint does not accept that method",
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::body::Body as HttpBody;
    use axum::http::Request;
    use axum::routing::{get, post};
    use axum::Router;
    use tower::ServiceExt;

    async fn answer(router: Router, request: Request<HttpBody>) -> (StatusCode, String, serde_json::Value) {
        let response = router.oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, content_type, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    #[tokio::test]
    async fn malformed_path_parameters_are_problems_naming_the_parameter() {
        let router = Router::new().route(
            "/items/{id}",
            get(|ApiPath(id): ApiPath<i64>| async move { id.to_string() }),
        );
        let (status, content_type, body) = answer(
            router.clone(),
            Request::get("/items/abc").body(HttpBody::empty()).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(body["code"], "VALIDATION_FAILED");
        assert_eq!(body["errors"][0]["field"], "id");
        let (status, _, _) = answer(router, Request::get("/items/42").body(HttpBody::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_413_problems() {
        let router = Router::new()
            .route(
                "/echo",
                post(|ApiJson(v): ApiJson<serde_json::Value>| async move { v.to_string() }),
            )
            .layer(body_limit(64));
        let json = |body: String| {
            Request::post("/echo")
                .header("content-type", "application/json")
                .body(HttpBody::from(body))
                .unwrap()
        };
        let (status, content_type, body) = answer(router.clone(), json(format!("\"{}\"", "x".repeat(100)))).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(body["code"], "PAYLOAD_TOO_LARGE");
        let (status, _, _) = answer(router, json("\"small\"".into())).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    fn field_of(json: &str) -> (String, String) {
        let p = parse_json::<Body>(json.as_bytes()).unwrap_err();
        let e = p.errors.unwrap();
        (
            e[0]["field"].as_str().unwrap().into(),
            e[0]["code"].as_str().unwrap().into(),
        )
    }

    #[test]
    fn names_the_field() {
        assert_eq!(field_of(r#"{}"#), ("name".into(), "required".into()));
        assert_eq!(field_of(r#"{"name": 1}"#), ("name".into(), "invalid_type".into()));
        assert_eq!(
            field_of(r#"{"name": "a", "x": 1}"#),
            ("x".into(), "unknown_field".into())
        );
        assert_eq!(
            field_of(r#"{"name": "a", "inner": {}}"#),
            ("inner.count".into(), "required".into())
        );
        assert_eq!(
            field_of(r#"{"name": "a", "inner": {"count": -1}}"#),
            ("inner.count".into(), "invalid_type".into())
        );
        assert_eq!(field_of(r#""text""#), ("body".into(), "invalid_type".into()));
        assert!(parse_json::<Body>(b"{\"name\": ").unwrap_err().errors.is_none());
        assert!(parse_json::<Body>(br#"{"name": "a"} x"#).is_err());
    }
}

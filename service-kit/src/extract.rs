//! Request extractors whose rejections are problems, and the 404/405 fallbacks.

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
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| Problem::validation(format!("could not read the body: {e}")))?;
        parse_json(&bytes).map(ApiJson)
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
    use super::parse_json;

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

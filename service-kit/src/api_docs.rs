//! The API reference page (`{prefix}/docs`): RapiDoc over the service's OpenAPI document, with
//! the viewer script compiled into the binary and served next to the page, so the page works
//! offline and loads nothing from a CDN (see `assets/rapidoc/README.md` for the vendored copy
//! and its licence).

use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;

/// RapiDoc 9.3.8, `dist/rapidoc-min.js` (MIT).
const RAPIDOC_JS: &[u8] = include_bytes!("../assets/rapidoc/rapidoc-min.js");

/// Where the script is served, under the prefix.
const SCRIPT_PATH: &str = "/docs/assets/rapidoc-min.js";

/// The page for `title` whose document lives at `{prefix}/openapi.json`.
pub fn page(title: &str, prefix: &str) -> String {
    // System fonts: RapiDoc's default face would be fetched from a font CDN.
    format!(
        r#"<!doctype html>
<html>
  <head>
    <title>{title}</title>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <script type="module" src="{prefix}{SCRIPT_PATH}"></script>
  </head>
  <body>
    <rapi-doc spec-url="{prefix}/openapi.json" render-style="read" show-header="false"
      allow-server-selection="false" regular-font="system-ui, sans-serif"
      mono-font="ui-monospace, monospace"></rapi-doc>
  </body>
</html>
"#
    )
}

/// `GET /docs` and its script, to be nested under `prefix` (e.g. `/api/v1`).
pub fn router<S: Clone + Send + Sync + 'static>(title: &str, prefix: &str) -> Router<S> {
    let html = page(title, prefix);
    Router::new()
        .route("/docs", get(move || async move { Html(html) }))
        .route(
            SCRIPT_PATH,
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (header::CACHE_CONTROL, "public, max-age=86400"),
                    ],
                    RAPIDOC_JS,
                )
                    .into_response()
            }),
        )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_only_local_urls() {
        let html = page("T", "/api/v1");
        assert!(html.contains(r#"src="/api/v1/docs/assets/rapidoc-min.js""#), "{html}");
        assert!(html.contains(r#"spec-url="/api/v1/openapi.json""#), "{html}");
        assert!(!html.contains("http://") && !html.contains("https://"), "{html}");
        assert!(RAPIDOC_JS.starts_with(b"/*!") && RAPIDOC_JS.len() > 500_000);
    }
}

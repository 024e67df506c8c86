//! Builds an OpenAPI document from derived schemas and a route table kept next to the routers:
//! each operation states the roles it admits, answers problems by default, and names its path
//! parameters.

use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, PathsBuilder, Ref, Required};

/// One documented route: (method, path under the prefix, summary, roles, request schema,
/// response schema). Schemas are names of components in the document (the problem schema is
/// `Problem`).
pub type Route = (
    HttpMethod,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
);

/// `schemas` with the paths of `routes` under `prefix` (e.g. `/api/v1`) and a bearer JWT scheme.
pub fn document(mut doc: OpenApi, prefix: &str, routes: &[Route]) -> OpenApi {
    let mut paths = PathsBuilder::new();
    for (method, path, summary, roles, request, response) in routes {
        let mut op = OperationBuilder::new()
            .summary(Some(*summary))
            .description(Some(format!("Roles: {roles}.")))
            .response(
                "default",
                ResponseBuilder::new().description("Problem").content(
                    "application/problem+json",
                    Content::new(Some(Ref::from_schema_name("Problem"))),
                ),
            );
        if let Some(schema) = response {
            op = op.response(
                "200",
                ResponseBuilder::new()
                    .description("Success")
                    .content("application/json", Content::new(Some(Ref::from_schema_name(*schema)))),
            );
        }
        if let Some(schema) = request {
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .content("application/json", Content::new(Some(Ref::from_schema_name(*schema))))
                    .build(),
            ));
        }
        for segment in path.split('/').filter(|s| s.starts_with('{')) {
            let name = segment.trim_matches(|c| c == '{' || c == '}');
            op = op.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True),
            );
        }
        paths = paths.path(format!("{prefix}{path}"), PathItem::new(method.clone(), op));
    }
    // PathsBuilder merges the operations of items that share a path.
    doc.paths = paths.build();
    if let Some(components) = doc.components.as_mut() {
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
    doc
}

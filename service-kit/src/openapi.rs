//! Builds an OpenAPI document from derived schemas and a route table kept next to the routers:
//! each operation states the roles it admits, answers problems by default, and names and types
//! its path parameters.
//!
//! The document is what the API probe (`scripts/api-probe`, schemathesis) generates requests
//! from and checks answers against, so it must say exactly what the handlers do: a success is
//! `2XX` with the response schema (`201` on creation, `200` on an idempotent replay), or `204`
//! when a route has none; a request body is required; a response named `Page<X>` is a cursor
//! page of `X` and `Vec<X>` a plain array.

use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, PathsBuilder, Ref, RefOr, Required};

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

/// `schemas` with the paths of `routes` under `prefix` (e.g. `/api/v1`) and a bearer JWT scheme;
/// every path parameter is a string.
pub fn document(doc: OpenApi, prefix: &str, routes: &[Route]) -> OpenApi {
    document_with(doc, prefix, routes, &[])
}

/// Like [`document`], with the path parameters named in `integer_params` typed as 64-bit
/// integers (the handler extracts `Path<i64>`).
pub fn document_with(mut doc: OpenApi, prefix: &str, routes: &[Route], integer_params: &[&str]) -> OpenApi {
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
        op = match response {
            Some(schema) => op.response(
                "2XX",
                ResponseBuilder::new()
                    .description("Success")
                    .content("application/json", Content::new(Some(response_schema(schema)))),
            ),
            None => op.response("204", ResponseBuilder::new().description("Done, no content")),
        };
        if let Some(schema) = request {
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .content("application/json", Content::new(Some(Ref::from_schema_name(*schema))))
                    .required(Some(Required::True))
                    .build(),
            ));
        }
        for segment in path.split('/').filter(|s| s.starts_with('{')) {
            let name = segment.trim_matches(|c| c == '{' || c == '}');
            let kind = if integer_params.contains(&name) {
                ObjectBuilder::new().schema_type(Type::Integer).format(Some(
                    utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int64),
                ))
            } else {
                ObjectBuilder::new().schema_type(Type::String)
            };
            op = op.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(kind)),
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

/// The schema a route table names: `X`, `Page<X>` (cursor page) or `Vec<X>` (array).
fn response_schema(name: &str) -> RefOr<Schema> {
    let inner = |wrapper: &str| {
        name.strip_prefix(wrapper)
            .and_then(|rest| rest.strip_prefix('<'))
            .and_then(|rest| rest.strip_suffix('>'))
    };
    if let Some(item) = inner("Page") {
        let next_cursor = ObjectBuilder::new()
            .schema_type(SchemaType::Array(vec![Type::String, Type::Null]))
            .description(Some("Pass as `cursor` for the next page; null on the last"));
        ObjectBuilder::new()
            .property("items", ArrayBuilder::new().items(Ref::from_schema_name(item)))
            .property("nextCursor", next_cursor)
            .required("items")
            .required("nextCursor")
            .into()
    } else if let Some(item) = inner("Vec") {
        ArrayBuilder::new().items(Ref::from_schema_name(item)).into()
    } else {
        Ref::from_schema_name(name).into()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn doc() -> serde_json::Value {
        let routes: &[Route] = &[
            (HttpMethod::Get, "/things", "List", "all", None, Some("Page<Thing>")),
            (
                HttpMethod::Get,
                "/things/{id}/parts/{name}",
                "Parts",
                "all",
                None,
                Some("Vec<Part>"),
            ),
            (
                HttpMethod::Post,
                "/things",
                "Create",
                "all",
                Some("NewThing"),
                Some("Thing"),
            ),
            (HttpMethod::Delete, "/things/{id}", "Delete", "all", None, None),
        ];
        let base = utoipa::openapi::OpenApiBuilder::new().build();
        serde_json::to_value(document_with(base, "/v1", routes, &["id"])).unwrap()
    }

    #[test]
    fn path_parameters_have_types() {
        let d = doc();
        let params = &d["paths"]["/v1/things/{id}/parts/{name}"]["get"]["parameters"];
        assert_eq!(params[0]["name"], "id");
        assert_eq!(params[0]["schema"]["type"], "integer");
        assert_eq!(params[1]["name"], "name");
        assert_eq!(params[1]["schema"]["type"], "string");
    }

    #[test]
    fn responses_and_bodies_say_what_handlers_do() {
        let d = doc();
        let list = &d["paths"]["/v1/things"]["get"]["responses"]["2XX"]["content"]["application/json"]["schema"];
        assert_eq!(
            list["properties"]["items"]["items"]["$ref"],
            "#/components/schemas/Thing"
        );
        assert_eq!(list["required"], serde_json::json!(["items", "nextCursor"]));
        let parts = &d["paths"]["/v1/things/{id}/parts/{name}"]["get"]["responses"]["2XX"]["content"]
            ["application/json"]["schema"];
        assert_eq!(parts["type"], "array");
        let create = &d["paths"]["/v1/things"]["post"];
        assert_eq!(create["requestBody"]["required"], true);
        assert_eq!(
            create["responses"]["2XX"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Thing"
        );
        assert!(d["paths"]["/v1/things/{id}"]["delete"]["responses"]["204"].is_object());
    }
}

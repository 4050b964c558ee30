//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::server::routes;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every route of the API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Aiex API",
        description = "Search code, documentation and the web; research sessions; batch indexing jobs. Errors are `{\"error\":{\"code\",\"message\"}}`. Streams are server-sent events with ids: resume with `Last-Event-ID` or `?after=`."
    ),
    paths(
        routes::search::search,
        routes::search::collections,
        routes::jobs::create,
        routes::jobs::list,
        routes::jobs::get,
        routes::jobs::cancel,
        routes::jobs::events,
        routes::research::create,
        routes::research::get,
        routes::research::cancel,
        routes::research::events,
        routes::research::sessions,
        routes::users::history,
        routes::users::clear_history,
        routes::users::bookmarks,
        routes::users::add_bookmark,
        routes::users::remove_bookmark,
        routes::system::healthz,
        routes::system::readyz,
        routes::system::metrics,
        routes::system::openapi,
    ),
    components(schemas(crate::server::error::ErrorBody, crate::server::error::ErrorDetail)),
    modifiers(&BearerAuth),
    tags(
        (name = "search", description = "Search across sources"),
        (name = "jobs", description = "Batch indexing jobs"),
        (name = "research", description = "Research sessions: a question in, a cited report out"),
        (name = "history", description = "Recent queries and bookmarks, per key"),
        (name = "system", description = "Health, readiness, metrics, this document"),
    )
)]
pub struct ApiDoc;

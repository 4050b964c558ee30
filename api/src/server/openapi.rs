//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

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

/// The `data` of an SSE frame: a JSON object with its `id` (the frame's `id:`) and `type` (the
/// frame's `event:`), and the fields of that type.
fn event_payload(description: &str, types: &[&str], with_time: bool) -> RefOr<Schema> {
    let mut object = ObjectBuilder::new()
        .description(Some(description))
        .property(
            "id",
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::Integer))
                .minimum(Some(0))
                .description(Some("The event id; resume after it with `Last-Event-ID`")),
        )
        .property(
            "type",
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::String))
                .enum_values(Some(types.iter().copied()))
                .description(Some("The event type, also the SSE `event:` field")),
        )
        .required("type");
    if with_time {
        object = object.property(
            "at_ms",
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::Integer))
                .description(Some("Milliseconds since the Unix epoch")),
        );
    }
    RefOr::T(Schema::Object(object.build()))
}

/// The data of a research session's SSE frame.
pub struct ResearchEventPayload;

impl PartialSchema for ResearchEventPayload {
    fn schema() -> RefOr<Schema> {
        event_payload(
            "An event of a research session, as its log stores it; `error` ends a stream early (`shutting_down`: reconnect to resume)",
            &[
                "session_started",
                "resumed",
                "stage_started",
                "stage_completed",
                "stage_skipped",
                "planned",
                "search_started",
                "search_completed",
                "search_failed",
                "page_fetched",
                "page_failed",
                "evidence_selected",
                "synthesis_delta",
                "citations_removed",
                "llm_usage",
                "budget_exhausted",
                "warning",
                "report_ready",
                "cancelled",
                "failed",
                "done",
                "error",
            ],
            true,
        )
    }
}

impl ToSchema for ResearchEventPayload {}

/// The data of an indexing job's SSE frame.
pub struct JobEventPayload;

impl PartialSchema for JobEventPayload {
    fn schema() -> RefOr<Schema> {
        event_payload(
            "An event of an indexing job; `resume` and `error` end a stream early (reconnect with `Last-Event-ID`)",
            &[
                "queued",
                "resumed",
                "item_started",
                "progress",
                "item_finished",
                "item_failed",
                "done",
                "resume",
                "error",
            ],
            false,
        )
    }
}

impl ToSchema for JobEventPayload {}

/// The data of a search's SSE frame.
pub struct SearchEventPayload;

impl PartialSchema for SearchEventPayload {
    fn schema() -> RefOr<Schema> {
        event_payload(
            "An event of a search",
            &[
                "source_started",
                "results",
                "source_failed",
                "merged",
                "done",
                "error",
            ],
            false,
        )
    }
}

impl ToSchema for SearchEventPayload {}

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
        routes::grep::grep,
        routes::jobs::create,
        routes::jobs::list,
        routes::jobs::get,
        routes::jobs::cancel,
        routes::jobs::events,
        routes::research::create,
        routes::research::get,
        routes::research::cancel,
        routes::research::resume,
        routes::research::events,
        routes::research::stream_token,
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
        routes::openai::models,
        routes::openai::chat_completions,
    ),
    components(schemas(
        crate::server::error::ErrorBody,
        crate::server::error::ErrorDetail,
        ResearchEventPayload,
        JobEventPayload,
        SearchEventPayload,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "search", description = "Search across sources"),
        (name = "jobs", description = "Batch indexing jobs"),
        (name = "research", description = "Research sessions: a question in, a cited report out"),
        (name = "history", description = "Recent queries and bookmarks, per key"),
        (name = "system", description = "Health, readiness, metrics, this document"),
        (name = "openai", description = "OpenAI-compatible chat completions over research sessions, for chat UIs"),
    )
)]
pub struct ApiDoc;

//! The web page: `GET /` and its assets under `/ui/{version}/{file}`, all compiled into the
//! binary (`api/web/`). Nothing is loaded from elsewhere: the Content-Security-Policy allows this
//! origin only, and no inline script or style.
//!
//! The assets' URLs carry a version (a hash of their contents), so they are cached for a year
//! as immutable; the page itself is revalidated on every load (`no-cache` with an `ETag`). The
//! page needs no key to load: its scripts ask for one when the API answers 401.

use std::sync::LazyLock;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use crate::server::error::{ApiError, ApiPath};
use crate::server::AppState;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../../web/", $name)),
        }
    };
}

/// Every file under `/ui/`.
static ASSETS: &[Asset] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("search.js", JS),
    asset!("research.js", JS),
    asset!("report.js", JS),
    asset!("markdown.js", JS),
    asset!("graph.js", JS),
    asset!("admin.js", JS),
    asset!("icon.svg", "image/svg+xml"),
];

/// The page's template; `{{ASSETS}}` stands for the assets' versioned folder.
const INDEX: &str = include_str!("../../web/index.html");

/// What every response of the page and its assets carries.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The first 16 hex digits of the hash of every asset's name and contents.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hasher = Sha256::new();
    for asset in ASSETS {
        hasher.update(asset.name.as_bytes());
        hasher.update([0]);
        hasher.update(asset.body);
        hasher.update([0]);
    }
    let digest = hex::encode(hasher.finalize());
    digest[..16].to_string()
});

/// The page with its assets' folder filled in.
static PAGE: LazyLock<String> =
    LazyLock::new(|| INDEX.replace("{{ASSETS}}", &format!("/ui/{}", *VERSION)));

/// The routes of the page (public: the page holds no data, the API it calls checks keys).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(page))
        .route("/ui/{version}/{file}", get(asset))
}

fn secure_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
}

/// Whether `If-None-Match` names `etag` (or `*`).
fn not_modified(request: &HeaderMap, etag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

/// `GET /`: the page, revalidated on each load.
async fn page(request: HeaderMap) -> Response {
    let etag = format!("\"{}\"", *VERSION);
    let mut response = if not_modified(&request, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            PAGE.as_str(),
        )
            .into_response()
    };
    let headers = response.headers_mut();
    secure_headers(headers);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    response
}

/// `GET /ui/{version}/{file}`: an asset of this build, cached for good; another build's or an
/// unknown name is a 404.
async fn asset(ApiPath((version, file)): ApiPath<(String, String)>) -> Result<Response, ApiError> {
    let found = ASSETS.iter().find(|asset| asset.name == file);
    let Some(asset) = found.filter(|_| version == *VERSION) else {
        return Err(ApiError::not_found("not_found", "no such file"));
    };
    let mut response = ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response();
    let headers = response.headers_mut();
    secure_headers(headers);
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_every_script_and_style_by_its_versioned_path() {
        assert!(!PAGE.contains("{{ASSETS}}"));
        let folder = format!("/ui/{}/", *VERSION);
        for name in ["app.css", "app.js", "icon.svg"] {
            assert!(PAGE.contains(&format!("{folder}{name}")), "{name}");
        }
        // No inline script or style: the policy would refuse them.
        assert!(!PAGE.contains("<script>"));
        assert!(!PAGE.contains("<style"));
        assert!(!PAGE.contains("style=\""));
    }

    #[test]
    fn every_module_imported_is_served() {
        for asset in ASSETS.iter().filter(|asset| asset.content_type == JS) {
            let text = std::str::from_utf8(asset.body).expect("utf-8");
            for line in text.lines().filter(|line| line.starts_with("import ")) {
                let name = line
                    .rsplit_once("\"./")
                    .and_then(|(_, rest)| rest.split_once('"'))
                    .map(|(name, _)| name)
                    .unwrap_or_else(|| panic!("{}: {line}", asset.name));
                assert!(
                    ASSETS.iter().any(|served| served.name == name),
                    "{} imports {name}, which is not served",
                    asset.name
                );
            }
        }
    }

    #[test]
    fn the_language_filter_offers_every_language() {
        for language in aiex_indexer::lang::Language::all() {
            let option = format!("<option>{}</option>", language.name());
            assert!(INDEX.contains(&option), "{option}");
        }
    }

    #[test]
    fn etags_match_with_lists_and_weak_tags() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"x\", W/\"abc\""),
        );
        assert!(not_modified(&headers, "\"abc\""));
        assert!(!not_modified(&headers, "\"abd\""));
        assert!(!not_modified(&HeaderMap::new(), "\"abc\""));
    }
}

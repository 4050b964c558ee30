//! URL normalisation for deduplication: the same page reached through `http`/`https`, `www.`, a
//! trailing slash, tracking parameters or a fragment is one result.

/// Query parameters that track clicks and never change the page.
const TRACKING_PARAMS: &[&str] = &[
    "gclid", "fbclid", "msclkid", "dclid", "yclid", "igshid", "mc_cid", "mc_eid", "ref", "ref_src",
    "_hsenc", "_hsmi", "spm", "si",
];

fn is_tracking(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with("utm_") || TRACKING_PARAMS.contains(&lower.as_str())
}

/// Normalises `raw` for comparison. Unparseable input is returned trimmed and lowercased, so it
/// still compares equal to itself.
pub fn normalize_url(raw: &str) -> String {
    let trimmed = raw.trim();
    let Ok(mut url) = url::Url::parse(trimmed) else {
        return trimmed.to_lowercase();
    };
    url.set_fragment(None);
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| !is_tracking(name))
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    pairs.sort();
    let host = url
        .host_str()
        .map(|host| host.trim_start_matches("www.").to_ascii_lowercase())
        .unwrap_or_default();
    let scheme = match url.scheme() {
        "http" | "https" => "https".to_string(),
        other => other.to_string(),
    };
    let port = match (url.port(), scheme.as_str()) {
        (Some(443), "https") | (Some(80), "https") | (None, _) => String::new(),
        (Some(port), _) => format!(":{port}"),
    };
    let mut path = url.path().to_string();
    while path.len() > 1 && path.ends_with('/') {
        path.pop();
    }
    if path == "/" {
        path.clear();
    }
    let mut out = format!("{scheme}://{host}{port}{path}");
    if !pairs.is_empty() {
        let query: Vec<String> = pairs
            .iter()
            .map(|(name, value)| {
                if value.is_empty() {
                    name.clone()
                } else {
                    format!("{name}={value}")
                }
            })
            .collect();
        out.push('?');
        out.push_str(&query.join("&"));
    }
    out
}

/// The host of `raw` without `www.`, lowercased.
pub fn host_of(raw: &str) -> Option<String> {
    url::Url::parse(raw.trim())
        .ok()?
        .host_str()
        .map(|host| host.trim_start_matches("www.").to_ascii_lowercase())
}

/// Whether `host` is `domain` or one of its subdomains.
pub fn host_matches(host: &str, domain: &str) -> bool {
    let domain = domain.trim_start_matches("www.").to_ascii_lowercase();
    host == domain || host.ends_with(&format!(".{domain}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalises_common_variants() {
        let canonical = normalize_url("https://docs.rs/tokio/latest/tokio");
        for variant in [
            "http://docs.rs/tokio/latest/tokio/",
            "https://www.docs.rs/tokio/latest/tokio#runtime",
            "https://DOCS.rs/tokio/latest/tokio?utm_source=x&utm_medium=y",
            "https://docs.rs:443/tokio/latest/tokio/?gclid=abc",
        ] {
            assert_eq!(normalize_url(variant), canonical, "{variant}");
        }
        assert_ne!(
            normalize_url("https://example.com/a?page=2"),
            normalize_url("https://example.com/a?page=3")
        );
        assert_eq!(
            normalize_url("https://example.com/a?b=2&a=1"),
            normalize_url("https://example.com/a?a=1&b=2")
        );
        assert!(host_matches("doc.rust-lang.org", "rust-lang.org"));
        assert!(!host_matches("notrust-lang.org", "rust-lang.org"));
        assert_eq!(
            host_of("https://www.GitHub.com/x").as_deref(),
            Some("github.com")
        );
    }

    fn url_strategy() -> impl Strategy<Value = String> {
        (
            prop_oneof![Just("http"), Just("https")],
            prop_oneof![Just(""), Just("www.")],
            "[a-z]{1,8}\\.(com|org|rs)",
            proptest::collection::vec("[a-z0-9]{1,6}", 0..4),
            proptest::collection::vec(("[a-z]{1,4}", "[a-z0-9]{0,4}"), 0..3),
        )
            .prop_map(|(scheme, www, host, segments, params)| {
                let mut url = format!("{scheme}://{www}{host}/{}", segments.join("/"));
                if !params.is_empty() {
                    let query: Vec<String> =
                        params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    url.push('?');
                    url.push_str(&query.join("&"));
                }
                url
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn idempotent(url in url_strategy()) {
            let once = normalize_url(&url);
            prop_assert_eq!(normalize_url(&once), once.clone());
        }

        #[test]
        fn ignores_decorations(url in url_strategy(), fragment in "[a-z]{0,5}", tracker in "[a-z0-9]{1,5}") {
            let base = normalize_url(&url);
            let separator = if url.contains('?') { '&' } else { '?' };
            let decorated = format!("{url}{separator}utm_source={tracker}#{fragment}");
            prop_assert_eq!(normalize_url(&decorated), base.clone());
            let www = url.replacen("://", "://www.", 1).replacen("://www.www.", "://www.", 1);
            prop_assert_eq!(normalize_url(&www), base);
        }

        #[test]
        fn never_panics(raw in "\\PC{0,40}") {
            let _ = normalize_url(&raw);
            let _ = host_of(&raw);
        }
    }
}

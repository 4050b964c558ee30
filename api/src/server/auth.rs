//! Bearer API keys, hashed at rest (`sha256:<hex>` in the configuration), revocation, and a rate
//! limit per key. Keys are never logged: a caller is known by a short prefix of its key's hash.

use std::collections::HashSet;
use std::num::NonZeroU32;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};

use crate::server::error::ApiError;
use crate::server::AppState;

/// The hash of `key` as the configuration stores it: `sha256:<64 hex digits>`.
pub fn hash_key(key: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(key.as_bytes())))
}

/// Who made a request: the first 16 hex digits of its key's hash, or `local` when the server
/// runs without keys (loopback only).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Caller(pub String);

impl Caller {
    pub fn local() -> Self {
        Caller("local".to_string())
    }
}

/// Accepted and revoked key hashes, and the per-key rate limiter.
pub struct Auth {
    keys: HashSet<String>,
    revoked: HashSet<String>,
    limiter: Option<DefaultKeyedRateLimiter<String>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("keys", &self.keys.len())
            .field("revoked", &self.revoked.len())
            .field("rate_limited", &self.limiter.is_some())
            .finish()
    }
}

impl Auth {
    pub fn from_config(server: &aiex_config::ServerConfig) -> Self {
        let normalise = |hashes: &[String]| -> HashSet<String> {
            hashes
                .iter()
                .map(|hash| hash.to_ascii_lowercase())
                .collect()
        };
        let limiter = NonZeroU32::new(server.requests_per_minute).map(|per_minute| {
            let burst = NonZeroU32::new(server.burst).unwrap_or(NonZeroU32::MIN);
            RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst))
        });
        Auth {
            keys: normalise(&server.api_keys),
            revoked: normalise(&server.revoked_keys),
            limiter,
        }
    }

    /// Whether requests must carry a key.
    pub fn required(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The caller presenting `authorization` (the header's value), or why it is refused.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        if !self.required() {
            return Ok(Caller::local());
        }
        let token = authorization
            .and_then(|value| {
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "missing_api_key",
                    "an api key is required: authorization: bearer <key>",
                )
            })?;
        let hash = hash_key(token);
        if self.revoked.contains(&hash) {
            return Err(ApiError::unauthorized(
                "revoked_api_key",
                "this api key has been revoked",
            ));
        }
        if !self.keys.contains(&hash) {
            return Err(ApiError::unauthorized(
                "invalid_api_key",
                "this api key is not valid",
            ));
        }
        let short = hash.trim_start_matches("sha256:").get(..16).unwrap_or("");
        Ok(Caller(short.to_string()))
    }

    /// Counts one request of `caller`; on refusal, the seconds until it may retry.
    pub fn check_rate(&self, caller: &Caller) -> Result<(), u64> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter.check_key(&caller.0).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    /// Forgets idle keys' limiter state (called now and then).
    pub fn shrink(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// Middleware: authenticates, rate-limits, and puts the [`Caller`] in the request's extensions.
pub async fn require_key(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let caller = match state.auth.authenticate(authorization) {
        Ok(caller) => caller,
        Err(err) => return err.into_response(),
    };
    if let Err(retry_after) = state.auth.check_rate(&caller) {
        return ApiError::rate_limited(retry_after).into_response();
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(keys: &[&str], revoked: &[&str], per_minute: u32) -> aiex_config::ServerConfig {
        aiex_config::ServerConfig {
            api_keys: keys.iter().map(|k| hash_key(k)).collect(),
            revoked_keys: revoked.iter().map(|k| hash_key(k)).collect(),
            requests_per_minute: per_minute,
            burst: 2,
            ..aiex_config::ServerConfig::default()
        }
    }

    #[test]
    fn keys_are_checked_by_hash() {
        let auth = Auth::from_config(&config(&["good", "old"], &["old"], 0));
        assert!(auth.required());
        let code = |header: Option<&str>| auth.authenticate(header).err().map(|e| e.code);
        assert_eq!(code(None), Some("missing_api_key"));
        assert_eq!(code(Some("Basic abc")), Some("missing_api_key"));
        assert_eq!(code(Some("Bearer wrong")), Some("invalid_api_key"));
        assert_eq!(code(Some("Bearer old")), Some("revoked_api_key"));
        let caller = auth.authenticate(Some("bearer good")).expect("valid");
        assert_eq!(caller.0.len(), 16);
        assert!(!caller.0.contains("good"));
    }

    #[test]
    fn without_keys_everyone_is_local() {
        let auth = Auth::from_config(&config(&[], &[], 0));
        assert_eq!(auth.authenticate(None).ok(), Some(Caller::local()));
    }

    #[test]
    fn rate_limit_gives_a_retry_delay() {
        let auth = Auth::from_config(&config(&["k"], &[], 1));
        let caller = Caller("a".into());
        assert!(auth.check_rate(&caller).is_ok());
        assert!(auth.check_rate(&caller).is_ok());
        let retry = auth.check_rate(&caller).expect_err("over the burst");
        assert!((1..=60).contains(&retry), "{retry}");
        assert!(auth.check_rate(&Caller("b".into())).is_ok());
    }

    #[test]
    fn hash_format() {
        let hash = hash_key("secret");
        assert!(hash.starts_with("sha256:"));
        assert_eq!(hash.len(), 7 + 64);
    }
}

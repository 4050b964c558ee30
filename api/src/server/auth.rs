//! Bearer API keys, hashed at rest (`sha256:<hex>` in the configuration), revocation, and a rate
//! limit per key. Keys are never logged: a caller is known by a short prefix of its key's hash.
//!
//! A browser's `EventSource` cannot send headers: an authenticated caller may ask for a stream
//! token ([`Auth::issue_stream_token`]), random and kept in memory for [`STREAM_TOKEN_TTL`], that
//! stands for that caller on one session's events stream only (`?token=`), under the same rate
//! limit.
//!
//! A running `serve` also accepts the local owner token it wrote into its data directory's
//! `server.json` ([`crate::server::server_file`]): the command line of the same data directory
//! sends its work with it. It counts as the `local` caller with every right (in embedded mode
//! its indexing jobs are not confined to `server.allowed_roots`: whoever can read that file can
//! index locally anyway), and like keys it is kept as a hash only.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;
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

/// How long a stream token is accepted.
pub const STREAM_TOKEN_TTL: Duration = Duration::from_secs(300);
/// Most stream tokens alive at once (the oldest are dropped beyond).
const MAX_STREAM_TOKENS: usize = 10_000;

/// What a stream token stands for.
#[derive(Debug, Clone)]
struct StreamGrant {
    session: String,
    caller: Caller,
    expires: Instant,
}

/// Accepted and revoked key hashes, the per-key rate limiter, and live stream tokens.
pub struct Auth {
    keys: HashSet<String>,
    revoked: HashSet<String>,
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    stream_tokens: Mutex<HashMap<String, StreamGrant>>,
    /// The hash of the local owner token, when the server advertises one.
    local_owner: Option<String>,
}

/// Put in a request's extensions when it carries the local owner token.
#[derive(Debug, Clone, Copy)]
pub struct LocalOwner;

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("keys", &self.keys.len())
            .field("revoked", &self.revoked.len())
            .field("rate_limited", &self.limiter.is_some())
            .field("local_owner", &self.local_owner.is_some())
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
            stream_tokens: Mutex::new(HashMap::new()),
            local_owner: None,
        }
    }

    /// Accepts `token` as the local owner's credential (see the module's documentation).
    pub fn with_local_owner(mut self, token: &str) -> Self {
        self.local_owner = Some(hash_key(token));
        self
    }

    /// Whether `authorization` (the header's value) carries the local owner token.
    pub fn is_local_owner(&self, authorization: Option<&str>) -> bool {
        let Some(expected) = &self.local_owner else {
            return false;
        };
        bearer_token(authorization).is_some_and(|token| {
            let hash = hash_key(token);
            // Compared as hashes, byte by byte to the end: no early exit on the first difference.
            hash.len() == expected.len()
                && hash
                    .bytes()
                    .zip(expected.bytes())
                    .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                    == 0
        })
    }

    /// A new token that stands for `caller` on the events stream of `session` for
    /// [`STREAM_TOKEN_TTL`].
    pub fn issue_stream_token(&self, session: &str, caller: &Caller) -> String {
        let token = format!(
            "st_{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let now = Instant::now();
        let mut tokens = self.stream_tokens.lock();
        tokens.retain(|_, grant| grant.expires > now);
        if tokens.len() >= MAX_STREAM_TOKENS {
            if let Some(oldest) = tokens
                .iter()
                .min_by_key(|(_, grant)| grant.expires)
                .map(|(token, _)| token.clone())
            {
                tokens.remove(&oldest);
            }
        }
        tokens.insert(
            token.clone(),
            StreamGrant {
                session: session.to_string(),
                caller: caller.clone(),
                expires: now + STREAM_TOKEN_TTL,
            },
        );
        token
    }

    /// The caller `token` stands for, if it is alive and `path` is the events stream of its
    /// session.
    pub fn stream_token_caller(&self, token: &str, path: &str) -> Option<Caller> {
        let tokens = self.stream_tokens.lock();
        let grant = tokens.get(token)?;
        let expected = format!("/v1/research/{}/events", grant.session);
        (grant.expires > Instant::now() && path == expected).then(|| grant.caller.clone())
    }

    /// Whether requests must carry a key.
    pub fn required(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The caller presenting `authorization` (the header's value), or why it is refused.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        if !self.required() || self.is_local_owner(authorization) {
            return Ok(Caller::local());
        }
        let token = bearer_token(authorization).ok_or_else(|| {
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

/// The token of an `authorization: bearer <token>` header value.
fn bearer_token(authorization: Option<&str>) -> Option<&str> {
    authorization
        .and_then(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|token| !token.is_empty())
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
    let by_token = match (authorization, query_token(request.uri().query())) {
        (None, Some(token)) if state.auth.required() => {
            match state.auth.stream_token_caller(token, request.uri().path()) {
                Some(caller) => Some(caller),
                None => {
                    return ApiError::unauthorized(
                        "invalid_stream_token",
                        "this stream token is not valid for this stream, or has expired",
                    )
                    .into_response()
                }
            }
        }
        _ => None,
    };
    let caller = match by_token.map_or_else(|| state.auth.authenticate(authorization), Ok) {
        Ok(caller) => caller,
        Err(err) => return err.into_response(),
    };
    if let Err(retry_after) = state.auth.check_rate(&caller) {
        return ApiError::rate_limited(retry_after).into_response();
    }
    if state.auth.is_local_owner(authorization) {
        request.extensions_mut().insert(LocalOwner);
    }
    request.extensions_mut().insert(caller.clone());
    let mut response = next.run(request).await;
    // For the access log, which runs outside this layer.
    response.extensions_mut().insert(caller);
    response
}

/// The `token` parameter of a query string.
fn query_token(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .filter(|token| !token.is_empty())
}

/// Requests refused for their key, counted per client address in one-minute windows: an address
/// that used up its failures is refused (429) until its window ends, whatever key it presents,
/// so that keys cannot be guessed at the server's speed.
#[derive(Debug)]
pub struct FailedAuthLimiter {
    per_minute: u32,
    windows: parking_lot::Mutex<HashMap<IpAddr, FailureWindow>>,
}

#[derive(Debug, Clone, Copy)]
struct FailureWindow {
    started: Instant,
    failures: u32,
}

const FAILURE_WINDOW: Duration = Duration::from_secs(60);

impl FailedAuthLimiter {
    /// At most `per_minute` refused requests per address and minute (0: unlimited).
    pub fn new(per_minute: u32) -> Self {
        FailedAuthLimiter {
            per_minute,
            windows: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// The seconds `address` must wait when it used up its failures, else None.
    pub fn blocked(&self, address: IpAddr) -> Option<u64> {
        if self.per_minute == 0 {
            return None;
        }
        let windows = self.windows.lock();
        let window = windows.get(&address)?;
        let elapsed = window.started.elapsed();
        if elapsed >= FAILURE_WINDOW || window.failures < self.per_minute {
            return None;
        }
        let wait = FAILURE_WINDOW - elapsed;
        Some(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
    }

    /// Counts one refused request of `address`.
    pub fn record_failure(&self, address: IpAddr) {
        if self.per_minute == 0 {
            return;
        }
        let mut windows = self.windows.lock();
        let window = windows.entry(address).or_insert(FailureWindow {
            started: Instant::now(),
            failures: 0,
        });
        if window.started.elapsed() >= FAILURE_WINDOW {
            *window = FailureWindow {
                started: Instant::now(),
                failures: 0,
            };
        }
        window.failures = window.failures.saturating_add(1);
    }

    /// Forgets ended windows (called now and then).
    pub fn shrink(&self) {
        self.windows
            .lock()
            .retain(|_, window| window.started.elapsed() < FAILURE_WINDOW);
    }
}

/// Middleware around [`require_key`]: refuses a client address that sent too many requests with
/// a missing, wrong or revoked key, and counts each such refusal. Requests without a known client
/// address (served without a socket) are not counted.
pub async fn limit_failed_keys(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let Some(address) = address else {
        return next.run(request).await;
    };
    if let Some(retry_after) = state.failed_auth.blocked(address) {
        return ApiError {
            message: "too many requests with invalid keys from this address; retry later"
                .to_string(),
            ..ApiError::rate_limited(retry_after)
        }
        .into_response();
    }
    let response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        state.failed_auth.record_failure(address);
    }
    response
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
    fn the_local_owner_token_is_a_full_credential() {
        let token = crate::server::server_file::new_token();
        let auth = Auth::from_config(&config(&["good"], &[], 0)).with_local_owner(&token);
        let bearer = format!("Bearer {token}");
        assert!(auth.is_local_owner(Some(&bearer)));
        assert_eq!(auth.authenticate(Some(&bearer)).ok(), Some(Caller::local()));
        assert!(!auth.is_local_owner(Some("Bearer good")));
        assert!(!auth.is_local_owner(Some(&format!("Bearer {token}x"))));
        assert!(!auth.is_local_owner(None));
        let code = auth
            .authenticate(Some("Bearer lo_guess"))
            .err()
            .map(|e| e.code);
        assert_eq!(code, Some("invalid_api_key"));
        assert!(!format!("{auth:?}").contains(&token));
        let without = Auth::from_config(&config(&[], &[], 0));
        assert!(!without.is_local_owner(Some(&bearer)));
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
    fn stream_tokens_open_one_session_stream_only() {
        let auth = Auth::from_config(&config(&["k"], &[], 0));
        let owner = Caller("abc".into());
        let token = auth.issue_stream_token("s1", &owner);
        assert_eq!(
            auth.stream_token_caller(&token, "/v1/research/s1/events"),
            Some(owner)
        );
        assert_eq!(
            auth.stream_token_caller(&token, "/v1/research/s2/events"),
            None
        );
        assert_eq!(auth.stream_token_caller(&token, "/v1/research/s1"), None);
        assert_eq!(
            auth.stream_token_caller("st_guess", "/v1/research/s1/events"),
            None
        );
        auth.stream_tokens
            .lock()
            .values_mut()
            .for_each(|grant| grant.expires = Instant::now());
        assert_eq!(
            auth.stream_token_caller(&token, "/v1/research/s1/events"),
            None
        );
        assert_eq!(query_token(Some("after=3&token=st_x")), Some("st_x"));
        assert_eq!(query_token(Some("token=")), None);
    }

    #[test]
    fn failed_keys_are_limited_per_address() {
        let limiter = FailedAuthLimiter::new(2);
        let first: IpAddr = "127.0.0.1".parse().expect("ip");
        let second: IpAddr = "127.0.0.2".parse().expect("ip");
        assert_eq!(limiter.blocked(first), None);
        limiter.record_failure(first);
        assert_eq!(limiter.blocked(first), None);
        limiter.record_failure(first);
        let wait = limiter.blocked(first).expect("blocked");
        assert!((1..=60).contains(&wait), "{wait}");
        assert_eq!(limiter.blocked(second), None);
        let unlimited = FailedAuthLimiter::new(0);
        for _ in 0..10 {
            unlimited.record_failure(first);
        }
        assert_eq!(unlimited.blocked(first), None);
    }

    #[test]
    fn hash_format() {
        let hash = hash_key("secret");
        assert!(hash.starts_with("sha256:"));
        assert_eq!(hash.len(), 7 + 64);
    }
}

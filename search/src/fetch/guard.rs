//! The SSRF guard: which URLs and addresses a fetch may reach, a DNS resolver that checks the
//! addresses it hands to the connector (so the address checked is the address connected to:
//! no DNS-rebinding window), a redirect policy that checks every hop, and the HTTP client
//! builder that puts them together.
//!
//! Hosts given as IP literals never reach a resolver (the connector parses them), so they are
//! checked on the URL: by [`NetPolicy::check_url`] before a request and by the redirect policy
//! on every hop. Proxies from the environment are disabled: through a proxy the resolver would
//! only see the proxy's name.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use url::{Host, Url};

use super::ip::{classify_host_name, classify_ip, BlockReason};

/// Which addresses a fetch may reach. The default refuses every non-public address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetPolicy {
    allow_private_hosts: bool,
    allowed_addrs: Vec<IpAddr>,
}

/// A request the guard refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{target}` is not reachable: {reason}")]
pub struct Blocked {
    /// The host, address or URL refused.
    pub target: String,
    /// Why, in words (`loopback address`, `scheme ftp is not http or https`, ...).
    pub reason: String,
}

impl Blocked {
    fn address(target: impl Into<String>, reason: BlockReason) -> Blocked {
        Blocked {
            target: target.into(),
            reason: format!("{reason} address"),
        }
    }
}

impl NetPolicy {
    /// Only public unicast addresses.
    pub fn strict() -> NetPolicy {
        NetPolicy::default()
    }

    /// The policy of `fetch.allow_private_hosts`.
    pub fn from_config(config: &aiex_config::FetchConfig) -> NetPolicy {
        NetPolicy::strict().allow_private_hosts(config.allow_private_hosts)
    }

    /// Also allows loopback, private, shared (CGNAT), unique-local and link-local addresses:
    /// an escape hatch for intranet documentation. Metadata and the other special ranges stay
    /// blocked.
    pub fn allow_private_hosts(mut self, allow: bool) -> NetPolicy {
        self.allow_private_hosts = allow;
        self
    }

    /// Allows exactly `ip` (IPv4-mapped forms included) whatever its range: one intranet host,
    /// or a test server, while every other non-public address stays blocked.
    pub fn allow_addr(mut self, ip: IpAddr) -> NetPolicy {
        let canonical = ip.to_canonical();
        if !self.allowed_addrs.contains(&canonical) {
            self.allowed_addrs.push(canonical);
        }
        self
    }

    /// Whether private networks are allowed.
    pub fn allows_private_hosts(&self) -> bool {
        self.allow_private_hosts
    }

    /// Refuses `ip` unless it is public or allowed.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Blocked> {
        if self.allowed_addrs.contains(&ip.to_canonical()) {
            return Ok(());
        }
        match classify_ip(ip) {
            None => Ok(()),
            Some(reason) if self.allow_private_hosts && reason.is_private_network() => Ok(()),
            Some(reason) => Err(Blocked::address(ip.to_string(), reason)),
        }
    }

    /// Refuses a host name that is blocked before resolution (`localhost`, metadata names).
    pub fn check_host_name(&self, name: &str) -> Result<(), Blocked> {
        match classify_host_name(name) {
            None => Ok(()),
            Some(reason) if self.allow_private_hosts && reason.is_private_network() => Ok(()),
            Some(reason) => Err(Blocked::address(name, reason)),
        }
    }

    /// Refuses `url` when its scheme is not http or https, it has no host, or its host is a
    /// blocked literal address or name. Names are checked again, resolved, by the resolver.
    pub fn check_url(&self, url: &Url) -> Result<(), Blocked> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Blocked {
                target: url.to_string(),
                reason: format!("scheme `{}` is not http or https", url.scheme()),
            });
        }
        match url.host() {
            None => Err(Blocked {
                target: url.to_string(),
                reason: "the URL has no host".to_string(),
            }),
            Some(Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)),
            Some(Host::Domain(name)) => {
                // A domain that is an IP address in disguise (the URL parser normalises the
                // usual forms, this catches what is left) is judged as that address.
                if let Ok(ip) = name.trim_end_matches('.').parse::<IpAddr>() {
                    return self.check_ip(ip);
                }
                self.check_host_name(name)
            }
        }
    }
}

/// A boxed future, as resolvers return.
pub type ResolveFuture = Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;

/// Resolves host names to addresses. The guard wraps one; tests inject their own.
pub trait HostResolver: Send + Sync + 'static {
    /// All addresses of `host` (a name, never an IP literal).
    fn lookup(&self, host: &str) -> ResolveFuture;
}

/// The operating system's resolver (`getaddrinfo` on tokio's blocking pool).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl HostResolver for SystemResolver {
    fn lookup(&self, host: &str) -> ResolveFuture {
        let host = host.to_string();
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|addr| addr.ip()).collect())
        })
    }
}

/// A fixed table of names, for tests and pinned hosts; unknown names fail to resolve.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    hosts: HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    pub fn new() -> StaticResolver {
        StaticResolver::default()
    }

    /// Resolves `host` (case-insensitive) to `addrs`.
    pub fn with(mut self, host: &str, addrs: &[IpAddr]) -> StaticResolver {
        self.hosts.insert(
            host.trim_end_matches('.').to_ascii_lowercase(),
            addrs.to_vec(),
        );
        self
    }
}

impl HostResolver for StaticResolver {
    fn lookup(&self, host: &str) -> ResolveFuture {
        let found = self
            .hosts
            .get(&host.trim_end_matches('.').to_ascii_lowercase())
            .cloned();
        let host = host.to_string();
        Box::pin(async move {
            found.ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("no address for `{host}`"),
                )
            })
        })
    }
}

/// The resolver reqwest connects through: every address is checked, and one blocked address
/// fails the whole name (a name that mixes public and private addresses is not trusted).
struct GuardedResolver {
    inner: Arc<dyn HostResolver>,
    policy: NetPolicy,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        let policy = self.policy.clone();
        let lookup = self.inner.lookup(&host);
        Box::pin(async move {
            let checked: Result<reqwest::dns::Addrs, BoxError> = async {
                policy.check_host_name(&host)?;
                let addrs = lookup.await?;
                if addrs.is_empty() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("no address for `{host}`"),
                    )
                    .into());
                }
                for ip in &addrs {
                    if let Err(blocked) = policy.check_ip(*ip) {
                        return Err(Blocked {
                            target: host.clone(),
                            reason: format!("resolves to {}: {}", blocked.target, blocked.reason),
                        }
                        .into());
                    }
                }
                Ok(Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)))
                    as reqwest::dns::Addrs)
            }
            .await;
            checked
        })
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Redirects are refused with this error when there are more than the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("more than {limit} redirects")]
pub struct RedirectLimit {
    pub limit: usize,
}

/// A client builder with the guard installed: checked resolution through `resolver`, no proxy,
/// and, with `max_redirects` set, redirects followed up to that many hops, each hop's URL
/// checked by `policy` (scheme and literal host; names by the resolver). Without it redirects
/// are not followed, for callers that follow them themselves.
pub fn guarded_client_builder(
    policy: &NetPolicy,
    resolver: Arc<dyn HostResolver>,
    max_redirects: Option<usize>,
) -> reqwest::ClientBuilder {
    let redirect = match max_redirects {
        None => reqwest::redirect::Policy::none(),
        Some(limit) => {
            let hop_policy = policy.clone();
            reqwest::redirect::Policy::custom(move |attempt| {
                // `previous` holds the first URL too.
                if attempt.previous().len() > limit {
                    return attempt.error(RedirectLimit { limit });
                }
                match hop_policy.check_url(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(blocked) => attempt.error(blocked),
                }
            })
        }
    };
    reqwest::Client::builder()
        .no_proxy()
        .redirect(redirect)
        .dns_resolver(Arc::new(GuardedResolver {
            inner: resolver,
            policy: policy.clone(),
        }))
}

/// The first error of type `T` in `error`'s source chain (itself included).
pub fn find_cause<'e, T: std::error::Error + 'static>(
    error: &'e (dyn std::error::Error + 'static),
) -> Option<&'e T> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        current = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).expect("url")
    }

    #[test]
    fn literal_hosts() {
        let strict = NetPolicy::strict();
        for blocked in [
            "http://127.0.0.1/",
            "http://localhost:8080/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:a9fe:a9fe]/latest/meta-data",
            "http://169.254.169.254/latest/meta-data/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://[fd00:ec2::254]/",
            "http://10.0.0.1/",
            "http://192.168.0.1:3000/",
            "http://[fe80::1]/",
            "http://0.0.0.0/",
            "ftp://example.com/",
            "file:///etc/passwd",
        ] {
            assert!(strict.check_url(&url(blocked)).is_err(), "{blocked}");
        }
        for allowed in [
            "https://docs.rs/tokio",
            "http://93.184.216.34/",
            "https://[2606:4700:4700::1111]/",
        ] {
            assert!(strict.check_url(&url(allowed)).is_ok(), "{allowed}");
        }
    }

    #[test]
    fn escape_hatches() {
        let intranet = NetPolicy::strict().allow_private_hosts(true);
        assert!(intranet.check_url(&url("http://10.0.0.1/")).is_ok());
        assert!(intranet.check_url(&url("http://localhost/")).is_ok());
        assert!(intranet.check_url(&url("http://169.254.169.254/")).is_err());
        assert!(intranet
            .check_url(&url("http://metadata.google.internal/"))
            .is_err());
        let one = NetPolicy::strict().allow_addr("127.0.0.1".parse().expect("ip"));
        assert!(one.check_url(&url("http://127.0.0.1:9/")).is_ok());
        assert!(one.check_url(&url("http://[::ffff:127.0.0.1]/")).is_ok());
        assert!(one.check_url(&url("http://127.0.0.2/")).is_err());
        assert!(one.check_url(&url("http://10.0.0.1/")).is_err());
    }

    #[tokio::test]
    async fn resolver_checks_every_address() {
        use reqwest::dns::Resolve;
        let resolver = GuardedResolver {
            inner: Arc::new(
                StaticResolver::new()
                    .with("public.test", &["93.184.216.34".parse().expect("ip")])
                    .with(
                        "mixed.test",
                        &[
                            "93.184.216.34".parse().expect("ip"),
                            "10.0.0.1".parse().expect("ip"),
                        ],
                    ),
            ),
            policy: NetPolicy::strict(),
        };
        let name = |host: &str| host.parse::<reqwest::dns::Name>().expect("name");
        let addrs: Vec<SocketAddr> = resolver
            .resolve(name("public.test"))
            .await
            .expect("public")
            .collect();
        assert_eq!(addrs.len(), 1);
        let error = resolver
            .resolve(name("mixed.test"))
            .await
            .err()
            .expect("mixed is blocked");
        assert!(find_cause::<Blocked>(error.as_ref()).is_some());
        assert!(resolver.resolve(name("unknown.test")).await.is_err());
    }
}

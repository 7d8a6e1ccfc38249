//! Where a push that names its own target may go, so that a subscription
//! cannot turn gmshub into a tool for reaching what only gmshub can reach
//! (SSRF): an `httpcb` URL must match `httpcb.allowed-urls` when patterns
//! are set, and may reach a loopback, private or link-local address only
//! when a pattern names it; a WNS channel URL must be on a WNS host
//! (`wns.allowed-hosts`). Names are checked on the addresses they resolve
//! to, and the connection goes to the checked address (the HTTP client's
//! resolver is [`Guarded`]); redirects are never followed.
//! May use: nothing else in the crate.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// Whether `ip` is an address of the public internet (not loopback,
/// private, shared, link-local, unique-local, unspecified, broadcast or
/// multicast).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                // 100.64.0.0/10, carrier-grade NAT.
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// URL patterns (`*` stands for any run of characters), as an operator
/// lists them: `https://hooks.example.com/*, http://10.1.2.3:8080/cb/*`.
#[derive(Debug, Clone, Default)]
pub struct UrlPatterns {
    patterns: Vec<String>,
}

impl UrlPatterns {
    pub fn parse(list: &str) -> Self {
        Self {
            patterns: list
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    pub fn matches(&self, url: &str) -> bool {
        self.patterns.iter().any(|p| glob(p, url))
    }

    /// The hosts the patterns name (which may then resolve to private
    /// addresses).
    fn hosts(&self) -> HashSet<String> {
        self.patterns
            .iter()
            .filter_map(|p| {
                let authority = p.split_once("://")?.1.split(['/', '?', '#']).next()?;
                let host = match authority.strip_prefix('[') {
                    Some(v6) => v6.split(']').next()?,
                    None => authority.split(':').next()?,
                };
                (!host.is_empty() && !host.contains('*')).then(|| host.to_ascii_lowercase())
            })
            .collect()
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Checks an `httpcb` target before anything is sent: an HTTP(S) URL,
/// matching a pattern when there are patterns, and not naming a
/// non-public address literally unless a pattern allows it.
pub fn check_callback_url(url: &str, allowed: &UrlPatterns) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|_| "the deviceId is not an HTTP URL".to_owned())?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("the deviceId is not an HTTP URL".into());
    }
    let listed = allowed.matches(parsed.as_str());
    if !allowed.is_empty() && !listed {
        return Err("the URL matches no [push] httpcb.allowed-urls pattern".into());
    }
    let literal = match parsed.host() {
        Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        _ => None,
    };
    if literal.is_some_and(|ip| !is_public(ip)) && !listed {
        return Err(
            "the URL names a loopback, private or link-local address that no [push] httpcb.allowed-urls pattern allows"
                .into(),
        );
    }
    Ok(parsed)
}

/// Checks a WNS channel URL: HTTPS (or HTTP, for a listed stand-in) on a
/// host that is, or ends in `.`, one of `suffixes`.
pub fn check_wns_url(url: &str, suffixes: &[String]) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|_| "the WNS channel URI is not a URL".to_owned())?;
    let host = parsed.host_str().unwrap_or("").to_ascii_lowercase();
    let on_wns = suffixes.iter().any(|s| {
        let s = s.trim_start_matches('.').to_ascii_lowercase();
        host == s || host.ends_with(&format!(".{s}"))
    });
    if !matches!(parsed.scheme(), "http" | "https") || !on_wns {
        return Err(format!(
            "the WNS channel URI is not on a WNS host ([push] wns.allowed-hosts: {})",
            suffixes.join(", ")
        ));
    }
    Ok(parsed)
}

/// A name that resolves to no address the target may have: the target is
/// not reachable, and trying again will not change that.
#[derive(Debug, thiserror::Error)]
#[error("{0} has no public address")]
pub struct NotPublic(pub String);

impl NotPublic {
    /// Whether `e` (or what caused it) is this refusal.
    pub fn caused(e: &(dyn std::error::Error + 'static)) -> bool {
        let mut cause = Some(e);
        while let Some(e) = cause {
            if e.is::<NotPublic>() {
                return true;
            }
            cause = e.source();
        }
        false
    }
}

/// The HTTP client's resolver for targets a subscription chose: a name
/// resolves to its public addresses only, unless a pattern names the host.
#[derive(Debug, Clone, Default)]
pub struct Guarded {
    named: Arc<HashSet<String>>,
}

impl Guarded {
    pub fn new(allowed: &UrlPatterns) -> Self {
        Self {
            named: Arc::new(allowed.hosts()),
        }
    }
}

impl Resolve for Guarded {
    fn resolve(&self, name: Name) -> Resolving {
        let named = self.named.clone();
        Box::pin(async move {
            let host = name.as_str().to_ascii_lowercase();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = if named.contains(&host) {
                found
            } else {
                found.into_iter().filter(|a| is_public(a.ip())).collect()
            };
            if kept.is_empty() {
                return Err(Box::new(NotPublic(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses_only() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "2606:2800:220:1::1", "100.128.0.1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn patterns_match_with_stars() {
        let p = UrlPatterns::parse("https://hooks.example.com/*, http://10.1.2.3:8080/cb/*/in");
        assert!(p.matches("https://hooks.example.com/a/b"));
        assert!(!p.matches("https://hooks.example.com.evil.net/a"));
        assert!(p.matches("http://10.1.2.3:8080/cb/x/y/in"));
        assert!(!p.matches("http://10.1.2.3:8080/cb/x/out"));
        assert_eq!(
            p.hosts(),
            HashSet::from(["hooks.example.com".into(), "10.1.2.3".into()])
        );
    }

    #[test]
    fn callback_urls_are_checked() {
        let none = UrlPatterns::default();
        assert!(check_callback_url("https://example.com/cb", &none).is_ok());
        assert!(check_callback_url("ftp://example.com/cb", &none).is_err());
        assert!(check_callback_url("http://127.0.0.1:9/cb", &none).is_err());
        assert!(check_callback_url("http://[::1]/cb", &none).is_err());
        assert!(check_callback_url("http://169.254.169.254/latest", &none).is_err());
        let some = UrlPatterns::parse("http://127.0.0.1:*");
        assert!(check_callback_url("http://127.0.0.1:9/cb", &some).is_ok());
        assert!(
            check_callback_url("https://example.com/cb", &some).is_err(),
            "not listed"
        );
    }

    #[test]
    fn wns_urls_must_be_on_wns_hosts() {
        let hosts = vec!["notify.windows.com".to_owned()];
        assert!(check_wns_url("https://db5.notify.windows.com/?token=x", &hosts).is_ok());
        assert!(check_wns_url("https://notify.windows.com.evil.net/", &hosts).is_err());
        assert!(check_wns_url("https://evilnotify.windows.com/", &hosts).is_err());
        assert!(check_wns_url("http://127.0.0.1/", &hosts).is_err());
    }

    #[tokio::test]
    async fn names_resolve_to_public_addresses_unless_named_by_a_pattern() {
        let guarded = Guarded::new(&UrlPatterns::default());
        let name: Name = "localhost".parse().unwrap();
        assert!(guarded.resolve(name).await.is_err());
        let named = Guarded::new(&UrlPatterns::parse("http://localhost:*/*"));
        let name: Name = "localhost".parse().unwrap();
        assert!(named.resolve(name).await.is_ok());
    }
}

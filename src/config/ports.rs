//! GMS's `[port_restrictions]` (spec §1.5): each option is a URI pattern
//! (`/genesys/1/storage/*`, or the guide's `/genesys/1/storage*`: a
//! trailing `*` matches any rest; otherwise the exact path) and its value
//! the local ports that serve it (`8443`, `80-90,100`). A request to a
//! listed pattern on any other port gets 403; paths not listed are served
//! on every port. The guide does not say which of several matching patterns
//! wins: here the longest (an exact path before a prefix of the same
//! length).

use std::ops::RangeInclusive;

use super::options::Options;
use super::pattern::PathPattern;

#[derive(Debug, Clone)]
struct Restriction {
    pattern: PathPattern,
    ports: Vec<RangeInclusive<u16>>,
}

#[derive(Debug, Clone, Default)]
pub struct PortRestrictions {
    rules: Vec<Restriction>,
}

fn ports(value: &str) -> Option<Vec<RangeInclusive<u16>>> {
    value
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('-') {
            Some((a, b)) => Some(a.trim().parse().ok()?..=b.trim().parse().ok()?),
            None => p.parse().ok().map(|n| n..=n),
        })
        .collect()
}

impl PortRestrictions {
    pub fn from_options(o: &Options) -> Self {
        let Some(section) = o.section("port_restrictions") else {
            return Self::default();
        };
        let mut rules: Vec<Restriction> = section
            .iter()
            .filter_map(|(pattern, value)| {
                let Some(ports) = ports(value).filter(|p| !p.is_empty()) else {
                    tracing::warn!(
                        pattern,
                        value,
                        "[port_restrictions]: not a port list; ignored"
                    );
                    return None;
                };
                Some(Restriction {
                    pattern: PathPattern::new(pattern),
                    ports,
                })
            })
            .collect();
        rules.sort_by_key(|r| std::cmp::Reverse(r.pattern.specificity()));
        Self { rules }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether `path` may be served on local port `port`.
    pub fn allows(&self, path: &str, port: u16) -> bool {
        let matching = self.rules.iter().find(|r| r.pattern.matches(path));
        matching.is_none_or(|r| r.ports.iter().any(|range| range.contains(&port)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_pattern_names_the_ports() {
        let o = Options::from_ini(
            "[port_restrictions]\n/genesys/1/storage* = 8080\n/genesys/1/service/* = 80-90,100\n\
             /genesys/1/service/request-interaction = 8443\n/genesys/1/admin/* = 9090\n\
             /bad = x\n",
            &[],
        )
        .unwrap();
        let p = PortRestrictions::from_options(&o);
        assert!(p.allows("/genesys/1/storage/abc", 8080));
        assert!(!p.allows("/genesys/1/storage/abc", 8443));
        assert!(p.allows("/genesys/1/service/x", 85) && p.allows("/genesys/1/service/x", 100));
        assert!(!p.allows("/genesys/1/service/x", 91));
        assert!(p.allows("/genesys/1/service/request-interaction", 8443));
        assert!(
            !p.allows("/genesys/1/service/request-interaction", 85),
            "the exact path wins"
        );
        assert!(p.allows("/genesys/cometd", 1234), "not listed: every port");
        assert!(p.allows("/bad", 1), "an unreadable rule is ignored");
        assert!(PortRestrictions::default().allows("/genesys/1/admin/x", 1));
    }
}

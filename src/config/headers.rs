//! Extra response headers by path, as GMS's guide adds them with Jetty's
//! rewrite `HeaderPatternRule` (spec §2.4): one `[header.<name>]` section
//! per rule with `pattern` (a [`PathPattern`]), `name`, `value`, and `terminating`
//! (a matching terminating rule ends the list). Rules apply in the order of
//! their section names.

use axum::http::{HeaderName, HeaderValue};

use super::options::Options;
use super::pattern::PathPattern;

#[derive(Debug, Clone)]
pub struct HeaderRule {
    pattern: PathPattern,
    pub name: HeaderName,
    pub value: HeaderValue,
    pub terminating: bool,
}

impl HeaderRule {
    pub fn matches(&self, path: &str) -> bool {
        self.pattern.matches(path)
    }
}

/// Every `[header.<name>]` rule, in name order; unusable ones are skipped
/// with a warning.
pub fn header_rules(o: &Options) -> Vec<HeaderRule> {
    let mut sections: Vec<&str> = o
        .section_names()
        .filter(|s| s.starts_with("header."))
        .collect();
    sections.sort();
    sections
        .into_iter()
        .filter_map(|section| {
            let get = |option: &str| o.get(section, option).filter(|v| !v.is_empty());
            let (Some(pattern), Some(name), Some(value)) =
                (get("pattern"), get("name"), get("value"))
            else {
                tracing::warn!("[{section}] needs pattern, name and value: ignored");
                return None;
            };
            let (Ok(name), Ok(value)) = (name.parse::<HeaderName>(), value.parse::<HeaderValue>())
            else {
                tracing::warn!("[{section}]: not a header name and value: ignored");
                return None;
            };
            Some(HeaderRule {
                pattern: PathPattern::new(pattern),
                name,
                value,
                terminating: o.flag(section, "terminating", false),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_in_name_order_with_prefixes_and_exact_paths() {
        let o = Options::from_ini(
            "[header.2-csp]\npattern = /genesys/1/storage/*\nname = Content-Security-Policy\n\
             value = default-src 'self'\nterminating = true\n\
             [header.1-frame]\npattern = /genesys/1/storage*\nname = X-Frame-Options\nvalue = SAMEORIGIN\n\
             [header.3-exact]\npattern = /genesys/1/node\nname = X-Probe\nvalue = yes\n\
             [header.4-broken]\npattern = /x\nname = bad name\nvalue = v\n",
            &[],
        )
        .unwrap();
        let rules = header_rules(&o);
        let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            ["x-frame-options", "content-security-policy", "x-probe"]
        );
        assert!(rules[0].matches("/genesys/1/storage"));
        assert!(rules[1].matches("/genesys/1/storage/abc"));
        assert!(!rules[1].matches("/genesys/1/storage"));
        assert!(rules[1].terminating);
        assert!(rules[2].matches("/genesys/1/node") && !rules[2].matches("/genesys/1/node/x"));
    }
}

//! Cross-origin access (`[cors]`), with the names of Jetty's
//! `CrossOriginHandler` that GMS's guide configures (`jetty.crossorigin.`
//! prefix optional): `allowedOriginPatterns`, `allowedMethods`,
//! `allowedHeaders`, `allowCredentials`, `exposedHeaders`,
//! `preflightMaxAge`, `deliverNonAllowedOriginRequests`,
//! `deliverNonAllowedOriginWebSocketUpgradeRequests`.
//!
//! The default is safe, as the guide's restrictive template: no origin is
//! allowed until listed, and a request from an origin that is not (a
//! browser on another site) is refused rather than served without headers,
//! so that a page elsewhere cannot create chats or sessions in its
//! visitors' names. Same-origin requests (gmshub's own pages) and requests
//! without `Origin` (native apps, servers) are not cross-origin and are
//! never affected.

use std::time::Duration;

use regex::Regex;

use super::options::Options;

#[derive(Debug, Clone)]
pub struct CorsSettings {
    /// Whole-origin patterns (`*` for any); empty: none allowed.
    pub origins: Vec<Regex>,
    pub any_origin: bool,
    pub methods: Vec<String>,
    pub headers: Vec<String>,
    pub credentials: bool,
    pub exposed: Vec<String>,
    pub max_age: Duration,
    /// Serve (without CORS headers) requests from origins not allowed.
    pub deliver_not_allowed: bool,
    /// Accept WebSocket upgrades from origins not allowed.
    pub deliver_not_allowed_websocket: bool,
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

impl CorsSettings {
    pub fn from_options(o: &Options) -> Self {
        // The option as written: Jetty's name, or with its start.ini prefix.
        let key = |name: &str| match o.get("cors", name) {
            Some(_) => name.to_owned(),
            None => format!("jetty.crossorigin.{name}"),
        };
        let get = |name: &str| o.get("cors", &key(name));
        let flag = |name: &str, default: bool| o.flag("cors", &key(name), default);
        let patterns = list(get("allowedOriginPatterns").unwrap_or(""));
        let any_origin = patterns.iter().any(|p| p == "*");
        let origins = patterns
            .iter()
            .filter(|p| *p != "*")
            .filter_map(|p| match Regex::new(&format!("^(?:{p})$")) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(pattern = p, "[cors] allowedOriginPatterns: {e}");
                    None
                }
            })
            .collect();
        Self {
            origins,
            any_origin,
            methods: list(get("allowedMethods").unwrap_or("GET,POST,HEAD")),
            headers: list(get("allowedHeaders").unwrap_or("Content-Type")),
            credentials: flag("allowCredentials", false),
            exposed: list(get("exposedHeaders").unwrap_or("")),
            max_age: o.seconds("cors", &key("preflightMaxAge"), Duration::from_secs(60)),
            deliver_not_allowed: flag("deliverNonAllowedOriginRequests", false),
            deliver_not_allowed_websocket: flag(
                "deliverNonAllowedOriginWebSocketUpgradeRequests",
                false,
            ),
        }
    }

    /// Whether `origin` (an `Origin` header's value) is listed.
    pub fn allows(&self, origin: &str) -> bool {
        self.any_origin || self.origins.iter().any(|r| r.is_match(origin))
    }

    /// One line for the start-up log.
    pub fn summary(&self) -> String {
        if self.any_origin {
            "CORS: every origin allowed ([cors] allowedOriginPatterns = *)".to_owned()
        } else if self.origins.is_empty() {
            "CORS: no cross-origin access; list the sites that embed gmshub in \
             [cors] allowedOriginPatterns"
                .to_owned()
        } else {
            let shown: Vec<&str> = self.origins.iter().map(Regex::as_str).collect();
            format!("CORS: origins allowed: {}", shown.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(ini: &str) -> CorsSettings {
        CorsSettings::from_options(&Options::from_ini(ini, &[]).unwrap())
    }

    #[test]
    fn nothing_is_allowed_until_listed_and_patterns_match_whole_origins() {
        let none = cors("");
        assert!(!none.allows("https://shop.example.com"));
        assert_eq!(none.methods, ["GET", "POST", "HEAD"]);
        assert!(!none.deliver_not_allowed && !none.deliver_not_allowed_websocket);
        let some = cors(
            "[cors]\nallowedOriginPatterns = https://.*\\.example\\.com, http://localhost:3000\n\
             jetty.crossorigin.allowedHeaders = origin, content-type, gms_user\n\
             allowCredentials = true\npreflightMaxAge = 600\n",
        );
        assert!(some.allows("https://shop.example.com"));
        assert!(some.allows("http://localhost:3000"));
        assert!(!some.allows("https://shop.example.com.evil.net"));
        assert!(!some.allows("http://localhost:30000"));
        assert_eq!(some.headers, ["origin", "content-type", "gms_user"]);
        assert!(some.credentials);
        assert_eq!(some.max_age, Duration::from_secs(600));
        assert!(cors("[cors]\nallowedOriginPatterns = *\n").allows("https://any.where"));
    }
}

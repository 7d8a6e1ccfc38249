//! Channel names: validation, the three Bayeux families (`/meta`, `/service`,
//! broadcast) and trailing wildcards (`*` one segment, `**` one or more).
//!
//! A name is validated once, when it enters the server; everything past this
//! module handles [`ChannelName`] values that are known to be well formed.
//! May use: nothing else in the crate.

use std::fmt;
use std::sync::Arc;

/// The five meta channels the protocol defines.
pub const META_HANDSHAKE: &str = "/meta/handshake";
pub const META_CONNECT: &str = "/meta/connect";
pub const META_SUBSCRIBE: &str = "/meta/subscribe";
pub const META_UNSUBSCRIBE: &str = "/meta/unsubscribe";
pub const META_DISCONNECT: &str = "/meta/disconnect";

/// Which family a channel belongs to; decides routing and what a remote
/// client may do with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// `/meta/**`: protocol messages, never broadcast.
    Meta,
    /// `/service/**`: request/response with server-side handlers, never broadcast.
    Service,
    /// Everything else: delivered to every subscriber.
    Broadcast,
}

/// The wildcard a pattern ends with, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wildcard {
    /// A plain channel such as `/chat/room1`.
    None,
    /// `/chat/*`: exactly one more segment.
    One,
    /// `/chat/**`: one or more segments.
    Deep,
}

/// Why a channel name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    #[error("channel name is empty")]
    Empty,
    #[error("channel name must start with '/'")]
    NotAbsolute,
    #[error("channel name has an empty segment")]
    EmptySegment,
    #[error("channel name has a character outside the Bayeux token set")]
    BadCharacter,
    #[error("a wildcard may only be the whole last segment")]
    MisplacedWildcard,
    #[error("channel name is longer than {MAX_CHANNEL_LEN} bytes")]
    TooLong,
}

/// Longest channel name accepted; longer names are a sign of abuse, not use.
pub const MAX_CHANNEL_LEN: usize = 1024;

/// A validated channel name or subscription pattern. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ChannelName {
    name: Arc<str>,
    wildcard: Wildcard,
    family: Family,
}

/// Characters allowed in a segment besides ASCII letters and digits. The
/// Bayeux grammar allows `- _ ! ~ ( ) $ @`; CometD also accepts `. # +`, which
/// GMS service names use.
fn is_segment_char(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'-' | b'_' | b'!' | b'~' | b'(' | b')' | b'$' | b'@' | b'.' | b'#' | b'+'
        )
}

impl ChannelName {
    /// Parses a channel name or a subscription pattern.
    pub fn parse(name: &str) -> Result<Self, ChannelError> {
        if name.is_empty() {
            return Err(ChannelError::Empty);
        }
        if name.len() > MAX_CHANNEL_LEN {
            return Err(ChannelError::TooLong);
        }
        let rest = name.strip_prefix('/').ok_or(ChannelError::NotAbsolute)?;
        let segments: Vec<&str> = rest.split('/').collect();
        let last = segments.len() - 1;
        let mut wildcard = Wildcard::None;
        for (i, segment) in segments.iter().enumerate() {
            if segment.is_empty() {
                return Err(ChannelError::EmptySegment);
            }
            match *segment {
                // `/*` and `/**` are valid too: every top-level channel, or
                // every channel.
                "*" | "**" if i == last => {
                    wildcard = if *segment == "*" {
                        Wildcard::One
                    } else {
                        Wildcard::Deep
                    };
                }
                s if s.bytes().all(is_segment_char) => {}
                s if s.contains('*') => return Err(ChannelError::MisplacedWildcard),
                _ => return Err(ChannelError::BadCharacter),
            }
        }
        let family = match segments[0] {
            "meta" if segments.len() > 1 => Family::Meta,
            "service" if segments.len() > 1 => Family::Service,
            _ => Family::Broadcast,
        };
        Ok(Self {
            name: Arc::from(name),
            wildcard,
            family,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }

    pub fn family(&self) -> Family {
        self.family
    }

    pub fn wildcard(&self) -> Wildcard {
        self.wildcard
    }

    pub fn is_wildcard(&self) -> bool {
        self.wildcard != Wildcard::None
    }

    pub fn is_meta(&self) -> bool {
        self.family == Family::Meta
    }

    pub fn is_service(&self) -> bool {
        self.family == Family::Service
    }

    /// For a wildcard pattern, the part before the wildcard segment
    /// (`/a/b/*` gives `/a/b`, `/**` gives the empty string).
    pub fn wildcard_base(&self) -> &str {
        match self.wildcard {
            Wildcard::None => &self.name,
            Wildcard::One => &self.name[..self.name.len() - 2],
            Wildcard::Deep => &self.name[..self.name.len() - 3],
        }
    }

    /// Whether this pattern matches the plain channel `channel`.
    pub fn matches(&self, channel: &str) -> bool {
        match self.wildcard {
            Wildcard::None => *self.name == *channel,
            Wildcard::One => parent(channel) == Some(self.wildcard_base()),
            Wildcard::Deep => {
                let base = self.wildcard_base();
                channel.len() > base.len() + 1
                    && channel.starts_with(base)
                    && channel.as_bytes()[base.len()] == b'/'
            }
        }
    }
}

/// The channel one level up: `/a/b/c` gives `/a/b`, `/a` gives `""`.
pub fn parent(channel: &str) -> Option<&str> {
    channel.rfind('/').map(|i| &channel[..i])
}

impl fmt::Debug for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn families() {
        assert_eq!(
            ChannelName::parse("/meta/connect").unwrap().family(),
            Family::Meta
        );
        assert_eq!(
            ChannelName::parse("/service/chatV2/x").unwrap().family(),
            Family::Service
        );
        assert_eq!(
            ChannelName::parse("/_genesys").unwrap().family(),
            Family::Broadcast
        );
        // `/meta` alone is not a meta channel, it is just a name.
        assert_eq!(
            ChannelName::parse("/meta").unwrap().family(),
            Family::Broadcast
        );
    }

    #[test]
    fn rejects_malformed_names() {
        for bad in [
            "",
            "foo",
            "/",
            "//a",
            "/a//b",
            "/a/",
            "/**/foo",
            "/foo/*/bar",
            "/a b",
            "/a/b*",
            "/a\"b",
        ] {
            assert!(ChannelName::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            ChannelName::parse(&format!("/{}", "a".repeat(MAX_CHANNEL_LEN))),
            Err(ChannelError::TooLong)
        );
    }

    #[test]
    fn wildcard_semantics_from_the_spec() {
        let one = ChannelName::parse("/foo/*").unwrap();
        assert!(one.matches("/foo/bar"));
        assert!(!one.matches("/foo"));
        assert!(!one.matches("/foo/bar/baz"));
        let deep = ChannelName::parse("/foo/**").unwrap();
        assert!(deep.matches("/foo/bar"));
        assert!(deep.matches("/foo/bar/baz"));
        assert!(!deep.matches("/foo"));
        assert!(!deep.matches("/foobar/x"));
        let all = ChannelName::parse("/**").unwrap();
        assert!(all.matches("/a"));
        assert!(all.matches("/a/b"));
        let top = ChannelName::parse("/*").unwrap();
        assert!(top.matches("/a"));
        assert!(!top.matches("/a/b"));
    }

    /// Reference matcher written from the spec's words, segment by segment.
    fn naive_matches(pattern: &str, channel: &str) -> bool {
        let p: Vec<&str> = pattern.split('/').skip(1).collect();
        let c: Vec<&str> = channel.split('/').skip(1).collect();
        match p.last() {
            Some(&"**") => c.len() >= p.len() && p[..p.len() - 1] == c[..p.len() - 1],
            Some(&"*") => c.len() == p.len() && p[..p.len() - 1] == c[..p.len() - 1],
            _ => p == c,
        }
    }

    fn segment() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["a", "b", "ab", "x-1", "_g"]).prop_map(str::to_owned)
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,64}") {
            let _ = ChannelName::parse(&s);
        }

        #[test]
        fn wildcard_matching_agrees_with_reference(
            base in prop::collection::vec(segment(), 0..4),
            tail in prop::sample::select(vec!["", "*", "**"]),
            channel in prop::collection::vec(segment(), 1..6),
        ) {
            let mut pattern = String::new();
            for s in &base { pattern.push('/'); pattern.push_str(s); }
            if !tail.is_empty() { pattern.push('/'); pattern.push_str(tail); }
            prop_assume!(!pattern.is_empty());
            let channel = format!("/{}", channel.join("/"));
            let parsed = ChannelName::parse(&pattern).unwrap();
            prop_assert_eq!(parsed.matches(&channel), naive_matches(&pattern, &channel));
        }
    }
}

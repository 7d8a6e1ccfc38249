//! A subscription pattern and a channel, separated by a newline: both
//! parsed, and the pattern matched against the channel.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let (pattern, channel) = text.split_once('\n').unwrap_or((text, text));
    if let Ok(pattern) = bayeux::ChannelName::parse(pattern) {
        let matched = pattern.matches(channel);
        if matched {
            // Only a wildcard, or the channel itself, matches a channel.
            assert!(pattern.is_wildcard() || pattern.as_str() == channel);
        }
    }
});

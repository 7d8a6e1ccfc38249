//! A request body as the Bayeux transports read it: a JSON message or
//! array of messages, then each message's channel as a channel name.
#![no_main]

use bayeux::message::{parse_batch, Parsed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(batch) = parse_batch(body) {
        for parsed in batch {
            if let Parsed::Ok(message) = parsed {
                if let Some(channel) = &message.channel {
                    let _ = bayeux::ChannelName::parse(channel);
                }
            }
        }
    }
});

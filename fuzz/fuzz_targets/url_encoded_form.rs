//! A URL-encoded form body, as the GMS REST APIs read one: UTF-8 or a 400.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(pairs) = gmshub::api::form::utf8_pairs(body) {
        for (name, value) in pairs {
            assert!(!name.contains('+') || body.windows(3).any(|w| w == b"%2B" || w == b"%2b"));
            let _ = value;
        }
    }
});

//! A configuration file as an operator might carry it over from GMS: read
//! as INI, then into every typed setting (each option's reader and bounds).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(options) = gmshub::config::Options::from_ini(text, &[]) {
        let _ = gmshub::config::Settings::from_options(&options);
    }
});

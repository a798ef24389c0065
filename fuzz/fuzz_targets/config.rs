//! Fuzzes the handler's configuration parser (the TOML file root trusts to
//! name a command run as root): any text parses to a valid configuration or
//! to one line of error naming where, never a panic or a hang; sizes parse
//! or are refused, never overflow.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lttng_coredump_handler::base::config::{parse_size, Config};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Config::parse(&text) {
        Ok(config) => {
            assert!(config.core_dir.is_absolute(), "{:?}", config.core_dir);
            assert!((1..=22).contains(&config.zstd_level));
            if let Some(chain) = &config.chain {
                assert!(chain.command.first().is_some_and(|p| p.starts_with('/')));
            }
        }
        Err(error) => {
            assert!(!error.is_empty());
            assert!(!error.contains('\n'), "a multi-line error: {error:?}");
        }
    }
    if let Ok(size) = parse_size(&text) {
        // A size is digits times a binary multiple: it round-trips.
        assert!(
            text.trim()
                .starts_with(|c: char| c.is_ascii_digit() || c == '+'),
            "{text:?} -> {size}"
        );
    }
});

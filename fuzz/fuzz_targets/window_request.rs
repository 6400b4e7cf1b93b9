//! The maintenance window's socket request parser and package-name rule on arbitrary bytes: no
//! input may panic, and any name that passes the rule must hold the rule's promises, checked here
//! independently of its code (never an option, path, pattern, version, architecture or file).
#![no_main]

use clawster_agent::window::protocol;
use clawster_core::window_rules as name;
use libfuzzer_sys::fuzz_target;

fn holds_promises(n: &str) {
    let b = n.as_bytes();
    assert!((2..=100).contains(&b.len()), "{n:?}: length");
    assert!(b[0].is_ascii_alphanumeric(), "{n:?}: first byte");
    let last = b[b.len() - 1];
    assert!(
        last.is_ascii_alphanumeric() || last == b'+',
        "{n:?}: last byte"
    );
    assert!(
        b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'+' | b'-')),
        "{n:?}: a byte outside [A-Za-z0-9._+-]"
    );
    let lower = n.to_ascii_lowercase();
    assert!(
        !lower.ends_with(".deb") && !lower.ends_with(".rpm"),
        "{n:?}: a package file"
    );
}

fuzz_target!(|data: &[u8]| {
    if name::validate_name_bytes(data).is_ok() {
        holds_promises(std::str::from_utf8(data).expect("a valid name is ASCII"));
    }
    if let Ok(protocol::Request::Install(n)) = protocol::parse_request(data) {
        if let Ok(n) = name::validate_name(&n) {
            holds_promises(n);
        }
    }
});

//! The nf_tables expression decoder on arbitrary `NFTA_RULE_EXPRESSIONS` payloads: it must never
//! panic, and what it decodes must survive our own encoder unchanged (decode, encode, decode is
//! the identity), so a ruleset read back from the kernel compares as what it really is.
#![no_main]

use clawster_core::netlink::MsgBuilder;
use clawster_core::nft::expr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let first = expr::decode_list(data);
    let mut b = MsgBuilder::new();
    for e in &first {
        e.encode(&mut b);
    }
    let second = expr::decode_list(b.bytes());
    assert_eq!(
        first, second,
        "decode/encode/decode changed the expressions"
    );
});

//! What the kernel answers to a chain or rule dump, as raw netlink datagrams: message framing,
//! attribute walking, base chain, rule and flowtable decoding. No input may panic or loop.
#![no_main]

use clawster_core::{netlink, nft};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for m in netlink::messages(data) {
        let Ok(m) = m else { break };
        let _ = m.error_code();
        let _ = nft::base_chain_info(&m);
        let _ = nft::rule_exprs(&m);
        let _ = nft::flowtable_info(&m);
    }
});

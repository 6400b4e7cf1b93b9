//! The docker guard's parsers and policy on arbitrary bytes: the HTTP request head, the request
//! target, chunked bodies and the container-create and exec-create judges. No input may panic, and
//! what the guard forwards must be a fixed point: a target it writes parses back to the same
//! target, and a body it forwards is judged again to exactly the same bytes (so what was judged is
//! what dockerd reads).
#![no_main]

use std::sync::OnceLock;

use clawster_agent::docker_guard::http;
use clawster_agent::docker_guard::policy::{self, Policy};
use libfuzzer_sys::fuzz_target;

fn policy() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(Policy::default)
}

fuzz_target!(|data: &[u8]| {
    let p = policy();
    if let Ok(req) = http::parse_request_head(data) {
        if let Ok(t) = http::parse_target(&req.target) {
            let written = t.to_string();
            let again = http::parse_target(&written)
                .unwrap_or_else(|e| panic!("our own target {written:?} does not parse: {e}"));
            assert_eq!(again, t, "target {written:?} changed when parsed back");
            let body = data.get(req.head_len..).filter(|b| !b.is_empty());
            let _ = policy::judge(&req.method, &t, body, p);
        }
    }
    let _ = http::decode_chunked(data, 1 << 20);
    if let Ok(out) = policy::judge_create(data, p) {
        let again = policy::judge_create(&out, p).unwrap_or_else(|r| {
            panic!("a forwarded create body is refused when judged again: {r:?}")
        });
        assert_eq!(
            again, out,
            "a forwarded create body changed when judged again"
        );
    }
    if let Ok((out, _)) = policy::judge_exec_create(data, p) {
        let (again, _) = policy::judge_exec_create(&out, p).unwrap_or_else(|r| {
            panic!("a forwarded exec body is refused when judged again: {r:?}")
        });
        assert_eq!(
            again, out,
            "a forwarded exec body changed when judged again"
        );
    }
});

//! The OpenClaw configuration each bot runs with.
//!
//! It is stored by `clawsterctl deploy` in the bot's Secrets Manager secret
//! `clawster/<bot>/config` (with the model and channel settings the operator adds, and the
//! gateway token ctl generates once: `gateway.auth.token`) and injected into the task by full ARN.

use serde_json::{json, Value};

use crate::names::GatewayPort;

/// The gateway section every Clawster bot needs behind its ALB:
/// - `mode: local`: the gateway refuses to start without it;
/// - `bind: lan`: listen on all interfaces of the task ENI so the ALB can reach it;
/// - `trustedProxies`: the VPC range, so the ALB's `X-Forwarded-For` is believed and nothing else's;
/// - `auth.mode: token`: clients must present the gateway token (`auth.token`, added by deploy);
/// - `agents.defaults.sandbox.mode: all`: every session's tools run in a sandbox container
///   (created through the host's docker guard under the sysbox runtime); OpenClaw's default is
///   off, which would run the bot's commands in the gateway's own container;
/// - `gateway.terminal.enabled: false`: the Control UI's operator terminal defaults to on, which
///   is a shell in the browser for anyone holding the token;
/// - update checks, the model catalog refresh, telemetry and mDNS off: no traffic the operator
///   did not ask for (../shared/facts/openclaw.md lists the hosts each one calls).
pub fn config(port: GatewayPort, vpc_cidr: &str) -> Value {
    json!({
        "agents": {
            "defaults": {
                "sandbox": { "mode": "all" }
            }
        },
        "gateway": {
            "mode": "local",
            "bind": "lan",
            "port": port.get(),
            "trustedProxies": [vpc_cidr],
            "auth": { "mode": "token" },
            "terminal": { "enabled": false }
        },
        "update": { "checkOnStart": false },
        "models": { "catalogRefresh": { "enabled": false } },
        "telemetry": { "enabled": false },
        "discovery": { "mdns": { "mode": "off" } }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_is_local_on_the_lan_behind_the_vpc() {
        let c = config(GatewayPort::DEFAULT, "10.0.0.0/16");
        assert_eq!(c["gateway"]["mode"], "local");
        assert_eq!(c["gateway"]["bind"], "lan");
        assert_eq!(c["gateway"]["trustedProxies"], json!(["10.0.0.0/16"]));
        assert_eq!(c["gateway"]["port"], 18789);
        assert_eq!(c["agents"]["defaults"]["sandbox"]["mode"], "all");
        assert_eq!(c["gateway"]["terminal"]["enabled"], false);
        assert_eq!(c["update"]["checkOnStart"], false);
        assert!(
            !c.to_string().to_lowercase().contains("token\":\""),
            "no token value in the config"
        );
    }
}

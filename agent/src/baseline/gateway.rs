//! Control `gateway.config` [seed 000: loopback-only gateway, discovery off] and control
//! `gateway.service` [seed 000: installed, shipped disabled and stopped].
//!
//! The config lives at [`CONFIG`] (root:openclaw 0640) and the unit points the gateway at it with
//! `OPENCLAW_CONFIG_PATH` and `OPENCLAW_CONFIG_READONLY=1`: the gateway can read its config but
//! neither it nor anything it runs (the exec tool runs as the gateway's user) can rewrite it, so a
//! compromised bot cannot re-bind itself to the network or turn the web terminal back on.
//!
//! Apply merges the keys of [`wanted`] into the existing JSON and keeps every other key. An inline
//! gateway token or Telegram bot token is moved into its own 0600 file first (see
//! [`super::secrets`]). A file that is not a JSON object (OpenClaw also reads JSON5; comments are
//! not accepted here) stops the run before anything is written, and is left byte for byte.

use serde_json::{json, Map, Value};

use clawster_core::fs::{read_optional, write_atomic, Ownership};
use clawster_core::logging::Status;

use super::{
    user_ids, ApplyReport, BaselineError, Ctx, Finding, CONFIG, ENABLED_MARKER, GATEWAY_PORT,
    GATEWAY_TOKEN, GATEWAY_UNIT, LOG_FILE, TELEGRAM_TOKEN, USER,
};
use crate::host::systemd as sd_files;

/// The SecretRef provider that reads the gateway token file.
pub const TOKEN_PROVIDER: &str = "gwtoken";

/// The keys the baseline owns, as (dotted path, value).
pub fn wanted() -> Vec<(&'static str, Value)> {
    vec![
        ("gateway.mode", json!("local")),
        ("gateway.bind", json!("loopback")),
        ("gateway.port", json!(GATEWAY_PORT)),
        ("gateway.auth.mode", json!("token")),
        (
            "gateway.auth.token",
            json!({"source": "file", "provider": TOKEN_PROVIDER, "id": "value"}),
        ),
        (
            "secrets.providers.gwtoken",
            json!({"source": "file", "path": GATEWAY_TOKEN, "mode": "singleValue"}),
        ),
        ("gateway.terminal.enabled", json!(false)),
        ("discovery.mdns.mode", json!("off")),
        ("update.checkOnStart", json!(false)),
        ("models.catalogRefresh.enabled", json!(false)),
        ("telemetry.enabled", json!(false)),
        ("logging.file", json!(LOG_FILE)),
        ("tools.elevated.enabled", json!(false)),
        ("browser.enabled", json!(false)),
    ]
}

/// The value at a dotted path.
pub fn get_path<'v>(doc: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(doc, |v, k| v.get(k))
}

/// Sets the value at a dotted path, creating objects on the way; an existing non-object on the
/// way is an error naming it. Returns true when something changed.
pub fn set_path(doc: &mut Value, path: &str, value: Value) -> Result<bool, String> {
    let parts: Vec<&str> = path.split('.').collect();
    let mut cur = doc;
    for (i, k) in parts.iter().enumerate() {
        let here = parts[..i].join(".");
        let obj = cur.as_object_mut().ok_or_else(|| {
            format!(
                "{} is not an object",
                if here.is_empty() {
                    "the document"
                } else {
                    &here
                }
            )
        })?;
        if i + 1 == parts.len() {
            if obj.get(*k) == Some(&value) {
                return Ok(false);
            }
            obj.insert((*k).to_string(), value);
            return Ok(true);
        }
        cur = obj
            .entry((*k).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    Ok(false)
}

/// The parsed config and what apply will change, computed before anything is written.
#[derive(Debug)]
pub struct Plan {
    existing: Option<Vec<u8>>,
    doc: Value,
    changed: Vec<String>,
    gateway_token: Option<String>,
    telegram_token: Option<String>,
}

/// Reads and merges the config; a malformed file is an error naming it.
pub fn preflight(root: &clawster_core::fs::HostRoot) -> Result<Plan, BaselineError> {
    let path = root.path(CONFIG);
    let existing = read_optional(&path)?;
    let mut doc = match &existing {
        None => Value::Object(Map::new()),
        Some(b) if b.iter().all(u8::is_ascii_whitespace) => Value::Object(Map::new()),
        Some(b) => serde_json::from_slice::<Value>(b)
            .map_err(|e| BaselineError::malformed(&path, format!("not valid JSON ({e})")))?,
    };
    if !doc.is_object() {
        return Err(BaselineError::malformed(&path, "not a JSON object"));
    }
    let inline = |doc: &Value, p: &str| {
        get_path(doc, p)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().to_string())
    };
    let gateway_token = inline(&doc, "gateway.auth.token");
    let telegram_token = inline(&doc, "channels.telegram.botToken");
    let mut changed = Vec::new();
    for (p, v) in wanted() {
        if set_path(&mut doc, p, v).map_err(|e| BaselineError::malformed(&path, e))? {
            changed.push(p.to_string());
        }
    }
    if telegram_token.is_some() {
        if let Some(tg) = doc
            .get_mut("channels")
            .and_then(|c| c.get_mut("telegram"))
            .and_then(Value::as_object_mut)
        {
            tg.remove("botToken");
            tg.insert("tokenFile".into(), json!(TELEGRAM_TOKEN));
            changed.push("channels.telegram.botToken -> tokenFile".into());
        }
    }
    Ok(Plan {
        existing,
        doc,
        changed,
        gateway_token,
        telegram_token,
    })
}

/// Writes the token files for inline tokens, then the config.
pub fn apply_config(ctx: &Ctx<'_>, plan: Plan, rep: &mut ApplyReport) -> Result<(), BaselineError> {
    let (uid, gid) = user_ids(&ctx.root, USER)
        .ok_or_else(|| BaselineError::Other("user openclaw does not exist".into()))?;
    let secret = Ownership {
        mode: 0o600,
        uid,
        gid,
    };
    let mut moved = Vec::new();
    if let Some(t) = &plan.gateway_token {
        write_atomic(
            &ctx.root.path(GATEWAY_TOKEN),
            format!("{t}\n").as_bytes(),
            secret,
        )?;
        moved.push(GATEWAY_TOKEN);
    }
    if let Some(t) = &plan.telegram_token {
        write_atomic(
            &ctx.root.path(TELEGRAM_TOKEN),
            format!("{t}\n").as_bytes(),
            secret,
        )?;
        moved.push(TELEGRAM_TOKEN);
    }
    let own = Ownership {
        mode: 0o640,
        uid: 0,
        gid,
    };
    let bytes = match (&plan.existing, plan.changed.is_empty()) {
        // Nothing to merge: keep the operator's formatting, only owner and mode are enforced.
        (Some(b), true) => b.clone(),
        _ => {
            let mut s = serde_json::to_string_pretty(&plan.doc)
                .map_err(|e| BaselineError::Other(format!("rendering {CONFIG}: {e}")))?;
            s.push('\n');
            s.into_bytes()
        }
    };
    let mut o = write_atomic(&ctx.root.path(CONFIG), &bytes, own)?;
    if ensure_token(ctx, uid, gid)? {
        moved.push("a new gateway token in");
        moved.push(GATEWAY_TOKEN);
        o = clawster_core::fs::WriteOutcome::Changed;
    }
    let mut msg = if plan.changed.is_empty() {
        format!("{CONFIG}: loopback:{GATEWAY_PORT}, token from {GATEWAY_TOKEN}, mDNS, terminal, update checks and catalog refresh off; root:openclaw 0640")
    } else {
        format!("{CONFIG}: set {}", plan.changed.join(", "))
    };
    if !moved.is_empty() {
        msg.push_str(&format!("; token files written: {}", moved.join(" ")));
    }
    rep.outcome("gateway.config", o, msg);
    Ok(())
}

/// Every baseline key holds its value.
pub fn audit_config(ctx: &Ctx<'_>) -> Finding {
    let id = "gateway.config";
    let fix = "clawster-agent baseline apply (merges the baseline keys, keeps the rest)";
    let path = ctx.root.path(CONFIG);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => return Finding::failed(id, format!("{CONFIG}: {e}"), fix),
    };
    let doc: Value = match serde_json::from_slice(&bytes) {
        Ok(d) => d,
        Err(e) => {
            return Finding::failed(
                id,
                format!("{CONFIG} is not valid JSON ({e})"),
                "fix the file by hand, then clawster-agent baseline apply",
            )
        }
    };
    let problems: Vec<String> = wanted()
        .into_iter()
        .filter_map(|(p, v)| {
            let got = get_path(&doc, p);
            (got != Some(&v)).then(|| {
                format!(
                    "{p} is {}, expected {v}",
                    got.map(Value::to_string).unwrap_or_else(|| "unset".into())
                )
            })
        })
        .collect();
    Finding::from_problems(
        id,
        format!("{CONFIG}: bind loopback, port {GATEWAY_PORT}, auth token from {GATEWAY_TOKEN}, discovery.mdns off, gateway.terminal off, update.checkOnStart off, models.catalogRefresh off, telemetry off; read-only for the gateway (OPENCLAW_CONFIG_READONLY=1, root-owned)"),
        &problems,
        fix,
    )
}

fn marker(ctx: &Ctx<'_>) -> bool {
    ctx.root.path(ENABLED_MARKER).exists()
}

/// Keeps the gateway disabled and stopped unless `enable-gateway` enabled it.
pub fn apply_service(ctx: &Ctx<'_>, rep: &mut ApplyReport) {
    let id = "gateway.service";
    if marker(ctx) {
        rep.record(
            id,
            Status::Ok,
            format!("{GATEWAY_UNIT} enabled by enable-gateway ({ENABLED_MARKER}); left as it is"),
        );
        return;
    }
    if !ctx.live {
        let r = sd_files::disable_as_files(&ctx.root, &[GATEWAY_UNIT])
            .map(|removed| {
                if removed.is_empty() {
                    (
                        Status::Ok,
                        format!("{GATEWAY_UNIT} installed, not enabled (ships stopped)"),
                    )
                } else {
                    (
                        Status::Changed,
                        format!("disabled {GATEWAY_UNIT}: removed {}", removed.join(", ")),
                    )
                }
            })
            .map_err(|e| format!("{e:#}"));
        rep.result(id, r);
        return;
    }
    let r = (|| -> Result<(Status, String), String> {
        let sd = ctx.sd()?;
        let mut did = Vec::new();
        if sd.unit_file_state(GATEWAY_UNIT)? == "enabled" {
            sd.disable(&[GATEWAY_UNIT])?;
            sd.reload()?;
            did.push("disabled");
        }
        let st = sd.active_state(GATEWAY_UNIT)?;
        if st != "inactive" && st != "failed" {
            sd.stop(GATEWAY_UNIT)?;
            super::wait_inactive(sd, GATEWAY_UNIT, std::time::Duration::from_secs(60))?;
            did.push("stopped");
        }
        Ok(if did.is_empty() {
            (Status::Ok, format!("{GATEWAY_UNIT} installed, disabled and stopped until `clawster-agent baseline enable-gateway`"))
        } else {
            (
                Status::Changed,
                format!(
                    "{GATEWAY_UNIT} {} (not enabled with enable-gateway)",
                    did.join(" and ")
                ),
            )
        })
    })();
    rep.result(id, r);
}

/// Disabled and stopped, or enabled on purpose with `enable-gateway`.
pub fn audit_service(ctx: &Ctx<'_>) -> Finding {
    let id = "gateway.service";
    let on = marker(ctx);
    if !ctx.live {
        let text = std::fs::read_to_string(ctx.root.path(sd_files::UNIT_DIR).join(GATEWAY_UNIT))
            .unwrap_or_default();
        let enabled = sd_files::enabled_as_files(&ctx.root, GATEWAY_UNIT, &text);
        return match (on, enabled) {
            (false, false) => Finding::ok(id, format!("{GATEWAY_UNIT} not enabled (ships stopped)")),
            (true, true) => Finding::ok(id, format!("{GATEWAY_UNIT} enabled by enable-gateway")),
            (false, true) => Finding::failed(id, format!("{GATEWAY_UNIT} is enabled without enable-gateway"), "clawster-agent baseline apply (disables it), then enable-gateway when onboarding is done"),
            (true, false) => Finding::failed(id, format!("{ENABLED_MARKER} exists but {GATEWAY_UNIT} is not enabled"), "clawster-agent baseline enable-gateway"),
        };
    }
    if sd_files::unit_file(&ctx.root, GATEWAY_UNIT).is_none() {
        return Finding::failed(
            id,
            format!("{GATEWAY_UNIT} is not installed"),
            "clawster-agent baseline apply (installs it disabled and stopped)",
        );
    }
    let sd = match ctx.sd() {
        Ok(s) => s,
        Err(e) => return Finding::unknown(id, e, "run on a host with systemd"),
    };
    let state = (|| -> Result<(String, String), String> {
        Ok((
            sd.unit_file_state(GATEWAY_UNIT)?,
            sd.active_state(GATEWAY_UNIT)?,
        ))
    })();
    match state {
        Err(e) => Finding::unknown(id, e, "check that systemd answers on D-Bus"),
        Ok((file, active)) => {
            let ev = format!(
                "{GATEWAY_UNIT}: unit file {file}, {active}; enable-gateway marker {}",
                if on { "present" } else { "absent" }
            );
            let stopped = active == "inactive" || active == "failed";
            match (on, file.as_str(), stopped) {
                (false, "disabled", true) => Finding::ok(id, ev),
                (true, "enabled", _) => Finding::ok(id, ev),
                (false, _, _) => Finding::failed(id, ev, "clawster-agent baseline apply (disables and stops it); enable it with enable-gateway after onboarding"),
                (true, _, _) => Finding::failed(id, ev, "clawster-agent baseline enable-gateway"),
            }
        }
    }
}

/// Creates the gateway token (32 random bytes, hex, 0600 openclaw) if there is none; true when
/// it did. Only on a live host: an image never gets a token (prepare-image removes it).
pub fn ensure_token(ctx: &Ctx<'_>, uid: u32, gid: u32) -> Result<bool, BaselineError> {
    let token = ctx.root.path(GATEWAY_TOKEN);
    if !ctx.live || token.exists() {
        return Ok(false);
    }
    let mut raw = [0u8; 32];
    let rng = |e: std::io::Error| BaselineError::Other(format!("/dev/urandom: {e}"));
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").map_err(rng)?,
        &mut raw,
    )
    .map_err(rng)?;
    write_atomic(
        &token,
        format!("{}\n", hex::encode(raw)).as_bytes(),
        Ownership {
            mode: 0o600,
            uid,
            gid,
        },
    )?;
    Ok(true)
}

/// `enable-gateway`: after a passing audit of everything else, creates the gateway token if there
/// is none, records the decision and enables and starts the gateway over D-Bus (not waiting).
pub fn enable(ctx: &Ctx<'_>) -> Result<ApplyReport, BaselineError> {
    if !ctx.live {
        return Err(BaselineError::Other(
            "enable-gateway acts on the running host only: an image must ship with the gateway stopped".into(),
        ));
    }
    let report = super::audit(ctx);
    let blocking: Vec<String> = report
        .not_ok()
        .into_iter()
        .filter(|f| f.id != "gateway.service")
        .map(|f| format!("{} ({})", f.id, f.evidence))
        .collect();
    if !blocking.is_empty() {
        return Err(BaselineError::Other(format!(
            "the baseline audit does not pass, so the gateway stays off: {}; run `clawster-agent baseline apply`",
            blocking.join("; ")
        )));
    }
    let mut rep = ApplyReport::default();
    let (uid, gid) = user_ids(&ctx.root, USER)
        .ok_or_else(|| BaselineError::Other("user openclaw does not exist".into()))?;
    if ensure_token(ctx, uid, gid)? {
        rep.record(
            "gateway.token",
            Status::Changed,
            format!("new random token in {GATEWAY_TOKEN} (0600 openclaw)"),
        );
    } else {
        rep.record(
            "gateway.token",
            Status::Ok,
            format!("{GATEWAY_TOKEN} present"),
        );
    }
    let m = ctx.root.path(ENABLED_MARKER);
    clawster_core::fs::ensure_dir(
        m.parent().expect("marker has a parent"),
        Ownership::root(0o700),
    )?;
    let o = write_atomic(
        &m,
        b"enabled by clawster-agent baseline enable-gateway\n",
        Ownership::root(0o600),
    )?;
    let sd = ctx.sd().map_err(BaselineError::Other)?;
    let r = (|| -> Result<(Status, String), String> {
        let changes = sd.enable(&[GATEWAY_UNIT])?;
        sd.reload()?;
        let st = sd.active_state(GATEWAY_UNIT)?;
        if st == "active" || st == "activating" {
            return Ok((
                if changes.is_empty() && !o.changed() {
                    Status::Ok
                } else {
                    Status::Changed
                },
                format!("{GATEWAY_UNIT} enabled and {st}"),
            ));
        }
        let job = sd.start_no_block(GATEWAY_UNIT)?;
        Ok((Status::Changed, format!("{GATEWAY_UNIT} enabled; start queued as {job}; listens on 127.0.0.1:{GATEWAY_PORT} and [::1]:{GATEWAY_PORT} (health: curl http://127.0.0.1:{GATEWAY_PORT}/health)")))
    })();
    rep.result("gateway.service", r);
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_path_creates_and_refuses_scalars() {
        let mut d = json!({"gateway": {"port": 1, "x": true}, "keep": [1]});
        assert!(set_path(&mut d, "gateway.port", json!(18789)).expect("set"));
        assert!(!set_path(&mut d, "gateway.port", json!(18789)).expect("set"));
        assert!(set_path(&mut d, "a.b.c", json!("v")).expect("set"));
        assert_eq!(d["a"]["b"]["c"], "v");
        assert_eq!(d["gateway"]["x"], true);
        let err = set_path(&mut d, "keep.x", json!(1)).expect_err("array in the way");
        assert!(err.contains("keep"), "{err}");
    }
}

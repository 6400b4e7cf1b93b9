//! `baseline apply`, `audit` and `prepare-image` on temporary roots (files only, as on an image
//! being baked): every control's apply and audit, idempotence, malformed configs left byte for
//! byte, UFW's files, the ecs-host subset, and prepare-image with planted identity, tokens, keys,
//! histories and logs. Runs as root (CI does): it sets real owners.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use clawster_agent::baseline::image::{prepare, ImageOptions};
use clawster_agent::baseline::{self, ufw, AuditStatus, Ctx, Profile};
use clawster_core::fs::HostRoot;
use clawster_core::logging::Status;
use serde_json::Value;

// Synthetic credentials in real shapes (never real ones).
const TG: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1";
const GW: &str = "0123456789abcdef0123456789abcdef";
const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIDeadBeefDeadBeefDeadBeefDeadBeefDeadBeef\n-----END PRIVATE KEY-----\n";

fn put(root: &Path, p: &str, text: &str) {
    let f = root.join(p.trim_start_matches('/'));
    fs::create_dir_all(f.parent().unwrap()).unwrap();
    fs::write(f, text).unwrap();
}

fn ln(root: &Path, target: &str, p: &str) {
    let f = root.join(p.trim_start_matches('/'));
    fs::create_dir_all(f.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, f).unwrap();
}

fn meta(root: &Path, p: &str) -> fs::Metadata {
    fs::symlink_metadata(root.join(p.trim_start_matches('/'))).unwrap()
}

/// A Debian-like root: accounts, SSH with socket activation and its alias, the SSM agent, an
/// OpenClaw install owned by a build user, an operator's config with inline tokens.
fn image() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    put(
        r,
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\nubuntu:x:1000:1000::/home/ubuntu:/bin/bash\n",
    );
    put(
        r,
        "/etc/group",
        "root:x:0:\nsudo:x:27:ubuntu\nubuntu:x:1000:\n",
    );
    put(r, "/etc/shadow", "root:*:19000:0:99999:7:::\n");
    put(r, "/usr/sbin/nologin", "");
    put(r, "/lib/systemd/system/ssh.service", "[Unit]\nDescription=OpenBSD Secure Shell server\n[Service]\nExecStart=/usr/sbin/sshd -D\n[Install]\nWantedBy=multi-user.target\nAlias=sshd.service\n");
    put(
        r,
        "/lib/systemd/system/ssh.socket",
        "[Socket]\nListenStream=22\nAccept=no\n[Install]\nWantedBy=sockets.target\n",
    );
    ln(
        r,
        "/lib/systemd/system/ssh.service",
        "/etc/systemd/system/multi-user.target.wants/ssh.service",
    );
    ln(
        r,
        "/lib/systemd/system/ssh.service",
        "/etc/systemd/system/sshd.service",
    );
    ln(
        r,
        "/lib/systemd/system/ssh.socket",
        "/etc/systemd/system/sockets.target.wants/ssh.socket",
    );
    put(r, "/etc/ssh/sshd_config", "Port 22\n");
    put(
        r,
        "/usr/lib/systemd/system/amazon-ssm-agent.service",
        "[Service]\nExecStart=/usr/bin/amazon-ssm-agent\n[Install]\nWantedBy=multi-user.target\n",
    );
    put(r, "/opt/openclaw/bin/openclaw", "#!/bin/sh\n");
    fs::set_permissions(
        r.join("opt/openclaw/bin/openclaw"),
        fs::Permissions::from_mode(0o775),
    )
    .unwrap();
    std::os::unix::fs::chown(r.join("opt/openclaw/bin"), Some(1000), Some(1000)).unwrap();
    put(
        r,
        "/etc/openclaw/openclaw.json",
        &format!(
            "{{\"gateway\": {{\"bind\": \"lan\", \"auth\": {{\"token\": \"{GW}\"}}}}, \"channels\": {{\"telegram\": {{\"enabled\": true, \"botToken\": \"{TG}\", \"dmPolicy\": \"pairing\"}}}}, \"agents\": {{\"defaults\": {{\"model\": \"m\"}}}}}}\n"
        ),
    );
    put(
        r,
        "/var/lib/openclaw/skills/safe/SKILL.md",
        "---\nname: safe\n---\n",
    );
    fs::set_permissions(
        r.join("var/lib/openclaw/skills/safe/SKILL.md"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    dir
}

fn ctx(dir: &Path, profile: Profile) -> Ctx<'static> {
    Ctx::offline(HostRoot::new(dir), profile)
}

fn uid_of(root: &Path, user: &str) -> u32 {
    baseline::user_ids(&HostRoot::new(root), user).unwrap().0
}

#[test]
fn apply_converges_every_control_and_audit_proves_it() {
    let dir = image();
    let r = dir.path();
    let before = baseline::audit(&ctx(r, Profile::OpenclawHost));
    assert_eq!(before.exit_code(), 1);
    assert!(
        before
            .checks
            .iter()
            .all(|c| c.status == AuditStatus::Ok || !c.fix.is_empty()),
        "every failure names its fix"
    );

    let rep = baseline::apply(&ctx(r, Profile::OpenclawHost)).unwrap();
    assert!(!rep.failed(), "{:#?}", rep.steps);
    assert!(
        rep.left_for_boot
            .iter()
            .any(|l| l.contains("clawster-firewall.service")),
        "{:?}",
        rep.left_for_boot
    );
    let after = baseline::audit(&ctx(r, Profile::OpenclawHost));
    assert_eq!(after.exit_code(), 0, "{}", after.text());
    let ids: Vec<&str> = after.checks.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "ssm",
            "ssh",
            "firewall",
            "users",
            "permissions",
            "gateway.config",
            "secrets",
            "wrapper",
            "gateway.unit",
            "gateway.service",
            "window"
        ]
    );

    // Users.
    let oc = uid_of(r, "openclaw");
    assert!(oc > 0 && oc < 1000);
    assert!(baseline::user_ids(&HostRoot::new(r), "linuxbrew").is_some());
    // The maintenance window: openclaw may reach the window socket, its units are enabled.
    assert!(
        clawster_agent::host::accounts::group_members(&HostRoot::new(r), "clawster-window")
            .contains(&"openclaw".to_string())
    );
    assert!(fs::symlink_metadata(
        r.join("etc/systemd/system/sockets.target.wants/clawster-window.socket")
    )
    .is_ok());
    // Config: baseline keys set, operator keys kept, inline tokens moved into 0600 files.
    let cfg: Value =
        serde_json::from_slice(&fs::read(r.join("etc/openclaw/openclaw.json")).unwrap()).unwrap();
    assert_eq!(cfg["gateway"]["bind"], "loopback");
    assert_eq!(cfg["gateway"]["port"], 18789);
    assert_eq!(cfg["gateway"]["terminal"]["enabled"], false);
    assert_eq!(cfg["discovery"]["mdns"]["mode"], "off");
    assert_eq!(cfg["update"]["checkOnStart"], false);
    assert_eq!(cfg["models"]["catalogRefresh"]["enabled"], false);
    assert_eq!(cfg["gateway"]["auth"]["token"]["source"], "file");
    assert_eq!(cfg["agents"]["defaults"]["model"], "m");
    assert_eq!(
        cfg["channels"]["telegram"]["tokenFile"],
        baseline::TELEGRAM_TOKEN
    );
    assert!(cfg["channels"]["telegram"].get("botToken").is_none());
    let text = fs::read_to_string(r.join("etc/openclaw/openclaw.json")).unwrap();
    assert!(
        !text.contains(TG) && !text.contains(GW),
        "no token left in the config"
    );
    for (f, v) in [
        (baseline::GATEWAY_TOKEN, GW),
        (baseline::TELEGRAM_TOKEN, TG),
    ] {
        let m = meta(r, f);
        assert_eq!((m.mode() & 0o7777, m.uid()), (0o600, oc), "{f}");
        assert_eq!(
            fs::read_to_string(r.join(f.trim_start_matches('/')))
                .unwrap()
                .trim(),
            v
        );
    }
    let m = meta(r, baseline::CONFIG);
    assert_eq!(
        (m.mode() & 0o7777, m.uid()),
        (0o640, 0),
        "config readable by openclaw, writable by root only"
    );
    // Permissions.
    for d in [
        baseline::STATE_DIR,
        baseline::WORKSPACE_DIR,
        baseline::LOG_DIR,
    ] {
        let m = meta(r, d);
        assert_eq!((m.mode() & 0o7777, m.uid()), (0o700, oc), "{d}");
    }
    assert_eq!(meta(r, baseline::BUILD_LOG_DIR).uid(), 0);
    let skill = meta(r, "/var/lib/openclaw/skills/safe/SKILL.md");
    assert_eq!(
        (skill.mode() & 0o7777, skill.uid()),
        (0o600, oc),
        "state contents owner-only"
    );
    // SSH: socket, service and alias masked, enablement links gone, kill switch written.
    for u in ["ssh.service", "ssh.socket", "sshd.service"] {
        assert_eq!(
            fs::read_link(r.join("etc/systemd/system").join(u)).unwrap(),
            Path::new("/dev/null"),
            "{u}"
        );
    }
    assert!(
        fs::symlink_metadata(r.join("etc/systemd/system/multi-user.target.wants/ssh.service"))
            .is_err()
    );
    assert!(
        fs::symlink_metadata(r.join("etc/systemd/system/sockets.target.wants/ssh.socket")).is_err()
    );
    assert!(r.join("etc/ssh/sshd_not_to_be_run").exists());
    // SSM enabled where its unit lives.
    assert_eq!(
        fs::read_link(
            r.join("etc/systemd/system/multi-user.target.wants/amazon-ssm-agent.service")
        )
        .unwrap(),
        Path::new("/usr/lib/systemd/system/amazon-ssm-agent.service")
    );
    // Wrapper, /opt back to root, gateway unit installed but not enabled, firewall unit enabled.
    let w = meta(r, baseline::WRAPPER);
    assert_eq!((w.mode() & 0o7777, w.uid()), (0o755, 0));
    assert_eq!(meta(r, "/opt/openclaw/bin").uid(), 0);
    assert_eq!(meta(r, baseline::CLI).mode() & 0o022, 0);
    assert!(r
        .join("etc/systemd/system/openclaw-gateway.service")
        .exists());
    assert!(fs::symlink_metadata(
        r.join("etc/systemd/system/multi-user.target.wants/openclaw-gateway.service")
    )
    .is_err());
    assert!(fs::symlink_metadata(
        r.join("etc/systemd/system/sysinit.target.wants/clawster-firewall.service")
    )
    .is_ok());

    // Idempotent: nothing changes the second time.
    let again = baseline::apply(&ctx(r, Profile::OpenclawHost)).unwrap();
    let changed: Vec<_> = again
        .steps
        .iter()
        .filter(|s| s.status != Status::Ok)
        .collect();
    assert!(changed.is_empty(), "{changed:#?}");
}

#[test]
fn audit_names_each_drift() {
    let dir = image();
    let r = dir.path();
    baseline::apply(&ctx(r, Profile::OpenclawHost)).unwrap();
    // Drift: a re-enabled terminal, an unmasked socket, a world-readable token, a foreign wrapper.
    let p = r.join("etc/openclaw/openclaw.json");
    let mut cfg: Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
    cfg["gateway"]["terminal"]["enabled"] = Value::Bool(true);
    fs::write(&p, serde_json::to_vec(&cfg).unwrap()).unwrap();
    fs::remove_file(r.join("etc/systemd/system/ssh.socket")).unwrap();
    fs::set_permissions(
        r.join(baseline::GATEWAY_TOKEN.trim_start_matches('/')),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    fs::write(
        r.join("usr/local/bin/openclaw"),
        "#!/bin/sh\nexec /opt/openclaw/bin/openclaw \"$@\"\n",
    )
    .unwrap();
    let a = baseline::audit(&ctx(r, Profile::OpenclawHost));
    let failed: Vec<(&str, &str)> = a
        .checks
        .iter()
        .filter(|c| c.status == AuditStatus::Failed)
        .map(|c| (c.id.as_str(), c.evidence.as_str()))
        .collect();
    let ids: Vec<&str> = failed.iter().map(|f| f.0).collect();
    assert_eq!(
        ids,
        ["ssh", "permissions", "gateway.config", "secrets", "wrapper"],
        "{failed:#?}"
    );
    assert!(failed
        .iter()
        .any(|(_, e)| e.contains("gateway.terminal.enabled is true")));
    assert!(failed
        .iter()
        .any(|(_, e)| e.contains("ssh.socket not masked")));
    assert_eq!(a.exit_code(), 1);
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json["checks"][1]["status"], "failed");
    assert!(json["checks"][1]["fix"].as_str().unwrap().contains("apply"));
    // apply repairs all of it.
    assert!(!baseline::apply(&ctx(r, Profile::OpenclawHost))
        .unwrap()
        .failed());
    assert_eq!(
        baseline::audit(&ctx(r, Profile::OpenclawHost)).exit_code(),
        0
    );
}

#[test]
fn malformed_config_stops_the_run_and_is_left_byte_for_byte() {
    for bad in [
        "{\"gateway\": {\"bind\": \"loopback\",}}\n",
        "// json5 comment\n{}\n",
        "[1, 2]\n",
        "{\"gateway\": \"loopback\"}\n",
    ] {
        let dir = image();
        let r = dir.path();
        fs::write(r.join("etc/openclaw/openclaw.json"), bad).unwrap();
        let passwd = fs::read(r.join("etc/passwd")).unwrap();
        let err = baseline::apply(&ctx(r, Profile::OpenclawHost))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/etc/openclaw/openclaw.json") && err.contains("left untouched"),
            "{err}"
        );
        assert_eq!(
            fs::read_to_string(r.join("etc/openclaw/openclaw.json")).unwrap(),
            bad
        );
        assert_eq!(
            fs::read(r.join("etc/passwd")).unwrap(),
            passwd,
            "nothing written before the preflight"
        );
        assert!(!r.join("usr/local/bin/openclaw").exists());
    }
}

const USER_RULES: &str = "*filter\n:ufw-user-input - [0:0]\n:ufw-user-output - [0:0]\n### RULES ###\n\n### END RULES ###\n\n### LOGGING ###\n### END LOGGING ###\nCOMMIT\n";

fn with_ufw(r: &Path) {
    put(r, "/usr/sbin/ufw", "");
    put(
        r,
        "/etc/ufw/ufw.conf",
        "# /etc/ufw/ufw.conf\nENABLED=no\nLOGLEVEL=low\n",
    );
    put(r, "/etc/default/ufw", "IPV6=yes\nDEFAULT_INPUT_POLICY=\"ACCEPT\"\nDEFAULT_OUTPUT_POLICY=\"ACCEPT\"\nDEFAULT_FORWARD_POLICY=\"DROP\"\n");
    put(r, "/etc/ufw/user.rules", USER_RULES);
    put(
        r,
        "/etc/ufw/user6.rules",
        &USER_RULES.replace("ufw-user", "ufw6-user"),
    );
}

#[test]
fn ufw_files_where_ufw_is_installed() {
    let dir = image();
    let r = dir.path();
    with_ufw(r);
    let rep = baseline::apply(&ctx(r, Profile::EcsHost)).unwrap();
    assert!(!rep.failed(), "{:#?}", rep.steps);
    let conf = fs::read_to_string(r.join("etc/ufw/ufw.conf")).unwrap();
    assert!(conf.contains("ENABLED=yes") && conf.contains("LOGLEVEL=low"));
    let def = fs::read_to_string(r.join("etc/default/ufw")).unwrap();
    assert!(
        def.contains("DEFAULT_INPUT_POLICY=\"DROP\"")
            && def.contains("DEFAULT_FORWARD_POLICY=\"DROP\"")
    );
    let v4 = fs::read_to_string(r.join("etc/ufw/user.rules")).unwrap();
    assert!(
        v4.contains("-A ufw-user-input -s 127.0.0.0/8 -j DROP")
            && v4.contains("### tuple ### allow any any 0.0.0.0/0 any 0.0.0.0/0 in_lo")
    );
    let v6 = fs::read_to_string(r.join("etc/ufw/user6.rules")).unwrap();
    assert!(v6.contains("-A ufw6-user-input -s ::1 -j DROP"));
    assert!(
        !r.join("etc/systemd/system/clawster-firewall.service")
            .exists(),
        "no own table where UFW is installed"
    );
    let a = baseline::audit(&ctx(r, Profile::EcsHost));
    assert_eq!(a.exit_code(), 0, "{}", a.text());
    assert!(a.checks[2].evidence.starts_with("UFW"));
    // An operator's SSH allow rule fails the control, and is kept.
    let opened = v4.replace("### END RULES ###", "### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n-A ufw-user-input -p tcp --dport 22 -j ACCEPT\n### END RULES ###");
    fs::write(r.join("etc/ufw/user.rules"), &opened).unwrap();
    let a = baseline::audit(&ctx(r, Profile::EcsHost));
    assert_eq!(a.checks[2].status, AuditStatus::Failed);
    assert!(
        a.checks[2].evidence.contains("allow tcp 22"),
        "{}",
        a.checks[2].evidence
    );
    assert!(baseline::apply(&ctx(r, Profile::EcsHost)).unwrap().failed());
    assert_eq!(
        fs::read_to_string(r.join("etc/ufw/user.rules")).unwrap(),
        opened
    );
}

#[test]
fn malformed_ufw_files_stop_the_run() {
    for (file, bad) in [
        ("/etc/default/ufw", "IPV6 yes\n"),
        ("/etc/ufw/user.rules", "*filter\nCOMMIT\n"),
        ("/etc/ufw/ufw.conf", "ENABLED=no\nthis is not a setting\n"),
    ] {
        let dir = image();
        let r = dir.path();
        with_ufw(r);
        put(r, file, bad);
        let err = baseline::apply(&ctx(r, Profile::EcsHost))
            .unwrap_err()
            .to_string();
        assert!(err.contains(file), "{err}");
        assert_eq!(
            fs::read_to_string(r.join(file.trim_start_matches('/'))).unwrap(),
            bad
        );
        assert!(
            fs::read_link(r.join("etc/systemd/system/ssh.service")).is_err(),
            "nothing done before the preflight"
        );
    }
    let dir = image();
    with_ufw(dir.path());
    fs::remove_file(dir.path().join("etc/ufw/user6.rules")).unwrap();
    assert!(ufw::preflight(&HostRoot::new(dir.path()))
        .unwrap_err()
        .to_string()
        .contains("user6.rules"));
}

#[test]
fn ecs_host_profile_is_the_subset() {
    let dir = image();
    let r = dir.path();
    let rep = baseline::apply(&ctx(r, Profile::EcsHost)).unwrap();
    let controls: Vec<&str> = rep.steps.iter().map(|s| s.control.as_str()).collect();
    assert_eq!(controls, ["ssm", "ssh", "firewall"]);
    assert!(baseline::user_ids(&HostRoot::new(r), "openclaw").is_none());
    assert_eq!(Profile::recorded(&HostRoot::new(r)), Some(Profile::EcsHost));
    let a = baseline::audit(&ctx(r, Profile::EcsHost));
    assert_eq!(a.checks.len(), 3);
    assert_eq!(a.exit_code(), 0, "{}", a.text());
    // The ECS metadata endpoint rule exists only in this profile.
    let ecs = baseline::firewall::ruleset(Profile::EcsHost);
    assert_ne!(ecs, baseline::firewall::ruleset(Profile::OpenclawHost));
}

/// Issue 19: a host without the SSM agent keeps its SSH, byte for byte, and the step says why;
/// once the agent is installed, the next apply masks SSH.
#[test]
fn ssh_is_not_masked_without_an_ssm_agent() {
    let dir = image();
    let r = dir.path();
    fs::remove_file(r.join("usr/lib/systemd/system/amazon-ssm-agent.service")).unwrap();
    let ssh_links = |r: &Path| -> Vec<(String, String)> {
        let mut t = tree(r, "etc/systemd/system");
        t.retain(|(p, _)| p.contains("ssh"));
        t
    };
    let before = ssh_links(r);
    assert!(!before.is_empty());
    let rep = baseline::apply(&ctx(r, Profile::EcsHost)).unwrap();
    let ssh = rep.steps.iter().find(|s| s.control == "ssh").unwrap();
    assert_eq!(ssh.status, Status::Failed, "{}", ssh.message);
    for word in [
        "refused to mask",
        "ssh.service",
        "no SSM agent unit",
        "amazon-ssm-agent.service",
    ] {
        assert!(
            ssh.message.contains(word),
            "{word:?} missing in: {}",
            ssh.message
        );
    }
    assert_eq!(ssh_links(r), before, "SSH unit links changed");
    assert!(!r.join("etc/ssh/sshd_not_to_be_run").exists());
    let a = baseline::audit(&ctx(r, Profile::EcsHost));
    assert_ne!(a.exit_code(), 0, "{}", a.text());

    // The agent arrives: the same apply now masks SSH.
    put(
        r,
        "/usr/lib/systemd/system/amazon-ssm-agent.service",
        "[Service]\nExecStart=/usr/bin/amazon-ssm-agent\n[Install]\nWantedBy=multi-user.target\n",
    );
    let rep = baseline::apply(&ctx(r, Profile::EcsHost)).unwrap();
    let ssh = rep.steps.iter().find(|s| s.control == "ssh").unwrap();
    assert_eq!(ssh.status, Status::Changed, "{}", ssh.message);
    assert_eq!(
        fs::read_link(r.join("etc/systemd/system/ssh.service")).unwrap(),
        Path::new("/dev/null")
    );
    assert!(r.join("etc/ssh/sshd_not_to_be_run").exists());
}

/// Every path under `rel` with its link target (or "file"/"dir"), sorted.
fn tree(root: &Path, rel: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root.join(rel)];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let m = fs::symlink_metadata(&p).unwrap();
            let what = if m.file_type().is_symlink() {
                fs::read_link(&p).unwrap().display().to_string()
            } else if m.is_dir() {
                stack.push(p.clone());
                "dir".into()
            } else {
                "file".into()
            };
            out.push((p.strip_prefix(root).unwrap().display().to_string(), what));
        }
    }
    out.sort();
    out
}

#[test]
fn missing_ssm_agent_and_openclaw_fail_with_their_fix() {
    let dir = image();
    let r = dir.path();
    fs::remove_file(r.join("usr/lib/systemd/system/amazon-ssm-agent.service")).unwrap();
    fs::remove_dir_all(r.join("opt/openclaw")).unwrap();
    let rep = baseline::apply(&ctx(r, Profile::OpenclawHost)).unwrap();
    let failed: Vec<&str> = rep
        .steps
        .iter()
        .filter(|s| s.status == Status::Failed)
        .map(|s| s.control.as_str())
        .collect();
    // Without SSM, SSH is the only way in: the ssh step refuses too (see the lockout test).
    assert_eq!(failed, ["wrapper", "ssm", "ssh"]);
    let a = baseline::audit(&ctx(r, Profile::OpenclawHost));
    let ssm = &a.checks[0];
    assert_eq!(ssm.status, AuditStatus::Failed);
    assert!(ssm.fix.contains("SSM agent"), "{}", ssm.fix);
    let w = a.checks.iter().find(|c| c.id == "wrapper").unwrap();
    assert!(
        w.fix.contains("npm install -g --prefix /opt/openclaw"),
        "{}",
        w.fix
    );
}

/// What a host that ran the gateway and was administered leaves behind.
fn plant(r: &Path) {
    let st = "/var/lib/openclaw";
    put(
        r,
        &format!("{st}/state/openclaw.sqlite"),
        &format!("SQLite format 3\0device_identities {PEM}"),
    );
    put(r, &format!("{st}/state/openclaw.sqlite-wal"), "wal");
    put(r, &format!("{st}/config-journal-fingerprint.key"), "k");
    put(
        r,
        &format!("{st}/agents/main/agent/openclaw-agent.sqlite"),
        "transcripts",
    );
    put(r, &format!("{st}/workspace/SOUL.md"), "persona");
    put(r, &format!("{st}/cache/control-ui-assets/x"), "c");
    put(r, &format!("{st}/.npm/_logs/1-debug-0.log"), "npm");
    put(r, &format!("{st}/openclaw.json"), "{}\n");
    put(r, "/var/log/openclaw/openclaw.log", "{\"msg\":\"ready\"}\n");
    put(r, "/tmp/openclaw/openclaw-2026-12-02.log", "log");
    put(r, "/tmp/node-compile-cache/openclaw/x", "cache");
    put(r, "/root/.bash_history", "export TELEGRAM_BOT_TOKEN=x\n");
    put(
        r,
        "/root/.aws/credentials",
        "[default]\naws_access_key_id = AKIAZ7QRSTUVWXY23456\n",
    );
    put(
        r,
        "/home/ubuntu/.ssh/authorized_keys",
        "ssh-ed25519 AAAA build@laptop\n",
    );
    put(r, "/home/ubuntu/.python_history", "x\n");
    // The journal keeps short fields as plain bytes: a gateway that logged its Telegram token.
    let j = "/var/log/journal/0123456789abcdef0123456789abcdef";
    put(
        r,
        &format!("{j}/system.journal"),
        &format!("LPKSHHRH\0MESSAGE=telegram token {TG}\0"),
    );
    put(
        r,
        &format!("{j}/system@0a1b2c-0000000000000001-0005f1e2d3c4b5a6.journal"),
        "LPKSHHRH",
    );
    put(r, &format!("{j}/user-1000.journal~"), "LPKSHHRH");
    put(
        r,
        "/var/log/journal/remote/remote-10.0.0.5.journal",
        "LPKSHHRH",
    );
    put(r, "/etc/ssh/ssh_host_ed25519_key", PEM);
    put(
        r,
        "/etc/ssh/ssh_host_ed25519_key.pub",
        "ssh-ed25519 AAAA root@build\n",
    );
    put(
        r,
        "/var/lib/cloud/instances/i-0abc/user-data.txt",
        "#!/bin/sh\n",
    );
    put(r, "/var/lib/cloud/seed/nocloud/meta-data", "keep\n");
    put(
        r,
        "/var/lib/amazon/ssm/registration",
        "{\"ManagedInstanceID\":\"mi-1\"}",
    );
    put(r, "/var/lib/ecs/data/agent.db", "bolt");
    put(
        r,
        "/etc/ecs/ecs.config",
        "ECS_CLUSTER=build\nECS_DISABLE_PRIVILEGED=true\n",
    );
    put(r, "/etc/machine-id", "0123456789abcdef0123456789abcdef\n");
}

#[test]
fn prepare_image_removes_planted_material_and_scans_for_the_rest() {
    let dir = image();
    let r = dir.path();
    baseline::apply(&ctx(r, Profile::OpenclawHost)).unwrap();
    plant(r);
    let rep = prepare(&ctx(r, Profile::OpenclawHost), &ImageOptions::default()).unwrap();
    assert!(
        rep.passed(),
        "{:#?}\n{:#?}\n{}",
        rep.steps,
        rep.scan.hits,
        rep.audit.text()
    );
    for gone in [
        "var/lib/openclaw/state",
        "var/lib/openclaw/agents",
        "var/lib/openclaw/config-journal-fingerprint.key",
        "var/lib/openclaw/cache",
        "var/lib/openclaw/.npm",
        "var/lib/openclaw/secrets/gateway-token",
        "var/lib/openclaw/secrets/telegram-bot-token",
        "var/lib/openclaw/workspace/SOUL.md",
        "var/log/openclaw/openclaw.log",
        "tmp/openclaw",
        "tmp/node-compile-cache",
        "root/.bash_history",
        "root/.aws",
        "home/ubuntu/.ssh/authorized_keys",
        "home/ubuntu/.python_history",
        "etc/ssh/ssh_host_ed25519_key",
        "etc/ssh/ssh_host_ed25519_key.pub",
        "var/lib/cloud/instances",
        "var/lib/amazon/ssm/registration",
        "var/lib/ecs/data/agent.db",
        "var/log/journal/0123456789abcdef0123456789abcdef/system.journal",
        "var/log/journal/0123456789abcdef0123456789abcdef/user-1000.journal~",
        "var/log/journal/remote/remote-10.0.0.5.journal",
    ] {
        assert!(
            fs::symlink_metadata(r.join(gone)).is_err(),
            "{gone} must be gone"
        );
        assert!(
            rep.removed
                .iter()
                .any(|x| x.trim_start_matches('/').starts_with(gone)
                    || gone.starts_with(x.trim_start_matches('/'))),
            "{gone} reported: {:?}",
            rep.removed
        );
    }
    for kept in [
        "var/lib/openclaw/openclaw.json",
        "var/lib/openclaw/skills/safe/SKILL.md",
        "var/lib/cloud/seed/nocloud/meta-data",
        "etc/openclaw/openclaw.json",
    ] {
        assert!(r.join(kept).exists(), "{kept} must be kept");
    }
    assert!(
        r.join("var/lib/openclaw/workspace").is_dir(),
        "permissions re-created the workspace"
    );
    assert_eq!(fs::read(r.join("etc/machine-id")).unwrap(), b"");
    assert_eq!(
        fs::read_to_string(r.join("etc/ecs/ecs.config")).unwrap(),
        "ECS_DISABLE_PRIVILEGED=true\n"
    );
    // The kept config still points at the token file; enable-gateway makes a new token at boot.
    let cfg: Value =
        serde_json::from_slice(&fs::read(r.join("etc/openclaw/openclaw.json")).unwrap()).unwrap();
    assert_eq!(
        cfg["secrets"]["providers"]["gwtoken"]["path"],
        baseline::GATEWAY_TOKEN
    );

    // A key it was not told about fails the run, naming file and line, value masked.
    put(
        r,
        "/etc/profile.d/bot.sh",
        &format!("# bot\nexport TELEGRAM_BOT_TOKEN={TG}\n"),
    );
    let rep = prepare(&ctx(r, Profile::OpenclawHost), &ImageOptions::default()).unwrap();
    assert!(!rep.passed());
    assert_eq!(rep.scan.hits.len(), 1, "{:?}", rep.scan.hits);
    let h = &rep.scan.hits[0];
    assert_eq!(
        (h.path.as_str(), h.line, h.kind.as_str()),
        ("/etc/profile.d/bot.sh", 2, "Telegram bot token")
    );
    assert!(!h.masked.contains(TG));
    let failed = rep
        .steps
        .steps
        .iter()
        .find(|s| s.control == "image.secrets")
        .unwrap();
    assert!(
        failed.message.contains("/etc/profile.d/bot.sh:2") && !failed.message.contains(TG),
        "{}",
        failed.message
    );
    // Told to remove it, the run passes.
    let rep = prepare(
        &ctx(r, Profile::OpenclawHost),
        &ImageOptions {
            remove: vec!["/etc/profile.d/bot.sh".into()],
            allow: vec![],
        },
    )
    .unwrap();
    assert!(rep.passed(), "{:?}", rep.scan.hits);
    assert!(!r.join("etc/profile.d/bot.sh").exists());
}

#[test]
fn prepare_image_refuses_bad_paths() {
    let dir = image();
    for bad in ["relative/x", "/etc/../x", "/", "/a/./b"] {
        let err = prepare(
            &ctx(dir.path(), Profile::OpenclawHost),
            &ImageOptions {
                remove: vec![bad.into()],
                allow: vec![],
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("--remove") && err.contains(bad), "{err}");
    }
    let err = prepare(
        &ctx(dir.path(), Profile::OpenclawHost),
        &ImageOptions {
            remove: vec![],
            allow: vec!["etc".into()],
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("--allow"), "{err}");
}

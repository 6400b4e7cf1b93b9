//! The policy on OpenClaw's recorded bodies (allowed) and an escape corpus (refused), one case per
//! rule.

use super::*;
use crate::docker_guard::http::parse_target;

/// The create body OpenClaw 2026.9.6 sent (shared/facts/openclaw-sandbox.md §4), with the bind
/// sources under `{ROOT}`.
const RECORDED_CREATE: &str = r#"{"Hostname":"","Domainname":"","User":"0:0","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["LANG=C.UTF-8","OPENCLAW_CLI=1"],"Cmd":["sleep","infinity"],"Image":"openclaw-sandbox:bookworm-slim","Volumes":{},"WorkingDir":"/workspace","Entrypoint":null,"OnBuild":null,"Labels":{"openclaw.configHash":"0f","openclaw.createArgsEpoch":"2026-08-25-container-env-file","openclaw.createdAtMs":"1","openclaw.mountFormatVersion":"4","openclaw.sandbox":"1","openclaw.sessionKey":"agent:main:sbxtest:workspace:7b98fa7d087cad3812af3ef3f4445aa0"},"HostConfig":{"Binds":["{ROOT}/workspace:/workspace:z","{ROOT}/sandbox/skills-workspaces/workspace-0c20/.openclaw/sandbox-skills/skills:/workspace/.openclaw/sandbox-skills/skills:ro,z"],"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"none","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":false,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[0,0],"CapAdd":null,"CapDrop":["ALL"],"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":true,"SecurityOpt":["no-new-privileges"],"Tmpfs":{"/run":"","/tmp":"","/var/tmp":""},"UTSMode":"","UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":-1,"OomKillDisable":false,"PidsLimit":0,"Ulimits":[],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null,"Init":true},"NetworkingConfig":{"EndpointsConfig":{}}}"#;

const PROBE_SCRIPT_SHA: &str = "a1b82f97411d1cb9ccf58606de63a1ab40b5f6b4a73cfdeca180266fa0fe52c9";

struct Fixture {
    dir: tempfile::TempDir,
    policy: Policy,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("state");
    std::fs::create_dir_all(root.join("workspace")).expect("mkdir");
    let policy = Policy {
        bind_root: root,
        ..Policy::default()
    };
    Fixture { dir, policy }
}

impl Fixture {
    fn root(&self) -> String {
        self.policy.bind_root.display().to_string()
    }
    fn recorded(&self) -> Value {
        serde_json::from_str(&RECORDED_CREATE.replace("{ROOT}", &self.root())).expect("json")
    }
    fn create(&self, body: &[u8]) -> Verdict {
        let t =
            parse_target("/v1.44/containers/create?name=openclaw-sbx-workspace-7b98").expect("t");
        judge("POST", &t, Some(body), &self.policy)
    }
    fn create_with(&self, f: impl FnOnce(&mut Value)) -> Verdict {
        let mut v = self.recorded();
        f(&mut v);
        self.create(&serde_json::to_vec(&v).expect("ser"))
    }
}

fn rule(v: &Verdict) -> &'static str {
    match v {
        Verdict::Refuse(r) => r.rule,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn forwarded_body(v: &Verdict) -> Value {
    match v {
        Verdict::Forward(f) => {
            serde_json::from_slice(f.body.as_deref().expect("body")).expect("json")
        }
        other => panic!("expected forward, got {other:?}"),
    }
}

#[test]
fn recorded_create_is_allowed_and_rewritten() {
    let fx = fixture();
    let v = fx.create(RECORDED_CREATE.replace("{ROOT}", &fx.root()).as_bytes());
    let b = forwarded_body(&v);
    assert_eq!(b["HostConfig"]["Runtime"], "sysbox-runc");
    assert_eq!(b["HostConfig"]["Memory"], 1 << 30);
    assert_eq!(b["HostConfig"]["MemorySwap"], 1 << 30);
    assert_eq!(b["HostConfig"]["NanoCpus"], 1_000_000_000);
    assert_eq!(b["HostConfig"]["PidsLimit"], 512);
    assert_eq!(b["Labels"][OWNER_LABEL], "openclaw");
    assert_eq!(b["Labels"]["openclaw.sandbox"], "1");
    // Everything else is forwarded as sent.
    assert_eq!(
        b["HostConfig"]["Binds"],
        fx.recorded()["HostConfig"]["Binds"]
    );
    assert_eq!(b["Cmd"], json!(["sleep", "infinity"]));
    match v {
        Verdict::Forward(f) => {
            assert_eq!(f.note, Note::Created("openclaw-sbx-workspace-7b98".into()))
        }
        _ => unreachable!(),
    }
}

#[test]
fn limits_are_capped_not_raised() {
    let fx = fixture();
    let b = forwarded_body(&fx.create_with(|v| {
        v["HostConfig"]["Memory"] = json!(512 << 20);
        v["HostConfig"]["NanoCpus"] = json!(500_000_000);
        v["HostConfig"]["PidsLimit"] = json!(100);
    }));
    assert_eq!(b["HostConfig"]["Memory"], 512 << 20);
    assert_eq!(b["HostConfig"]["NanoCpus"], 500_000_000);
    assert_eq!(b["HostConfig"]["PidsLimit"], 100);
    let b = forwarded_body(&fx.create_with(|v| {
        v["HostConfig"]["Memory"] = json!(64_i64 << 30);
        v["HostConfig"]["NanoCpus"] = json!(64_000_000_000_i64);
        v["HostConfig"]["PidsLimit"] = json!(-1);
        v["HostConfig"]["MemorySwap"] = json!(-1);
    }));
    assert_eq!(b["HostConfig"]["Memory"], 1 << 30);
    assert_eq!(b["HostConfig"]["MemorySwap"], 1 << 30);
    assert_eq!(b["HostConfig"]["NanoCpus"], 1_000_000_000);
    assert_eq!(b["HostConfig"]["PidsLimit"], 512);
    let b = forwarded_body(&fx.create_with(|v| {
        v["HostConfig"]["Runtime"] = json!("sysbox-runc");
    }));
    assert_eq!(b["HostConfig"]["Runtime"], "sysbox-runc");
}

#[test]
fn every_create_rule_refuses_its_escape() {
    let fx = fixture();
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("create.image", Box::new(|v| v["Image"] = json!("alpine"))),
        ("create.label", Box::new(|v| v["Labels"] = json!({}))),
        (
            "create.privileged",
            Box::new(|v| v["HostConfig"]["Privileged"] = json!(true)),
        ),
        (
            "create.cap_add",
            Box::new(|v| v["HostConfig"]["CapAdd"] = json!(["SYS_ADMIN"])),
        ),
        (
            "create.cap_drop",
            Box::new(|v| v["HostConfig"]["CapDrop"] = json!(["NET_RAW"])),
        ),
        (
            "create.no_new_privileges",
            Box::new(|v| v["HostConfig"]["SecurityOpt"] = json!([])),
        ),
        (
            "create.security_opt",
            Box::new(|v| {
                v["HostConfig"]["SecurityOpt"] = json!(["no-new-privileges", "seccomp=unconfined"])
            }),
        ),
        (
            "create.security_opt",
            Box::new(|v| {
                v["HostConfig"]["SecurityOpt"] = json!(["no-new-privileges", "apparmor=unconfined"])
            }),
        ),
        (
            "create.security_opt",
            Box::new(|v| {
                v["HostConfig"]["SecurityOpt"] = json!(["no-new-privileges", "label=disable"])
            }),
        ),
        (
            "create.security_opt",
            Box::new(|v| {
                v["HostConfig"]["SecurityOpt"] =
                    json!(["no-new-privileges", "systempaths=unconfined"])
            }),
        ),
        (
            "create.namespaces",
            Box::new(|v| v["HostConfig"]["PidMode"] = json!("host")),
        ),
        (
            "create.namespaces",
            Box::new(|v| v["HostConfig"]["PidMode"] = json!("container:abc")),
        ),
        (
            "create.namespaces",
            Box::new(|v| v["HostConfig"]["IpcMode"] = json!("host")),
        ),
        (
            "create.namespaces",
            Box::new(|v| v["HostConfig"]["UTSMode"] = json!("host")),
        ),
        (
            "create.namespaces",
            Box::new(|v| v["HostConfig"]["UsernsMode"] = json!("host")),
        ),
        (
            "create.namespaces",
            Box::new(|v| v["HostConfig"]["CgroupnsMode"] = json!("host")),
        ),
        (
            "create.namespaces",
            Box::new(|v| v["HostConfig"]["Cgroup"] = json!("container:x")),
        ),
        (
            "create.network",
            Box::new(|v| v["HostConfig"]["NetworkMode"] = json!("host")),
        ),
        (
            "create.network",
            Box::new(|v| v["HostConfig"]["NetworkMode"] = json!("container:x")),
        ),
        (
            "create.network",
            Box::new(|v| v["HostConfig"]["NetworkMode"] = json!("bridge")),
        ),
        (
            "create.network",
            Box::new(|v| v["NetworkingConfig"]["EndpointsConfig"] = json!({"host": {}})),
        ),
        (
            "create.ports",
            Box::new(|v| v["HostConfig"]["PortBindings"] = json!({"22/tcp": [{"HostPort": "22"}]})),
        ),
        (
            "create.ports",
            Box::new(|v| v["HostConfig"]["PublishAllPorts"] = json!(true)),
        ),
        (
            "create.config",
            Box::new(|v| v["ExposedPorts"] = json!({"22/tcp": {}})),
        ),
        (
            "create.devices",
            Box::new(
                |v| v["HostConfig"]["Devices"] = json!([{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda", "CgroupPermissions": "rwm"}]),
            ),
        ),
        (
            "create.devices",
            Box::new(|v| v["HostConfig"]["DeviceCgroupRules"] = json!(["a *:* rwm"])),
        ),
        (
            "create.devices",
            Box::new(|v| v["HostConfig"]["DeviceRequests"] = json!([{"Count": -1}])),
        ),
        (
            "create.volumes_from",
            Box::new(|v| v["HostConfig"]["VolumesFrom"] = json!(["other"])),
        ),
        (
            "create.links",
            Box::new(|v| v["HostConfig"]["Links"] = json!(["other:o"])),
        ),
        (
            "create.group_add",
            Box::new(|v| v["HostConfig"]["GroupAdd"] = json!(["docker"])),
        ),
        (
            "create.sysctls",
            Box::new(|v| v["HostConfig"]["Sysctls"] = json!({"kernel.core_pattern": "|/x"})),
        ),
        (
            "create.annotations",
            Box::new(|v| v["HostConfig"]["Annotations"] = json!({"a": "b"})),
        ),
        (
            "create.mounts",
            Box::new(|v| {
                v["HostConfig"]["Mounts"] =
                    json!([{"Type": "bind", "Source": "/", "Target": "/host"}])
            }),
        ),
        (
            "create.mounts",
            Box::new(|v| v["HostConfig"]["VolumeDriver"] = json!("local")),
        ),
        (
            "create.config",
            Box::new(|v| v["Volumes"] = json!({"/data": {}})),
        ),
        (
            "create.cgroup_parent",
            Box::new(|v| v["HostConfig"]["CgroupParent"] = json!("/")),
        ),
        (
            "create.log_config",
            Box::new(|v| v["HostConfig"]["LogConfig"] = json!({"Type": "syslog", "Config": {}})),
        ),
        (
            "create.log_config",
            Box::new(|v| {
                v["HostConfig"]["LogConfig"] = json!({"Type": "", "Config": {"max-size": "1"}})
            }),
        ),
        (
            "create.masked_paths",
            Box::new(|v| v["HostConfig"]["MaskedPaths"] = json!([])),
        ),
        (
            "create.masked_paths",
            Box::new(|v| v["HostConfig"]["ReadonlyPaths"] = json!([])),
        ),
        (
            "create.restart",
            Box::new(|v| v["HostConfig"]["RestartPolicy"] = json!({"Name": "always"})),
        ),
        (
            "create.runtime",
            Box::new(|v| v["HostConfig"]["Runtime"] = json!("runc")),
        ),
        (
            "create.oom",
            Box::new(|v| v["HostConfig"]["OomKillDisable"] = json!(true)),
        ),
        (
            "create.oom",
            Box::new(|v| v["HostConfig"]["OomScoreAdj"] = json!(-1000)),
        ),
        (
            "create.realtime",
            Box::new(|v| v["HostConfig"]["CpuRealtimeRuntime"] = json!(1000)),
        ),
        (
            "create.isolation",
            Box::new(|v| v["HostConfig"]["Isolation"] = json!("hyperv")),
        ),
        (
            "create.ulimits",
            Box::new(|v| {
                v["HostConfig"]["Ulimits"] = json!([{"Name": "memlock", "Hard": -1, "Soft": -1}])
            }),
        ),
        (
            "create.limits",
            Box::new(|v| v["HostConfig"]["CpuQuota"] = json!(1_000_000)),
        ),
        (
            "create.storage_opt",
            Box::new(|v| v["HostConfig"]["StorageOpt"] = json!({"size": "1T"})),
        ),
        (
            "create.binds",
            Box::new(|v| v["HostConfig"]["Binds"] = json!(["/:/host"])),
        ),
        (
            "create.binds",
            Box::new(|v| {
                v["HostConfig"]["Binds"] = json!(["/var/run/docker.sock:/var/run/docker.sock"])
            }),
        ),
        (
            "create.binds",
            Box::new(|v| v["HostConfig"]["Binds"] = json!(["myvolume:/data"])),
        ),
        (
            "create.privileged",
            Box::new(|v| v["HostConfig"]["Privileged"] = json!("true")),
        ),
        (
            "body.fields",
            Box::new(|v| v["HostConfig"]["Memory"] = json!(1.5)),
        ),
        (
            "body.fields",
            Box::new(|v| v["HostConfig"]["Frobnicate"] = json!(1)),
        ),
    ];
    for (want, f) in &cases {
        let v = fx.create_with(f);
        assert_eq!(rule(&v), *want, "{v:?}");
    }
}

#[test]
fn bind_sources_escaping_the_root_are_refused() {
    let fx = fixture();
    let root = fx.root();
    std::os::unix::fs::symlink("/etc", fx.policy.bind_root.join("workspace/etc-link"))
        .expect("symlink");
    std::os::unix::fs::symlink("/", fx.policy.bind_root.join("rootlink")).expect("symlink");
    for bind in [
        format!("{root}/../..:/host"),
        format!("{root}/workspace/../../x:/host"),
        format!("{root}/workspace/etc-link:/host"),
        format!("{root}/workspace/etc-link/shadow:/host:ro"),
        format!("{root}/rootlink:/host"),
        format!("{root}x:/host"),
        format!("{root}/workspace:/host:shared"),
        format!("{root}/workspace:/host:Z"),
        format!("{root}/workspace:/host:ro,ro"),
        format!("{root}/workspace:/host:ro,rw"),
        format!("{root}/workspace:/"),
        format!("{root}/workspace:relative"),
        format!("{root}/workspace:/a:ro:extra"),
        "relative:/host".to_string(),
    ] {
        let v = fx.create_with(|v| v["HostConfig"]["Binds"] = json!([bind]));
        assert_eq!(rule(&v), "create.binds", "{bind}");
    }
    // Inside the root, through `..` that stays inside, and a missing directory: allowed.
    for bind in [
        format!("{root}/workspace/../workspace:/w:rw,z"),
        format!("{root}/not-yet/created:/w"),
    ] {
        let v = fx.create_with(|v| v["HostConfig"]["Binds"] = json!([bind]));
        forwarded_body(&v);
    }
    drop(fx.dir);
}

#[test]
fn case_and_duplicate_keys_are_refused() {
    let fx = fixture();
    let good = RECORDED_CREATE.replace("{ROOT}", &fx.root());
    // A second "Privileged" spelled in another case, appended to HostConfig.
    let evil = good.replace(
        "\"Privileged\":false",
        "\"Privileged\":false,\"privileged\":true",
    );
    assert_eq!(rule(&fx.create(evil.as_bytes())), "body.fields");
    // An exact duplicate: Go keeps the last one.
    let evil = good.replace(
        "\"Privileged\":false",
        "\"Privileged\":false,\"Privileged\":true",
    );
    assert_eq!(rule(&fx.create(evil.as_bytes())), "body.malformed");
    // Only a case variant: judged as the field it is (and refused for its value).
    let evil = good.replace("\"Privileged\":false", "\"PRIVILEGED\":true");
    assert_eq!(rule(&fx.create(evil.as_bytes())), "create.privileged");
    // A Binds variant next to the real one.
    let evil = good.replace("\"Binds\":[", "\"binds\":[\"/:/host\"],\"Binds\":[");
    assert_eq!(rule(&fx.create(evil.as_bytes())), "body.fields");
    // The canonical spelling is what is forwarded.
    let ok = good.replace("\"Privileged\":false", "\"privileged\":false");
    let b = forwarded_body(&fx.create(ok.as_bytes()));
    assert_eq!(b["HostConfig"]["Privileged"], false);
    assert!(b["HostConfig"].get("privileged").is_none());
    assert_eq!(rule(&fx.create(b"{not json")), "body.malformed");
    assert_eq!(rule(&fx.create(b"[]")), "body.malformed");
}

#[test]
fn create_name_must_carry_the_prefix() {
    let fx = fixture();
    let body = RECORDED_CREATE.replace("{ROOT}", &fx.root());
    for q in [
        "",
        "?name=evil",
        "?name=openclaw-sbx-",
        "?name=openclaw-sbx-UPPER",
        "?name=openclaw-sbx-a&platform=linux/arm64",
    ] {
        let t = parse_target(&format!("/containers/create{q}")).expect("t");
        assert!(
            matches!(
                judge("POST", &t, Some(body.as_bytes()), &fx.policy),
                Verdict::Refuse(_)
            ),
            "{q}"
        );
    }
}

fn route(method: &str, target: &str, body: Option<&[u8]>) -> Verdict {
    judge(
        method,
        &parse_target(target).expect("target"),
        body,
        &Policy::default(),
    )
}

#[test]
fn lookups_and_endpoints() {
    assert!(matches!(route("HEAD", "/_ping", None), Verdict::Forward(_)));
    assert!(matches!(
        route("GET", "/v1.44/version", None),
        Verdict::Forward(_)
    ));
    assert!(matches!(
        route("GET", "/v1.44/info", None),
        Verdict::Forward(_)
    ));
    assert!(matches!(
        route(
            "GET",
            "/v1.44/images/openclaw-sandbox:bookworm-slim/json",
            None
        ),
        Verdict::Forward(_)
    ));
    for (t, st) in [
        ("/v1.44/images/alpine/json", 404),
        ("/v1.44/networks/host", 404),
        ("/v1.44/volumes/x", 404),
        ("/v1.44/plugins/x/json", 404),
    ] {
        match route("GET", t, None) {
            Verdict::Refuse(r) => assert_eq!(r.status, st, "{t}"),
            v => panic!("{t}: {v:?}"),
        }
    }
    assert!(matches!(
        route("GET", "/v1.44/containers/openclaw-sbx-a/json", None),
        Verdict::Owned {
            who: Who::OwnedOrSelf,
            hide: true,
            ..
        }
    ));
    assert!(matches!(
        route("POST", "/v1.44/containers/x/start", None),
        Verdict::Owned {
            who: Who::Owned,
            recheck_binds: true,
            ..
        }
    ));
    assert!(matches!(
        route("POST", "/v1.44/containers/x/pause", None),
        Verdict::Owned {
            who: Who::Owned,
            ..
        }
    ));
    assert!(matches!(
        route("DELETE", "/v1.44/containers/x?force=1", None),
        Verdict::Owned {
            who: Who::Owned,
            ..
        }
    ));
    for (m, t) in [
        ("DELETE", "/v1.44/containers/x"),
        ("DELETE", "/v1.44/containers/x?force=1&v=1"),
        ("POST", "/v1.44/containers/x/start?detachKeys=a"),
        ("POST", "/v1.44/containers/x/kill"),
        ("POST", "/v1.44/containers/x/attach"),
        ("GET", "/v1.44/containers/x/logs"),
        ("GET", "/v1.44/containers/x/archive"),
        ("PUT", "/v1.44/containers/x/archive"),
        ("POST", "/v1.44/containers/x/update"),
        ("POST", "/v1.44/containers/x/commit"),
        ("POST", "/v1.44/images/create"),
        ("POST", "/v1.44/images/load"),
        ("POST", "/v1.44/build"),
        ("POST", "/v1.44/volumes/create"),
        ("POST", "/v1.44/networks/create"),
        ("POST", "/v1.44/plugins/pull"),
        ("POST", "/v1.44/swarm/init"),
        ("POST", "/v1.44/session"),
        ("GET", "/v1.44/events"),
        ("POST", "/v1.44/containers/prune"),
        ("GET", "/v1.44/system/df"),
    ] {
        match route(m, t, None) {
            Verdict::Refuse(r) => assert_eq!(r.status, 403, "{m} {t}: {r:?}"),
            v => panic!("{m} {t}: {v:?}"),
        }
    }
    // A body on a no-body endpoint (API < 1.24 let start carry a HostConfig).
    assert_eq!(
        rule(&route(
            "POST",
            "/v1.44/containers/x/start",
            Some(br#"{"Privileged":true}"#)
        )),
        "body.not_allowed"
    );
}

#[test]
fn listing_is_narrowed_to_owned_containers() {
    let v = route("GET", "/v1.44/containers/json?all=1&filters=%7B%22label%22%3A%7B%22openclaw.sandboxBrowser%3D1%22%3Atrue%7D%7D", None);
    let Verdict::Forward(f) = v else {
        panic!("{v:?}")
    };
    let filters = &f
        .target
        .query
        .iter()
        .find(|(k, _)| k == "filters")
        .expect("filters")
        .1;
    let fv: Value = serde_json::from_str(filters).expect("json");
    assert_eq!(fv["label"]["openclaw.sandboxBrowser=1"], true);
    assert_eq!(fv["label"][format!("{OWNER_LABEL}=openclaw")], true);
    let v = route("GET", "/v1.44/containers/json", None);
    let Verdict::Forward(f) = v else {
        panic!("{v:?}")
    };
    assert!(f.target.to_string().contains("filters="));
    assert_eq!(
        rule(&route(
            "GET",
            "/containers/json?filters=%7B%22ancestor%22%3A%5B%22x%22%5D%7D",
            None
        )),
        "list.filters"
    );
}

fn probe_body(node: &str, script: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"User":"","Privileged":false,"Tty":false,"AttachStdin":false,"AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":null,"WorkingDir":"","Cmd":[node,"-e",script]})).expect("json")
}

#[test]
fn exec_rules() {
    let tool = br#"{"User":"","Privileged":false,"Tty":false,"AttachStdin":true,"AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":["HOME=/workspace"],"WorkingDir":"/workspace","Cmd":["/bin/sh","-lc","echo hi"]}"#;
    assert!(matches!(
        route("POST", "/v1.44/containers/abc/exec", Some(tool)),
        Verdict::Owned {
            who: Who::Owned,
            ..
        }
    ));
    let s = String::from_utf8_lossy(tool).into_owned();
    for (evil, want) in [
        (
            s.replace("\"Privileged\":false", "\"Privileged\":true"),
            "exec.privileged",
        ),
        (s.replace("\"User\":\"\"", "\"User\":\"root\""), "exec.user"),
        (
            s.replace("\"Detach\":false", "\"Detach\":true"),
            "exec.detach",
        ),
        (
            s.replace("\"DetachKeys\":\"\"", "\"DetachKeys\":\"ctrl-p\""),
            "exec.detach",
        ),
        (
            s.replace(
                "\"Privileged\":false",
                "\"Privileged\":false,\"privileged\":true",
            ),
            "body.fields",
        ),
    ] {
        assert_eq!(
            rule(&route(
                "POST",
                "/containers/abc/exec",
                Some(evil.as_bytes())
            )),
            want,
            "{evil}"
        );
    }
    // The self-probe: exactly the recorded body with a known script hash.
    let fx = Policy {
        probe_sha256: vec![hex::encode(Sha256::digest(b"probe()"))],
        ..Policy::default()
    };
    let t = parse_target("/containers/self/exec").expect("t");
    let v = judge(
        "POST",
        &t,
        Some(&probe_body("/usr/local/bin/node", "probe()")),
        &fx,
    );
    assert!(
        matches!(
            v,
            Verdict::Owned {
                who: Who::OwnedOrSelf,
                ..
            }
        ),
        "{v:?}"
    );
    for body in [
        probe_body("/usr/local/bin/node", "evil()"),
        probe_body("/bin/sh", "probe()"),
    ] {
        let v = judge("POST", &t, Some(&body), &fx);
        assert!(
            matches!(
                v,
                Verdict::Owned {
                    who: Who::Owned,
                    ..
                }
            ),
            "{v:?}"
        );
    }
    assert_eq!(
        Policy::default().probe_sha256,
        vec![PROBE_SCRIPT_SHA.to_string()]
    );

    let v = route(
        "POST",
        "/v1.44/exec/e1/start",
        Some(br#"{"Detach":false,"Tty":false}"#),
    );
    assert!(
        matches!(&v, Verdict::ExecOwned(f) if f.upgrade && f.note == Note::Hijack),
        "{v:?}"
    );
    assert_eq!(
        rule(&route(
            "POST",
            "/exec/e1/start",
            Some(br#"{"Detach":true}"#)
        )),
        "exec.detach"
    );
    assert!(matches!(
        route("GET", "/v1.44/exec/e1/json", None),
        Verdict::ExecOwned(_)
    ));
    assert!(matches!(
        route("POST", "/v1.44/exec/e1/resize?h=10&w=20", None),
        Verdict::ExecOwned(_)
    ));
}

#[test]
fn ownership_is_the_guard_label_or_the_callers_own_container() {
    let p = Policy::default();
    let id = "a".repeat(64);
    let owned = json!({"Id": id, "Config": {"Labels": {OWNER_LABEL: "openclaw"}}});
    let foreign = json!({"Id": id, "Config": {"Labels": {OWNER_LABEL: "other-bot"}}});
    let plain = json!({"Id": id, "Config": {"Labels": {}}});
    assert_eq!(
        check_owner(Some(&owned), "x", Who::Owned, false, None, &p),
        Ok(id.clone())
    );
    assert_eq!(
        check_owner(Some(&foreign), "x", Who::Owned, false, None, &p)
            .expect_err("no")
            .status,
        403
    );
    assert_eq!(
        check_owner(Some(&plain), "x", Who::Owned, true, None, &p)
            .expect_err("no")
            .status,
        404
    );
    assert_eq!(
        check_owner(None, "x", Who::Owned, false, None, &p)
            .expect_err("no")
            .rule,
        "container.not_owned"
    );
    assert_eq!(
        check_owner(Some(&plain), "x", Who::OwnedOrSelf, true, Some(&id), &p),
        Ok(id.clone())
    );
    assert!(check_owner(Some(&plain), "x", Who::Owned, true, Some(&id), &p).is_err());
    assert!(check_owner(
        Some(&plain),
        "x",
        Who::OwnedOrSelf,
        true,
        Some(&"b".repeat(64)),
        &p
    )
    .is_err());
}

#[test]
fn container_id_from_cgroup_paths() {
    let id = "0123456789abcdef".repeat(4);
    assert_eq!(
        container_id_from_cgroup(&format!("0::/system.slice/docker-{id}.scope\n")),
        Some(id.clone())
    );
    assert_eq!(
        container_id_from_cgroup(&format!("0::/docker/{id}\n")),
        Some(id.clone())
    );
    assert_eq!(
        container_id_from_cgroup(&format!("0::/ecs/task-1/{id}\n")),
        Some(id.clone())
    );
    assert_eq!(
        container_id_from_cgroup("0::/system.slice/ssh.service\n"),
        None
    );
}

#[test]
fn policy_files_are_checked() {
    let p = Policy::from_json(br#"{"bind_root":"/srv/bot","memory_max":536870912}"#).expect("ok");
    assert_eq!(p.bind_root, PathBuf::from("/srv/bot"));
    assert_eq!(p.memory_max, 536870912);
    assert_eq!(p.images, Policy::default().images);
    for bad in [
        &br#"{"bind_rot":"/x"}"#[..],
        br#"{"bind_root":"relative"}"#,
        br#"{"bind_root":"/"}"#,
        br#"{"bind_root":"/a/../b"}"#,
        br#"{"pids_max":0}"#,
        br#"{"required_label":"novalue"}"#,
    ] {
        assert!(
            Policy::from_json(bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

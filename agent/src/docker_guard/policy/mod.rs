//! The guard's policy: a function from a parsed request (method, decoded target, body) to a
//! [`Verdict`]: refuse (with the rule that refused), forward (possibly rewritten), or forward only
//! after an ownership lookup the server does against dockerd ([`Verdict::Owned`],
//! [`Verdict::ExecOwned`]), whose answer is judged by [`check_owner`].
//!
//! The default is the allowlist derived from OpenClaw's recorded sandbox traffic
//! (shared/facts/openclaw-sandbox.md §8) and nothing wider. Every rule has a name (`rule`), which
//! the 403 body and the journal record carry.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::http::Target;
use super::json::{canonicalize, parse_strict, CREATE_BODY, EXEC_CREATE_BODY, EXEC_START_BODY};

/// The label the guard puts on every container it creates; ownership is this label.
pub const OWNER_LABEL: &str = "org.clawster.docker-guard";

/// What the guard allows. Loaded from `--policy FILE` (JSON, every key optional).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "snake_case")]
pub struct Policy {
    /// Images sandboxes may be created from (exact references).
    pub images: Vec<String>,
    /// Container names must be this prefix plus 1 to 50 of `[a-z0-9._-]`.
    pub container_prefix: String,
    /// Label (`key=value`) every created container must carry.
    pub required_label: String,
    /// Value of [`OWNER_LABEL`] the guard sets (one guard per bot host: the bot's name).
    pub owner: String,
    /// The host directory bind sources must be inside (the bot's state directory).
    pub bind_root: PathBuf,
    /// Allowed `HostConfig.NetworkMode` values.
    pub networks: Vec<String>,
    /// The runtime injected when absent; any other runtime is refused.
    pub runtime: String,
    /// Memory cap in bytes (injected when 0, lowered when above).
    pub memory_max: i64,
    /// CPU cap in nano-CPUs (injected when 0, lowered when above).
    pub nano_cpus_max: i64,
    /// Pids cap (injected when 0 or unlimited, lowered when above).
    pub pids_max: i64,
    /// Node binaries the gateway's self-probe may run with.
    pub probe_node_paths: Vec<String>,
    /// SHA256 (hex) of the self-probe scripts OpenClaw versions send.
    pub probe_sha256: Vec<String>,
    /// Largest request body accepted, in bytes.
    pub max_body: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            images: vec![
                "openclaw-sandbox:bookworm-slim".into(),
                "openclaw-sandbox-common:bookworm-slim".into(),
            ],
            container_prefix: "openclaw-sbx-".into(),
            required_label: "openclaw.sandbox=1".into(),
            owner: "openclaw".into(),
            bind_root: PathBuf::from(DEFAULT_BIND_ROOT),
            networks: vec!["none".into()],
            runtime: "sysbox-runc".into(),
            memory_max: 1 << 30,
            nano_cpus_max: 1_000_000_000,
            pids_max: 512,
            probe_node_paths: vec!["/usr/local/bin/node".into(), "/usr/bin/node".into()],
            probe_sha256: vec![
                "a1b82f97411d1cb9ccf58606de63a1ab40b5f6b4a73cfdeca180266fa0fe52c9".into(),
            ],
            max_body: 1 << 20,
        }
    }
}

/// The bot's state directory on the host (the task's bind mount source).
pub const DEFAULT_BIND_ROOT: &str = "/var/lib/clawster/openclaw";

impl Policy {
    /// Reads a policy file; unknown keys and bad values are errors naming them.
    pub fn from_json(text: &[u8]) -> Result<Self, String> {
        let p: Self = serde_json::from_slice(text).map_err(|e| format!("policy: {e}"))?;
        p.validate()?;
        Ok(p)
    }

    /// Checks the values make sense.
    pub fn validate(&self) -> Result<(), String> {
        if !self.bind_root.is_absolute()
            || lexical_normal(&self.bind_root).as_deref() != Some(&self.bind_root)
            || self.bind_root == Path::new("/")
        {
            return Err(format!(
                "policy: bind_root {} must be an absolute, normalised directory other than /",
                self.bind_root.display()
            ));
        }
        if self.required_label.split_once('=').is_none() {
            return Err("policy: required_label must be key=value".into());
        }
        if self.memory_max <= 0 || self.nano_cpus_max <= 0 || self.pids_max <= 0 {
            return Err("policy: memory_max, nano_cpus_max and pids_max must be positive".into());
        }
        if self.container_prefix.is_empty() || self.owner.is_empty() || self.runtime.is_empty() {
            return Err("policy: container_prefix, owner and runtime must not be empty".into());
        }
        Ok(())
    }
}

/// A refusal: HTTP status, the rule's name and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 400, 403 or 404.
    pub status: u16,
    /// The rule, e.g. `create.privileged`.
    pub rule: &'static str,
    /// What was refused and why.
    pub message: String,
}

impl Refusal {
    fn forbid(rule: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: 403,
            rule,
            message: message.into(),
        }
    }
    fn not_found(rule: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: 404,
            rule,
            message: message.into(),
        }
    }
    fn bad(rule: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: 400,
            rule,
            message: message.into(),
        }
    }

    /// The JSON body dockerd's clients expect (`{"message": ...}`), naming the rule.
    pub fn body(&self) -> Vec<u8> {
        let msg = if self.status == 404 {
            self.message.clone()
        } else {
            format!(
                "clawster docker-guard: {} (rule {})",
                self.message, self.rule
            )
        };
        serde_json::to_vec(&json!({ "message": msg, "rule": self.rule })).unwrap_or_default()
    }
}

/// What happens after a forwarded request succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Nothing to record.
    None,
    /// A container was created under this name: record it.
    Created(String),
    /// An exec was created: remember its id (from the response) as the guard's.
    ExecCreated,
    /// The connection may be hijacked (exec start).
    Hijack,
}

/// A request to forward, as the guard will write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// Method.
    pub method: String,
    /// Target (rewritten where the policy rewrites).
    pub target: Target,
    /// The exact body bytes to forward (already judged), if any.
    pub body: Option<Vec<u8>>,
    /// Forward `Connection: Upgrade` / `Upgrade: tcp`.
    pub upgrade: bool,
    /// Post-processing.
    pub note: Note,
}

/// Whose container a request may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// Only containers the guard created.
    Owned,
    /// Those, or the caller's own container (inspect).
    OwnedOrSelf,
    /// Only the caller's own container (the gateway's self-probe exec).
    SelfOnly,
}

/// The policy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Answer the client with this refusal; nothing is forwarded.
    Refuse(Refusal),
    /// Forward as is.
    Forward(Forward),
    /// Look up container `target.segments[1]` (inspect by id or name), judge it with
    /// [`check_owner`], then forward with that segment replaced by the full id.
    Owned {
        /// Who may be touched.
        who: Who,
        /// Refuse with 404 (lookups) instead of 403 when it is not allowed.
        hide: bool,
        /// Re-check the container's bind sources (start: a symlink may have been planted since create).
        recheck_binds: bool,
        /// The request.
        forward: Forward,
    },
    /// Forward only if exec `target.segments[1]` was created through the guard.
    ExecOwned(Forward),
}

fn fwd(method: &str, target: &Target, body: Option<Vec<u8>>, note: Note) -> Forward {
    Forward {
        method: method.to_string(),
        target: target.clone(),
        body,
        upgrade: false,
        note,
    }
}

fn no_query(t: &Target, allowed: &[&str]) -> Result<(), Refusal> {
    for (k, _) in &t.query {
        if !allowed.contains(&k.as_str()) {
            return Err(Refusal::forbid(
                "query.not_allowed",
                format!("query parameter {k:?} is not allowed here"),
            ));
        }
    }
    Ok(())
}

fn empty_body(body: Option<&[u8]>) -> Result<(), Refusal> {
    match body {
        Some(b) if !b.is_empty() => Err(Refusal::forbid(
            "body.not_allowed",
            "this endpoint takes no request body",
        )),
        _ => Ok(()),
    }
}

/// Judges one request. `body` is the complete, de-chunked body (or `None`).
pub fn judge(method: &str, target: &Target, body: Option<&[u8]>, policy: &Policy) -> Verdict {
    match judge_inner(method, target, body, policy) {
        Ok(v) => v,
        Err(r) => Verdict::Refuse(r),
    }
}

fn judge_inner(
    method: &str,
    t: &Target,
    body: Option<&[u8]>,
    policy: &Policy,
) -> Result<Verdict, Refusal> {
    let segs: Vec<&str> = t.segments.iter().map(String::as_str).collect();
    let plain = |note| Ok(Verdict::Forward(fwd(method, t, None, note)));
    match (method, segs.as_slice()) {
        ("GET" | "HEAD", ["_ping"]) => {
            no_query(t, &[])?;
            empty_body(body)?;
            plain(Note::None)
        }
        ("GET", ["version"]) | ("GET", ["info"]) => {
            no_query(t, &[])?;
            empty_body(body)?;
            plain(Note::None)
        }
        ("GET", ["images", name, "json"]) => {
            no_query(t, &[])?;
            empty_body(body)?;
            if policy.images.iter().any(|i| i == name) {
                plain(Note::None)
            } else {
                Err(Refusal::not_found(
                    "image.not_allowed",
                    format!("No such image: {name}"),
                ))
            }
        }
        ("GET", ["networks", n]) => Err(Refusal::not_found(
            "lookup.hidden",
            format!("network {n} not found"),
        )),
        ("GET", ["volumes", n]) => Err(Refusal::not_found(
            "lookup.hidden",
            format!("get {n}: no such volume"),
        )),
        ("GET", ["plugins", n, "json"]) => Err(Refusal::not_found(
            "lookup.hidden",
            format!("plugin {n} not found"),
        )),
        ("GET", ["containers", "json"]) => {
            no_query(t, &["all", "limit", "size", "filters"])?;
            empty_body(body)?;
            let mut t2 = t.clone();
            let given = t
                .query
                .iter()
                .find(|(k, _)| k == "filters")
                .map(|(_, v)| v.as_str());
            let filters = owned_filters(given, policy)?;
            t2.query.retain(|(k, _)| k != "filters");
            t2.query.push(("filters".into(), filters));
            Ok(Verdict::Forward(fwd(method, &t2, None, Note::None)))
        }
        ("GET", ["containers", _, "json"]) => {
            no_query(t, &["size"])?;
            empty_body(body)?;
            Ok(owned(
                Who::OwnedOrSelf,
                true,
                false,
                fwd(method, t, None, Note::None),
            ))
        }
        ("POST", ["containers", "create"]) => {
            no_query(t, &["name", "platform"])?;
            let name = t
                .query
                .iter()
                .find(|(k, _)| k == "name")
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            if !valid_name(name, &policy.container_prefix) {
                return Err(Refusal::forbid(
                    "create.name",
                    format!(
                        "container name {name:?} must be {}<1-50 of a-z 0-9 . _ ->",
                        policy.container_prefix
                    ),
                ));
            }
            if t.query
                .iter()
                .any(|(k, v)| k == "platform" && !v.is_empty())
            {
                return Err(Refusal::forbid("create.platform", "platform must be empty"));
            }
            let body =
                body.ok_or_else(|| Refusal::bad("body.malformed", "create needs a JSON body"))?;
            let out = judge_create(body, policy)?;
            Ok(Verdict::Forward(fwd(
                method,
                t,
                Some(out),
                Note::Created(name.to_string()),
            )))
        }
        ("POST", ["containers", _, "start" | "pause" | "unpause"]) => {
            no_query(t, &[])?;
            empty_body(body)?;
            let recheck = segs[2] == "start";
            Ok(owned(
                Who::Owned,
                false,
                recheck,
                fwd(method, t, None, Note::None),
            ))
        }
        ("DELETE", ["containers", _]) => {
            no_query(t, &["force", "v", "link"])?;
            empty_body(body)?;
            let q = |k: &str| {
                t.query
                    .iter()
                    .find(|(qk, _)| qk == k)
                    .map(|(_, v)| v.as_str())
            };
            if !matches!(q("force"), Some("1" | "true" | "True")) {
                return Err(Refusal::forbid(
                    "delete.force",
                    "only forced removal (force=1) is allowed",
                ));
            }
            for k in ["v", "link"] {
                if !matches!(q(k), None | Some("0" | "false" | "False" | "")) {
                    return Err(Refusal::forbid(
                        "delete.options",
                        format!("removal with {k}= is not allowed"),
                    ));
                }
            }
            Ok(owned(
                Who::Owned,
                false,
                false,
                fwd(method, t, None, Note::None),
            ))
        }
        ("POST", ["containers", _, "exec"]) => {
            no_query(t, &[])?;
            let body =
                body.ok_or_else(|| Refusal::bad("body.malformed", "exec needs a JSON body"))?;
            let (out, probe) = judge_exec_create(body, policy)?;
            let who = if probe { Who::OwnedOrSelf } else { Who::Owned };
            Ok(owned(
                who,
                false,
                false,
                fwd(method, t, Some(out), Note::ExecCreated),
            ))
        }
        ("POST", ["exec", _, "start"]) => {
            no_query(t, &[])?;
            let body =
                body.ok_or_else(|| Refusal::bad("body.malformed", "exec start needs a JSON body"))?;
            let mut v = parse_strict(body).map_err(|e| Refusal::bad("body.malformed", e))?;
            canonicalize(&mut v, EXEC_START_BODY, "body")
                .map_err(|e| Refusal::bad("body.fields", e))?;
            if !is_false(&v["Detach"]) {
                return Err(Refusal::forbid(
                    "exec.detach",
                    "detached exec start is not allowed",
                ));
            }
            check_bool(&v["Tty"], "Tty")?;
            let mut f = fwd(method, t, Some(serialize(&v)), Note::Hijack);
            f.upgrade = true;
            Ok(Verdict::ExecOwned(f))
        }
        ("GET", ["exec", _, "json"]) => {
            no_query(t, &[])?;
            empty_body(body)?;
            Ok(Verdict::ExecOwned(fwd(method, t, None, Note::None)))
        }
        ("POST", ["exec", _, "resize"]) => {
            no_query(t, &["h", "w"])?;
            empty_body(body)?;
            for (_, v) in &t.query {
                if v.parse::<u16>().is_err() {
                    return Err(Refusal::bad(
                        "query.malformed",
                        format!("resize size {v:?}"),
                    ));
                }
            }
            Ok(Verdict::ExecOwned(fwd(method, t, None, Note::None)))
        }
        _ => Err(Refusal::forbid(
            "endpoint.not_allowed",
            format!("{method} {} is not allowed for the bot", path_of(t)),
        )),
    }
}

fn path_of(t: &Target) -> String {
    format!("/{}", t.segments.join("/"))
}

fn owned(who: Who, hide: bool, recheck_binds: bool, forward: Forward) -> Verdict {
    Verdict::Owned {
        who,
        hide,
        recheck_binds,
        forward,
    }
}

fn valid_name(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix).is_some_and(|rest| {
        (1..=50).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    })
}

fn serialize(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn is_false(v: &Value) -> bool {
    matches!(v, Value::Null | Value::Bool(false))
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_i64() == Some(0),
        Value::Bool(b) => !b,
    }
}

fn check_bool(v: &Value, name: &str) -> Result<(), Refusal> {
    match v {
        Value::Null | Value::Bool(_) => Ok(()),
        _ => Err(Refusal::bad(
            "body.fields",
            format!("{name} must be a boolean"),
        )),
    }
}

fn int(v: &Value, name: &str) -> Result<i64, Refusal> {
    match v {
        Value::Null => Ok(0),
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| Refusal::bad("body.fields", format!("{name} must be an integer"))),
        _ => Err(Refusal::bad(
            "body.fields",
            format!("{name} must be an integer"),
        )),
    }
}

fn strings<'a>(v: &'a Value, name: &str) -> Result<Vec<&'a str>, Refusal> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .ok_or_else(|| Refusal::bad("body.fields", format!("{name} must hold strings")))
            })
            .collect(),
        _ => Err(Refusal::bad(
            "body.fields",
            format!("{name} must be an array of strings"),
        )),
    }
}

/// Judges a create body; returns the bytes to forward (canonical, with the runtime, the limits
/// and the owner label set).
pub fn judge_create(body: &[u8], policy: &Policy) -> Result<Vec<u8>, Refusal> {
    let mut v = parse_strict(body).map_err(|e| Refusal::bad("body.malformed", e))?;
    if !v.is_object() {
        return Err(Refusal::bad(
            "body.malformed",
            "create body must be a JSON object",
        ));
    }
    canonicalize(&mut v, CREATE_BODY, "body").map_err(|e| Refusal::bad("body.fields", e))?;

    // --- Config ---
    let image = v["Image"].as_str().unwrap_or("");
    if !policy.images.iter().any(|i| i == image) {
        return Err(Refusal::forbid(
            "create.image",
            format!(
                "image {image:?} is not in the allowlist ({})",
                policy.images.join(", ")
            ),
        ));
    }
    let (lk, lv) = policy.required_label.split_once('=').unwrap_or(("", ""));
    match &v["Labels"] {
        Value::Object(l) if l.get(lk).and_then(Value::as_str) == Some(lv) => {}
        _ => {
            return Err(Refusal::forbid(
                "create.label",
                format!("label {} is required", policy.required_label),
            ))
        }
    }
    if let Value::Object(l) = &v["Labels"] {
        if l.values().any(|x| !x.is_string()) {
            return Err(Refusal::bad("body.fields", "label values must be strings"));
        }
    }
    for k in [
        "ExposedPorts",
        "Volumes",
        "OnBuild",
        "Healthcheck",
        "MacAddress",
    ] {
        if !is_empty(&v[k]) {
            return Err(Refusal::forbid(
                "create.config",
                format!("{k} must be empty"),
            ));
        }
    }
    if !is_false(&v["NetworkDisabled"]) && !v["NetworkDisabled"].is_boolean() {
        return Err(Refusal::bad(
            "body.fields",
            "NetworkDisabled must be a boolean",
        ));
    }

    // --- NetworkingConfig ---
    if !is_empty(&v["NetworkingConfig"]["EndpointsConfig"]) {
        return Err(Refusal::forbid(
            "create.network",
            "NetworkingConfig.EndpointsConfig must be empty",
        ));
    }

    // --- HostConfig ---
    if v.get("HostConfig").is_none_or(Value::is_null) {
        v["HostConfig"] = json!({});
    }
    let hc = v["HostConfig"].clone();
    let h = |k: &str| &hc[k];

    if !is_false(h("Privileged")) {
        return Err(Refusal::forbid(
            "create.privileged",
            "privileged containers are not allowed",
        ));
    }
    if !strings(h("CapAdd"), "CapAdd")?.is_empty() {
        return Err(Refusal::forbid(
            "create.cap_add",
            "adding capabilities is not allowed",
        ));
    }
    if !strings(h("CapDrop"), "CapDrop")?
        .iter()
        .any(|c| c.eq_ignore_ascii_case("ALL") || c.eq_ignore_ascii_case("CAP_ALL"))
    {
        return Err(Refusal::forbid(
            "create.cap_drop",
            "CapDrop must contain ALL",
        ));
    }
    let sec = strings(h("SecurityOpt"), "SecurityOpt")?;
    let mut nnp = false;
    for o in &sec {
        let o_l = o.to_ascii_lowercase();
        if matches!(
            o_l.as_str(),
            "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true"
        ) {
            nnp = true;
        } else if let Some(p) = o_l
            .strip_prefix("apparmor=")
            .or_else(|| o_l.strip_prefix("apparmor:"))
        {
            if p.is_empty() || p == "unconfined" {
                return Err(Refusal::forbid(
                    "create.security_opt",
                    format!("security option {o:?}"),
                ));
            }
        } else {
            return Err(Refusal::forbid(
                "create.security_opt",
                format!("security option {o:?} is not allowed"),
            ));
        }
    }
    if !nnp {
        return Err(Refusal::forbid(
            "create.no_new_privileges",
            "SecurityOpt must contain no-new-privileges",
        ));
    }
    for k in ["PidMode", "UTSMode", "UsernsMode", "Cgroup"] {
        if !is_empty(h(k)) {
            return Err(Refusal::forbid(
                "create.namespaces",
                format!("{k} {} is not allowed", h(k)),
            ));
        }
    }
    if !matches!(
        h("IpcMode").as_str(),
        None | Some("" | "private" | "none" | "shareable")
    ) || !(h("IpcMode").is_null() || h("IpcMode").is_string())
    {
        return Err(Refusal::forbid(
            "create.namespaces",
            format!("IpcMode {} is not allowed", h("IpcMode")),
        ));
    }
    if !matches!(h("CgroupnsMode").as_str(), None | Some("" | "private"))
        || !(h("CgroupnsMode").is_null() || h("CgroupnsMode").is_string())
    {
        return Err(Refusal::forbid(
            "create.namespaces",
            format!("CgroupnsMode {} is not allowed", h("CgroupnsMode")),
        ));
    }
    let net = h("NetworkMode").as_str().unwrap_or("");
    if !policy.networks.iter().any(|n| n == net) || !h("NetworkMode").is_string() {
        return Err(Refusal::forbid(
            "create.network",
            format!(
                "NetworkMode {} is not allowed (allowed: {})",
                h("NetworkMode"),
                policy.networks.join(", ")
            ),
        ));
    }
    if !is_empty(h("PortBindings")) || !is_false(h("PublishAllPorts")) {
        return Err(Refusal::forbid(
            "create.ports",
            "published ports are not allowed",
        ));
    }
    for (k, rule) in [
        ("Devices", "create.devices"),
        ("DeviceCgroupRules", "create.devices"),
        ("DeviceRequests", "create.devices"),
        ("VolumesFrom", "create.volumes_from"),
        ("Links", "create.links"),
        ("GroupAdd", "create.group_add"),
        ("Sysctls", "create.sysctls"),
        ("Annotations", "create.annotations"),
        ("Mounts", "create.mounts"),
        ("VolumeDriver", "create.mounts"),
        ("StorageOpt", "create.storage_opt"),
        ("CgroupParent", "create.cgroup_parent"),
        ("Isolation", "create.isolation"),
        ("OomKillDisable", "create.oom"),
        ("CpuRealtimePeriod", "create.realtime"),
        ("CpuRealtimeRuntime", "create.realtime"),
        ("BlkioWeightDevice", "create.blkio"),
        ("BlkioDeviceReadBps", "create.blkio"),
        ("BlkioDeviceWriteBps", "create.blkio"),
        ("BlkioDeviceReadIOps", "create.blkio"),
        ("BlkioDeviceWriteIOps", "create.blkio"),
        ("KernelMemory", "create.limits"),
        ("KernelMemoryTCP", "create.limits"),
        ("CpuQuota", "create.limits"),
        ("CpuPeriod", "create.limits"),
        ("CpuCount", "create.limits"),
        ("CpuPercent", "create.limits"),
        ("IOMaximumIOps", "create.limits"),
        ("IOMaximumBandwidth", "create.limits"),
        ("ContainerIDFile", "create.config"),
    ] {
        if !is_empty(h(k)) {
            return Err(Refusal::forbid(
                rule,
                format!("HostConfig.{k} must be empty, got {}", h(k)),
            ));
        }
    }
    // An empty list unmasks /proc paths: only absent or null keeps the defaults.
    for k in ["MaskedPaths", "ReadonlyPaths"] {
        if !h(k).is_null() {
            return Err(Refusal::forbid(
                "create.masked_paths",
                format!("HostConfig.{k} must be left unset"),
            ));
        }
    }
    if !matches!(&h("LogConfig")["Type"], Value::Null) && h("LogConfig")["Type"] != "" {
        return Err(Refusal::forbid(
            "create.log_config",
            "a log driver may not be chosen",
        ));
    }
    if !is_empty(&h("LogConfig")["Config"]) {
        return Err(Refusal::forbid(
            "create.log_config",
            "log driver options may not be set",
        ));
    }
    let rp = &h("RestartPolicy")["Name"];
    if !(rp.is_null() || rp == "" || rp == "no")
        || !is_empty(&h("RestartPolicy")["MaximumRetryCount"])
    {
        return Err(Refusal::forbid(
            "create.restart",
            "RestartPolicy must be \"no\"",
        ));
    }
    if int(h("OomScoreAdj"), "OomScoreAdj")? < 0 {
        return Err(Refusal::forbid(
            "create.oom",
            "a negative OomScoreAdj is not allowed",
        ));
    }
    match h("Runtime") {
        Value::Null => {}
        Value::String(s) if s.is_empty() || *s == policy.runtime => {}
        other => {
            return Err(Refusal::forbid(
                "create.runtime",
                format!(
                    "runtime {other} is not allowed: sandboxes run under {}",
                    policy.runtime
                ),
            ))
        }
    }
    for u in h("Ulimits")
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let name = u["Name"].as_str().unwrap_or("");
        if !matches!(name, "nofile" | "nproc")
            || int(&u["Hard"], "Ulimits.Hard")? > 1 << 20
            || int(&u["Soft"], "Ulimits.Soft")? > 1 << 20
        {
            return Err(Refusal::forbid(
                "create.ulimits",
                format!("ulimit {u} is not allowed"),
            ));
        }
    }
    for k in ["Dns", "DnsOptions", "DnsSearch", "ExtraHosts"] {
        strings(h(k), k)?;
    }
    check_tmpfs(h("Tmpfs"))?;
    for b in strings(h("Binds"), "Binds")? {
        check_bind(b, &policy.bind_root)?;
    }

    // --- rewrites: runtime, limits ---
    let memory = int(h("Memory"), "Memory")?;
    let memory = if memory <= 0 || memory > policy.memory_max {
        policy.memory_max
    } else {
        memory
    };
    let swap = int(h("MemorySwap"), "MemorySwap")?;
    let swap = if swap < memory || swap > memory.saturating_mul(2) {
        memory
    } else {
        swap
    };
    let reservation = int(h("MemoryReservation"), "MemoryReservation")?;
    if reservation < 0 || reservation > memory {
        return Err(Refusal::forbid(
            "create.limits",
            "MemoryReservation above the memory limit",
        ));
    }
    let shm = int(h("ShmSize"), "ShmSize")?;
    if shm < 0 || shm > memory {
        return Err(Refusal::forbid(
            "create.limits",
            "ShmSize above the memory limit",
        ));
    }
    let cpus = int(h("NanoCpus"), "NanoCpus")?;
    let cpus = if cpus <= 0 || cpus > policy.nano_cpus_max {
        policy.nano_cpus_max
    } else {
        cpus
    };
    let pids = int(h("PidsLimit"), "PidsLimit")?;
    let pids = if pids <= 0 || pids > policy.pids_max {
        policy.pids_max
    } else {
        pids
    };
    let hcm = v["HostConfig"]
        .as_object_mut()
        .expect("HostConfig is an object");
    hcm.insert("Runtime".into(), json!(policy.runtime));
    hcm.insert("Memory".into(), json!(memory));
    hcm.insert("MemorySwap".into(), json!(swap));
    hcm.insert("NanoCpus".into(), json!(cpus));
    hcm.insert("PidsLimit".into(), json!(pids));
    v["Labels"][OWNER_LABEL] = json!(policy.owner);
    Ok(serialize(&v))
}

fn check_tmpfs(v: &Value) -> Result<(), Refusal> {
    match v {
        Value::Null => Ok(()),
        Value::Object(m) => {
            for (k, opt) in m {
                if !k.starts_with('/') || !opt.is_string() {
                    return Err(Refusal::forbid(
                        "create.tmpfs",
                        format!("tmpfs {k:?}: {opt}"),
                    ));
                }
            }
            Ok(())
        }
        _ => Err(Refusal::bad("body.fields", "Tmpfs must be an object")),
    }
}

/// Normalises `..` and `.` lexically; `None` if it climbs above `/`.
fn lexical_normal(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(n) => out.push(n),
            Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Checks one `Binds` entry `src:dst[:opts]`: options only `ro`, `rw`, `z`; the source absolute,
/// inside `root` after resolving `..`, and with no symlink at or below `root` on its way (the bot
/// can plant symlinks in its own directory, and dockerd would follow them).
pub fn check_bind(bind: &str, root: &Path) -> Result<(), Refusal> {
    let parts: Vec<&str> = bind.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => {
            return Err(Refusal::forbid(
                "create.binds",
                format!("bind {bind:?} is not src:dst[:opts]"),
            ))
        }
    };
    let mut seen = Vec::new();
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        if !matches!(o, "ro" | "rw" | "z") || seen.contains(&o) {
            return Err(Refusal::forbid(
                "create.binds",
                format!("bind option {o:?} in {bind:?} is not allowed"),
            ));
        }
        seen.push(o);
    }
    if seen.contains(&"ro") && seen.contains(&"rw") {
        return Err(Refusal::forbid(
            "create.binds",
            format!("bind {bind:?} is both ro and rw"),
        ));
    }
    if !dst.starts_with('/') || lexical_normal(Path::new(dst)).is_none_or(|d| d == Path::new("/")) {
        return Err(Refusal::forbid(
            "create.binds",
            format!("bind target {dst:?} must be an absolute path other than /"),
        ));
    }
    check_bind_source(src, root)
}

/// The source half of [`check_bind`] (also re-run on the binds of a container being started).
pub fn check_bind_source(src: &str, root: &Path) -> Result<(), Refusal> {
    if !src.starts_with('/') {
        return Err(Refusal::forbid(
            "create.binds",
            format!("bind source {src:?} is not a host path (named volumes are not allowed)"),
        ));
    }
    let norm = lexical_normal(Path::new(src)).ok_or_else(|| {
        Refusal::forbid(
            "create.binds",
            format!("bind source {src:?} climbs above /"),
        )
    })?;
    let rel = norm.strip_prefix(root).map_err(|_| {
        Refusal::forbid(
            "create.binds",
            format!("bind source {src:?} is outside {}", root.display()),
        )
    })?;
    let mut p = root.to_path_buf();
    check_not_symlink(&p, src)?;
    for c in rel.components() {
        p.push(c);
        if !check_not_symlink(&p, src)? {
            // Missing: dockerd creates it as a directory; nothing below can exist.
            break;
        }
    }
    Ok(())
}

/// `Ok(true)` exists and is no symlink, `Ok(false)` missing.
fn check_not_symlink(p: &Path, src: &str) -> Result<bool, Refusal> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.file_type().is_symlink() => Err(Refusal::forbid(
            "create.binds",
            format!("bind source {src:?}: {} is a symlink", p.display()),
        )),
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Refusal::forbid(
            "create.binds",
            format!("bind source {src:?}: cannot check {}: {e}", p.display()),
        )),
    }
}

/// Judges an exec create body. Returns the bytes to forward and whether it is the gateway's
/// exact self-probe (allowed in the caller's own container too).
pub fn judge_exec_create(body: &[u8], policy: &Policy) -> Result<(Vec<u8>, bool), Refusal> {
    let mut v = parse_strict(body).map_err(|e| Refusal::bad("body.malformed", e))?;
    if !v.is_object() {
        return Err(Refusal::bad(
            "body.malformed",
            "exec body must be a JSON object",
        ));
    }
    canonicalize(&mut v, EXEC_CREATE_BODY, "body").map_err(|e| Refusal::bad("body.fields", e))?;
    if !is_false(&v["Privileged"]) {
        return Err(Refusal::forbid(
            "exec.privileged",
            "privileged exec is not allowed",
        ));
    }
    if !is_empty(&v["User"]) {
        return Err(Refusal::forbid(
            "exec.user",
            "exec must run as the container's user (User \"\")",
        ));
    }
    if !is_false(&v["Detach"]) {
        return Err(Refusal::forbid(
            "exec.detach",
            "detached exec is not allowed",
        ));
    }
    if !is_empty(&v["DetachKeys"]) {
        return Err(Refusal::forbid("exec.detach", "DetachKeys must be empty"));
    }
    for k in ["Tty", "AttachStdin", "AttachStdout", "AttachStderr"] {
        check_bool(&v[k], k)?;
    }
    let cmd = strings(&v["Cmd"], "Cmd")?;
    if cmd.is_empty() {
        return Err(Refusal::bad("body.fields", "Cmd must not be empty"));
    }
    strings(&v["Env"], "Env")?;
    if !(v["WorkingDir"].is_null() || v["WorkingDir"].is_string()) {
        return Err(Refusal::bad("body.fields", "WorkingDir must be a string"));
    }
    let probe = is_probe(&v, &cmd, policy);
    Ok((serialize(&v), probe))
}

fn is_probe(v: &Value, cmd: &[&str], policy: &Policy) -> bool {
    let exact_fields = v["User"] == ""
        && v["Privileged"] == false
        && v["Tty"] == false
        && v["AttachStdin"] == false
        && v["AttachStderr"] == true
        && v["AttachStdout"] == true
        && v["Detach"] == false
        && v["DetachKeys"] == ""
        && v["Env"].is_null()
        && v.get("Env").is_some()
        && v["WorkingDir"] == "";
    exact_fields
        && cmd.len() == 3
        && policy.probe_node_paths.iter().any(|p| p == cmd[0])
        && cmd[1] == "-e"
        && policy
            .probe_sha256
            .iter()
            .any(|h| *h == hex::encode(Sha256::digest(cmd[2].as_bytes())))
}

/// The caller's container id, from its cgroup path (`/proc/<pid>/cgroup` text): the last
/// 64-hex component, also inside `docker-<id>.scope`. `None` for a process on the host.
pub fn container_id_from_cgroup(text: &str) -> Option<String> {
    let mut found = None;
    for line in text.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap_or("");
        for comp in path.split('/') {
            let c = comp
                .strip_prefix("docker-")
                .and_then(|c| c.strip_suffix(".scope"))
                .unwrap_or(comp);
            if c.len() == 64
                && c.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            {
                found = Some(c.to_string());
            }
        }
    }
    found
}

/// Judges dockerd's inspect of the container a request names: returns its full id when `who`
/// allows it, else the refusal. `info` is `None` when dockerd answered 404.
pub fn check_owner(
    info: Option<&Value>,
    asked: &str,
    who: Who,
    hide: bool,
    caller_container: Option<&str>,
    policy: &Policy,
) -> Result<String, Refusal> {
    let deny = || {
        if hide {
            Refusal::not_found("container.not_owned", format!("No such container: {asked}"))
        } else {
            Refusal::forbid(
                "container.not_owned",
                format!("container {asked:?} was not created through the guard"),
            )
        }
    };
    let info = info.ok_or_else(deny)?;
    let id = info["Id"]
        .as_str()
        .filter(|i| i.len() == 64)
        .ok_or_else(deny)?;
    let is_owned = is_owned(info, policy);
    let is_self = caller_container == Some(id);
    let ok = match who {
        Who::Owned => is_owned,
        Who::OwnedOrSelf => is_owned || is_self,
        Who::SelfOnly => is_self,
    };
    if ok {
        Ok(id.to_string())
    } else {
        Err(deny())
    }
}

/// True when dockerd's inspect `info` carries the guard's owner label (the container was created
/// through this guard). Being the caller's own container does not count.
pub fn is_owned(info: &Value, policy: &Policy) -> bool {
    info["Config"]["Labels"][OWNER_LABEL].as_str() == Some(policy.owner.as_str())
}

/// The bind sources of an inspected container (for the re-check at start).
pub fn binds_of(info: &Value) -> Vec<String> {
    info["HostConfig"]["Binds"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|b| b.split(':').next().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The `filters` for a container listing: the client's `label`, `name`, `status`, `id` filters
/// plus the owner label, so only the guard's containers are listed.
pub fn owned_filters(given: Option<&str>, policy: &Policy) -> Result<String, Refusal> {
    let mut out: BTreeMap<String, BTreeMap<String, bool>> = BTreeMap::new();
    if let Some(g) = given.filter(|g| !g.is_empty()) {
        let v = parse_strict(g.as_bytes()).map_err(|e| Refusal::bad("query.malformed", e))?;
        let obj = v
            .as_object()
            .ok_or_else(|| Refusal::bad("query.malformed", "filters must be an object"))?;
        for (k, vals) in obj {
            if !matches!(k.as_str(), "label" | "name" | "status" | "id") {
                return Err(Refusal::forbid(
                    "list.filters",
                    format!("filter {k:?} is not allowed"),
                ));
            }
            let e = out.entry(k.clone()).or_default();
            match vals {
                Value::Object(m) => {
                    for (x, b) in m {
                        if *b != Value::Bool(true) {
                            return Err(Refusal::bad(
                                "query.malformed",
                                "filter values must be true",
                            ));
                        }
                        e.insert(x.clone(), true);
                    }
                }
                Value::Array(a) => {
                    for x in a {
                        e.insert(
                            x.as_str()
                                .ok_or_else(|| {
                                    Refusal::bad("query.malformed", "filter values must be strings")
                                })?
                                .to_string(),
                            true,
                        );
                    }
                }
                _ => {
                    return Err(Refusal::bad(
                        "query.malformed",
                        "filters must map to objects",
                    ))
                }
            }
        }
    }
    out.entry("label".into())
        .or_default()
        .insert(format!("{OWNER_LABEL}={}", policy.owner), true);
    Ok(serde_json::to_string(&out).unwrap_or_default())
}

#[cfg(test)]
mod tests;

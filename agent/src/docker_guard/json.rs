//! JSON bodies judged exactly as dockerd reads them.
//!
//! dockerd decodes request bodies with Go's `encoding/json`: object keys match struct fields
//! case-insensitively (Unicode folding, so `ſ` matches `s` and `K` (Kelvin) matches `k`), the
//! last duplicate wins, and unknown keys are ignored. A naive judge that reads `"Privileged":
//! false` while dockerd reads a later `"privileged": true` would be bypassed. So:
//!
//! 1. [`parse_strict`] refuses any object with two identical keys (anywhere in the body);
//! 2. [`canonicalize`] walks the body along a schema of the Docker structs: every key of a
//!    struct-typed object must be ASCII, must match one known field case-insensitively, and no two
//!    keys may match the same field; it renames them to the field's canonical spelling. Keys of
//!    map-typed objects (`Labels`, `Tmpfs`, ...) are data and stay as they are.
//!
//! The policy then judges the canonical value and the guard forwards that value re-serialised,
//! so dockerd reads exactly the judged fields and nothing else.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A JSON value parsed with duplicate keys refused.
#[derive(Debug)]
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Strict, E> {
        serde_json::Number::from_f64(v)
            .map(|n| Strict(Value::Number(n)))
            .ok_or_else(|| E::custom("non-finite number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict(Value::String(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Strict, E> {
        Ok(Strict(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }
    fn visit_none<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut v = Vec::new();
        while let Some(Strict(x)) = seq.next_element()? {
            v.push(x);
        }
        Ok(Strict(Value::Array(v)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut m = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if m.contains_key(&k) {
                return Err(de::Error::custom(format!("duplicate key {k:?}")));
            }
            let Strict(v) = map.next_value()?;
            m.insert(k, v);
        }
        Ok(Strict(Value::Object(m)))
    }
}

/// Parses `body` as one JSON value, refusing duplicate object keys and trailing data.
pub fn parse_strict(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice::<Strict>(body)
        .map(|s| s.0)
        .map_err(|e| format!("invalid JSON body: {e}"))
}

/// What a field holds, for [`canonicalize`].
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A leaf or a value whose inner keys the policy never lets through non-empty.
    Opaque,
    /// A struct: its keys are matched against these fields.
    Struct(&'static [(&'static str, Kind)]),
    /// An array of structs.
    ArrayOf(&'static [(&'static str, Kind)]),
    /// A map whose values are structs (keys are data).
    MapOf(&'static [(&'static str, Kind)]),
}

use Kind::{ArrayOf, MapOf, Opaque, Struct};

const RESTART_POLICY: &[(&str, Kind)] = &[("Name", Opaque), ("MaximumRetryCount", Opaque)];
const LOG_CONFIG: &[(&str, Kind)] = &[("Type", Opaque), ("Config", Opaque)];
const ULIMIT: &[(&str, Kind)] = &[("Name", Opaque), ("Hard", Opaque), ("Soft", Opaque)];
const ENDPOINT: &[(&str, Kind)] = &[
    ("IPAMConfig", Opaque),
    ("Links", Opaque),
    ("Aliases", Opaque),
    ("MacAddress", Opaque),
    ("DriverOpts", Opaque),
    ("NetworkID", Opaque),
    ("EndpointID", Opaque),
    ("Gateway", Opaque),
    ("IPAddress", Opaque),
    ("IPPrefixLen", Opaque),
    ("IPv6Gateway", Opaque),
    ("GlobalIPv6Address", Opaque),
    ("GlobalIPv6PrefixLen", Opaque),
    ("DNSNames", Opaque),
];
const NETWORKING_CONFIG: &[(&str, Kind)] = &[("EndpointsConfig", MapOf(ENDPOINT))];

/// `HostConfig` of container create (API 1.24 to 1.47).
pub const HOST_CONFIG: &[(&str, Kind)] = &[
    ("Binds", Opaque),
    ("ContainerIDFile", Opaque),
    ("LogConfig", Struct(LOG_CONFIG)),
    ("NetworkMode", Opaque),
    ("PortBindings", Opaque),
    ("RestartPolicy", Struct(RESTART_POLICY)),
    ("AutoRemove", Opaque),
    ("VolumeDriver", Opaque),
    ("VolumesFrom", Opaque),
    ("ConsoleSize", Opaque),
    ("Annotations", Opaque),
    ("CapAdd", Opaque),
    ("CapDrop", Opaque),
    ("CgroupnsMode", Opaque),
    ("Dns", Opaque),
    ("DnsOptions", Opaque),
    ("DnsSearch", Opaque),
    ("ExtraHosts", Opaque),
    ("GroupAdd", Opaque),
    ("IpcMode", Opaque),
    ("Cgroup", Opaque),
    ("Links", Opaque),
    ("OomScoreAdj", Opaque),
    ("PidMode", Opaque),
    ("Privileged", Opaque),
    ("PublishAllPorts", Opaque),
    ("ReadonlyRootfs", Opaque),
    ("SecurityOpt", Opaque),
    ("StorageOpt", Opaque),
    ("Tmpfs", Opaque),
    ("UTSMode", Opaque),
    ("UsernsMode", Opaque),
    ("ShmSize", Opaque),
    ("Sysctls", Opaque),
    ("Runtime", Opaque),
    ("Isolation", Opaque),
    ("CpuShares", Opaque),
    ("Memory", Opaque),
    ("NanoCpus", Opaque),
    ("CgroupParent", Opaque),
    ("BlkioWeight", Opaque),
    ("BlkioWeightDevice", Opaque),
    ("BlkioDeviceReadBps", Opaque),
    ("BlkioDeviceWriteBps", Opaque),
    ("BlkioDeviceReadIOps", Opaque),
    ("BlkioDeviceWriteIOps", Opaque),
    ("CpuPeriod", Opaque),
    ("CpuQuota", Opaque),
    ("CpuRealtimePeriod", Opaque),
    ("CpuRealtimeRuntime", Opaque),
    ("CpusetCpus", Opaque),
    ("CpusetMems", Opaque),
    ("Devices", Opaque),
    ("DeviceCgroupRules", Opaque),
    ("DeviceRequests", Opaque),
    ("KernelMemory", Opaque),
    ("KernelMemoryTCP", Opaque),
    ("MemoryReservation", Opaque),
    ("MemorySwap", Opaque),
    ("MemorySwappiness", Opaque),
    ("OomKillDisable", Opaque),
    ("PidsLimit", Opaque),
    ("Ulimits", ArrayOf(ULIMIT)),
    ("CpuCount", Opaque),
    ("CpuPercent", Opaque),
    ("IOMaximumIOps", Opaque),
    ("IOMaximumBandwidth", Opaque),
    ("Mounts", Opaque),
    ("MaskedPaths", Opaque),
    ("ReadonlyPaths", Opaque),
    ("Init", Opaque),
];

/// The body of `POST /containers/create` (container `Config` plus `HostConfig` and
/// `NetworkingConfig`).
pub const CREATE_BODY: &[(&str, Kind)] = &[
    ("Hostname", Opaque),
    ("Domainname", Opaque),
    ("User", Opaque),
    ("AttachStdin", Opaque),
    ("AttachStdout", Opaque),
    ("AttachStderr", Opaque),
    ("ExposedPorts", Opaque),
    ("Tty", Opaque),
    ("OpenStdin", Opaque),
    ("StdinOnce", Opaque),
    ("Env", Opaque),
    ("Cmd", Opaque),
    ("Healthcheck", Opaque),
    ("ArgsEscaped", Opaque),
    ("Image", Opaque),
    ("Volumes", Opaque),
    ("WorkingDir", Opaque),
    ("Entrypoint", Opaque),
    ("NetworkDisabled", Opaque),
    ("MacAddress", Opaque),
    ("OnBuild", Opaque),
    ("Labels", Opaque),
    ("StopSignal", Opaque),
    ("StopTimeout", Opaque),
    ("Shell", Opaque),
    ("HostConfig", Struct(HOST_CONFIG)),
    ("NetworkingConfig", Struct(NETWORKING_CONFIG)),
];

/// The body of `POST /containers/{id}/exec`.
pub const EXEC_CREATE_BODY: &[(&str, Kind)] = &[
    ("User", Opaque),
    ("Privileged", Opaque),
    ("Tty", Opaque),
    ("ConsoleSize", Opaque),
    ("AttachStdin", Opaque),
    ("AttachStderr", Opaque),
    ("AttachStdout", Opaque),
    ("Detach", Opaque),
    ("DetachKeys", Opaque),
    ("Env", Opaque),
    ("WorkingDir", Opaque),
    ("Cmd", Opaque),
];

/// The body of `POST /exec/{id}/start`.
pub const EXEC_START_BODY: &[(&str, Kind)] =
    &[("Detach", Opaque), ("Tty", Opaque), ("ConsoleSize", Opaque)];

/// Renames every key of struct-typed objects in `v` to its field's canonical spelling, refusing
/// non-ASCII keys, unknown keys and two keys for one field. `at` names the place for errors.
pub fn canonicalize(
    v: &mut Value,
    fields: &'static [(&'static str, Kind)],
    at: &str,
) -> Result<(), String> {
    let obj = match v {
        Value::Null => return Ok(()),
        Value::Object(o) => o,
        _ => return Err(format!("{at} must be a JSON object")),
    };
    let old = std::mem::take(obj);
    for (k, mut val) in old {
        if !k.is_ascii() {
            return Err(format!("{at}: non-ASCII key {k:?}"));
        }
        let (name, kind) = fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&k))
            .ok_or_else(|| format!("{at}: unknown field {k:?}"))?;
        if obj.contains_key(*name) {
            return Err(format!(
                "{at}: field {name} given twice (keys differing only in case)"
            ));
        }
        let path = format!("{at}.{name}");
        match kind {
            Opaque => {}
            Struct(f) => canonicalize(&mut val, f, &path)?,
            ArrayOf(f) => match &mut val {
                Value::Null => {}
                Value::Array(items) => {
                    for (i, it) in items.iter_mut().enumerate() {
                        canonicalize(it, f, &format!("{path}[{i}]"))?;
                    }
                }
                _ => return Err(format!("{path} must be an array")),
            },
            MapOf(f) => match &mut val {
                Value::Null => {}
                Value::Object(m) => {
                    for (mk, mv) in m.iter_mut() {
                        canonicalize(mv, f, &format!("{path}[{mk:?}]"))?;
                    }
                }
                _ => return Err(format!("{path} must be an object")),
            },
        }
        obj.insert((*name).to_string(), val);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_refused_anywhere() {
        assert!(parse_strict(br#"{"a":1,"a":2}"#).is_err());
        assert!(parse_strict(br#"{"x":{"Labels":{"k":"1","k":"2"}}}"#).is_err());
        assert!(parse_strict(br#"{"a":1} x"#).is_err());
        assert!(parse_strict(br#"{"a":"\ud800"}"#).is_err());
        assert_eq!(
            parse_strict(br#"{"a":[1,{"b":null}]}"#).expect("ok"),
            serde_json::json!({"a":[1,{"b":null}]})
        );
    }

    #[test]
    fn keys_differing_in_case_are_one_field() {
        let mut v =
            parse_strict(br#"{"Image":"a","HostConfig":{"Privileged":false,"privileged":true}}"#)
                .expect("parse");
        let e = canonicalize(&mut v, CREATE_BODY, "body").expect_err("refused");
        assert!(e.contains("Privileged given twice"), "{e}");

        let mut v = parse_strict(
            br#"{"image":"a","hostconfig":{"PRIVILEGED":false},"Labels":{"a":"1","A":"2"}}"#,
        )
        .expect("parse");
        canonicalize(&mut v, CREATE_BODY, "body").expect("canonical");
        assert_eq!(v["Image"], "a");
        assert_eq!(v["HostConfig"]["Privileged"], false);
        // Map keys are data: untouched.
        assert_eq!(v["Labels"]["A"], "2");
    }

    #[test]
    fn unicode_folding_and_unknown_fields_are_refused() {
        // U+017F LATIN SMALL LETTER LONG S folds to "s" in Go: "Bindſ" would be read as Binds.
        let mut v = parse_strict("{\"HostConfig\":{\"Bind\u{17f}\":[\"/:/h\"]}}".as_bytes())
            .expect("parse");
        assert!(canonicalize(&mut v, CREATE_BODY, "body")
            .expect_err("refused")
            .contains("non-ASCII"));
        let mut v = parse_strict(br#"{"HostConfig":{"Frobnicate":1}}"#).expect("parse");
        assert!(canonicalize(&mut v, CREATE_BODY, "body")
            .expect_err("refused")
            .contains("unknown field"));
        let mut v =
            parse_strict(br#"{"HostConfig":{"Ulimits":[{"name":"nofile","HARD":1,"Soft":1}]}}"#)
                .expect("parse");
        canonicalize(&mut v, CREATE_BODY, "body").expect("ok");
        assert_eq!(v["HostConfig"]["Ulimits"][0]["Hard"], 1);
    }
}

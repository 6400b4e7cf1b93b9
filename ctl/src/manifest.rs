//! The release manifest (`dist/manifest.json`) written by `packaging/build-release`.
//!
//! The templates pin the SHA256 of the agents the hosts download at boot; those hashes come from
//! here and nowhere else. Every field that reaches a template (version, target, path, hash) is
//! checked against a strict alphabet, because it ends up inside a UserData script.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::names::Arch;

/// File name of the manifest inside the artifacts directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The bot-host agent.
pub const AGENT: &str = "clawster-agent";
/// The NAT-instance agent.
pub const NAT_AGENT: &str = "clawster-nat-agent";
/// Target of the NAT instance (t4g.nano, AL2023 arm64).
pub const NAT_TARGET: &str = "aarch64-unknown-linux-musl";

/// The manifest could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// No manifest where we looked.
    #[error(
        "no release manifest at {0}: build the release artifacts first with `packaging/build-release` \
         (it writes dist/manifest.json), or point --artifacts at a directory that holds one"
    )]
    Missing(PathBuf),
    /// The manifest could not be read.
    #[error("cannot read release manifest {path}")]
    Read {
        /// The manifest path.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is not the JSON we expect.
    #[error(
        "release manifest {path} is not valid: expected {{\"version\", \"artifacts\": [...]}}"
    )]
    Parse {
        /// The manifest path.
        path: PathBuf,
        /// What the parser said.
        #[source]
        source: serde_json::Error,
    },
    /// A field has characters or a shape we do not accept.
    #[error("release manifest {path}: {what}")]
    Invalid {
        /// The manifest path.
        path: PathBuf,
        /// Which field and why.
        what: String,
    },
    /// A binary the templates need is not listed.
    #[error(
        "release manifest {path} has no {name} for {target}: rebuild with `packaging/build-release` \
         (it builds clawster-agent and clawster-nat-agent for x86_64 and aarch64 musl)"
    )]
    MissingArtifact {
        /// The manifest path.
        path: PathBuf,
        /// Binary name.
        name: String,
        /// Rust target triple.
        target: String,
    },
}

/// One released binary.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Artifact {
    /// Binary name, e.g. `clawster-agent`.
    pub name: String,
    /// Rust target triple, e.g. `x86_64-unknown-linux-musl`.
    pub target: String,
    /// Release version of this binary.
    pub version: String,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex SHA256 of the file.
    pub sha256: String,
    /// Path relative to the artifacts directory, e.g. `x86_64-unknown-linux-musl/clawster-agent`.
    pub path: String,
}

/// The whole manifest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Manifest {
    /// Release version.
    pub version: String,
    /// Every binary of the release.
    pub artifacts: Vec<Artifact>,
}

/// The binaries a deployment pins, checked and ready to embed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// Release version.
    pub version: String,
    /// `clawster-agent` for x86_64 bot hosts.
    pub agent_x86_64: Artifact,
    /// `clawster-agent` for arm64 (Graviton) bot hosts.
    pub agent_arm64: Artifact,
    /// `clawster-nat-agent` for the NAT instance.
    pub nat_agent: Artifact,
    /// Every binary the manifest lists (deploy uploads the agents of every target).
    pub artifacts: Vec<Artifact>,
}

impl Release {
    /// Reads `<dir>/manifest.json` and picks the binaries the templates pin.
    pub fn load(dir: &Path) -> Result<Self, ManifestError> {
        let path = dir.join(MANIFEST_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ManifestError::Missing(path))
            }
            Err(source) => return Err(ManifestError::Read { path, source }),
        };
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|source| ManifestError::Parse {
                path: path.clone(),
                source,
            })?;
        Self::from_manifest(manifest, &path)
    }

    /// Checks a parsed manifest (`path` is only used in messages).
    pub fn from_manifest(manifest: Manifest, path: &Path) -> Result<Self, ManifestError> {
        let invalid = |what: String| ManifestError::Invalid {
            path: path.to_path_buf(),
            what,
        };
        check_version(&manifest.version).map_err(|w| invalid(format!("version: {w}")))?;
        for a in &manifest.artifacts {
            check_artifact(a)
                .map_err(|w| invalid(format!("artifact {:?} ({}): {w}", a.name, a.target)))?;
        }
        let pick = |name: &str, target: &str| {
            manifest
                .artifacts
                .iter()
                .find(|a| a.name == name && a.target == target)
                .cloned()
                .ok_or_else(|| ManifestError::MissingArtifact {
                    path: path.to_path_buf(),
                    name: name.to_string(),
                    target: target.to_string(),
                })
        };
        Ok(Self {
            version: manifest.version.clone(),
            agent_x86_64: pick(AGENT, Arch::X86_64.target())?,
            agent_arm64: pick(AGENT, Arch::Arm64.target())?,
            nat_agent: pick(NAT_AGENT, NAT_TARGET)?,
            artifacts: manifest.artifacts.clone(),
        })
    }

    /// `clawster-agent` for bot hosts of `arch`.
    pub fn agent(&self, arch: Arch) -> &Artifact {
        match arch {
            Arch::X86_64 => &self.agent_x86_64,
            Arch::Arm64 => &self.agent_arm64,
        }
    }

    /// Object key of an artifact in the shared artifacts bucket:
    /// `artifacts/<release version>/<manifest path>`. `clawsterctl deploy` uploads to this key and
    /// the UserData downloads from it; both come from this one function.
    pub fn object_key(&self, artifact: &Artifact) -> String {
        format!("{ARTIFACTS_PREFIX}/{}/{}", self.version, artifact.path)
    }
}

/// Key prefix of everything the instances may read from the artifacts bucket.
pub const ARTIFACTS_PREFIX: &str = "artifacts";

fn check_version(v: &str) -> Result<(), String> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.starts_with(|c: char| c.is_ascii_digit())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{v:?} is not a release version (digits, letters, '.', '-', '+')"
        ))
    }
}

fn check_artifact(a: &Artifact) -> Result<(), String> {
    check_version(&a.version)?;
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    };
    if !plain(&a.name) || !plain(&a.target) {
        return Err("name and target may only hold letters, digits, '.', '-' and '_'".into());
    }
    if a.sha256.len() != 64
        || !a
            .sha256
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    {
        return Err(format!(
            "sha256 {:?} is not 64 lowercase hex digits",
            a.sha256
        ));
    }
    let path_ok = a.path.len() <= 200
        && a.path
            .split('/')
            .all(|part| plain(part) && part != "." && part != "..");
    if !path_ok {
        return Err(format!(
            "path {:?} must be relative, with parts of letters, digits, '.', '-' and '_' (no '..')",
            a.path
        ));
    }
    if a.size == 0 {
        return Err("size is 0".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(name: &str, target: &str) -> Artifact {
        Artifact {
            name: name.into(),
            target: target.into(),
            version: "0.1.0".into(),
            size: 10,
            sha256: "ab".repeat(32),
            path: format!("{target}/{name}"),
        }
    }

    fn manifest() -> Manifest {
        Manifest {
            version: "0.1.0".into(),
            artifacts: vec![
                artifact(AGENT, Arch::X86_64.target()),
                artifact(AGENT, NAT_TARGET),
                artifact(NAT_AGENT, Arch::X86_64.target()),
                artifact(NAT_AGENT, NAT_TARGET),
            ],
        }
    }

    #[test]
    fn picks_the_agent_of_each_arch_and_the_arm_nat_agent() {
        let r = Release::from_manifest(manifest(), Path::new("m.json")).expect("release");
        assert_eq!(r.agent(Arch::X86_64).target, Arch::X86_64.target());
        assert_eq!(r.agent(Arch::Arm64).target, NAT_TARGET);
        assert_eq!(r.agent(Arch::Arm64).name, AGENT);
        assert_eq!(r.nat_agent.target, NAT_TARGET);
        assert_eq!(
            r.object_key(r.agent(Arch::X86_64)),
            "artifacts/0.1.0/x86_64-unknown-linux-musl/clawster-agent"
        );
    }

    #[test]
    fn missing_manifest_says_how_to_build_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = Release::load(dir.path())
            .expect_err("no manifest")
            .to_string();
        assert!(
            e.contains("packaging/build-release") && e.contains("manifest.json"),
            "{e}"
        );
    }

    #[test]
    fn refuses_fields_that_could_reach_a_shell() {
        type Mutation = Box<dyn Fn(&mut Manifest)>;
        let cases: Vec<(&str, Mutation)> = vec![
            (
                "sha256",
                Box::new(|m| m.artifacts[0].sha256 = "AB".repeat(32)),
            ),
            ("sha256", Box::new(|m| m.artifacts[0].sha256 = "ab".into())),
            (
                "path",
                Box::new(|m| m.artifacts[0].path = "../etc/passwd".into()),
            ),
            (
                "path",
                Box::new(|m| m.artifacts[0].path = "/abs/clawster-agent".into()),
            ),
            (
                "path",
                Box::new(|m| m.artifacts[0].path = "x/$(reboot)".into()),
            ),
            ("version", Box::new(|m| m.version = "1;reboot".into())),
            (
                "name and target",
                Box::new(|m| m.artifacts[0].target = "x y".into()),
            ),
            ("size", Box::new(|m| m.artifacts[0].size = 0)),
        ];
        for (field, mutate) in cases {
            let mut m = manifest();
            mutate(&mut m);
            let e = Release::from_manifest(m, Path::new("m.json"))
                .expect_err(field)
                .to_string();
            assert!(e.contains(field), "{field}: {e}");
        }
    }

    #[test]
    fn missing_binary_is_named() {
        let mut m = manifest();
        m.artifacts
            .retain(|a| !(a.name == NAT_AGENT && a.target == NAT_TARGET));
        let e = Release::from_manifest(m, Path::new("m.json"))
            .expect_err("missing")
            .to_string();
        assert!(e.contains(NAT_AGENT) && e.contains(NAT_TARGET), "{e}");
    }
}

//! The moto AWS emulator in server mode, started on a free loopback port for one test and killed
//! when dropped, and the pieces the emulator tests share: a release directory with real files
//! and hashes, and an `Aws` pointed at the emulator.
//!
//! moto comes from the venv `tests/setup-host` makes from tests/deps/moto.requirements.txt
//! (`$CLAWSTER_CACHE/venvs/moto`); a missing one fails the test saying how to install it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

/// A running moto server.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// A private HOME (no ~/.aws of the machine is read).
    pub home: tempfile::TempDir,
}

fn moto_server() -> PathBuf {
    let cache = std::env::var_os("CLAWSTER_CACHE")
        .map_or_else(|| PathBuf::from("/var/tmp/clawster"), PathBuf::from);
    let candidates = [
        std::env::var_os("CLAWSTER_MOTO").map(PathBuf::from),
        Some(cache.join("venvs/moto/bin/moto_server")),
    ];
    candidates
        .iter()
        .flatten()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "moto_server is not installed (looked for {candidates:?}). Run tests/setup-host: \
                 it installs tests/deps/moto.requirements.txt into $CLAWSTER_CACHE/venvs/moto, \
                 or point CLAWSTER_MOTO at a moto_server"
            )
        })
}

impl Moto {
    /// Starts moto on a free port of 127.0.0.1 and waits until it accepts connections.
    pub fn start() -> Self {
        let port = {
            let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("free port");
            l.local_addr().unwrap().port()
        };
        let log = std::env::temp_dir().join(format!("clawster-moto-{port}.log"));
        let child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("moto log"))
            .spawn()
            .expect("start moto_server");
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let until = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < until,
                "moto_server did not listen on {addr} within 60 s (log: {})",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            home: tempfile::tempdir().unwrap(),
        }
    }

    /// Environment for clawsterctl and the SDK: the emulator, dummy keys, no profile files.
    pub fn env(&self) -> Vec<(String, String)> {
        let home = self.home.path().display().to_string();
        for f in ["no-config", "no-credentials"] {
            let _ = std::fs::write(self.home.path().join(f), "");
        }
        vec![
            ("AWS_ENDPOINT_URL".into(), self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_CONFIG_FILE".into(), format!("{home}/no-config")),
            (
                "AWS_SHARED_CREDENTIALS_FILE".into(),
                format!("{home}/no-credentials"),
            ),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ("HOME".into(), home),
            ("CI".into(), "true".into()),
            ("NO_COLOR".into(), "1".into()),
        ]
    }

    /// Runs clawsterctl against the emulator.
    pub fn ctl(&self, args: &[&str]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_clawsterctl"));
        c.args(args).stdin(Stdio::null()).env_clear();
        c.env("PATH", std::env::var_os("PATH").unwrap_or_default());
        for (k, v) in self.env() {
            c.env(k, v);
        }
        c.output().expect("run clawsterctl")
    }

    /// An `Aws` for the test's own checks, pointed at the emulator.
    pub async fn aws(&self) -> clawsterctl::aws::Aws {
        aws_at(&self.endpoint).await
    }
}

/// An `Aws` pointed at the emulator at `endpoint`, with its dummy keys (usable from any thread).
pub async fn aws_at(endpoint: &str) -> clawsterctl::aws::Aws {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .http_client(clawsterctl::aws::https_client())
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .load()
        .await;
    clawsterctl::aws::Aws::from_config(&conf, "us-east-1".parse().unwrap())
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A release directory with real (small) files for both agents on both targets, and a manifest
/// whose sizes and hashes match them.
pub fn release_dir(dir: &Path) -> PathBuf {
    release_dir_flavour(dir, "")
}

/// [`release_dir`] whose binaries differ by `flavour` (another release of the same version: new
/// hashes, so a new launch template).
pub fn release_dir_flavour(dir: &Path, flavour: &str) -> PathBuf {
    let mut artifacts = Vec::new();
    for name in ["clawster-agent", "clawster-nat-agent"] {
        for target in ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"] {
            let rel = format!("{target}/{name}");
            let path = dir.join(&rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let body =
                format!("#!/bin/false\n# stand-in for {name} ({target}){flavour}\n").repeat(50);
            std::fs::write(&path, &body).unwrap();
            artifacts.push(serde_json::json!({
                "name": name, "target": target, "version": "0.1.0",
                "size": body.len(), "sha256": hex::encode(Sha256::digest(body.as_bytes())),
                "path": rel,
            }));
        }
    }
    let manifest = serde_json::json!({ "version": "0.1.0", "artifacts": artifacts });
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
    dir.to_path_buf()
}

/// stdout and stderr of a run, for messages and secret searches.
pub fn text(out: &Output) -> String {
    format!(
        "--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Registers the task's address (10.0.16.10:18789, in a private subnet as awsvpc gives it) in every
/// bot stack's target group every 500 ms until `stop`, as ECS would: moto runs no tasks.
pub fn registrar(
    moto: &Moto,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let endpoint = moto.endpoint.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let aws = aws_at(&endpoint).await;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let stacks = clawsterctl::stack::list(&aws, "clawster-bot-").await;
                for s in stacks.unwrap_or_default() {
                    let Some(tg) = s.outputs.get("TargetGroupArn") else {
                        continue;
                    };
                    let _ = aws
                        .elb
                        .register_targets()
                        .target_group_arn(tg)
                        .targets(
                            aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
                                .id("10.0.16.10")
                                .port(18789)
                                .build(),
                        )
                        .send()
                        .await;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    })
}

/// The service's task definition as ECS stored it: the image by digest and every hardening field.
pub fn assert_task_is_hardened(
    rt: &tokio::runtime::Runtime,
    aws: &clawsterctl::aws::Aws,
    svc: &aws_sdk_ecs::types::Service,
    image: &str,
) {
    use aws_sdk_ecs::types::TransportProtocol;
    let td = rt
        .block_on(
            aws.ecs
                .describe_task_definition()
                .task_definition(svc.task_definition().expect("a task definition"))
                .send(),
        )
        .unwrap();
    let td = td.task_definition().expect("task definition");
    let c = &td.container_definitions()[0];
    assert_eq!(c.image(), Some(image), "the image by digest");
    assert_eq!(c.user(), Some("1000:1000"));
    assert_eq!(c.readonly_root_filesystem(), Some(true));
    assert_eq!(c.privileged(), Some(false));
    assert_eq!(c.docker_security_options(), ["no-new-privileges"]);
    assert!(c.entry_point().is_empty(), "the image's entry point");
    assert_eq!(c.command(), ["--port", "18789"]);
    assert_eq!(c.stop_timeout(), Some(120));
    let lp = c.linux_parameters().expect("linux parameters");
    let caps = lp.capabilities().expect("capabilities");
    assert_eq!(caps.drop(), ["ALL"]);
    assert!(caps.add().is_empty());
    assert_eq!(lp.init_process_enabled(), Some(true));
    let tmpfs: Vec<&str> = lp.tmpfs().iter().map(|t| t.container_path()).collect();
    assert_eq!(tmpfs, ["/tmp", "/home/openclaw"]);
    let hc = c.health_check().expect("health check");
    assert_eq!(hc.command()[..2], ["CMD", "/usr/local/bin/node"]);
    assert!(hc.command()[3].contains("/healthz"), "{:?}", hc.command());
    let writable: Vec<&str> = c
        .mount_points()
        .iter()
        .filter(|m| m.read_only() == Some(false))
        .filter_map(|m| m.container_path())
        .collect();
    assert_eq!(
        writable,
        ["/var/run/docker.sock", "/home/openclaw/.openclaw"]
    );
    assert_eq!(
        c.port_mappings()[0].protocol(),
        Some(&TransportProtocol::Tcp)
    );
}

/// The bot's ECS service as moto describes it.
pub fn service(
    rt: &tokio::runtime::Runtime,
    aws: &clawsterctl::aws::Aws,
    bot: &clawsterctl::stack::StackInfo,
) -> aws_sdk_ecs::types::Service {
    let out = rt
        .block_on(
            aws.ecs
                .describe_services()
                .cluster(&bot.outputs["ClusterName"])
                .services(&bot.outputs["ServiceName"])
                .send(),
        )
        .unwrap();
    out.services()[0].clone()
}

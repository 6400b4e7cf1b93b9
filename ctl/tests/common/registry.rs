//! A real registry for push tests: Debian's docker-registry on a free loopback port with one
//! htpasswd user (Basic auth, the scheme ECR uses with its authorization token), its request log
//! in a file, and small but complete OCI layouts to push to it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clawsterctl::image::MANIFEST_MEDIA_TYPE;
use sha2::{Digest, Sha256};

/// A running docker-registry, killed when dropped.
pub struct LocalRegistry {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its log (info level: one line per request).
    pub log: PathBuf,
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LocalRegistry {
    /// Starts a registry storing under `dir` that accepts `user`/`password` only.
    pub fn start(dir: &Path, user: &str, password: &str) -> Self {
        for t in ["docker-registry", "htpasswd"] {
            assert!(
                tool(t),
                "{t} is missing: install the test prerequisites (tests/deps/ctl.apt, tests/setup-host)"
            );
        }
        std::fs::create_dir_all(dir).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .unwrap();
        std::fs::write(dir.join("htpasswd"), out.stdout).unwrap();
        std::fs::write(
            dir.join("config.yml"),
            format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                dir.join("storage").display(),
                dir.join("htpasswd").display()
            ),
        )
        .unwrap();
        let log = dir.join("registry.log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(std::fs::File::create(dir.join("registry.out")).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the registry did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// How many requests with `method` to a path containing `path_part` the registry has served.
    /// The registry logs a request after answering it, so this first waits until its log has not
    /// grown for 300 ms (at most 10 s).
    pub fn requests(&self, method: &str, path_part: &str) -> usize {
        let len = || std::fs::metadata(&self.log).map_or(0, |m| m.len());
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let before = len();
            std::thread::sleep(Duration::from_millis(300));
            if len() == before || Instant::now() > until {
                break;
            }
        }
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter(|l| l.contains("response completed"))
            .filter(|l| l.contains(&format!("http.request.method={method} ")))
            .filter(|l| l.contains("http.request.uri=") && l.contains(path_part))
            .count()
    }
}

fn tool(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `sha256:<hex>` of bytes.
pub fn digest(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn put_blob(dir: &Path, bytes: &[u8]) -> String {
    let d = digest(bytes);
    std::fs::write(dir.join("blobs/sha256").join(&d[7..]), bytes).unwrap();
    d
}

/// A small but complete OCI layout for `arch` (`amd64`, `arm64`): config, two layers, manifest,
/// index. Returns the manifest's digest.
pub fn layout(dir: &Path, arch: &str) -> String {
    layout_with(dir, arch, b"second layer")
}

/// [`layout`] whose second layer is `second` (another image sharing the config and first layer).
pub fn layout_with(dir: &Path, arch: &str, second: &[u8]) -> String {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    let config = format!(
        r#"{{"architecture":"{arch}","os":"linux","config":{{"User":"1000:1000"}},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
    );
    let l1: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let l2 = second.to_vec();
    let (c, a, b) = (
        put_blob(dir, config.as_bytes()),
        put_blob(dir, &l1),
        put_blob(dir, &l2),
    );
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c, "size": config.len()},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": a, "size": l1.len()},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": b, "size": l2.len()}
        ]
    })
    .to_string();
    let m = put_blob(dir, manifest.as_bytes());
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [
        {"mediaType": MANIFEST_MEDIA_TYPE, "digest": m, "size": manifest.len()}
    ]});
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    m
}

//! The moto AWS emulator (server mode, from `$CLAWSTER_CACHE/venvs/moto`, which `tests/setup-host`
//! makes) for suites that need S3: started on loopback or inside a network namespace the suite
//! created, killed on drop; buckets and objects are set up with the venv's boto3, which moto
//! depends on.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::netns::Netns;
use crate::process::run_ok;

/// Dummy credentials moto accepts.
pub const KEY_ID: &str = "testing";
/// Dummy secret.
pub const SECRET: &str = "testing";
/// The region the suites use.
pub const REGION: &str = "us-east-1";

fn venv_bin(name: &str) -> Result<PathBuf> {
    let p = crate::cache_dir().join("venvs/moto/bin").join(name);
    if !p.is_file() {
        bail!(
            "{} is missing: run tests/setup-host (it makes the venv from tests/deps/moto.requirements.txt)",
            p.display()
        );
    }
    Ok(p)
}

/// A running moto server.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    /// `http://ADDR:PORT` as the suite's clients reach it.
    pub endpoint: String,
    ns: Option<String>,
}

impl Moto {
    /// Starts moto on `addr:port`, inside `ns` when given (else on this machine's loopback).
    pub fn start(ns: Option<&Netns>, addr: &str, port: u16) -> Result<Self> {
        let server = venv_bin("moto_server")?;
        let log =
            std::env::temp_dir().join(format!("clawster-moto-{}-{port}.log", std::process::id()));
        let mut cmd = match ns {
            Some(ns) => ns.command(&server),
            None => Command::new(&server),
        };
        let child = cmd
            .args(["-H", addr, "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).context("moto log")?)
            .spawn()
            .context("start moto_server")?;
        // A server on every address is reached by the suite's own clients on loopback.
        let local = if addr == "0.0.0.0" { "127.0.0.1" } else { addr };
        let m = Self {
            child,
            endpoint: format!("http://{local}:{port}"),
            ns: ns.map(|n| n.name().to_string()),
        };
        let until = Instant::now() + Duration::from_secs(60);
        while m.python("import urllib.request,sys; urllib.request.urlopen(sys.argv[1]+'/moto-api/').read()", &[&m.endpoint]).is_err() {
            if Instant::now() > until {
                bail!("moto did not answer on {} within 60 s (log {})", m.endpoint, log.display());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(m)
    }

    /// Runs a Python snippet with the venv's Python (boto3 available) where moto runs; `args`
    /// become `sys.argv[1..]`. Returns stdout.
    pub fn python(&self, code: &str, args: &[&str]) -> Result<String> {
        let py = venv_bin("python")?;
        let mut cmd = match &self.ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&py);
                c
            }
            None => Command::new(&py),
        };
        cmd.arg("-c").arg(code).args(args);
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
        Ok(run_ok(&mut cmd, Duration::from_secs(60))?.stdout)
    }

    /// Environment for an S3 client: dummy keys, the region, the endpoint.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", KEY_ID.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET.into()),
            ("AWS_DEFAULT_REGION", REGION.into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
        ]
    }

    /// Creates `bucket` with versioning on (as the shared stack's bucket has).
    pub fn versioned_bucket(&self, bucket: &str) -> Result<()> {
        self.python(
            "import boto3,sys; s=boto3.client('s3'); s.create_bucket(Bucket=sys.argv[1]); \
             s.put_bucket_versioning(Bucket=sys.argv[1], VersioningConfiguration={'Status':'Enabled'})",
            &[bucket],
        )?;
        Ok(())
    }

    /// Writes an object.
    pub fn put(&self, bucket: &str, key: &str, body: &str) -> Result<()> {
        self.python(
            "import boto3,sys; boto3.client('s3').put_object(Bucket=sys.argv[1], Key=sys.argv[2], Body=sys.argv[3].encode())",
            &[bucket, key, body],
        )?;
        Ok(())
    }

    /// Every version of every key under `prefix` as `key version-id`, one per line.
    pub fn versions(&self, bucket: &str, prefix: &str) -> Result<Vec<(String, String)>> {
        let out = self.python(
            "import boto3,sys\nr=boto3.client('s3').list_object_versions(Bucket=sys.argv[1], Prefix=sys.argv[2])\nfor v in r.get('Versions',[]): print(v['Key'], v['VersionId'])",
            &[bucket, prefix],
        )?;
        Ok(out
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    /// Deletes one version of an object (to tear a replica).
    pub fn delete_version(&self, bucket: &str, key: &str, version: &str) -> Result<()> {
        self.python(
            "import boto3,sys; boto3.client('s3').delete_object(Bucket=sys.argv[1], Key=sys.argv[2], VersionId=sys.argv[3])",
            &[bucket, key, version],
        )?;
        Ok(())
    }

    /// An object's current body.
    pub fn get(&self, bucket: &str, key: &str) -> Result<String> {
        self.python(
            "import boto3,sys; print(boto3.client('s3').get_object(Bucket=sys.argv[1], Key=sys.argv[2])['Body'].read().decode(), end='')",
            &[bucket, key],
        )
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

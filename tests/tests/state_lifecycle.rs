//! End to end: the graceful end of a host seen by `clawster-agent state run` (the release
//! binary) in IMDS, against S3 in the moto emulator on loopback.
//!
//! The test is about the state capability, so the other sides are stand-ins at their process
//! boundary, all on loopback or in the test's temporary directory: a fake IMDS (its
//! `target-lifecycle-state` and `spot/instance-action` flipped by the test), a stand-in for the
//! Auto Scaling endpoint that records every request (moto has no CompleteLifecycleAction) and
//! whose requests are checked with botocore's own SigV4 signer, and a stand-in dockerd socket
//! with one running ECS `openclaw` container that, asked to stop, writes a last file into the
//! state directory (as the gateway does when it closes) before it answers.
//!
//! - `lifecycle_hook_final_sync`: `Terminated` mid-run: the container is stopped with its own
//!   stop timeout, a file written just before the flip and the one written while stopping are
//!   in the replica, the lease is released, `CompleteLifecycleAction` (after one
//!   `DescribeAutoScalingInstances`) arrives exactly once and only after the final manifest and
//!   the release (the stand-in reads both from moto when the call arrives), with the right group,
//!   hook, instance and result; then `run` writes nothing more, stops the bot's container again
//!   when it is restarted on this host, and exits 0 on SIGTERM. Prints the time from the flip to
//!   CompleteLifecycleAction.
//! - `spot_notice_final_sync`: a spot notice gives the final pass and the release, and no
//!   Auto Scaling call.
//! - `lifecycle_completion_failing`: the stand-in answers 500: the completion is retried with
//!   backoff until the heartbeat, then recorded; `run` stays up and the replica is final.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clawster_e2e::bins::host_binary;
use clawster_e2e::moto::{Moto, KEY_ID, REGION, SECRET};
use clawster_e2e::prereq::require_root;

const BUCKET: &str = "clawster-artifacts-123456789012-us-east-1";
const INSTANCE: &str = "i-0123456789abcdef0";
const GROUP: &str = "clawster-lc-bot-Hosts-1ABCDEF";
const HOOK: &str = "clawster-final-sync";
const CONTAINER_ID: &str = "4f2c9e1b7a3d";

/// One HTTP request a stand-in received.
#[derive(Debug, Clone)]
struct Req {
    target: String,
    headers: BTreeMap<String, String>,
    body: String,
    at: Instant,
    /// For CompleteLifecycleAction: the manifest and lease in moto when it arrived.
    seen: Option<(String, String)>,
}

fn read_request(s: &mut TcpStream) -> Result<Req> {
    let mut r = BufReader::new(s.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let at = Instant::now();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let n: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; n];
    r.read_exact(&mut body)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    Ok(Req {
        target: format!("{method} {target}"),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at,
        seen: None,
    })
}

fn answer(s: &mut TcpStream, status: u16, body: &str) {
    let _ = write!(
        s,
        "HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// The fake IMDS: a token, then the two paths the watcher reads (404 while unset).
#[derive(Default)]
struct ImdsState {
    target: Option<String>,
    spot: Option<String>,
}

fn fake_imds(state: Arc<Mutex<ImdsState>>) -> Result<String> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?.to_string();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let Ok(req) = read_request(&mut s) else {
                continue;
            };
            let st = state.lock().unwrap();
            let body = if req.target.starts_with("PUT /latest/api/token") {
                Some("token-1".to_string())
            } else if req
                .target
                .ends_with("/latest/meta-data/autoscaling/target-lifecycle-state")
            {
                st.target.clone()
            } else if req
                .target
                .ends_with("/latest/meta-data/spot/instance-action")
            {
                st.spot.clone()
            } else {
                None
            };
            match body {
                Some(b) => answer(&mut s, 200, &b),
                None => answer(&mut s, 404, ""),
            }
        }
    });
    Ok(addr)
}

/// GET of an object straight from moto, without a Python round trip (fast enough to run inside
/// the stand-in's handler): moto, its IAM checks off, refuses anonymous requests but does not
/// verify signatures, so a placeholder Authorization header with the test's key is enough. The
/// body, or "" when absent.
fn moto_get(endpoint: &str, key: &str) -> String {
    let addr = endpoint.trim_start_matches("http://");
    let Ok(mut s) = TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = write!(
        s,
        "GET /{BUCKET}/{key} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: AWS4-HMAC-SHA256 \
         Credential={KEY_ID}/20261207/{REGION}/s3/aws4_request, SignedHeaders=host, Signature=0\r\n\r\n"
    );
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    match buf.split_once("\r\n\r\n") {
        Some((head, body))
            if head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200") =>
        {
            body.to_string()
        }
        _ => String::new(),
    }
}

/// The Auto Scaling stand-in: records every request; CompleteLifecycleAction answers
/// `complete_status` and snapshots the bot's manifest and lease in moto on arrival.
fn fake_autoscaling(
    seen: Arc<Mutex<Vec<Req>>>,
    complete_status: u16,
    moto: String,
    bot: String,
) -> Result<String> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let endpoint = format!("http://{}", l.local_addr()?);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let Ok(mut req) = read_request(&mut s) else {
                continue;
            };
            let (status, body) = if req.body.contains("Action=DescribeAutoScalingInstances") {
                (200, format!(
                    "<DescribeAutoScalingInstancesResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><DescribeAutoScalingInstancesResult><AutoScalingInstances><member><InstanceId>{INSTANCE}</InstanceId><AutoScalingGroupName>{GROUP}</AutoScalingGroupName><LifecycleState>Terminating:Wait</LifecycleState></member></AutoScalingInstances></DescribeAutoScalingInstancesResult></DescribeAutoScalingInstancesResponse>"
                ))
            } else if req.body.contains("Action=CompleteLifecycleAction") {
                req.seen = Some((
                    moto_get(&moto, &format!("state/{bot}/manifest.json")),
                    moto_get(&moto, &format!("state/{bot}/lease.json")),
                ));
                if complete_status == 200 {
                    (200, "<CompleteLifecycleActionResponse><CompleteLifecycleActionResult/></CompleteLifecycleActionResponse>".to_string())
                } else {
                    (complete_status, "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>stand-in failure</Message></Error></ErrorResponse>".to_string())
                }
            } else {
                (400, "<ErrorResponse><Error><Code>InvalidAction</Code><Message>unknown</Message></Error></ErrorResponse>".to_string())
            };
            seen.lock().unwrap().push(req);
            answer(&mut s, status, &body);
        }
    });
    Ok(endpoint)
}

/// The dockerd stand-in: one running ECS `openclaw` container (stop timeout 7 s) until it is
/// stopped; the stop writes `credentials/closing.json` into `state_dir` (the gateway's last
/// write as it closes) and takes a second. Records the request lines.
fn fake_dockerd(
    sock: &Path,
    state_dir: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
    running: Arc<Mutex<bool>>,
) -> Result<()> {
    let l = UnixListener::bind(sock)?;
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            let line = line.trim().to_string();
            let (status, body) = if line.starts_with("GET /containers/json?filters=") {
                let list = if *running.lock().unwrap() {
                    format!("[{{\"Id\":\"{CONTAINER_ID}\",\"State\":\"running\"}}]")
                } else {
                    "[]".into()
                };
                (200, list)
            } else if line.starts_with(&format!("GET /containers/{CONTAINER_ID}/json")) {
                (
                    200,
                    "{\"Name\":\"/ecs-lc-bot-3-openclaw-a1b2\",\"Config\":{\"StopTimeout\":7}}"
                        .to_string(),
                )
            } else if line.starts_with(&format!("POST /containers/{CONTAINER_ID}/stop")) {
                let _ = fs::write(
                    state_dir.join("credentials/closing.json"),
                    b"written while stopping",
                );
                std::thread::sleep(Duration::from_secs(1));
                *running.lock().unwrap() = false;
                (204, String::new())
            } else {
                (404, "{\"message\":\"no such thing\"}".to_string())
            };
            log.lock().unwrap().push(line);
            let _ = write!(
                s,
                "HTTP/1.0 {status} X\r\nContent-Type: application/json\r\n\r\n{body}"
            );
        }
    });
    Ok(())
}

/// One `state run` with its stand-ins.
struct Host {
    child: Child,
    dir: PathBuf,
    log: PathBuf,
    imds: Arc<Mutex<ImdsState>>,
    asg: Arc<Mutex<Vec<Req>>>,
    docker: Arc<Mutex<Vec<String>>>,
    /// Whether the stand-in's bot container runs.
    running: Arc<Mutex<bool>>,
    bot: String,
    _tmp: tempfile::TempDir,
}

impl Host {
    fn start(moto: &Moto, bot: &str, complete_status: u16, heartbeat: u64) -> Result<Self> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("openclaw");
        fs::create_dir_all(dir.join("credentials"))?;
        fs::write(dir.join("credentials/whatsapp.json"), b"{\"creds\":1}")?;
        let imds = Arc::new(Mutex::new(ImdsState {
            target: Some("InService".into()),
            spot: None,
        }));
        let imds_addr = fake_imds(Arc::clone(&imds))?;
        let asg = Arc::new(Mutex::new(Vec::new()));
        let asg_endpoint = fake_autoscaling(
            Arc::clone(&asg),
            complete_status,
            moto.endpoint.clone(),
            bot.to_string(),
        )?;
        let docker = Arc::new(Mutex::new(Vec::new()));
        let running = Arc::new(Mutex::new(true));
        let sock = tmp.path().join("docker.sock");
        fake_dockerd(
            &sock,
            dir.clone(),
            Arc::clone(&docker),
            Arc::clone(&running),
        )?;
        let log = tmp.path().join("agent.log");
        let mut c = Command::new(host_binary("clawster-agent")?);
        c.args([
            "state", "run", "--bot", bot, "--bucket", BUCKET, "--region", REGION,
        ])
        .args(["--endpoint", &moto.endpoint, "--instance-id", INSTANCE])
        .arg("--dir")
        .arg(&dir)
        .arg("--work")
        .arg(tmp.path().join("work"))
        .args([
            "--interval",
            "1",
            "--lease-ttl",
            "30",
            "--log-target",
            "stderr",
        ])
        .args(["--imds-endpoint", &imds_addr, "--lifecycle-poll", "1"])
        .args(["--autoscaling-endpoint", &asg_endpoint])
        .args(["--lifecycle-heartbeat", &heartbeat.to_string()])
        .arg("--docker-socket")
        .arg(&sock);
        for (k, v) in moto.env() {
            c.env(k, v);
        }
        let child = c
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log)?)
            .spawn()
            .context("clawster-agent state run")?;
        let h = Self {
            child,
            dir,
            log,
            imds,
            asg,
            docker,
            running,
            bot: bot.to_string(),
            _tmp: tmp,
        };
        h.wait_for("the first generation", Duration::from_secs(60), |h| {
            !h.manifest(moto).is_empty()
        })?;
        Ok(h)
    }

    fn manifest(&self, moto: &Moto) -> String {
        moto_get(&moto.endpoint, &format!("state/{}/manifest.json", self.bot))
    }

    fn lease(&self, moto: &Moto) -> String {
        moto_get(&moto.endpoint, &format!("state/{}/lease.json", self.bot))
    }

    fn journal(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_for(&self, what: &str, limit: Duration, ok: impl Fn(&Self) -> bool) -> Result<()> {
        let t = Instant::now();
        while !ok(self) {
            anyhow::ensure!(
                t.elapsed() < limit,
                "{what}: not within {} s; agent log:\n{}",
                limit.as_secs(),
                self.journal()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    fn completions(&self) -> Vec<Req> {
        self.asg
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.body.contains("Action=CompleteLifecycleAction"))
            .cloned()
            .collect()
    }

    /// SIGTERM; the exit status.
    fn stop(&mut self) -> Result<std::process::ExitStatus> {
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(self.child.id() as i32).unwrap(),
            rustix::process::Signal::TERM,
        )?;
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait()? {
                return Ok(st);
            }
            anyhow::ensure!(
                t.elapsed() < Duration::from_secs(30),
                "no exit 30 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn paths(manifest: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(manifest).unwrap_or_default();
    v["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["path"].as_str().map(str::to_string))
        .collect()
}

fn released(lease: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(lease).is_ok_and(|v| v["released"] == true)
}

fn form(body: &str) -> BTreeMap<String, String> {
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%2F", "/")))
        .collect()
}

/// Checks a recorded request's Authorization against botocore's SigV4 signer (service
/// `autoscaling`, the test's keys, the request's own date).
fn check_signature(moto: &Moto, endpoint_host: &str, r: &Req) -> Result<()> {
    let code = "import sys\n\
        from botocore.auth import SigV4Auth\n\
        from botocore.awsrequest import AWSRequest\n\
        from botocore.credentials import Credentials\n\
        host, ctype, date, body, key, secret, region = sys.argv[1:8]\n\
        r = AWSRequest(method='POST', url='http://'+host+'/', data=body, headers={'Content-Type': ctype, 'X-Amz-Date': date})\n\
        r.context['timestamp'] = date\n\
        a = SigV4Auth(Credentials(key, secret), 'autoscaling', region)\n\
        print('AWS4-HMAC-SHA256 Credential=%s, SignedHeaders=%s, Signature=%s' % (a.scope(r), a.signed_headers(a.headers_to_sign(r)), a.signature(a.string_to_sign(r, a.canonical_request(r)), r)))\n";
    let h = |k: &str| r.headers.get(k).cloned().unwrap_or_default();
    let want = moto.python(
        code,
        &[
            endpoint_host,
            &h("content-type"),
            &h("x-amz-date"),
            &r.body,
            KEY_ID,
            SECRET,
            REGION,
        ],
    )?;
    anyhow::ensure!(
        h("authorization") == want.trim(),
        "{}: Authorization {:?}, botocore computes {:?}",
        r.target,
        h("authorization"),
        want.trim()
    );
    anyhow::ensure!(
        h("authorization").contains(&format!("/{REGION}/autoscaling/aws4_request")),
        "scope: {}",
        h("authorization")
    );
    Ok(())
}

fn moto() -> Result<Moto> {
    require_root("state lifecycle e2e")?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let moto = Moto::start(None, "127.0.0.1", port)?;
    moto.versioned_bucket(BUCKET)?;
    Ok(moto)
}

#[test]
fn lifecycle_hook_final_sync() -> Result<()> {
    let moto = moto()?;
    let mut h = Host::start(&moto, "lc-bot", 200, 300)?;
    // Steady: InService, no notice: replication only, no Auto Scaling or Docker call.
    std::thread::sleep(Duration::from_secs(3));
    assert!(h.asg.lock().unwrap().is_empty());
    assert!(h.docker.lock().unwrap().is_empty());

    fs::write(
        h.dir.join("credentials/late.json"),
        b"written just before the flip",
    )?;
    let flip = Instant::now();
    h.imds.lock().unwrap().target = Some("Terminated".into());
    h.wait_for("CompleteLifecycleAction", Duration::from_secs(60), |h| {
        !h.completions().is_empty()
    })?;
    let done = h.completions()[0].clone();
    let secs = done.at.duration_since(flip).as_secs_f64();
    eprintln!("lifecycle numbers: target-lifecycle-state Terminated -> CompleteLifecycleAction in {secs:.2} s (poll 1 s, container stop 1 s, moto on loopback)");

    // The final manifest and the release were in the bucket before the call arrived.
    let (manifest, lease) = done.seen.clone().unwrap();
    let files = paths(&manifest);
    for f in [
        "credentials/late.json",
        "credentials/closing.json",
        "credentials/whatsapp.json",
    ] {
        assert!(
            files.iter().any(|p| p == f),
            "{f} missing from the final manifest: {files:?}"
        );
    }
    assert!(
        released(&lease),
        "lease not released before the completion: {lease}"
    );
    let p = form(&done.body);
    assert_eq!(p["AutoScalingGroupName"], GROUP);
    assert_eq!(p["LifecycleHookName"], HOOK);
    assert_eq!(p["InstanceId"], INSTANCE);
    assert_eq!(p["LifecycleActionResult"], "CONTINUE");
    assert_eq!(p["Version"], "2011-01-01");

    // The container was stopped with its own stop timeout, before the final pass.
    let docker = h.docker.lock().unwrap().clone();
    assert!(
        docker
            .iter()
            .any(|l| l == &format!("POST /containers/{CONTAINER_ID}/stop?t=7 HTTP/1.0")),
        "{docker:?}"
    );

    // Released: nothing more is written, the lease is not taken back, the completion is not
    // repeated; a bot container started again on this host (ECS without managed draining) is
    // stopped again; SIGTERM ends run cleanly.
    fs::write(h.dir.join("credentials/after.json"), b"after the release")?;
    *h.running.lock().unwrap() = true;
    h.wait_for(
        "the restarted container stopped again",
        Duration::from_secs(20),
        |h| !*h.running.lock().unwrap(),
    )?;
    assert!(
        h.journal()
            .contains("started again after the state was released"),
        "{}",
        h.journal()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        h.manifest(&moto),
        manifest,
        "a manifest written after the release"
    );
    assert!(released(&h.lease(&moto)));
    let st = h.stop()?;
    assert!(st.success(), "{st:?}\n{}", h.journal());
    assert!(released(&h.lease(&moto)));
    assert_eq!(h.manifest(&moto), manifest);
    let all = h.asg.lock().unwrap().clone();
    assert_eq!(h.completions().len(), 1, "{all:?}");
    assert_eq!(all.len(), 2, "one Describe, one Complete: {all:?}");
    assert!(all[0].body.contains("Action=DescribeAutoScalingInstances"));
    assert!(all[0]
        .body
        .contains(&format!("InstanceIds.member.1={INSTANCE}")));
    let host = all[0].headers["host"].clone();
    for r in &all {
        check_signature(&moto, &host, r)?;
    }
    let journal = h.journal();
    for want in [
        "the Auto Scaling group is terminating this instance",
        "final sync taken, lease released",
        "completed (CONTINUE)",
    ] {
        assert!(journal.contains(want), "journal lacks {want:?}:\n{journal}");
    }
    Ok(())
}

#[test]
fn spot_notice_final_sync() -> Result<()> {
    let moto = moto()?;
    let mut h = Host::start(&moto, "spot-bot", 200, 300)?;
    fs::write(
        h.dir.join("credentials/late.json"),
        b"written just before the notice",
    )?;
    let t = Instant::now();
    h.imds.lock().unwrap().spot =
        Some(r#"{"action":"terminate","time":"2026-12-07T16:02:00Z"}"#.into());
    h.wait_for("the lease released", Duration::from_secs(60), |h| {
        released(&h.lease(&moto))
    })?;
    eprintln!(
        "lifecycle numbers: spot notice -> final sync and lease released in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let files = paths(&h.manifest(&moto));
    for f in ["credentials/late.json", "credentials/closing.json"] {
        assert!(files.iter().any(|p| p == f), "{f} missing: {files:?}");
    }
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        h.asg.lock().unwrap().is_empty(),
        "no Auto Scaling call for spot"
    );
    let st = h.stop()?;
    assert!(st.success(), "{st:?}");
    assert!(
        h.journal().contains("spot interruption notice"),
        "{}",
        h.journal()
    );
    Ok(())
}

#[test]
fn lifecycle_completion_failing() -> Result<()> {
    let moto = moto()?;
    let mut h = Host::start(&moto, "fail-bot", 500, 12)?;
    fs::write(h.dir.join("credentials/late.json"), b"before the flip")?;
    h.imds.lock().unwrap().target = Some("Terminated".into());
    h.wait_for("the failure recorded", Duration::from_secs(60), |h| {
        h.journal()
            .contains("completing the lifecycle action failed")
    })?;
    let tries = h.completions();
    assert!(
        tries.len() >= 3,
        "retried with backoff: {} attempts",
        tries.len()
    );
    for w in tries.windows(2) {
        assert!(
            w[1].at >= w[0].at + Duration::from_millis(900),
            "backoff between attempts"
        );
    }
    let journal = h.journal();
    assert!(
        journal.contains("HTTP 500 InternalFailure: stand-in failure"),
        "{journal}"
    );
    assert!(released(&h.lease(&moto)));
    assert!(paths(&h.manifest(&moto))
        .iter()
        .any(|p| p == "credentials/late.json"));
    // Not fatal: run is still up, and ends cleanly.
    assert!(h.child.try_wait()?.is_none(), "run exited:\n{journal}");
    let st = h.stop()?;
    assert!(st.success(), "{st:?}");
    eprintln!(
        "lifecycle numbers: {} CompleteLifecycleAction attempts within a 12 s heartbeat",
        tries.len()
    );
    Ok(())
}

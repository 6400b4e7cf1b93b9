//! The window service in-process on a temporary run directory, with a recording installer in
//! place of apt-get (the process boundary this suite is not about): every refusal case leaves
//! the installer uncalled; an allowed install streams its output and is recorded; the expiry
//! thread locks the window on time with no request; one install at a time; an unreadable state
//! is locked.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clawster_agent::host::packages::{InstallError, InstallLimits, InstallReport, WindowInstaller};
use clawster_agent::window::service::{self, ServeOptions};
use clawster_agent::window::state::{Loaded, Now, RunDir};
use clawster_agent::window::{client, ops};

#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<String>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    delay: Duration,
}

impl WindowInstaller for Recorder {
    fn name(&self) -> String {
        "recorder".into()
    }
    fn install_one(
        &self,
        package: &str,
        _limits: &InstallLimits,
        out: &mut dyn FnMut(&str),
    ) -> Result<InstallReport, InstallError> {
        let n = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(n, Ordering::SeqCst);
        self.calls.lock().unwrap().push(package.to_string());
        out(&format!("Setting up {package} (1.0) ..."));
        std::thread::sleep(self.delay);
        self.running.fetch_sub(1, Ordering::SeqCst);
        if package == "broken-pkg" {
            return Err(InstallError::Failed("dpkg: error processing".into()));
        }
        Ok(InstallReport {
            already_installed: false,
            changes: vec![format!("{package} 1.0")],
        })
    }
}

struct Server {
    rd: RunDir,
    rec: Arc<Recorder>,
    stop: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(delay: Duration, queue_timeout: Duration) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rd = RunDir::new(dir.path());
        let gid = rustix::process::getegid().as_raw();
        let listener = service::bind(&rd, Some(gid)).unwrap();
        let rec = Arc::new(Recorder {
            delay,
            ..Default::default()
        });
        let stop = Arc::new(AtomicBool::new(false));
        let opts = ServeOptions {
            run_dir: rd.clone(),
            client_gid: Some(gid),
            client_group: "test".into(),
            limits: InstallLimits::default(),
            queue_timeout,
        };
        let (r, s) = (rec.clone(), stop.clone());
        std::thread::spawn(move || service::serve(opts, r, listener, s));
        Self {
            rd,
            rec,
            stop,
            _dir: dir,
        }
    }

    fn install(&self, pkg: &str) -> (u8, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = client::install(&self.rd, pkg, &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    fn calls(&self) -> Vec<String> {
        self.rec.calls.lock().unwrap().clone()
    }

    fn open(&self, pkgs: &[&str], ttl: Duration) {
        let now = Now::read().unwrap();
        ops::open(
            &self.rd,
            &now,
            pkgs.iter().map(|s| s.to_string()).collect(),
            ttl,
            String::new(),
            0,
        )
        .unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::os::unix::net::UnixStream::connect(self.rd.socket());
    }
}

#[test]
fn socket_is_0660() {
    use std::os::unix::fs::PermissionsExt;
    let s = Server::start(Duration::ZERO, Duration::from_secs(5));
    let m = std::fs::metadata(s.rd.socket()).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o660);
}

#[test]
fn refusals_never_reach_the_package_manager() {
    let s = Server::start(Duration::ZERO, Duration::from_secs(5));
    let (code, _, err) = s.install("hello");
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no window is open"), "{err}");

    s.open(&["hello", "g++"], Duration::from_secs(60));
    for name in [
        "-oDPkg::Pre-Invoke::=id",
        "--reinstall",
        "./evil.deb",
        "/tmp/x.deb",
        "evil.rpm",
        "nginx*",
        "^hell.*",
        "hello=2.10-3",
        "hello/bookworm",
        "hello:amd64",
        "hello-",
        "hello.",
        "@group",
        "hello;id",
        "$(id)",
        "hello\n",
        "hello\ninstall g++",
        "hello\0",
        "héllo",
        "hello world",
        "a",
        "",
        &"x".repeat(101),
        &"x".repeat(300),
    ] {
        let (code, _, err) = s.install(name);
        assert_eq!(code, 3, "{name:?}: {err}");
        assert!(err.starts_with("refused: "), "{name:?}: {err}");
    }
    let (code, _, err) = s.install("nginx");
    assert_eq!(code, 3);
    assert!(err.contains("not on the window's list"), "{err}");
    // Case matters: the list says hello.
    assert_eq!(s.install("Hello").0, 3);
    assert!(s.calls().is_empty(), "{:?}", s.calls());

    let (code, out, err) = s.install("hello");
    assert_eq!((code, err.trim()), (0, "installed hello"), "{out}");
    assert!(out.contains("Setting up hello (1.0) ..."), "{out}");
    let (code, _, err) = s.install("broken-pkg");
    assert_eq!(code, 3, "not on the list: {err}");
    assert_eq!(s.calls(), vec!["hello"]);
    let w = s.rd.load();
    let w = w.window().unwrap();
    assert_eq!(w.installed.len(), 1);
    assert_eq!(w.installed[0].changes, vec!["hello 1.0"]);

    // Closed: refused at once.
    ops::close(&s.rd, &Now::read().unwrap()).unwrap();
    let (code, _, err) = s.install("hello");
    assert_eq!(code, 3);
    assert!(err.contains("closed by the operator"), "{err}");
    assert_eq!(s.calls().len(), 1);

    // Unreadable state: locked.
    std::fs::write(s.rd.state(), b"{garbage").unwrap();
    let (code, _, err) = s.install("hello");
    assert_eq!(code, 3);
    assert!(err.contains("unreadable"), "{err}");
    assert_eq!(s.calls().len(), 1);
}

#[test]
fn failed_install_exits_1() {
    let s = Server::start(Duration::ZERO, Duration::from_secs(5));
    s.open(&["broken-pkg"], Duration::from_secs(60));
    let (code, _, err) = s.install("broken-pkg");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("dpkg: error processing"), "{err}");
    let w = s.rd.load();
    assert_eq!(w.window().unwrap().installed[0].result, "failed");
}

#[test]
fn expiry_locks_without_any_request() {
    let s = Server::start(Duration::ZERO, Duration::from_secs(5));
    s.open(&["hello"], Duration::from_secs(2));
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if let Loaded::Window(w) = s.rd.load() {
            if w.state == "locked" {
                assert_eq!(w.locked_by.as_deref(), Some("expiry"));
                break;
            }
        }
        assert!(
            Instant::now() < deadline + Duration::from_secs(1),
            "not locked within 1 s of the deadline"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let late = Instant::now().saturating_duration_since(deadline);
    eprintln!("expiry recorded {late:?} after the deadline");
    assert_eq!(s.install("hello").0, 3);
    assert!(s.calls().is_empty());
}

#[test]
fn one_install_at_a_time_and_bounded_waits() {
    let s = Arc::new(Server::start(
        Duration::from_millis(300),
        Duration::from_secs(10),
    ));
    s.open(&["aa", "bb", "cc"], Duration::from_secs(60));
    let hs: Vec<_> = ["aa", "bb", "cc"]
        .into_iter()
        .map(|p| {
            let s = s.clone();
            std::thread::spawn(move || s.install(p).0)
        })
        .collect();
    for h in hs {
        assert_eq!(h.join().unwrap(), 0);
    }
    assert_eq!(s.rec.max_running.load(Ordering::SeqCst), 1);
    assert_eq!(s.calls().len(), 3);

    let slow = Arc::new(Server::start(
        Duration::from_millis(1500),
        Duration::from_millis(200),
    ));
    slow.open(&["aa", "bb"], Duration::from_secs(60));
    let s2 = slow.clone();
    let first = std::thread::spawn(move || s2.install("aa"));
    std::thread::sleep(Duration::from_millis(300));
    let (code, _, err) = slow.install("bb");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("another install is still running"), "{err}");
    assert_eq!(first.join().unwrap().0, 0);
    assert_eq!(slow.calls(), vec!["aa"]);
}

#[test]
fn opening_again_replaces_and_close_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let rd = RunDir::new(dir.path());
    let now = Now::read().unwrap();
    let first = ops::open(
        &rd,
        &now,
        vec!["hello".into()],
        Duration::from_secs(60),
        String::new(),
        0,
    )
    .unwrap();
    assert!(first.replaced.is_none());
    let second = ops::open(
        &rd,
        &now,
        vec!["nginx".into()],
        Duration::from_secs(60),
        String::new(),
        0,
    )
    .unwrap();
    assert_eq!(
        second.replaced.as_ref().map(|(id, _)| id.as_str()),
        Some(first.window.id.as_str())
    );
    let st = ops::status(&rd, &now);
    assert_eq!(
        (st.state.as_str(), st.packages.clone()),
        ("open", vec!["nginx".to_string()])
    );
    assert_eq!(ops::close(&rd, &now).unwrap().was, "open");
    assert_eq!(ops::close(&rd, &now).unwrap().was, "locked");
    assert_eq!(ops::status(&rd, &now).state, "locked");
    // A window that is locked is not "replaced" by the next open.
    let third = ops::open(
        &rd,
        &now,
        vec!["hello".into()],
        Duration::from_secs(60),
        String::new(),
        0,
    )
    .unwrap();
    assert!(third.replaced.is_none());
    // close with an unreadable state removes it and stays locked.
    std::fs::write(rd.state(), b"junk").unwrap();
    assert_eq!(ops::close(&rd, &now).unwrap().was, "unreadable");
    assert_eq!(rd.load(), Loaded::None);
    assert!(ops::render_status(&ops::status(&rd, &now)).contains("locked (no window is open)"));
}

#[test]
fn refresh_from_open_is_answered_at_once() {
    let s = Server::start(Duration::ZERO, Duration::from_secs(5));
    let t = Instant::now();
    let r = ops::poke(&s.rd);
    if rustix::process::geteuid().is_root() {
        r.expect("refresh answered");
    } else {
        let e = r.expect_err("refresh is for root");
        assert!(e.contains("refresh is for root"), "{e}");
    }
    // A request that never ends would only be refused after the 10 s read timeout.
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

//! `window install PKG`: the client the bot runs. It sends one request over the socket and
//! streams the package manager's output back. Exit status: 0 installed (or already installed),
//! 3 refused (no window, expired, not on the list, invalid name, caller not allowed), 1 the
//! install itself failed (or the service could not be reached).

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

use super::protocol::{encode_install, parse_reply, Reply, CODE_FAILED, CODE_REFUSED};
use super::state::RunDir;

/// Runs one install request; output lines go to `out`, the verdict to `err`; returns the exit code.
pub fn install(rd: &RunDir, package: &str, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let path = rd.socket();
    let mut s = match UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            let _ = writeln!(
                err,
                "refused: caller not allowed: no permission to connect to {} (only root and the window's client group may ask for installs)",
                path.display()
            );
            return CODE_REFUSED;
        }
        Err(e) => {
            let _ = writeln!(
                err,
                "failed: the window service is not reachable at {}: {e}",
                path.display()
            );
            return CODE_FAILED;
        }
    };
    if let Err(e) = s.write_all(&encode_install(package)) {
        let _ = writeln!(err, "failed: sending the request: {e}");
        return CODE_FAILED;
    }
    let _ = s.shutdown(std::net::Shutdown::Write);
    for line in BufReader::new(s).split(b'\n') {
        let line = match line {
            Ok(l) => String::from_utf8_lossy(&l).into_owned(),
            Err(e) => {
                let _ = writeln!(err, "failed: reading the reply: {e}");
                return CODE_FAILED;
            }
        };
        match parse_reply(&line) {
            Some(Reply::Output(t)) => {
                let _ = writeln!(out, "{t}");
                let _ = out.flush();
            }
            Some(Reply::Result(code, reason)) => {
                let _ = writeln!(err, "{reason}");
                return code;
            }
            None => {}
        }
    }
    let _ = writeln!(
        err,
        "failed: the window service closed the connection without a result"
    );
    CODE_FAILED
}

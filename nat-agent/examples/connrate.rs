//! New-TCP-connections-per-second probe for `nat-agent/bench/run`.
//!
//! `connrate serve ADDR` accepts and closes connections until killed.
//! `connrate connect ADDR SECS THREADS` opens connections as fast as it can for SECS seconds
//! (handshake, the server closes, the client sees EOF and closes), and prints the rate, the
//! count and the number of failed connects. Only for traffic between network namespaces the benchmark created.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("serve") => serve(&args[2]),
        Some("connect") => connect(
            &args[2],
            args[3].parse().unwrap_or(3),
            args[4].parse().unwrap_or(4),
        ),
        _ => {
            eprintln!("usage: connrate serve ADDR | connrate connect ADDR SECS THREADS");
            std::process::exit(2);
        }
    }
}

fn serve(addr: &str) {
    let l = TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let l = l.try_clone().expect("clone listener");
            std::thread::spawn(move || loop {
                if let Ok((s, _)) = l.accept() {
                    drop(s);
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
}

fn connect(addr: &str, secs: u64, threads: usize) {
    let addr: SocketAddr = addr.parse().expect("address");
    let count = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let hs: Vec<_> = (0..threads)
        .map(|_| {
            let (count, errors, stop) = (count.clone(), errors.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                        Ok(mut s) => {
                            // The server closes first (so TIME_WAIT stays on its side, as with
                            // HTTP/1.0); wait for its FIN, then close.
                            let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                            let mut b = [0u8; 16];
                            let _ = std::io::Read::read(&mut s, &mut b);
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for h in hs {
        let _ = h.join();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let n = count.load(Ordering::Relaxed);
    println!(
        "{:.0} {} {}",
        n as f64 / elapsed,
        n,
        errors.load(Ordering::Relaxed)
    );
}

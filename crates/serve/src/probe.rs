//! `<binary> health`: one HTTP GET to the process's own listener, for container
//! health checks in images that have no shell or curl.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// GETs `path` from `addr` (a listen address: an unspecified IP such as
/// `0.0.0.0` is probed on loopback) and returns the status code. Bounded by
/// `timeout` for connecting and again for the answer.
pub fn probe(addr: &str, path: &str, timeout: Duration) -> io::Result<u16> {
    let mut target: SocketAddr = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
    if target.ip().is_unspecified() {
        let lo = if target.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        };
        target.set_ip(lo);
    }
    let mut s = TcpStream::connect_timeout(&target, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    // One write: a head split over segments may meet a server that answers
    // after the first and resets the rest.
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\nUser-Agent: sundial-health\r\n\r\n"
    );
    s.write_all(req.as_bytes())?;
    // The status line is all we need: `HTTP/1.1 200 OK`.
    let mut head = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        match s.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    let line = String::from_utf8_lossy(&head[..n]);
    line.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("not HTTP: {line:?}")))
}

/// The `health` subcommand: exits 0 when `path` on `addr` answers 2xx, else
/// prints why and exits 1.
pub fn health_command(addr: &str, path: &str) -> ! {
    if addr.is_empty() {
        eprintln!("unhealthy: no listener is configured to serve {path}");
        std::process::exit(1)
    }
    match probe(addr, path, Duration::from_secs(3)) {
        Ok(code) if (200..300).contains(&code) => {
            println!("healthy: {addr}{path} answered {code}");
            std::process::exit(0)
        }
        Ok(code) => {
            eprintln!("unhealthy: {addr}{path} answered {code}");
            std::process::exit(1)
        }
        Err(e) => {
            eprintln!("unhealthy: {addr}{path}: {e}");
            std::process::exit(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_status_of_a_listener_and_fails_on_a_closed_port() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 512];
            while !head.ends_with(b"\r\n\r\n") {
                let n = c.read(&mut buf).unwrap();
                assert!(n > 0, "closed before the head ended");
                head.extend_from_slice(&buf[..n]);
            }
            c.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
        });
        let code = probe(
            &format!("0.0.0.0:{port}"),
            "/health",
            Duration::from_secs(2),
        )
        .unwrap();
        assert_eq!(code, 503);
        t.join().unwrap();
        assert!(probe(
            &format!("127.0.0.1:{port}"),
            "/health",
            Duration::from_secs(2)
        )
        .is_err());
    }
}

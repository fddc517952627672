//! A tiny HTTP/1.1 target for load-testing k6 itself on loopback: keep-alive, one thread per
//! connection, answers every request `200 ok`. Used by `scripts/bench-k6.sh` (`make bench`) to
//! measure what each way of getting k6's samples into InfluxDB costs k6 (the target must be
//! cheap, so k6 is the bottleneck), and as the null InfluxDB of its diagnosis rows.
//!
//! `cargo run --release --example k6_target [PORT]` prints `listening on 127.0.0.1:PORT`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .map(|p| p.parse().expect("PORT must be a number"))
        .unwrap_or(0);
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    println!("listening on {}", listener.local_addr()?);
    for conn in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let _ = serve(conn);
        });
    }
    Ok(())
}

/// Serves requests on one connection until the client closes it.
fn serve(conn: TcpStream) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let mut out = conn.try_clone()?;
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    loop {
        // Request line and headers; only Content-Length and Connection matter.
        let mut body_len = 0usize;
        let mut close = false;
        let mut first = true;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let l = line.trim_end();
            if l.is_empty() {
                if first {
                    continue;
                }
                break;
            }
            first = false;
            if let Some((name, value)) = l.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    body_len = value.parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("connection") {
                    close = value.eq_ignore_ascii_case("close");
                }
            }
        }
        std::io::copy(
            &mut (&mut reader).take(body_len as u64),
            &mut std::io::sink(),
        )?;
        out.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok",
        )?;
        if close {
            return Ok(());
        }
    }
}

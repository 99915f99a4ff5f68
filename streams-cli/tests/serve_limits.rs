//! `streams serve --config max.connections=N --config connections.max.idle.ms=MS`: the
//! limits reach the server, and bad values are refused before anything is opened.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn streams(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_streams"));
    cmd.env_remove("STREAMS_DATA_DIR")
        .env_remove("RUST_LOG")
        .arg("--data-dir")
        .arg(dir);
    cmd
}

/// Starts `streams serve` on a free loopback port with `args`; the child and its address.
fn serve_with(dir: &Path, args: &[&str]) -> (Child, String) {
    let mut child = streams(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // "serving DIR in the Kafka protocol on ADDR; Ctrl-C to stop"
    let addr = line
        .split(" on ")
        .last()
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, addr)
}

fn terminate(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "streams serve ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether an ApiVersions v0 request on `stream` is answered.
fn answered(stream: &mut TcpStream) -> bool {
    // Header v1: API key 18, version 0, correlation id 7, client id "t"; no body.
    let request = [0, 18, 0, 0, 0, 0, 0, 7, 0, 1, b't'];
    let mut frame = (request.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&request);
    if stream.write_all(&frame).is_err() {
        return false;
    }
    let mut size = [0u8; 4];
    if stream.read_exact(&mut size).is_err() {
        return false;
    }
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).is_ok() && body[..4] == 7i32.to_be_bytes()
}

/// Whether the server closes `stream` within `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

#[test]
fn max_connections_and_connections_max_idle_ms_reach_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let (child, addr) = serve_with(
        tmp.path(),
        &[
            "--config",
            "max.connections=1",
            "--config",
            "connections.max.idle.ms=500",
        ],
    );
    let mut first = TcpStream::connect(&addr).unwrap();
    assert!(answered(&mut first));
    let answered_at = Instant::now();
    let mut second = TcpStream::connect(&addr).unwrap();
    assert!(
        closed_within(&mut second, Duration::from_secs(10)),
        "a second connection is closed at once"
    );
    assert!(
        closed_within(&mut first, Duration::from_secs(10)),
        "the first connection is closed when idle"
    );
    assert!(answered_at.elapsed() >= Duration::from_millis(400));
    // Its slot is free again (once the server has seen it go).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !answered(&mut TcpStream::connect(&addr).unwrap()) {
        assert!(Instant::now() < deadline, "the slot was not freed");
        std::thread::sleep(Duration::from_millis(20));
    }
    terminate(child);
}

#[test]
fn bad_connection_limits_are_refused_before_anything_is_opened() {
    for (config, why) in [
        ("max.connections=0", "a positive number of connections"),
        ("max.connections=many", "a positive number of connections"),
        ("connections.max.idle.ms=soon", "a number of milliseconds"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let out = streams(tmp.path())
            .args(["serve", "--listen", "127.0.0.1:0", "--config", config])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{config}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(why), "{config}: {stderr}");
        assert!(!tmp.path().join("meta").exists(), "nothing was created");
    }
}

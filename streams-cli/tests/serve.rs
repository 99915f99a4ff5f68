//! `streams serve` with clients no one here wrote: kcat (librdkafka) reads the served
//! broker's metadata. The test command installs kcat; a missing kcat fails the test.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{serve, serve_with, streams, terminate};

fn kcat(args: &[&str]) -> String {
    kcat_with_input(args, "")
}

#[test]
fn kcat_reads_the_served_brokers_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let created = streams(dir)
        .args(["topics", "create", "--topic", "orders", "--partitions", "3"])
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let (child, addr) = serve(dir);
    let listing = kcat(&["-b", &addr, "-L", "-m", "20"]);
    assert!(
        listing.contains(&format!("broker 0 at {addr} (controller)")),
        "{listing}"
    );
    assert!(
        listing.contains("topic \"orders\" with 3 partitions"),
        "{listing}"
    );
    for p in 0..3 {
        assert!(
            listing.contains(&format!("partition {p}, leader 0, replicas: 0, isrs: 0")),
            "{listing}"
        );
    }
    // A topic asked for by name is created (auto.create.topics.enable), with num.partitions.
    let one = kcat(&["-b", &addr, "-L", "-t", "fresh", "-m", "20"]);
    assert!(one.contains("topic \"fresh\" with 1 partitions"), "{one}");
    terminate(child);
    // Closed cleanly: the data dir opens again, with both topics.
    let listed = streams(dir).args(["topics", "list"]).output().unwrap();
    assert!(listed.status.success(), "{listed:?}");
    assert_eq!(String::from_utf8_lossy(&listed.stdout), "fresh\norders\n");
}

#[test]
fn a_non_loopback_listener_needs_an_explicit_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let out = streams(tmp.path())
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--allow-non-loopback"), "{stderr}");
    assert!(!tmp.path().join("meta").exists(), "nothing was created");
}

/// A Kafka protocol string: `i16` length and bytes.
fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A request frame: size, header (version 1: key, version, correlation id, client id), body.
fn frame(api_key: i16, version: i16, body: &[u8]) -> Vec<u8> {
    let mut request = Vec::new();
    request.extend_from_slice(&api_key.to_be_bytes());
    request.extend_from_slice(&version.to_be_bytes());
    request.extend_from_slice(&7i32.to_be_bytes());
    put_str(&mut request, "serve-test");
    request.extend_from_slice(body);
    let mut out = (request.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&request);
    out
}

/// Reads one response frame.
fn read_frame(stream: &mut std::net::TcpStream) -> Vec<u8> {
    use std::io::Read;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).unwrap();
    body
}

/// A Kafka client's offsets, committed over the wire, show in `streams groups describe`
/// after the server stops; a JoinGroup parked for the initial rebalance delay does not
/// hold up the server's shutdown.
#[test]
fn offsets_committed_over_the_wire_show_in_groups_describe_and_shutdown_does_not_wait() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let created = streams(dir)
        .args(["topics", "create", "--topic", "orders", "--partitions", "2"])
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let (child, addr) = serve_with(
        dir,
        &["--config", "group.initial.rebalance.delay.ms=600000"],
    );
    // OffsetCommit v2 of a consumer outside group management (generation -1): offset 42
    // of orders-1 for group "manual".
    let mut commit = Vec::new();
    put_str(&mut commit, "manual");
    commit.extend_from_slice(&(-1i32).to_be_bytes());
    put_str(&mut commit, "");
    commit.extend_from_slice(&(-1i64).to_be_bytes());
    commit.extend_from_slice(&1i32.to_be_bytes());
    put_str(&mut commit, "orders");
    commit.extend_from_slice(&1i32.to_be_bytes());
    commit.extend_from_slice(&1i32.to_be_bytes());
    commit.extend_from_slice(&42i64.to_be_bytes());
    put_str(&mut commit, "from kafka");
    let mut client = std::net::TcpStream::connect(&addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    client.write_all(&frame(8, 2, &commit)).unwrap();
    let answer = read_frame(&mut client);
    assert_eq!(&answer[..4], &7i32.to_be_bytes(), "the correlation id");
    assert_eq!(&answer[answer.len() - 2..], &[0, 0], "no error: {answer:?}");
    // JoinGroup v0 of a new member: parked for the 10-minute initial delay.
    let mut join = Vec::new();
    put_str(&mut join, "waiting");
    join.extend_from_slice(&10_000i32.to_be_bytes());
    put_str(&mut join, "");
    put_str(&mut join, "consumer");
    join.extend_from_slice(&1i32.to_be_bytes());
    put_str(&mut join, "range");
    join.extend_from_slice(&0i32.to_be_bytes());
    let mut parked = std::net::TcpStream::connect(&addr).unwrap();
    parked.write_all(&frame(11, 0, &join)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let started = std::time::Instant::now();
    terminate(child);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the parked JoinGroup held the shutdown for {:?}",
        started.elapsed()
    );
    let described = streams(dir)
        .args(["groups", "describe", "--group", "manual"])
        .output()
        .unwrap();
    assert!(described.status.success(), "{described:?}");
    let text = String::from_utf8_lossy(&described.stdout);
    let row = text
        .lines()
        .find(|l| l.starts_with("manual") && l.contains("orders"))
        .unwrap_or_else(|| panic!("{text}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[..4], &["manual", "orders", "1", "42"], "{text}");
}

/// Runs kcat with `input` on its stdin; its stdout.
fn kcat_with_input(args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("kcat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcat is installed (the test command installs Debian's kcat)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "kcat {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn kcat_produces_and_consumes_and_the_cli_sees_the_same_records() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let created = streams(dir)
        .args(["topics", "create", "--topic", "words", "--partitions", "3"])
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let (child, addr) = serve(dir);
    let input: String = (0..300).map(|i| format!("key-{i}:value-{i}\n")).collect();
    // acks=all, librdkafka's default partitioner (consistent_random: crc32 of the key).
    kcat_with_input(
        &[
            "-b",
            &addr,
            "-P",
            "-t",
            "words",
            "-K:",
            "-X",
            "acks=all",
            "-X",
            "linger.ms=5",
        ],
        &input,
    );
    let consumed = kcat(&[
        "-b",
        &addr,
        "-C",
        "-t",
        "words",
        "-o",
        "beginning",
        "-e",
        "-q",
        "-f",
        "%p %o %k=%s\n",
    ]);
    let mut lines: Vec<&str> = consumed.lines().collect();
    assert_eq!(lines.len(), 300, "{consumed}");
    // Each key kept its partition, and offsets run on from 0 in each partition.
    let mut next = [0u64; 3];
    for line in &lines {
        let (where_, record) = line.split_once(' ').unwrap();
        let (offset, kv) = record.split_once(' ').unwrap();
        let p: usize = where_.parse().unwrap();
        assert_eq!(offset.parse::<u64>().unwrap(), next[p], "{line}");
        next[p] += 1;
        let (k, v) = kv.split_once('=').unwrap();
        assert_eq!(k.replace("key", "value"), v);
    }
    lines.sort();
    lines.dedup();
    assert_eq!(lines.len(), 300, "no record twice");
    // From an offset, and the last record only.
    let tail = kcat(&[
        "-b", &addr, "-C", "-t", "words", "-p", "0", "-o", "-1", "-e", "-q", "-f", "%o\n",
    ]);
    assert_eq!(tail.trim(), (next[0] - 1).to_string());
    terminate(child);
    // The data dir's own consumer reads the same 300 records.
    let out = streams(dir)
        .args([
            "consume",
            "--topic",
            "words",
            "--from-beginning",
            "--timeout-ms",
            "2000",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().filter(|l| l.contains("value-")).count(),
        300,
        "{text}"
    );
}

#[test]
fn kcat_produces_with_each_codec_and_consumes_in_a_group_that_commits() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (child, addr) = serve_with(dir, &["--config", "group.initial.rebalance.delay.ms=0"]);
    let mut expected = 0;
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let input: String = (0..100).map(|i| format!("{codec}-{i}\n")).collect();
        kcat_with_input(
            &[
                "-b",
                &addr,
                "-P",
                "-t",
                "packed",
                "-z",
                codec,
                "-X",
                "enable.idempotence=true",
            ],
            &input,
        );
        expected += 100;
    }
    // A balanced consumer (-G): joins the group, reads everything, commits on exit.
    let consumed = kcat(&[
        "-b",
        &addr,
        "-G",
        "readers",
        "-o",
        "beginning",
        "-e",
        "-q",
        "-f",
        "%s\n",
        "packed",
    ]);
    let lines: Vec<&str> = consumed.lines().collect();
    assert_eq!(lines.len(), expected, "{consumed}");
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        assert_eq!(
            lines.iter().filter(|l| l.starts_with(codec)).count(),
            100,
            "{codec}"
        );
    }
    terminate(child);
    // The group's offsets were committed.
    let described = streams(dir)
        .args(["groups", "describe", "--group", "readers"])
        .output()
        .unwrap();
    assert!(described.status.success(), "{described:?}");
    let text = String::from_utf8_lossy(&described.stdout);
    let row = text
        .lines()
        .find(|l| l.starts_with("readers") && l.contains("packed"))
        .unwrap_or_else(|| panic!("{text}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[3], expected.to_string(), "committed offset: {text}");
}

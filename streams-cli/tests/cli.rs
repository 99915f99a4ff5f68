//! End-to-end tests of the `streams` binary: each runs the real executable on a data dir in a
//! temporary directory and checks its stdout, stderr and exit status.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use broker_embedded::partitioner::partition_for_key;
use broker_embedded::{Broker, BrokerConfig};

/// Longest any one run of the binary may take before the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// What one run of the binary printed.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_streams"));
    cmd.env_remove("STREAMS_DATA_DIR")
        .env_remove("RUST_LOG")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .timeout(RUN_LIMIT);
    cmd
}

fn run_cmd(mut cmd: Command, stdin: &str) -> Run {
    let out = cmd.write_stdin(stdin.as_bytes().to_vec()).output();
    let out = match out {
        Ok(out) => out,
        Err(e) => panic!("running streams: {e}"),
    };
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn run(dir: &Path, args: &[&str], stdin: &str) -> Run {
    run_cmd(command(dir, args), stdin)
}

/// Runs and expects success with nothing on stderr; returns stdout.
fn ok(dir: &Path, args: &[&str], stdin: &str) -> String {
    let r = run(dir, args, stdin);
    assert_eq!(r.code, Some(0), "streams {args:?} failed: {r:?}");
    assert_eq!(r.stderr, "", "streams {args:?} wrote to stderr");
    r.stdout
}

/// Runs a consume and expects success; returns stdout and checks the summary line.
fn consume(dir: &Path, args: &[&str], expect_count: usize) -> String {
    let mut all = vec!["consume"];
    all.extend_from_slice(args);
    let r = run(dir, &all, "");
    assert_eq!(r.code, Some(0), "streams {all:?} failed: {r:?}");
    assert_eq!(
        r.stderr,
        format!("Processed a total of {expect_count} messages\n"),
        "streams {all:?}"
    );
    assert_eq!(r.stdout.lines().count(), expect_count, "{r:?}");
    r.stdout
}

/// Checks a failed run: non-zero status and exactly one `error: ` line on stderr. Returns
/// that line.
fn expect_one_error_line(r: &Run, what: &str) -> String {
    assert!(
        matches!(r.code, Some(c) if c != 0),
        "{what}: expected a failure: {r:?}"
    );
    assert_eq!(
        r.stderr.lines().count(),
        1,
        "{what}: stderr is one line: {r:?}"
    );
    assert!(r.stderr.starts_with("error: "), "{what}: {r:?}");
    assert!(!r.stderr.contains("panicked"), "{what}: {r:?}");
    r.stderr.trim_end().to_owned()
}

fn fails(dir: &Path, args: &[&str], stdin: &str) -> String {
    let r = run(dir, args, stdin);
    expect_one_error_line(&r, &format!("streams {args:?}"))
}

fn produce(dir: &Path, topic: &str, extra: &[&str], lines: &str) -> String {
    let mut args = vec!["produce", "--topic", topic];
    args.extend_from_slice(extra);
    ok(dir, &args, lines)
}

#[test]
fn topics_create_list_describe_delete() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let dir = dir.as_path();

    assert_eq!(
        ok(
            dir,
            &[
                "topics",
                "create",
                "--topic",
                "orders",
                "--partitions",
                "3",
                "--config",
                "retention.ms=1000",
            ],
            ""
        ),
        "Created topic orders.\n"
    );
    assert_eq!(
        ok(dir, &["topics", "create", "--topic", "audit"], ""),
        "Created topic audit.\n"
    );
    assert_eq!(ok(dir, &["topics", "list"], ""), "audit\norders\n");

    let text = ok(dir, &["topics", "describe", "--topic", "orders"], "");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Topic: orders  Partitions: 3", "{text}");
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        [
            "PARTITION",
            "LOG-START-OFFSET",
            "LOG-END-OFFSET",
            "SIZE-BYTES",
            "SEGMENTS"
        ],
        "{text}"
    );
    for p in 0..3 {
        let cells: Vec<&str> = lines[2 + p].split_whitespace().collect();
        assert_eq!(cells.len(), 5, "{text}");
        assert_eq!(cells[..3], [p.to_string().as_str(), "0", "0"], "{text}");
        assert!(cells[3].parse::<u64>().is_ok(), "{text}");
        assert!(cells[4].parse::<u64>().is_ok(), "{text}");
    }
    let has = |row: &[&str]| {
        lines
            .iter()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == row)
    };
    assert!(has(&["CONFIG", "VALUE", "SOURCE"]), "{text}");
    assert!(has(&["retention.ms", "1000", "topic"]), "{text}");
    assert!(has(&["cleanup.policy", "delete", "default"]), "{text}");

    let all = ok(dir, &["topics", "describe"], "");
    assert!(all.starts_with("Topic: audit  Partitions: 1\n"), "{all}");
    assert!(all.contains("\n\nTopic: orders  Partitions: 3\n"), "{all}");

    assert_eq!(
        fails(dir, &["topics", "create", "--topic", "orders"], ""),
        "error: topic orders already exists"
    );
    assert_eq!(
        ok(
            dir,
            &["topics", "create", "--topic", "orders", "--if-not-exists"],
            ""
        ),
        "Topic orders already exists; nothing changed.\n"
    );

    assert_eq!(
        ok(dir, &["topics", "delete", "--topic", "orders"], ""),
        "Deleted topic orders.\n"
    );
    assert_eq!(ok(dir, &["topics", "list"], ""), "audit\n");
    assert_eq!(
        fails(dir, &["topics", "delete", "--topic", "orders"], ""),
        "error: unknown topic orders"
    );
    assert_eq!(
        ok(
            dir,
            &["topics", "delete", "--topic", "orders", "--if-exists"],
            ""
        ),
        "Topic orders does not exist; nothing changed.\n"
    );
    assert_eq!(
        fails(dir, &["topics", "describe", "--topic", "orders"], ""),
        "error: unknown topic orders"
    );
}

#[test]
fn the_data_dir_can_come_from_the_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_streams"));
    cmd.env("STREAMS_DATA_DIR", tmp.path())
        .env_remove("RUST_LOG")
        .args(["topics", "create", "--topic", "t"])
        .timeout(RUN_LIMIT);
    let r = run_cmd(cmd, "");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(ok(tmp.path(), &["topics", "list"], ""), "t\n");

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_streams"));
    cmd.env_remove("STREAMS_DATA_DIR")
        .args(["topics", "list"])
        .timeout(RUN_LIMIT);
    let r = run_cmd(cmd, "");
    assert_eq!(r.code, Some(2), "{r:?}");
    assert_eq!(
        expect_one_error_line(&r, "no data dir"),
        "error: --data-dir DIR is required (or set STREAMS_DATA_DIR)"
    );
}

#[test]
fn produce_keyed_lines_then_consume_them_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = produce(
        dir,
        "words",
        &["--key-separator", ":", "--partitions", "1"],
        "a:one\nb:two:with colon\r\na:\n",
    );
    assert_eq!(out, "wrote 3 records to words\n");

    let out = consume(
        dir,
        &[
            "--topic",
            "words",
            "--from-beginning",
            "--print-key",
            "--print-partition",
            "--print-offset",
            "--timeout-ms",
            "300",
        ],
        3,
    );
    assert_eq!(out, "a\t0\t0\tone\nb\t0\t1\ttwo:with colon\na\t0\t2\t\n");

    // Without --print-* only values; without --key-separator keys are null.
    produce(dir, "words", &[], "no key here\n");
    let out = consume(
        dir,
        &[
            "--topic",
            "words",
            "--from-beginning",
            "--print-key",
            "--timeout-ms",
            "300",
        ],
        4,
    );
    assert_eq!(out, "a\tone\nb\ttwo:with colon\na\t\nnull\tno key here\n");
    let out = consume(
        dir,
        &[
            "--topic",
            "words",
            "--from-beginning",
            "--timeout-ms",
            "300",
        ],
        4,
    );
    assert_eq!(out, "one\ntwo:with colon\n\nno key here\n");
}

#[test]
fn keyed_records_land_in_the_partition_kafka_picks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let partitions = 4u32;
    let keys: Vec<String> = (0..60).map(|i| format!("user-{}", i % 23)).collect();
    let input: String = keys
        .iter()
        .enumerate()
        .map(|(i, k)| format!("{k}\tv{i}\n"))
        .collect();
    let out = produce(
        dir,
        "events",
        &["--key-separator", "\t", "--partitions", "4"],
        &input,
    );
    assert_eq!(out, "wrote 60 records to events\n");

    // The expected lines: partition by murmur2, offsets in input order per partition.
    let mut next_offset = vec![0u64; partitions as usize];
    let mut expected: Vec<(u32, u64, String)> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let p = partition_for_key(key.as_bytes(), partitions);
        let offset = next_offset[p as usize];
        next_offset[p as usize] += 1;
        expected.push((p, offset, format!("{key}\t{p}\t{offset}\tv{i}")));
    }
    assert!(
        next_offset.iter().filter(|n| **n > 0).count() > 1,
        "the keys spread over several partitions"
    );

    let out = consume(
        dir,
        &[
            "--topic",
            "events",
            "--from-beginning",
            "--print-key",
            "--print-partition",
            "--print-offset",
            "--timeout-ms",
            "300",
        ],
        60,
    );
    // Order holds within a partition, not across partitions.
    let mut last_offset: Vec<Option<u64>> = vec![None; partitions as usize];
    for line in out.lines() {
        let cells: Vec<&str> = line.split('\t').collect();
        assert_eq!(cells.len(), 4, "{line}");
        let p: u32 = cells[1].parse().unwrap();
        let offset: u64 = cells[2].parse().unwrap();
        assert_eq!(
            p,
            partition_for_key(cells[0].as_bytes(), partitions),
            "{line}"
        );
        let prev = last_offset[p as usize].replace(offset);
        assert!(prev.is_none_or(|prev| prev < offset), "{out}");
    }
    let mut got: Vec<&str> = out.lines().collect();
    got.sort_unstable();
    let mut want: Vec<&str> = expected.iter().map(|(_, _, l)| l.as_str()).collect();
    want.sort_unstable();
    assert_eq!(got, want);

    let text = ok(dir, &["topics", "describe", "--topic", "events"], "");
    for (p, n) in next_offset.iter().enumerate() {
        let row = text
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|cells| cells.first() == Some(&p.to_string().as_str()))
            .unwrap_or_else(|| panic!("no row for partition {p}: {text}"));
        assert_eq!(row[1..3], ["0", n.to_string().as_str()], "{text}");
    }
}

#[test]
fn timestamps_are_epoch_milliseconds() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let before = now();
    produce(dir, "t", &["--partitions", "1"], "x\n");
    let after = now();
    let out = consume(
        dir,
        &[
            "--topic",
            "t",
            "--from-beginning",
            "--print-offset",
            "--print-timestamp",
            "--timeout-ms",
            "300",
        ],
        1,
    );
    let cells: Vec<&str> = out.trim_end().split('\t').collect();
    assert_eq!(cells.len(), 3, "{out}");
    assert_eq!(cells[0], "0");
    let ts: i64 = cells[1].parse().unwrap();
    assert!(before <= ts && ts <= after, "{before} <= {ts} <= {after}");
    assert_eq!(cells[2], "x");
}

#[test]
fn max_messages_stops_early_and_latest_is_the_default() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input: String = (0..10).map(|i| format!("m{i}\n")).collect();
    produce(dir, "t", &["--partitions", "1"], &input);

    // No --timeout-ms: --max-messages alone ends the run.
    let out = consume(
        dir,
        &["--topic", "t", "--from-beginning", "--max-messages", "4"],
        4,
    );
    assert_eq!(out, "m0\nm1\nm2\nm3\n");
    consume(
        dir,
        &["--topic", "t", "--from-beginning", "--max-messages", "0"],
        0,
    );

    // Without --from-beginning only new records are read; none come.
    assert_eq!(
        consume(dir, &["--topic", "t", "--timeout-ms", "200"], 0),
        ""
    );
}

/// `base`, then `extra`, then `--print-offset --timeout-ms 300`.
fn with_args<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = base.to_vec();
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--print-offset", "--timeout-ms", "300"]);
    args
}

#[test]
fn partition_and_offset_choose_where_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(
        dir,
        &["topics", "create", "--topic", "t", "--partitions", "2"],
        "",
    );
    let key = "k";
    let p = partition_for_key(key.as_bytes(), 2);
    let other = 1 - p;
    let input: String = (0..5).map(|i| format!("{key}:v{i}\n")).collect();
    produce(dir, "t", &["--key-separator", ":"], &input);
    produce(dir, "t", &["--key-separator", ":"], "zz:other\n");
    let zz_partition = partition_for_key(b"zz", 2);

    let p_arg = p.to_string();
    let base = ["--topic", "t", "--partition", p_arg.as_str()];
    let with = |extra: &[&'static str]| with_args(&base, extra);
    let count_in_p = if zz_partition == p { 6 } else { 5 };
    let expected_from_2: String = (2..5)
        .map(|i| format!("{i}\tv{i}\n"))
        .chain((zz_partition == p).then(|| "5\tother\n".to_owned()))
        .collect();
    assert_eq!(
        consume(dir, &with(&["--offset", "2"]), count_in_p - 2),
        expected_from_2
    );
    let all = consume(dir, &with(&["--offset", "earliest"]), count_in_p);
    assert!(all.starts_with("0\tv0\n1\tv1\n"), "{all}");
    assert_eq!(consume(dir, &with(&["--from-beginning"]), count_in_p), all);
    assert_eq!(consume(dir, &with(&["--offset", "latest"]), 0), "");
    // The log end offset itself is a valid start: nothing comes.
    let end = count_in_p.to_string();
    let end_args = with_args(&base, &["--offset", end.as_str()]);
    assert_eq!(consume(dir, &end_args, 0), "");

    let mut args = vec!["consume"];
    args.extend(with(&["--offset", "99"]));
    let err = fails(dir, &args, "");
    assert_eq!(
        err,
        format!(
            "error: offset 99 is out of range for partition t-{p} (log start offset 0, log end \
             offset {count_in_p})"
        )
    );
    let err = fails(
        dir,
        &[
            "consume",
            "--topic",
            "t",
            "--partition",
            "7",
            "--timeout-ms",
            "100",
        ],
        "",
    );
    assert_eq!(
        err,
        "error: topic t has 2 partitions; partition 7 does not exist"
    );

    let other_arg = other.to_string();
    let expected_other = if zz_partition == other { 1 } else { 0 };
    consume(
        dir,
        &[
            "--topic",
            "t",
            "--partition",
            other_arg.as_str(),
            "--from-beginning",
            "--timeout-ms",
            "300",
        ],
        expected_other,
    );
}

#[test]
fn i64_hex_and_json_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    produce(
        dir,
        "nums",
        &[
            "--partitions",
            "1",
            "--key-separator",
            "|",
            "--key-format",
            "i64",
            "--value-format",
            "json",
        ],
        "1|{ \"a\": [1, 2] }\n-2|\"text\"\n300|null\n",
    );
    let args = |key: &'static str, value: &'static str| {
        vec![
            "--topic",
            "nums",
            "--from-beginning",
            "--print-key",
            "--key-format",
            key,
            "--value-format",
            value,
            "--timeout-ms",
            "300",
        ]
    };
    assert_eq!(
        consume(dir, &args("i64", "json"), 3),
        "1\t{\"a\":[1,2]}\n-2\t\"text\"\n300\tnull\n"
    );
    assert_eq!(
        consume(dir, &args("hex", "string"), 3),
        "0000000000000001\t{\"a\":[1,2]}\nfffffffffffffffe\t\"text\"\n000000000000012c\tnull\n"
    );
    assert_eq!(
        consume(dir, &args("hex", "hex"), 3),
        "0000000000000001\t7b2261223a5b312c325d7d\nfffffffffffffffe\t227465787422\n\
         000000000000012c\t6e756c6c\n"
    );

    // Hex in, i64 out.
    produce(
        dir,
        "raw",
        &["--partitions", "1", "--value-format", "hex"],
        "000000000000002a\nFFFFFFFFFFFFFFFF\n",
    );
    assert_eq!(
        consume(
            dir,
            &[
                "--topic",
                "raw",
                "--from-beginning",
                "--value-format",
                "i64",
                "--timeout-ms",
                "300"
            ],
            2
        ),
        "42\n-1\n"
    );
}

#[test]
fn undecodable_records_fail_naming_partition_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    produce(
        dir,
        "t",
        &["--partitions", "1"],
        "{\"ok\": true}\nnot json\n",
    );

    let r = run(
        dir,
        &[
            "consume",
            "--topic",
            "t",
            "--from-beginning",
            "--value-format",
            "json",
            "--timeout-ms",
            "300",
        ],
        "",
    );
    let err = expect_one_error_line(&r, "bad json");
    assert!(
        err.starts_with("error: partition t-0 offset 1: value is not valid json: "),
        "{err}"
    );
    assert_eq!(
        r.stdout, "{\"ok\":true}\n",
        "records before the bad one are printed"
    );

    let r = run(
        dir,
        &[
            "consume",
            "--topic",
            "t",
            "--from-beginning",
            "--value-format",
            "i64",
            "--timeout-ms",
            "300",
        ],
        "",
    );
    assert_eq!(
        expect_one_error_line(&r, "bad i64"),
        "error: partition t-0 offset 0: value is not valid i64: an i64 is 8 bytes big-endian, \
         this is 12 bytes"
    );
    assert_eq!(r.stdout, "");
}

#[test]
fn bad_input_lines_fail_naming_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(dir, &["topics", "create", "--topic", "t"], "");
    let err = fails(
        dir,
        &["produce", "--topic", "t", "--key-separator", ":"],
        "a:1\nb:2\nno separator\nc:3\n",
    );
    assert_eq!(
        err,
        "error: line 3: no key separator \":\" in \"no separator\" (the 2 records before it \
         were written to t)"
    );
    let out = consume(
        dir,
        &["--topic", "t", "--from-beginning", "--timeout-ms", "300"],
        2,
    );
    assert_eq!(out, "1\n2\n");

    let err = fails(
        dir,
        &["produce", "--topic", "t", "--value-format", "i64"],
        "12\nabc\n",
    );
    assert_eq!(
        err,
        "error: line 2: value is not valid i64: \"abc\" is not a 64-bit decimal integer (the 1 \
         record before it was written to t)"
    );
    let err = fails(
        dir,
        &["produce", "--topic", "t", "--value-format", "json"],
        "{\n",
    );
    assert!(
        err.starts_with("error: line 1: value is not valid json: EOF while parsing"),
        "{err}"
    );
    assert!(err.ends_with("(nothing was written to t)"), "{err}");
}

#[test]
fn compact_keeps_the_latest_value_per_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(
        dir,
        &[
            "topics",
            "create",
            "--topic",
            "table",
            "--config",
            "cleanup.policy=compact",
            "--config",
            "segment.bytes=14",
        ],
        "",
    );
    let keyed = ["--key-separator", ":", "--null-marker", "NULL"];
    // Each run is one batch; with tiny segments each batch gets a segment of its own.
    produce(dir, "table", &keyed, "k1:a\nk2:b\n");
    produce(dir, "table", &keyed, "k1:c\n");
    produce(dir, "table", &keyed, "k2:NULL\n");
    produce(dir, "table", &keyed, "k3:e\n");

    let args = [
        "--topic",
        "table",
        "--from-beginning",
        "--print-key",
        "--print-offset",
        "--timeout-ms",
        "300",
    ];
    assert_eq!(
        consume(dir, &args, 5),
        "k1\t0\ta\nk2\t1\tb\nk1\t2\tc\nk2\t3\tnull\nk3\t4\te\n"
    );

    let out = ok(dir, &["topics", "compact", "--topic", "table"], "");
    assert!(out.starts_with("Compacted topic table: "), "{out}");
    assert!(out.contains(" 2 records removed, "), "{out}");

    // Superseded values are gone, offsets are kept, the tombstone stays for
    // delete.retention.ms, and the active segment is untouched.
    assert_eq!(consume(dir, &args, 3), "k1\t2\tc\nk2\t3\tnull\nk3\t4\te\n");

    // A compacted topic refuses records without a key.
    let err = fails(dir, &["produce", "--topic", "table"], "no key\n");
    assert!(
        err.starts_with("error: sending line 1 to table: topic table: record rejected: "),
        "{err}"
    );

    ok(dir, &["topics", "create", "--topic", "plain"], "");
    let err = fails(dir, &["topics", "compact", "--topic", "plain"], "");
    assert!(err.contains("not compacted"), "{err}");
}

#[test]
fn usage_and_broker_errors_are_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    let err = fails(
        dir,
        &["consume", "--topic", "nope", "--timeout-ms", "100"],
        "",
    );
    assert_eq!(err, "error: unknown topic nope");
    let err = fails(dir, &["produce", "--topic", "nope"], "x\n");
    assert_eq!(
        err,
        "error: unknown topic nope; create it with 'streams topics create --topic nope' or \
         pass --partitions N"
    );

    let err = fails(
        dir,
        &[
            "topics",
            "create",
            "--topic",
            "t",
            "--config",
            "retention.ms=soon",
        ],
        "",
    );
    assert_eq!(
        err,
        "error: invalid config retention.ms=\"soon\": not an integer"
    );
    let err = fails(
        dir,
        &[
            "topics",
            "create",
            "--topic",
            "t",
            "--config",
            "no.such.key=1",
        ],
        "",
    );
    assert!(
        err.starts_with("error: invalid config no.such.key=\"1\": unknown topic config"),
        "{err}"
    );
    let err = fails(
        dir,
        &["topics", "create", "--topic", "t", "--config", "nokey"],
        "",
    );
    assert!(err.contains("expected KEY=VALUE"), "{err}");
    let err = fails(dir, &["topics", "create", "--topic", "bad/name"], "");
    assert!(err.contains("invalid topic name \"bad/name\""), "{err}");
    assert_eq!(ok(dir, &["topics", "list"], ""), "", "nothing was created");

    let err = fails(dir, &["consume", "--topic", "t", "--offset", "1"], "");
    assert!(err.contains("--partition"), "{err}");
    let err = fails(dir, &["topics"], "");
    assert!(err.contains("requires a subcommand"), "{err}");

    let missing = dir.join("missing");
    let err = fails(&missing, &["topics", "list"], "");
    assert_eq!(
        err,
        format!("error: data dir {} does not exist", missing.display())
    );
    assert!(!missing.exists());
}

#[test]
fn a_locked_data_dir_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let broker = runtime
        .block_on(Broker::open(dir, BrokerConfig::default()))
        .unwrap();
    for args in [
        &["topics", "list"][..],
        &["topics", "create", "--topic", "t"],
        &["produce", "--topic", "t", "--partitions", "1"],
        &["consume", "--topic", "t", "--timeout-ms", "100"],
    ] {
        let err = fails(dir, args, "x\n");
        assert_eq!(
            err,
            format!(
                "error: data dir {} is locked by another broker (lock file {})",
                dir.display(),
                dir.join(".lock").display()
            ),
            "{args:?}"
        );
    }
    runtime.block_on(broker.close()).unwrap();
    drop(broker);
    assert_eq!(ok(dir, &["topics", "list"], ""), "");
}

#[test]
fn rust_log_turns_on_logging_to_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = command(tmp.path(), &["topics", "create", "--topic", "t"]);
    cmd.env("RUST_LOG", "info");
    let r = run_cmd(cmd, "");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stdout, "Created topic t.\n");
    assert!(r.stderr.contains("opening the data dir"), "{r:?}");
}

#[test]
fn ctrl_c_ends_a_consume_with_its_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    produce(dir, "t", &["--partitions", "1"], "first\n");

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_streams"))
        .env_remove("RUST_LOG")
        .arg("--data-dir")
        .arg(dir)
        .args(["consume", "--topic", "t", "--from-beginning"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next();
        let _ = tx.send(first);
        lines.count()
    });
    let first = match rx.recv_timeout(RUN_LIMIT) {
        Ok(Some(Ok(line))) => line,
        other => {
            let _ = child.kill();
            panic!("no first line: {other:?}");
        }
    };
    assert_eq!(first, "first");

    // The record is printed after the Ctrl-C handler is installed.
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("consume did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert_eq!(stderr, "Processed a total of 1 messages\n");
}

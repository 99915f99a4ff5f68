//! End-to-end tests of the `streams` binary: each runs the real executable on a data dir in a
//! temporary directory and checks its stdout, stderr and exit status.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use broker_embedded::partitioner::partition_for_key;
use broker_embedded::{Broker, BrokerConfig, Compression, NewTopic, Producer, ProducerRecord};

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
        .env_remove("STREAMS_BOOTSTRAP_SERVER")
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
        .env_remove("STREAMS_BOOTSTRAP_SERVER")
        .env_remove("RUST_LOG")
        .args(["topics", "create", "--topic", "t"])
        .timeout(RUN_LIMIT);
    let r = run_cmd(cmd, "");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(ok(tmp.path(), &["topics", "list"], ""), "t\n");

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_streams"));
    cmd.env_remove("STREAMS_DATA_DIR")
        .env_remove("STREAMS_BOOTSTRAP_SERVER")
        .args(["topics", "list"])
        .timeout(RUN_LIMIT);
    let r = run_cmd(cmd, "");
    assert_eq!(r.code, Some(2), "{r:?}");
    assert_eq!(
        expect_one_error_line(&r, "no data dir"),
        "error: --data-dir DIR or --bootstrap-server HOST:PORT is required (or set \
         STREAMS_DATA_DIR or STREAMS_BOOTSTRAP_SERVER) (see --help)"
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
    assert_eq!(out, "wrote 3 records to words (partition 0: offsets 0-2)\n");

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
fn produce_compressed_then_consume_prints_the_records() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let lines: String = (0..50)
        .map(|i| format!("k{}:value {i} of fifty\n", i % 7))
        .collect();
    let out = produce(
        dir,
        "zipped",
        &[
            "--key-separator",
            ":",
            "--partitions",
            "1",
            "--compression-type",
            "gzip",
        ],
        &lines,
    );
    assert_eq!(
        out,
        "wrote 50 records to zipped (partition 0: offsets 0-49)\n"
    );
    // A second send with another codec lands in the same topic.
    produce(dir, "zipped", &["--compression-type", "zstd"], "last\n");

    let out = consume(
        dir,
        &[
            "--topic",
            "zipped",
            "--from-beginning",
            "--print-key",
            "--timeout-ms",
            "300",
        ],
        51,
    );
    let want: String = (0..50)
        .map(|i| format!("k{}\tvalue {i} of fifty\n", i % 7))
        .chain(std::iter::once("null\tlast\n".to_owned()))
        .collect();
    assert_eq!(out, want);

    // The batches are stored compressed, as asked.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let codecs = runtime.block_on(async {
        let broker = Broker::open(dir, BrokerConfig::default()).await.unwrap();
        let batches = broker
            .fetch("zipped", 0, 0, usize::MAX, None)
            .await
            .unwrap();
        let codecs: Vec<Compression> = batches.iter().map(|b| b.info.compression).collect();
        broker.close().await.unwrap();
        codecs
    });
    // The first produce sends its lines as stdin hands them over, in one batch or more.
    let (last, first) = codecs.split_last().unwrap();
    assert_eq!(*last, Compression::Zstd, "{codecs:?}");
    assert!(
        !first.is_empty() && first.iter().all(|c| *c == Compression::Gzip),
        "{codecs:?}"
    );

    let err = fails(
        dir,
        &[
            "produce",
            "--topic",
            "zipped",
            "--compression-type",
            "brotli",
        ],
        "x\n",
    );
    assert!(err.contains("brotli"), "{err}");
    assert!(err.contains("gzip"), "{err}");
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
    // The summary names each partition written to and its offsets.
    let ranges: Vec<String> = next_offset
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(p, n)| match n {
            1 => format!("partition {p}: offset 0"),
            n => format!("partition {p}: offsets 0-{}", n - 1),
        })
        .collect();
    assert_eq!(
        out,
        format!("wrote 60 records to events ({})\n", ranges.join(", "))
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
    let r = run(
        dir,
        &["produce", "--topic", "t", "--key-separator", ":"],
        "a:1\nb:2\nno separator\nc:3\n",
    );
    assert_eq!(
        expect_one_error_line(&r, "a line without the separator"),
        "error: line 3: no key separator \":\" in \"no separator\" (the 2 records before it \
         were written to t)"
    );
    assert_eq!(
        r.stdout,
        "wrote 2 records to t (partition 0: offsets 0-1)\n"
    );
    let out = consume(
        dir,
        &["--topic", "t", "--from-beginning", "--timeout-ms", "300"],
        2,
    );
    assert_eq!(out, "1\n2\n");

    let r = run(
        dir,
        &["produce", "--topic", "t", "--value-format", "i64"],
        "12\nabc\n",
    );
    assert_eq!(
        expect_one_error_line(&r, "a bad i64"),
        "error: line 2: value is not valid i64: \"abc\" is not a 64-bit decimal integer (the 1 \
         record before it was written to t)"
    );
    assert_eq!(r.stdout, "wrote 1 records to t (partition 0: offset 2)\n");
    let r = run(
        dir,
        &["produce", "--topic", "t", "--value-format", "json"],
        "{\n",
    );
    let err = expect_one_error_line(&r, "bad json on the first line");
    assert!(
        err.starts_with("error: line 1: value is not valid json: EOF while parsing"),
        "{err}"
    );
    assert!(err.ends_with("(nothing was written to t)"), "{err}");
    assert_eq!(r.stdout, "", "nothing written, no summary");
}

#[test]
fn a_produce_that_fails_later_prints_what_it_wrote_first() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(
        dir,
        &["topics", "create", "--topic", "t", "--partitions", "2"],
        "",
    );
    // Keys that Kafka's partitioner sends to partition 0 and to partition 1.
    let key_for = |p: u32| {
        (0..)
            .map(|i| format!("key{i}"))
            .find(|k| partition_for_key(k.as_bytes(), 2) == p)
            .unwrap()
    };
    let (k0, k1) = (key_for(0), key_for(1));
    // Records already there: the summary gives the offsets this run wrote.
    assert_eq!(
        produce(
            dir,
            "t",
            &["--key-separator", "=", "--value-format", "json"],
            &format!("{k0}=1\n{k0}=2\n{k1}=3\n"),
        ),
        "wrote 3 records to t (partition 0: offsets 0-1, partition 1: offset 0)\n"
    );

    // A bad JSON value on line 5, in the same batch as the good lines before it, and in a
    // later batch (--batch-size 2).
    let input =
        format!("{k0}={{\"n\": 4}}\n{k1}=[5]\n{k1}=\"six\"\n{k0}=7\n{k1}={{\"n\": \n{k0}=9\n");
    for batch_size in ["1000", "2"] {
        let r = run(
            dir,
            &[
                "produce",
                "--topic",
                "t",
                "--key-separator",
                "=",
                "--value-format",
                "json",
                "--batch-size",
                batch_size,
            ],
            &input,
        );
        let err = expect_one_error_line(&r, "bad json on line 5");
        assert!(
            err.starts_with("error: line 5: value is not valid json: "),
            "{err}"
        );
        assert!(
            err.ends_with("(the 4 records before it were written to t)"),
            "{err}"
        );
        let (p0, p1) = if batch_size == "1000" { (2, 1) } else { (4, 3) };
        assert_eq!(
            r.stdout,
            format!(
                "wrote 4 records to t (partition 0: offsets {p0}-{}, partition 1: offsets \
                 {p1}-{})\n",
                p0 + 1,
                p1 + 1
            ),
            "batch size {batch_size}"
        );
    }
    let out = consume(
        dir,
        &[
            "--topic",
            "t",
            "--partition",
            "0",
            "--offset",
            "0",
            "--print-offset",
            "--timeout-ms",
            "300",
        ],
        6,
    );
    assert_eq!(out, "0\t1\n1\t2\n2\t{\"n\":4}\n3\t7\n4\t{\"n\":4}\n5\t7\n");

    // A send the broker refuses after earlier sends went through: a compacted topic takes
    // no record without a key.
    ok(
        dir,
        &[
            "topics",
            "create",
            "--topic",
            "table",
            "--config",
            "cleanup.policy=compact",
        ],
        "",
    );
    let r = run(
        dir,
        &[
            "produce",
            "--topic",
            "table",
            "--key-separator",
            ":",
            "--null-marker",
            "NULL",
            "--batch-size",
            "1",
        ],
        "a:1\nb:2\nNULL:3\nc:4\n",
    );
    let err = expect_one_error_line(&r, "a keyless record on a compacted topic");
    assert!(
        err.starts_with("error: sending line 3 to table: topic table: record rejected: "),
        "{err}"
    );
    assert_eq!(
        r.stdout,
        "wrote 2 records to table (partition 0: offsets 0-1)\n"
    );
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
    ok(dir, &["topics", "create", "--topic", "existing"], "");

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
    assert_eq!(
        ok(dir, &["topics", "list"], ""),
        "existing\n",
        "nothing was created"
    );

    let err = fails(dir, &["consume", "--topic", "t", "--offset", "1"], "");
    assert!(err.contains("--partition"), "{err}");
    let err = fails(dir, &["topics"], "");
    assert!(err.contains("requires a subcommand"), "{err}");

    let missing = dir.join("missing");
    let err = fails(&missing, &["topics", "list"], "");
    assert!(
        err.starts_with(&format!(
            "error: no broker in {}: the dir does not exist; did you mean --data-dir {}?",
            missing.display(),
            dir.display()
        )),
        "{err}"
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
                "error: data dir {} is locked by another broker (a process holds the OS lock \
                 on the directory; it is released when that process exits)",
                dir.display(),
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

/// `groups describe`: the state line, and the table's rows split into cells (header first).
fn describe_group(dir: &Path, group: &str) -> (String, Vec<Vec<String>>) {
    let text = ok(dir, &["groups", "describe", "--group", group], "");
    let mut lines = text.lines();
    let state = lines.next().unwrap_or_default().to_owned();
    let rows = lines
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect();
    (state, rows)
}

/// Checks the describe rows of a group that has no members: one per partition of `topic`,
/// with the committed offsets `current`, the log end offsets `ends`, and lag = end - current.
fn assert_group_offsets(dir: &Path, group: &str, topic: &str, current: &[u64], ends: &[u64]) {
    let (state, rows) = describe_group(dir, group);
    assert_eq!(state, format!("Group: {group}  State: Empty  Members: 0"));
    assert_eq!(
        rows[0],
        [
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID"
        ]
    );
    let want: Vec<Vec<String>> = current
        .iter()
        .zip(ends)
        .enumerate()
        .map(|(p, (c, e))| {
            vec![
                group.to_owned(),
                topic.to_owned(),
                p.to_string(),
                c.to_string(),
                e.to_string(),
                (e - c).to_string(),
                "-".to_owned(),
            ]
        })
        .collect();
    assert_eq!(rows[1..], want, "{group}");
}

/// The rows `groups reset-offsets` prints for `offsets` (one per partition).
fn reset_table(group: &str, topic: &str, offsets: &[u64]) -> Vec<Vec<String>> {
    let mut rows = vec![vec![
        "GROUP".to_owned(),
        "TOPIC".to_owned(),
        "PARTITION".to_owned(),
        "NEW-OFFSET".to_owned(),
    ]];
    for (p, o) in offsets.iter().enumerate() {
        rows.push(vec![
            group.to_owned(),
            topic.to_owned(),
            p.to_string(),
            o.to_string(),
        ]);
    }
    rows
}

fn reset(dir: &Path, group: &str, topic: &str, how: &[&str]) -> Vec<Vec<String>> {
    let mut args = vec![
        "groups",
        "reset-offsets",
        "--group",
        group,
        "--topic",
        topic,
    ];
    args.extend_from_slice(how);
    ok(dir, &args, "")
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

#[test]
fn a_group_consume_commits_what_it_printed_and_the_next_one_continues() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    produce(dir, "t", &["--partitions", "1"], "a\nb\nc\nd\ne\n");
    assert_eq!(ok(dir, &["groups", "list"], ""), "");

    let group = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["--topic", "t", "--group", "g"];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect()
    };
    let run_group = |extra: &[&str], n: usize| {
        let args = group(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        consume(dir, &args, n)
    };

    assert_eq!(
        run_group(&["--from-beginning", "--max-messages", "2"], 2),
        "a\nb\n"
    );
    assert_eq!(ok(dir, &["groups", "list"], ""), "g\n");
    assert_group_offsets(dir, "g", "t", &[2], &[5]);

    // The committed offset wins over --from-beginning.
    assert_eq!(
        run_group(&["--from-beginning", "--timeout-ms", "300"], 3),
        "c\nd\ne\n"
    );
    assert_group_offsets(dir, "g", "t", &[5], &[5]);
    assert_eq!(run_group(&["--timeout-ms", "200"], 0), "");

    // ... and over latest: records written while no consumer ran are read.
    produce(dir, "t", &[], "f\n");
    assert_group_offsets(dir, "g", "t", &[5], &[6]);
    assert_eq!(run_group(&["--timeout-ms", "300"], 1), "f\n");
    assert_group_offsets(dir, "g", "t", &[6], &[6]);

    // A new group without --from-beginning starts at the end, and commits that.
    let fresh = consume(
        dir,
        &["--topic", "t", "--group", "fresh", "--timeout-ms", "200"],
        0,
    );
    assert_eq!(fresh, "");
    assert_group_offsets(dir, "fresh", "t", &[6], &[6]);
    produce(dir, "t", &[], "g\n");
    assert_group_offsets(dir, "fresh", "t", &[6], &[7]);
    let fresh = consume(
        dir,
        &["--topic", "t", "--group", "fresh", "--max-messages", "1"],
        1,
    );
    assert_eq!(fresh, "g\n");
    assert_eq!(ok(dir, &["groups", "list"], ""), "fresh\ng\n");

    // A consume without a group commits nothing.
    consume(
        dir,
        &["--topic", "t", "--from-beginning", "--timeout-ms", "200"],
        7,
    );
    assert_eq!(ok(dir, &["groups", "list"], ""), "fresh\ng\n");
    // The offsets topic stays hidden.
    assert_eq!(ok(dir, &["topics", "list"], ""), "t\n");
}

#[test]
fn a_group_spreads_over_every_partition_and_lag_is_end_minus_committed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let partitions = 3u32;
    let keys: Vec<String> = (0..30).map(|i| format!("k{}", i % 11)).collect();
    let input: String = keys.iter().map(|k| format!("{k}:v\n")).collect();
    produce(
        dir,
        "multi",
        &["--key-separator", ":", "--partitions", "3"],
        &input,
    );
    let mut ends = vec![0u64; partitions as usize];
    for key in &keys {
        ends[partition_for_key(key.as_bytes(), partitions) as usize] += 1;
    }
    assert!(ends.iter().all(|e| *e > 0), "{ends:?}");

    consume(
        dir,
        &[
            "--topic",
            "multi",
            "--group",
            "g",
            "--from-beginning",
            "--max-messages",
            "7",
        ],
        7,
    );
    let (_, rows) = describe_group(dir, "g");
    let mut committed_total = 0;
    for row in &rows[1..] {
        let p: usize = row[2].parse().unwrap();
        let current: u64 = row[3].parse().unwrap();
        let end: u64 = row[4].parse().unwrap();
        let lag: u64 = row[5].parse().unwrap();
        assert_eq!(end, ends[p], "{rows:?}");
        assert_eq!(lag, end - current, "{rows:?}");
        committed_total += current;
    }
    assert_eq!(committed_total, 7, "{rows:?}");

    consume(
        dir,
        &["--topic", "multi", "--group", "g", "--timeout-ms", "300"],
        23,
    );
    assert_group_offsets(dir, "g", "multi", &ends, &ends);
}

#[test]
fn reset_offsets_moves_the_committed_offsets() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input: String = (0..4).map(|i| format!("v{i}\n")).collect();
    ok(
        dir,
        &["topics", "create", "--topic", "r", "--partitions", "2"],
        "",
    );
    for p in 0..2 {
        // Each partition gets 4 records, under a key that Kafka's partitioner sends there.
        let key = (0..)
            .map(|i| format!("key{i}"))
            .find(|k| partition_for_key(k.as_bytes(), 2) == p)
            .unwrap();
        let lines: String = input.lines().map(|v| format!("{key}:{v}\n")).collect();
        produce(dir, "r", &["--key-separator", ":"], &lines);
    }
    let ends = [4u64, 4];
    consume(
        dir,
        &[
            "--topic",
            "r",
            "--group",
            "g",
            "--from-beginning",
            "--timeout-ms",
            "300",
        ],
        8,
    );
    assert_group_offsets(dir, "g", "r", &ends, &ends);

    assert_eq!(
        reset(dir, "g", "r", &["--to-earliest"]),
        reset_table("g", "r", &[0, 0])
    );
    assert_group_offsets(dir, "g", "r", &[0, 0], &ends);
    consume(
        dir,
        &["--topic", "r", "--group", "g", "--timeout-ms", "300"],
        8,
    );
    assert_group_offsets(dir, "g", "r", &ends, &ends);

    assert_eq!(
        reset(dir, "g", "r", &["--to-offset", "1"]),
        reset_table("g", "r", &[1, 1])
    );
    assert_group_offsets(dir, "g", "r", &[1, 1], &ends);
    assert_eq!(
        reset(dir, "g", "r", &["--shift-by", "2"]),
        reset_table("g", "r", &[3, 3])
    );
    assert_eq!(
        reset(dir, "g", "r", &["--shift-by", "-1"]),
        reset_table("g", "r", &[2, 2])
    );
    assert_group_offsets(dir, "g", "r", &[2, 2], &ends);
    let out = consume(
        dir,
        &["--topic", "r", "--group", "g", "--timeout-ms", "300"],
        4,
    );
    let mut values: Vec<&str> = out.lines().collect();
    values.sort_unstable();
    assert_eq!(values, ["v2", "v2", "v3", "v3"]);

    // Out of range targets are clamped to the log.
    assert_eq!(
        reset(dir, "g", "r", &["--shift-by=-100"]),
        reset_table("g", "r", &[0, 0])
    );
    assert_eq!(
        reset(dir, "g", "r", &["--to-offset", "1000"]),
        reset_table("g", "r", &ends)
    );
    assert_eq!(
        reset(dir, "g", "r", &["--to-earliest"]),
        reset_table("g", "r", &[0, 0])
    );
    assert_eq!(
        reset(dir, "g", "r", &["--to-latest"]),
        reset_table("g", "r", &ends)
    );
    assert_group_offsets(dir, "g", "r", &ends, &ends);

    // A dry run prints the same and changes nothing.
    assert_eq!(
        reset(dir, "g", "r", &["--to-earliest", "--dry-run"]),
        reset_table("g", "r", &[0, 0])
    );
    assert_eq!(
        reset(dir, "g", "r", &["--shift-by", "-3", "--dry-run"]),
        reset_table("g", "r", &[1, 1])
    );
    assert_group_offsets(dir, "g", "r", &ends, &ends);

    // A reset can create a group; a shift needs committed offsets.
    assert_eq!(
        reset(dir, "new", "r", &["--to-offset", "3"]),
        reset_table("new", "r", &[3, 3])
    );
    assert_group_offsets(dir, "new", "r", &[3, 3], &ends);
    assert_eq!(ok(dir, &["groups", "list"], ""), "g\nnew\n");
    for dry_run in [&[][..], &["--dry-run"]] {
        let mut args = vec![
            "groups",
            "reset-offsets",
            "--group",
            "other",
            "--topic",
            "r",
            "--shift-by",
            "1",
        ];
        args.extend_from_slice(dry_run);
        assert_eq!(
            fails(dir, &args, ""),
            "error: group other has no committed offset for r-0 to shift from"
        );
    }
    assert_eq!(
        fails(
            dir,
            &[
                "groups",
                "reset-offsets",
                "--group",
                "g",
                "--topic",
                "nope",
                "--to-latest"
            ],
            ""
        ),
        "error: unknown topic nope"
    );
    assert_eq!(ok(dir, &["groups", "list"], ""), "g\nnew\n");
}

/// Runs `work` on a runtime of its own, on the broker in `dir` (created if missing), and
/// closes the broker: for writing what the CLI cannot (records with chosen timestamps).
fn with_broker_at<F, Fut>(dir: &Path, work: F)
where
    F: FnOnce(Broker) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let broker = Broker::open(dir, BrokerConfig::default()).await.unwrap();
        work(broker.clone()).await;
        broker.close().await.unwrap();
    });
}

/// Creates `topic` in the broker in `dir` with one partition per entry of `timestamps`, and
/// writes one record per timestamp, in order (`produce` stamps records with the time of
/// sending, so a test that needs chosen timestamps writes through the broker).
fn write_timed(dir: &Path, topic: &str, timestamps: &[&[i64]]) {
    with_broker_at(dir, |broker| async move {
        let partitions = u32::try_from(timestamps.len()).unwrap();
        broker
            .create_topic(NewTopic::new(topic, partitions))
            .await
            .unwrap();
        let producer = Producer::new(&broker);
        for (p, times) in (0..).zip(timestamps) {
            for &ts in *times {
                producer
                    .send(
                        ProducerRecord::new(topic.to_owned(), format!("at {ts}"))
                            .partition(p)
                            .timestamp(ts),
                    )
                    .await
                    .unwrap();
            }
        }
    });
}

#[test]
fn reset_offsets_to_a_datetime_takes_the_first_record_at_or_after_it() {
    const HOUR: i64 = 3_600_000;
    const MINUTE: i64 = 60_000;
    /// 2024-05-01T10:00:00Z.
    const TEN: i64 = 1_714_557_600_000;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Partition 0 at 10:00, 11:00, 12:00, 13:00; partition 1 at 09:00, 11:45, 12:30 (UTC).
    write_timed(
        dir,
        "r",
        &[
            &[TEN, TEN + HOUR, TEN + 2 * HOUR, TEN + 3 * HOUR],
            &[
                TEN - HOUR,
                TEN + HOUR + 45 * MINUTE,
                TEN + 2 * HOUR + 30 * MINUTE,
            ],
        ],
    );
    let ends = [4u64, 3];
    for (datetime, want) in [
        ("2024-05-01T11:30:00.000Z", [2, 1]),
        // The same instant at another offset, and without a zone (UTC, as in Kafka).
        ("2024-05-01T13:30:00.000+02:00", [2, 1]),
        ("2024-05-01T06:30:00.000-0500", [2, 1]),
        ("2024-05-01T11:30:00.000", [2, 1]),
        // A record exactly at the time is the one reset to.
        ("2024-05-01T12:00:00.000Z", [2, 2]),
        ("2024-05-01T11:00:00Z", [1, 1]),
        ("2024-05-01T00:00:00.000Z", [0, 0]),
        // Every record older: the log end offset.
        ("2024-05-01T13:00:00.001Z", ends),
        ("2030-01-01T00:00:00.000Z", ends),
    ] {
        assert_eq!(
            reset(dir, "g", "r", &["--to-datetime", datetime]),
            reset_table("g", "r", &want),
            "{datetime}"
        );
        assert_group_offsets(dir, "g", "r", &want, &ends);
    }

    // A value without a zone is UTC whatever the local time zone.
    let mut cmd = command(
        dir,
        &[
            "groups",
            "reset-offsets",
            "--group",
            "tz",
            "--topic",
            "r",
            "--to-datetime",
            "2024-05-01T11:30:00.000",
        ],
    );
    cmd.env("TZ", "Asia/Tokyo");
    let r = run_cmd(cmd, "");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_group_offsets(dir, "tz", "r", &[2, 1], &ends);

    // A dry run prints the same and changes nothing.
    assert_eq!(
        reset(
            dir,
            "g",
            "r",
            &["--to-datetime", "2024-05-01T12:00:00.000Z", "--dry-run"]
        ),
        reset_table("g", "r", &[2, 2])
    );
    assert_group_offsets(dir, "g", "r", &ends, &ends);

    // A consume of the group starts at the reset offsets.
    reset(
        dir,
        "g",
        "r",
        &["--to-datetime", "2024-05-01T12:15:00.000Z"],
    );
    let out = consume(
        dir,
        &["--topic", "r", "--group", "g", "--timeout-ms", "300"],
        2,
    );
    let mut values: Vec<&str> = out.lines().collect();
    values.sort_unstable();
    let at = |ts: i64| format!("at {ts}");
    assert_eq!(
        values,
        [at(TEN + 2 * HOUR + 30 * MINUTE), at(TEN + 3 * HOUR)]
    );

    // Bad values are usage errors naming the value and the expected format.
    for (flag, value) in [
        ("--to-datetime", "2024-05-01 11:30:00"),
        ("--to-datetime", "2024-05-01T25:00:00.000Z"),
        ("--to-datetime", "2024-05-01T11:30:00.000+2"),
        ("--by-duration", "90m"),
        ("--by-duration", "PT1H30"),
        ("--by-duration", "-PT1H"),
    ] {
        let flag_value = format!("{flag}={value}");
        let args = [
            "groups",
            "reset-offsets",
            "--group",
            "g",
            "--topic",
            "r",
            &flag_value,
        ];
        let r = run(dir, &args, "");
        let line = expect_one_error_line(&r, value);
        assert_eq!(r.code, Some(2), "{r:?}");
        assert!(line.contains(&format!("'{value}'")), "{line}");
        assert!(line.contains("expected "), "{line}");
        let format = if flag == "--to-datetime" {
            "YYYY-MM-DDTHH:mm:SS.sss"
        } else {
            "PnDTnHnMnS"
        };
        assert!(line.contains(format), "{line}");
    }
    assert_group_offsets(dir, "g", "r", &ends, &ends);
}

#[test]
fn reset_offsets_by_duration_goes_back_from_now() {
    const HOUR: i64 = 3_600_000;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let now = i64::try_from(now).unwrap();
    // Three hours, two hours and one hour ago, and a moment ago.
    write_timed(
        dir,
        "d",
        &[&[now - 3 * HOUR, now - 2 * HOUR, now - HOUR, now - 1]],
    );
    let ends = [4u64];
    for (duration, want) in [
        ("PT90M", 2),
        ("PT1H30M", 2),
        ("PT2H30M", 1),
        ("P1D", 0),
        ("P1DT2H", 0),
        ("pt150m", 1),
        ("PT5400S", 2),
        // Every record is older than now: the log end offset.
        ("PT0S", 4),
    ] {
        assert_eq!(
            reset(dir, "g", "d", &["--by-duration", duration]),
            reset_table("g", "d", &[want]),
            "{duration}"
        );
        assert_group_offsets(dir, "g", "d", &[want], &ends);
    }
    // One target only.
    let r = run(
        dir,
        &[
            "groups",
            "reset-offsets",
            "--group",
            "g",
            "--topic",
            "d",
            "--by-duration",
            "PT1H",
            "--to-datetime",
            "2024-05-01T00:00:00.000Z",
        ],
        "",
    );
    let line = expect_one_error_line(&r, "two targets");
    assert_eq!(r.code, Some(2));
    assert!(line.contains("cannot be used with"), "{line}");
}

#[test]
fn delete_forgets_a_group_and_its_offsets() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    produce(dir, "t", &["--partitions", "1"], "a\nb\n");
    consume(
        dir,
        &[
            "--topic",
            "t",
            "--group",
            "g",
            "--from-beginning",
            "--max-messages",
            "1",
        ],
        1,
    );
    consume(
        dir,
        &[
            "--topic",
            "t",
            "--group",
            "h",
            "--from-beginning",
            "--timeout-ms",
            "200",
        ],
        2,
    );
    assert_eq!(ok(dir, &["groups", "list"], ""), "g\nh\n");
    assert_eq!(
        ok(dir, &["groups", "delete", "--group", "g"], ""),
        "Deleted consumer group g.\n"
    );
    assert_eq!(ok(dir, &["groups", "list"], ""), "h\n");
    assert_eq!(
        fails(dir, &["groups", "describe", "--group", "g"], ""),
        "error: consumer group g does not exist"
    );
    assert_eq!(
        fails(dir, &["groups", "delete", "--group", "g"], ""),
        "error: consumer group g does not exist"
    );
    assert_group_offsets(dir, "h", "t", &[2], &[2]);
    // A deleted group starts over: from the beginning, as asked.
    let out = consume(
        dir,
        &[
            "--topic",
            "t",
            "--group",
            "g",
            "--from-beginning",
            "--timeout-ms",
            "200",
        ],
        2,
    );
    assert_eq!(out, "a\nb\n");
}

#[test]
fn group_errors_are_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    produce(dir, "t", &["--partitions", "1"], "a\n");

    for args in [
        &["groups", "describe", "--group", "nope"][..],
        &["groups", "delete", "--group", "nope"],
    ] {
        assert_eq!(
            fails(dir, args, ""),
            "error: consumer group nope does not exist",
            "{args:?}"
        );
    }
    assert_eq!(
        fails(
            dir,
            &[
                "consume",
                "--topic",
                "nope",
                "--group",
                "g",
                "--timeout-ms",
                "100"
            ],
            ""
        ),
        "error: unknown topic nope"
    );
    assert_eq!(ok(dir, &["groups", "list"], ""), "", "nothing was created");

    for args in [
        &[
            "consume",
            "--topic",
            "t",
            "--group",
            "g",
            "--partition",
            "0",
        ][..],
        &[
            "consume",
            "--topic",
            "t",
            "--group",
            "g",
            "--partition",
            "0",
            "--offset",
            "0",
        ],
        &["consume", "--topic", "t", "--group", ""],
        &["groups", "reset-offsets", "--group", "g", "--topic", "t"],
        &[
            "groups",
            "reset-offsets",
            "--group",
            "g",
            "--topic",
            "t",
            "--to-earliest",
            "--to-latest",
        ],
        &["groups", "describe"],
        &["groups"],
    ] {
        let r = run(dir, args, "");
        let line = expect_one_error_line(&r, &format!("streams {args:?}"));
        assert_eq!(r.code, Some(2), "{args:?}: {r:?}");
        assert!(line.ends_with("(see --help)"), "{line}");
    }

    for level in ["read_committed", "read_uncommitted"] {
        consume(
            dir,
            &[
                "--topic",
                "t",
                "--from-beginning",
                "--isolation-level",
                level,
                "--timeout-ms",
                "100",
            ],
            1,
        );
    }
    let r = run(
        dir,
        &["consume", "--topic", "t", "--isolation-level", "committed"],
        "",
    );
    let line = expect_one_error_line(&r, "bad isolation level");
    assert_eq!(r.code, Some(2));
    assert!(line.contains("read_committed"), "{line}");

    let missing = dir.join("missing");
    assert_eq!(
        fails(&missing, &["groups", "list"], ""),
        format!(
            "error: no broker in {}: the dir does not exist; did you mean --data-dir {}?",
            missing.display(),
            dir.display()
        )
    );
    assert!(!missing.exists());
}

#[test]
fn ctrl_c_ends_a_group_consume_after_committing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    produce(dir, "t", &["--partitions", "1"], "first\nsecond\n");

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_streams"))
        .env_remove("RUST_LOG")
        .arg("--data-dir")
        .arg(dir)
        .args([
            "consume",
            "--topic",
            "t",
            "--group",
            "g",
            "--from-beginning",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = (lines.next(), lines.next());
        let _ = tx.send(first);
        lines.count()
    });
    let lines = match rx.recv_timeout(RUN_LIMIT) {
        Ok((Some(Ok(a)), Some(Ok(b)))) => (a, b),
        other => {
            let _ = child.kill();
            panic!("no two lines: {other:?}");
        }
    };
    assert_eq!(lines, ("first".to_owned(), "second".to_owned()));

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
    assert_eq!(stderr, "Processed a total of 2 messages\n");
    assert_group_offsets(dir, "g", "t", &[2], &[2]);
}

#[test]
fn a_group_consume_that_fails_commits_only_what_it_printed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    produce(
        dir,
        "n",
        &["--partitions", "1", "--value-format", "i64"],
        "1\n2\n",
    );
    produce(dir, "n", &[], "not a number\n");
    produce(dir, "n", &["--value-format", "i64"], "3\n");
    let args = [
        "consume",
        "--topic",
        "n",
        "--group",
        "g",
        "--from-beginning",
        "--value-format",
        "i64",
        "--timeout-ms",
        "300",
    ];
    // The second run starts at the bad record, and fails on it again.
    for want_stdout in ["1\n2\n", ""] {
        let r = run(dir, &args, "");
        let line = expect_one_error_line(&r, "undecodable record");
        assert!(
            line.starts_with("error: partition n-0 offset 2: "),
            "{line}"
        );
        assert_eq!(r.stdout, want_stdout);
        assert_group_offsets(dir, "g", "n", &[2], &[4]);
    }
    assert_eq!(
        reset(dir, "g", "n", &["--shift-by", "1"]),
        reset_table("g", "n", &[3])
    );
    assert_eq!(
        consume(
            dir,
            &[
                "--topic",
                "n",
                "--group",
                "g",
                "--value-format",
                "i64",
                "--timeout-ms",
                "300"
            ],
            1
        ),
        "3\n"
    );
}

/// Every file and dir under `dir`, with its size and modification time, sorted: to show that
/// a command left a dir exactly as it was. A missing dir is an empty list.
fn snapshot(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            out.push(format!(
                "{} {} {:?}",
                path.strip_prefix(root).unwrap().display(),
                meta.len(),
                meta.modified().unwrap()
            ));
            if meta.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    if let Ok(meta) = std::fs::metadata(dir) {
        out.push(format!(". {:?}", meta.modified().unwrap()));
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The commands that need an existing broker, with what they need on stdin.
const COMMANDS_THAT_CREATE_NOTHING: &[&[&str]] = &[
    &["consume", "--topic", "t", "--timeout-ms", "100"],
    &[
        "consume",
        "--topic",
        "t",
        "--group",
        "g",
        "--timeout-ms",
        "100",
    ],
    &["topics", "list"],
    &["topics", "describe"],
    &["topics", "describe", "--topic", "t"],
    &["groups", "list"],
    &["groups", "describe", "--group", "g"],
    &["topics", "delete", "--topic", "t"],
    &["topics", "compact", "--topic", "t"],
    &[
        "groups",
        "reset-offsets",
        "--group",
        "g",
        "--topic",
        "t",
        "--to-earliest",
    ],
    &["groups", "delete", "--group", "g"],
    // Without --partitions, produce cannot create its topic.
    &["produce", "--topic", "t"],
];

#[test]
fn a_dir_without_a_broker_is_refused_and_left_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let unrelated = tmp.path().join("unrelated");
    std::fs::create_dir_all(unrelated.join("sub")).unwrap();
    std::fs::write(unrelated.join("notes.txt"), "keep me").unwrap();
    let missing = tmp.path().join("missing");
    let create = "create one with 'streams topics create --topic T' (or 'streams produce \
                  --partitions N'), or pass the data dir of an existing broker or application";

    for args in COMMANDS_THAT_CREATE_NOTHING {
        for (dir, what) in [
            (&empty, "it has no meta/topics dir"),
            (&unrelated, "it has no meta/topics dir"),
            (&missing, "the dir does not exist"),
        ] {
            let before = snapshot(tmp.path());
            let err = fails(dir, args, "x\n");
            assert_eq!(
                err,
                format!("error: no broker in {}: {what}; {create}", dir.display()),
                "{args:?}"
            );
            assert_eq!(
                snapshot(tmp.path()),
                before,
                "{args:?} on {}",
                dir.display()
            );
        }
    }
    assert!(!missing.exists());
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);

    // Commands that create may still make a new broker there.
    ok(&empty, &["topics", "create", "--topic", "t"], "");
    assert_eq!(ok(&empty, &["topics", "list"], ""), "t\n");
    produce(&missing, "p", &["--partitions", "1"], "x\n");
    assert_eq!(ok(&missing, &["topics", "list"], ""), "p\n");
}

#[test]
fn a_dir_near_a_broker_is_named_in_the_error() {
    let tmp = tempfile::tempdir().unwrap();
    let apps = tmp.path().join("apps");
    let app = apps.join("wordcount");
    with_broker_at(&app.join("broker"), |_| async {});
    std::fs::create_dir_all(app.join("state")).unwrap();
    for (dir, near) in [
        (apps.clone(), app.clone()),
        (app.join("state"), app.clone()),
        (app.join("sate"), app.clone()),
    ] {
        let before = snapshot(tmp.path());
        assert_eq!(
            fails(&dir, &["topics", "list"], ""),
            format!(
                "error: no broker in {}: {}; did you mean --data-dir {}?",
                dir.display(),
                if dir.exists() {
                    "it has no meta/topics dir"
                } else {
                    "the dir does not exist"
                },
                near.display()
            )
        );
        assert_eq!(snapshot(tmp.path()), before, "{}", dir.display());
    }
}

#[test]
fn the_cli_takes_the_data_dir_of_an_application() {
    let tmp = tempfile::tempdir().unwrap();
    // Laid out as the examples lay it out: DIR/broker and DIR/state.
    let app = tmp.path().join("wordcount-data");
    let broker_dir = app.join("broker");
    with_broker_at(&broker_dir, |broker| async move {
        broker
            .create_topic(NewTopic::new("word-counts", 1))
            .await
            .unwrap();
        let producer = Producer::new(&broker);
        for (word, count) in [("hello", 2i64), ("world", 1)] {
            producer
                .send(
                    ProducerRecord::new("word-counts", count.to_be_bytes().to_vec())
                        .key(word.to_owned()),
                )
                .await
                .unwrap();
        }
    });
    std::fs::create_dir_all(app.join("state").join("wordcount").join("0_0")).unwrap();
    let app_entries = || {
        let mut names: Vec<String> = std::fs::read_dir(&app)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(app_entries(), ["broker", "state"]);

    let out = consume(
        &app,
        &[
            "--topic",
            "word-counts",
            "--from-beginning",
            "--print-key",
            "--value-format",
            "i64",
            "--timeout-ms",
            "300",
        ],
        2,
    );
    assert_eq!(out, "hello\t2\nworld\t1\n");
    assert_eq!(ok(&app, &["topics", "list"], ""), "word-counts\n");

    // Writes go to the application's broker, not to a second one beside it.
    assert_eq!(
        produce(&app, "text-lines", &["--partitions", "1"], "to be or not\n"),
        "wrote 1 records to text-lines (partition 0: offset 0)\n"
    );
    ok(&app, &["topics", "create", "--topic", "other"], "");
    assert_eq!(app_entries(), ["broker", "state"]);
    assert_eq!(
        ok(&broker_dir, &["topics", "list"], ""),
        "other\ntext-lines\nword-counts\n"
    );
    consume(
        &app,
        &[
            "--topic",
            "text-lines",
            "--group",
            "g",
            "--from-beginning",
            "--timeout-ms",
            "300",
        ],
        1,
    );
    assert_group_offsets(&app, "g", "text-lines", &[1], &[1]);

    // The switch is logged at info level.
    let mut cmd = command(&app, &["topics", "list"]);
    cmd.env("RUST_LOG", "info");
    let r = run_cmd(cmd, "");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.stderr
            .contains("the data dir holds no broker but its broker/ dir does"),
        "{r:?}"
    );
    assert!(
        r.stderr
            .contains(&format!("broker_dir={}", broker_dir.display())),
        "{r:?}"
    );
}

#[test]
fn an_offline_partition_is_described_and_repaired_only_when_asked() {
    use std::os::unix::fs::FileExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    create_two_partitions_of_small_segments(dir);
    let lines: String = (0..100).map(|i| format!("{i}:value-{i:03}\n")).collect();
    // Keys 0..99 over two partitions: each gets several 1 KiB segments.
    for chunk in lines.lines().collect::<Vec<_>>().chunks(5) {
        let input: String = chunk.iter().map(|l| format!("{l}\n")).collect();
        produce(dir, "t", &["--key-separator", ":"], &input);
    }
    let pdir = dir.join("t-0");
    let mut segments: Vec<_> = std::fs::read_dir(&pdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segments.sort();
    assert!(segments.len() >= 3, "{segments:?}");
    let victim = segments[1].clone();
    let first_dropped: u64 = victim
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // The magic byte of the segment's first batch.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&victim)
        .unwrap();
    f.write_all_at(&[9], 16).unwrap();
    drop(f);
    let before = std::fs::metadata(&victim).unwrap().len();

    // Succeeds, and the damage is logged on stderr too.
    let loud = |args: &[&str]| {
        let r = run(dir, args, "");
        assert_eq!(r.code, Some(0), "streams {args:?} failed: {r:?}");
        assert!(r.stderr.contains("offline"), "{r:?}");
        r.stdout
    };
    let described = loud(&["topics", "describe", "--topic", "t"]);
    let offline_line = described
        .lines()
        .find(|l| l.starts_with("OFFLINE partition 0:"))
        .unwrap_or_else(|| panic!("{described}"));
    assert!(
        offline_line.contains(&victim.display().to_string()),
        "{offline_line}"
    );
    assert!(!described.contains("OFFLINE partition 1"), "{described}");

    // Without the flag: a report, and nothing changes.
    let report = loud(&["topics", "repair", "--topic", "t", "--partition", "0"]);
    assert!(report.contains("Partition t-0 is offline"), "{report}");
    assert!(
        report.contains(&format!("truncates its log at offset {first_dropped}")),
        "{report}"
    );
    assert!(report.contains("Nothing was changed"), "{report}");
    assert_eq!(std::fs::metadata(&victim).unwrap().len(), before);
    let healthy = loud(&["topics", "repair", "--topic", "t", "--partition", "1"]);
    assert_eq!(healthy, "Partition t-1 is online; nothing to repair.\n");

    // With it: the log ends at the damage, and takes writes again.
    let repaired = loud(&[
        "topics",
        "repair",
        "--topic",
        "t",
        "--partition",
        "0",
        "--accept-data-loss",
    ]);
    assert!(
        repaired.starts_with(&format!(
            "Repaired partition t-0: dropped offsets {first_dropped} to "
        )),
        "{repaired}"
    );
    let described = ok(dir, &["topics", "describe", "--topic", "t"], "");
    assert!(!described.contains("OFFLINE"), "{described}");
    let row: Vec<&str> = described
        .lines()
        .nth(2)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(row[0], "0");
    assert_eq!(row[2], first_dropped.to_string(), "{described}");
    consume(
        dir,
        &[
            "--topic",
            "t",
            "--partition",
            "0",
            "--offset",
            "earliest",
            "--timeout-ms",
            "300",
        ],
        first_dropped as usize,
    );
}

/// Creates topic `t` with 2 partitions whose segments roll at 1 KiB.
fn create_two_partitions_of_small_segments(dir: &Path) {
    let args = [
        "topics",
        "create",
        "--topic",
        "t",
        "--partitions",
        "2",
        "--config",
        "segment.bytes=1024",
    ];
    ok(dir, &args, "");
}

/// A broker dir with a topic of several segments and a group that committed offsets.
fn inspected_dir(dir: &Path) {
    create_two_partitions_of_small_segments(dir);
    let lines: String = (0..60).map(|i| format!("k{i}:v{i}\n")).collect();
    produce(dir, "t", &["--key-separator", ":"], &lines);
    let r = run(
        dir,
        &[
            "consume",
            "--topic",
            "t",
            "--group",
            "g",
            "--timeout-ms",
            "300",
        ],
        "",
    );
    assert_eq!(r.code, Some(0), "{r:?}");
}

const READ_ONLY_COMMANDS: [&[&str]; 5] = [
    &["topics", "list"],
    &["topics", "describe"],
    &["groups", "list"],
    &["groups", "describe", "--group", "g"],
    &[
        "consume",
        "--topic",
        "t",
        "--from-beginning",
        "--timeout-ms",
        "200",
    ],
];

#[test]
fn read_only_commands_write_nothing_in_the_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    inspected_dir(dir);
    let before = snapshot(dir);
    // Later mtimes would show any write.
    std::thread::sleep(Duration::from_millis(20));
    for args in READ_ONLY_COMMANDS {
        let r = run(dir, args, "");
        assert_eq!(r.code, Some(0), "streams {args:?}: {r:?}");
        assert!(!r.stdout.is_empty(), "streams {args:?}");
    }
    assert_eq!(
        snapshot(dir),
        before,
        "a read-only command wrote to the data dir"
    );
}

/// Runs `streams --data-dir MOUNT args` in a private mount namespace where `setup` (a shell
/// snippet that gets `$SRC` and `$MNT`) prepares `MOUNT`.
fn run_in_mount(src: &Path, setup: &str, args: &[&str]) -> Run {
    let mnt = tempfile::tempdir().unwrap();
    let script = format!("set -e; {setup}; exec \"$BIN\" --data-dir \"$MNT\" \"$@\"",);
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script, "sh"])
        .args(args)
        .env("SRC", src)
        .env("MNT", mnt.path())
        .env("BIN", env!("CARGO_BIN_EXE_streams"))
        .env_remove("RUST_LOG")
        .env_remove("STREAMS_DATA_DIR")
        .output()
        .expect("unshare (util-linux) runs the command in a private mount namespace");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn read_only_commands_work_on_a_read_only_and_on_a_full_file_system() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    inspected_dir(dir);
    let expected: Vec<String> = READ_ONLY_COMMANDS
        .iter()
        .map(|args| {
            let r = run(dir, args, "");
            assert_eq!(r.code, Some(0), "{r:?}");
            r.stdout
        })
        .collect();
    let read_only = "mount --bind \"$SRC\" \"$MNT\"; mount -o remount,bind,ro \"$MNT\"";
    // A 2 MiB file system with a copy of the data dir, then filled to the last byte.
    let full = "mount -t tmpfs -o size=2m tmpfs \"$MNT\"; cp -a \"$SRC\"/. \"$MNT\"/; \
                dd if=/dev/zero of=\"$MNT\"/filler bs=4k >/dev/null 2>&1 || true";
    for (setup, name) in [(read_only, "read-only"), (full, "full")] {
        for (args, want) in READ_ONLY_COMMANDS.iter().zip(&expected) {
            let r = run_in_mount(dir, setup, args);
            assert_eq!(
                r.code,
                Some(0),
                "{name} file system, streams {args:?}: {r:?}"
            );
            assert_eq!(&r.stdout, want, "{name} file system, streams {args:?}");
        }
    }
    // A command that writes says why it cannot.
    let r = run_in_mount(dir, read_only, &["topics", "create", "--topic", "new"]);
    assert_ne!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("Read-only file system"), "{r:?}");
}

#[test]
fn a_running_produce_keeps_its_lock_whatever_is_deleted_in_the_dir() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut first = std::process::Command::new(env!("CARGO_BIN_EXE_streams"))
        .env_remove("STREAMS_DATA_DIR")
        .env_remove("RUST_LOG")
        .arg("--data-dir")
        .arg(dir)
        .args([
            "produce",
            "--topic",
            "t",
            "--partitions",
            "1",
            "--batch-size",
            "1",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = first.stdin.take().unwrap();
    for i in 0..5 {
        writeln!(stdin, "first-{i}").unwrap();
    }
    stdin.flush().unwrap();
    // The topic's dir exists once the first process holds the broker.
    let deadline = Instant::now() + RUN_LIMIT;
    while !dir.join("t-0").exists() {
        assert!(
            Instant::now() < deadline,
            "the first produce never opened the broker"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Every file at the top of the data dir goes (a lock file, had there been one).
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::remove_file(path).unwrap();
        }
    }
    let r = run(dir, &["produce", "--topic", "t"], "second-0\nsecond-1\n");
    assert_ne!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("is locked by another broker"), "{r:?}");
    for i in 5..10 {
        writeln!(stdin, "first-{i}").unwrap();
    }
    drop(stdin);
    let out = first.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let values = consume(
        dir,
        &["--topic", "t", "--from-beginning", "--timeout-ms", "300"],
        10,
    );
    let expected: String = (0..10).map(|i| format!("first-{i}\n")).collect();
    assert_eq!(values, expected);
}

#[test]
fn partitions_are_not_bounded_by_the_descriptor_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(
        dir,
        &[
            "topics",
            "create",
            "--topic",
            "wide",
            "--partitions",
            "1500",
        ],
        "",
    );
    // Distinct keys reach nearly every partition: a segment file in each.
    let lines: String = (0..6000).map(|i| format!("key-{i}:v{i}\n")).collect();
    produce(dir, "wide", &["--key-separator", ":"], &lines);
    let with_files = (0..1500)
        .filter(|p| {
            std::fs::read_dir(dir.join(format!("wide-{p}")))
                .unwrap()
                .any(|e| e.unwrap().path().extension().is_some_and(|x| x == "log"))
        })
        .count();
    assert!(
        with_files > 1400,
        "{with_files} partitions with a segment file"
    );
    // 1,500 partitions, each with a segment, under a limit of 256 descriptors.
    let input = tmp.path().join("lines.txt");
    std::fs::write(&input, &lines).unwrap();
    let script = "ulimit -n 256 && exec \"$BIN\" --data-dir \"$DIR\" \"$@\" < \"$INPUT\"";
    for args in [
        &["topics", "describe", "--topic", "wide"][..],
        &["produce", "--topic", "wide", "--key-separator", ":"],
    ] {
        let out = std::process::Command::new("sh")
            .args(["-c", script, "sh"])
            .args(args)
            .env("BIN", env!("CARGO_BIN_EXE_streams"))
            .env("DIR", dir)
            .env("INPUT", &input)
            .env_remove("RUST_LOG")
            .env_remove("STREAMS_DATA_DIR")
            .output()
            .unwrap();
        assert!(out.status.success(), "streams {args:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("Too many open files"), "{stderr}");
    }
    let consumed = consume(
        dir,
        &["--topic", "wide", "--from-beginning", "--timeout-ms", "500"],
        12_000,
    );
    assert_eq!(consumed.lines().count(), 12_000);
}

#[test]
fn a_produce_on_a_full_disk_fails_clearly_and_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    inspected_dir(&dir);
    let input = tmp.path().join("lines.txt");
    let lines: String = (0..2000)
        .map(|i| format!("new-{i}:{}\n", "x".repeat(200)))
        .collect();
    std::fs::write(&input, lines).unwrap();
    let mnt = tempfile::tempdir().unwrap();
    // In a private mount namespace: the data dir on a 2 MiB tmpfs filled to its last byte,
    // a produce, then room made again and everything read back.
    let script = "set -e; mount -t tmpfs -o size=2m tmpfs \"$MNT\"; cp -a \"$SRC\"/. \"$MNT\"/; \
        dd if=/dev/zero of=\"$MNT\"/filler bs=4k >/dev/null 2>&1 || true; \
        set +e; \"$BIN\" --data-dir \"$MNT\" produce --topic t --key-separator : < \"$INPUT\"; \
        echo \"produce-exit=$?\" >&2; set -e; rm \"$MNT\"/filler; \
        exec \"$BIN\" --data-dir \"$MNT\" consume --topic t --from-beginning --timeout-ms 300";
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script])
        .env("SRC", &dir)
        .env("MNT", mnt.path())
        .env("INPUT", &input)
        .env("BIN", env!("CARGO_BIN_EXE_streams"))
        .env_remove("RUST_LOG")
        .env_remove("STREAMS_DATA_DIR")
        .output()
        .expect("unshare (util-linux) runs the command in a private mount namespace");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("produce-exit=0"),
        "the produce cannot succeed: {stderr}"
    );
    assert!(stderr.contains("No space left on device"), "{stderr}");
    // What the produce says it wrote, and the 60 records from before, are all there.
    let written: usize = stderr
        .lines()
        .chain(stdout.lines())
        .find_map(|l| l.strip_prefix("wrote "))
        .and_then(|l| l.split_whitespace().next())
        .map_or(0, |n| n.parse().unwrap());
    let read: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.starts_with("wrote "))
        .collect();
    assert_eq!(read.len(), 60 + written, "{stdout}\n{stderr}");
    for i in 0..60 {
        assert!(read.contains(&format!("v{i}").as_str()), "v{i} lost");
    }
}

//! `--bootstrap-server`: the commands on `streams serve` over the Kafka protocol (through
//! librdkafka) print what the same commands print on the served data dir.
//!
//! Each test serves a data dir, runs commands with `--bootstrap-server`, stops the server
//! and runs the same commands with `--data-dir` (on the served dir, or on a copy of it taken
//! before serving), and compares what they print.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command as TestCommand;

mod common;
use common::{serve_with, terminate};

/// Longest any one run of the binary may take before the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// What one run printed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// The binary, without the environment variables that choose a target or a log level.
fn streams() -> TestCommand {
    let mut cmd = TestCommand::new(env!("CARGO_BIN_EXE_streams"));
    cmd.env_remove("STREAMS_DATA_DIR")
        .env_remove("STREAMS_BOOTSTRAP_SERVER")
        .env_remove("RUST_LOG")
        .timeout(RUN_LIMIT);
    cmd
}

fn run_cmd(mut cmd: TestCommand, stdin: &str) -> Run {
    let out = cmd
        .write_stdin(stdin.as_bytes().to_vec())
        .output()
        .unwrap_or_else(|e| panic!("running streams: {e}"));
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Where a command runs: a data dir, or the address of a server.
#[derive(Debug, Clone, Copy)]
enum On<'a> {
    Dir(&'a Path),
    Wire(&'a str),
}

fn run(on: On<'_>, args: &[&str], stdin: &str) -> Run {
    let mut cmd = streams();
    match on {
        On::Dir(dir) => cmd.arg("--data-dir").arg(dir),
        On::Wire(addr) => cmd.args(["--bootstrap-server", addr]),
    };
    cmd.args(args);
    run_cmd(cmd, stdin)
}

/// Runs and expects success with nothing on stderr; returns stdout.
fn ok(on: On<'_>, args: &[&str], stdin: &str) -> String {
    let r = run(on, args, stdin);
    assert_eq!(r.code, Some(0), "streams {args:?} on {on:?}: {r:?}");
    assert_eq!(r.stderr, "", "streams {args:?} on {on:?} wrote to stderr");
    r.stdout
}

/// Runs a consume; expects success and the summary line; returns stdout.
fn consume(on: On<'_>, args: &[&str]) -> String {
    let mut all = vec!["consume"];
    all.extend_from_slice(args);
    let r = run(on, &all, "");
    assert_eq!(r.code, Some(0), "streams {all:?} on {on:?}: {r:?}");
    let count = r.stdout.lines().count();
    assert_eq!(
        r.stderr,
        format!("Processed a total of {count} messages\n"),
        "streams {all:?} on {on:?}"
    );
    r.stdout
}

/// Runs and expects a failure with exactly one `error: ` line on stderr; returns it.
fn fails(on: On<'_>, args: &[&str], stdin: &str) -> String {
    let r = run(on, args, stdin);
    assert_eq!(r.code, Some(1), "streams {args:?} on {on:?}: {r:?}");
    one_error_line(&r)
}

fn one_error_line(r: &Run) -> String {
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {r:?}");
    assert!(lines[0].starts_with("error: "), "{r:?}");
    lines[0].to_owned()
}

/// A running `streams serve`; stopped with SIGTERM by [`Server::stop`], killed if dropped
/// (a failed test).
struct Server {
    child: Option<Child>,
    addr: String,
}

impl Server {
    /// Serves `dir` on a free loopback port. Groups form at once (no initial rebalance
    /// delay), so that each `consume --group` does not wait 3 s.
    fn start(dir: &Path) -> Server {
        let (child, addr) = serve_with(dir, &["--config", "group.initial.rebalance.delay.ms=0"]);
        Server {
            child: Some(child),
            addr,
        }
    }

    fn on(&self) -> On<'_> {
        On::Wire(&self.addr)
    }

    /// SIGTERM, then waits for a clean exit, which releases the data dir.
    fn stop(mut self) {
        if let Some(child) = self.child.take() {
            terminate(child);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A child process killed if the test fails before it ends.
struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Copies the dir `from` to `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// `topics describe` output as cells, with the columns a cluster does not tell (SIZE-BYTES
/// and SEGMENTS of each partition row) as `-`.
fn without_sizes(text: &str) -> Vec<Vec<String>> {
    let mut in_partitions = false;
    text.lines()
        .map(|line| {
            let mut cells: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
            if cells.first().map(String::as_str) == Some("PARTITION") {
                in_partitions = true;
            } else if cells.is_empty() || !cells[0].chars().all(|c| c.is_ascii_digit()) {
                in_partitions = false;
            } else if in_partitions && cells.len() == 5 {
                cells[3] = "-".to_owned();
                cells[4] = "-".to_owned();
            }
            cells
        })
        .collect()
}

#[test]
fn topics_over_the_wire_print_what_the_data_dir_prints() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(On::Dir(dir), &["topics", "create", "--topic", "first"], "");
    let server = Server::start(dir);
    let wire = server.on();

    assert_eq!(
        ok(
            wire,
            &["topics", "create", "--topic", "orders", "--partitions", "3"],
            ""
        ),
        "Created topic orders.\n"
    );
    assert_eq!(
        ok(
            wire,
            &[
                "topics",
                "create",
                "--topic",
                "prices",
                "--config",
                "cleanup.policy=compact",
                "--config",
                "segment.bytes=4096"
            ],
            ""
        ),
        "Created topic prices.\n"
    );
    assert_eq!(
        ok(wire, &["topics", "create", "--topic", "gone"], ""),
        "Created topic gone.\n"
    );
    let exists = ["topics", "create", "--topic", "orders", "--if-not-exists"];
    let exists_text = ok(wire, &exists, "");
    assert_eq!(
        exists_text,
        "Topic orders already exists; nothing changed.\n"
    );
    let twice = ["topics", "create", "--topic", "orders"];
    let twice_error = fails(wire, &twice, "");
    assert_eq!(twice_error, "error: topic orders already exists");
    let bad_config = [
        "topics",
        "create",
        "--topic",
        "bad",
        "--config",
        "retention.ms=soon",
    ];
    let bad_config_error = fails(wire, &bad_config, "");
    assert_eq!(
        bad_config_error,
        "error: invalid config retention.ms=\"soon\": not an integer"
    );
    assert_eq!(
        ok(wire, &["topics", "delete", "--topic", "gone"], ""),
        "Deleted topic gone.\n"
    );
    let delete_again = ["topics", "delete", "--topic", "gone", "--if-exists"];
    let delete_again_text = ok(wire, &delete_again, "");
    let unknown = ["topics", "describe", "--topic", "gone"];
    let unknown_error = fails(wire, &unknown, "");
    assert_eq!(unknown_error, "error: unknown topic gone");

    let listed = ok(wire, &["topics", "list"], "");
    assert_eq!(listed, "first\norders\nprices\n");
    let described = ok(wire, &["topics", "describe"], "");
    let described_one = ok(wire, &["topics", "describe", "--topic", "prices"], "");
    // A cluster does not tell sizes and segments.
    assert!(
        described_one.contains(
            "PARTITION  LOG-START-OFFSET  LOG-END-OFFSET  SIZE-BYTES  SEGMENTS\n\
             \x20       0                 0               0           -         -\n"
        ),
        "{described_one}"
    );
    server.stop();

    let dir = On::Dir(dir);
    assert_eq!(ok(dir, &["topics", "list"], ""), listed);
    assert_eq!(
        without_sizes(&ok(dir, &["topics", "describe"], "")),
        without_sizes(&described)
    );
    assert_eq!(
        without_sizes(&ok(dir, &["topics", "describe", "--topic", "prices"], "")),
        without_sizes(&described_one)
    );
    assert_eq!(ok(dir, &exists, ""), exists_text);
    assert_eq!(fails(dir, &twice, ""), twice_error);
    assert_eq!(fails(dir, &bad_config, ""), bad_config_error);
    assert_eq!(ok(dir, &delete_again, ""), delete_again_text);
    assert_eq!(fails(dir, &unknown, ""), unknown_error);
}

/// Keyed lines, a null value and an empty one.
const ORDERS: &str = "alice\t{\"item\": \"book\", \"qty\": 1}\n\
                      bob\t{\"item\": \"pen\", \"qty\": 3}\n\
                      carol\t{\"item\": \"ink\", \"qty\": 2}\n\
                      alice\t{\"item\": \"lamp\", \"qty\": 1}\n\
                      dave\tNULL\n\
                      erin\t\"\"\n";

#[test]
fn produce_and_consume_over_the_wire_match_the_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for topic in ["wire", "local"] {
        ok(
            On::Dir(dir),
            &["topics", "create", "--topic", topic, "--partitions", "3"],
            "",
        );
    }
    let server = Server::start(dir);
    let wire = server.on();
    let produce = |topic: &'static str, extra: &[&'static str]| {
        let mut args = vec![
            "produce",
            "--topic",
            topic,
            "--key-separator",
            "\t",
            "--value-format",
            "json",
            "--null-marker",
            "NULL",
        ];
        args.extend_from_slice(extra);
        args
    };
    let produced = ok(wire, &produce("wire", &[]), ORDERS);
    // The same keys land in the same partitions as on a data dir (Kafka's murmur2).
    assert_eq!(
        produced,
        "wrote 6 records to wire (partition 0: offsets 0-2, partition 1: offset 0, partition 2: \
         offsets 0-1)\n"
    );
    let compressed = ok(
        wire,
        &produce("wire", &["--compression-type", "zstd"]),
        "carol\t[1, 2]\n",
    );
    assert_eq!(
        compressed,
        "wrote 1 records to wire (partition 2: offset 2)\n"
    );
    let unknown_topic = fails(wire, &produce("nope", &[]), ORDERS);
    let bad_line = run(wire, &produce("wire", &[]), "zoe\t{}\nno separator\n");

    let all = [
        "--topic",
        "wire",
        "--from-beginning",
        "--print-key",
        "--print-partition",
        "--print-offset",
        "--value-format",
        "json",
        // Idle time from the start (no group): room for librdkafka's connection and first
        // fetch on a loaded machine.
        "--timeout-ms",
        "5000",
    ];
    let mut read = consume(wire, &all);
    let one = [
        "--topic",
        "wire",
        "--partition",
        "0",
        "--offset",
        "2",
        "--print-offset",
        "--print-key",
        "--value-format",
        "hex",
        "--timeout-ms",
        "5000",
    ];
    let read_one = consume(wire, &one);
    let committed = consume(
        wire,
        &[
            "--topic",
            "wire",
            "--from-beginning",
            "--isolation-level",
            "read_committed",
            "--print-partition",
            "--print-offset",
            "--value-format",
            "json",
            "--max-messages",
            "9",
            "--timeout-ms",
            "1000",
        ],
    );
    let out_of_range = fails(
        wire,
        &[
            "consume",
            "--topic",
            "wire",
            "--partition",
            "1",
            "--offset",
            "3",
        ],
        "",
    );
    let no_partition = fails(
        wire,
        &[
            "consume",
            "--topic",
            "wire",
            "--partition",
            "7",
            "--offset",
            "0",
        ],
        "",
    );
    let no_topic = fails(wire, &["consume", "--topic", "nope"], "");
    // Nothing above created a topic by asking for it.
    assert_eq!(ok(wire, &["topics", "list"], ""), "local\nwire\n");
    server.stop();

    let dir = On::Dir(dir);
    // The data dir's producer writes the same lines to the same partitions and offsets.
    assert_eq!(
        ok(dir, &produce("local", &[]), ORDERS),
        produced.replace("wire", "local")
    );
    assert_eq!(
        ok(
            dir,
            &produce("local", &["--compression-type", "zstd"]),
            "carol\t[1, 2]\n"
        ),
        compressed.replace("wire", "local")
    );
    assert_eq!(fails(dir, &produce("nope", &[]), ORDERS), unknown_topic);
    assert_eq!(
        unknown_topic,
        "error: unknown topic nope; create it with 'streams topics create --topic nope' or \
         pass --partitions N"
    );
    // The summary, then the error, as on a data dir.
    assert_eq!(bad_line.code, Some(1), "{bad_line:?}");
    assert_eq!(
        bad_line.stdout,
        "wrote 1 records to wire (partition 2: offset 3)\n"
    );
    assert_eq!(
        one_error_line(&bad_line),
        "error: line 2: no key separator \"\\t\" in \"no separator\" (the 1 record before it \
         was written to wire)"
    );

    // Records of different partitions come in no promised order: compare them sorted.
    let sorted = |text: &str| {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines.sort();
        lines
    };
    let mut read_dir = consume(dir, &all);
    assert_eq!(sorted(&read), sorted(&read_dir));
    assert_eq!(
        sorted(&read),
        [
            "alice\t0\t0\t{\"item\":\"book\",\"qty\":1}",
            "alice\t0\t2\t{\"item\":\"lamp\",\"qty\":1}",
            "bob\t0\t1\t{\"item\":\"pen\",\"qty\":3}",
            "carol\t2\t0\t{\"item\":\"ink\",\"qty\":2}",
            "carol\t2\t2\t[1,2]",
            "dave\t1\t0\tnull",
            "erin\t2\t1\t\"\"",
            "zoe\t2\t3\t{}",
        ]
    );
    read.clear();
    read_dir.clear();
    assert_eq!(consume(dir, &one), read_one);
    assert_eq!(
        read_one,
        "alice\t2\t7b226974656d223a226c616d70222c22717479223a317d\n"
    );
    assert_eq!(
        sorted(&consume(
            dir,
            &[
                "--topic",
                "wire",
                "--from-beginning",
                "--isolation-level",
                "read_committed",
                "--print-partition",
                "--print-offset",
                "--value-format",
                "json",
                "--max-messages",
                "9",
                "--timeout-ms",
                "1000",
            ],
        )),
        sorted(&committed)
    );
    assert_eq!(
        fails(
            dir,
            &[
                "consume",
                "--topic",
                "wire",
                "--partition",
                "1",
                "--offset",
                "3"
            ],
            ""
        ),
        out_of_range
    );
    assert_eq!(
        out_of_range,
        "error: offset 3 is out of range for partition wire-1 (log start offset 0, log end \
         offset 1)"
    );
    assert_eq!(
        fails(
            dir,
            &[
                "consume",
                "--topic",
                "wire",
                "--partition",
                "7",
                "--offset",
                "0"
            ],
            ""
        ),
        no_partition
    );
    assert_eq!(fails(dir, &["consume", "--topic", "nope"], ""), no_topic);
    assert_eq!(no_topic, "error: unknown topic nope");
}

/// The steps of [`group_offsets_over_the_wire_match_the_data_dir`], each with what it
/// printed on stdout (and the error line of a failure).
fn group_session(on: On<'_>) -> Vec<String> {
    let mut printed = Vec::new();
    let mut step = |args: &[&str]| {
        let r = run(on, args, "");
        let mut text = match r.code {
            Some(0) => r.stdout,
            _ => format!("{}{}", r.stdout, one_error_line(&r)),
        };
        if args[0] == "consume" {
            // Records of different partitions come in no promised order.
            let mut lines: Vec<&str> = text.lines().collect();
            lines.sort();
            text = lines.iter().map(|l| format!("{l}\n")).collect();
        }
        printed.push(format!("{args:?}\n{text}"));
    };
    let describe = ["groups", "describe", "--group", "billing"];
    step(&[
        "consume",
        "--topic",
        "orders",
        "--group",
        "billing",
        "--from-beginning",
        "--max-messages",
        "2",
        "--print-partition",
        "--print-offset",
    ]);
    step(&describe);
    step(&["groups", "list"]);
    step(&[
        "consume",
        "--topic",
        "orders",
        "--group",
        "billing",
        "--timeout-ms",
        "1000",
        "--print-partition",
        "--print-offset",
    ]);
    step(&describe);
    step(&[
        "groups",
        "reset-offsets",
        "--group",
        "billing",
        "--topic",
        "orders",
        "--shift-by",
        "-2",
        "--dry-run",
    ]);
    step(&describe);
    step(&[
        "groups",
        "reset-offsets",
        "--group",
        "billing",
        "--topic",
        "orders",
        "--to-earliest",
    ]);
    step(&describe);
    step(&[
        "groups",
        "reset-offsets",
        "--group",
        "billing",
        "--topic",
        "orders",
        "--to-datetime",
        "2090-01-01T00:00:00.000Z",
    ]);
    step(&describe);
    step(&[
        "groups",
        "reset-offsets",
        "--group",
        "other",
        "--topic",
        "orders",
        "--shift-by",
        "1",
    ]);
    step(&[
        "groups",
        "reset-offsets",
        "--group",
        "other",
        "--topic",
        "orders",
        "--to-offset",
        "1",
    ]);
    step(&["groups", "list"]);
    step(&["groups", "delete", "--group", "billing"]);
    step(&describe);
    step(&["groups", "delete", "--group", "billing"]);
    step(&["groups", "list"]);
    printed
}

#[test]
fn group_offsets_over_the_wire_match_the_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let served = tmp.path().join("served");
    let copy = tmp.path().join("copy");
    let dir = On::Dir(&served);
    ok(
        dir,
        &["topics", "create", "--topic", "orders", "--partitions", "3"],
        "",
    );
    // alice and bob go to partition 0, carol to partition 2.
    ok(
        dir,
        &["produce", "--topic", "orders", "--key-separator", ":"],
        "alice:1\nbob:2\nalice:3\nbob:4\ncarol:5\n",
    );
    copy_dir(&served, &copy);

    let server = Server::start(&served);
    let over_the_wire = group_session(server.on());
    server.stop();
    let on_a_data_dir = group_session(On::Dir(&copy));
    assert_eq!(over_the_wire, on_a_data_dir);

    // What the session printed, step by step (the data dir's output, which the wire's
    // equals).
    let at = |i: usize| {
        on_a_data_dir[i]
            .split_once('\n')
            .map(|(_, text)| text.to_owned())
            .unwrap()
    };
    let table = "GROUP    TOPIC   PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID\n";
    let group_line = "Group: billing  State: Empty  Members: 0\n";
    let described = |rows: &str| format!("{group_line}{table}{rows}");
    // The first two records of partition 0; the other partitions start at their log start.
    assert_eq!(at(0), "0\t0\t1\n0\t1\t2\n");
    assert_eq!(
        at(1),
        described(
            "billing  orders          0               2               4    2  -\n\
             billing  orders          1               0               0    0  -\n\
             billing  orders          2               0               1    1  -\n"
        )
    );
    assert_eq!(at(2), "billing\n");
    let rest = at(3);
    let rest: Vec<&str> = rest.lines().collect();
    assert_eq!(rest, ["0\t2\t3", "0\t3\t4", "2\t0\t5"]);
    assert_eq!(
        at(4),
        described(
            "billing  orders          0               4               4    0  -\n\
             billing  orders          1               0               0    0  -\n\
             billing  orders          2               1               1    0  -\n"
        )
    );
    assert_eq!(
        at(5),
        "GROUP    TOPIC   PARTITION  NEW-OFFSET\n\
         billing  orders          0           2\n\
         billing  orders          1           0\n\
         billing  orders          2           0\n"
    );
    assert_eq!(at(6), at(4), "a dry run changes nothing");
    assert_eq!(
        at(8),
        described(
            "billing  orders          0               0               4    4  -\n\
             billing  orders          1               0               0    0  -\n\
             billing  orders          2               0               1    1  -\n"
        )
    );
    assert_eq!(
        at(10),
        at(4),
        "every record is older than 2090: the log end"
    );
    assert_eq!(
        at(11),
        "error: group other has no committed offset for orders-0 to shift from"
    );
    assert_eq!(at(13), "billing\nother\n");
    assert_eq!(at(14), "Deleted consumer group billing.\n");
    assert_eq!(at(15), "error: consumer group billing does not exist");
    assert_eq!(at(16), "error: consumer group billing does not exist");
    assert_eq!(at(17), "other\n");

    // The served dir holds what the wire session did.
    assert_eq!(ok(On::Dir(&served), &["groups", "list"], ""), "other\n");
    assert_eq!(
        ok(
            On::Dir(&served),
            &["groups", "describe", "--group", "other"],
            ""
        ),
        ok(
            On::Dir(&copy),
            &["groups", "describe", "--group", "other"],
            ""
        )
    );
}

#[test]
fn an_active_member_shows_in_describe_and_blocks_reset_and_delete() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(
        On::Dir(dir),
        &["topics", "create", "--topic", "t", "--partitions", "2"],
        "",
    );
    let server = Server::start(dir);
    let wire = server.on();
    let member = Command::new(env!("CARGO_BIN_EXE_streams"))
        .env_remove("STREAMS_DATA_DIR")
        .env_remove("STREAMS_BOOTSTRAP_SERVER")
        .env_remove("RUST_LOG")
        .args(["--bootstrap-server", &server.addr])
        .args([
            "consume",
            "--topic",
            "t",
            "--group",
            "live",
            "--max-messages",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut member = KillOnDrop(Some(member));
    // Waits until the member has its partitions.
    let deadline = Instant::now() + Duration::from_secs(30);
    let described = loop {
        let r = run(wire, &["groups", "describe", "--group", "live"], "");
        if r.code == Some(0) && r.stdout.contains("State: Stable") && r.stdout.lines().count() == 4
        {
            break r.stdout;
        }
        assert!(Instant::now() < deadline, "the member never joined: {r:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let lines: Vec<Vec<&str>> = described
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        ["Group:", "live", "State:", "Stable", "Members:", "1"]
    );
    let member_id = lines[2][6];
    assert!(member_id.starts_with("streams-cli-"), "{described}");
    assert_eq!(lines[2][..6], ["live", "t", "0", "-", "0", "-"]);
    assert_eq!(lines[3][..6], ["live", "t", "1", "-", "0", "-"]);
    assert_eq!(lines[3][6], member_id);

    let refused = "error: group live has 1 active member(s) (state Stable); offsets can only be \
                   changed while the group is inactive: stop its consumers first";
    assert_eq!(
        fails(
            wire,
            &[
                "groups",
                "reset-offsets",
                "--group",
                "live",
                "--topic",
                "t",
                "--to-latest"
            ],
            ""
        ),
        refused
    );
    assert_eq!(
        fails(wire, &["groups", "delete", "--group", "live"], ""),
        refused
    );

    // A record ends the member (--max-messages 1), which commits it and leaves.
    ok(
        wire,
        &["produce", "--topic", "t", "--key-separator", ":"],
        "k:v\n",
    );
    let out = member.0.take().unwrap().wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "v\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Processed a total of 1 messages\n"
    );
    let after = ok(wire, &["groups", "describe", "--group", "live"], "");
    assert!(
        after.starts_with("Group: live  State: Empty  Members: 0\n"),
        "{after}"
    );
    assert_eq!(
        ok(wire, &["groups", "delete", "--group", "live"], ""),
        "Deleted consumer group live.\n"
    );
    server.stop();
}

#[test]
fn an_unreachable_cluster_is_one_error_line_naming_the_address() {
    // A port nothing listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    for args in [
        &["topics", "list"][..],
        &["topics", "create", "--topic", "t"],
        &["produce", "--topic", "t"],
        &["consume", "--topic", "t"],
        &["groups", "describe", "--group", "g"],
    ] {
        let started = Instant::now();
        let line = fails(On::Wire(&addr), args, "a\n");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{args:?} took {:?}",
            started.elapsed()
        );
        assert!(
            line.starts_with(&format!(
                "error: cannot reach the Kafka cluster at {addr} (--bootstrap-server): "
            )),
            "{line}"
        );
        assert!(line.contains("Connection refused"), "{line}");
    }
}

#[test]
fn data_dir_and_bootstrap_server_are_exclusive() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(On::Dir(dir), &["topics", "create", "--topic", "t"], "");
    let usage = |cmd: TestCommand| {
        let r = run_cmd(cmd, "");
        assert_eq!(r.code, Some(2), "{r:?}");
        one_error_line(&r)
    };

    let mut both = streams();
    both.arg("--data-dir").arg(dir).args([
        "--bootstrap-server",
        "127.0.0.1:9092",
        "topics",
        "list",
    ]);
    assert_eq!(
        usage(both),
        "error: --data-dir and --bootstrap-server cannot be used together: give the data dir \
         or the cluster (see --help)"
    );
    let mut neither = streams();
    neither.args(["topics", "list"]);
    assert_eq!(
        usage(neither),
        "error: --data-dir DIR or --bootstrap-server HOST:PORT is required (or set \
         STREAMS_DATA_DIR or STREAMS_BOOTSTRAP_SERVER) (see --help)"
    );
    let mut both_env = streams();
    both_env
        .env("STREAMS_DATA_DIR", dir)
        .env("STREAMS_BOOTSTRAP_SERVER", "127.0.0.1:9092")
        .args(["topics", "list"]);
    assert_eq!(
        usage(both_env),
        "error: STREAMS_DATA_DIR and STREAMS_BOOTSTRAP_SERVER are both set: pass --data-dir or \
         --bootstrap-server to choose (see --help)"
    );
    // A flag wins over the other's environment variable.
    let mut flag_wins = streams();
    flag_wins
        .env("STREAMS_BOOTSTRAP_SERVER", "127.0.0.1:9")
        .arg("--data-dir")
        .arg(dir)
        .args(["topics", "list"]);
    let r = run_cmd(flag_wins, "");
    assert_eq!((r.code, r.stdout.as_str()), (Some(0), "t\n"), "{r:?}");

    for (args, command) in [
        (&["serve"][..], "serve"),
        (&["topics", "compact", "--topic", "t"], "topics compact"),
        (
            &["topics", "repair", "--topic", "t", "--partition", "0"],
            "topics repair",
        ),
    ] {
        let mut cmd = streams();
        cmd.args(["--bootstrap-server", "127.0.0.1:9092"])
            .args(args);
        assert_eq!(
            usage(cmd),
            format!(
                "error: {command} works on a data dir: it takes --data-dir, not \
                 --bootstrap-server (see --help)"
            )
        );
    }
    for bad in ["localhost", "host:port", ":9092", "a:1,,b:2", "a:0"] {
        let mut cmd = streams();
        cmd.args(["--bootstrap-server", bad, "topics", "list"]);
        let line = usage(cmd);
        assert!(line.contains("--bootstrap-server"), "{bad}: {line}");
    }
}

#[test]
fn ctrl_c_stops_a_group_consume_which_commits_what_it_printed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(
        On::Dir(dir),
        &["produce", "--topic", "t", "--partitions", "1"],
        "one\ntwo\n",
    );
    let server = Server::start(dir);
    let mut member = KillOnDrop(Some(
        Command::new(env!("CARGO_BIN_EXE_streams"))
            .env_remove("STREAMS_DATA_DIR")
            .env_remove("STREAMS_BOOTSTRAP_SERVER")
            .env_remove("RUST_LOG")
            .args(["--bootstrap-server", &server.addr])
            .args([
                "consume",
                "--topic",
                "t",
                "--group",
                "g",
                "--from-beginning",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let child = member.0.as_mut().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    for _ in 0..2 {
        stdout.read_line(&mut printed).unwrap();
    }
    assert_eq!(printed, "one\ntwo\n");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = member.0.take().unwrap().wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Processed a total of 2 messages\n"
    );
    let described = ok(server.on(), &["groups", "describe", "--group", "g"], "");
    server.stop();
    assert_eq!(
        described,
        "Group: g  State: Empty  Members: 0\n\
         GROUP  TOPIC  PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID\n\
         g      t              0               2               2    0  -\n"
    );
    assert_eq!(
        ok(On::Dir(dir), &["groups", "describe", "--group", "g"], ""),
        described
    );
}

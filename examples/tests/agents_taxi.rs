//! The `agents_taxi` binary: Faust's taxi tutorial runs to the end on the
//! embedded broker, counts every vendor's rides through its `group_by`,
//! and lists its agents and tables as Faust's commands do.

use std::process::Command;

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_agents_taxi"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_tutorial_counts_rides_per_vendor() {
    let (ok, stdout, stderr) = run(&["--rides", "500"]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.matches("ride of vendor").count(), 500, "{stdout}");
    assert!(
        stdout.contains("the table matches a direct count of the rides"),
        "{stdout}"
    );
}

#[test]
fn the_commands_list_agents_and_tables() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_string_lossy().into_owned();
    let (ok, stdout, stderr) = run(&["--data-dir", &data, "agents"]);
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("agent"), "{stdout}");
    assert!(
        lines[2].starts_with("print_rides  yellow_taxi_ride.json  prints every ride"),
        "{stdout}"
    );
    assert!(
        lines[3].starts_with("count_rides  yellow_taxi_ride.json  counts"),
        "{stdout}"
    );
    let (ok, stdout, stderr) = run(&["--data-dir", &data, "tables"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("vendor_rides  agents-taxi-vendor_rides-changelog  String -> i64"),
        "{stdout}"
    );
    let (ok, _, stderr) = run(&[
        "--data-dir",
        &data,
        "send",
        "yellow_taxi_ride.json",
        "not json",
    ]);
    assert!(!ok);
    assert!(stderr.contains("is not a valid"), "{stderr}");
    let ride = r#"{"vendorId":"1","tpep_pickup_datetime":"2020-01-01 00:00:00","tpep_dropoff_datetime":"2020-01-01 00:10:00","passenger_count":1,"trip_distance":1.5,"total_amount":9.5}"#;
    let (ok, stdout, stderr) = run(&["--data-dir", &data, "send", "yellow_taxi_ride.json", ride]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("sent to yellow_taxi_ride.json"), "{stdout}");
}

//! Interactive queries over HTTP against running apps on the embedded
//! broker: every route with typed answers, paging walked to the end, the
//! errors (404, 400, 503 while restoring, 401), two instances answering
//! each other's keys.

mod support;

use std::collections::{BTreeMap, HashMap};

use hyper::StatusCode;
use serde_json::Value;
use streams_core::query::HostInfo;
use streams_http::HttpServer;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_typed_json() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker().await;
    let input = input(3_000);
    let counts = word_counts(&input);
    produce(&broker, &input).await;
    let mut app = start_app(&broker, config("iq", dir.path(), "127.0.0.1:0")).await;
    let http = HttpServer::start(&app).await.unwrap();
    let addr = http.local_addr();
    wait_for("every count", || has_counts(addr, &counts)).await;

    // GET /stores: names, kinds, formats, tasks, entries.
    let (status, body) = get(addr, "/stores").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stores: HashMap<String, Value> = body["stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_owned(), s.clone()))
        .collect();
    let mut names: Vec<&String> = stores.keys().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "length-counts",
            "session-counts",
            "windowed-counts",
            "word-counts"
        ]
    );
    let wc = &stores["word-counts"];
    assert_eq!(wc["kind"], "key-value");
    assert_eq!(wc["key_format"], "string");
    assert_eq!(wc["value_format"], "timestamped(i64)");
    assert_eq!(wc["partitions"], PARTITIONS);
    assert_eq!(wc["approximate_entries"], counts.len());
    let tasks = wc["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), PARTITIONS as usize);
    assert!(tasks.iter().all(|t| t["state"] == "running"), "{wc}");
    assert_eq!(stores["windowed-counts"]["kind"], "window");
    assert_eq!(stores["windowed-counts"]["window_size_ms"], WINDOW_MS);
    assert_eq!(stores["session-counts"]["kind"], "session");
    assert_eq!(stores["session-counts"]["value_format"], "i64");
    assert_eq!(stores["length-counts"]["key_format"], "i64");

    // GET a key: the typed value with its timestamp.
    let (status, body) = get(addr, "/stores/word-counts/keys/the").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["key"], "the");
    assert_eq!(body["value"].as_i64(), Some(counts["the"]));
    let last_the = input
        .iter()
        .filter(|(w, _)| w == "the")
        .map(|(_, ts)| *ts)
        .max();
    assert_eq!(body["timestamp"].as_i64(), last_the);
    assert_eq!(body["store"], "word-counts");
    for (length, count) in length_counts(&input) {
        let (status, body) = get(addr, &format!("/stores/length-counts/keys/{length}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["key"].as_i64(), Some(length));
        assert_eq!(body["value"].as_i64(), Some(count));
    }

    // 404: unknown store, unknown key, unknown route.
    let (status, body) = get(addr, "/stores/nope/keys/the").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["error"].as_str().unwrap().contains("nope"), "{body}");
    let (status, body) = get(addr, "/stores/word-counts/keys/unseen-word").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["status"], 404);
    assert_eq!(get(addr, "/stores/nope").await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(addr, "/nothing/here").await.0, StatusCode::NOT_FOUND);

    // 400: a key the key serde cannot read, bad parameters, a key lookup of
    // a window store, a scan of nothing.
    let (status, body) = get(addr, "/stores/length-counts/keys/abc").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("abc"), "{body}");
    assert_eq!(
        get(addr, "/stores/word-counts?limit=0").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(addr, "/stores/word-counts?limit=x").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(addr, "/stores/word-counts?cursor=%21%21").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(addr, "/stores/windowed-counts/keys/the").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(addr, "/stores/word-counts/keys/the/windows").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(addr, "/stores/windowed-counts/keys/the/windows?from=soon")
            .await
            .0,
        StatusCode::BAD_REQUEST
    );

    // Paging walked to the end gives the whole store, each key once.
    let (all, pages) = all_pages(addr, "word-counts", 5, "").await;
    assert!(pages >= counts.len() / 5, "{pages} pages");
    let walked = entries_to_map(&all);
    assert_eq!(walked.len(), all.len(), "a key came twice");
    let expected: HashMap<String, i64> = counts.clone().into_iter().collect();
    assert_eq!(walked, expected);
    // One big page is the same store.
    let (one, pages) = all_pages(addr, "word-counts", 1000, "").await;
    assert_eq!(pages, 1);
    assert_eq!(entries_to_map(&one), expected);
    // Without a limit: the default page size, then a cursor.
    let (status, body) = get(addr, "/stores/word-counts").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["limit"], 100);
    // A limit above the maximum is cut to it.
    assert_eq!(
        get(addr, "/stores/word-counts?limit=99999").await.1["limit"],
        1000
    );
    // A range, paged: the keys from "d" to "s" inclusive.
    let (ranged, _) = all_pages(addr, "word-counts", 3, "&from=d&to=s").await;
    let in_range: HashMap<String, i64> = counts
        .iter()
        .filter(|(w, _)| w.as_str() >= "d" && w.as_str() <= "s")
        .map(|(w, c)| (w.clone(), *c))
        .collect();
    assert_eq!(entries_to_map(&ranged), in_range);
    let (ranged, _) = all_pages(addr, "word-counts", 2, "&from=the&to=the").await;
    assert_eq!(ranged.len(), 1);
    assert_eq!(ranged[0]["key"], "the");
    let (ranged, _) = all_pages(addr, "length-counts", 2, "&from=2&to=4").await;
    let lengths: BTreeMap<i64, i64> = ranged
        .iter()
        .map(|e| (e["key"].as_i64().unwrap(), e["value"].as_i64().unwrap()))
        .collect();
    let expected_lengths: BTreeMap<i64, i64> = length_counts(&input)
        .into_iter()
        .filter(|(l, _)| (2..=4).contains(l))
        .collect();
    assert_eq!(lengths, expected_lengths);

    // The windows of a key: every minute of "fox", and a time range.
    let expected_windows = window_counts(&input, "fox");
    let (status, body) = get(addr, "/stores/windowed-counts/keys/fox/windows").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["key"], "fox");
    let windows: BTreeMap<i64, i64> = body["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            assert_eq!(
                w["window"]["end"].as_i64().unwrap() - w["window"]["start"].as_i64().unwrap(),
                WINDOW_MS
            );
            (
                w["window"]["start"].as_i64().unwrap(),
                w["value"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(windows, expected_windows);
    let first = *expected_windows.keys().next().unwrap();
    let (_, body) = get(
        addr,
        &format!("/stores/windowed-counts/keys/fox/windows?from={first}&to={first}"),
    )
    .await;
    assert_eq!(body["windows"].as_array().unwrap().len(), 1);
    // The sessions of a key.
    let expected_sessions = sessions(&input, "dog");
    let (status, body) = get(addr, "/stores/session-counts/keys/dog/windows").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let found: Vec<(i64, i64, i64)> = body["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["window"]["start"].as_i64().unwrap(),
                w["window"]["end"].as_i64().unwrap(),
                w["value"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(found, expected_sessions);
    // A key with no windows: an empty list.
    let (status, body) = get(addr, "/stores/windowed-counts/keys/unseen/windows").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["windows"].as_array().unwrap().len(), 0);

    // A scan of a window store, paged, holds every window of every key.
    let (windowed, _) = all_pages(addr, "windowed-counts", 50, "").await;
    let total: i64 = windowed.iter().map(|e| e["value"].as_i64().unwrap()).sum();
    assert_eq!(total, input.len() as i64);
    let fox: BTreeMap<i64, i64> = windowed
        .iter()
        .filter(|e| e["key"] == "fox")
        .map(|e| {
            (
                e["window"]["start"].as_i64().unwrap(),
                e["value"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(fox, expected_windows);
    let (ranged, _) = all_pages(addr, "session-counts", 7, "&from=dog&to=dog").await;
    assert_eq!(ranged.len(), expected_sessions.len());
    assert!(ranged.iter().all(|e| e["key"] == "dog"));

    // Metadata: one instance owns everything.
    let (status, body) = get(addr, "/stores/word-counts/keys/the/metadata").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["local"], true);
    assert_eq!(body["active_host"], "127.0.0.1:0");
    let metadata = app
        .query_metadata_for_key("word-counts", &"the".to_owned())
        .unwrap();
    assert!(metadata.local);
    assert_eq!(body["partition"], metadata.partition);
    assert_eq!(
        metadata.partition,
        broker_embedded::partitioner::partition_for_key(b"the", PARTITIONS)
    );
    let (status, body) = get(addr, "/instances").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let instances = body["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 1);
    assert_eq!(instances[0]["local"], true);
    assert_eq!(
        instances[0]["tasks"].as_array().unwrap().len(),
        2 * PARTITIONS as usize
    );
    let (_, body) = get(addr, "/stores/length-counts/instances").await;
    assert_eq!(body["instances"].as_array().unwrap().len(), 1);
    let stores = app.all_metadata_for_store("word-counts").unwrap();
    assert_eq!(stores.len(), 1);
    assert!(stores[0]
        .state_store_names
        .contains(&"word-counts".to_owned()));
    // The instance's partitions: the input's and the repartition topic's.
    assert_eq!(stores[0].topic_partitions.len(), 2 * PARTITIONS as usize);

    http.shutdown().await;
    app.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restoring_store_answers_503_with_its_progress() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker().await;
    let input = input(2_000);
    let counts = word_counts(&input);
    produce(&broker, &input).await;
    // A first run fills the changelogs, then stops.
    let mut first = start_app(
        &broker,
        config("restore", &dir.path().join("a"), "127.0.0.1:0"),
    )
    .await;
    let http = HttpServer::start(&first).await.unwrap();
    wait_for("every count", || has_counts(http.local_addr(), &counts)).await;
    http.shutdown().await;
    first.close().await.unwrap();

    // A second instance on an empty state dir restores them, held.
    let mut app = streams_core::StreamsApp::new(
        topology(),
        config("restore", &dir.path().join("b"), "127.0.0.1:0"),
        broker.clone(),
    );
    app.hold_restoration_for_tests(true);
    app.start().await.unwrap();
    let http = HttpServer::start(&app).await.unwrap();
    let addr = http.local_addr();
    wait_for("the tasks to restore", || async {
        let (status, body) = get(addr, "/stores").await;
        status == StatusCode::OK
            && body["stores"].as_array().unwrap().iter().any(|s| {
                s["name"] == "word-counts"
                    && s["tasks"].as_array().unwrap().len() == PARTITIONS as usize
                    && s["tasks"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(|t| t["state"] == "restoring" && t["total"].as_u64().is_some())
            })
    })
    .await;
    let (status, body) = get(addr, "/stores/word-counts/keys/the").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let progress = body["restoring"].as_array().unwrap();
    assert_eq!(progress.len(), 1);
    assert_eq!(progress[0]["store"], "word-counts");
    assert_eq!(progress[0]["restored"], 0);
    assert!(progress[0]["total"].as_u64().unwrap() > 0, "{body}");
    let (status, body) = get(addr, "/stores/word-counts?limit=10").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(
        body["restoring"].as_array().unwrap().len(),
        PARTITIONS as usize
    );
    let (status, _) = get(addr, "/stores/windowed-counts/keys/fox/windows").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    // Released, the store restores and answers.
    app.hold_restoration_for_tests(false);
    wait_for("the restored counts", || has_counts(addr, &counts)).await;
    assert!(app.restored_records() > 0);
    http.shutdown().await;
    app.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_answer_every_key_through_either() {
    let broker = broker().await;
    let input = input(3_000);
    let counts = word_counts(&input);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (server_a, server_b) = (free_address(), free_address());
    let mut a = start_app(&broker, config("pair", dir_a.path(), &server_a)).await;
    let http_a = HttpServer::start(&a).await.unwrap();
    let mut b = start_app(&broker, config("pair", dir_b.path(), &server_b)).await;
    let http_b = HttpServer::start(&b).await.unwrap();
    produce(&broker, &input).await;
    let (addr_a, addr_b) = (http_a.local_addr(), http_b.local_addr());

    // Both instances own tasks, and each knows the other's.
    wait_for("the tasks to be split and published", || async {
        let split = !a.local_tasks().is_empty() && !b.local_tasks().is_empty();
        let known = |app: &streams_core::StreamsApp| {
            app.all_metadata().is_ok_and(|all| {
                all.len() == 2
                    && all.iter().map(|m| m.tasks.len()).sum::<usize>() == 2 * PARTITIONS as usize
            })
        };
        split && known(&a) && known(&b)
    })
    .await;
    wait_for("every count through A", || has_counts(addr_a, &counts)).await;
    wait_for("every count through B", || has_counts(addr_b, &counts)).await;

    let host_a = HostInfo::parse(&server_a).unwrap();
    let host_b = HostInfo::parse(&server_b).unwrap();
    let mut owned = (0, 0);
    for (word, count) in &counts {
        let meta_a = a.query_metadata_for_key("word-counts", word).unwrap();
        let meta_b = b.query_metadata_for_key("word-counts", word).unwrap();
        assert_eq!(meta_a.partition, meta_b.partition);
        assert_eq!(meta_a.active_host, meta_b.active_host, "{word}");
        assert_ne!(
            meta_a.local, meta_b.local,
            "{word}: exactly one instance owns it"
        );
        let owner = meta_a.active_host.clone().unwrap();
        if owner == host_a {
            owned.0 += 1;
            assert!(meta_a.local);
        } else {
            assert_eq!(owner, host_b);
            owned.1 += 1;
        }
        for addr in [addr_a, addr_b] {
            let (status, body) = get(addr, &format!("/stores/word-counts/keys/{word}")).await;
            assert_eq!(status, StatusCode::OK, "{word} through {addr}: {body}");
            assert_eq!(body["value"].as_i64(), Some(*count));
            // The owner answered, whichever instance was asked.
            assert_eq!(
                body["served_by"],
                owner.to_string(),
                "{word} through {addr}"
            );
        }
        let (status, body) = get(
            addr_a,
            &format!("/stores/windowed-counts/keys/{word}/windows"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["served_by"], owner.to_string());
        let total: i64 = body["windows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["value"].as_i64().unwrap())
            .sum();
        assert_eq!(total, *count);
    }
    assert!(
        owned.0 > 0 && owned.1 > 0,
        "each instance owns some words: {owned:?}"
    );
    // An unknown key is answered 404 by its owner, through either.
    for addr in [addr_a, addr_b] {
        assert_eq!(
            get(addr, "/stores/word-counts/keys/unseen-word").await.0,
            StatusCode::NOT_FOUND
        );
    }
    // Each instance scans its own tasks; together they hold the store.
    let (from_a, _) = all_pages(addr_a, "word-counts", 4, "").await;
    let (from_b, _) = all_pages(addr_b, "word-counts", 4, "").await;
    let mut together = entries_to_map(&from_a);
    let from_b = entries_to_map(&from_b);
    assert!(together.keys().all(|k| !from_b.contains_key(k)));
    together.extend(from_b);
    assert_eq!(
        together,
        counts.clone().into_iter().collect::<HashMap<_, _>>()
    );
    let (status, body) = get(addr_a, "/stores/word-counts/instances").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["instances"].as_array().unwrap().len(), 2);

    http_b.shutdown().await;
    b.close().await.unwrap();
    http_a.shutdown().await;
    a.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_required_when_one_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker().await;
    let input = input(200);
    produce(&broker, &input).await;
    let config = config("token", dir.path(), "127.0.0.1:0").with_http_auth_token("s3cret-token");
    let mut app = start_app(&broker, config).await;
    let http = HttpServer::start(&app).await.unwrap();
    let addr = http.local_addr();
    for path in [
        "/stores",
        "/stores/word-counts/keys/the",
        "/instances",
        "/nothing",
    ] {
        let (status, body) = get(addr, path).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
        assert_eq!(
            get_with(addr, path, Some("wrong")).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    wait_for("a count with the token", || async {
        get_with(addr, "/stores/word-counts/keys/the", Some("s3cret-token"))
            .await
            .0
            == StatusCode::OK
    })
    .await;
    let (status, _) = get_with(addr, "/stores", Some("s3cret-token")).await;
    assert_eq!(status, StatusCode::OK);
    http.shutdown().await;
    app.close().await.unwrap();
}

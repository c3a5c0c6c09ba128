//! Opt-in per-collection collectors (`top`, `$collStats`, `$indexStats`): the
//! pure parsers on the recorded `top` reply and odd input, then end to end
//! through the replay server with the flags on and off.

use mongodb::bson::{doc, Bson, Document};
use tenderly_exporter::collectors::mongodb::bson_num::Num;
use tenderly_exporter::collectors::mongodb::collstats::{self, CollectionStats, Namespace, MAX_INDEXES_PER_COLLECTION};
use tenderly_exporter::metrics::Exposition as Encoded;

use crate::support::exporter::TestExporter;
use crate::support::mongo_replay::{app_indexes, fixture_doc, ReplayServer, Scenario, APP_COLLECTIONS, APP_TOP};

fn ns(db: &str, coll: &str) -> Namespace {
    Namespace { db: db.into(), collection: coll.into() }
}

fn top_fixture() -> Document {
    fixture_doc("top-shardsvr-unknown.json").expect("top fixture")
}

#[test]
fn top_fixture_parses_user_namespaces_only_busiest_first() {
    let entries = collstats::parse_top(&top_fixture());
    let names: Vec<String> = entries.iter().map(|e| format!("{}.{}", e.ns.db, e.ns.collection)).collect();
    // admin/config/local and the `$cmd` pseudo-namespaces are skipped; total.time: bar 70838 > foo 21215 > orders 17424.
    assert_eq!(names, ["test.bar", "test.foo", "test.orders"]);
    let orders = &entries[2];
    assert_eq!(orders.total_micros, 17_424.0);
    let op = |t: &str| orders.ops.iter().find(|(l, _)| *l == t).map(|(_, p)| (p.time_micros, p.count));
    assert_eq!(op("insert"), Some((Num::Int(738), Num::Int(2))));
    assert_eq!(op("commands"), Some((Num::Int(16_686), Num::Int(1))));
    assert_eq!(op("queries"), Some((Num::Int(0), Num::Int(0))));
    let write = orders.locks.iter().find(|(l, _)| *l == "write").map(|(_, p)| p.time_micros);
    assert_eq!(write, Some(Num::Int(738)));

    let mut out = Encoded::new();
    collstats::encode(&CollectionStats { top: entries, ..CollectionStats::default() }, &mut out);
    let labels = [("db", "test"), ("collection", "bar"), ("type", "commands")];
    assert_eq!(out.get("mongodb_top_time_seconds_total", &labels).map(|v| v.as_f64()), Some(0.06796));
    assert_eq!(out.get("mongodb_top_operations_total", &labels).map(|v| v.as_f64()), Some(1.0));
    let lock = [("db", "test"), ("collection", "foo"), ("lock", "write")];
    assert_eq!(out.get("mongodb_top_lock_time_seconds_total", &lock).map(|v| v.as_f64()), Some(0.003943));
    // 3 namespaces × 6 types; never an internal namespace.
    assert_eq!(out.sample_count("mongodb_top_time_seconds_total"), 18);
}

#[test]
fn selection_is_capped_and_ranked_by_top() {
    let entries = collstats::parse_top(&top_fixture());
    let chosen = collstats::select(None, Some(&entries), 2);
    assert_eq!(chosen, vec![ns("test", "bar"), ns("test", "foo")]);
    // Listed collections not in `top` follow by name; names `top` knows but the list lacks are dropped.
    let listed = [ns("test", "a"), ns("test", "foo"), ns("test", "zz")];
    assert_eq!(
        collstats::select(Some(&listed), Some(&entries), 10),
        vec![ns("test", "foo"), ns("test", "a"), ns("test", "zz")]
    );
    assert_eq!(collstats::select(Some(&listed), None, 1), vec![ns("test", "a")]);
}

#[test]
fn unsafe_and_internal_names_are_skipped() {
    let reply = doc! {"cursor": {"id": 0i64, "firstBatch": [
        {"name": "ok_name-1.v2", "type": "collection"},
        {"name": "system.views", "type": "collection"},
        {"name": "with space", "type": "collection"},
        {"name": "ünïcode", "type": "collection"},
        {"name": "a_view", "type": "view"},
        {"name": "x".repeat(collstats::MAX_COLLECTION_LABEL_BYTES + 1)},
        {"name": 7},
        "not a document",
    ]}};
    assert_eq!(collstats::parse_list_collections("app", &reply), vec![ns("app", "ok_name-1.v2")]);
    assert!(collstats::parse_list_collections("admin", &reply).is_empty(), "internal database");
}

#[test]
fn index_stats_are_bounded_and_summed_over_shards() {
    let coll = ns("app", "orders");
    let mut docs: Vec<Document> =
        (0..30).map(|i| doc! {"name": format!("i{i:02}"), "accesses": {"ops": i64::from(i)}}).collect();
    docs.push(doc! {"name": "i00", "shard": "s2", "accesses": {"ops": 5}});
    docs.push(doc! {"name": "bad name", "accesses": {"ops": 5}});
    docs.push(doc! {"name": "neg", "accesses": {"ops": -5}});
    let stats = collstats::parse_index_stats(&coll, &docs);
    assert_eq!(stats.len(), MAX_INDEXES_PER_COLLECTION);
    assert_eq!(stats[0].index, "i00");
    assert_eq!(stats[0].accesses, Num::Int(5));
    assert!(stats.iter().all(|s| s.index != "bad name" && s.index != "neg"));
}

#[test]
fn coll_stats_sum_shards_and_need_storage_stats() {
    let coll = ns("app", "orders");
    let shard = |n: i64| doc! {"storageStats": {"count": n, "size": 10 * n, "storageSize": 4096, "totalIndexSize": 8192, "nindexes": 2}};
    let stats = collstats::parse_coll_stats(&coll, &[shard(3), shard(4)]).expect("stats");
    assert_eq!(stats.documents, Some(Num::Int(7)));
    assert_eq!(stats.size_bytes, Some(Num::Int(70)));
    assert_eq!(stats.storage_size_bytes, Some(Num::Int(8192)));
    assert_eq!(stats.indexes, Some(Num::Int(2)));
    assert_eq!(collstats::parse_coll_stats(&coll, &[doc! {"ok": 0}]), None);
}

#[test]
fn malformed_input_never_panics() {
    let odd: Vec<Document> = vec![
        doc! {},
        doc! {"totals": 1},
        doc! {"totals": {"note": "x", "a.b": 1, "a.c": {"total": "x"}, "a.d": {"total": {"time": f64::NAN, "count": -1}}, ".": {}, "a.": {}}},
        doc! {"cursor": {"firstBatch": 3}},
        doc! {"storageStats": {"count": "many", "size": Bson::Null, "nindexes": f64::INFINITY}},
        doc! {"name": Bson::Null, "accesses": "x"},
        doc! {"name": "i", "accesses": {"ops": i64::MAX}},
        doc! {"name": "i", "accesses": {"ops": i64::MAX}},
    ];
    let coll = ns("app", "c");
    for d in &odd {
        let top = collstats::parse_top(d);
        let _ = collstats::parse_list_collections("app", d);
        let stats = CollectionStats {
            top,
            collections: collstats::parse_coll_stats(&coll, std::slice::from_ref(d)).into_iter().collect(),
            indexes: collstats::parse_index_stats(&coll, &odd),
        };
        let mut out = Encoded::new();
        collstats::encode(&stats, &mut out);
        assert!(out.render().is_ok());
    }
}

fn replay_with(flags: &[&str]) -> (ReplayServer, TestExporter) {
    let replay = ReplayServer::start(Scenario::Primary).expect("replay server starts");
    let uri = replay.uri();
    let mut args = vec!["--mongodb.uri", uri.as_str()];
    args.extend_from_slice(flags);
    let exporter = TestExporter::start(&args, &[]);
    (replay, exporter)
}

#[test]
fn flags_on_export_synthesized_values() {
    let (_replay, exporter) =
        replay_with(&["--collector.mongodb.collstats", "--collector.mongodb.indexstats", "--collector.mongodb.top"]);
    let m = exporter.scrape("/metrics");
    for collector in ["mongodb_top", "mongodb_collstats", "mongodb_indexstats"] {
        let labels = [("target", "mongodb"), ("collector", collector)];
        assert_eq!(m.expect("tenderly_exporter_collector_success", &labels), 1.0, "{collector}: {}", m.text);
    }
    for (name, count, size, storage, index_size, nindexes) in APP_COLLECTIONS {
        let l = [("db", "tenderly"), ("collection", name)];
        assert_eq!(m.expect("mongodb_collection_documents", &l), count as f64, "{name}");
        assert_eq!(m.expect("mongodb_collection_size_bytes", &l), size as f64);
        assert_eq!(m.expect("mongodb_collection_storage_size_bytes", &l), storage as f64);
        assert_eq!(m.expect("mongodb_collection_index_size_bytes", &l), index_size as f64);
        assert_eq!(m.expect("mongodb_collection_indexes", &l), f64::from(nindexes));
        for index in app_indexes("tenderly", name) {
            let index_name = index.get_str("name").expect("name");
            let ops = index.get_document("accesses").and_then(|a| a.get_i64("ops")).expect("ops");
            let l = [("db", "tenderly"), ("collection", name), ("index", index_name)];
            assert_eq!(m.expect("mongodb_index_accesses_total", &l), ops as f64);
        }
    }
    assert!(m.value("mongodb_collection_documents", &[("collection", "upcoming")]).is_none(), "views skipped");
    let (_, qt, qc, it, _) = APP_TOP[0];
    let l = [("db", "tenderly"), ("collection", "appointments"), ("type", "queries")];
    assert_eq!(m.expect("mongodb_top_time_seconds_total", &l), qt as f64 / 1e6);
    assert_eq!(m.expect("mongodb_top_operations_total", &l), qc as f64);
    let l = [("db", "tenderly"), ("collection", "appointments"), ("lock", "write")];
    assert_eq!(m.expect("mongodb_top_lock_time_seconds_total", &l), it as f64 / 1e6);
    // `top` also lists test.* (from the recording): not listed by listCollections, so not exported.
    assert!(m.value("mongodb_top_operations_total", &[("db", "test")]).is_none(), "{}", m.text);
}

#[test]
fn collection_cap_prefers_the_busiest() {
    let (_replay, exporter) =
        replay_with(&["--collector.mongodb.collstats", "--collector.mongodb.top", "--mongodb.max-collections", "1"]);
    let m = exporter.scrape("/metrics");
    assert_eq!(m.count("mongodb_collection_documents"), 1, "{}", m.text);
    assert!(m.value("mongodb_collection_documents", &[("collection", "appointments")]).is_some());
    assert!(m.value("mongodb_top_operations_total", &[("collection", "patients")]).is_none());
}

#[test]
fn flags_off_send_no_per_collection_command() {
    let (replay, exporter) = replay_with(&[]);
    let m = exporter.scrape("/metrics");
    assert_eq!(m.expect("mongodb_up", &[]), 1.0);
    let seen = replay.commands_seen();
    for forbidden in ["listCollections", "top"] {
        assert!(!seen.iter().any(|(c, _)| c == forbidden), "{forbidden} sent: {seen:?}");
    }
    assert!(replay.commands_received("aggregate").iter().all(|c| {
        let first = c.get_array("pipeline").ok().and_then(|p| p.first()).and_then(Bson::as_document);
        !first.is_some_and(|s| s.contains_key("$indexStats"))
    }));
    assert_eq!(m.count("mongodb_collection_documents"), 0);
    assert_eq!(m.count("mongodb_top_time_seconds_total"), 0);
}

#[test]
fn mongos_skips_top_but_reads_collections() {
    let replay = ReplayServer::start(Scenario::Mongos).expect("replay server starts");
    let uri = replay.uri();
    let exporter =
        TestExporter::start(&["--mongodb.uri", &uri, "--collector.mongodb.top", "--collector.mongodb.collstats"], &[]);
    let m = exporter.scrape("/metrics");
    assert!(!replay.commands_seen().iter().any(|(c, _)| c == "top"));
    // Skipped (not applicable) is not a failure: no success series at all.
    assert!(m.value("tenderly_exporter_collector_success", &[("collector", "mongodb_top")]).is_none());
    assert_eq!(m.expect("tenderly_exporter_collector_success", &[("collector", "mongodb_collstats")]), 1.0);
    assert!(m.value("mongodb_collection_documents", &[("collection", "appointments")]).is_some(), "{}", m.text);
}

//! The floor for the MongoDB benchmark: the same commands the exporter sends
//! per scrape of a replica-set primary, sent with the same driver and the same
//! concurrency, with no parsing, encoding or HTTP. `scripts/bench-mongodb.sh`
//! runs it next to the exporter against the replay server.
//!
//! ```text
//! cargo run --release --example mongo_floor -- mongodb://127.0.0.1:PORT/?directConnection=true 300
//! ```
//! Prints `median_ms p99_ms cpu_ms_per_iteration` on one line.

use std::time::Instant;

use mongodb::bson::{doc, Document};
use mongodb::{Client, Database};

async fn run(db: &Database, command: Document) {
    // Errors are part of the floor too (e.g. a command a role refuses).
    let _ = db.run_command(command).await;
}

async fn one_scrape(client: &Client) {
    let admin = client.database("admin");
    let local = client.database("local");
    let app = client.database("tenderly");
    run(&admin, doc! {"hello": 1}).await;
    run(&admin, doc! {"serverStatus": 1}).await;
    let edge =
        |d: i32| doc! {"find": "oplog.rs", "filter": {}, "sort": {"$natural": d}, "limit": 1, "singleBatch": true};
    tokio::join!(
        run(&admin, doc! {"replSetGetStatus": 1}),
        run(&admin, doc! {"replSetGetConfig": 1}),
        run(&local, edge(1)),
        run(&local, edge(-1)),
        run(&local, doc! {"collStats": "oplog.rs"}),
        run(
            &admin,
            doc! {"aggregate": 1, "pipeline": [{"$currentOp": {"allUsers": true}}, {"$match": {"active": true}}], "cursor": {}}
        ),
        run(&admin, doc! {"listDatabases": 1, "nameOnly": true, "authorizedDatabases": true}),
    );
    tokio::join!(
        run(&admin, doc! {"dbStats": 1}),
        run(&app, doc! {"dbStats": 1}),
        run(&app, doc! {"profile": -1}),
        run(&app, doc! {"find": "system.profile", "filter": {}, "sort": {"ts": 1}, "limit": 1000, "singleBatch": true}),
    );
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let mut args = std::env::args().skip(1);
    let uri = args.next().expect("usage: mongo_floor URI [ITERATIONS]");
    let iterations: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(300);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let client = Client::with_uri_str(&uri).await.expect("client");
        for _ in 0..20 {
            one_scrape(&client).await;
        }
        let cpu0 = cpu_seconds();
        let mut times = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let t = Instant::now();
            one_scrape(&client).await;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            // Same spacing as the benchmark's scrapes, so caches are as cold.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let cpu = (cpu_seconds() - cpu0) * 1000.0 / iterations as f64;
        times.sort_by(f64::total_cmp);
        let pick = |q: f64| times[((times.len() as f64 * q).ceil() as usize).saturating_sub(1).min(times.len() - 1)];
        println!("{:.3} {:.3} {:.3}", pick(0.5), pick(0.99), cpu);
    });
}

//! The benchmark runner: `cargo bench --bench bench` (add `-- --quick` for the small, single-run
//! mode CI uses). Every figure is measured against a baseline in the same run, on the same
//! machine, and reported as a ratio; the table goes to stdout and a JSON copy to
//! `target/bench-results.json` (or `--json PATH`). Loopback only; every loop is bounded.

#[path = "../../tests/support/mod.rs"]
mod support;

mod common;
mod criteria;
mod feel_expr;
mod imap;
mod in_flight;
mod inbound;
mod pop3;
mod smtp;
mod worker;

use common::Row;

/// The allocator the worker binary uses, so that the in-process rows measure the worker as it
/// is deployed.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn print_table(rows: &[Row]) {
    println!("| scenario | measure | ours | baseline | unit | ratio | goal | met |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in rows {
        let fmt = |v: f64| {
            if v >= 100.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.scenario,
            r.measure,
            fmt(r.ours),
            r.baseline.map_or("—".into(), fmt),
            r.unit,
            r.ratio.map_or("—".into(), |x| format!("{x:.2}x")),
            r.goal,
            match r.met {
                Some(true) => "yes",
                Some(false) => "no",
                None => "—",
            }
        );
    }
}

fn main() {
    email_connector::allocator::return_freed_memory_at_once();
    let args: Vec<String> = std::env::args().collect();
    if let (Some("--noop-worker"), Some(url)) = (args.get(1).map(String::as_str), args.get(2)) {
        worker::noop_worker_main(url);
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let json_path = args
        .iter()
        .position(|a| a == "--json")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/target/bench-results.json").to_string()
        });
    let only: Vec<String> = args
        .iter()
        .skip(1)
        .filter(|a| !a.starts_with("--") && !a.ends_with(".json"))
        .cloned()
        .collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let runs = if quick { 1 } else { 3 };
    let samples = if quick { 3 } else { 15 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Only the mail scenarios need the mail testbed.
    let mail = ["worker", "smtp", "imap", "pop3", "inbound"]
        .iter()
        .any(|g| wanted(g))
        || only.iter().any(|o| o == "read-memory");
    let rows = runtime.block_on(async {
        if mail {
            support::testbed();
        }
        let mut rows = Vec::new();
        if wanted("criteria") {
            criteria::scenarios(quick, samples, &mut rows);
        }
        if wanted("feel") {
            feel_expr::scenarios(quick, samples, &mut rows);
        }
        if wanted("worker") {
            worker::scenarios(quick, runs, &mut rows).await;
            worker::instructions(quick, &mut rows).await;
        }
        if wanted("smtp") {
            smtp::scenarios(quick, runs, &mut rows).await;
        }
        if wanted("imap") {
            imap::scenarios(quick, samples, &mut rows).await;
        }
        if wanted("pop3") {
            pop3::scenarios(quick, samples, &mut rows).await;
        }
        if wanted("inbound") {
            inbound::scenarios(quick, &mut rows).await;
        }
        // Only when named: the read-memory rows alone (the `imap` set includes them).
        if only.iter().any(|o| o == "read-memory") {
            imap::read_memory(quick, &mut rows).await;
        }
        rows
    });
    print_table(&rows);
    let report = serde_json::json!({
        "quick": quick,
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "rows": rows,
    });
    if let Ok(text) = serde_json::to_string_pretty(&report) {
        let _ = std::fs::write(&json_path, text);
        println!("\nJSON written to {json_path}");
    }
}

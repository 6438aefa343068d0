//! Wire compatibility of the test gateway with Camunda's own CLI, zbctl: if zbctl can activate,
//! complete, fail and throw against it, the gateway speaks the real protocol, and so does the
//! worker's client generated from the same proto.

use crate::support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::gateway::{Outcome, TestGateway};

/// zbctl from npm (the package ships a static Linux binary), installed from the committed
/// lockfile on first use. Installation failure fails the test.
fn zbctl() -> PathBuf {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/zbctl"));
    let binary = dir.join("node_modules/zbctl/bin/zbctl-cli.linux");
    if !binary.exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(&dir)
            .status()
            .expect("npm is needed to install zbctl");
        assert!(status.success(), "npm ci for zbctl failed");
    }
    assert!(binary.exists(), "zbctl binary missing after install");
    binary
}

async fn run(address: &str, args: &[&str]) -> (bool, String) {
    let binary = zbctl();
    let mut all = vec![
        "--insecure".to_string(),
        "--address".to_string(),
        address.to_string(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    let output = tokio::task::spawn_blocking(move || {
        Command::new(binary)
            .args(&all)
            .env_remove("ZEEBE_ADDRESS")
            .output()
    })
    .await
    .expect("join")
    .expect("run zbctl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn key_of(job: &Value) -> i64 {
    match &job["key"] {
        Value::String(s) => s.parse().expect("numeric key"),
        other => other.as_i64().expect("key"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zbctl_activates_completes_fails_and_throws_against_the_test_gateway() {
    let gateway = TestGateway::start().await;
    let address = gateway.address.to_string();

    let (ok, text) = run(&address, &["status"]).await;
    assert!(ok && text.contains("8.8.0-test"), "{text}");

    let keys: Vec<i64> = (0..3)
        .map(|i| {
            gateway.create_job(
                "zbctl-check",
                json!({ "n": i }),
                json!({ "resultVariable": "r" }),
                3,
            )
        })
        .collect();
    let (ok, text) = run(
        &address,
        &[
            "activate",
            "jobs",
            "zbctl-check",
            "--maxJobsToActivate",
            "3",
            "--worker",
            "zbctl-test",
        ],
    )
    .await;
    assert!(ok, "{text}");
    let json_start = text.find('{').expect("JSON output");
    let activated: Value = serde_json::from_str(&text[json_start..]).expect("zbctl prints JSON");
    let jobs = activated["jobs"].as_array().expect("jobs");
    let mut got: Vec<i64> = jobs.iter().map(key_of).collect();
    got.sort_unstable();
    assert_eq!(got, keys);
    assert_eq!(jobs[0]["type"], "zbctl-check");
    assert_eq!(jobs[0]["worker"], "zbctl-test");
    assert_eq!(jobs[0]["retries"], 3);

    let (ok, text) = run(
        &address,
        &[
            "complete",
            "job",
            &keys[0].to_string(),
            "--variables",
            r#"{"a":1}"#,
        ],
    )
    .await;
    assert!(ok, "{text}");
    assert_eq!(
        gateway.wait_outcome(keys[0], Duration::from_secs(5)).await,
        Outcome::Completed {
            variables: json!({ "a": 1 })
        }
    );

    let (ok, text) = run(
        &address,
        &[
            "fail",
            "job",
            &keys[1].to_string(),
            "--retries",
            "2",
            "--errorMessage",
            "boom",
            "--retryBackoff",
            "5s",
        ],
    )
    .await;
    assert!(ok, "{text}");
    assert_eq!(
        gateway.wait_outcome(keys[1], Duration::from_secs(5)).await,
        Outcome::Failed {
            retries: 2,
            message: "boom".into(),
            backoff_ms: 5000
        }
    );

    let (ok, text) = run(
        &address,
        &[
            "throwError",
            "job",
            &keys[2].to_string(),
            "--errorCode",
            "EMAIL_NOT_FOUND",
            "--errorMessage",
            "gone",
        ],
    )
    .await;
    assert!(ok, "{text}");
    assert_eq!(
        gateway.wait_outcome(keys[2], Duration::from_secs(5)).await,
        Outcome::Thrown {
            code: "EMAIL_NOT_FOUND".into(),
            message: "gone".into()
        }
    );

    // A job that is no longer activated cannot be completed twice.
    let (ok, _) = run(&address, &["complete", "job", &keys[0].to_string()]).await;
    assert!(!ok, "completing a finished job must fail");
}

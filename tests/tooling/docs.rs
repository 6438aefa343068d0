//! The operations reference (`docs/operations.md`) is generated from the operations' input
//! types: the committed file is what the code generates, `email-connector docs --check` says so
//! (and fails, naming the file, when it is not), and every link in the repository's documents
//! reaches a file and heading that exist.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use email_connector::docs::{self, anchor};
use email_connector::registry::Registry;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn connector(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_email-connector"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run email-connector")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "email-connector-docs-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

#[test]
fn the_committed_reference_is_what_the_code_generates() {
    let registry = Registry::standard("email", None, &Default::default()).expect("registry");
    for file in docs::generate(&registry) {
        let path = root().join("docs").join(&file.file_name);
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == file.text,
            "{} is out of date: run `cargo run -- docs --out docs`",
            path.display()
        );
    }
    let check = connector(&["docs", "--check"]);
    assert!(
        check.status.success(),
        "docs --check: {}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn drift_fails_the_check_naming_the_file() {
    let dir = scratch("drift");
    let out = dir.to_str().expect("utf-8 path");
    let missing = connector(&["docs", "--check", "--out", out]);
    assert!(!missing.status.success(), "a missing file passed the check");

    let written = connector(&["docs", "--out", out]);
    assert!(written.status.success(), "{written:?}");
    assert!(
        connector(&["docs", "--check", "--out", out])
            .status
            .success()
    );

    let file = dir.join(docs::OPERATIONS_FILE);
    let text = std::fs::read_to_string(&file).expect("written reference");
    std::fs::write(
        &file,
        text.replacen("| `server.host` |", "| `server.hots` |", 1),
    )
    .expect("change the reference");
    let drifted = connector(&["docs", "--check", "--out", out]);
    let stderr = String::from_utf8_lossy(&drifted.stderr);
    assert_eq!(drifted.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("out of date"), "{stderr}");
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    assert!(
        stderr.contains(&format!("email-connector docs --out {out}")),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The lines of a Markdown file outside fenced code (where `#` and `](` mean nothing).
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|line| {
            if line.starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// The headings of a Markdown file as anchors.
fn anchors(text: &str) -> Vec<String> {
    prose(text)
        .into_iter()
        .filter(|line| line.starts_with('#'))
        .map(|line| anchor(line.trim_start_matches('#')))
        .collect()
}

/// The link targets of a Markdown file (`[text](target)`).
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose(text) {
        for (i, _) in line.match_indices("](") {
            if let Some(end) = line[i + 2..].find(')') {
                out.push(line[i + 2..i + 2 + end].to_string());
            }
        }
    }
    out
}

/// Every relative link in the repository's documents names a file that exists and, for a
/// Markdown file, a heading it has: the README's sections moved to `docs/`, and a link left
/// pointing at the old place would otherwise rot unnoticed.
#[test]
fn every_link_in_the_documents_reaches_its_target() {
    let mut documents: Vec<PathBuf> = ["README.md", "RELIABILITY.md", "BENCHMARKS.md"]
        .iter()
        .map(|f| root().join(f))
        .collect();
    documents.push(root().join("helm/email-connector/README.md"));
    documents.push(root().join("element-templates/README.md"));
    documents.push(root().join("crates/feel/README.md"));
    for entry in std::fs::read_dir(root().join("docs")).expect("docs/") {
        let path = entry.expect("docs entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            documents.push(path);
        }
    }
    let mut broken = Vec::new();
    for document in &documents {
        let text = std::fs::read_to_string(document).expect("document");
        for link in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (file, fragment) = link.split_once('#').unwrap_or((&link, ""));
            let target: &Path = if file.is_empty() {
                document
            } else {
                &document.parent().expect("folder").join(file)
            };
            if !target.exists() {
                broken.push(format!("{}: {link} (no such file)", document.display()));
                continue;
            }
            if !fragment.is_empty() && target.extension().is_some_and(|e| e == "md") {
                let headings = anchors(&std::fs::read_to_string(target).expect("target"));
                if !headings.iter().any(|a| a == fragment) {
                    broken.push(format!("{}: {link} (no such heading)", document.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The README stays a pitch, a quick start and links.
#[test]
fn the_readme_is_short() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let lines = readme.lines().count();
    assert!(
        lines <= 300,
        "README.md has {lines} lines; move detail to docs/"
    );
}

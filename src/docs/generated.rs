//! Files the build generates and the repository keeps (the element templates, the operations
//! reference): written by one command, and compared by the same command with `--check`, so a
//! checked-in copy that drifted from the code fails CI instead of misleading a reader.

use std::path::Path;

/// One generated file: its name inside the output folder and its full text.
pub struct Generated {
    pub file_name: String,
    pub text: String,
}

/// Writes `files` into `out` (created when missing) and returns the paths written; with
/// `check`, writes nothing and fails when a file is missing or differs, naming each such file
/// and the command (`email-connector <command> --out <out>`) that brings them up to date.
pub fn write_or_check(
    out: &str,
    files: &[Generated],
    check: bool,
    command: &str,
) -> Result<Vec<String>, String> {
    let dir = Path::new(out);
    if check {
        let stale: Vec<String> = files
            .iter()
            .map(|file| dir.join(&file.file_name))
            .zip(files)
            .filter(|(path, file)| {
                std::fs::read_to_string(path).ok().as_deref() != Some(file.text.as_str())
            })
            .map(|(path, _)| path.display().to_string())
            .collect();
        return if stale.is_empty() {
            Ok(Vec::new())
        } else {
            Err(format!(
                "out of date (run `email-connector {command} --out {out}`): {}",
                stale.join(", ")
            ))
        };
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {out}: {e}"))?;
    let mut written = Vec::new();
    for file in files {
        let path = dir.join(&file.file_name);
        std::fs::write(&path, &file.text)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "email-connector-generated-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_written_file_passes_the_check_and_a_changed_one_is_named() {
        let dir = scratch("check");
        let out = dir.to_str().unwrap();
        let files = [
            Generated {
                file_name: "a.md".into(),
                text: "one\n".into(),
            },
            Generated {
                file_name: "b.md".into(),
                text: "two\n".into(),
            },
        ];
        assert!(write_or_check(out, &files, true, "docs").is_err());
        assert_eq!(write_or_check(out, &files, false, "docs").unwrap().len(), 2);
        assert!(
            write_or_check(out, &files, true, "docs")
                .unwrap()
                .is_empty()
        );
        std::fs::write(dir.join("b.md"), "changed\n").unwrap();
        let e = write_or_check(out, &files, true, "docs").unwrap_err();
        assert!(e.contains("b.md"), "{e}");
        assert!(!e.contains("a.md"), "{e}");
        assert!(
            e.contains(&format!("email-connector docs --out {out}")),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

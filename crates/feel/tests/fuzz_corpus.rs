//! The fuzz target's seed corpus (`fuzz/corpus/feel/`) and every input a fuzz run ever found
//! failing (`fuzz/regressions/feel/`, added with its fix) go through the target's checks on
//! the stable toolchain in every `cargo test`.

use std::path::Path;

use feel::Expression;

#[test]
fn fuzz_inputs_pass_the_targets_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut seen = 0;
    let mut evaluated = 0;
    for dir in ["corpus/feel", "regressions/feel"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let data = std::fs::read(entry.path()).expect("read a fuzz input");
            feel::check_any_input(&data);
            seen += 1;
            let text = data.split(|b| *b == 0).next().unwrap_or_default();
            if let Ok(text) = std::str::from_utf8(text)
                && Expression::parse(text).is_ok()
            {
                evaluated += 1;
            }
        }
    }
    assert!(seen >= 20, "the seed corpus is there ({seen})");
    assert!(evaluated >= 20, "the seeds parse ({evaluated})");
}

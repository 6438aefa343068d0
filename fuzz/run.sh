#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 30), starting from the committed seed
# corpus in fuzz/corpus/<target> (copied, so the run leaves the repository clean). A crash
# stops the run with the input saved under fuzz/artifacts/<target>/: add it to the target's
# regression test (tests/faults/fuzz_regressions.rs) and to the seed corpus, then fix.
#
#   fuzz/run.sh            30 s per target (CI)
#   fuzz/run.sh 3600       an hour per target
#   fuzz/run.sh 600 criteria imap_response    only these targets
#
# Needs the nightly toolchain and cargo-fuzz (installed here when missing).
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-30}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(criteria imap_response imap_framing pop3_response pop3_framing smtp_reply message_json feel)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo +nightly fuzz build -O >/dev/null
for target in "${targets[@]}"; do
    work=target/corpus-run/$target
    rm -rf "$work" && mkdir -p "$work"
    cp corpus/"$target"/* "$work"/
    echo "== fuzz $target for ${seconds}s"
    cargo +nightly fuzz run -O "$target" "$work" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 2>&1 \
        | grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)|panicked|ERROR|SUMMARY|Test unit written' || true
    if [ -n "$(ls -A artifacts/"$target" 2>/dev/null)" ]; then
        echo "fuzz $target found a failing input: see fuzz/artifacts/$target/" >&2
        exit 1
    fi
done

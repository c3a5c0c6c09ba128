#!/usr/bin/env bash
# Coverage-guided fuzzing of everything that reads input we do not control
# (crate in fuzz/, cargo-fuzz + libFuzzer + AddressSanitizer):
#
#   redis_info     INFO / CLUSTER INFO reply -> parse, every typed view, encode, render
#   redis_kv_list  `k=v,...` lists and the number parsers
#   mongodb_bson   up to 8 BSON documents -> every MongoDB parser, encode, render
#   mongodb_bson_depth  any bytes, also wrapped thousands of levels deep ->
#                  the iterative depth/size guard (bson_guard) and the conversion it allows
#   config_file    targets YAML -> config::parse_file
#
# Usage:
#   scripts/fuzz.sh                          # CI: 30 s per target
#   scripts/fuzz.sh --seconds 600            # long run: 10 minutes per target
#   scripts/fuzz.sh --seconds 600 mongodb_bson config_file   # some targets only
#
# The first build compiles every dependency with sanitizer flags (about 10
# minutes on 2 cores; later runs reuse fuzz/target). Seeds are written from
# tests/fixtures/ and examples/targets.yml into fuzz/corpus/<target>/ on every
# run (the corpus directories are not committed; what libFuzzer adds there is
# kept between local runs).
#
# Only a stable toolchain is needed: libFuzzer's instrumentation flags are
# nightly-only, and RUSTC_BOOTSTRAP=1 lets stable rustc accept them.
#
# Exit status is non-zero if any target crashed, leaked, timed out or hit the
# memory limits (-malloc_limit_mb catches one huge allocation, -rss_limit_mb
# unbounded growth). The input is saved in fuzz/artifacts/<target>/; replay it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -a <target> fuzz/artifacts/<target>/<file>
# and keep it as a `#[test]` in tests/it/proptest_parsers.rs.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=30
targets=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --seconds) seconds="${2:?--seconds needs a value}"; shift 2 ;;
        --seconds=*) seconds="${1#*=}"; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: --seconds must be a whole number" >&2; exit 2; }
[[ ${#targets[@]} -gt 0 ]] || targets=(redis_info redis_kv_list mongodb_bson mongodb_bson_depth config_file)

export RUSTC_BOOTSTRAP=1
CARGO_FUZZ_VERSION=0.13.2
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

echo "fuzz.sh: writing seeds into fuzz/corpus/" >&2
FUZZ_CORPUS_DIR="$PWD/fuzz/corpus" cargo test --quiet --test it proptest_parsers::write_fuzz_seed_corpus \
    -- --ignored --exact >/dev/null

# Longest input per target: MongoDB fixtures are up to ~400 KiB as BSON (a
# truncated document does not parse at all); an INFO line past 16 KiB is
# dropped, so 64 KiB still reaches that path.
max_len() {
    case "$1" in
        redis_info) echo 65536 ;;
        redis_kv_list) echo 4096 ;;
        mongodb_bson) echo 1048576 ;;
        mongodb_bson_depth) echo 262144 ;;
        config_file) echo 16384 ;;
        *) echo 65536 ;;
    esac
}

# -a: debug assertions (and overflow checks) on, so an overflow is a finding.
cargo fuzz build -a

failed=()
summary=()
mkdir -p fuzz/artifacts
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target"
    log="fuzz/artifacts/$target.log"
    echo "fuzz.sh: $target for ${seconds}s (log: $log)" >&2
    if cargo fuzz run -a "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -max_len="$(max_len "$target")" \
        -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10 -print_final_stats=1 \
        >"$log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed+=("$target")
        tail -n 60 "$log" >&2
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    summary+=("$target: $status, ${execs:-?} executions in ${seconds}s")
done

printf 'fuzz.sh: %s\n' "${summary[@]}" >&2
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz.sh: crashed: ${failed[*]} (inputs in fuzz/artifacts/<target>/)" >&2
    exit 1
fi

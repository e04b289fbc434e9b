#!/usr/bin/env bash
# Fuzzes every cargo-fuzz target (or the ones named) for a bounded time, starting from
# the committed corpus, on the stable toolchain. Exits non-zero if any target crashed,
# timed out or ran out of memory, and prints where each failing input is (and its hex).
#
#   fuzz/run-ci.sh [target...]
#   FUZZ_SECONDS      seconds per target (default 60)
#   FUZZ_TARGET_DIR   cargo target dir for the fuzz builds (default fuzz/target; never
#                     the workspace's: the instrumented flags would rebuild everything)
#   FUZZ_SANITIZER    none (default) or address; address needs unstable rustc flags,
#                     which RUSTC_BOOTSTRAP=1 enables on the stable toolchain
#
# Why `--sanitizer none` by default: pgward forbids unsafe code, so what the fuzzers
# find is panics, overflows (debug assertions are on), runaway time and memory, which
# libFuzzer sees without a sanitizer; and it needs no nightly-only flag at all.
# Why `--dev`: with the profile in fuzz/Cargo.toml (dependencies unoptimised, the fuzzed
# crates at opt-level 3) the build takes about two thirds of the CPU time of cargo-fuzz's
# default release build, and the targets run at about the release speed.
set -euo pipefail
cd "$(dirname "$0")"

CARGO_FUZZ_VERSION=0.13.2
seconds=${FUZZ_SECONDS:-60}
target_dir=${FUZZ_TARGET_DIR:-$PWD/target}
sanitizer=${FUZZ_SANITIZER:-none}

if [ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
    echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install --locked "cargo-fuzz@$CARGO_FUZZ_VERSION"
fi

if [ "$sanitizer" != none ]; then
    export RUSTC_BOOTSTRAP=1
fi

# The fuzz crate is outside the workspace; start from the workspace's lock file so the
# fuzzed code is built with the same dependency versions as the shipped one (cargo
# adds only libfuzzer-sys and its build dependencies). fuzz/Cargo.lock is not committed.
cp ../Cargo.lock Cargo.lock

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

fuzz_flags=(--dev --sanitizer "$sanitizer" --target-dir "$target_dir")
echo "fuzz: building ${targets[*]} (sanitizer $sanitizer, target dir $target_dir)"
build_start=$SECONDS
cargo fuzz build "${fuzz_flags[@]}"
echo "fuzz: built in $((SECONDS - build_start)) s"

failed=()
for t in "${targets[@]}"; do
    # New inputs go to a scratch corpus; the committed one is only read.
    scratch="$target_dir/corpus/$t"
    artifacts="$PWD/artifacts/$t"
    log="$target_dir/logs/$t.log"
    mkdir -p "$scratch" "$artifacts" "$(dirname "$log")" "corpus/$t"
    before=$(LC_ALL=C ls -1 "$artifacts")
    echo "fuzz: $t for ${seconds} s (log: $log)"
    status=0
    cargo fuzz run "${fuzz_flags[@]}" "$t" "$scratch" "$PWD/corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=$?
    grep -E '^(INFO: seed corpus|#[0-9]+ +DONE|stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb))' "$log" |
        sed "s/^/fuzz: $t: /" || true
    if [ "$status" -ne 0 ]; then
        failed+=("$t")
        echo "fuzz: $t FAILED (exit $status); its log from the failure on:"
        first=$(grep -n -m1 -E 'panicked at|ERROR: libFuzzer|ALARM: working on the last Unit' "$log" | cut -d: -f1 || true)
        if [ -n "$first" ]; then tail -n "+$first" "$log" | head -n 200; else tail -n 60 "$log"; fi
        for f in $(LC_ALL=C comm -13 <(echo "$before") <(LC_ALL=C ls -1 "$artifacts")); do
            echo "fuzz: failing input: fuzz/artifacts/$t/$f ($(wc -c <"$artifacts/$f") bytes), hex:"
            head -c 4096 "$artifacts/$f" | od -An -tx1 -v | tr -d ' \n' | fold -w 128
            echo
            env=${RUSTC_BOOTSTRAP:+RUSTC_BOOTSTRAP=1 }
            echo "fuzz: reproduce: (cd fuzz && ${env}cargo fuzz run --dev -s $sanitizer $t artifacts/$t/$f)"
            echo "fuzz: minimise:  (cd fuzz && ${env}cargo fuzz tmin --dev -s $sanitizer $t artifacts/$t/$f)"
        done
    fi
done

echo "fuzz: ${#targets[@]} targets for ${seconds} s each; failed: ${failed[*]:-none}"
echo "fuzz: $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
[ "${#failed[@]}" -eq 0 ]

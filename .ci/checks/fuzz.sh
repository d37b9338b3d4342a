#!/usr/bin/env bash
# Short fuzz runs: each cargo-fuzz target of fuzz/ for FUZZ_SECONDS (default 20) from its
# committed corpus (copied, so the run does not change the repository). A crash, a panic or a
# broken invariant fails the check and leaves the input in fuzz/artifacts/TARGET/.
#
# Negative control: the `canary` target panics on its seed; the check fails if that run
# passes (a harness that cannot fail proves nothing).
#
# Installs cargo-fuzz (from crates.io) when absent. libFuzzer needs nightly flags: the stable
# toolchain accepts them with RUSTC_BOOTSTRAP=1. No sanitizer: the code forbids `unsafe`, so
# the runs look for panics and broken invariants, which a plain build catches.
set -euo pipefail
cd "$(dirname "$0")/../.."

SECONDS_PER_TARGET="${FUZZ_SECONDS:-20}"
TARGETS=(webhook callflow flow_compile step)

note() { printf '  -> %s\n' "$*"; }
fail() {
  printf 'fuzz: %s\n' "$*" >&2
  exit 1
}

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  note "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd fuzz
note "building the targets"
cargo fuzz build --sanitizer none >/dev/null

for target in "${TARGETS[@]}"; do
  note "$target for ${SECONDS_PER_TARGET}s"
  mkdir -p "$work/$target"
  cp -r "corpus/$target/." "$work/$target/"
  cargo fuzz run --sanitizer none "$target" "$work/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 -max_len=65536 \
    >"$work/$target.log" 2>&1 || {
    tail -40 "$work/$target.log" >&2
    fail "target $target failed; reproduce with: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none $target fuzz/artifacts/$target/<file>"
  }
  grep -E '^stat::number_of_executed_units' "$work/$target.log" | sed "s/^/     $target /" || true
done

note "negative control: the canary target must fail on its seed"
mkdir -p "$work/canary"
printf 'canary' >"$work/canary/seed"
if cargo fuzz run --sanitizer none canary "$work/canary" -- -runs=10 >"$work/canary.log" 2>&1; then
  fail "the canary target passed: a failing target would not fail this check"
fi
grep -q 'the canary input was found' "$work/canary.log" ||
  fail "the canary run failed for another reason: $(tail -5 "$work/canary.log")"
rm -rf artifacts/canary
note "all fuzz targets passed"

#!/usr/bin/env bash
# make fuzz: every fuzz target in fuzz/ for FUZZ_SECONDS (default 60) each, with cargo-fuzz
# (libFuzzer); FUZZ_TARGETS="…" for some of them. A crash stops the run; its input is in fuzz/artifacts/<target>/ — make it a
# regression test in the normal suite, then fix it.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
SECONDS_EACH="${FUZZ_SECONDS:-60}"
# No sanitizer by default: the workspace forbids unsafe code, so AddressSanitizer would
# watch only the dependencies' and would halve the executions a minute buys.
# FUZZ_SANITIZER=address turns it on.
SANITIZER="${FUZZ_SANITIZER:-none}"
CARGO_FUZZ_VERSION=0.13.2
TOOLS="$ROOT/.tools"

if ! "$TOOLS/bin/cargo-fuzz" --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  say "installing cargo-fuzz $CARGO_FUZZ_VERSION into .tools"
  cargo install --quiet --locked --root "$TOOLS" cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
# cargo-fuzz passes -Z flags; the pinned stable toolchain accepts them this way.
export RUSTC_BOOTSTRAP=1
fuzz() { "$TOOLS/bin/cargo-fuzz" "$@"; }

say "building the fuzz targets (sanitizer: $SANITIZER)"
started=$(date +%s)
fuzz build --sanitizer "$SANITIZER" --fuzz-dir fuzz
built=$(( $(date +%s) - started ))

summary=()
total_runs=0
# FUZZ_TARGETS="a b" runs only those.
for target in ${FUZZ_TARGETS:-$(fuzz list --fuzz-dir fuzz)}; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus"
  seeds=()
  [ -d "fuzz/seeds/$target" ] && seeds=("fuzz/seeds/$target")
  # The project's own scripts are the .sql splitter's seeds.
  [ "$target" = sql_script ] && seeds=(sql/mysql sql/redshift sql/warehouse)
  log="$(mktemp)"
  say "fuzzing $target for ${SECONDS_EACH}s"
  if ! fuzz run --sanitizer "$SANITIZER" --fuzz-dir fuzz "$target" "$corpus" "${seeds[@]}" -- \
      -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log"
    die "$target crashed: the input is in fuzz/artifacts/$target/"
  fi
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+')
  summary+=("$(printf '  %-20s %10s runs  coverage %6s  corpus %5s' "$target" "${runs:-?}" "${cov:-?}" "$(ls "$corpus" | wc -l)")")
  total_runs=$(( total_runs + ${runs:-0} ))
  rm -f "$log"
done
printf '%s\n' "${summary[@]}"
echo "fuzz: targets=${#summary[@]} seconds_each=$SECONDS_EACH build_s=$built runs=$total_runs crashes=0"

#!/usr/bin/env bash
# Runs the fuzz targets one after the other, one libFuzzer process each (the machine is shared).
#   fuzz/run.sh SECONDS [TARGET...]     SECONDS is split evenly over the targets (default: all).
# Each run starts from the committed seeds (corpus/<target>/seed-*) plus whatever earlier runs
# left in corpus/<target>/ (not committed), logs to fuzz/runs/<target>.log and prints
# libFuzzer's "Done N runs in S second(s)" line. A crash stops the script with its artifact
# under fuzz/artifacts/<target>/.
#
# cargo-fuzz needs a nightly rustc (sanitizer flags). With no nightly toolchain installed the
# script falls back to the stable one with RUSTC_BOOTSTRAP=1, which lets stable accept -Z flags.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config_bytes config_json decide)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
if rustup toolchain list | grep -q '^nightly'; then
  cargo_fuzz=(cargo +nightly fuzz)
else
  export RUSTC_BOOTSTRAP=1
  cargo_fuzz=(cargo fuzz)
fi
per=$(( secs / ${#targets[@]} ))
[ "$per" -ge 1 ] || per=1
mkdir -p runs
CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} "${cargo_fuzz[@]}" build
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== $t: ${per}s"
  # -close_fd_mask=3 silences the harness; -rss_limit_mb bounds memory.
  "${cargo_fuzz[@]}" run "$t" "corpus/$t" -- -max_total_time="$per" -rss_limit_mb=1024 \
      -max_len=4096 -print_final_stats=1 >"runs/$t.log" 2>&1 || {
    echo "!! $t failed, see fuzz/runs/$t.log"; tail -40 "runs/$t.log"; exit 1; }
  grep -E '^Done [0-9]+ runs' "runs/$t.log" | sed "s/^/$t: /"
  grep -E 'stat::(number_of_executed_units|peak_rss_mb)' "runs/$t.log" | sed "s/^/$t: /" || true
done

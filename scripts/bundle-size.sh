#!/usr/bin/env bash
# Prints the release bundle's sizes, raw and gzip -9, per file and in total.
source "$(dirname "$0")/lib.sh"
build_release >&2
cd "$ROOT/target/site/pkg"
printf '%-10s %10s %10s\n' part raw gzip
total_raw=0; total_gz=0
for ext in wasm js css; do
  f=$(ls agent-office.*."$ext" 2>/dev/null | head -1)
  [ -n "$f" ] || continue
  raw=$(stat -c %s "$f"); gz=$(gzip -9c "$f" | wc -c)
  total_raw=$((total_raw + raw)); total_gz=$((total_gz + gz))
  printf '%-10s %10d %10d\n' "$ext" "$raw" "$gz"
done
printf '%-10s %10d %10d\n' total "$total_raw" "$total_gz"

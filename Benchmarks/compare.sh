#!/usr/bin/env bash
# Compares Sluice's ready pipelines with the Unix tools they replace, on the same machine, in one run.
# Usage: Benchmarks/compare.sh            (RUNS=5 SIZE_MB=200 by default; writes Benchmarks/RESULTS.md and .svg)
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v pigz >/dev/null 2>&1 || missing+=(pigz)
[ -x /usr/bin/time ] || missing+=(time)
command -v lz4 >/dev/null 2>&1 || missing+=(lz4)
command -v igzip >/dev/null 2>&1 || missing+=(isal)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
# The real-text input is Debian's package index, which apt-get update fetches.
ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1 || apt-get update -qq

swift build -c release --product sluice
python3 Benchmarks/compare.py --sluice "$(swift build -c release --show-bin-path)/sluice" \
    --runs "${RUNS:-5}" --size-mb "${SIZE_MB:-200}"

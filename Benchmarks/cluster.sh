#!/usr/bin/env bash
# Measures distributed runs (`sluice job`) against one process on the same machine, in one run: 200 MB of real text
# in 40 gzip files, and 1,000 empty units. Starts a throwaway PostgreSQL server of its own on loopback.
# Usage: Benchmarks/cluster.sh            (RUNS=5 by default; writes Benchmarks/CLUSTER.md)
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
[ -x /usr/bin/time ] || missing+=(time)
command -v lz4 >/dev/null 2>&1 || missing+=(lz4)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1 || apt-get update -qq

swift build -c release --product sluice
python3 Benchmarks/cluster.py --sluice "$(swift build -c release --show-bin-path)/sluice" --runs "${RUNS:-5}"

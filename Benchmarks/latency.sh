#!/usr/bin/env bash
# Latency on a live input: lines written to a pipe at a steady rate, timed until they come out (see latency.py).
# Usage: Benchmarks/latency.sh     (LINES=1000 RATE=100 by default; writes Benchmarks/LATENCY.md)
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product sluice
python3 Benchmarks/latency.py --sluice "$(swift build -c release --show-bin-path)/sluice" \
    --lines "${LINES:-1000}" --rate "${RATE:-100}"

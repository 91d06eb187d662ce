"""Latency on a live input: lines written to a pipe at a steady rate, timed until they come out.

Usage: python3 Benchmarks/latency.py --sluice PATH [--lines 1000] [--rate 100]
(Benchmarks/latency.sh builds the release binary and calls this.)

For each case a writer sends `--lines` lines at `--rate` lines per second into the command's standard input and a
reader thread stamps each line when it appears on the command's standard output — decoded as it arrives when the
output is gzip (the `.gz` output is a symlink to standard output, so what is timed is what a reader of the growing
file could decode). Prints p50, p99 and max of write-to-output time, and writes Benchmarks/LATENCY.md.
"""
import argparse
import datetime
import os
import statistics
import subprocess
import tempfile
import threading
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def measure(command, lines, rate, gzip_output):
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    sent, received = {}, {}

    def read():
        decoder = zlib.decompressobj(31) if gzip_output else None
        pending = b""
        while True:
            chunk = process.stdout.read(65536)
            if not chunk:
                break
            now = time.monotonic_ns()
            pending += decoder.decompress(chunk) if decoder else chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                fields = line.split()
                if len(fields) >= 2 and fields[0] == b"live":
                    received[int(fields[1])] = now

    reader = threading.Thread(target=read)
    reader.start()
    start = time.monotonic()
    for index in range(lines):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sent[index] = time.monotonic_ns()
        process.stdin.write(b"live %d GET /api/v1/items status=200 latency_ms=17\n" % index)
    process.stdin.close()
    process.wait()
    reader.join()
    missing = lines - len(received)
    if missing:
        raise SystemExit(f"{command}: {missing} lines never came out")
    latencies = sorted((received[i] - sent[i]) / 1e6 for i in range(lines))
    return {
        "p50": statistics.median(latencies),
        "p99": latencies[int(len(latencies) * 0.99) - 1],
        "max": latencies[-1],
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sluice", required=True)
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--max-delay-ms", type=int, default=200)
    args = parser.parse_args()
    s, delay = args.sluice, f"{args.max_delay_ms}ms"
    with tempfile.TemporaryDirectory() as directory:
        gz = os.path.join(directory, "out.gz")
        os.symlink("/dev/stdout", gz)
        cases = [
            ("sluice grep → stdout", [s, "run", "grep", "--pattern", "live", "--max-delay", delay], False),
            ("grep --line-buffered → stdout", ["grep", "--line-buffered", "-F", "live"], False),
            ("sluice cat → .gz", [s, "run", "cat", "-", "-o", gz, "--max-delay", delay], True),
        ]
        results = []
        for name, command, gzip_output in cases:
            result = measure(command, args.lines, args.rate, gzip_output)
            results.append((name, result))
            print(f"{name:<32} p50 {result['p50']:7.2f} ms  p99 {result['p99']:7.2f} ms  max {result['max']:7.2f} ms")
    lines = [
        "# Latency on a live input",
        "",
        f"Written by `Benchmarks/latency.sh` on {datetime.date.today()} ({os.cpu_count()} cores): {args.lines} lines "
        f"written to a pipe at {args.rate:g} lines/s; time from the write to the line appearing on the output "
        f"(gzip decoded as it arrives). `--max-delay {delay}`; the bound to meet is max-delay + 50 ms.",
        "",
        "| case | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|",
    ]
    for name, result in results:
        lines.append(f"| {name} | {result['p50']:.2f} | {result['p99']:.2f} | {result['max']:.2f} |")
    open(os.path.join(HERE, "LATENCY.md"), "w").write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

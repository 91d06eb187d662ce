"""Runs each Sluice pipeline alternately with its Unix equivalent and reports medians, ratios and peak memory.

Called by compare.sh. Writes Benchmarks/RESULTS.md and Benchmarks/results.svg.
"""
import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = "/tmp/sluice-compare"


def sh(command, **kwargs):
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], check=True, **kwargs)


def timed(command):
    start = time.perf_counter()
    sh(command, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def peak_rss_kib(command):
    result = sh(f"/usr/bin/time -f %M {command} > /dev/null", stderr=subprocess.PIPE, text=True)
    return int(result.stderr.strip().splitlines()[-1])


def prepare_real_text(size_mb):
    """Real text with many distinct tokens: Debian's package index (what `apt-get update` fetched), repeated to
    `size_mb`, and its gzip -6. Generated logs have a few hundred distinct words; this has ~325,000."""
    text, gz = f"{DATA}/real-{size_mb}.txt", f"{DATA}/real-{size_mb}.gz"
    if not os.path.exists(gz):
        lists = "/var/lib/apt/lists"
        indexes = sorted(f for f in os.listdir(lists) if "_Packages" in f)
        if not indexes:
            raise SystemExit("no package index in /var/lib/apt/lists: run apt-get update first")
        decoders = {".lz4": "lz4 -dc", ".gz": "zcat", ".xz": "xzcat"}
        index = b"".join(
            sh(f"{decoders.get(os.path.splitext(f)[1], 'cat')} {lists}/{f}", stdout=subprocess.PIPE).stdout
            for f in indexes
        )
        wanted = size_mb * 1_000_000
        with open(text, "wb") as out:
            out.write((index * (wanted // len(index) + 1))[:wanted])
        sh(f"gzip -6 -c {text} > {gz}")
    return text, gz


def prepare(size_mb):
    os.makedirs(DATA, exist_ok=True)
    text, gz, gz5 = f"{DATA}/input-{size_mb}.txt", f"{DATA}/input-{size_mb}.gz", f"{DATA}/input-{size_mb}x5.gz"
    if not os.path.exists(gz):
        sh(f"python3 {HERE}/generate.py {size_mb * 1_000_000} 1 > {text}")
        sh(f"gzip -6 -c {text} > {gz}")
    if not os.path.exists(gz5):
        sh(f"for i in 1 2 3 4 5; do cat {text}; done | gzip -1 > {gz5}")
    return text, gz, gz5


def prepare_shapes():
    """Inputs whose shape, not size, is the test: many records per compressed byte, or per decoded byte."""
    shapes = {
        "x-1e8.gz": "(yes x || true) | head -n 100000000 | gzip -6",
        "newlines-1e9.gz": "head -c 1000000000 /dev/zero | tr '\\0' '\\n' | gzip -6",
        "lines100-1e7.gz": "(yes \"$(printf '%099d' 0)\" || true) | head -n 10000000 | gzip -9",
    }
    paths = {}
    for name, command in shapes.items():
        path = f"{DATA}/{name}"
        if not os.path.exists(path):
            sh(f"{command} > {path}.part && mv {path}.part {path}")
        paths[name] = path
    return paths


def decoded_size(gz):
    return int(sh(f"zcat {gz} | wc -c", stdout=subprocess.PIPE, text=True).stdout)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sluice", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size-mb", type=int, default=200)
    args = parser.parse_args()
    s = args.sluice
    text, gz, gz5 = prepare(args.size_mb)
    real_text, real = prepare_real_text(args.size_mb)
    decoded = os.path.getsize(text)
    shapes = prepare_shapes()
    real_gb_text, real_gb = prepare_real_text(1000)
    out = DATA
    cases = [
        ("wc", f"{s} run wc {gz}", "zcat | wc", f"zcat {gz} | wc"),
        ("grep --invert → gzip -1", f"{s} run grep --invert --pattern ' 200 ' {gz} -o {out}/s1.gz --gzip-level 1",
         "zcat | grep -vF | gzip -1", f"zcat {gz} | LC_ALL=C grep -vF ' 200 ' | gzip -1 > {out}/u1.gz"),
        ("cat → gzip -6", f"{s} run cat {text} -o {out}/s6.gz --gzip-level 6",
         "pigz -p2 -6", f"pigz -p2 -6 -c {text} > {out}/p6.gz"),
        ("cat → gzip -6 (vs gzip)", f"{s} run cat {text} -o {out}/s6b.gz --gzip-level 6",
         "gzip -6", f"gzip -6 -c {text} > {out}/g6.gz"),
        ("wordfreq", f"{s} run wordfreq --top 10 {gz}",
         "tr | sort | uniq -c | sort -rn",
         f"zcat {gz} | LC_ALL=C tr -cs 'A-Za-z0-9' '\\n' | tr 'A-Z' 'a-z' | LC_ALL=C sort | uniq -c "
         f"| LC_ALL=C sort -rn | sed -n 1,10p"),
        ("wc (real text)", f"{s} run wc {real}", "zcat | wc", f"zcat {real} | wc"),
        ("wc (real text, vs igzip)", f"{s} run wc {real}", "igzip -dc | wc", f"igzip -dc {real} | wc"),
        ("grep --invert → gzip -1 (real text)",
         f"{s} run grep --invert --pattern Package {real} -o {out}/r1.gz --gzip-level 1",
         "igzip -dc | grep -vF | igzip -1",
         f"igzip -dc {real} | LC_ALL=C grep -vF Package | igzip -1 > {out}/i1.gz"),
        ("cat → gzip -6 (real text)", f"{s} run cat {real_text} -o {out}/r6.gz --gzip-level 6",
         "pigz -p2 -6", f"pigz -p2 -6 -c {real_text} > {out}/q6.gz"),
        ("wordfreq (real text)", f"{s} run wordfreq --top 25 {real}",
         "tr | sort | uniq -c | sort -rn",
         f"zcat {real} | LC_ALL=C tr -cs 'A-Za-z0-9' '\\n' | tr 'A-Z' 'a-z' | LC_ALL=C sort | uniq -c "
         f"| LC_ALL=C sort -rn | sed -n 1,25p"),
    ]
    sizes = {name: decoded for name, *_ in cases}
    shape_cases = [
        ("wc (1e8 lines `x`)", shapes["x-1e8.gz"]),
        ("wc (1e9 newlines, 1 MB gzip)", shapes["newlines-1e9.gz"]),
        ("wc (1e7 lines of 100 B, gzip -9)", shapes["lines100-1e7.gz"]),
    ]
    for name, path in shape_cases:
        cases.append((name, f"{s} run wc {path}", "zcat | wc", f"zcat {path} | wc"))
        sizes[name] = decoded_size(path)
    shape_names = {name for name, _ in shape_cases}
    times = {name: ([], []) for name, *_ in cases}
    # The shape rows run after all the others: the 1e9-newline pair keeps both cores busy for ~20 s, and on this
    # shared VM the runs right after it were slower (the first two rows of the next round by up to 50%).
    for rows, runs in [([c for c in cases if c[0] not in shape_names], args.runs),
                       ([c for c in cases if c[0] in shape_names], min(args.runs, 3))]:  # ~40 s a pair: three runs
        for run in range(runs):
            for name, ours, _, theirs in rows:
                times[name][0].append(timed(ours))
                times[name][1].append(timed(theirs))
            print(f"run {run + 1}/{runs} done", file=sys.stderr)
    # The outputs agree.
    sh(f"test \"$({s} run wc {gz})\" = \"$(zcat {gz} | LC_ALL=C wc | tr -s ' ' | sed 's/^ //')\"")
    sh(f"cmp <({s} run wordfreq --top 25 {real}) <(zcat {real} | LC_ALL=C tr -cs 'A-Za-z0-9' '\\n' "
       f"| tr 'A-Z' 'a-z' | grep -v '^$' | LC_ALL=C sort | uniq -c | LC_ALL=C sort -k1,1nr -k2,2 | head -25 "
       f"| sed 's/^ *//')")
    # wordfreq's time across batch sizes: per-batch costs must not grow with the number of distinct words.
    sweep = {
        size: statistics.median(timed(f"{s} run wordfreq --batch-size {size} {real}") for _ in range(args.runs))
        for size in (4096, 1024, 256, 64)
    }
    wordfreq_rss = statistics.median(peak_rss_kib(f"{s} run wordfreq {real}") for _ in range(5))
    sh(f"cmp <(zcat {out}/s1.gz) <(zcat {out}/u1.gz)")
    sh(f"gzip -t {out}/s6.gz && cmp <(zcat {out}/s6.gz) {text}")
    size6 = (os.path.getsize(f"{out}/s6.gz"), os.path.getsize(f"{out}/g6.gz"))
    # (Each line is written with its newline: a last line without one gains it.)
    sh(f"gzip -t {out}/r6.gz && cmp <(zcat {out}/r6.gz) <(sed -e '$a\\' {real_text})")
    sh(f"cmp <(zcat {out}/r1.gz) <(zcat {out}/i1.gz)")
    real_size6 = (os.path.getsize(f"{out}/r6.gz"), int(sh(f"gzip -6 -c {real_text} | wc -c", stdout=subprocess.PIPE,
                                                           text=True).stdout))
    # Peak RSS varies by a few MiB from run to run (thread and allocator timing): take the median of 5 of each.
    rss = tuple(
        statistics.median(peak_rss_kib(f"{s} run wc {path}") for _ in range(5)) for path in (gz, gz5)
    )
    # Peak RSS whatever the input's shape: the promise is 64 MiB with default options.
    shape_rss = [
        (name, statistics.median(peak_rss_kib(f"{s} run wc {path}") for _ in range(3)))
        for name, path in shape_cases + [("wc (1 GB of real text)", real_gb), ("wc (200 MB of real text)", real)]
    ]
    for name, path in shape_cases:
        sh(f"test \"$({s} run wc {path})\" = \"$(zcat {path} | LC_ALL=C wc | tr -s ' ' | sed 's/^ //')\"")

    rows = []
    for name, _, baseline, _ in cases:
        ours, theirs = statistics.median(times[name][0]), statistics.median(times[name][1])
        size = sizes[name]
        rows.append((name, baseline, ours, theirs, size / ours / 1e6, size / theirs / 1e6, theirs / ours))
    write_results(rows, size6, rss, args, decoded, sweep, wordfreq_rss, shape_rss, real_size6)
    write_chart(rows)
    for row in rows:
        print(f"{row[0]:<26} sluice {row[2]:6.2f} s  {row[1]:<30} {row[3]:6.2f} s  ratio {row[6]:4.2f}x")
    print(f"gzip -6 size: sluice {size6[0]} vs gzip {size6[1]} ({size6[0] / size6[1]:.4f}x)")
    print(f"gzip -6 size, real text: sluice {real_size6[0]} vs gzip {real_size6[1]}")
    print(f"peak RSS, wc: {rss[0] / 1024:.1f} MiB for {args.size_mb} MB, {rss[1] / 1024:.1f} MiB for 5x")
    print(f"peak RSS, wordfreq (real text): {wordfreq_rss / 1024:.1f} MiB")
    for name, kib in shape_rss:
        print(f"peak RSS, {name}: {kib / 1024:.1f} MiB")
    print("wordfreq (real text) by --batch-size: "
          + ", ".join(f"{size}: {seconds:.2f} s" for size, seconds in sweep.items())
          + f" (64 vs 4096: {sweep[64] / sweep[4096]:.2f}x)")


def write_results(rows, size6, rss, args, decoded, sweep, wordfreq_rss, shape_rss, real_size6):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    lines = [
        "# Sluice vs the Unix tools",
        "",
        f"Written by `Benchmarks/compare.sh` on {datetime.date.today()} — {os.cpu_count()} cores ({cpu}), "
        f"{platform.system()} {platform.release()}. Input: {decoded / 1e6:.0f} MB of generated access-log text "
        f"(seeded), and its `gzip -6`; rows marked *real text*: as much of Debian's package index (~325,000 "
        f"distinct words), repeated, and its `gzip -6`. Medians of {args.runs} runs, each pipeline alternated with "
        "its baseline in the same loop (the three rows of odd shapes: 3 runs); the ratio is baseline time / Sluice "
        "time (above 1: Sluice is faster). MB/s are decoded megabytes per second of each row's own input.",
        "",
        "| pipeline | Sluice s | MB/s | baseline | baseline s | MB/s | ratio |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for name, baseline, ours, theirs, ours_rate, theirs_rate, ratio in rows:
        shown = baseline.replace("|", "\\|")  # a pipe inside a table cell must be escaped, even in code
        lines.append(f"| {name} | {ours:.2f} | {ours_rate:.0f} | `{shown}` | {theirs:.2f} | {theirs_rate:.0f} "
                     f"| {ratio:.2f}× |")
    lines += [
        "",
        f"- gzip level 6 output size: Sluice {size6[0]:,} bytes, `gzip -6` {size6[1]:,} "
        f"({size6[0] / size6[1]:.4f}×); on the real text: Sluice {real_size6[0]:,}, `gzip -6` {real_size6[1]:,} "
        f"({real_size6[0] / real_size6[1]:.4f}×). Codecs by default: ISA-L inflates and writes levels 1–3, "
        "libdeflate writes 4–9 (512 KiB blocks, each a gzip member).",
        f"- Peak RSS of `sluice run wc`: {rss[0] / 1024:.1f} MiB on the input, {rss[1] / 1024:.1f} MiB on five "
        "times the input (`/usr/bin/time -f %M`, median of 5 runs each); of `sluice run wordfreq` on the real "
        f"text: {wordfreq_rss / 1024:.1f} MiB.",
        "- `wordfreq` on the real text by `--batch-size` (median of the runs): "
        + ", ".join(f"{size}: {seconds:.2f} s" for size, seconds in sweep.items())
        + f" — 64 takes {sweep[64] / sweep[4096]:.2f}× the time of 4096.",
        "- Peak RSS of `sluice run wc` by the input's shape, default options (median of 3): "
        + "; ".join(f"{name.removeprefix('wc ').strip('()')}: {kib / 1024:.1f} MiB" for name, kib in shape_rss)
        + ".",
        "",
        "![throughput per pipeline](results.svg)",
        "",
    ]
    open(os.path.join(HERE, "RESULTS.md"), "w").write("\n".join(lines))


def write_chart(rows):
    width, bar, gap, left = 760, 16, 14, 230
    top = max(max(r[4], r[5]) for r in rows)
    height = 40 + len(rows) * (2 * bar + gap) + 20
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           'font-size="12">',
           f'<text x="{left}" y="20">decompressed MB/s (longer is faster) — Sluice (blue) beside its baseline '
           '(grey)</text>']
    y = 36
    for name, baseline, _, _, ours_rate, theirs_rate, _ in rows:
        for label, rate, colour in ((name, ours_rate, "#2b6cb0"), (baseline, theirs_rate, "#a0aec0")):
            length = (width - left - 80) * rate / top
            svg.append(f'<text x="{left - 8}" y="{y + 12}" text-anchor="end">{label}</text>')
            svg.append(f'<rect x="{left}" y="{y}" width="{length:.1f}" height="{bar}" fill="{colour}"/>')
            svg.append(f'<text x="{left + length + 6:.1f}" y="{y + 12}">{rate:.0f}</text>')
            y += bar
        y += gap
    svg.append("</svg>")
    open(os.path.join(HERE, "results.svg"), "w").write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()

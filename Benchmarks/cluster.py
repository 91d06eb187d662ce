"""Distributed runs against one process: the coordination overhead of `sluice job`, measured.

Called by cluster.sh. A throwaway PostgreSQL server (initdb in a temporary directory, a free port, loopback, the
server's default durability: fsync on) coordinates the workers. For each pipeline, alternately:
  - one process: `sluice run PIPELINE` over the 40 files;
  - the cluster: `job submit`, two `job work` processes started together (the time until both exit), `job merge`.
Then 1,000 empty inputs as 1,000 units, drained by one worker and by two. Writes Benchmarks/CLUSTER.md.
"""
import argparse
import datetime
import glob
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import DATA, prepare_real_text, sh  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


class Postgres:
    """initdb and postgres as the `postgres` user (when root), in a temporary directory, on a free loopback port."""

    def __init__(self):
        self.bin = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
        self.dir = tempfile.mkdtemp(prefix="sluice-cluster-bench-")
        as_postgres = os.geteuid() == 0
        self.prefix = ["runuser", "-u", "postgres", "--"] if as_postgres else []
        if as_postgres:
            shutil.chown(self.dir, "postgres")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        subprocess.run(
            self.prefix + [f"{self.bin}/initdb", "-D", f"{self.dir}/data", "-A", "trust", "-U", "postgres"],
            check=True, stdout=subprocess.DEVNULL, cwd=self.dir,
        )
        self.server = subprocess.Popen(
            self.prefix + [f"{self.bin}/postgres", "-D", f"{self.dir}/data", "-p", str(self.port), "-k", self.dir,
                           "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=100"],
            stdout=subprocess.DEVNULL, stderr=open(f"{self.dir}/server.log", "w"), cwd=self.dir,
        )
        for _ in range(300):
            if subprocess.run([f"{self.bin}/pg_isready", "-h", "127.0.0.1", "-p", str(self.port)],
                              stdout=subprocess.DEVNULL).returncode == 0:
                return
            time.sleep(0.1)
        raise SystemExit(f"PostgreSQL did not start; see {self.dir}/server.log")

    def database(self, name):
        psql = [f"{self.bin}/psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-q"]
        subprocess.run(psql + ["-c", f"DROP DATABASE IF EXISTS {name}", "-c", f"CREATE DATABASE {name}", "postgres"],
                       check=True, stdout=subprocess.DEVNULL)
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self):
        self.server.terminate()
        self.server.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def split_into_gzip_files(text, count, size):
    """`text` cut at line ends into `count` pieces of about the same size, each gzip -6."""
    directory = f"{DATA}/cluster-{size}mb-{count}"
    files = [f"{directory}/part-{index:02d}.gz" for index in range(count)]
    if all(os.path.exists(f) for f in files):
        return files
    os.makedirs(directory, exist_ok=True)
    sh(f"cd {directory} && split -n l/{count} -d -a 2 {text} part- && for f in part-??; do gzip -6 $f; done")
    return files


def run(command):
    subprocess.run(["bash", "-o", "pipefail", "-c", command], check=True, stdout=subprocess.DEVNULL)


def one_process(sluice, pipeline, arguments, files, output):
    start = time.perf_counter()
    run(f"{sluice} run {pipeline} {arguments} -o {output} {' '.join(files)}")
    return time.perf_counter() - start


def cluster(sluice, database, job, pipeline, arguments, files, output_dir, merged, workers):
    """Seconds to submit, work with `workers` processes started together, and merge; and the work part alone."""
    shutil.rmtree(output_dir, ignore_errors=True)
    start = time.perf_counter()
    run(f"{sluice} job submit --db {database} --job {job} --output-dir {output_dir} {pipeline} {arguments} "
        f"{' '.join(files)} 2> /dev/null")
    work_start = time.perf_counter()
    processes = [subprocess.Popen([sluice, "job", "work", "--db", database, "--job", job, "--quiet"])
                 for _ in range(workers)]
    codes = [p.wait() for p in processes]
    work = time.perf_counter() - work_start
    if any(codes):
        raise SystemExit(f"a worker failed: {codes}")
    if merged is not None:
        run(f"{sluice} job merge --db {database} --job {job} -o {merged}")
    return time.perf_counter() - start, work


def same_result(one, merged):
    decode = "zcat" if one.endswith(".gz") else "cat"
    a = subprocess.run(f"{decode} {one} | md5sum", shell=True, capture_output=True, text=True).stdout
    b = subprocess.run(f"{decode} {merged} | md5sum", shell=True, capture_output=True, text=True).stdout
    if a != b:
        raise SystemExit(f"merged result differs from one process: {one} vs {merged}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sluice", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes-mb", default="200,1000", help="real-text sizes, each cut into 40 files")
    args = parser.parse_args()
    sluice = args.sluice

    inputs = []
    for size in (int(size) for size in args.sizes_mb.split(",")):
        text, _ = prepare_real_text(size)
        inputs.append((size, split_into_gzip_files(text, 40, size)))
    work = tempfile.mkdtemp(prefix="sluice-cluster-run-", dir=DATA)
    server = Postgres()
    rows = []
    try:
        # (label, pipeline, its options, what one process adds: the units' outputs are gzip -1, extension)
        pipelines = [
            ("wc", "wc", "", "", "txt"),
            ("grep -v → .gz", "grep", "--invert --pattern Description", "--gzip-level 1", "gz"),
            ("wordfreq", "wordfreq", "--top 20", "", "txt"),
        ]
        for (size, files), (label, pipeline, arguments, single_extra, extension) in (
                (i, p) for i in inputs for p in pipelines):
            singles, totals, works = [], [], []
            for index in range(args.runs):
                one = f"{work}/one.{extension}"
                merged = f"{work}/merged.{extension}"
                database = server.database(f"bench_{pipeline}_{size}_{index}")
                # Alternate which goes first, so a drift in the machine's speed does not favour one.
                if index % 2 == 0:
                    singles.append(one_process(sluice, pipeline, f"{arguments} {single_extra}", files, one))
                    total, w = cluster(sluice, database, "bench", pipeline, arguments, files, f"{work}/units",
                                       merged, 2)
                else:
                    total, w = cluster(sluice, database, "bench", pipeline, arguments, files, f"{work}/units",
                                       merged, 2)
                    singles.append(one_process(sluice, pipeline, f"{arguments} {single_extra}", files, one))
                totals.append(total)
                works.append(w)
                same_result(one, merged)
                print(f"{size} MB, {label}: one process {singles[-1]:.2f} s, 2 workers {w:.2f} s (with submit+merge "
                      f"{total:.2f} s)", file=sys.stderr)
            rows.append((f"{size} MB, {label}", statistics.median(singles), statistics.median(works),
                         statistics.median(totals), [s / w for s, w in zip(singles, works)],
                         [s / t for s, t in zip(singles, totals)]))

        empty_dir = f"{work}/empty"
        os.makedirs(empty_dir, exist_ok=True)
        empties = []
        for index in range(1000):
            path = f"{empty_dir}/{index:04d}.txt"
            open(path, "w").close()
            empties.append(path)
        list_file = f"{work}/empties.txt"
        with open(list_file, "w") as out:
            out.write("\n".join(empties) + "\n")
        empty_rows = []
        for workers in (1, 2):
            times = []
            for index in range(args.runs):
                database = server.database(f"bench_empty_{workers}_{index}")
                shutil.rmtree(f"{work}/empty-out", ignore_errors=True)
                run(f"{sluice} job submit --db {database} --job empty --output-dir {work}/empty-out "
                    f"--files-from {list_file} cat 2> /dev/null")
                start = time.perf_counter()
                processes = [subprocess.Popen([sluice, "job", "work", "--db", database, "--job", "empty", "--quiet"])
                             for _ in range(workers)]
                if any(p.wait() for p in processes):
                    raise SystemExit("a worker failed on the empty units")
                times.append(time.perf_counter() - start)
                print(f"1,000 empty units, {workers} worker(s): {times[-1]:.2f} s", file=sys.stderr)
            empty_rows.append((workers, statistics.median(times), min(times), max(times)))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    write_results(rows, empty_rows, args)


def write_results(rows, empty_rows, args):
    lines = [
        "# Distributed runs against one process",
        "",
        f"`Benchmarks/cluster.sh`, {datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores, "
        f"release build, medians of {args.runs} alternating runs. Input: real text (Debian's package index), 200 MB "
        "and 1 GB, each cut at line ends into 40 gzip -6 files (5 and 25 MB of text per unit). The coordinator: a PostgreSQL server on loopback with its "
        "default durability (fsync on). Two `sluice job work` processes on the same machine, started together.",
        "",
        "| input, pipeline | one process | 2 workers (work) | submit + work + merge | throughput vs one process "
        "(work; per-run range) | with submit + merge |",
        "|---|---|---|---|---|---|",
    ]
    for label, single, work, total, ratios, total_ratios in rows:
        lines.append(
            f"| {label} | {single:.2f} s | {work:.2f} s | {total:.2f} s | **{100 * statistics.median(ratios):.0f}%** "
            f"({100 * min(ratios):.0f}–{100 * max(ratios):.0f}%) | {100 * statistics.median(total_ratios):.0f}% |"
        )
    lines += [
        "",
        "1,000 empty inputs as 1,000 units (`cat`), from the workers' start until they exit (each unit: a claim, a "
        "lease, the pipeline, its output fsynced and renamed, the commit):",
        "",
        "| workers | median | range |",
        "|---|---|---|",
    ]
    for workers, median, low, high in empty_rows:
        lines.append(f"| {workers} | **{median:.2f} s** | {low:.2f}–{high:.2f} s |")
    lines += [
        "",
        "What limits these figures (perf, strace and `/usr/bin/time` of the workers, the server's CPU from its "
        "process): the workers and the coordinator share the two cores that one process has to itself, so every "
        "CPU-second of coordination is taken from the work. Each unit costs about 2.5 ms of CPU that one process over "
        "all the files does not pay — measured on the 1,000 empty units: 1.8 ms in the worker (the claim and the "
        "commit through the PostgreSQL client, the unit's pipeline starting and stopping its threads, two fsyncs) and "
        "0.65 ms in PostgreSQL (the claim and the commit's transaction, prepared statements) — against 8–20 ms of "
        "work in a 5 MB unit; each worker process also starts (~20 ms of CPU: loading, connecting, the schema check). "
        "A worker runs its next unit while the last one is committed, so the commit's round trips and fsyncs no "
        "longer idle it (one worker: 0.427 → 0.416 s on the 200 MB `wc`); two workers keep both cores busy either "
        "way, and what is left is CPU: on the 200 MB `wc`, one process uses 0.48 s of CPU, the two workers "
        "0.63–0.66 s between them (`/usr/bin/time`, three runs), PostgreSQL's apart. perf puts the extra ~0.15 s in "
        "the workers' "
        "Swift concurrency pools and the runtime's first protocol-conformance lookups (~80 ms), the PostgreSQL "
        "client's event loop (~30 ms), process start (~20 ms), and the per-unit fsyncs and output files (~25 ms). "
        "`grep`'s units also write their output to disk before they count as done "
        "(fsync, then rename), where one process leaves its output to the kernel's write-back after it has exited. "
        "`wordfreq`'s units also write every distinct word's count (the top of the whole needs them all), which the "
        "single run never writes. With 25 MB units the fixed cost fades: `wc` and `grep` reach about 100% (see the "
        "1 GB rows). Larger units, "
        "and workers on machines of their own, are where a distributed run pays.",
    ]
    with open(os.path.join(HERE, "CLUSTER.md"), "w") as out:
        out.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

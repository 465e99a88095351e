"""make bench: throughput and latency of both jobs, side by side with their ceilings and the seeds' design.

Usage:
    python -m tests.bench [--runs 3] [--limit 20000] [--seed-limit 30000] [--latency-rate 20]
                          [--latency-seconds 120] [--out .runs/bench] [--publish]
    python -m tests.bench table [FILE]     # the README table of a result JSON

One invocation, one machine, the same data for every case: the six UCI Beijing stations
(``$AQSTREAM_DATA_DIR/bench``, 210,384 hourly readings; the first ``--limit`` of them) replayed
once into a raw topic. Cases, each
run ``--runs`` times with the runs interleaved (ceiling, job, ceiling, job, …):

1. raw ceiling       Kafka → decode + from_json + checks (the job's own) → noop
2. raw_to_mongo      the shipped job: MongoDB + Delta bronze + quarantine
3. seeds insert_one  kafka-python consumer, one insert_one per message (first ``--seed-limit`` messages)
4. cdc ceiling       the CDC topic Debezium made of case 2's writes → envelope parse → noop
   cdc_to_cassandra  the shipped job: readings + window aggregates
5. latency           both jobs via jobs.submit on their default triggers, Debezium between, a
                     steady trickle; send time → Cassandra write time: p50/p95/p99/max

Writes ``<out>/bench-<UTC stamp>.json``, ``<out>/latest.json`` and ``<out>/latest.png``;
``--publish`` also copies them to tests/bench/results/ and rewrites the README's table.
Starts the local stack if it is not up (and stops it again); `make demo`'s set-up is enough.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.bench import harness as H
from tests.support.pipeline import REPO_ROOT

RESULTS_DIR = REPO_ROOT / "tests" / "bench" / "results"
README = REPO_ROOT / "README.md"
TABLE_BEGIN = "<!-- bench-table:begin -->"
TABLE_END = "<!-- bench-table:end -->"

# the first readings of the merged Beijing files (event-time order): three runs of every case fit in
# the 20 minutes make bench may take on 2 cores; --limit 0 replays all of them
DEFAULT_LIMIT = 20_000

TARGETS = {
    "raw_to_mongo / raw ceiling": 0.25,
    "raw_to_mongo / seeds": 20.0,
    "cdc_to_cassandra / cdc ceiling": 0.25,
}


def machine() -> dict[str, Any]:
    memory = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) * 1024
    return {
        "cpus": os.cpu_count(),
        "memory_bytes": memory,
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "system": platform.platform(),
    }


def _cpu_model() -> str:
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def run_bench(
    bench: H.Bench,
    runs: int,
    seed_limit: int | None,
    latency_rate: float,
    latency_seconds: float,
    log=print,
) -> dict[str, Any]:
    """Every case in turn on the same topic contents; returns the result document."""
    result: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine()}
    result["settings"] = {
        "runs": runs,
        "limit": bench.limit,
        "seed_limit": seed_limit,
        "latency_rate": latency_rate,
        "latency_seconds": latency_seconds,
        "spark_master": bench.spark.sparkContext.master,
        "shuffle_partitions": bench.spark.conf.get("spark.sql.shuffle.partitions"),
    }
    begun = time.perf_counter()
    log("preparing: the Beijing data into the raw topic with the replay collector")
    result["prepare"] = bench.prepare_raw_topic()
    log(f"  {result['prepare']}")

    ceiling, job, seeds, written = [], [], [], []
    for i in range(runs):
        ceiling.append(H.raw_ceiling(bench, i))
        log(f"raw ceiling run {i + 1}: {ceiling[-1].rate:,.0f} records/s")
        run, config = H.raw_to_mongo_job(bench, i)
        job.append(run)
        written.append(config)
        log(f"raw_to_mongo run {i + 1}: {run.rate:,.0f} records/s, landed {run.landed}")
        seeds.append(H.seeds_consumer(bench, i, seed_limit))
        log(f"seeds insert_one run {i + 1}: {seeds[-1].rate:,.0f} records/s ({seeds[-1].records} records)")
    cases = {
        "raw_ceiling": H.summarize(ceiling),
        "raw_to_mongo": H.summarize(job),
        "seeds_insert_one": H.summarize(seeds),
    }

    log("Debezium: snapshot of the first raw_to_mongo run's collection into the CDC topic")
    result["debezium"] = H.capture_with_debezium(bench, written[0])
    log(f"  {result['debezium']}")
    cdc_ceiling, cdc_job = [], []
    for i in range(runs):
        cdc_ceiling.append(H.cdc_ceiling(bench, i))
        log(f"cdc ceiling run {i + 1}: {cdc_ceiling[-1].rate:,.0f} records/s")
        cdc_job.append(H.cdc_to_cassandra_job(bench, i))
        log(f"cdc_to_cassandra run {i + 1}: {cdc_job[-1].rate:,.0f} records/s, landed {cdc_job[-1].landed}")
    cases["cdc_ceiling"] = H.summarize(cdc_ceiling)
    cases["cdc_to_cassandra"] = H.summarize(cdc_job)
    result["cases"] = cases

    log(f"latency: {latency_rate:g} readings/s for {latency_seconds:g} s through both jobs and Debezium")
    result["latency"] = H.end_to_end_latency(bench, latency_rate, latency_seconds)
    log(f"  {result['latency']}")

    result["stack_rss_bytes"] = H.stack_rss(bench.stack)
    result["driver_heap_max_bytes"] = H.heap_max(bench.spark)
    result["ratios"] = ratios(cases)
    result["both_jobs_seconds"] = cases["raw_to_mongo"]["seconds_median"] + cases["cdc_to_cassandra"]["seconds_median"]
    result["targets"] = targets(result)
    result["seconds"] = time.perf_counter() - begun
    return result


def ratios(cases: dict[str, Any]) -> dict[str, float]:
    def rate(name: str) -> float:
        return cases[name]["records_per_s_median"]

    return {
        "raw_to_mongo / raw ceiling": rate("raw_to_mongo") / rate("raw_ceiling"),
        "raw_to_mongo / seeds": rate("raw_to_mongo") / rate("seeds_insert_one"),
        "cdc_to_cassandra / cdc ceiling": rate("cdc_to_cassandra") / rate("cdc_ceiling"),
    }


def targets(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    checks: dict[str, dict[str, Any]] = {
        name: {"target": f">= {goal:g}", "value": result["ratios"][name], "met": result["ratios"][name] >= goal}
        for name, goal in TARGETS.items()
    }
    p95 = result["latency"]["p95_s"]
    checks["end-to-end p95 (s)"] = {"target": "<= 5", "value": p95, "met": p95 <= 5}
    both = result["both_jobs_seconds"]
    checks["both jobs over the data (s)"] = {"target": "< 300", "value": both, "met": both < 300}
    heap = max(c["driver_heap_peak_bytes"] or 0 for c in result["cases"].values()) / 2**30
    checks["driver heap peak (GiB)"] = {"target": "<= 2", "value": heap, "met": heap <= 2}
    return checks


# --- output ---------------------------------------------------------------------------------


CASE_LABELS = {
    "raw_ceiling": "raw ceiling (Kafka → from_json → noop)",
    "raw_to_mongo": "raw_to_mongo (MongoDB + Delta bronze + quarantine)",
    "seeds_insert_one": "seeds' design (kafka-python + insert_one)",
    "cdc_ceiling": "CDC ceiling (CDC topic → envelope parse → noop)",
    "cdc_to_cassandra": "cdc_to_cassandra (readings + aggregates)",
}


def table(result: dict[str, Any]) -> str:
    """The README's table: one row per case, then the latency, the ratios and the targets."""
    m = result["machine"]
    lines = [
        f"Measured {result['started_at'][:10]} on {m['cpus']} cores ({m['cpu_model']}), "
        f"{m['memory_bytes'] / 2**30:.0f} GiB; {result['prepare']['records']:,} readings; "
        f"median of {result['settings']['runs']} runs (min–max); whole bench {result['seconds'] / 60:.1f} min.",
        "",
        "| case | records/s median | min–max | seconds (median) | driver heap peak |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, label in CASE_LABELS.items():
        case = result["cases"][name]
        heap = case["driver_heap_peak_bytes"]
        lines.append(
            f"| {label} | {case['records_per_s_median']:,.0f} | {case['records_per_s_min']:,.0f}–"
            f"{case['records_per_s_max']:,.0f} | {case['seconds_median']:.1f} | "
            f"{'—' if heap is None else f'{heap / 2**20:,.0f} MiB'} |"
        )
    lat, debezium = result["latency"], result["debezium"]
    lines += [
        "",
        f"End-to-end latency (send → Cassandra write), {lat['rate_per_s']:g} readings/s for {lat['seconds']:g} s, "
        f"trigger {lat['trigger_interval']}: p50 {lat['p50_s']:.1f} s, p95 {lat['p95_s']:.1f} s, "
        f"p99 {lat['p99_s']:.1f} s, max {lat['max_s']:.1f} s ({lat['samples']} samples).",
        f"Debezium snapshot of {debezium['records']:,} documents: {debezium['debezium_seconds']:.0f} s. "
        f"Local stack RSS: {sum(result['stack_rss_bytes'].values()) / 2**30:.1f} GiB.",
        "",
        "| target | goal | measured | met |",
        "|---|---|---:|---|",
    ]
    for name, check in result["targets"].items():
        lines.append(f"| {name} | {check['target']} | {check['value']:.2f} | {'yes' if check['met'] else '**no**'} |")
    return "\n".join(lines)


def chart(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(CASE_LABELS)
    medians = [result["cases"][n]["records_per_s_median"] for n in names]
    low = [m - result["cases"][n]["records_per_s_min"] for n, m in zip(names, medians, strict=True)]
    high = [result["cases"][n]["records_per_s_max"] - m for n, m in zip(names, medians, strict=True)]
    figure, (rates, latency) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [2.2, 1]})
    rates.barh([CASE_LABELS[n] for n in names], medians, xerr=[low, high], color="#4c72b0")
    rates.invert_yaxis()
    rates.set_xlabel("records/s (median, min–max)")
    rates.set_title(f"throughput, {result['prepare']['records']:,} readings")
    lat = result["latency"]
    labels = ["p50", "p95", "p99", "max"]
    latency.bar(labels, [lat[f"{k}_s"] for k in ("p50", "p95", "p99", "max")], color="#dd8452")
    latency.axhline(5, color="grey", linestyle="--", linewidth=1)
    latency.set_ylabel("seconds")
    latency.set_title(f"send → Cassandra, {lat['rate_per_s']:g}/s")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_results(result: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stamp = result["started_at"].replace(":", "").replace("-", "").replace("+0000", "Z")
    document = json.dumps(result, indent=2, default=str)
    (out / f"bench-{stamp}.json").write_text(document)
    (out / "latest.json").write_text(document)
    chart(result, out / "latest.png")
    return out / "latest.json"


def publish(out: Path) -> None:
    """Copy the latest result to tests/bench/results/ and put its table into the README."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copy(out / "latest.json", RESULTS_DIR / "latest.json")
    shutil.copy(out / "latest.png", RESULTS_DIR / "latest.png")
    readme = README.read_text()
    head, _, rest = readme.partition(TABLE_BEGIN)
    _, _, tail = rest.partition(TABLE_END)
    result = json.loads((out / "latest.json").read_text())
    README.write_text(f"{head}{TABLE_BEGIN}\n{table(result)}\n{TABLE_END}{tail}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["table"]:
        source = Path(argv[1]) if len(argv) > 1 else RESULTS_DIR / "latest.json"
        print(table(json.loads(source.read_text())))
        return 0
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per case (median, min, max)")
    parser.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        help=f"readings to replay (default {DEFAULT_LIMIT:,}; 0: all 210,384, far past 20 min on 2 cores)",
    )
    parser.add_argument("--seed-limit", type=int, default=30_000, help="messages the seeds' consumer inserts per run")
    parser.add_argument("--latency-rate", type=float, default=20.0, help="readings per second in the latency case")
    parser.add_argument("--latency-seconds", type=float, default=120.0)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / ".runs" / "bench")
    parser.add_argument("--publish", action="store_true", help="also update tests/bench/results/ and README.md")
    args = parser.parse_args(argv)

    from jobs.config import load_config
    from jobs.session import build_spark
    from stack.core import Stack

    data_dir = Path(os.environ.get("AQSTREAM_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
    stack = Stack()
    not_healthy = [s.name for s in stack.status() if not s.healthy]
    if not_healthy:
        stack.up(not_healthy, log=lambda msg: print(f"[stack] {msg}"))
    spark = build_spark(load_config(), "aqstream-bench", master=os.environ.get("AQSTREAM_SPARK_MASTER", "local[2]"))
    spark.sparkContext.setLogLevel("WARN")
    print(f"Spark UI: {spark.sparkContext.uiWebUrl}")
    work = args.out / "work"  # checkpoints, Delta tables, job logs of this run; kept until the next
    shutil.rmtree(work, ignore_errors=True)
    bench = H.Bench(stack, spark, data_dir, work, limit=args.limit or None)
    try:
        result = run_bench(bench, args.runs, args.seed_limit, args.latency_rate, args.latency_seconds)
    finally:
        bench.cleanup()
        spark.stop()
        if not_healthy:
            stack.down(log=lambda msg: print(f"[stack] {msg}"))
    path = write_results(result, args.out)
    print(table(result))
    print(f"\nwrote {path} and {path.with_suffix('.png')}")
    if args.publish:
        publish(args.out)
        print(f"published to {RESULTS_DIR} and README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

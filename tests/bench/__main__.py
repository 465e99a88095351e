"""make bench: throughput and latency of both jobs, side by side with their ceilings, the stores' own rates and a peer.

Usage:
    python -m tests.bench [--runs 1] [--limit 0] [--seed-limit 30000] [--latency-rates 20,200]
                          [--latency-seconds 60] [--small-batch-readings 1000] [--out .runs/bench] [--publish]
    python -m tests.bench table [FILE]     # the README table of a result JSON

One invocation, one machine, the same data for every case: the six UCI Beijing stations
(``$AQSTREAM_DATA_DIR/bench``, 210,384 hourly readings: all of them by default, ``--limit`` N the
first N) replayed once into a raw topic. Cases, each run ``--runs`` times with the runs interleaved
(ceiling, job, …, ceiling, job, …):

1. raw ceiling        Kafka → decode + from_json + checks (the job's own) → noop
2. raw_to_mongo       the shipped job: MongoDB + Delta bronze + quarantine
3. seeds insert_one   kafka-python consumer, one insert_one per message (first ``--seed-limit`` messages)
4. mongo bulk upsert  the MongoDB server's own rate: pymongo unordered bulk ReplaceOne upserts (512 per
                      call) of the job's documents, built before the timing
5. mongo sink peer    Kafka Connect's MongoDB sink (Debezium's, conf/connect/mongodb-sink.json) writing the
                      raw topic into another collection: what a user would deploy instead of Spark
6. cdc ceiling        the CDC topic Debezium made of case 2's writes → envelope parse → noop
   cdc_to_cassandra   the shipped job: readings + window aggregates
   cassandra write    a plain Spark Cassandra Connector df.write of the same reading rows (cached first)
7. small batches      each job in-process on ~1,000 readings, 50 per micro-batch: median batch and step
                      seconds from the jobs' batch log lines (the first 3 batches skipped)
8. latency            per rate of ``--latency-rates``: both jobs via jobs.submit on their default triggers,
                      Debezium between, a steady trickle; send → MongoDB write → CDC topic → Cassandra
                      write per hop (p50/p95/p99), and when each reading's 1 h aggregate row appears

The Spark throughput cases report their first micro-batch apart from the steady state (the rate
over the remaining batches). Writes ``<out>/bench-<UTC stamp>.json``, ``<out>/latest.json`` and
``<out>/latest.png``; ``--publish`` also copies them to tests/bench/results/ and rewrites the
README's table. Starts the local stack if it is not up (and stops it again); `make demo`'s set-up
is enough. docs/bench.md says how each case works.
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

# the whole Beijing replay (210,384 readings) once: the issue-19 targets are stated on it
DEFAULT_LIMIT: int | None = None
DEFAULT_RUNS = 1
DEFAULT_LATENCY_RATES = (20.0, 200.0)
TARGET_LATENCY_RATE = 20.0  # the rate the latency targets are stated at; the others are reported

RAW_JOB, CDC_JOB = "raw_to_mongo", "cdc_to_cassandra"  # the jobs' main query names

TARGETS = {
    "raw_to_mongo / raw ceiling": 0.25,
    "raw_to_mongo / seeds": 20.0,
    "raw_to_mongo / mongo bulk upsert": 0.70,
    "raw_to_mongo / mongo sink peer": 1.0,
    "cdc_to_cassandra / cdc ceiling": 0.25,
    "cdc_to_cassandra / cassandra plain write": 0.50,
}
RATIO_CASES = {
    "raw_to_mongo / raw ceiling": ("raw_to_mongo", "raw_ceiling"),
    "raw_to_mongo / seeds": ("raw_to_mongo", "seeds_insert_one"),
    "raw_to_mongo / mongo bulk upsert": ("raw_to_mongo", "mongo_bulk_upsert"),
    "raw_to_mongo / mongo sink peer": ("raw_to_mongo", "mongo_sink_peer"),
    "cdc_to_cassandra / cdc ceiling": ("cdc_to_cassandra", "cdc_ceiling"),
    "cdc_to_cassandra / cassandra plain write": ("cdc_to_cassandra", "cassandra_plain_write"),
    # --monitoring-overhead: the same job with its listener and metrics on, over the job with them off
    "raw_to_mongo monitored / off": ("raw_to_mongo_monitored", "raw_to_mongo"),
    "cdc_to_cassandra monitored / off": ("cdc_to_cassandra_monitored", "cdc_to_cassandra"),
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


def _monitoring_order(run: int, compare: bool) -> tuple[bool, ...]:
    """Monitoring off only; or off and on, the order alternating by run so neither always goes first."""
    if not compare:
        return (False,)
    return (False, True) if run % 2 == 0 else (True, False)


def run_bench(
    bench: H.Bench,
    runs: int,
    seed_limit: int | None,
    latency_rates: list[float],
    latency_seconds: float,
    small_batch_readings: int = 1000,
    small_batch_size: int = 50,
    log=print,
    monitoring_overhead: bool = False,
) -> dict[str, Any]:
    """Every case in turn on the same topic contents; returns the result document."""
    result: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine()}
    result["settings"] = {
        "runs": runs,
        "limit": bench.limit,
        "seed_limit": seed_limit,
        "latency_rates": latency_rates,
        "latency_seconds": latency_seconds,
        "small_batch_readings": small_batch_readings,
        "small_batch_size": small_batch_size,
        "monitoring_overhead": monitoring_overhead,
        # the stack's authentication (AQSTREAM_AUTHENTICATION): Kafka SASL/SCRAM and ACLs, Cassandra logins
        "authentication": bench.stack.cfg.authentication,
        "spark_master": bench.spark.sparkContext.master,
        "shuffle_partitions": bench.spark.conf.get("spark.sql.shuffle.partitions"),
    }
    begun = time.perf_counter()
    phases: dict[str, float] = {}

    def phase(name: str, started: float) -> None:
        phases[name] = phases.get(name, 0.0) + time.perf_counter() - started

    started = time.perf_counter()
    log("preparing: the Beijing data into the raw topic with the replay collector")
    result["prepare"] = bench.prepare_raw_topic()
    log(f"  {result['prepare']}")
    phase("prepare", started)

    ceiling, job, seeds, bulk, sink, written, job_on = [], [], [], [], [], [], []
    for i in range(runs):
        started = time.perf_counter()
        ceiling.append(H.raw_ceiling(bench, i))
        log(f"raw ceiling run {i + 1}: {ceiling[-1].rate:,.0f} records/s")
        for monitored in _monitoring_order(i, monitoring_overhead):
            run, config = H.raw_to_mongo_job(bench, i, monitored)
            (job_on if monitored else job).append(run)
            if not monitored:
                written.append(config)
            label = "raw_to_mongo" + (" (monitored)" if monitored else "")
            log(f"{label} run {i + 1}: {run.rate:,.0f} records/s, landed {run.landed}")
        phase("raw_to_mongo and its ceiling", started)
        started = time.perf_counter()
        seeds.append(H.seeds_consumer(bench, i, seed_limit))
        log(f"seeds insert_one run {i + 1}: {seeds[-1].rate:,.0f} records/s ({seeds[-1].records} records)")
        bulk.append(H.mongo_bulk_ceiling(bench, i))
        log(f"mongo bulk upsert run {i + 1}: {bulk[-1].rate:,.0f} records/s, landed {bulk[-1].landed}")
        sink.append(H.mongo_sink_peer(bench, i))
        log(f"mongo sink peer run {i + 1}: {sink[-1].rate:,.0f} records/s, {sink[-1].details}")
        phase("seeds, bulk upsert, sink peer", started)
    cases = {
        "raw_ceiling": H.summarize(ceiling),
        "raw_to_mongo": H.summarize(job, RAW_JOB),
        **({"raw_to_mongo_monitored": H.summarize(job_on, RAW_JOB)} if job_on else {}),
        "seeds_insert_one": H.summarize(seeds),
        "mongo_bulk_upsert": H.summarize(bulk),
        "mongo_sink_peer": H.summarize(sink),
    }

    started = time.perf_counter()
    log("Debezium: snapshot of the first raw_to_mongo run's collection into the CDC topic")
    result["debezium"] = H.capture_with_debezium(bench, written[0])
    log(f"  {result['debezium']}")
    phase("Debezium snapshot", started)
    cdc_ceiling, cdc_job, plain, cdc_on = [], [], [], []
    for i in range(runs):
        started = time.perf_counter()
        cdc_ceiling.append(H.cdc_ceiling(bench, i))
        log(f"cdc ceiling run {i + 1}: {cdc_ceiling[-1].rate:,.0f} records/s")
        for monitored in _monitoring_order(i, monitoring_overhead):
            run, config = H.cdc_to_cassandra_job(bench, i, monitored)
            (cdc_on if monitored else cdc_job).append(run)
            if not monitored:
                cdc_config = config
            label = "cdc_to_cassandra" + (" (monitored)" if monitored else "")
            log(f"{label} run {i + 1}: {run.rate:,.0f} records/s, landed {run.landed}")
        phase("cdc_to_cassandra and its ceiling", started)
        started = time.perf_counter()
        plain.append(H.cassandra_plain_write(bench, i, cdc_config))
        log(f"cassandra plain write run {i + 1}: {plain[-1].rate:,.0f} records/s, landed {plain[-1].landed}")
        phase("cassandra plain write", started)
    cases["cdc_ceiling"] = H.summarize(cdc_ceiling)
    cases["cdc_to_cassandra"] = H.summarize(cdc_job, CDC_JOB)
    if cdc_on:
        cases["cdc_to_cassandra_monitored"] = H.summarize(cdc_on, CDC_JOB)
    cases["cassandra_plain_write"] = H.summarize(plain)
    result["cases"] = cases

    started = time.perf_counter()
    log(f"small batches: {small_batch_readings} readings, {small_batch_size} per micro-batch, each job in-process")
    result["small_batches"] = H.small_batches(bench, small_batch_readings, small_batch_size)
    log(f"  {_small_batch_line(result['small_batches'])}")
    phase("small batches", started)

    result["latency"] = []
    for rate in latency_rates:
        started = time.perf_counter()
        log(f"latency: {rate:g} readings/s for {latency_seconds:g} s through both jobs and Debezium")
        result["latency"].append(H.end_to_end_latency(bench, rate, latency_seconds))
        log(f"  {_latency_line(result['latency'][-1])}")
        phase(f"latency {rate:g}/s", started)

    result["stack_rss_bytes"] = H.stack_rss(bench.stack)
    result["driver_heap_max_bytes"] = H.heap_max(bench.spark)
    result["ratios"] = ratios(cases)
    result["both_jobs_seconds"] = cases["raw_to_mongo"]["seconds_median"] + cases["cdc_to_cassandra"]["seconds_median"]
    result["phase_seconds"] = phases
    result["seconds"] = time.perf_counter() - begun
    result["targets"] = targets(result)
    return result


def ratios(cases: dict[str, Any]) -> dict[str, float | None]:
    def rate(name: str) -> float | None:
        return cases[name]["records_per_s_median"] if name in cases else None

    out: dict[str, float | None] = {}
    for name, (job, reference) in RATIO_CASES.items():
        numerator, denominator = rate(job), rate(reference)
        out[name] = numerator / denominator if numerator is not None and denominator else None
    return out


def target_latency(result: dict[str, Any]) -> dict[str, Any] | None:
    """The latency run the targets are stated at (20 readings/s), else the slowest rate run."""
    runs = result.get("latency") or []
    if isinstance(runs, dict):  # results written before the latency split
        return runs
    for run in runs:
        if run["rate_per_s"] == TARGET_LATENCY_RATE:
            return run
    return min(runs, key=lambda r: r["rate_per_s"]) if runs else None


def targets(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    def check(target: str, value: float | None, met: bool | None) -> dict[str, Any]:
        return {"target": target, "value": value, "met": bool(met) if value is not None else False}

    checks: dict[str, dict[str, Any]] = {
        name: check(f">= {goal:g}", result["ratios"].get(name), (result["ratios"].get(name) or 0) >= goal)
        for name, goal in TARGETS.items()
    }
    lat = target_latency(result)
    if lat is not None:
        rate = f"{lat['rate_per_s']:g}/s"
        checks[f"end-to-end p95 at {rate} (s)"] = check("<= 5", lat["p95_s"], (lat["p95_s"] or 1e9) <= 5)
        checks[f"end-to-end p99 at {rate} (s)"] = check("<= 10", lat["p99_s"], (lat["p99_s"] or 1e9) <= 10)
        fresh = (lat.get("freshness_1h") or {}).get("p95_s")
        checks[f"1 h aggregate freshness p95 at {rate} (s)"] = check("<= 30", fresh, (fresh or 1e9) <= 30)
    small = result.get("small_batches")
    if small:
        for job, main, goal in ((RAW_JOB, RAW_JOB, 1.0), (CDC_JOB, CDC_JOB, 1.5)):
            value = H.small_batch_seconds(small[job], main)
            checks[f"{job} batch of ~{small['max_offsets_per_trigger']} (s, median)"] = check(
                f"<= {goal:g}", value, (value if value is not None else 1e9) <= goal
            )
    both = result["both_jobs_seconds"]
    readings = result["prepare"]["records"]
    checks[f"both jobs over {readings:,} readings (s)"] = check("<= 180", both, both <= 180)
    heap = max(c["driver_heap_peak_bytes"] or 0 for c in result["cases"].values()) / 2**30
    checks["driver heap peak (GiB)"] = check("<= 2", heap, heap <= 2)
    minutes = result["seconds"] / 60
    checks["whole bench (min)"] = check("<= 20", minutes, minutes <= 20)
    return checks


# --- output ---------------------------------------------------------------------------------


CASE_LABELS = {
    "raw_ceiling": "raw ceiling (Kafka → from_json → noop)",
    "raw_to_mongo": "raw_to_mongo (MongoDB + Delta bronze + quarantine)",
    "raw_to_mongo_monitored": "raw_to_mongo, its listener and metrics on (--monitoring-overhead)",
    "seeds_insert_one": "seeds' design (kafka-python + insert_one)",
    "mongo_bulk_upsert": "MongoDB bulk upsert (pymongo, 512 per call)",
    "mongo_sink_peer": "peer: Kafka Connect MongoDB sink (Debezium)",
    "cdc_ceiling": "CDC ceiling (CDC topic → envelope parse → noop)",
    "cdc_to_cassandra": "cdc_to_cassandra (readings + aggregates)",
    "cdc_to_cassandra_monitored": "cdc_to_cassandra, its listener and metrics on (--monitoring-overhead)",
    "cassandra_plain_write": "Cassandra plain df.write (same reading rows)",
}


def _fmt(value: float | None, spec: str = ",.0f", none: str = "—") -> str:
    return none if value is None else format(value, spec)


def _latency_line(lat: dict[str, Any]) -> str:
    hops = lat.get("hops") or {}
    split = "; ".join(
        f"{name.replace('_', ' ')} p50 {_fmt(h['p50_s'], '.2f')} / p95 {_fmt(h['p95_s'], '.2f')} s"
        for name, h in hops.items()
    )
    fresh = lat.get("freshness_1h") or {}
    incomplete = "" if lat.get("complete", True) else f" INCOMPLETE: {lat.get('missing')} readings did not arrive;"
    return (
        f"{lat['rate_per_s']:g} readings/s for {lat['seconds']:g} s, trigger {lat['trigger_interval']}"
        + (f" (aggregates {lat['aggregates_trigger_interval']})" if lat.get("aggregates_trigger_interval") else "")
        + f":{incomplete} "
        f"send → Cassandra p50 {_fmt(lat['p50_s'], '.1f')} s, p95 {_fmt(lat['p95_s'], '.1f')} s, "
        f"p99 {_fmt(lat['p99_s'], '.1f')} s, max {_fmt(lat['max_s'], '.1f')} s ({lat['samples']} samples). "
        + (f"By hop: {split} (MongoDB write time to {lat.get('mongo_write_resolution', '?')}). " if hops else "")
        + (
            f"1 h aggregate row first seen after send: p50 {_fmt(fresh.get('p50_s'), '.1f')} s, "
            f"p95 {_fmt(fresh.get('p95_s'), '.1f')} s ({fresh.get('samples')} rows, "
            f"{fresh.get('never_seen')} never seen; polled every {_fmt(fresh.get('poll_interval_median_s'), '.2f')} s)."
            if fresh
            else ""
        )
    )


def _small_batch_line(small: dict[str, Any]) -> str:
    parts = []
    for job in (RAW_JOB, CDC_JOB):
        for query, q in small[job]["queries"].items():
            steps = ", ".join(f"{k} {v:.2f}" for k, v in sorted(q["median_step_seconds"].items()))
            parts.append(
                f"{query}: median {_fmt(q['median_seconds'], '.2f')} s per batch of {_fmt(q['median_rows'], '.0f')} "
                f"rows over {q['measured_batches']} batches" + (f" (steps, median s: {steps})" if steps else "")
            )
    return (
        f"Small batches ({small['readings']:,} readings, maxOffsetsPerTrigger {small['max_offsets_per_trigger']}, "
        f"first {small['skipped_batches']} batches skipped): " + "; ".join(parts) + "."
    )


def table(result: dict[str, Any]) -> str:
    """The README's table: one row per case, then latency, small batches, the ratios and the targets."""
    m = result["machine"]
    lines = [
        f"Measured {result['started_at'][:10]} on {m['cpus']} cores ({m['cpu_model']}), "
        f"{m['memory_bytes'] / 2**30:.0f} GiB; {result['prepare']['records']:,} readings; "
        f"median of {result['settings']['runs']} run(s) (min–max); whole bench {result['seconds'] / 60:.1f} min; "
        f"authentication {'on' if result['settings'].get('authentication', True) else 'off'}.",
        "",
        "| case | records/s median | min–max | seconds (median) | first batch (s, rows) | steady records/s "
        "| driver heap peak |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, label in CASE_LABELS.items():
        case = result["cases"].get(name)
        if case is None:
            continue
        heap = case["driver_heap_peak_bytes"]
        first = case.get("first_batch_seconds_median")
        first_text = "—" if first is None else f"{first:.1f} ({case.get('first_batch_rows') or 0:,})"
        lines.append(
            f"| {label} | {_fmt(case['records_per_s_median'])} | {_fmt(case['records_per_s_min'])}–"
            f"{_fmt(case['records_per_s_max'])} | {_fmt(case['seconds_median'], '.1f')} | {first_text} | "
            f"{_fmt(case.get('steady_records_per_s_median'))} | "
            f"{'—' if heap is None else f'{heap / 2**20:,.0f} MiB'} |"
        )
    lines.append("")
    runs = result["latency"] if isinstance(result["latency"], list) else [result["latency"]]
    lines += [f"End-to-end latency, {_latency_line(lat)}".rstrip() for lat in runs]
    if result.get("small_batches"):
        lines.append(_small_batch_line(result["small_batches"]))
    sink = ((result["cases"].get("mongo_sink_peer") or {}).get("details") or [None])[0]
    if sink:
        lines.append(
            f"Sink peer: {sink['documents']:,} documents written ({sink['stopped']}), {sink['not_written']:,} of "
            f"{sink['raw_distinct']:,} records not written, {sink['dead_letter_records']:,} in its dead-letter topic"
            + (f"; error: {sink['error'].splitlines()[0][:200]}" if sink.get("error") else "")
            + "."
        )
    overhead = [name for name in RATIO_CASES if "monitored" in name and result["ratios"].get(name) is not None]
    if overhead:
        lines.append(
            "Monitoring on / off (records/s; noise: each case's min–max above): "
            + ", ".join(f"{name.split(' ')[0]} {result['ratios'][name]:.2f}" for name in overhead)
            + "."
        )
    debezium = result["debezium"]
    lines += [
        f"Debezium snapshot of {debezium['records']:,} documents: {debezium['debezium_seconds']:.0f} s. "
        f"Local stack RSS: {sum(result['stack_rss_bytes'].values()) / 2**30:.1f} GiB.",
        "",
        "| target | goal | measured | met |",
        "|---|---|---:|---|",
    ]
    for name, check in result["targets"].items():
        lines.append(
            f"| {name} | {check['target']} | {_fmt(check['value'], '.2f')} | {'yes' if check['met'] else '**no**'} |"
        )
    return "\n".join(lines)


def chart(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in CASE_LABELS if n in result["cases"]]
    medians = [result["cases"][n]["records_per_s_median"] or 0 for n in names]
    low = [m - (result["cases"][n]["records_per_s_min"] or 0) for n, m in zip(names, medians, strict=True)]
    high = [(result["cases"][n]["records_per_s_max"] or 0) - m for n, m in zip(names, medians, strict=True)]
    figure, (rates, latency, small) = plt.subplots(1, 3, figsize=(18, 5), gridspec_kw={"width_ratios": [2.2, 1.3, 1.1]})
    colors = ["#dd8452" if n in ("raw_to_mongo", "cdc_to_cassandra") else "#4c72b0" for n in names]
    rates.barh([CASE_LABELS[n] for n in names], medians, xerr=[low, high], color=colors)
    rates.invert_yaxis()
    rates.set_xlabel("records/s (median, min–max)")
    rates.set_title(f"throughput, {result['prepare']['records']:,} readings")

    runs = result["latency"] if isinstance(result["latency"], list) else [result["latency"]]
    hop_names = ["send_to_mongo", "mongo_to_cdc", "cdc_to_cassandra"]
    groups = [*hop_names, "total", "1h aggregate"]
    width = 0.8 / max(1, len(runs))
    for k, lat in enumerate(runs):
        hops = lat.get("hops") or {}
        p95 = [(hops.get(h) or {}).get("p95_s") or 0 for h in hop_names]
        p95 += [lat.get("p95_s") or 0, (lat.get("freshness_1h") or {}).get("p95_s") or 0]
        xs = [i + k * width for i in range(len(groups))]
        latency.bar(xs, p95, width=width, label=f"{lat['rate_per_s']:g}/s")
    latency.set_xticks([i + width * (len(runs) - 1) / 2 for i in range(len(groups))])
    latency.set_xticklabels([g.replace("_", " ") for g in groups], rotation=20, ha="right")
    latency.axhline(5, color="grey", linestyle="--", linewidth=1)
    latency.set_ylabel("p95 seconds")
    latency.set_title("latency by hop (p95)")
    latency.legend()

    small_batches = result.get("small_batches")
    if small_batches:
        bars = []
        for job in (RAW_JOB, CDC_JOB):
            for query, q in small_batches[job]["queries"].items():
                bars.append((query, q["median_step_seconds"], q["median_seconds"] or 0))
        steps = sorted({s for _, st, _ in bars for s in st})
        bottoms = [0.0] * len(bars)
        for step in steps:
            values = [st.get(step, 0.0) for _, st, _ in bars]
            small.bar(range(len(bars)), values, bottom=bottoms, label=step)
            bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
        small.scatter(range(len(bars)), [total for _, _, total in bars], color="black", marker="_", s=400, zorder=3)
        small.set_xticks(range(len(bars)))
        small.set_xticklabels([name for name, _, _ in bars], rotation=20, ha="right")
        small.set_ylabel("seconds (median steps; — = median batch)")
        small.set_title(f"batch of ~{small_batches['max_offsets_per_trigger']} readings")
        small.legend(fontsize=7)
    else:
        small.set_axis_off()
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


def _rates(text: str) -> list[float]:
    rates = [float(part) for part in text.split(",") if part.strip()]
    if not rates or any(rate <= 0 for rate in rates):
        raise argparse.ArgumentTypeError(f"{text!r}: comma-separated readings per second, each > 0")
    return rates


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["table"]:
        source = Path(argv[1]) if len(argv) > 1 else RESULTS_DIR / "latest.json"
        print(table(json.loads(source.read_text())))
        return 0
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="runs per throughput case (median, min, max)")
    parser.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT or 0,
        help="readings to replay (default 0: all 210,384; N: the first N in event-time order)",
    )
    parser.add_argument("--seed-limit", type=int, default=30_000, help="messages the seeds' consumer inserts per run")
    parser.add_argument(
        "--latency-rates",
        type=_rates,
        default=list(DEFAULT_LATENCY_RATES),
        help="readings per second of the latency runs, comma-separated (default 20,200; targets at 20)",
    )
    parser.add_argument("--latency-seconds", type=float, default=60.0, help="length of each latency trickle (s)")
    parser.add_argument("--small-batch-readings", type=int, default=1000, help="readings of the small-batch case")
    parser.add_argument("--small-batch-size", type=int, default=50, help="maxOffsetsPerTrigger of the small-batch case")
    parser.add_argument(
        "--monitoring-overhead",
        action="store_true",
        help="also run each job with its progress listener and metrics endpoint on (scraped every 5 s)",
    )
    parser.add_argument("--out", type=Path, default=REPO_ROOT / ".runs" / "bench")
    parser.add_argument("--publish", action="store_true", help="also update tests/bench/results/ and README.md")
    args = parser.parse_args(argv)

    from jobs.config import load_config
    from jobs.session import build_spark
    from stack.core import Stack, StackError

    data_dir = Path(os.environ.get("AQSTREAM_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
    stack = Stack()
    if args.publish and not stack.cfg.authentication:
        parser.error("--publish: the README's table is of the stack as shipped, with authentication on")
    # every config of the run, this process's and its subprocesses' (the collector, the submitted jobs), reads
    # this stack's secrets and presents no login where it runs without authentication
    os.environ.setdefault("AQSTREAM__CREDENTIALS__SECRETS_DIR", str(stack.secrets_dir))
    os.environ.update(stack.cfg.pipeline_auth_env())
    not_healthy = [s.name for s in stack.status() if not s.healthy]
    if not_healthy:
        try:
            stack.up(not_healthy, log=lambda msg: print(f"[stack] {msg}"))
        except StackError as exc:  # it names the service and carries the service's own message
            raise SystemExit(f"bench: the stack did not start: {exc}") from None
    master = os.environ.get("AQSTREAM_SPARK_MASTER", "local[2]")
    spark = build_spark(load_config(), "aqstream-bench", master=master, cassandra_role="cdc")
    spark.sparkContext.setLogLevel("WARN")
    print(f"Spark UI: {spark.sparkContext.uiWebUrl}")
    work = args.out / "work"  # checkpoints, Delta tables, job logs of this run; kept until the next
    shutil.rmtree(work, ignore_errors=True)
    bench = H.Bench(stack, spark, data_dir, work, limit=args.limit or None)
    try:
        result = run_bench(
            bench,
            args.runs,
            args.seed_limit,
            args.latency_rates,
            args.latency_seconds,
            args.small_batch_readings,
            args.small_batch_size,
            monitoring_overhead=args.monitoring_overhead,
        )
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

"""``python -m collectors {openmeteo,openaq [backfill],replay} …``: parse args, build one settings object, run.

Exit status: 0 done; 2 a failure the user must fix (bad option, refused API key/parameter);
1 anything else.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from collectors import openaq, openmeteo, replay
from collectors.httpclient import HttpClient, HttpError, HttpSettings
from collectors.metrics import CollectorMetrics
from collectors.sink import KafkaSettings, KafkaSink, NdjsonSink, SendReport, SentState, Spool
from collectors.stations import load_cities
from jobs.config import ConfigError, PipelineConfig, load_config
from jobs.kafka_auth import kafka_python_security
from jobs.metrics_endpoint import serve
from jobs.secret_refs import SecretError, SecretRef

log = logging.getLogger("collectors")

REPO_ROOT = Path(__file__).resolve().parents[1]
MAX_PAST_DAYS = 92  # the Open-Meteo air-quality API's limit
_RAW = argparse.RawDescriptionHelpFormatter


class UsageError(Exception):
    """A mistake in the options or the environment; the message says what to change."""


class CollectorSettings(BaseModel):
    """Everything a run needs, built once from the command line and passed down."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kafka: KafkaSettings
    http: HttpSettings
    spool_dir: Path
    out: Path | None = None  # NDJSON instead of Kafka ("-" = stdout)
    every: timedelta | None = None
    metrics_host: str
    metrics_port: int = Field(ge=0, le=65535)  # the /metrics endpoint while the run lasts; 0: none
    # where the OpenAQ key is (credentials.openaq_api_key): read only by a run that calls the API
    openaq_api_key: SecretRef | None = None


# what one collection gives: its readings, and the readings it dropped by reason
Collected = tuple[list[dict[str, Any]], dict[str, int]]


def parse_interval(text: str) -> timedelta:
    match = re.fullmatch(r"\s*(\d+)\s*(s|sec|m|min|h|d)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not an interval like 15m, 1h or 1d")
    n, unit = int(match.group(1)), match.group(2)
    seconds = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}[unit] * n
    if seconds <= 0:
        raise argparse.ArgumentTypeError("the interval must be positive")
    return timedelta(seconds=seconds)


def parse_speed(text: str) -> float | None:
    if text.strip().lower() in ("max", "0"):
        return None
    try:
        speed = float(text.lower().lstrip("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: use max, 1 (real time) or a factor like 60") from None
    if speed <= 0:
        raise argparse.ArgumentTypeError("speed must be positive")
    return speed


def parse_utc(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --- arguments ----------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser, scheduled: bool) -> None:
    group = parser.add_argument_group("output")
    # default: the pipeline config's (conf/pipeline.toml, AQSTREAM__KAFKA__*), the one the jobs read
    group.add_argument("--bootstrap", help="Kafka bootstrap servers (default: kafka.bootstrap_servers)")
    group.add_argument("--topic", help="the raw topic (default: kafka.raw_topic)")
    group.add_argument(
        "--spool-dir", type=Path, default=REPO_ROOT / ".runs" / "spool", help="readings Kafka did not take"
    )
    group.add_argument("--dry-run", action="store_true", help="write NDJSON to stdout instead of Kafka")
    group.add_argument("--out", type=Path, help="write NDJSON to this file instead of Kafka")
    group.add_argument("--batch-size", type=int, default=500, help="readings per Kafka flush")
    group.add_argument("--delivery-timeout-ms", type=int, default=30_000, help="then a reading goes to the spool")
    group.add_argument("--max-block-ms", type=int, default=10_000, help="wait for an absent broker's metadata")
    if scheduled:
        when = parser.add_argument_group("schedule").add_mutually_exclusive_group()
        when.add_argument("--once", action="store_true", help="one collection, then exit (default)")
        when.add_argument("--every", type=parse_interval, help="collect every interval (15m, 1h), aligned to the clock")
        http = parser.add_argument_group("http")
        http.add_argument("--timeout", type=float, default=30.0, help="read timeout, seconds")
        http.add_argument("--retries", type=int, default=5)
        http.add_argument("--backoff-base", type=float, default=1.0, help="seconds; doubled per retry, jittered")
    parser.add_argument_group("monitoring").add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus metrics here while running (default: monitoring.metrics_port_collectors; 0: off)",
    )
    parser.add_argument("--log-level", default="INFO")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m collectors", description="Air-quality collectors → Kafka")
    sub = parser.add_subparsers(dest="command", required=True)

    om = sub.add_parser(
        "openmeteo", help="Open-Meteo air-quality API (no key)", description=openmeteo.__doc__, formatter_class=_RAW
    )
    om.add_argument("--config", type=Path, default=REPO_ROOT / "conf" / "cities.json", help="cities (JSON)")
    om.add_argument("--city", action="append", help="only these city ids (repeatable)")
    om.add_argument("--past-days", type=int, default=0, help=f"backfill this many days (0..{MAX_PAST_DAYS})")
    om.add_argument("--from-file", type=Path, help="a recorded API response instead of the network")
    om.add_argument(
        "--as-of",
        type=parse_utc,
        help="with --from-file: when it was fetched (hours after are forecast); default: <file>.fetched_at beside it,"
        " else the response's current.time; a response with neither is refused",
    )
    om.add_argument(
        "--model",
        help="the model whose columns become the reading in a multi-model response (pm10_<model>, ...);"
        " live: asked as the request's domains",
    )
    _common(om, scheduled=True)

    oa = sub.add_parser(
        "openaq",
        help=f"OpenAQ v3 latest values, or a sensor's history (key in ${openaq.API_KEY_ENV})",
        description=openaq.__doc__,
        formatter_class=_RAW,
    )
    oa.add_argument(
        "action",
        nargs="?",
        choices=["latest", "backfill"],
        default="latest",
        help="latest values (default), or backfill: the history of --sensor between --datetime-from and --datetime-to",
    )
    where = oa.add_mutually_exclusive_group()
    where.add_argument("--country", help="ISO 3166-1 alpha-2, e.g. KE")
    where.add_argument("--bbox", help="minlon,minlat,maxlon,maxlat")
    where.add_argument(
        "--location-ids", help="comma-separated OpenAQ location ids (backfill: the locations that own the sensors)"
    )
    where.add_argument(
        "--parameter", type=int, help="the latest value of one parameter everywhere (/parameters/ID/latest; 2 = PM2.5)"
    )
    oa.add_argument(
        "--from-file",
        type=Path,
        action="append",
        help="recorded responses instead of the network: /locations, /locations|parameters/{id}/latest, /sensors,"
        " /parameters; backfill: pages of /sensors/{id}/measurements|hours|days",
    )
    history = oa.add_argument_group("backfill")
    history.add_argument("--sensor", type=int, action="append", help="a sensor id (repeatable)")
    history.add_argument("--datetime-from", type=parse_utc, help="ISO-8601, e.g. 2023-03-07T05:00:00Z")
    history.add_argument("--datetime-to", type=parse_utc, help="ISO-8601; later than --datetime-from")
    history.add_argument(
        "--endpoint",
        choices=openaq.BACKFILL_ENDPOINTS,
        help="measurements (as reported; default), hours (hourly means) or days (daily means, on the station"
        " openaq-<id>-days)",
    )
    _common(oa, scheduled=True)

    rp = sub.add_parser("replay", help="replay CSV/NDJSON datasets", description=replay.__doc__, formatter_class=_RAW)
    rp.add_argument("--dataset", required=True, choices=["beijing", "kaggle", "ndjson"])
    rp.add_argument("--mapping", type=Path, help="mapping file (default conf/mappings/<dataset>.json)")
    rp.add_argument("--files", type=Path, nargs="+", required=True)
    rp.add_argument("--speed", type=parse_speed, default=None, help="max (default), 1 = real time, N = N× faster")
    rp.add_argument("--limit", type=int, help="at most this many readings per pass")
    rp.add_argument("--loop", action="store_true", help="start over at the end, until stopped")
    rp.add_argument("--restamp", action="store_true", help="shift times so the newest is now (new event ids)")
    _common(rp, scheduled=False)
    return parser


def settings_from_args(args: argparse.Namespace, pipeline: PipelineConfig) -> CollectorSettings:
    """The run's settings: the command line over the pipeline config's Kafka settings."""
    out = Path("-") if args.dry_run else args.out
    return CollectorSettings(
        kafka=KafkaSettings(
            bootstrap_servers=args.bootstrap or pipeline.kafka.bootstrap_servers,
            topic=args.topic or pipeline.kafka.raw_topic,
            batch_size=args.batch_size,
            delivery_timeout_ms=args.delivery_timeout_ms,
            max_block_ms=args.max_block_ms,
            # the secret is read only when the readings go to Kafka
            security=kafka_python_security(pipeline, "collector") if out is None else {},
        ),
        http=HttpSettings(
            read_timeout_s=getattr(args, "timeout", 30.0),
            max_retries=getattr(args, "retries", 5),
            backoff_base_s=getattr(args, "backoff_base", 1.0),
        ),
        spool_dir=args.spool_dir,
        out=out,
        every=getattr(args, "every", None),
        metrics_host=pipeline.monitoring.metrics_host,
        metrics_port=pipeline.monitoring.metrics_port_collectors if args.metrics_port is None else args.metrics_port,
        openaq_api_key=pipeline.credentials.reference("openaq_api_key"),
    )


def openaq_key(settings: CollectorSettings) -> str:
    """The OpenAQ API key, read now; "" when it is not set (a run from recorded responses needs none).
    A reference that names an unreadable file fails here, naming the field and the path."""
    if settings.openaq_api_key is None:
        return ""
    try:
        return settings.openaq_api_key.read().get_secret_value()
    except SecretError as exc:
        if settings.openaq_api_key.source == "env":
            return ""
        raise UsageError(str(exc)) from None


# --- running ------------------------------------------------------------------------------


def make_sink(settings: CollectorSettings) -> KafkaSink | NdjsonSink:
    if settings.out is None:
        return KafkaSink(settings.kafka, Spool(settings.spool_dir))
    if str(settings.out) == "-":
        return NdjsonSink(sys.stdout)
    settings.out.parent.mkdir(parents=True, exist_ok=True)
    return NdjsonSink(open(settings.out, "a", encoding="utf-8"))  # noqa: SIM115 - closed by the run


def install_stop_handlers(stop: threading.Event) -> dict[int, Any]:
    """SIGINT/SIGTERM set ``stop``: the current batch is finished, flushed or spooled, then we exit."""

    def handler(signum, _frame):
        log.info("signal %s: finishing the current batch, then flushing", signal.Signals(signum).name)
        stop.set()

    return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}


def next_aligned(now: datetime, every: timedelta) -> datetime:
    """The next multiple of ``every`` since the epoch (so --every 1h runs at :00)."""
    step = every.total_seconds()
    return datetime.fromtimestamp(math.floor(now.timestamp() / step) * step + step, UTC)


def run_scheduled(
    source: str,
    collect: Callable[[datetime, SentState | None], Collected],
    settings: CollectorSettings,
    stop: threading.Event,
    metrics: CollectorMetrics,
    *,
    skip_sent: bool = True,
) -> int:
    """Collect, send, log the summary line; again every ``settings.every``. ``skip_sent=False`` (a
    backfill) sends readings older than a station's newest sent too: they are history, not repeats."""
    sink = make_sink(settings)
    # only a Kafka run keeps the per-station high-water mark (a dry run must show everything)
    keep_state = skip_sent and isinstance(sink, KafkaSink)
    state = SentState(settings.spool_dir / f"state-{source}.json") if keep_state else None
    try:
        while True:
            now = datetime.now(UTC)
            try:
                readings, dropped = collect(now, state)
            except HttpError as exc:
                metrics.fetch_failed()
                if settings.every is None or (exc.status is not None and 400 <= exc.status < 500):
                    raise
                log.error("%s: %s; next try at the next interval", source, exc)
                readings, dropped = [], {}
            else:
                metrics.fetch_succeeded(len(readings))
            fresh = [r for r in readings if state is None or state.is_new(r)]
            for reason, n in {**dropped, "already_sent": len(readings) - len(fresh)}.items():
                metrics.dropped(reason, n)
            report = sink.send(fresh)
            metrics.delivered(report)
            if state is not None:
                state.record(fresh)
            not_read = ", ".join(f"{reason} {n}" for reason, n in sorted(dropped.items()) if n) or "none"
            log.info(
                "%s: %d readings (%d already sent), sent %d, spooled %d, from spool %d; not read: %s",
                source, len(readings), len(readings) - len(fresh), report.sent, report.spooled, report.from_spool,
                not_read,
            )  # fmt: skip
            if settings.every is None or stop.is_set():
                break
            wake = next_aligned(datetime.now(UTC), settings.every)
            if stop.wait((wake - datetime.now(UTC)).total_seconds()):
                break
    finally:
        sink.close()
    return 0


FETCHED_AT_SUFFIX = ".fetched_at"


def recorded_fetch_time(path: Path, response: dict[str, Any], as_of: datetime | None) -> datetime | None:
    """When a recorded response was fetched: ``--as-of``, else the ``<file>.fetched_at`` beside it
    (one ISO-8601 time), else None if its ``current.time`` says it. A response with none of these
    is refused: its forecast hours could not be told from the observed ones."""
    if as_of is not None:
        return as_of
    beside = path.with_name(path.name + FETCHED_AT_SUFFIX)
    if beside.is_file():
        try:
            return parse_utc(beside.read_text().strip())
        except ValueError:
            raise UsageError(f"{beside}: not an ISO-8601 time like 2026-10-01T08:30:00Z") from None
    if openmeteo.current_time(response) is None:
        raise UsageError(
            f"{path} has no `current` block to say when it was fetched, so its forecast hours cannot be told from"
            f" observed ones: give the fetch time with --as-of 2026-10-01T08:30:00Z, or write it into {beside}"
        )
    return None


def _openmeteo(
    args: argparse.Namespace, settings: CollectorSettings, stop: threading.Event, metrics: CollectorMetrics
) -> int:
    if not 0 <= args.past_days <= MAX_PAST_DAYS:
        raise UsageError(f"--past-days must be 0..{MAX_PAST_DAYS}")
    cities = load_cities(args.config)
    if args.city:
        cities = cities.model_copy(update={"cities": [cities.by_id(c) for c in args.city]})

    def collect(now: datetime, state: SentState | None) -> Collected:
        if args.from_file:
            response = json.loads(args.from_file.read_text())
            station = openmeteo.station_for(response, cities)
            fetched = recorded_fetch_time(args.from_file, response, args.as_of)
            readings, dropped = openmeteo.readings_from_response(
                response, station, now=fetched or now, ingested_at=datetime.now(UTC), model=args.model
            )
            log.info("openmeteo %s: %d observed hours, not read: %s", args.from_file.name, len(readings), dropped)
            if not readings:
                log.warning("openmeteo %s gave no reading", args.from_file)
            return readings, dropped
        past_days = args.past_days
        oldest = state.oldest_newest() if state else None
        if oldest is not None:  # reach back to the last hour sent, so a restart leaves no gap
            past_days = max(past_days, min(MAX_PAST_DAYS, math.ceil((now - oldest) / timedelta(days=1))))
        client = HttpClient(settings.http, metrics=metrics)
        try:
            return openmeteo.fetch(client, cities, past_days, now, model=args.model)
        finally:
            client.close()

    return run_scheduled("openmeteo", collect, settings, stop, metrics)


def _recorded(paths: list[Path]) -> dict[str, openaq.RecordedRows]:
    """Each recorded OpenAQ response's rows, by file."""
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UsageError(f"no such file: {', '.join(missing)}")
    return {str(path): openaq.split_rows(json.loads(path.read_text()).get("results") or []) for path in paths}


def _backfill_window(args: argparse.Namespace) -> openaq.Window:
    if not args.sensor:
        raise UsageError("backfill: name the sensors with --sensor ID (repeatable)")
    if args.datetime_from is None or args.datetime_to is None:
        raise UsageError("backfill: give the range with --datetime-from and --datetime-to (ISO-8601)")
    if args.datetime_from >= args.datetime_to:
        raise UsageError("backfill: --datetime-from must be earlier than --datetime-to")
    if args.country or args.bbox or args.parameter is not None:
        raise UsageError("backfill takes --sensor and --location-ids, not --country, --bbox or --parameter")
    if args.every is not None:
        raise UsageError("backfill runs once: drop --every")
    return openaq.Window(args.datetime_from, args.datetime_to)


def _openaq_backfill(
    args: argparse.Namespace,
    settings: CollectorSettings,
    stop: threading.Event,
    metrics: CollectorMetrics,
    ids: list[int] | None,
    key: str,
) -> int:
    window = _backfill_window(args)
    endpoint = args.endpoint or "measurements"
    if args.from_file:
        if len(args.sensor) != 1:
            raise UsageError("backfill --from-file: give one --sensor (recorded pages do not name their sensor)")
        responses = _recorded(args.from_file)
    elif not key:
        raise UsageError(f"set {_key_source(settings)} to your OpenAQ API key (https://explore.openaq.org/register)")
    elif not ids:
        raise UsageError(
            "backfill: give the locations that own the sensors with --location-ids (OpenAQ's measurement rows do"
            " not say where they were taken)"
        )

    def collect(now: datetime, state: SentState | None) -> Collected:
        if args.from_file:
            return openaq.backfill_from_recorded(
                responses, args.sensor[0], window=window, ingested_at=datetime.now(UTC)
            )
        client = HttpClient(settings.http, headers={"X-API-Key": key}, hints=openaq.HINTS, metrics=metrics)
        try:
            locations = openaq.fetch_locations(client, country=None, bbox=None, location_ids=ids)
            sensors = openaq.sensor_index(locations)
            return openaq.backfill(client, args.sensor, sensors, endpoint=endpoint, window=window)
        finally:
            client.close()

    return run_scheduled("openaq", collect, settings, stop, metrics, skip_sent=False)


def _key_source(settings: CollectorSettings) -> str:
    """What to set for the key: the variable credentials.openaq_api_key names (OPENAQ_API_KEY by default)."""
    ref = settings.openaq_api_key
    return ref.location if ref is not None and ref.source == "env" else "credentials.openaq_api_key"


def _openaq(
    args: argparse.Namespace, settings: CollectorSettings, stop: threading.Event, metrics: CollectorMetrics
) -> int:
    ids = [int(i) for i in args.location_ids.split(",")] if args.location_ids else None
    key = openaq_key(settings)
    if args.action == "backfill":
        return _openaq_backfill(args, settings, stop, metrics, ids, key)
    if args.sensor or args.datetime_from or args.datetime_to or args.endpoint:
        raise UsageError(
            "--sensor, --datetime-from, --datetime-to and --endpoint belong to backfill:"
            " python -m collectors openaq backfill --sensor ID --datetime-from ... --datetime-to ..."
        )
    responses = _recorded(args.from_file) if args.from_file else None
    parameter = None
    if responses is not None and args.parameter is not None:
        parameter = openaq.find_parameter(responses, args.parameter)
        if parameter is None:
            raise UsageError(
                f"--parameter {args.parameter}: no recorded /parameters response among --from-file has it;"
                f" add the response of {openaq.API_URL}/parameters/{args.parameter}"
            )
    if responses is None:
        if not key:
            raise UsageError(
                f"set {_key_source(settings)} to your OpenAQ API key (https://explore.openaq.org/register)"
            )
        if not (args.country or args.bbox or ids or args.parameter is not None):
            raise UsageError("choose locations: --country, --bbox or --location-ids (or one --parameter everywhere)")

    def collect(now: datetime, state: SentState | None) -> Collected:
        if responses is not None:
            return openaq.latest_from_recorded(responses, ingested_at=datetime.now(UTC), parameter=parameter)
        client = HttpClient(settings.http, headers={"X-API-Key": key}, hints=openaq.HINTS, metrics=metrics)
        try:
            if args.parameter is not None:
                return openaq.fetch_parameter_latest(client, args.parameter)
            return openaq.fetch(client, country=args.country, bbox=args.bbox, location_ids=ids)
        finally:
            client.close()

    return run_scheduled("openaq", collect, settings, stop, metrics)


def _replay(
    args: argparse.Namespace, settings: CollectorSettings, stop: threading.Event, metrics: CollectorMetrics
) -> int:
    mapping = None
    if args.dataset != "ndjson" or args.mapping:
        mapping = replay.load_mapping(args.mapping or REPO_ROOT / "conf" / "mappings" / f"{args.dataset}.json")
    missing = [str(p) for p in args.files if not p.is_file()]
    if missing:
        raise UsageError(f"no such file: {', '.join(missing)}")
    sink = make_sink(settings)
    batch: list[dict[str, Any]] = []
    total = SendReport()
    unknown_station = 0  # readings flagged station:unknown (sent, with null coordinates)
    # paced: send each reading as it falls due; as fast as possible: send in batches
    batch_size = 1 if args.speed is not None else settings.kafka.batch_size

    def send() -> None:
        if batch:
            metrics.fetched(len(batch))
        report = sink.send(batch)  # an empty batch still drains the spool
        metrics.delivered(report)
        total.add(report)
        batch.clear()

    def emit(reading: dict[str, Any]) -> None:
        nonlocal unknown_station
        if replay.UNKNOWN_STATION_FLAG in reading["flags"]:
            unknown_station += 1
            metrics.flagged("unknown_station", 1)
        batch.append(reading)
        if len(batch) >= batch_size:
            send()

    try:
        count = replay.replay(
            args.files,
            mapping,
            emit,
            speed=args.speed,
            limit=args.limit,
            loop=args.loop,
            restamp=args.restamp,
            stop=stop,
        )
        send()
    finally:
        sink.close()
    log.info(
        "replay %s: %d readings, sent %d, spooled %d; flagged: unknown_station %d",
        args.dataset,
        count,
        total.sent,
        total.spooled,
        unknown_station,
    )
    return 0


def run(args: argparse.Namespace, settings: CollectorSettings, stop: threading.Event, metrics: CollectorMetrics) -> int:
    """Run the collector ``args.command`` names, counting into ``metrics`` (serving them is ``main``'s job)."""
    command = {"openmeteo": _openmeteo, "openaq": _openaq, "replay": _replay}[args.command]
    return command(args, settings, stop, metrics)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    previous = install_stop_handlers(stop)
    try:
        settings = settings_from_args(args, load_config())
        metrics = CollectorMetrics(args.command)
        server = serve(settings.metrics_host, settings.metrics_port, metrics.registry)
        if server is not None:
            log.info("metrics at %s", server.url)
        try:
            return run(args, settings, stop, metrics)
        finally:
            if server is not None:  # the endpoint lives as long as the run
                server.close()
    except (UsageError, ConfigError) as exc:
        log.error("%s", exc)
        return 2
    except ValidationError as exc:  # a bad setting: name it and stop before anything is sent
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" if e["loc"] else e["msg"] for e in exc.errors()]
        log.error("invalid settings: %s", "; ".join(problems))
        return 2
    except HttpError as exc:
        log.error("%s", exc)
        return 2 if exc.status is not None and 400 <= exc.status < 500 else 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

"""The HTTP API and the page, over a :class:`dashboard.store.Store` (FastAPI; OpenAPI at /docs, /openapi.json).

Every endpoint reads Cassandra by partition key (dashboard/store.py). Bad input is a 4xx naming the
parameter: an unknown station 404, a range reversed or longer than ``dashboard.max_range_days`` 422 on
``end``, an unknown window size or index, or a ``limit`` above ``dashboard.max_page_size``, 422 (FastAPI's
validation). Cassandra not answering is a 503, never a 500.
"""

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import plotly
import swagger_ui_bundle
from cassandra import DriverException, OperationTimedOut
from cassandra.cluster import NoHostAvailable
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from dashboard.categories import current_aqi, legend
from dashboard.ranges import BadParameter, TimeRange, checked_range, days_newest_first
from dashboard.rows import json_row, json_value, latest_alerts
from dashboard.store import Store
from jobs.config import PipelineConfig
from schemas.cassandra import WINDOW_SIZES, buckets_newest_first

STATIC = Path(__file__).resolve().parent / "static"
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
SWAGGER_UI = Path(swagger_ui_bundle.swagger_ui_path)
DEFAULT_ALERTS = 20

WindowSize = Literal[WINDOW_SIZES]  # type: ignore[valid-type]
StationId = Annotated[str, PathParam(min_length=1, max_length=200, description="a station_id of /api/stations")]


def bad_parameter(exc: BadParameter) -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors, naming the query parameter."""
    return HTTPException(422, detail=[{"loc": ["query", exc.parameter], "msg": exc.message, "type": "value_error"}])


def ranged_page(
    station_id: str, span: TimeRange, limit: int, key: str, rows: list[dict[str, Any]], **extra: str
) -> dict[str, Any]:
    """The answer of a station's range endpoint: its range and cap, then ``rows`` (read newest first)
    oldest first under ``key``."""
    return {
        "station_id": station_id,
        **extra,
        "start": json_value(span.start),
        "end": json_value(span.end),
        "limit": limit,
        "count": len(rows),
        key: [json_row(r) for r in reversed(rows)],
    }


def create_app(config: PipelineConfig, store: Store, health: Callable[[], dict[str, Any]]) -> FastAPI:
    settings = config.dashboard
    app = FastAPI(
        title="aqstream",
        summary="Air-quality readings, hourly and daily aggregates, AQI alerts and pipeline health, from Cassandra",
        docs_url=None,  # served below from the swagger-ui-bundle package: no CDN
        redoc_url=None,
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/vendor/swagger-ui", StaticFiles(directory=SWAGGER_UI), name="swagger-ui")
    Limit = Annotated[int, Query(ge=1, le=settings.max_page_size, description="the most rows returned")]
    Start = Annotated[datetime, Query(description="ISO 8601; without a zone: UTC. Inclusive")]
    End = Annotated[
        datetime, Query(description=f"ISO 8601, exclusive; at most {settings.max_range_days} days after start")
    ]

    @app.exception_handler(BadParameter)
    async def _bad_parameter(request: Request, exc: BadParameter) -> JSONResponse:
        raised = bad_parameter(exc)
        return JSONResponse({"detail": raised.detail}, status_code=raised.status_code)

    @app.exception_handler(NoHostAvailable)
    @app.exception_handler(OperationTimedOut)
    @app.exception_handler(DriverException)  # Unavailable, ReadTimeout, ReadFailure, ...
    async def _cassandra_down(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"cassandra did not answer: {type(exc).__name__}: {exc}"}, status_code=503)

    def known_station(station_id: str) -> dict[str, Any]:
        station = store.station(station_id)
        if station is None:
            raise HTTPException(404, detail=f"unknown station_id {station_id!r}: not in the stations registry")
        return station

    def time_range(start: datetime, end: datetime) -> TimeRange:
        return checked_range(start, end, settings.max_range_days)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        html = (STATIC / "index.html").read_text()
        return html.replace("{{refresh_seconds}}", str(settings.refresh_seconds)).replace(
            "{{trend_hours}}", str(settings.trend_hours)
        )

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        return FileResponse(PLOTLY_JS, media_type="text/javascript")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="aqstream API",
            swagger_js_url="/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/vendor/swagger-ui/favicon-32x32.png",
        )

    @app.get("/api/stations", tags=["stations"])
    def stations() -> dict[str, Any]:
        """Every station of the registry with its latest 1 h aggregate, its latest reading and its current
        AQI per index (``us``: the hour's NowCast AQI; ``eea``: the hour's EAQI band), coloured."""
        registry = store.stations()
        ids = [s["station_id"] for s in registry]
        hours = store.latest_windows(ids, "1h")
        partitions = [
            (station_id, hour["window_start"].date()) for station_id, hour in zip(ids, hours, strict=True) if hour
        ]
        readings = dict(zip([p[0] for p in partitions], store.latest_readings(partitions), strict=True))
        return {
            "stations": [
                {
                    **json_row(station, drop=("registry",)),
                    "current": current_aqi(hour),
                    "latest_hour": None if hour is None else json_row(hour),
                    "latest_reading": None
                    if readings.get(station["station_id"]) is None
                    else json_row(readings[station["station_id"]]),
                }
                for station, hour in zip(registry, hours, strict=True)
            ],
            "legend": legend(),
        }

    @app.get("/api/stations/{station_id}/readings", tags=["stations"])
    def readings(
        station_id: StationId, start: Start, end: End, limit: Limit = settings.max_page_size
    ) -> dict[str, Any]:
        """The station's readings with ``start <= ts < end`` (one partition per UTC day), oldest first; the
        newest ``limit`` of them when there are more."""
        span = time_range(start, end)
        known_station(station_id)
        rows = store.readings(station_id, days_newest_first(span), span.start, span.end, limit)
        return ranged_page(station_id, span, limit, "readings", rows)

    @app.get("/api/stations/{station_id}/aggregates", tags=["stations"])
    def aggregates(
        station_id: StationId,
        start: Start,
        end: End,
        window: Annotated[WindowSize, Query(description="1h or 1d")] = "1h",
        limit: Limit = settings.max_page_size,
    ) -> dict[str, Any]:
        """The station's 1 h or 1 d aggregates with ``start <= window_start < end``, oldest first (1 h rows
        carry the PM NowCast and its AQI); the newest ``limit`` of them when there are more."""
        span = time_range(start, end)
        known_station(station_id)
        rows = store.windows(
            station_id, window, buckets_newest_first(window, span.start, span.end), span.start, span.end, limit
        )
        return ranged_page(station_id, span, limit, "aggregates", rows, window=window)

    @app.get("/api/stations/{station_id}/alerts", tags=["alerts"])
    def station_alerts(station_id: StationId, limit: Limit = DEFAULT_ALERTS) -> dict[str, Any]:
        """The station's newest alerts (an hour whose category changed), newest first."""
        known_station(station_id)
        return {"station_id": station_id, "alerts": [json_row(a) for a in store.station_alerts(station_id, limit)]}

    @app.get("/api/alerts", tags=["alerts"])
    def alerts(
        limit: Limit = DEFAULT_ALERTS,
        day: Annotated[date | None, Query(description="a UTC day (YYYY-MM-DD): that day's alerts instead")] = None,
    ) -> dict[str, Any]:
        """The newest alerts of every station (merged from each station's newest ``limit``), or those of one
        UTC ``day``; newest hour first."""
        if day is not None:
            return {"day": day.isoformat(), "alerts": [json_row(a) for a in store.day_alerts(day, limit)]}
        ids = [s["station_id"] for s in store.stations()]
        merged = latest_alerts(store.alerts_of_stations(ids, limit), limit)
        return {"day": None, "alerts": [json_row(a) for a in merged]}

    @app.get("/api/health", tags=["pipeline"])
    def pipeline_health() -> dict[str, Any]:
        """Each job's state, last batch and lag, Kafka, the Debezium connector (jobs.status's report); a
        stopped job's last batch as Prometheus last scraped it. Computed at most once per refresh interval."""
        return health()

    return app

"""Serve the read API and the dashboard page: ``python -m dashboard [--config conf/pipeline.toml]``.

Host, port and the page's settings come from ``[dashboard]`` of the pipeline config (AQSTREAM__DASHBOARD__*
overrides them); Cassandra from ``[cassandra]``. Stops on Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import sys

from jobs.config import load_config_or_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboard", description=__doc__)
    parser.add_argument("--config", default=None, help="pipeline config TOML (default conf/pipeline.toml)")
    args = parser.parse_args(argv)
    config = load_config_or_report(args.config)
    if config is None:
        return 2

    import uvicorn
    from cassandra import InvalidRequest
    from cassandra.cluster import NoHostAvailable

    from dashboard.app import create_app
    from dashboard.health import Cached, pipeline_health
    from dashboard.store import Store, connect

    try:
        cluster, session = connect(config)
    except NoHostAvailable as exc:
        print(
            f"dashboard: Cassandra at {config.cassandra.host}:{config.cassandra.port} did not answer: {exc}",
            file=sys.stderr,
        )
        return 1
    try:
        try:
            store = Store(session, config)
        except InvalidRequest as exc:  # no keyspace or table yet
            print(f"dashboard: {exc}: create the schema with `python -m jobs.setup cassandra`", file=sys.stderr)
            return 1
        health = Cached(lambda: pipeline_health(config), ttl_s=config.dashboard.refresh_seconds / 2)
        app = create_app(config, store, health.get)
        settings = config.dashboard
        print(f"dashboard: http://{settings.host}:{settings.port}/ (API docs: /docs)", flush=True)
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    finally:
        cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

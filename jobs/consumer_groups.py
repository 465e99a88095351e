"""Each job's lag as Kafka's own tools show it: ``kafka-consumer-groups.sh --describe`` on the jobs' groups.

Usage:
    python -m jobs.consumer_groups [--config F] [--job JOB] [ConsumerGroupCommand options ...]
    make consumer-groups

Runs ``org.apache.kafka.tools.consumer.group.ConsumerGroupCommand`` (the class
``kafka-consumer-groups.sh`` runs) from the pinned Kafka in ``jars/lib/kafka`` (``make jars``) with
``--bootstrap-server <kafka.bootstrap_servers> --describe`` and one ``--group`` per streaming query
of the jobs (``monitoring.consumer_group(<query>)``, committed by :mod:`jobs.group_offsets`). Per
partition it shows ``CURRENT-OFFSET`` (the end of the query's last committed batch), ``LOG-END-OFFSET``
and ``LAG``. Further options go to the tool as they are (e.g. ``--state``, ``--verbose``). A group
with nothing committed yet is named and left out: the tool fails on a group it does not know.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kafka.admin import KafkaAdminClient

from jobs.config import JOBS, REPO_ROOT, PipelineConfig, load_config_or_report
from jobs.kafka_auth import client_properties_file, kafka_python_settings

KAFKA_JARS_DIR = REPO_ROOT / "jars" / "lib" / "kafka"
CONSUMER_GROUP_COMMAND = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"


def query_names(job: str | None = None) -> list[str]:
    """The streaming queries of one job, or of both, in the order the jobs start them."""
    from jobs import cdc_to_cassandra, raw_to_mongo

    queries = {"raw_to_mongo": raw_to_mongo.QUERY_NAMES, "cdc_to_cassandra": cdc_to_cassandra.QUERY_NAMES}
    return [name for key, names in queries.items() if job in (None, key) for name in names]


def java_binary() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).is_file():
        raise SystemExit("java not found: set JAVA_HOME (the Makefile sets it: `python3 -m stack.java`)")
    return java


def describe_command(
    java: str, bootstrap_servers: str, groups: list[str], options: list[str], jars_dir: Path = KAFKA_JARS_DIR
) -> list[str]:
    """The pinned Kafka's ``kafka-consumer-groups.sh --describe`` for ``groups``, as one java command."""
    command = [java, "-cp", f"{jars_dir}/*", CONSUMER_GROUP_COMMAND]
    command += ["--bootstrap-server", bootstrap_servers, "--describe", *options]
    for group in groups:
        command += ["--group", group]
    return command


def known_groups(client: Mapping[str, Any]) -> set[str]:
    """The consumer groups the cluster knows (those with committed offsets or members)."""
    admin = KafkaAdminClient(**client, client_id="aqstream-consumer-groups")
    try:
        return {group for group, *_ in admin.list_consumer_groups()}
    finally:
        admin.close()


def describe(config: PipelineConfig, job: str | None, options: list[str]) -> int:
    if not any(KAFKA_JARS_DIR.glob("kafka-tools-*.jar")):
        print(f"no Kafka tools jar in {KAFKA_JARS_DIR}: run `make jars` first", file=sys.stderr)
        return 1
    groups = [config.monitoring.consumer_group(query) for query in query_names(job)]
    known = known_groups(kafka_python_settings(config, "admin"))
    for group in groups:
        if group not in known:
            print(f"consumer group {group}: no offsets committed yet")
    present = [group for group in groups if group in known]
    if not present:
        return 0
    with client_properties_file(config, "admin") as properties:  # the tool's SASL login, never on its command line
        login = ["--command-config", str(properties)] if properties else []
        command = describe_command(java_binary(), config.kafka.bootstrap_servers, present, [*login, *options])
        return subprocess.run(command, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jobs.consumer_groups", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default=None, help="pipeline config TOML (default conf/pipeline.toml)")
    parser.add_argument("--job", choices=JOBS, default=None, help="one job's groups")
    args, options = parser.parse_known_args(argv)
    config = load_config_or_report(args.config)
    if config is None:
        return 2
    if not config.monitoring.consumer_group_commits:
        print("monitoring.consumer_group_commits is off: the jobs commit no offsets to consumer groups")
    return describe(config, args.job, options)


if __name__ == "__main__":
    sys.exit(main())

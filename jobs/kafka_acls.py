"""The Kafka ACLs of the suite's principals: each may do only what it needs (docs/security.md).

:func:`grants` says who may do what, from the pipeline config (pure, tested directly);
:func:`apply_acls` creates them with the admin principal (the broker's super user). Creating an ACL that
exists is a no-op, so both places a set-up goes through call it: ``python -m stack up`` (before Kafka
Connect starts, which needs its own) and ``python -m jobs.setup topics``. An ACL no longer in
:func:`grants` is not removed (``kafka-acls.sh --remove`` does that).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from jobs.config import PipelineConfig

# Spark's Kafka source names its consumer groups spark-kafka-source-<uuid>-… (driver and executors)
SPARK_SOURCE_GROUP_PREFIX = "spark-kafka-source-"
# conf/stack/connect-distributed.properties: the worker's group and its internal topics' names
CONNECT_GROUP = "aqstream-connect"
CONNECT_INTERNAL_TOPIC_PREFIX = "_aqstream-connect-"
# a sink connector's consumer group is connect-<connector name> (the bench's MongoDB sink)
CONNECT_SINK_GROUP_PREFIX = "connect-"
# Debezium's heartbeat topic, __debezium-heartbeat.<topic.prefix> (heartbeat.interval.ms is set)
DEBEZIUM_HEARTBEAT_PREFIX = "__debezium-heartbeat."
# the bench's MongoDB sink (conf/connect/mongodb-sink.json): its dead-letter topic is <raw topic>.sink-dlq
SINK_DLQ_SUFFIX = ".sink-dlq"

Resource = Literal["topic", "group", "cluster"]
Pattern = Literal["literal", "prefixed"]
Operation = Literal[
    "read", "write", "create", "describe", "describe_configs", "alter_configs", "delete", "idempotent_write"
]
CLUSTER = "kafka-cluster"  # the one name a cluster resource has


@dataclass(frozen=True, order=True)
class Grant:
    """One ALLOW ACL: principal ``who`` (a [credentials] kafka login) may ``operation`` on a resource."""

    who: str
    resource: Resource
    name: str
    pattern: Pattern
    operation: Operation


def _on(who: str, resource: Resource, name: str, pattern: Pattern, *operations: Operation) -> list[Grant]:
    return [Grant(who, resource, name, pattern, op) for op in operations]


def cdc_topic_prefix(config: PipelineConfig) -> str:
    """Debezium's ``topic.prefix`` (conf/debezium/): the CDC topic is ``<prefix>.<database>.<collection>``."""
    return config.kafka.cdc_topic.split(".", 1)[0] + "."


def grants(config: PipelineConfig) -> list[Grant]:
    """Every ACL of the suite. The admin principal needs none: it is the broker's super user."""
    kafka, groups = config.kafka, config.monitoring.consumer_group_prefix
    consuming_job_groups = [
        (SPARK_SOURCE_GROUP_PREFIX, "prefixed"),
        # jobs.group_offsets commits each query's offsets to <consumer_group_prefix><query>
        *([(groups, "prefixed")] if groups else []),
    ]
    rules = [
        # the collectors (and jobs.replay_quarantine, which puts readings back) write the raw topic
        *_on("collector", "topic", kafka.raw_topic, "literal", "write", "describe"),
        *_on("collector", "cluster", CLUSTER, "literal", "idempotent_write"),
        # raw_to_mongo reads raw, writes the quarantine topic
        *_on("raw_to_mongo", "topic", kafka.raw_topic, "literal", "read", "describe"),
        *_on("raw_to_mongo", "topic", kafka.quarantine_topic, "literal", "write", "describe"),
        *_on("raw_to_mongo", "cluster", CLUSTER, "literal", "idempotent_write"),
        # cdc_to_cassandra reads Debezium's topic, writes the alerts
        *_on("cdc_to_cassandra", "topic", kafka.cdc_topic, "literal", "read", "describe"),
        *_on("cdc_to_cassandra", "topic", kafka.alerts_topic, "literal", "write", "describe"),
        *_on("cdc_to_cassandra", "cluster", CLUSTER, "literal", "idempotent_write"),
        # Kafka Connect: its internal topics and group, Debezium's topics (created on the first event)
        *_on(
            "connect",
            "topic",
            CONNECT_INTERNAL_TOPIC_PREFIX,
            "prefixed",
            "read",
            "write",
            "create",
            "describe",
            "describe_configs",
        ),
        *_on("connect", "group", CONNECT_GROUP, "literal", "read", "describe"),
        *_on("connect", "topic", cdc_topic_prefix(config), "prefixed", "write", "create", "describe"),
        *_on("connect", "topic", DEBEZIUM_HEARTBEAT_PREFIX, "prefixed", "write", "create", "describe"),
        # the bench's MongoDB sink connector reads raw, dead-letters to <raw>.sink-dlq
        *_on("connect", "topic", kafka.raw_topic, "literal", "read", "describe"),
        *_on("connect", "group", CONNECT_SINK_GROUP_PREFIX, "prefixed", "read", "describe"),
        *_on("connect", "topic", kafka.raw_topic + SINK_DLQ_SUFFIX, "literal", "write", "create", "describe"),
        *_on("connect", "cluster", CLUSTER, "literal", "idempotent_write", "describe_configs"),
    ]
    # the read-only tools see each topic's offsets (ListOffsets and metadata need DESCRIBE), never a record
    for topic in (kafka.raw_topic, kafka.quarantine_topic, kafka.cdc_topic, kafka.alerts_topic):
        rules += _on("monitor", "topic", topic, "literal", "describe")
    for job in ("raw_to_mongo", "cdc_to_cassandra"):
        for name, pattern in consuming_job_groups:
            rules += _on(job, "group", name, pattern, "read", "describe")
    return sorted(set(rules))


def principal(config: PipelineConfig, who: str) -> str:
    return f"User:{getattr(config.credentials, f'kafka_user_{who}')}"


def apply_acls(config: PipelineConfig) -> int:
    """Create :func:`grants` on the broker as the admin principal; returns how many ACLs were asked for.
    Raises RuntimeError naming the ACLs the broker refused. A PLAINTEXT broker has no principals (and, as a
    rule, no authorizer to take ACLs): nothing is granted, 0 returned."""
    if config.kafka.security_protocol == "PLAINTEXT":
        return 0
    from kafka import KafkaAdminClient
    from kafka.admin import ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern, ResourceType

    from jobs.kafka_auth import kafka_python_settings

    acls = [
        ACL(
            principal=principal(config, g.who),
            host="*",
            operation=ACLOperation[g.operation.upper()],
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePattern(
                ResourceType[g.resource.upper()], g.name, ACLResourcePatternType[g.pattern.upper()]
            ),
        )
        for g in grants(config)
    ]
    admin = KafkaAdminClient(**kafka_python_settings(config, "admin"), client_id="aqstream-setup-acls")
    try:
        result = admin.create_acls(acls)
    finally:
        admin.close()
    if result["failed"]:
        refused = "; ".join(f"{acl}: {error!r}" for acl, error in result["failed"])
        raise RuntimeError(f"Kafka refused {len(result['failed'])} ACLs: {refused}")
    return len(acls)

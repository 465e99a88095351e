"""Create what the jobs write to: Kafka topics, MongoDB collection and indexes, Cassandra schema.

Usage:
    python -m jobs.setup [--config conf/pipeline.toml] {topics,mongo,cassandra,all}

Idempotent: what exists is left as it is. With ``mongo.authentication`` on, the MongoDB users come first,
made by the admin user (jobs/mongo_users.py; a real mongod's first user, which the stack or the compose image
creates). The Cassandra keyspace and tables come from the
committed CQL in schemas/cql/, never improvised by a job, applied as the admin role, which then creates
the CDC job's and the read-only role and grants them their rights on the keyspace (docs/security.md).
After the CQL, the aggregates of the unbucketed layout (``aggregates_by_station``), if any, move to the
bucketed table (``jobs.migrate_aggregates``).
"""

from __future__ import annotations

import argparse
import sys

from kafka.admin import NewTopic

from jobs.config import ConfigError, PipelineConfig, load_config_or_report
from jobs.kafka_acls import apply_acls
from jobs.kafka_auth import kafka_python_settings
from jobs.migrate_aggregates import migrate
from jobs.mongo_auth import mongo_client
from schemas.cassandra import cql_statements

# a compacted topic keeps the latest record of each key (an alert's current state), not a time window
COMPACTED = {"cleanup.policy": "compact"}


def new_topics(config: PipelineConfig) -> list[NewTopic]:
    """The topics the pipeline needs, with the configured partitions and replication factor."""
    kafka = config.kafka
    return [
        NewTopic(topic, num_partitions=kafka.partitions, replication_factor=kafka.replication_factor)
        for topic in (kafka.raw_topic, kafka.quarantine_topic, kafka.cdc_topic)
    ] + [alerts_topic(config)]


def alerts_topic(config: PipelineConfig) -> NewTopic:
    """The alerts topic: compacted, so it holds the latest record of every alert key."""
    kafka = config.kafka
    return NewTopic(
        kafka.alerts_topic,
        num_partitions=kafka.partitions,
        replication_factor=kafka.replication_factor,
        topic_configs=COMPACTED,
    )


def create_topics(config: PipelineConfig) -> list[str]:
    from kafka import KafkaAdminClient
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(**kafka_python_settings(config, "admin"), client_id="aqstream-setup")
    try:
        existing = set(admin.list_topics())
        created = []
        for topic in new_topics(config):
            if topic.name in existing:
                continue
            try:
                admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        admin.close()


def create_mongo_users(config: PipelineConfig) -> list[str]:
    """raw_to_mongo's and Debezium's users (and Debezium's role), logged in as the admin; none without
    ``mongo.authentication`` (the Java stand-in has no users)."""
    from jobs.mongo_users import ensure_users

    if not config.mongo.authentication:
        return []
    client = mongo_client(config, "admin", serverSelectionTimeoutMS=10000)
    try:
        return ensure_users(client.admin, config)
    finally:
        client.close()


def create_mongo_indexes(config: PipelineConfig) -> list[str]:
    from pymongo import ASCENDING

    client = mongo_client(config, "raw_to_mongo", serverSelectionTimeoutMS=10000)
    try:
        db = client[config.mongo.database]
        if config.mongo.collection not in db.list_collection_names():
            db.create_collection(config.mongo.collection)
        coll = db[config.mongo.collection]
        return [coll.create_index([("station_id", ASCENDING), ("ts", ASCENDING)], name="station_id_ts")]
    finally:
        client.close()


def schema_cql(config: PipelineConfig) -> list[str]:
    """The statements :func:`apply_cql` runs: the committed CQL with the configured keyspace and replication."""
    return cql_statements(config.cassandra.keyspace, config.cassandra.replication())


def apply_cql(config: PipelineConfig) -> list[str]:
    """The schema, logged in as the admin role (the default superuser replaced first on a fresh node), then the
    application roles and their grants on the keyspace (jobs/cassandra_roles.py)."""
    from jobs.cassandra_roles import admin_session, grant_application_roles

    cluster, session = admin_session(config)
    try:
        statements = schema_cql(config)
        for statement in statements:
            session.execute(statement, timeout=60)
        return [s.split("(")[0].strip() for s in statements] + grant_application_roles(session, config)
    finally:
        cluster.shutdown()


def run(config: PipelineConfig, what: str) -> None:
    """The set-up steps ``what`` names, in order: topics and ACLs, MongoDB, Cassandra."""
    if what in ("topics", "all"):
        print(f"kafka topics created: {create_topics(config) or 'none (all exist)'}")
        granted = apply_acls(config)
        print(f"kafka ACLs: {granted} granted (jobs/kafka_acls.py)" if granted else "kafka ACLs: none (PLAINTEXT)")
    if what in ("mongo", "all"):
        users = create_mongo_users(config)
        print(f"mongodb users: {users}" if users else "mongodb users: none (mongo.authentication is off)")
        print(f"mongodb indexes: {create_mongo_indexes(config)}")
    if what in ("cassandra", "all"):
        for statement in apply_cql(config):
            print(f"cassandra: {statement}")
        moved = migrate(config)
        if moved is not None:
            print(f"cassandra: {moved} aggregate rows moved to {config.cassandra.aggregates_table}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jobs.setup", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default=None, help="pipeline config (default conf/pipeline.toml)")
    parser.add_argument("what", choices=["topics", "mongo", "cassandra", "all"])
    args = parser.parse_args(argv)
    config = load_config_or_report(args.config)
    if config is None:
        return 2
    try:
        run(config, args.what)
    except ConfigError as exc:  # a secret a step needs cannot be read: the message names its field
        print(f"jobs.setup {args.what}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Create what the jobs write to: Kafka topics, MongoDB collection and indexes, Cassandra schema.

Usage:
    python -m jobs.setup [--config conf/pipeline.toml] {topics,mongo,cassandra,all}

Idempotent: what exists is left as it is. The Cassandra keyspace and tables come from the
committed CQL in schemas/cql/, never improvised by a job.
"""

from __future__ import annotations

import argparse
import sys

from jobs.config import PipelineConfig, load_config_or_report


def create_topics(config: PipelineConfig) -> list[str]:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    topics = [config.kafka.raw_topic, config.kafka.quarantine_topic, config.kafka.cdc_topic]
    admin = KafkaAdminClient(bootstrap_servers=config.kafka.bootstrap_servers, client_id="aqstream-setup")
    try:
        existing = set(admin.list_topics())
        created = []
        for topic in topics:
            if topic in existing:
                continue
            try:
                admin.create_topics([NewTopic(topic, num_partitions=config.kafka.partitions, replication_factor=1)])
                created.append(topic)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        admin.close()


def create_mongo_indexes(config: PipelineConfig) -> list[str]:
    from pymongo import ASCENDING, MongoClient

    client = MongoClient(config.mongo.uri, serverSelectionTimeoutMS=10000)
    try:
        db = client[config.mongo.database]
        if config.mongo.collection not in db.list_collection_names():
            db.create_collection(config.mongo.collection)
        coll = db[config.mongo.collection]
        return [coll.create_index([("station_id", ASCENDING), ("ts", ASCENDING)], name="station_id_ts")]
    finally:
        client.close()


def apply_cql(config: PipelineConfig) -> list[str]:
    from cassandra.cluster import Cluster

    from schemas.cassandra import cql_statements

    cluster = Cluster([config.cassandra.host], port=config.cassandra.port)
    try:
        session = cluster.connect()
        statements = cql_statements(config.cassandra.keyspace, config.cassandra.replication_factor)
        for statement in statements:
            session.execute(statement, timeout=60)
        return [s.split("(")[0].strip() for s in statements]
    finally:
        cluster.shutdown()


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
    if args.what in ("topics", "all"):
        print(f"kafka topics created: {create_topics(config) or 'none (all exist)'}")
    if args.what in ("mongo", "all"):
        print(f"mongodb indexes: {create_mongo_indexes(config)}")
    if args.what in ("cassandra", "all"):
        for statement in apply_cql(config):
            print(f"cassandra: {statement}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

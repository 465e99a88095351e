"""conf/pipeline.toml → PipelineConfig: the folders (a local path or a URI) and the settings a cluster changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.config import REPO_ROOT, ConfigError, load_config
from jobs.paths import ensure_local_dir, is_local, local_path, path_uri

pytestmark = pytest.mark.unit

FOLDERS = ("checkpoint_root", "bronze", "quarantine", "cdc_quarantine")


def paths_with(value: str):
    return load_config(environ={f"AQSTREAM__PATHS__{f.upper()}": value for f in FOLDERS}).paths


@pytest.mark.parametrize(
    ("given", "loaded"),
    [
        ("data/cp", str(REPO_ROOT / "data" / "cp")),  # relative: against the repo root, whatever the cwd
        ("/var/lib/aqstream/cp", "/var/lib/aqstream/cp"),
        ("file:///var/lib/aqstream/cp", "file:///var/lib/aqstream/cp"),
        ("s3a://bucket/aqstream/cp", "s3a://bucket/aqstream/cp"),  # not <repo>/s3a:/bucket/…
        ("hdfs://namenode:8020/aqstream/cp", "hdfs://namenode:8020/aqstream/cp"),
    ],
)
def test_each_folder_takes_a_local_path_or_a_uri(given, loaded):
    paths = paths_with(given)
    assert [getattr(paths, f) for f in FOLDERS] == [loaded] * len(FOLDERS)
    assert paths.checkpoint("raw_to_mongo") == f"{loaded}/raw_to_mongo"


def test_the_event_log_folder_follows_the_same_rules():
    def event_log_dir(value: str) -> str:
        return load_config(environ={"AQSTREAM__MONITORING__EVENT_LOG_DIR": value}).monitoring.event_log_dir

    assert event_log_dir("events") == str(REPO_ROOT / "events")
    assert event_log_dir("s3a://bucket/events") == "s3a://bucket/events"
    with pytest.raises(ConfigError, match=r"monitoring\.event_log_dir: .*'gs'"):
        event_log_dir("gs://bucket/events")


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("ftp://host/cp", "scheme 'ftp' not supported"),
        ("s3://bucket/cp", "scheme 's3' not supported"),  # Hadoop's S3 file system is s3a
        ("file://cp", "absolute local path"),  # "cp" would be a host name
    ],
)
def test_a_bad_folder_names_its_field(given, problem):
    with pytest.raises(ConfigError, match=rf"paths\.bronze: .*{problem}"):
        load_config(environ={"AQSTREAM__PATHS__BRONZE": given})


def test_only_local_folders_are_touched_on_disk(tmp_path):
    assert local_path("/var/cp") == Path("/var/cp")
    assert local_path("file:///var/cp") == Path("/var/cp")
    assert local_path("file://localhost/var/cp") == Path("/var/cp")
    assert local_path("s3a://bucket/cp") is None and not is_local("hdfs://namenode/cp")
    assert path_uri("/var/events") == "file:///var/events"
    assert path_uri("s3a://bucket/events") == "s3a://bucket/events"

    ensure_local_dir(f"file://{tmp_path}/a/b")
    ensure_local_dir(str(tmp_path / "c"))
    ensure_local_dir("s3a://bucket/events")  # nothing to create, and no local s3a:/ folder either
    assert (tmp_path / "a" / "b").is_dir() and (tmp_path / "c").is_dir()
    assert not Path("s3a:").exists()


# -- the settings a cluster changes ---------------------------------------------------------------


def test_the_cluster_settings_default_to_the_single_node_stack():
    config = load_config(environ={})
    assert config.kafka.replication_factor == 1 and config.kafka.min_partitions is None
    assert config.cassandra.replication() == {"class": "SimpleStrategy", "replication_factor": 1}
    assert (config.cassandra.read_consistency, config.cassandra.write_consistency) == ("LOCAL_ONE", "LOCAL_ONE")


def test_network_topology_replication_per_data_center(tmp_path):
    toml = (REPO_ROOT / "conf" / "pipeline.toml").read_text()
    toml = toml.replace(
        'replication_strategy = "SimpleStrategy"',
        'replication_strategy = "NetworkTopologyStrategy"\ndatacenters = { datacenter1 = 3, dc-eu = 2 }',
    )
    (tmp_path / "pipeline.toml").write_text(toml)
    assert load_config(tmp_path / "pipeline.toml", environ={}).cassandra.replication() == {
        "class": "NetworkTopologyStrategy",
        "datacenter1": 3,
        "dc-eu": 2,
    }
    from_env = load_config(
        environ={
            "AQSTREAM__CASSANDRA__REPLICATION_STRATEGY": "NetworkTopologyStrategy",
            "AQSTREAM__CASSANDRA__DATACENTERS": "datacenter1:3, dc-eu:2",
        }
    )
    assert from_env.cassandra.datacenters == {"datacenter1": 3, "dc-eu": 2}


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({"KAFKA__REPLICATION_FACTOR": "0"}, r"kafka\.replication_factor: .*greater than or equal to 1"),
        ({"KAFKA__MIN_PARTITIONS": "0"}, r"kafka\.min_partitions: .*greater than or equal to 1"),
        ({"CASSANDRA__REPLICATION_STRATEGY": "LocalStrategy"}, r"cassandra\.replication_strategy: "),
        ({"CASSANDRA__READ_CONSISTENCY": "EACH_QUORUM"}, r"cassandra\.read_consistency: .*'LOCAL_QUORUM'"),
        ({"CASSANDRA__WRITE_CONSISTENCY": "local_quorum"}, r"cassandra\.write_consistency: .*'LOCAL_QUORUM'"),
        ({"CASSANDRA__DATACENTERS": "datacenter1:3"}, r"cassandra: .*datacenters is for NetworkTopologyStrategy"),
        (
            {"CASSANDRA__REPLICATION_STRATEGY": "NetworkTopologyStrategy", "CASSANDRA__DATACENTERS": "dc2:3"},
            r"cassandra: .*must give local_dc 'datacenter1' replicas",
        ),
        (
            {"CASSANDRA__REPLICATION_STRATEGY": "NetworkTopologyStrategy", "CASSANDRA__DATACENTERS": "dc1=3"},
            r"cassandra\.datacenters: .*not like 'dc1:3,dc2:3'",
        ),
        (
            {"CASSANDRA__REPLICATION_STRATEGY": "NetworkTopologyStrategy", "CASSANDRA__DATACENTERS": "dc'1:3"},
            r"cassandra\.datacenters\.dc'1\.\[key\]: .*pattern",
        ),
    ],
)
def test_a_bad_cluster_setting_names_its_field(environ, problem):
    with pytest.raises(ConfigError, match=problem):
        load_config(environ={f"AQSTREAM__{key}": value for key, value in environ.items()})


# -- what the jobs build from them ----------------------------------------------------------------


def test_the_topics_jobs_setup_creates():
    from jobs.setup import new_topics

    config = load_config(environ={"AQSTREAM__KAFKA__PARTITIONS": "12", "AQSTREAM__KAFKA__REPLICATION_FACTOR": "3"})
    topics = new_topics(config)
    kafka = config.kafka
    assert [t.name for t in topics] == [kafka.raw_topic, kafka.quarantine_topic, kafka.cdc_topic, kafka.alerts_topic]
    assert {(t.num_partitions, t.replication_factor) for t in topics} == {(12, 3)}
    # the alerts topic keeps the latest record per alert key; the others keep a time window
    assert [t.topic_configs for t in topics] == [{}, {}, {}, {"cleanup.policy": "compact"}]


def test_both_jobs_kafka_readers_take_min_partitions_only_when_set():
    from jobs.runner import kafka_source_options

    plaintext = {"AQSTREAM__KAFKA__SECURITY_PROTOCOL": "PLAINTEXT"}  # the SASL options: tests/unit/test_kafka_auth.py
    unset = kafka_source_options(load_config(environ=plaintext), "raw_to_mongo", "aq.readings.raw", 500)
    assert unset == {
        "kafka.bootstrap.servers": "127.0.0.1:9092",
        "subscribe": "aq.readings.raw",
        "startingOffsets": "earliest",
        "maxOffsetsPerTrigger": "500",
        "failOnDataLoss": "true",
    }
    config = load_config(environ={**plaintext, "AQSTREAM__KAFKA__MIN_PARTITIONS": "12"})
    assert kafka_source_options(config, "raw_to_mongo", "aq.readings.raw", 500) == {**unset, "minPartitions": "12"}


def test_the_session_carries_the_consistency_levels():
    from jobs.session import read_spark_defaults, spark_settings

    config = load_config(
        environ={
            "AQSTREAM__CASSANDRA__READ_CONSISTENCY": "LOCAL_QUORUM",
            "AQSTREAM__CASSANDRA__WRITE_CONSISTENCY": "EACH_QUORUM",
        }
    )
    settings = spark_settings(config)
    assert settings["spark.cassandra.input.consistency.level"] == "LOCAL_QUORUM"
    assert settings["spark.cassandra.output.consistency.level"] == "EACH_QUORUM"
    assert not any("consistency" in key for key in read_spark_defaults())  # one place sets them: [cassandra]

"""The local stack's settings: one typed object, built once from defaults and environment.

Every field can be overridden with ``AQSTREAM_<FIELD>`` (e.g. ``AQSTREAM_KAFKA_PORT=19092``);
a wrong value fails at start with the field's name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

REPO_ROOT = Path(__file__).resolve().parents[1]

Port = Field(ge=1024, le=65535)


class StackConfigError(ValueError):
    """The stack configuration is invalid; the message names the field."""


class StackConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    kafka_port: int = Port
    kafka_controller_port: int = Port
    cassandra_port: int = Port
    cassandra_storage_port: int = Port
    cassandra_jmx_port: int = Port
    mongo_port: int = Port
    connect_port: int = Port
    # Kafka Connect's JMX agent, /metrics: Connect's and Debezium's MBeans (conf/stack/connect-jmx-exporter.yml)
    connect_metrics_port: int = Port
    prometheus_port: int = Port
    # The on-demand Spark standalone cluster (`python -m stack up --spark-cluster`): the master's RPC port
    # (spark://host:port, what jobs.submit --master takes) and its web UI (/json/ is its REST view);
    # the worker's own RPC and UI ports, fixed so a second worker can never take the master's.
    spark_master_port: int = Port
    spark_master_ui_port: int = Port
    spark_worker_port: int = Port
    spark_worker_ui_port: int = Port
    # what the worker offers the applications: 2 cores (the machine's), a bounded memory for all its executors
    spark_worker_cores: int = Field(default=2, ge=1)
    spark_worker_memory: str = "2g"
    spark_daemon_heap: str = "256m"  # the master's and the worker's own JVMs (Spark's default is 1g each)
    # Spark's home (its jars/ folder): the pyspark package of this interpreter unless set
    spark_home: Path | None = None
    state_dir: Path = REPO_ROOT / ".state"
    lib_dir: Path = REPO_ROOT / "jars" / "lib"
    tools_dir: Path = REPO_ROOT / ".tools"  # what stack/tools/*.sh unpack (prometheus)
    conf_dir: Path = REPO_ROOT / "conf" / "stack"
    # Heaps sized for a 2-core, few-GiB budget; the whole stack stays near 3 GiB RSS.
    kafka_heap: str = "512m"
    connect_heap: str = "512m"
    cassandra_heap: str = "1g"
    mongo_heap: str = "1g"  # the stand-in keeps its documents and change history on the heap
    mongo_replica_set: str = "rs0"
    # "auto": a real mongod when one is on PATH, else the Java stand-in; "java" forces the stand-in.
    mongo_impl: Literal["auto", "java", "mongod"] = "auto"
    # false: Kafka without SASL or ACLs, Cassandra without logins or roles, the MongoDB stand-in without TLS,
    # and the pipeline configs the stack hands out say so (pipeline_auth_env): only to measure what that costs
    # (make bench-noauth)
    authentication: bool = True
    start_timeout_s: float = Field(default=240.0, gt=0)
    stop_timeout_s: float = Field(default=60.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, values: dict) -> dict:
        defaults = {
            "kafka_port": 9092,
            "kafka_controller_port": 9093,
            "cassandra_port": 9042,
            "cassandra_storage_port": 7000,
            "cassandra_jmx_port": 7199,
            "mongo_port": 27017,
            "connect_port": 8083,
            "connect_metrics_port": 9404,
            "prometheus_port": 9090,
            "spark_master_port": 7077,
            "spark_master_ui_port": 8080,
            "spark_worker_port": 7078,
            "spark_worker_ui_port": 8081,
        }
        return {**defaults, **values}

    @model_validator(mode="after")
    def _check(self) -> StackConfig:
        ports = [getattr(self, f) for f in self.port_fields()]
        if len(set(ports)) != len(ports):
            raise ValueError("the stack's ports must all differ: " + ", ".join(map(str, ports)))
        return self

    @staticmethod
    def port_fields() -> list[str]:
        return [f for f in StackConfig.model_fields if f.endswith("_port")]

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> StackConfig:
        environ = dict(os.environ if environ is None else environ)
        values = {
            name: environ[f"AQSTREAM_{name.upper()}"]
            for name in cls.model_fields
            if f"AQSTREAM_{name.upper()}" in environ
        }
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = "; ".join(_describe(e) for e in exc.errors())
            raise StackConfigError(f"invalid stack configuration: {problems}") from None

    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def mongo_uri(self) -> str:
        return f"mongodb://{self.host}:{self.mongo_port}/?replicaSet={self.mongo_replica_set}"

    def pipeline_auth_env(self) -> dict[str, str]:
        """The pipeline settings (``AQSTREAM__*``) a client of this stack needs for its authentication: none
        when it is on (conf/pipeline.toml's defaults); PLAINTEXT Kafka, no Cassandra login and no TLS to MongoDB
        when it is off."""
        if self.authentication:
            return {}
        return {
            "AQSTREAM__KAFKA__SECURITY_PROTOCOL": "PLAINTEXT",
            "AQSTREAM__CASSANDRA__AUTHENTICATION": "false",
            "AQSTREAM__MONGO__TLS": "false",
        }

    @property
    def connect_url(self) -> str:
        return f"http://{self.host}:{self.connect_port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://{self.host}:{self.prometheus_port}"

    @property
    def spark_master_url(self) -> str:
        return f"spark://{self.host}:{self.spark_master_port}"

    @property
    def spark_master_ui_url(self) -> str:
        return f"http://{self.host}:{self.spark_master_ui_port}"

    def template_values(self) -> dict[str, str]:
        values = {name: str(getattr(self, name)) for name in self.model_fields}
        values["plugin_path"] = str(self.lib_dir / "connect-plugins")
        return values


def _describe(error) -> str:
    """One validation error as 'field (AQSTREAM_FIELD): message'."""
    if not error["loc"]:
        return f"stack: {error['msg']}"
    field = str(error["loc"][0])
    return f"{field} (AQSTREAM_{field.upper()}): {error['msg']}"

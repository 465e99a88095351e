"""The Java MongoDB stand-in (stack/mongo-server) as pymongo sees it: a replica-set primary with
complete change streams (``ns``, ``documentKey``, ``updateDescription``, ``clusterTime``).

Each test module run starts its own server from ``jars/lib/mongo`` on a free loopback port with a
fresh data directory, so it neither needs nor disturbs the local stack's MongoDB.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest
from bson import Timestamp
from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
MONGO_LIB = REPO_ROOT / "jars" / "lib" / "mongo"
REPLICA_SET = "rs0"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _java() -> Path:
    from stack.java import JavaNotFound, find_java17

    try:
        return find_java17() / "bin" / "java"
    except JavaNotFound as exc:
        pytest.fail(f"no Java 17 for the Mongo stand-in: {exc}", pytrace=False)


class JavaMongo:
    """One AqMongoServer process; start/stop keep the data directory."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.proc: subprocess.Popen | None = None
        self.log = data_dir.parent / "server.log"

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?replicaSet={REPLICA_SET}&serverSelectionTimeoutMS=5000"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(_java()),
                    "-Xmx256m",
                    "-cp",
                    f"{MONGO_LIB}/*",
                    "aqstream.mongo.AqMongoServer",
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(self.data_dir),
                    "--replica-set",
                    REPLICA_SET,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"the Mongo stand-in exited: {self.log.read_text()[-2000:]}", pytrace=False)
            try:
                with MongoClient("127.0.0.1", self.port, directConnection=True, serverSelectionTimeoutMS=500) as c:
                    c.admin.command("ping")
                return
            except PyMongoError:
                time.sleep(0.2)
        pytest.fail(f"the Mongo stand-in did not answer within 30 s: {self.log.read_text()[-2000:]}", pytrace=False)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: the shutdown hook commits the H2 store
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture(scope="module")
def java_mongo(tmp_path_factory):
    if not (MONGO_LIB / "aqstream-mongo-server.jar").is_file():
        pytest.fail("jars/lib/mongo/aqstream-mongo-server.jar is missing: run `make jars`", pytrace=False)
    base = tmp_path_factory.mktemp("java-mongo")
    server = JavaMongo(base / "data", _free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def client(java_mongo):
    with MongoClient(java_mongo.uri) as c:
        yield c


def _next(stream, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        change = stream.try_next()
        if change is not None:
            return change
    raise AssertionError(f"no change event within {timeout} s")


def test_pymongo_sees_a_replica_set_primary(client, java_mongo):
    client.admin.command("ping")
    description = client.topology_description
    assert description.topology_type_name == "ReplicaSetWithPrimary"
    assert client.primary == ("127.0.0.1", java_mongo.port)
    hello = client.admin.command("hello")
    assert hello["setName"] == REPLICA_SET
    assert hello["isWritablePrimary"] is True
    assert hello["hosts"] == [f"127.0.0.1:{java_mongo.port}"]
    assert isinstance(hello["operationTime"], Timestamp)
    status = client.admin.command("replSetGetStatus")
    assert [m["stateStr"] for m in status["members"]] == ["PRIMARY"]


def test_watch_sees_ns_and_update_description(client):
    coll = client.airquality.readings_raw
    key = "openmeteo|lyon-01|2024-05-01T00:00Z"
    with coll.watch(full_document="updateLookup", max_await_time_ms=200) as stream:
        coll.insert_one({"_id": key, "pm25": 10.0, "weather": {"temperature": 12.0, "humidity": 80}})
        coll.update_one(
            {"_id": key}, {"$set": {"pm25": 12.5, "weather.temperature": 13.0}, "$unset": {"weather.humidity": ""}}
        )
        coll.replace_one({"_id": key}, {"pm25": 1.0})
        coll.delete_one({"_id": key})
        insert, update, replace, delete = (_next(stream) for _ in range(4))

    for event in (insert, update, replace, delete):
        assert event["ns"] == {"db": "airquality", "coll": "readings_raw"}
        assert event["documentKey"] == {"_id": key}
        assert isinstance(event["clusterTime"], Timestamp)
    assert [e["operationType"] for e in (insert, update, replace, delete)] == ["insert", "update", "replace", "delete"]
    assert insert["fullDocument"]["pm25"] == 10.0
    assert update["updateDescription"] == {
        "updatedFields": {"pm25": 12.5, "weather.temperature": 13.0},
        "removedFields": ["weather.humidity"],
        "truncatedArrays": [],
    }
    assert replace["fullDocument"] == {"_id": key, "pm25": 1.0}
    assert insert["clusterTime"] < update["clusterTime"] < replace["clusterTime"] < delete["clusterTime"]


def test_database_and_deployment_streams(client):
    with client.airquality.watch(max_await_time_ms=200) as db_stream, client.watch(max_await_time_ms=200) as all_stream:
        client.airquality.stations.insert_one({"_id": "s1"})
        client.elsewhere.things.insert_one({"_id": "t1"})
        assert _next(db_stream)["ns"] == {"db": "airquality", "coll": "stations"}
        assert db_stream.try_next() is None
        assert [_next(all_stream)["ns"]["db"] for _ in range(2)] == ["airquality", "elsewhere"]


def test_resume_token_survives_a_restart(java_mongo):
    with MongoClient(java_mongo.uri) as c:
        coll = c.airquality.readings_raw
        with coll.watch(max_await_time_ms=200) as stream:
            coll.insert_one({"_id": "before-restart"})
            token = _next(stream)["_id"]
        coll.insert_one({"_id": "while-down"})
    java_mongo.stop()
    java_mongo.start()
    with MongoClient(java_mongo.uri) as c:
        coll = c.airquality.readings_raw
        assert coll.find_one({"_id": "before-restart"}) == {"_id": "before-restart"}
        with coll.watch(resume_after=token, max_await_time_ms=200) as stream:
            assert _next(stream)["documentKey"] == {"_id": "while-down"}


def test_unknown_resume_token_is_refused(client):
    coll = client.airquality.readings_raw
    with pytest.raises(OperationFailure) as error, coll.watch(resume_after={"_data": "820000000100000001"}) as stream:
        stream.try_next()
    assert error.value.code == 286  # ChangeStreamHistoryLost

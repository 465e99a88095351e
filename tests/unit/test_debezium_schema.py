"""The explicit Debezium envelope schema parses every recorded real change event without loss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from schemas.debezium import (
    debezium_envelope_schema,
    debezium_key_schema,
    document_id_col,
    payload_col,
    typed_source_col,
)

pytestmark = pytest.mark.unit


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]


def _recorded(data_dir: Path) -> list[tuple[str, bool, str, str | None]]:
    """(file name, with_schema, value line, key line) of every recorded event."""
    events = []
    for path in sorted((data_dir / "debezium").glob("*.ndjson")):
        lines = _lines(path)
        if ".key_value." in path.name:  # odd lines keys, even lines values
            events += [(path.name, False, value, key) for key, value in zip(lines[::2], lines[1::2], strict=True)]
        else:
            events += [(path.name, '"schema"' in line[:20], line, None) for line in lines]
    return events


def _same(original, parsed, path=""):
    """Every key of the original JSON is in the parsed row with the same value (numbers read as text ok)."""
    if isinstance(original, dict):
        assert isinstance(parsed, dict), path
        for key, value in original.items():
            assert key in parsed, f"{path}.{key} lost"
            _same(value, parsed[key], f"{path}.{key}")
        extra = {k for k, v in parsed.items() if k not in original and v is not None}
        assert not extra, f"{path}: fields invented {extra}"
    elif isinstance(original, list):
        assert len(original) == len(parsed), path
        for i, (o, p) in enumerate(zip(original, parsed, strict=True)):
            _same(o, p, f"{path}[{i}]")
    elif isinstance(parsed, str) and not isinstance(original, str) and original is not None:
        assert parsed == json.dumps(original), path  # a number or boolean read into a string field
    else:
        assert parsed == original, f"{path}: {parsed!r} != {original!r}"


def test_every_recorded_file_is_covered(data_dir):
    events = _recorded(data_dir)
    names = {name for name, *_ in events}
    assert len(names) == 3 and len(events) == 4 + 1 + 2
    assert {with_schema for _, with_schema, *_ in events} == {True, False}


def test_envelope_parses_every_recorded_event_without_loss(spark, data_dir):
    events = _recorded(data_dir)
    for with_schema in (True, False):
        lines = [value for _, ws, value, _ in events if ws is with_schema]
        df = spark.createDataFrame([(line,) for line in lines], "value string")
        parsed = df.select(F.from_json("value", debezium_envelope_schema(with_schema)).alias("e"))
        rows = [row.e.asDict(recursive=True) for row in parsed.collect()]
        for line, row in zip(lines, rows, strict=True):
            original = json.loads(line)
            if with_schema:
                assert json.loads(row.pop("schema")) == original.pop("schema")
            _same(original, row)


def test_recorded_values_spot_checked(spark, data_dir):
    path = data_dir / "debezium" / "risingwave_dbz2.1.4_mongo_snapshot_r_with_schema.ndjson"
    df = spark.createDataFrame([(line,) for line in _lines(path)], "value string")
    event = payload_col(F.from_json("value", debezium_envelope_schema(True)), with_schema=True)
    rows = df.select(
        event.op.alias("op"),
        event.ts_ms.alias("ts_ms"),
        typed_source_col(event.source, "ts_ms").alias("source_ts_ms"),
        typed_source_col(event.source, "ord").alias("ord"),
        event.source.snapshot.alias("snapshot"),
        event.source.rs.alias("rs"),
        event.after.alias("after"),
    ).collect()
    assert [r.op for r in rows] == ["r"] * 4
    assert [r.snapshot for r in rows] == ["true", "true", "true", "last"]
    first = rows[0]
    assert (first.ts_ms, first.source_ts_ms, first.ord, first.rs) == (1681879054736, 1681879044000, 1, "rs0")
    assert json.loads(first.after)["_id"] == {"$numberLong": "1001"}


def test_update_with_pre_image(spark, data_dir):
    path = data_dir / "debezium" / "paimon_dbz2.7.0_mongo_update_u_schemaless.key_value.ndjson"
    lines = _lines(path)
    df = spark.createDataFrame([(lines[3],)], "value string")
    event = F.from_json("value", debezium_envelope_schema(False))
    row = df.select(
        event.op.alias("op"),
        event.before.alias("before"),
        typed_source_col(event.source, "ts_ns").alias("ts_ns"),
        event.source.wallTime.alias("wall"),
    ).first()
    assert row.op == "u" and json.loads(row.before)["tags"] == ["pending"]
    assert row.ts_ns == 1739321992000000000 and row.wall is None


def test_key_and_document_id(spark, data_dir):
    path = data_dir / "debezium" / "paimon_dbz2.7.0_mongo_insert_c_schemaless.key_value.ndjson"
    key_line = _lines(path)[0]
    # the recorded ObjectId key, and the string _id form our documents (event_id) produce
    ours = json.dumps({"id": json.dumps("openmeteo:nairobi:20261003T100000Z")})
    df = spark.createDataFrame([(key_line,), (ours,)], "key string")
    ids = [
        r.doc_id
        for r in df.select(document_id_col(F.from_json("key", debezium_key_schema(False)).id).alias("doc_id")).collect()
    ]
    assert json.loads(ids[0]) == {"$oid": "67ab25755c0d5ac87eb8c632"}
    assert ids[1] == "openmeteo:nairobi:20261003T100000Z"

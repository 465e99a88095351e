"""The Debezium MongoDB change event as Spark reads it from Kafka (JsonConverter output).

Two wire forms, one payload:

* ``schemas.enable=false``: the Kafka value *is* the payload (:func:`debezium_payload_schema`);
* ``schemas.enable=true``: ``{"schema": {...}, "payload": {...}}``
  (:func:`debezium_envelope_schema` with ``with_schema=True``). The Connect ``schema`` block is
  kept verbatim as a JSON string (Spark stores any JSON value read into a string field as its text).

``before``, ``after``, ``patch``, ``filter`` and ``updateDescription.updatedFields`` are strings
holding MongoDB Extended JSON: a second parse is the CDC job's business. Every ``source`` field is
read as a string: the block changes between Debezium versions (2.1 ``rs``/``sequence``; 2.7
``ts_us``/``ts_ns``/``wallTime``; some 3.x send ``ts_us`` as a string), and a string field takes
a number or a string without failing the record. :func:`typed_source_col` casts them.

The Kafka key is ``{"id": "<Extended JSON of _id>"}`` (a string ``_id`` arrives double-quoted);
:func:`debezium_key_schema` reads it, :func:`document_id_col` unwraps it.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

OPS = {"c": "create", "u": "update", "r": "read (snapshot)", "d": "delete", "t": "truncate"}

# name -> Spark type the CDC job casts to (all arrive as strings, see module doc)
SOURCE_FIELDS: dict[str, type] = {
    "version": StringType,
    "connector": StringType,
    "name": StringType,
    "ts_ms": LongType,
    "ts_us": LongType,
    "ts_ns": LongType,
    "snapshot": StringType,
    "db": StringType,
    "sequence": StringType,
    "rs": StringType,
    "collection": StringType,
    "ord": IntegerType,
    "lsid": StringType,
    "txnNumber": LongType,
    "wallTime": LongType,
}


def _s(name: str) -> StructField:
    return StructField(name, StringType(), nullable=True)


def update_description_schema() -> StructType:
    return StructType(
        [
            StructField("removedFields", ArrayType(StringType(), containsNull=True), nullable=True),
            _s("updatedFields"),
            StructField(
                "truncatedArrays",
                ArrayType(
                    StructType(
                        [_s("field"), StructField("size", IntegerType(), nullable=True)],
                    ),
                    containsNull=True,
                ),
                nullable=True,
            ),
        ]
    )


def source_schema() -> StructType:
    return StructType([_s(name) for name in SOURCE_FIELDS])


def transaction_schema() -> StructType:
    return StructType(
        [
            _s("id"),
            StructField("total_order", LongType(), nullable=True),
            StructField("data_collection_order", LongType(), nullable=True),
        ]
    )


def debezium_payload_schema() -> StructType:
    """The change event itself (the Kafka value when ``schemas.enable=false``)."""
    return StructType(
        [
            _s("before"),
            _s("after"),
            _s("patch"),
            _s("filter"),
            StructField("updateDescription", update_description_schema(), nullable=True),
            StructField("source", source_schema(), nullable=True),
            _s("op"),
            StructField("ts_ms", LongType(), nullable=True),
            StructField("transaction", transaction_schema(), nullable=True),
        ]
    )


def debezium_envelope_schema(with_schema: bool) -> StructType:
    """The Kafka value: the payload alone, or ``{schema, payload}`` when the converter has schemas on."""
    if not with_schema:
        return debezium_payload_schema()
    return StructType([_s("schema"), StructField("payload", debezium_payload_schema(), nullable=True)])


def debezium_key_schema(with_schema: bool) -> StructType:
    key = StructType([_s("id")])
    if not with_schema:
        return key
    return StructType([_s("schema"), StructField("payload", key, nullable=True)])


def payload_col(value: Column, with_schema: bool) -> Column:
    """The payload struct of a parsed value, whichever converter form it came in."""
    return value.getField("payload") if with_schema else value


def typed_source_col(source: Column, field: str) -> Column:
    """``source.<field>`` cast to its type; a value that does not cast becomes null, never fails."""
    return source.getField(field).cast(SOURCE_FIELDS[field]())


def document_id_col(key_id: Column) -> Column:
    """The document ``_id`` from the key's ``id`` string.

    ``"\\"openmeteo:…\\""`` (a string ``_id``, JSON-quoted) → ``openmeteo:…``; an Extended-JSON
    object such as ``{"$oid": "…"}`` is returned unchanged for the caller to interpret.
    """
    return F.when(
        key_id.startswith('"'), F.get_json_object(F.concat(F.lit('{"v":'), key_id, F.lit("}")), "$.v")
    ).otherwise(key_id)

"""Debezium change events of the readings collection: parsed from Spark's Kafka rows and classified.

Input is what Spark's Kafka source yields (key, value, topic, partition, offset, timestamp) for the
topic the Debezium MongoDB connector writes (``aqcdc.airquality.readings_raw``). Nothing here does
I/O or reads configuration; the document inside is decoded by :mod:`jobs.transforms.extended_json`.

Each Kafka record gets one ``change_kind``:

* ``tombstone`` (null value, what Debezium sends after a delete) and ``heartbeat`` (a value with
  ``ts_ms`` and no ``op``): passed over;
* ``upsert`` (``op`` r/c/u with ``after``, the full document): the reading is upserted;
* ``patch`` (``op`` u without ``after``, only ``updateDescription.updatedFields``): the updated
  columns are written over the row (other columns untouched);
* ``delete`` (``op`` d, routed by the Kafka key: ``_id`` = ``event_id`` gives station, day, ts);
* ``quarantine``: anything else, with ``quarantine_reason`` = ``code: detail``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from jobs.transforms.extended_json import CORRUPT_COLUMN, decode_document, ext_json_text, parse_document
from jobs.transforms.quarantine import first_of, quarantine_rows, reason
from schemas.debezium import debezium_envelope_schema, debezium_key_schema, document_id_col
from schemas.reading import READING_FIELDS, event_id_day_col, event_id_station_col, event_id_ts_col

# change kinds
TOMBSTONE, HEARTBEAT, UPSERT, PATCH, DELETE, QUARANTINE = (
    "tombstone",
    "heartbeat",
    "upsert",
    "patch",
    "delete",
    "quarantine",
)
ROUTED_KINDS = (UPSERT, PATCH, DELETE)

# quarantine reason codes, in the order they are checked
UNPARSEABLE_ENVELOPE = "unparseable_envelope"
UNKNOWN_OP = "unknown_op"
MISSING_DOCUMENT = "missing_document"
UNPARSEABLE_DOCUMENT = "unparseable_document"
UNROUTABLE_KEY = "unroutable_key"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
KEY_MISMATCH = "key_mismatch"

_EVENT_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]*:[a-z0-9][a-z0-9._-]*:[0-9]{8}T[0-9]{6}Z$"


# --- envelope ---------------------------------------------------------------------------------------


def _parse_either(text: Column, schema_of: Callable[[bool], StructType], schemas_enabled: bool | None) -> Column:
    """The payload struct, from ``{schema, payload}`` or the bare payload (``None``: detect per message)."""
    with_wrapper = F.from_json(text, schema_of(True)).getField("payload")
    bare = F.from_json(text, schema_of(False))
    if schemas_enabled is True:
        return with_wrapper
    if schemas_enabled is False:
        return bare
    return F.when(with_wrapper.isNotNull(), with_wrapper).otherwise(bare)


def parse_changes(kafka_rows: DataFrame, schemas_enabled: bool | None = None) -> DataFrame:
    """Add ``event`` (the Debezium payload), ``doc_id`` (the key's ``_id``) and ``document`` (decoded
    ``after``, or ``updatedFields`` for a patch), ``raw_document`` (the texts before decoding)."""
    value_text = F.col("value").cast("string")
    key_text = F.col("key").cast("string")
    event = _parse_either(value_text, debezium_envelope_schema, schemas_enabled)
    key = _parse_either(key_text, debezium_key_schema, schemas_enabled)
    parsed = kafka_rows.withColumn("value_text", value_text).withColumn("event", event)
    after = F.col("event.after")
    updated = F.col("event.updateDescription.updatedFields")
    doc_text = F.coalesce(after, updated)
    raw_doc = parse_document(doc_text)
    return (
        parsed.withColumn("key_id", document_id_col(key.getField("id")))
        .withColumn("key_id", ext_json_text(F.col("key_id")))  # {"$oid": …} → the hex
        .withColumn("doc_text", doc_text)
        .withColumn("raw_document", raw_doc)
        .withColumn("document", decode_document(F.col("raw_document")))
        # the key routes a delete; records without a key (some captures) fall back to the document's _id
        .withColumn("doc_id", F.coalesce(F.col("key_id"), F.col("document._id")))
        .drop("key_id")
    )


def classify_changes(parsed: DataFrame, supported_schema_versions: Iterable[int]) -> DataFrame:
    """Add ``change_kind``, ``quarantine_reason``, and the routing key ``event_id``, ``station_id``,
    ``day``, ``event_time`` (all from the document key, so an upsert and a delete of the same reading
    land on the same Cassandra row)."""
    value, event, op = F.col("value"), F.col("event"), F.col("event.op")
    raw_doc, doc, doc_id = F.col("raw_document"), F.col("document"), F.col("doc_id")
    text, doc_text = F.col("value_text"), F.col("doc_text")
    # from_json turns text that is not JSON into a struct of nulls, not a null: check the text itself
    not_an_event = event.isNull() | ~F.ltrim(text).startswith("{") | F.get_json_object(text, "$").isNull()
    has_after = event.getField("after").isNotNull()
    has_updated = event.getField("updateDescription").getField("updatedFields").isNotNull()
    routable = doc_id.rlike(_EVENT_ID_PATTERN) & event_id_ts_col(doc_id).isNotNull()
    is_upsert = op.isin("r", "c", "u") & has_after
    is_patch = (op == "u") & ~has_after & has_updated
    kind_by_shape = first_of(
        [
            (value.isNull(), F.lit(TOMBSTONE)),
            (not_an_event, F.lit(QUARANTINE)),
            (op.isNull() & event.getField("ts_ms").isNotNull(), F.lit(HEARTBEAT)),
            (is_upsert, F.lit(UPSERT)),
            (is_patch, F.lit(PATCH)),
            (op == "d", F.lit(DELETE)),
        ]
    )
    versions = list(supported_schema_versions)
    checks: list[tuple[Column, Column]] = [
        (not_an_event, F.lit(f"{UNPARSEABLE_ENVELOPE}: not a JSON Debezium change event")),
        (op.isNull() | ~op.isin("r", "c", "u", "d"), reason(UNKNOWN_OP, F.coalesce(op, F.lit("null")))),
        (
            op.isin("r", "c", "u") & ~has_after & ~has_updated,
            F.lit(f"{MISSING_DOCUMENT}: no after and no updateDescription"),
        ),
        (
            op.isin("r", "c", "u")
            & (raw_doc.isNull() | ~F.ltrim(doc_text).startswith("{") | F.get_json_object(doc_text, "$").isNull()),
            F.lit(f"{UNPARSEABLE_DOCUMENT}: the document is not a JSON object"),
        ),
        (
            ~routable,
            reason(
                UNROUTABLE_KEY,
                F.concat(
                    F.lit("document id is not an event id: "), F.substring(F.coalesce(doc_id, F.lit("null")), 1, 80)
                ),
            ),
        ),
    ]
    # a full document must carry every required field, each decodable; a patch only what it names
    for spec in READING_FIELDS:
        present = raw_doc.getField(spec.name).isNotNull()
        checks.append(
            (
                op.isin("r", "c", "u") & present & doc.getField(spec.name).isNull(),
                reason(
                    WRONG_TYPE,
                    F.concat(
                        F.lit(f"{spec.name}: "),
                        F.substring(F.to_json(F.struct(raw_doc.getField(spec.name).alias("v"))), 1, 80),
                    ),
                ),
            )
        )
        if spec.required:
            checks.append((is_upsert & doc.getField(spec.name).isNull(), F.lit(f"{MISSING_FIELD}: {spec.name}")))
    checks.append(
        (
            is_upsert & raw_doc.getField(CORRUPT_COLUMN).isNotNull(),
            F.lit(f"{WRONG_TYPE}: the document does not fit the reading schema"),
        )
    )
    schema_version = doc.getField("schema_version")
    checks.append(
        (
            schema_version.isNotNull() & ~schema_version.isin(versions),
            reason(
                UNKNOWN_SCHEMA_VERSION,
                F.concat(F.lit("schema_version "), schema_version.cast("string"), F.lit(f" not in {versions}")),
            ),
        )
    )
    station, event_id = doc.getField("station_id"), doc.getField("event_id")
    checks.append(
        (
            op.isin("r", "c", "u")
            & (
                (event_id.isNotNull() & (event_id != doc_id))
                | (station.isNotNull() & (station != event_id_station_col(doc_id)))
                | (
                    doc.getField("ts").isNotNull()
                    & (F.date_trunc("second", doc.getField("ts")) != event_id_ts_col(doc_id))
                )
            ),
            reason(KEY_MISMATCH, F.concat(F.lit("event_id/station_id/ts disagree with _id "), doc_id)),
        )
    )
    why = F.when(F.col("change_kind_shape").isin(TOMBSTONE, HEARTBEAT), F.lit(None).cast("string")).otherwise(
        first_of(checks)
    )
    return (
        parsed.withColumn("change_kind_shape", kind_by_shape)
        .withColumn("quarantine_reason", why)
        .withColumn(
            "change_kind",
            F.when(F.col("quarantine_reason").isNotNull(), F.lit(QUARANTINE)).otherwise(
                F.coalesce(F.col("change_kind_shape"), F.lit(QUARANTINE))
            ),
        )
        .drop("change_kind_shape")
        .withColumn("event_id", F.when(F.col("change_kind").isin(*ROUTED_KINDS), doc_id))
        .withColumn("station_id", event_id_station_col(F.col("event_id")))
        .withColumn("day", event_id_day_col(F.col("event_id")))
        .withColumn("event_time", event_id_ts_col(F.col("event_id")))
    )


def decode_changes(
    kafka_rows: DataFrame, supported_schema_versions: Iterable[int], schemas_enabled: bool | None = None
) -> DataFrame:
    """Kafka rows → classified changes (stateless, so it runs inside the streaming plan)."""
    return classify_changes(parse_changes(kafka_rows, schemas_enabled), supported_schema_versions)


# --- quarantine ---------------------------------------------------------------------------------------


def quarantine_records(changes: DataFrame, quarantined_at: Column) -> DataFrame:
    """The changes that could not be applied, in the raw job's quarantine shape (original bytes,
    Kafka coordinates, reason: :data:`jobs.transforms.quarantine.QUARANTINE_SCHEMA`)."""
    return quarantine_rows(changes.where(F.col("change_kind") == QUARANTINE), quarantined_at)

"""Pure transforms of the Debezium CDC topic: envelope → change → Cassandra rows and window aggregates.

Input is what Spark's Kafka source yields (key, value, topic, partition, offset, timestamp) for the
topic the Debezium MongoDB connector writes (``aqcdc.airquality.readings_raw``). Nothing here does
I/O or reads configuration; no Python UDFs (every decode is a Catalyst expression).

Each Kafka record gets one ``change_kind``:

* ``tombstone`` (null value, what Debezium sends after a delete) and ``heartbeat`` (a value with
  ``ts_ms`` and no ``op``): passed over;
* ``upsert`` (``op`` r/c/u with ``after``, the full document): the reading is upserted;
* ``patch`` (``op`` u without ``after``, only ``updateDescription.updatedFields``): the updated
  columns are written over the row (other columns untouched);
* ``delete`` (``op`` d, routed by the Kafka key: ``_id`` = ``event_id`` gives station, day, ts);
* ``quarantine``: anything else, with ``quarantine_reason`` = ``code: detail``.

The Extended JSON inside ``after`` / ``updatedFields`` is parsed with a schema whose every scalar is
a string: Spark keeps a number's text and an object's JSON text there, so one decoder reads every
encoding the connector emits — strict v1 (``{"$date": 1739455297970}``, ``{"$numberLong": "…"}``),
relaxed/canonical v2 (``{"$date": "2025-04-30T17:33:30.61Z"}``, ``{"$date": {"$numberLong": …}}``,
``{"$numberDouble": "NaN"}``, ``{"$numberInt": …}``, ``{"$numberDecimal": …}``) and plain JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    MapType,
    StringType,
    StructField,
    StructType,
)

from jobs.transforms.quarantine import first_of, quarantine_rows, reason
from schemas.cassandra import AQI_COLUMNS, readings_table_columns
from schemas.debezium import debezium_envelope_schema, debezium_key_schema, document_id_col
from schemas.reading import (
    READING_FIELDS,
    event_id_day_col,
    event_id_station_col,
    event_id_ts_col,
    spark_type,
)

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
REASON_CODES = (
    UNPARSEABLE_ENVELOPE,
    UNKNOWN_OP,
    MISSING_DOCUMENT,
    UNPARSEABLE_DOCUMENT,
    UNROUTABLE_KEY,
    MISSING_FIELD,
    WRONG_TYPE,
    UNKNOWN_SCHEMA_VERSION,
    KEY_MISMATCH,
)

CORRUPT_COLUMN = "_corrupt_record"
_EVENT_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]*:[a-z0-9][a-z0-9._-]*:[0-9]{8}T[0-9]{6}Z$"
# {"$numberLong":"5"}, {"$numberDouble":"NaN"}, {"$oid":"67ab…"}, {"$date":1739455297970}, … (Spark's compact text)
_WRAPPER_RE = (
    r'^\{\s*"\$(?:numberDouble|numberLong|numberInt|numberDecimal|date|oid|symbol)"\s*:\s*"?([^"{}]*?)"?\s*\}$'
)
# {"$date":1739455297970}, {"$date":"2025-04-30T17:33:30.61Z"}, {"$date":{"$numberLong":"1739455297970"}}
_DATE_RE = r'^\{\s*"\$date"\s*:\s*(?:\{\s*"\$numberLong"\s*:\s*)?"?([^"{}]*?)"?\s*\}?\s*\}$'


# --- Extended JSON scalars ------------------------------------------------------------------------


def ext_json_text(raw: Column) -> Column:
    """The scalar inside an Extended-JSON wrapper (``{"$numberLong": "5"}`` → ``"5"``), else ``raw``.

    ``raw`` is the text Spark kept for a string-typed field: a scalar's text, or an object's JSON
    (Spark re-serialises it compactly; a key's text arrives as sent), which one regular expression reads.
    Kept to a single expression on purpose: Catalyst inlines these into every reference.
    """
    return F.when(raw.startswith("{"), F.regexp_extract(raw, _WRAPPER_RE, 1)).otherwise(raw)


def ext_json_double(raw: Column) -> Column:
    """A number in any encoding (plain, ``$numberDouble`` incl. NaN/±Infinity, ``$numberInt|Long|Decimal``)."""
    return ext_json_text(raw).cast("double")


def ext_json_long(raw: Column) -> Column:
    return ext_json_text(raw).cast("double").cast("long")


def ext_json_int(raw: Column) -> Column:
    return ext_json_text(raw).cast("double").cast("int")


def ext_json_timestamp(raw: Column) -> Column:
    """A date: ``{"$date": millis}`` (strict v1), ``{"$date": "ISO"}`` (relaxed v2),
    ``{"$date": {"$numberLong": "millis"}}`` (canonical v2), or a bare ISO string."""
    inner = F.when(raw.startswith("{"), F.regexp_extract(raw, _DATE_RE, 1)).otherwise(raw)
    return F.when(inner.rlike(r"^-?[0-9]+$"), F.timestamp_millis(inner.cast("long"))).otherwise(inner.cast("timestamp"))


_DECODERS: dict[str, Callable[[Column], Column]] = {
    "string": ext_json_text,
    "double": ext_json_double,
    "int": ext_json_int,
    "long": ext_json_long,
    "timestamp": ext_json_timestamp,
    "map_double": lambda raw: F.transform_values(raw, lambda _, v: ext_json_double(v)),
    "array_string": lambda raw: F.transform(raw, ext_json_text),
}


def document_text_schema() -> StructType:
    """The MongoDB reading document with every scalar read as text (decoded by :func:`decode_document`)."""
    fields = [StructField("_id", StringType(), True)]
    for spec in READING_FIELDS:
        if spec.kind == "map_double":
            data_type = MapType(StringType(), StringType(), valueContainsNull=True)
        elif spec.kind == "array_string":
            data_type = ArrayType(StringType(), containsNull=True)
        else:
            data_type = StringType()
        fields.append(StructField(spec.name, data_type, True))
    return StructType([*fields, StructField(CORRUPT_COLUMN, StringType(), True)])


def parse_document(text: Column) -> Column:
    """Extended-JSON text → struct of raw field texts (PERMISSIVE: ``_corrupt_record`` on a bad type)."""
    return F.from_json(
        text, document_text_schema(), {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_COLUMN}
    )


def decode_document(raw_doc: Column) -> Column:
    """Struct of raw texts → struct of the canonical reading's typed fields (``raw`` kept as text)."""
    return F.struct(
        ext_json_text(raw_doc.getField("_id")).alias("_id"),
        *[_DECODERS[spec.kind](raw_doc.getField(spec.name)).alias(spec.name) for spec in READING_FIELDS],
    )


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


# --- routing within a micro-batch ------------------------------------------------------------------


def last_changes(changes: DataFrame) -> DataFrame:
    """Per reading, the change that wins within the batch: the last upsert/delete by Kafka order,
    plus ``patch`` = the patches after it merged (last non-null value per field).

    Debezium keys by ``_id``, so the changes of one document are in one partition, in offset order.
    Returns at most two rows per ``event_id``: the winning upsert|delete, then the merged patch to
    write over it. One pass of window functions (no self-join, which Catalyst plans badly here).
    """
    pos = F.struct(F.col("partition"), F.col("offset"))
    by_id = Window.partitionBy("event_id")
    ordered = by_id.orderBy(pos).rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    is_full = F.col("change_kind") != PATCH
    last_full = F.max(F.when(is_full, pos)).over(by_id)
    applies = ~is_full & (F.col("_last_full").isNull() | (pos > F.col("_last_full")))
    merged = F.struct(
        *[
            F.last(F.when(F.col("_applies"), F.col("document").getField(f)), ignorenulls=True).over(ordered).alias(f)
            for f in ["_id", *[s.name for s in READING_FIELDS]]
        ]
    )
    return (
        changes.where(F.col("change_kind").isin(*ROUTED_KINDS))
        .withColumn("_last_full", last_full)
        .withColumn("_applies", applies)
        .withColumn("_last_patch", F.max(F.when(F.col("_applies"), pos)).over(by_id))
        .withColumn("_merged", merged)
        .where((is_full & (pos == F.col("_last_full"))) | (F.col("_applies") & (pos == F.col("_last_patch"))))
        .withColumn("document", F.when(is_full, F.col("document")).otherwise(F.col("_merged")))
        .drop("_last_full", "_applies", "_last_patch", "_merged")
    )


def to_reading_rows(upserts: DataFrame, with_aqi: Callable[[DataFrame], DataFrame] | None = None) -> DataFrame:
    """``readings_by_station_day`` rows (key from ``event_id``; day = UTC date of ts)."""
    key = {"station_id": F.col("station_id"), "day": F.col("day"), "ts": F.col("event_time")}
    aqi_names = {name for name, _ in AQI_COLUMNS}
    reading_cols = [
        key[name] if name in key else F.col("document").getField(name)
        for name, _ in readings_table_columns()
        if name not in aqi_names
    ]
    names = [name for name, _ in readings_table_columns() if name not in aqi_names]
    rows = upserts.select(*[c.alias(n) for c, n in zip(reading_cols, names, strict=True)])
    return _add_aqi(rows, with_aqi).select(*[name for name, _ in readings_table_columns()])


def to_patch_rows(patches: DataFrame) -> DataFrame:
    """The key plus the fields a patch names (the rest null: written with ``ignoreNulls``, untouched).

    AQI columns are not recomputed from a partial document: they stay as the last full write left
    them (an update through the real connector in ``change_streams_update_full`` mode is a full
    document, i.e. an upsert, and does recompute them).
    """
    names = [name for name, _ in readings_table_columns() if name not in {n for n, _ in AQI_COLUMNS}]
    key = {"station_id": F.col("station_id"), "day": F.col("day"), "ts": F.col("event_time")}
    return patches.select(*[(key[n] if n in key else F.col("document").getField(n)).alias(n) for n in names])


def delete_keys(deletes: DataFrame) -> DataFrame:
    """The primary key of each deleted reading, read back from its ``_id`` (= ``event_id``)."""
    return deletes.select(F.col("station_id"), F.col("day"), F.col("event_time").alias("ts"))


def is_late(watermark: Column) -> Column:
    """True for a change whose event time is older than the query's event-time watermark."""
    return F.col("event_time") < watermark


# --- quarantine ---------------------------------------------------------------------------------------


def quarantine_records(changes: DataFrame, quarantined_at: Column) -> DataFrame:
    """The changes that could not be applied, in the raw job's quarantine shape (original bytes,
    Kafka coordinates, reason: :data:`jobs.transforms.quarantine.QUARANTINE_SCHEMA`)."""
    return quarantine_rows(changes.where(F.col("change_kind") == QUARANTINE), quarantined_at)


# --- AQI -------------------------------------------------------------------------------------------------


def _null_columns(df: DataFrame, columns: Iterable[tuple[str, str]]) -> DataFrame:
    return df.select("*", *[F.lit(None).cast(spark_type(kind)).alias(name) for name, kind in columns])


def _add_aqi(rows: DataFrame, with_aqi: Callable[[DataFrame], DataFrame] | None) -> DataFrame:
    return with_aqi(rows) if with_aqi is not None else _null_columns(rows, AQI_COLUMNS)

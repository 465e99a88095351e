"""MongoDB Extended JSON, as the Debezium MongoDB connector emits it, decoded by Catalyst expressions.

The Extended JSON inside ``after`` / ``updatedFields`` is parsed with a schema whose every scalar is
a string: Spark keeps a number's text and an object's JSON text there, so one decoder reads every
encoding the connector emits — strict v1 (``{"$date": 1739455297970}``, ``{"$numberLong": "…"}``),
relaxed/canonical v2 (``{"$date": "2025-04-30T17:33:30.61Z"}``, ``{"$date": {"$numberLong": …}}``,
``{"$numberDouble": "NaN"}``, ``{"$numberInt": …}``, ``{"$numberDecimal": …}``) and plain JSON.
No Python UDFs: Catalyst inlines every decode into the plan.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, MapType, StringType, StructField, StructType

from schemas.reading import READING_FIELDS

CORRUPT_COLUMN = "_corrupt_record"
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

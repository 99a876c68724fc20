"""Write the wire contracts as JSON Schema files, for producers and consumers in any language.

Run ``python -m schemas.export OUT_DIR``; the files are also what a schema registry or a
contract test on the producer side would load.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Final

from pydantic import TypeAdapter

from schemas.card import ModelCard
from schemas.events import AnomalyEvent, DeadLetter
from schemas.records import Record

__all__ = ["SCHEMA_FILES", "export_json_schemas", "json_schemas"]

SCHEMA_FILES: Final = (
    "record.schema.json",
    "anomaly_event.schema.json",
    "dead_letter.schema.json",
    "model_card.schema.json",
)


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every contract, keyed by the file name it is written to."""
    record = TypeAdapter(Record).json_schema()
    record["title"] = "Record"
    record["description"] = (
        "One input record; a message carries one record or a JSON list of records of one key."
    )
    schemas = (
        record,
        AnomalyEvent.model_json_schema(),
        DeadLetter.model_json_schema(),
        ModelCard.model_json_schema(),
    )
    out: dict[str, dict[str, Any]] = {}
    for name, schema in zip(SCHEMA_FILES, schemas, strict=True):
        out[name] = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    return out


def export_json_schemas(out_dir: Path | str) -> list[Path]:
    """Write one ``*.schema.json`` per contract into ``out_dir`` (created if missing).

    Returns
    -------
    list of Path
        The files written, in :data:`SCHEMA_FILES` order.
    """
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in json_schemas().items():
        path = directory / name
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover - thin command-line wrapper
    for written_path in export_json_schemas(sys.argv[1] if len(sys.argv) > 1 else "schemas-json"):
        print(written_path)

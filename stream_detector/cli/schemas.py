"""``stream-detector schemas``: the wire contracts as JSON Schema files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stream_detector.cli.checks import new_folder
from stream_detector.cli.common import app, one_line_errors, say

__all__ = ["schemas_app"]

schemas_app = typer.Typer(
    help="The wire contracts (records, anomaly events, dead letters, model card).",
    no_args_is_help=True,
)
app.add_typer(schemas_app, name="schemas")


@schemas_app.command("export")
def schemas_export(
    directory: Annotated[
        Path, typer.Argument(help="folder to write (created if missing)", metavar="DIR",
                             callback=new_folder)
    ],
) -> None:
    """Write one JSON Schema file per contract, for producers in any language.

    Example:

    \b
      stream-detector schemas export schemas-json/
    """
    from schemas.export import export_json_schemas

    with one_line_errors():
        for path in export_json_schemas(directory):
            say(str(path))

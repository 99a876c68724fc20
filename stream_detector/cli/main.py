"""The ``stream-detector`` command line (typer): the entry point over one module per command.

:mod:`stream_detector.cli.common` holds the root app and what commands share; each command
module registers its commands on it when imported, and this module imports them all. Heavy
imports (torch, faust, onnxruntime) stay inside the commands that need them, so
``stream-detector --help`` and ``services status`` answer instantly.
"""

from __future__ import annotations

import typer
from rich.markup import escape

import stream_detector.cli.alerts
import stream_detector.cli.demo
import stream_detector.cli.models
import stream_detector.cli.replay
import stream_detector.cli.schemas
import stream_detector.cli.services
import stream_detector.cli.tail
import stream_detector.cli.thresholds
import stream_detector.cli.ui
import stream_detector.cli.worker  # noqa: F401 - each import registers its commands
from stream_detector.cli.common import app, err_console, usage_error
from stream_detector.exceptions import StreamDetectorError

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point: every user error ends as one line and a non-zero exit.

    Click's usage errors (a bad option value, a missing file: exit code 2) are printed as
    one line instead of click's boxed block; project errors as one red line, exit code 1.
    """
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:  # typer's click: usage errors, exit code 2
        usage_error(exc)
    except typer.Abort:
        raise SystemExit(130) from None
    except StreamDetectorError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise SystemExit(1) from None
    raise SystemExit(code if isinstance(code, int) else 0)


"""Where tests find the command-line validators that the dev extras install.

They live in the virtual environment's ``bin`` folder, which is not on ``PATH`` when the tests
run as ``.venv/bin/python -m pytest``; look there first, then on ``PATH``.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def find_tool(name: str) -> str | None:
    """The full path of command ``name``, from this interpreter's ``bin`` or ``PATH``; or None."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return shutil.which(name, path=search)

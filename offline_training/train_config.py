"""``train --config FILE``: a YAML or JSON mapping of :class:`TrainOptions` fields, checked.

Every key is checked against the option it names, with its type, before anything is read
or trained, so a typo (``windoww: 12``), a wrong type (``window: abc``) or a broken file is
one line that names the file and the key, not a traceback minutes later. ``train:`` holds
:class:`~offline_training.trainer.TrainConfig` fields (``lr``, ``batch_size``, ...) and
``model_config:`` the model family's own options (checked by the family).

Precedence: a flag given on the command line, then the file, then the flag's default.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
from pathlib import Path
from typing import Any, get_args, get_type_hints

from pydantic import TypeAdapter, ValidationError

from offline_training.durations import DURATION_DEFAULTS
from offline_training.train_options import TrainOptions
from offline_training.trainer import TrainConfig
from stream_detector.core.detection import STATE_LIMITS, DetectionParams
from stream_detector.exceptions import DataError

__all__ = ["CONFIG_OPTIONS", "read_config", "checked_options"]

# What a config file may not set: where the data and model go are flags, and the rest is
# wiring (the train: section has its own checks; step is the progress callback).
_NOT_IN_FILES = frozenset({"data", "out", "step", "train"})
CONFIG_OPTIONS: frozenset[str] = frozenset(
    f.name for f in dataclasses.fields(TrainOptions) if f.name not in _NOT_IN_FILES
) | {"train"}


def read_config(path: Path) -> dict[str, Any]:
    """The mapping in ``path`` (``.yaml``/``.yml`` as YAML, anything else as JSON).

    Raises
    ------
    DataError
        Unreadable text, a syntax error (with its line), or a document that is not a mapping.
    """
    import yaml

    try:
        text = path.read_text(encoding="utf-8-sig")
        doc = yaml.safe_load(text) if path.suffix in {".yaml", ".yml"} else json.loads(text)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason}); save it as UTF-8") from exc
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not valid {'YAML' if path.suffix != '.json' else 'JSON'} "
                        f"({' '.join(str(exc).split())}); fix the syntax") from exc
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise DataError(f"{path}: must hold a mapping of options (name: value), "
                        f"not a {type(doc).__name__}")
    return doc


def checked_options(doc: dict[str, Any], path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(TrainOptions fields, TrainConfig fields) of a config document, each value checked
    against its field's type.

    Raises
    ------
    DataError
        An unknown key (the known ones listed), or a value of the wrong type.
    """
    unknown = sorted(str(k) for k in doc if k not in CONFIG_OPTIONS)
    if unknown:
        raise DataError(f"{path}: unknown option(s) {unknown}; known: "
                        f"{', '.join(sorted(CONFIG_OPTIONS))}")
    train = doc.get("train") or {}
    if not isinstance(train, dict):
        raise DataError(f"{path}: train: must be a mapping of training settings")
    known_train = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(str(k) for k in train if k not in known_train)
    if unknown:
        raise DataError(f"{path}: train: unknown setting(s) {unknown}; known: "
                        f"{', '.join(sorted(known_train))}")
    options = {k: _checked(TrainOptions, k, v, path, "") for k, v in doc.items() if k != "train"}
    if "detection" in options:
        options["detection"] = checked_detection(options["detection"], path)
    return options, {k: _checked(TrainConfig, k, v, path, "train.") for k, v in train.items()}


# Settings of the detection section beyond DetectionParams' own fields: durations of the
# window counts (offline_training/durations.py), and training-time factors.
_DETECTION_EXTRA: dict[str, type] = {
    **{name: float for name in DURATION_DEFAULTS}, "confirm_step_s": float,
    "offset_factor": float, "max_windows": int}


def checked_detection(section: dict[str, Any], path: Path) -> dict[str, Any]:
    """The ``detection:`` section of a config, each setting checked against its type in
    :class:`~stream_detector.core.detection.DetectionParams` (or a duration in seconds) and
    required to be finite and not negative.

    Unchecked, ``suppress: "two weeks"`` trained a model whose scoring crashed (the worker
    dead-lettered every record that would alert), ``normalise: maybe`` crashed training,
    and a misspelt ``supress: 14`` was silently ignored.

    Raises
    ------
    DataError
        An unknown setting (the known ones listed), a value of the wrong type, a
        negative or non-finite number, or one that sizes every key's state beyond its limit
        (``season``, ``recur``, ``recur_memory``).
    """
    hints = {**get_type_hints(DetectionParams), **_DETECTION_EXTRA}
    unknown = sorted(str(k) for k in section if k not in hints)
    if unknown:
        close = {k: difflib.get_close_matches(k, list(hints), n=1) for k in unknown}
        said = ", ".join(f"{k!r}" + (f" (did you mean {c[0]!r}?)" if c else "")
                         for k, c in close.items())
        raise DataError(f"{path}: detection: unknown setting(s) {said}; known: "
                        f"{', '.join(sorted(hints))}")
    checked: dict[str, Any] = {}
    for name, value in section.items():
        _no_bool_for_number(hints[name], value, f"{path}: detection.{name}")
        try:
            checked[name] = TypeAdapter(hints[name]).validate_python(value, strict=isinstance(
                value, str))
        except ValidationError as exc:
            msg = exc.errors(include_url=False)[0]["msg"]
            raise DataError(f"{path}: detection.{name}: {msg} (got {_got(value)})") from None
        number = checked[name]
        if not isinstance(number, bool) and not (math.isfinite(number) and number >= 0):
            raise DataError(f"{path}: detection.{name}: must be a finite number >= 0 "
                            f"(got {value!r})")
        if name in STATE_LIMITS and number > STATE_LIMITS[name]:
            raise DataError(f"{path}: detection.{name}: must be at most "
                            f"{STATE_LIMITS[name]} (got {value!r}): it sizes every key's "
                            "state in the worker")
    return checked


def _checked(owner: type, name: str, value: Any, path: Path, prefix: str) -> Any:
    hint = get_type_hints(owner)[name]
    _no_bool_for_number(hint, value, f"{path}: {prefix}{name}")
    try:
        return TypeAdapter(hint).validate_python(value)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise DataError(f"{path}: {prefix}{name}: {first['msg']} (got {_got(value)})") from None


def _no_bool_for_number(hint: Any, value: Any, where: str) -> None:
    """A YAML ``true``/``false`` where a number belongs (``int``, ``float``, or either or
    ``None``) was taken as 1/0 (``max_windows: true`` trained with a 1-window cap); refuse
    it."""
    if isinstance(value, bool) and bool not in get_args(hint) and (
            hint in (int, float) or {int, float} & set(get_args(hint))):  # also int | None
        raise DataError(f"{where}: must be a number, not {str(value).lower()}")


def _got(value: Any) -> str:
    """``value`` as the error shows it; a number YAML read as text says so (YAML 1.1 reads
    ``1e3`` as a string: the exponent needs a dot and a sign)."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return repr(value)
        return (f"{value!r}, text: YAML reads {value} as a string; write it as "
                f"{number!r} or with a dot and a signed exponent, such as 1.0e+3")
    return repr(value)

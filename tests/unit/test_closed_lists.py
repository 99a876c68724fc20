"""Each closed list (record kinds, model families, threshold and scaler methods, providers)
and each input bound has one home; every other module reads it from there.

The homes: :mod:`schemas.kinds` (what the wire contracts need), :mod:`schemas.records` (the
input bounds) and :mod:`stream_detector.constants` (execution-provider choices). A module that
spells a whole list out again (a ``Literal[...]``, a tuple, a list or a set of its members)
or assigns a bound again fails here, so a new member cannot be forgotten in a copy.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import TypeAdapter, ValidationError

from offline_training.calibration import check_method
from schemas import kinds
from schemas.card import ThresholdCard
from schemas.events import ModelRef, ThresholdSource
from schemas.records import Record
from stream_detector import constants
from stream_detector.core.providers import select_providers
from stream_detector.exceptions import ConfigurationError

REPO = Path(__file__).resolve().parents[2]
ROOTS = ("stream_detector", "schemas", "offline_training", "benchmarks")
KINDS_HOME = REPO / "schemas" / "kinds.py"
CONSTANTS_HOME = REPO / "stream_detector" / "constants.py"
CLOSED: dict[str, tuple[Path, tuple[str, ...]]] = {
    "record kinds": (KINDS_HOME, kinds.RECORD_KINDS),
    "autoencoder families": (KINDS_HOME, kinds.AUTOENCODER_FAMILIES),
    "model families": (KINDS_HOME, kinds.MODEL_FAMILIES),
    "calibration methods": (KINDS_HOME, kinds.CALIBRATION_METHODS),
    "threshold methods": (KINDS_HOME, kinds.THRESHOLD_METHODS),
    "scaler methods": (KINDS_HOME, kinds.SCALER_METHODS),
    "provider preferences": (CONSTANTS_HOME, constants.PROVIDER_PREFERENCES),
}
BOUNDS = ("MAX_MESSAGE_BYTES", "MAX_RECORDS_PER_MESSAGE", "MAX_WINDOW_LENGTH", "MAX_FEATURES",
          "MAX_KEY_LENGTH", "MAX_TIMESTAMP_LENGTH", "MIN_TIMESTAMP_LENGTH", "MAX_ID")


def source_files() -> list[Path]:
    return sorted(p for r in ROOTS for p in (REPO / r).rglob("*.py"))


def spelled_lists(tree: ast.AST) -> list[tuple[int, set[str]]]:
    """(line, members) of every Literal[...], tuple, list and set of two or more strings."""
    found: list[tuple[int, set[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and getattr(node.value, "id", "") == "Literal":
            elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        elif isinstance(node, ast.Tuple | ast.List | ast.Set):
            elts = node.elts
        else:
            continue
        words = {e.value for e in elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
        if len(words) >= 2 and (node.lineno, words) not in found:  # Literal[a, b] is a tuple too
            found.append((node.lineno, words))
    return found


def test_each_closed_list_is_spelled_out_only_in_its_home() -> None:
    copies = [
        f"{path.relative_to(REPO)}:{line}: the {name} {sorted(members)}"
        for path in source_files()
        for line, words in spelled_lists(ast.parse(path.read_text()))
        for name, (home, members) in CLOSED.items()
        if path != home and set(members) <= words
    ]
    assert not copies, "read these lists from their home instead:\n" + "\n".join(copies)


def test_the_checker_finds_a_copy() -> None:
    code = 'Kind = Literal["series", "sales", "events"]\nx = ("percentile", "fpr")\n'
    assert spelled_lists(ast.parse(code)) == [(1, set(kinds.RECORD_KINDS)), (2, {"percentile",
                                                                                "fpr"})]


def test_input_bounds_are_assigned_once() -> None:
    homes: dict[str, list[str]] = {}
    for path in source_files():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, ast.AnnAssign) else [])
            for target in targets:
                if isinstance(target, ast.Name) and target.id in BOUNDS:
                    homes.setdefault(target.id, []).append(str(path.relative_to(REPO)))
    assert homes == dict.fromkeys(BOUNDS, ["schemas/records.py"])


@pytest.mark.parametrize("literal", [kinds.RecordKind, kinds.AutoencoderFamily,
                                     kinds.ModelFamily, kinds.CalibrationMethod,
                                     kinds.ThresholdMethod, kinds.ScalerMethod,
                                     constants.ProviderPreference])
def test_every_tuple_is_its_literal(literal: Any) -> None:
    tuples = {kinds.RecordKind: kinds.RECORD_KINDS,
              kinds.AutoencoderFamily: kinds.AUTOENCODER_FAMILIES,
              kinds.ModelFamily: kinds.MODEL_FAMILIES,
              kinds.CalibrationMethod: kinds.CALIBRATION_METHODS,
              kinds.ThresholdMethod: kinds.THRESHOLD_METHODS,
              kinds.ScalerMethod: kinds.SCALER_METHODS,
              constants.ProviderPreference: constants.PROVIDER_PREFERENCES}
    assert tuples[literal] == get_args(literal) and len(set(get_args(literal))) > 1


def test_every_record_kind_is_a_record_and_nothing_else() -> None:
    union = get_args(get_args(Record)[0])
    tags = [get_args(model.model_fields["kind"].annotation)[0] for model in union]
    assert tags == list(kinds.RECORD_KINDS)


def test_the_contracts_accept_every_member_and_nothing_else() -> None:
    ref = {"name": "m", "version": "1", "onnx_sha256": "ab" * 32}
    for family in kinds.MODEL_FAMILIES:
        assert ModelRef.model_validate({**ref, "family": family}).family == family
    for method in kinds.THRESHOLD_METHODS:
        assert ThresholdSource(method=method, version="1", scope="key").method == method
    for method, value in zip(kinds.CALIBRATION_METHODS, (95.0, 0.01, 0.01, 4.0), strict=True):
        card = ThresholdCard(method=method, value_param=value, default=1.0)
        assert card.method == method and check_method(method, value) > 0.0
    with pytest.raises(ValidationError):
        ModelRef.model_validate({**ref, "family": "forest"})
    with pytest.raises(ValidationError):
        ThresholdCard.model_validate({"method": "manual", "value_param": 1.0, "default": 1.0})
    with pytest.raises(ValueError, match="use percentile, contamination, fpr or sigma"):
        check_method("manual", 1.0)
    assert TypeAdapter(kinds.RecordKind).validate_python("sales") == "sales"


def test_every_provider_preference_is_implemented() -> None:
    assert select_providers("cpu") == ["CPUExecutionProvider"]
    assert select_providers("auto")[-1] == "CPUExecutionProvider"
    for preference in constants.PROVIDER_PREFERENCES:
        try:
            assert select_providers(preference)[-1] == "CPUExecutionProvider"
        except ConfigurationError as exc:  # cuda or tensorrt on a machine without the GPU
            assert preference in ("cuda", "tensorrt") and "cannot run here" in str(exc)
    with pytest.raises(ConfigurationError, match="use one of auto, cpu, cuda, tensorrt"):
        select_providers("rocm")

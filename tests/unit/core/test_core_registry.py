"""Publishing and polling a registry: staging folders are invisible, a worker starts on the
newest *valid* version, and a bad version never stops later ones from being picked up."""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from pathlib import Path

import pytest

from stream_detector.core.registry import ModelRegistry, load_model, publish_version
from stream_detector.exceptions import ModelCardError

sys.path.insert(0, str(Path(__file__).parent))
from test_core_scoring import card_dict, tiny_onnx, write_model  # noqa: E402


def test_staging_folders_are_ignored_until_renamed_into_place(tmp_path: Path) -> None:
    write_model(tmp_path / "tiny" / "1")
    registry = ModelRegistry(tmp_path, preference="cpu")
    assert registry.load_latest().card.version == "1"
    # train's own staging name; complete files, but still being calibrated
    staging = write_model(tmp_path / "tiny" / ".2.partial", version="2")
    write_model(tmp_path / "tiny" / "3.tmp", version="3")
    assert [v.version for v in registry.versions()] == ["1"]
    assert registry.refresh() is None
    publish_version(staging, tmp_path / "tiny" / "2")
    swapped = registry.refresh()
    assert swapped is not None and swapped.card.version == "2"
    later = write_model(tmp_path / "tiny" / ".10.partial", version="10")
    publish_version(later, tmp_path / "tiny" / "10")
    swapped = registry.refresh()
    assert swapped is not None and swapped.card.version == "10"  # natural order: 10 after 2


def test_publish_never_overwrites_a_version(tmp_path: Path) -> None:
    write_model(tmp_path / "tiny" / "1")
    staging = write_model(tmp_path / "tiny" / ".1.partial")
    with pytest.raises(FileExistsError, match="immutable"):
        publish_version(staging, tmp_path / "tiny" / "1")


def test_start_on_the_newest_valid_version_naming_the_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_model(tmp_path / "tiny" / "1")
    bad_sha = write_model(tmp_path / "tiny" / "2", version="2")
    (bad_sha / "model.onnx").write_bytes(b"truncated")
    bad_card = write_model(tmp_path / "tiny" / "3", version="3")
    (bad_card / "card.json").write_text('{"name": "tiny"')
    registry = ModelRegistry(tmp_path, preference="cpu")
    with caplog.at_level(logging.ERROR, logger="stream_detector.core.registry"):
        loaded = registry.load_latest()
    assert loaded.card.version == "1"
    assert [v.version for v, _ in registry.refused] == ["3", "2"]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and str(bad_card) in lines[0] and str(bad_sha) in lines[1]
    assert "sha256" in lines[1] and "refused" in lines[0]
    assert all("; trying an older version;" in line for line in lines)
    assert "stream-detector train writes both files" in lines[1]  # a command that exists
    write_model(tmp_path / "tiny" / "4", version="4")
    swapped = registry.refresh()  # the broken ones do not block a later valid one
    assert swapped is not None and swapped.card.version == "4"


def test_no_valid_version_is_one_error_listing_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = write_model(tmp_path / "tiny" / "1")
    (bad / "model.onnx").write_bytes(b"x")
    with caplog.at_level(logging.ERROR, logger="stream_detector.core.registry"), \
            pytest.raises(ModelCardError, match="no loadable version") as info:
        ModelRegistry(tmp_path, preference="cpu").load_latest()
    assert str(bad) in str(info.value)
    # no log line before it claiming an older version would serve: the error says it all
    assert caplog.records == []


def test_unloadable_onnx_with_a_matching_card_is_a_card_error(tmp_path: Path) -> None:
    garbage = b"\x08\x07not a protobuf graph"
    directory = tmp_path / "m"
    directory.mkdir()
    (directory / "model.onnx").write_bytes(garbage)
    card = card_dict(tiny_onnx(), onnx_sha256=hashlib.sha256(garbage).hexdigest())
    (directory / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelCardError, match="ONNX Runtime cannot load"):
        load_model(directory, preference="cpu")


def test_refresh_check_can_refuse_a_version(tmp_path: Path) -> None:
    write_model(tmp_path / "tiny" / "1")
    registry = ModelRegistry(tmp_path, preference="cpu")
    registry.load_latest()
    write_model(tmp_path / "tiny" / "2", version="2")

    def refuse(card: object) -> None:
        raise ModelCardError("clashes")

    assert registry.refresh(refuse) is None
    assert registry.current is not None and registry.current.card.version == "1"
    assert [v.version for v, _ in registry.refused] == ["2"]


@pytest.mark.parametrize(("text", "said"), [
    ('{"broken', "the file: Invalid JSON: EOF while parsing"),
    (None, "window: Input should be greater than"),
])
def test_an_invalid_card_is_one_line_naming_the_file_and_the_field(
    tmp_path: Path, text: str | None, said: str,
) -> None:
    from stream_detector.core.registry import read_card

    model = write_model(tmp_path / "tiny" / "1")
    if text is None:
        card = json.loads((model / "card.json").read_text())
        card["window"] = 0
        text = json.dumps(card)
    (model / "card.json").write_text(text)
    with pytest.raises(ModelCardError) as info:
        read_card(model)
    message = str(info.value)
    assert "\n" not in message and "errors.pydantic.dev" not in message
    assert message.startswith(f"model card {model / 'card.json'} is invalid: {said}"), message


def test_a_version_folder_holding_another_version_s_card_is_refused(tmp_path: Path) -> None:
    """A copy of version 1 as folder 4 was served as 'version 1', with no word."""
    import shutil

    write_model(tmp_path / "tiny" / "1")
    registry = ModelRegistry(tmp_path, preference="cpu")
    assert registry.load_latest().card.version == "1"
    shutil.copytree(tmp_path / "tiny" / "1", tmp_path / "tiny" / "4")
    assert registry.refresh() is None  # version 1 keeps serving
    reason = registry.refused[-1][1]
    assert "holds the card of tiny version 1, not tiny version 4" in reason, reason
    fresh = ModelRegistry(tmp_path, preference="cpu")
    assert fresh.load_latest().card.version == "1"  # the newest folder refused, 1 loaded

"""`stream-detector thresholds` against a real redis-server, and a worker cache listening."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from model_fixtures import card_dict
from typer.testing import CliRunner

from schemas.card import ModelCard
from stream_detector.cli.main import app
from stream_detector.services.process import ServiceHandle
from stream_detector.worker.threshold_cache import ThresholdCache

runner = CliRunner()
CARD = card_dict(thresholds={
    "method": "percentile", "value_param": 99.0, "default": 0.5,
    "per_key": {"Twitter_volume_AAPL": 0.7, "Twitter_volume_FB": 0.9},
})


@pytest.fixture()
def model_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "nab-dense" / "3"
    directory.mkdir(parents=True)
    (directory / "card.json").write_text(json.dumps(CARD))
    return directory


def cli(redis_server: ServiceHandle, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["thresholds", *args, "--redis", redis_server.url])
    assert result.exit_code == code, result.output
    return result.output


def test_publish_set_get_list_delete_round_trip(
    redis_server: ServiceHandle, redis_client: Any, model_dir: Path
) -> None:
    out = cli(redis_server, "publish", "--model", str(model_dir))
    assert "published 3 threshold(s) of nab-dense 3" in out
    listed = json.loads(cli(redis_server, "list", str(model_dir), "--json"))
    assert {k: e["value"] for k, e in listed.items()} == {
        "*": 0.5, "Twitter_volume_AAPL": 0.7, "Twitter_volume_FB": 0.9
    }
    assert {e["method"] for e in listed.values()} == {"percentile"}
    assert list(listed)[0] == "*"

    cli(redis_server, "set", str(model_dir), "Twitter_volume_AAPL", "1.25", "--by", "alice",
        "--method", "fpr")
    got = json.loads(cli(redis_server, "get", "nab-dense", "Twitter_volume_AAPL",
                         "--version", "3", "--json"))
    assert (got["value"], got["scope"], got["set_by"], got["method"]) == (
        1.25, "key", "alice", "fpr")
    stored = json.loads(redis_client.hget("sd:threshold:nab-dense:3", "Twitter_volume_AAPL"))
    assert stored["value"] == 1.25 and stored["set_by"] == "alice"

    table = cli(redis_server, "list", "nab-dense", "--version", "3")
    assert "Twitter_volume_AAPL" in table and "1.25" in table and "alice" in table

    assert "deleted" in cli(redis_server, "delete", "nab-dense", "Twitter_volume_AAPL", "-v", "3")
    # the key now falls back to the Redis default
    got = json.loads(cli(redis_server, "get", str(model_dir), "Twitter_volume_AAPL", "--json"))
    assert (got["value"], got["scope"]) == (0.5, "default")
    out = cli(redis_server, "delete", "nab-dense", "Twitter_volume_AAPL", "-v", "3", code=1)
    assert "nothing deleted" in out


def test_get_falls_back_to_the_card_and_fails_without_one(
    redis_server: ServiceHandle, redis_client: Any, model_dir: Path
) -> None:
    got = json.loads(cli(redis_server, "get", str(model_dir), "Twitter_volume_FB", "--json"))
    assert (got["value"], got["scope"]) == (0.9, "card_key")
    got = json.loads(cli(redis_server, "get", str(model_dir), "unseen", "--json"))
    assert (got["value"], got["scope"]) == (0.5, "card_default")
    out = cli(redis_server, "get", "nab-dense", "unseen", "--version", "3", code=1)
    assert "no threshold for 'unseen'" in out
    assert json.loads(cli(redis_server, "list", "nab-dense", "-v", "3", "--json")) == {}


def test_version_must_match_the_directory(redis_server: ServiceHandle, model_dir: Path) -> None:
    out = cli(redis_server, "list", str(model_dir), "--version", "4", code=1)
    assert "holds version '3', not '4'" in out


@pytest.mark.asyncio
async def test_a_worker_cache_sees_a_set_within_one_second(
    redis_server: ServiceHandle, redis_client: Any, model_dir: Path
) -> None:
    cache = ThresholdCache.from_url(ModelCard.model_validate(CARD), redis_server.url)
    await cache.start()
    try:
        assert cache.lookup("Twitter_volume_AAPL").value == 0.7  # the card, nothing in Redis
        await asyncio.to_thread(
            cli, redis_server, "set", str(model_dir), "Twitter_volume_AAPL", "3.5"
        )
        done = time.monotonic()
        while cache.lookup("Twitter_volume_AAPL").value != 3.5 and time.monotonic() - done < 1:
            await asyncio.sleep(0.01)
        seen = cache.lookup("Twitter_volume_AAPL")
        assert (seen.value, seen.source.scope) == (3.5, "key")
        assert time.monotonic() - done < 1.0
    finally:
        await cache.stop()
        await cache.client.aclose()


def test_registry_names_work_like_everywhere_and_unknown_keys_are_refused(
    redis_server: ServiceHandle, redis_client: Any, tmp_path: Path
) -> None:
    """`registry/NAME` (newest version), as score/worker/evaluate take it; a mistyped key is
    refused with a suggestion, and --new-key lets a new one in."""
    for version, default in (("1", 4.5), ("2", 5.0)):
        folder = tmp_path / "registry" / "nab-dense" / version
        folder.mkdir(parents=True)
        card = card_dict(version=version, training={"keys": ["Twitter_volume_AAPL"]},
                         thresholds={"method": "sigma", "value_param": default,
                                     "default": default, "per_key": {}})
        (folder / "card.json").write_text(json.dumps(card))
        (folder / "model.onnx").write_bytes(b"")  # the registry lists it; nothing loads it
    entry = str(tmp_path / "registry" / "nab-dense")

    assert "of nab-dense 2 (default 5.0)" in cli(redis_server, "publish", "--model", entry)
    assert "nab-dense 2 Twitter_volume_AAPL: 5.5" in cli(
        redis_server, "set", entry, "Twitter_volume_AAPL", "5.5")
    assert "nab-dense 1 " in cli(redis_server, "set", entry, "*", "4.8", "--version", "1")

    typo = cli(redis_server, "set", entry, "Twitter_volume_AAPl", "5.5", code=1)
    assert "unknown key 'Twitter_volume_AAPl'" in typo and "Twitter_volume_AAPL?" in typo
    assert len([x for x in typo.splitlines() if x.strip()]) == 1
    assert redis_client.hget("sd:threshold:nab-dense:2", "Twitter_volume_AAPl") is None
    cli(redis_server, "set", entry, "Twitter_volume_NEW", "6", "--new-key")
    assert redis_client.hget("sd:threshold:nab-dense:2", "Twitter_volume_NEW") is not None


@pytest.mark.asyncio
async def test_namespaces_keep_two_deployments_apart(
    redis_server: ServiceHandle, redis_client: Any, model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two teams, one Redis, the same model: neither overwrites nor hears the other."""
    from stream_detector.settings import get_settings

    card = ModelCard.model_validate(CARD)
    team_b = ThresholdCache.from_url(card, redis_server.url, namespace="team-b")
    await team_b.start()
    try:
        for team, value in (("team-a", "1.5"), ("team-b", "2.5")):
            monkeypatch.setenv("STREAM_DETECTOR_NAMESPACE", team)
            get_settings.cache_clear()
            await asyncio.to_thread(cli, redis_server, "set", str(model_dir),
                                    "Twitter_volume_AAPL", value)
        get_settings.cache_clear()
        stored = {team: json.loads(redis_client.hget(f"sd:{team}:threshold:nab-dense:3",
                                                      "Twitter_volume_AAPL"))["value"]
                  for team in ("team-a", "team-b")}
        assert stored == {"team-a": 1.5, "team-b": 2.5}
        assert redis_client.hget("sd:threshold:nab-dense:3", "Twitter_volume_AAPL") is None
        done = time.monotonic()
        while cache_value(team_b) != 2.5 and time.monotonic() - done < 2:
            await asyncio.sleep(0.01)
        assert cache_value(team_b) == 2.5  # team a's change never reached team b's worker
    finally:
        await team_b.stop()
        await team_b.client.aclose()


def cache_value(cache: ThresholdCache) -> float:
    return cache.lookup("Twitter_volume_AAPL").value


@pytest.mark.asyncio
async def test_publish_names_keys_set_since_and_replace_drops_them(
    redis_server: ServiceHandle, redis_client: Any, model_dir: Path
) -> None:
    """A key set by hand outranks the default a later publish writes: publish says so (the
    Tour run twice kept its step-4 override), and --replace leaves exactly the card's."""
    cli(redis_server, "publish", "--model", str(model_dir))
    cli(redis_server, "set", str(model_dir), "Twitter_volume_GOOG", "2.0", "--new-key",
        "--by", "alice")
    cli(redis_server, "set", str(model_dir), "Twitter_volume_AAPL", "4.0")  # the card's key
    out = cli(redis_server, "publish", "--model", str(model_dir))
    warned = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1, out
    assert "1 key(s)" in warned[0] and "Twitter_volume_GOOG 2.0 (manual" in warned[0]
    assert "by alice" in warned[0] and "--replace" in warned[0]
    assert "Twitter_volume_AAPL" not in warned[0]  # publish rewrote the card's own key
    assert json.loads(redis_client.hget("sd:threshold:nab-dense:3", "Twitter_volume_GOOG"))[
        "value"] == 2.0

    cache = ThresholdCache.from_url(ModelCard.model_validate(CARD), redis_server.url)
    await cache.start()
    try:
        assert cache.lookup("Twitter_volume_GOOG").value == 2.0
        out = await asyncio.to_thread(cli, redis_server, "publish", "--model", str(model_dir),
                                      "--replace")
        assert "published 3 threshold(s)" in out and "warning" not in out
        assert "; dropped 1 key threshold(s) set since: Twitter_volume_GOOG" in out
        done = time.monotonic()
        while cache.lookup("Twitter_volume_GOOG").value != 0.5 and time.monotonic() - done < 1:
            await asyncio.sleep(0.01)
        seen = cache.lookup("Twitter_volume_GOOG")
        assert (seen.value, seen.source.scope) == (0.5, "default")  # the worker heard it
    finally:
        await cache.stop()
        await cache.client.aclose()
    listed = json.loads(cli(redis_server, "list", str(model_dir), "--json"))
    assert {k: e["value"] for k, e in listed.items()} == {
        "*": 0.5, "Twitter_volume_AAPL": 0.7, "Twitter_volume_FB": 0.9}
    assert "warning" not in cli(redis_server, "publish", "--model", str(model_dir))
    assert "dropped" not in cli(redis_server, "publish", "--model", str(model_dir), "--replace")


def test_a_threshold_not_above_zero_is_set_with_a_warning(
    redis_server: ServiceHandle, redis_client: Any, model_dir: Path
) -> None:
    """A -3 set by hand made a worker alert on every window, with nothing said."""
    for value, warned in (("-3", True), ("0", True), ("0.5", False)):
        result = runner.invoke(app, ["thresholds", "set", str(model_dir), "Twitter_volume_AAPL",
                                     "--redis", redis_server.url, "--", value])
        assert result.exit_code == 0, result.output
        out = result.output
        assert ("warning: a threshold of" in out and "nearly every one alerts" in out) is warned
        stored = json.loads(redis_client.hget("sd:threshold:nab-dense:3", "Twitter_volume_AAPL"))
        assert stored["value"] == float(value)  # set all the same: z-scores may be negative


def test_publishing_a_card_with_a_threshold_not_above_zero_warns_as_set_does(
    redis_server: ServiceHandle, model_dir: Path
) -> None:
    """An edited card's default of -1 was published without a word, where set warns."""
    assert "warning" not in cli(redis_server, "publish", "--model", str(model_dir))
    card = json.loads((model_dir / "card.json").read_text())
    card["thresholds"]["default"] = -1.0
    card["thresholds"]["per_key"]["Twitter_volume_FB"] = 0.0
    (model_dir / "card.json").write_text(json.dumps(card))
    out = cli(redis_server, "publish", "--model", str(model_dir))
    assert "published 3 threshold(s)" in out
    assert "warning: a threshold of -1.0 (*, Twitter_volume_FB) is not above 0" in out, out


def test_publish_says_when_it_replaces_a_default_set_by_hand(
    redis_server: ServiceHandle, model_dir: Path
) -> None:
    """A '*' of 6.0 set by hand became the card's 0.5 without a word (keys set by hand are
    kept and named; the default was not)."""
    cli(redis_server, "publish", "--model", str(model_dir))
    cli(redis_server, "set", str(model_dir), "*", "6.0", "--by", "alice")
    out = cli(redis_server, "publish", "--model", str(model_dir))
    assert "warning: the default 6.0 set" in out and "by alice was replaced by the card's 0.5" \
        in out, out
    assert f"thresholds set {model_dir} '*' -- 6.0" in out
    assert "replaced" not in cli(redis_server, "publish", "--model", str(model_dir))


def test_the_kept_keys_warning_suggests_commands_for_the_version_published(
    redis_server: ServiceHandle, tmp_path: Path
) -> None:
    """Its suggestions named the registry entry alone: run, they acted on the newest version."""
    for version in ("1", "2"):
        folder = tmp_path / "registry" / "nab-dense" / version
        folder.mkdir(parents=True)
        card = card_dict(version=version, thresholds={"method": "sigma", "value_param": 5.5,
                                                      "default": 5.5, "per_key": {}})
        (folder / "card.json").write_text(json.dumps(card))
        (folder / "model.onnx").write_bytes(b"")
    entry = str(tmp_path / "registry" / "nab-dense")
    cli(redis_server, "set", entry, "store 1/item 2", "4.0", "--version", "1", "--new-key")
    out = cli(redis_server, "publish", "--model", entry, "--version", "1")
    assert f"thresholds publish --model {entry} --version 1 --replace`" in out
    assert f"thresholds delete {entry} --version 1 'store 1/item 2'`" in out  # pastes as is


def test_listing_a_mistyped_name_fails_naming_the_models_redis_has(
    redis_server: ServiceHandle, redis_client: Any, model_dir: Path
) -> None:
    """`thresholds list nosuchmodel --version 1` printed an empty table and exited 0."""
    cli(redis_server, "publish", "--model", str(model_dir))
    out = cli(redis_server, "list", "nab-dens", "--version", "3", code=1)
    assert "error: no thresholds of nab-dens 3 in Redis; those with some: nab-dense 3" in out
    assert json.loads(cli(redis_server, "list", "nab-dens", "--version", "3", "--json")) == {}
    redis_client.delete("sd:threshold:nab-dense:3")  # a folder's model, nothing published:
    assert "0 threshold(s)" in cli(redis_server, "list", str(model_dir))  # still a table

"""``stream-detector thresholds``: get, set, list, publish and delete thresholds in Redis."""

from __future__ import annotations

import contextlib
import difflib
import json
import math
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from schemas.kinds import ThresholdMethod
from stream_detector.cli.common import (
    RedisOption,
    app,
    console,
    fail,
    one_line_errors,
    say,
    settings_for,
    warn,
)
from stream_detector.exceptions import ConfigurationError

if TYPE_CHECKING:
    from schemas.card import ModelCard
    from stream_detector.core.thresholds import ThresholdEntry, ThresholdStore

# --- thresholds -----------------------------------------------------------------------------
thresholds_app = typer.Typer(
    help=(
        "Read and change the thresholds workers use, in Redis (per model version and key;"
        " key '*' is the model default). Workers pick up changes within a second.\n\n"
        "MODEL is what score, worker and evaluate take: a model folder (registry/NAME/VERSION),"
        " a registry entry (registry/NAME: its newest version), or a name with --version."
        " Values are on the model's score scale: z-scores for the default models, which alert"
        " at 5.5 sigma.\n\n"
        "Examples:\n\n\b\n"
        "  stream-detector thresholds publish --model registry/Twitter_volume_AAPL\n"
        "  stream-detector thresholds set registry/Twitter_volume_AAPL Twitter_volume_AAPL 5.0"
        " --by alice\n"
        "  stream-detector thresholds get nab Twitter_volume_AAPL --version 3\n"
        "  stream-detector thresholds list nab --version 3 --json\n"
        "  stream-detector thresholds delete nab Twitter_volume_AAPL --version 3"
    ),
    no_args_is_help=True,
)
app.add_typer(thresholds_app, name="thresholds")

ModelArgument = Annotated[
    str,
    typer.Argument(
        help="model folder, registry/NAME (newest version), or a name with --version",
        metavar="MODEL", show_default=False
    ),
]
KeyArgument = Annotated[
    str, typer.Argument(help="key, e.g. Twitter_volume_AAPL or 1/7; * = the default", metavar="KEY")
]
VersionOption = Annotated[
    str | None, typer.Option("--version", "-v", help="model version (when MODEL is a name)")
]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON instead of text")]
# schemas.card.DEFAULT_KEY, spelled out: importing schemas costs --help 0.4 s (a test pins it)
_DEFAULT_KEY = "*"


@dataclass(frozen=True)
class _Model:
    name: str
    version: str
    card: ModelCard | None


def _model(model: str, version: str | None) -> _Model:
    """Name and version from a model directory's card, from a registry folder (its newest
    version, or --version), or from a name and --version: the same MODEL as ``score``,
    ``worker`` and ``evaluate`` accept."""
    path = Path(model)
    if path.name == "card.json" and path.is_file():
        path = path.parent
    if path.is_dir():
        card = _card_of(path, version)
        if version is not None and version != card.version:
            raise ConfigurationError(f"{path} holds version {card.version!r}, not {version!r}")
        return _Model(card.name, card.version, card)
    if version is None:
        raise ConfigurationError(
            f"{model!r} is neither a model folder nor a registry entry; give e.g. "
            "registry/NAME (newest version), registry/NAME/VERSION, or a name with --version"
        )
    return _Model(model, version, None)


def _card_of(path: Path, version: str | None) -> ModelCard:
    from stream_detector.core.registry import ModelRegistry, read_card

    if (path / "card.json").is_file():
        return read_card(path)
    if version is not None and (path / version / "card.json").is_file():
        return read_card(path / version)
    return read_card(ModelRegistry(path).latest().path)


def _check_key(ref: _Model, key: str, store: ThresholdStore, new_key: bool) -> None:
    """Refuse a key the model does not know (a typo would silently never apply)."""
    if new_key or key == _DEFAULT_KEY:
        return
    known = set(store.list(ref.name, ref.version)) - {_DEFAULT_KEY}
    if ref.card is not None:
        known |= set(ref.card.thresholds.per_key) | set(ref.card.serves.keys)
        known |= set(ref.card.training.get("keys") or [])
        pattern = ref.card.serves.pattern
        if pattern is not None and re.fullmatch(pattern, key):
            return
    if key in known:
        return
    where = f"{ref.name} v{ref.version}"
    if not known:
        raise ConfigurationError(
            f"cannot check key {key!r}: {where} has no thresholds in Redis and no card lists "
            "its keys; give the model folder (registry/NAME), or pass --new-key")
    close = difflib.get_close_matches(key, sorted(known), n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise ConfigurationError(
        f"unknown key {key!r} for {where} ({len(known)} known); {hint}pass --new-key to add "
        "it anyway")


@contextlib.contextmanager
def _threshold_store(redis: str | None) -> Iterator[ThresholdStore]:
    """A store on the configured Redis; Redis errors become one line naming the server."""
    from redis.exceptions import RedisError

    from stream_detector.connectivity import describe_redis_error
    from stream_detector.core.thresholds import ThresholdStore

    settings = settings_for(redis_url=redis)
    client = settings.redis_client(socket_connect_timeout=2.0, socket_timeout=5.0)
    try:
        yield ThresholdStore(client, settings.namespace)
    except RedisError as exc:  # names the cause: down, credentials, TLS, ACL
        fail(escape(describe_redis_error(settings, exc)))
    finally:
        client.close()


def _entry_text(key: str, entry: ThresholdEntry | None, value: float, scope: str) -> str:
    where = f"{key}: {value!r} ({scope}"
    if entry is None:
        return where + ", from the model card)"
    return where + f", {entry.method}, set {entry.set_at} by {entry.set_by or 'unknown'})"


@thresholds_app.command("set")
def thresholds_set(
    model: ModelArgument,
    key: KeyArgument,
    value: Annotated[
        float,
        typer.Argument(help="threshold; a score above it is an anomaly", metavar="VALUE"),
    ],
    version: VersionOption = None,
    method: Annotated[ThresholdMethod, typer.Option(help="how it was chosen")] = "manual",
    by: Annotated[str | None, typer.Option("--by", help="who sets it (default user@host)")] = None,
    new_key: Annotated[
        bool, typer.Option("--new-key", help="allow a key the model's card and Redis do not know")
    ] = False,
    redis: RedisOption = None,
) -> None:
    """Set one key's threshold (KEY '*' sets the model default); workers see it within 1 s.

    The value is on the scale of the model's score: z-scores for models with normalised
    detection (the default models alert at 5.5 sigma), raw scores otherwise; 'thresholds
    get' shows the current one. A key neither the card nor Redis knows is refused (a typo
    would never apply) unless --new-key.

    Examples (a negative VALUE goes after --):

    \b
      stream-detector thresholds set registry/Twitter_volume_AAPL Twitter_volume_AAPL 5.0
      stream-detector thresholds set nab Twitter_volume_AAPL -v 3 -- -0.5
    """
    with one_line_errors():
        ref = _model(model, version)
        if not math.isfinite(value):
            raise ConfigurationError(f"threshold must be a finite number, got {value}")
        with _threshold_store(redis) as store:
            _check_key(ref, key, store, new_key)
            entry = store.set(ref.name, ref.version, key, value, method=method, set_by=by)
    say(f"{ref.name} {ref.version} " + _entry_text(key, entry, entry.value, "set"))
    _warn_not_positive({key: value})


def _warn_not_positive(values: dict[str, float]) -> None:
    """A line for thresholds at or under 0: scores are errors (>= 0) or z-scores centred on
    0, so nearly every window of such a key alerts."""
    low = {k: v for k, v in values.items() if v <= 0}
    if not low:
        return
    (key, value), *more = sorted(low.items())
    who = "" if key == _DEFAULT_KEY and not more else \
        f" ({', '.join(k for k in sorted(low)[:3])}{' ...' if len(low) > 3 else ''})"
    warn(f"a threshold of {value!r}{who} is not above 0: most windows score above it, so "
         "nearly every one alerts (the default models alert at 5.5)")


@thresholds_app.command("get")
def thresholds_get(
    model: ModelArgument,
    key: Annotated[
        str, typer.Argument(help="key; * = the model default", metavar="KEY")
    ] = _DEFAULT_KEY,
    version: VersionOption = None,
    as_json: JsonOption = False,
    redis: RedisOption = None,
) -> None:
    """Show the threshold that applies to a key, as a worker resolves it. Exit 1 if none.

    Order: Redis per-key, Redis default, then the model card (when MODEL is a directory).

    Example:

    \b
      stream-detector thresholds get nab Twitter_volume_AAPL --version 3 --json
    """
    with one_line_errors():
        ref = _model(model, version)
        with _threshold_store(redis) as store:
            own, default = store.get(ref.name, ref.version, key), store.get(ref.name, ref.version)
    scope, entry = ("key", own) if own is not None else ("default", default)
    value = entry.value if entry is not None else None
    if entry is None and ref.card is not None:
        per_key = ref.card.thresholds.per_key
        scope = "card_key" if key in per_key else "card_default"
        value = per_key.get(key, ref.card.thresholds.default)
    if value is None:
        fail(escape(f"no threshold for {key!r} of {ref.name} {ref.version} in Redis (and no "
                     "card to fall back on); set one with `stream-detector thresholds set`"))
    if as_json:
        extra = entry.model_dump() if entry is not None else {}
        print(json.dumps({"model": ref.name, "version": ref.version, "key": key,
                          **extra, "value": value, "scope": scope}))
    else:
        say(_entry_text(key, entry, value, scope))


@thresholds_app.command("list")
def thresholds_list(
    model: ModelArgument,
    version: VersionOption = None,
    as_json: JsonOption = False,
    redis: RedisOption = None,
) -> None:
    """List a model version's thresholds in Redis ('*' is the default).

    Example:

    \b
      stream-detector thresholds list registry/Twitter_volume_AAPL
    """
    from rich.table import Table

    with one_line_errors():
        ref = _model(model, version)
        with _threshold_store(redis) as store:
            entries = store.list(ref.name, ref.version)
            named = not entries and ref.card is None and not as_json  # --json: {} for scripts
            known = store.model_versions() if named else ()
    if named:  # a name, not a folder: a typo printed an empty table, exit 0
        shown = ", ".join(f"{n} {v}" for n, v in known[:5]) + (", ..." if len(known) > 5
                                                                 else "")
        fail(escape(f"no thresholds of {ref.name} {ref.version} in Redis; "
                    + (f"those with some: {shown}" if known else "Redis holds none")))
    ordered = sorted(entries.items(), key=lambda kv: (kv[0] != _DEFAULT_KEY, kv[0]))
    if as_json:
        print(json.dumps({k: e.model_dump() for k, e in ordered}))
        return
    table = Table(title=f"{ref.name} {ref.version}: {len(entries)} threshold(s) in Redis")
    for column in ("key", "value", "method", "set at", "set by"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for k, e in ordered:
        table.add_row(escape(k), repr(e.value), e.method, e.set_at, escape(e.set_by))
    console.print(table)


@thresholds_app.command("publish")
def thresholds_publish(
    model: Annotated[Path, typer.Option(
        "--model", "-m", help="model folder, or registry/NAME (its newest version)")],
    version: Annotated[str | None, typer.Option(
        "--version", "-v", help="which version of registry/NAME (its card holds the "
        "thresholds: a bare name is not enough)")] = None,
    replace: Annotated[bool, typer.Option(
        "--replace", help="also drop the thresholds keys were given since (thresholds set, the "
        "explorer): Redis then holds exactly the card's")] = False,
    redis: RedisOption = None,
) -> None:
    """Copy a model card's calibrated thresholds (default and per key) into Redis.

    A key given a threshold of its own since ('thresholds set', the explorer) keeps it,
    ahead of the published default: the command names such keys, and --replace drops
    them.

    Example:

    \b
      stream-detector thresholds publish --model registry/Twitter_volume_AAPL
    """
    with one_line_errors():
        card = _model(str(model), version).card
        if card is None:
            raise ConfigurationError(
                f"{model} is not a model folder or registry entry: publish copies the "
                "thresholds of a model card, so give its folder (registry/NAME, or "
                "registry/NAME with --version)")
        with _threshold_store(redis) as store:
            dropped = store.kept(card) if replace else {}  # what the replace will drop
            before = store.get(card.name, card.version, _DEFAULT_KEY)
            count = store.publish_from_card(card, replace=replace)
            kept = {} if replace else store.kept(card)
    gone = ""
    if dropped:
        names = ", ".join(sorted(dropped)[:3]) + (" ..." if len(dropped) > 3 else "")
        gone = f"; dropped {len(dropped)} key threshold(s) set since: {names}"
    say(f"published {count} threshold(s) of {card.name} {card.version} "
        f"(default {card.thresholds.default!r}){gone}")
    if before is not None and before.set_by != "model-card" \
            and before.value != card.thresholds.default:
        warn(f"the default {before.value!r} set {before.set_at} by {before.set_by or 'unknown'} "
             f"was replaced by the card's {card.thresholds.default!r}; set it again with "
             f"`stream-detector thresholds set {shlex.quote(str(model))} '*'"
             f"{f' --version {shlex.quote(version)}' if version else ''} -- {before.value!r}`")
    _warn_not_positive({_DEFAULT_KEY: card.thresholds.default, **card.thresholds.per_key})
    if kept:
        _warn_kept(model, version, kept)


def _warn_kept(model: Path, version: str | None, kept: dict[str, ThresholdEntry]) -> None:
    """One line naming the keys whose own thresholds outrank the default just published."""
    shown = [f"{k} {e.value!r} ({e.method}, set {e.set_at} by {e.set_by or 'unknown'})"
             for k, e in sorted(kept.items())[:3]]
    more = f" and {len(kept) - 3} more" if len(kept) > 3 else ""
    example = next(iter(sorted(kept)))
    where = shlex.quote(str(model)) + (f" --version {shlex.quote(version)}" if version else "")
    warn(f"{len(kept)} key(s) keep a threshold of their own in Redis, which workers apply "
         f"instead of the default: {escape('; '.join(shown))}{more}. Drop them with "
         f"`stream-detector thresholds publish --model {escape(where)} --replace`, or one with "
         f"`stream-detector thresholds delete {escape(where)} {escape(shlex.quote(example))}`")


@thresholds_app.command("delete")
def thresholds_delete(
    model: ModelArgument,
    key: KeyArgument,
    version: VersionOption = None,
    redis: RedisOption = None,
) -> None:
    """Remove a key's own threshold (it falls back to the default). Exit 1 if it had none.

    Example:

    \b
      stream-detector thresholds delete nab Twitter_volume_AAPL --version 3
    """
    with one_line_errors():
        ref = _model(model, version)
        with _threshold_store(redis) as store:
            removed = store.delete(ref.name, ref.version, key)
    if not removed:
        fail(escape(f"{ref.name} {ref.version} has no threshold for {key!r}; nothing deleted"))
    say(f"deleted {key} of {ref.name} {ref.version}")



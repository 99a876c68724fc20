"""Model registry: find, verify and load ``model.onnx`` + ``card.json`` pairs; hot-swap.

Layout::

    root/<name>/<version>/model.onnx
    root/<name>/<version>/card.json

``root`` may also be one model directory itself.

Publishing is atomic for readers: a writer builds a version in a hidden staging folder
next to its final place (``root/<name>/.<version>.partial``, see :func:`publish_version`)
and renames the complete folder into place. Readers ignore hidden folders (``.*``) and
folders named ``*.partial`` or ``*.tmp``, and count a version only once both files exist.
Loading reads the card (size-bounded), validates it, reads the ONNX bytes once, checks
their sha256 against the card and only then creates a session from those same bytes: the
bytes verified are the bytes run.

A registry starts on its newest *valid* version: newer ones that fail to load are logged
(one error line each, naming the folder and the reason) and listed in
:attr:`ModelRegistry.refused`. While serving, :meth:`ModelRegistry.refresh` loads any newer
valid version; a version that failed is retried only once its files change.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pydantic import ValidationError

from schemas.card import ModelCard
from stream_detector.constants import ProviderPreference
from stream_detector.core.scoring import Scorer
from stream_detector.exceptions import ModelCardError, ModelCardMismatch

__all__ = [
    "CARD_FILE",
    "MODEL_FILE",
    "LoadedModel",
    "ModelRegistry",
    "ModelVersion",
    "is_staging_name",
    "load_model",
    "publish_version",
    "read_card",
    "sha256_bytes",
    "sha256_file",
    "validation_line",
]

CARD_FILE: Final = "card.json"
MODEL_FILE: Final = "model.onnx"
MAX_CARD_BYTES: Final = 16 * 1024 * 1024  # per-key scalers for ~50k keys still fit
MAX_MODEL_BYTES: Final = 2 * 1024**3  # protobuf's own limit

log = logging.getLogger(__name__)


def sha256_bytes(data: bytes) -> str:
    """Hex sha256, the form the card stores."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks (model files, training data)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_card(path: Path | str, max_bytes: int = MAX_CARD_BYTES) -> ModelCard:
    """Read and validate a ``card.json`` (a file, or the directory holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / CARD_FILE
    try:
        with path.open("rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as exc:
        raise ModelCardError(f"cannot read model card {path}: {exc}") from exc
    if len(raw) > max_bytes:
        raise ModelCardError(f"model card {path} is larger than {max_bytes} bytes")
    try:
        return ModelCard.model_validate_json(raw)
    except ValidationError as exc:
        raise ModelCardError(f"model card {path} is invalid: {validation_line(exc)}") from exc


def validation_line(exc: ValidationError, most: int = 3) -> str:
    """A pydantic validation error in one line: each problem's field path and message
    (the first ``most``), instead of pydantic's multi-line report with a documentation URL.

    >>> from pydantic import BaseModel
    >>> class Card(BaseModel):
    ...     window: int
    >>> try:
    ...     Card.model_validate_json('{"window": "wide"}')
    ... except ValidationError as e:
    ...     print(validation_line(e))
    window: Input should be a valid integer, unable to parse string as an integer
    """
    problems = exc.errors(include_url=False)
    said = [f"{'.'.join(str(p) for p in e['loc']) or 'the file'}: {e['msg']}"
            for e in problems[:most]]
    more = f" (and {len(problems) - most} more)" if len(problems) > most else ""
    return "; ".join(said) + more


@dataclass(frozen=True)
class LoadedModel:
    """A verified card with a ready session for its model."""

    card: ModelCard
    scorer: Scorer
    path: Path


def load_model(
    model_dir: Path | str,
    *,
    preference: ProviderPreference | str = "auto",
    intra_op_threads: int = 0,
    max_batch: int | None = None,
) -> LoadedModel:
    """Load ``model_dir/{card.json,model.onnx}`` after checking the card's sha256.

    Raises
    ------
    ModelCardError
        The card is missing, oversized or invalid, or the model file is unreadable.
    ModelCardMismatch
        The ONNX file's sha256 differs from the card's ``onnx_sha256``.
    """
    model_dir = Path(model_dir)
    card = read_card(model_dir)
    onnx_path = model_dir / MODEL_FILE
    try:
        size = onnx_path.stat().st_size
        if size > MAX_MODEL_BYTES:
            raise ModelCardError(f"{onnx_path} is {size} bytes, above {MAX_MODEL_BYTES}")
        data = onnx_path.read_bytes()
    except OSError as exc:
        raise ModelCardError(f"cannot read {onnx_path}: {exc}") from exc
    digest = sha256_bytes(data)
    if digest != card.onnx_sha256:
        raise ModelCardMismatch(
            f"{onnx_path} has sha256 {digest} but {model_dir / CARD_FILE} says "
            f"{card.onnx_sha256}: the card does not describe this model. Train it again "
            "(stream-detector train writes both files together) or put back the card.json "
            "that came with this model.onnx"
        )
    try:
        scorer = Scorer(
            data,
            window=card.window,
            features=card.n_features,
            preference=preference,
            intra_op_threads=intra_op_threads,
            max_batch=max_batch,
        )
    except ModelCardError:
        raise
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own, untyped errors
        raise ModelCardError(
            f"ONNX Runtime cannot load {onnx_path} ({type(exc).__name__}: {exc}); "
            "re-export the model (stream-detector train) and publish it as a new version"
        ) from exc
    return LoadedModel(card=card, scorer=scorer, path=model_dir)


_RUN = re.compile(r"(\d+)")


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Natural ordering: ``v10`` after ``v9``, ``1.10`` after ``1.9``.

    >>> sorted(["v10", "v9", "v2"], key=_version_key)
    ['v2', 'v9', 'v10']
    """
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in _RUN.split(version) if p)


@dataclass(frozen=True)
class ModelVersion:
    """A complete version directory found on disk (not yet loaded)."""

    name: str
    version: str
    path: Path
    mtime_ns: int

    @property
    def order(self) -> tuple[tuple[tuple[int, int | str], ...], int]:
        """Newest last: by natural version order, then by modification time."""
        return (_version_key(self.version), self.mtime_ns)


def is_staging_name(name: str) -> bool:
    """True for folders readers must ignore: hidden or temporary (still being written).

    >>> [is_staging_name(n) for n in ("3", ".3.partial", "3.partial", "3.tmp", "v3")]
    [False, True, True, True, False]
    """
    return name.startswith(".") or name.endswith((".partial", ".tmp"))


def publish_version(staging: Path, final: Path) -> Path:
    """Move a complete version folder into place in one rename (atomic for readers).

    ``staging`` must sit on the same file system as ``final`` (e.g. ``final.parent /
    f".{final.name}.partial"``). Files are flushed to disk first, so a crash never leaves
    a published version with truncated files.

    Raises
    ------
    FileExistsError
        ``final`` exists already: versions are immutable; publish under a new version.
    """
    if final.exists():
        raise FileExistsError(f"{final} exists: versions are immutable; choose another version")
    for path in staging.iterdir():
        if path.is_file():
            with path.open("rb") as fh:
                os.fsync(fh.fileno())
    staging.rename(final)
    return final


def _is_model_dir(path: Path) -> bool:
    return (
        not is_staging_name(path.name)
        and (path / CARD_FILE).is_file()
        and (path / MODEL_FILE).is_file()
    )


def _describe(path: Path, name: str, version: str) -> ModelVersion:
    mtime = max((path / CARD_FILE).stat().st_mtime_ns, (path / MODEL_FILE).stat().st_mtime_ns)
    return ModelVersion(name=name, version=version, path=path, mtime_ns=mtime)


def _scan(root: Path) -> list[ModelVersion]:
    """Complete ``root/<name>/<version>/`` directories; names come from the directories.

    ``root`` may also be one model's folder of versions (``registry/<name>``).
    """
    if not root.is_dir():
        return []
    versions = [v for v in root.iterdir() if v.is_dir() and _is_model_dir(v)]
    if versions:
        return [_describe(v, root.name, v.name) for v in versions]
    return [
        _describe(vdir, ndir.name, vdir.name)
        for ndir in root.iterdir()
        if ndir.is_dir() and not is_staging_name(ndir.name)
        for vdir in ndir.iterdir()
        if vdir.is_dir() and _is_model_dir(vdir)
    ]


class ModelRegistry:
    """Models under a root directory; tracks the current one and notices newer versions.

    Parameters
    ----------
    root
        Registry root (``root/<name>/<version>/``), one model's versions
        (``root/<version>/``) or a single model directory.
    name
        Model to serve; may be omitted when the registry holds exactly one name.
    """

    def __init__(
        self,
        root: Path | str,
        name: str | None = None,
        *,
        preference: ProviderPreference | str = "auto",
        intra_op_threads: int = 0,
        max_batch: int | None = None,
    ) -> None:
        self.root = Path(root)
        self.name = name
        self._threads, self._max_batch = intra_op_threads, max_batch
        self._preference = preference
        self.current: LoadedModel | None = None
        self._current_version: ModelVersion | None = None
        self._failed: set[ModelVersion] = set()
        self.last_error: str | None = None
        self.refused: list[tuple[ModelVersion, str]] = []  # versions that failed to load

    def versions(self) -> list[ModelVersion]:
        """Every complete version directory, oldest first."""
        if _is_model_dir(self.root):
            card = read_card(self.root)
            found = [_describe(self.root, card.name, card.version)]
        else:
            found = _scan(self.root)
        if self.name is not None:
            found = [v for v in found if v.name == self.name]
        return sorted(found, key=lambda v: (v.name, v.order))

    def latest(self) -> ModelVersion:
        """The newest complete version of the served model (not necessarily valid)."""
        return self._checked_versions()[-1]

    def _checked_versions(self) -> list[ModelVersion]:
        found = self.versions()
        names = {v.name for v in found}
        if not found:
            wanted = f"model {self.name!r}" if self.name else "model"
            raise ModelCardError(
                f"no {wanted} in {self.root}: expected {self.root}/<name>/<version>/"
                f"{{{MODEL_FILE},{CARD_FILE}}}; train and export one first"
            )
        if len(names) > 1:
            raise ModelCardError(
                f"{self.root} holds several models ({', '.join(sorted(names))}); choose one"
            )
        return found

    def load_latest(self) -> LoadedModel:
        """Load the newest *valid* version and make it current.

        Newer versions that fail to load are logged (one error line each) and recorded in
        :attr:`refused`; they are retried by :meth:`refresh` once their files change.

        Raises
        ------
        ModelCardError
            No version is complete, the root holds several models, or none loads (the
            message gives each version's reason).
        """
        found = self._checked_versions()
        reasons: list[str] = []
        for left, version in reversed(list(enumerate(found))):
            try:
                return self._load(version)
            except ModelCardError as exc:  # the last one's reason is in the error below
                self._refuse(version, exc, "trying an older version" if left else None)
                reasons.append(f"{version.path}: {exc}")
        raise ModelCardError("no loadable version in " + str(self.root) + ":\n"
                             + "\n".join(reasons))

    def _refuse(self, version: ModelVersion, exc: ModelCardError, then: str | None) -> None:
        """Record a version that failed to load; log it with what happens ``then`` (None:
        no log line, the caller raises with the reason)."""
        self._failed.add(version)
        self.refused.append((version, str(exc)))
        self.last_error = str(exc)
        if then is None:
            return
        first_line = str(exc).splitlines()[0]
        log.error("model version %s refused (%s); %s; fix it or publish a new version",
                  version.path, first_line, then,
                  extra={"model": version.name, "version": version.version})

    def _load(
        self, version: ModelVersion, check: Callable[[ModelCard], None] | None = None
    ) -> LoadedModel:
        loaded = load_model(version.path, preference=self._preference,
                            intra_op_threads=self._threads, max_batch=self._max_batch)
        card = loaded.card
        if (card.name, card.version) != (version.name, version.version):
            raise ModelCardError(  # a copied folder: served under the card's version
                f"{version.path} holds the card of {card.name} version {card.version}, not "
                f"{version.name} version {version.version}: a version's folder is named "
                "after its card (train publishes them so); rename the folder or train a new "
                "version")
        if check is not None:
            check(loaded.card)
        self.current, self._current_version = loaded, version
        return loaded

    def refresh(
        self, check: Callable[[ModelCard], None] | None = None
    ) -> LoadedModel | None:
        """Load the newest valid version newer than the current one; None if none.

        ``check`` may refuse a loaded card by raising :class:`ModelCardError` (e.g. one
        that would claim keys another served model serves). A version that fails to load is
        logged, recorded in :attr:`refused` and :attr:`last_error`, and not retried until its
        files change; the current model keeps serving meanwhile.
        """
        try:
            found = self._checked_versions()
        except (ModelCardError, OSError) as exc:  # OSError: a folder renamed mid-scan
            if str(exc) != self.last_error:  # once per distinct problem, not every poll
                log.warning("cannot scan model registry %s: %s; trying again at the next "
                            "poll", self.root, exc)
            self.last_error = str(exc)
            return None
        current = self._current_version
        for candidate in reversed(found):
            if current is not None and (candidate == current or candidate.order <= current.order):
                return None
            if candidate in self._failed:
                continue
            try:
                loaded = self._load(candidate, check)
            except ModelCardError as exc:
                serving = (f"version {current.version} keeps serving" if current is not None
                           else "no version is served yet")
                self._refuse(candidate, exc, serving)
                continue
            self.last_error = None
            log.info("loaded model %s version %s", loaded.card.name, loaded.card.version)
            return loaded
        return None

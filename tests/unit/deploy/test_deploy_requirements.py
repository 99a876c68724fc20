"""The worker images' requirement files: pinned like the lock, complete, and free of torch.

The images install ``deploy/docker/requirements-worker-{cpu,cuda}.txt`` with ``--no-deps``, so
a dependency missing from them breaks the image; these tests catch that here, without Docker,
from the dependency metadata of the packages installed from ``requirements.lock``.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[3]
DOCKER = REPO / "deploy" / "docker"
IMAGE_FILES = {
    "cpu": DOCKER / "requirements-worker-cpu.txt",
    "cuda": DOCKER / "requirements-worker-cuda.txt",
}
# The lock pins the GPU build of ONNX Runtime; the CPU image takes the CPU wheel of the same
# version (same Python dependencies, checked against its wheel metadata when this was written).
LOCK_ALIASES = {"onnxruntime": "onnxruntime-gpu"}
# Named in the deployment brief: the worker image must carry each of these.
REQUIRED = {
    "faust-streaming", "aiokafka", "confluent-kafka", "redis", "numpy", "pandas", "pyarrow",
    "pydantic", "pydantic-settings", "typer", "rich", "prometheus-client",
}
# Training-side packages: never in a worker image.
FORBIDDEN = {
    "torch", "triton", "onnx", "h5py", "scikit-learn", "scipy", "matplotlib", "plotly", "sympy",
    "pytest", "mypy", "ruff", "hypothesis",
}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)\s*$")


def read_pins(path: Path) -> dict[str, str]:
    """Name -> version for a requirements file, following ``-r`` includes; only ``==`` pins."""
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            pins.update(read_pins(path.parent / line[3:].strip()))
            continue
        match = PIN.match(line)
        assert match, f"{path.name}: {raw!r} is not an exact `name==version` pin"
        pins[canonicalize_name(match[1])] = match[2]
    return pins


def read_lock() -> dict[str, str]:
    lock: dict[str, str] = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        match = PIN.match(line.strip())
        if match:
            lock[canonicalize_name(match[1])] = match[2]
    return lock


@pytest.fixture(scope="module", params=sorted(IMAGE_FILES))
def image_pins(request: pytest.FixtureRequest) -> tuple[str, dict[str, str]]:
    return request.param, read_pins(IMAGE_FILES[request.param])


def test_every_pin_equals_the_lock(image_pins: tuple[str, dict[str, str]]) -> None:
    image, pins = image_pins
    lock = read_lock()
    for name, version in pins.items():
        locked_as = LOCK_ALIASES.get(name, name)
        assert locked_as in lock, f"{image}: {name} is not in requirements.lock"
        assert version == lock[locked_as], (
            f"{image}: {name}=={version} but requirements.lock pins {locked_as}=={lock[locked_as]}"
        )


def test_images_carry_the_worker_set_and_no_training_packages(
    image_pins: tuple[str, dict[str, str]],
) -> None:
    image, pins = image_pins
    assert REQUIRED <= pins.keys(), f"{image} lacks {sorted(REQUIRED - pins.keys())}"
    bad = {n for n in pins if n in FORBIDDEN or n.startswith(("nvidia-", "cuda-"))}
    assert not bad, f"{image} image would install training/GPU-toolkit packages {sorted(bad)}"
    runtime = {"cpu": "onnxruntime", "cuda": "onnxruntime-gpu"}[image]
    other = {"cpu": "onnxruntime-gpu", "cuda": "onnxruntime"}[image]
    assert runtime in pins and other not in pins


def test_pinned_set_is_closed_under_dependencies(image_pins: tuple[str, dict[str, str]]) -> None:
    """Each pinned package's own requirements (for Python 3.11 on Linux) are pinned too and
    satisfied by the pinned versions, so ``pip install --no-deps`` then ``pip check`` passes."""
    image, pins = image_pins
    env = {**default_environment(), "extra": ""}
    for name, version in pins.items():
        dist = md.distribution(LOCK_ALIASES.get(name, name))
        assert dist.version == version, f"installed {dist.metadata['Name']} is not the locked one"
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            dep = canonicalize_name(req.name)
            assert dep in pins, f"{image}: {name} needs {req}, which is not pinned"
            assert req.specifier.contains(pins[dep], prereleases=True), (
                f"{image}: {name} needs {req}, pinned {dep}=={pins[dep]}"
            )


def _imported_modules(path: Path, module_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_worker_code_imports_only_what_the_cpu_image_installs() -> None:
    """Every import in stream_detector/ and schemas/ resolves in the image: the standard
    library, the project's own packages, or a pinned distribution. The CLI's command bodies may
    reach the training side lazily (offline_training is not in the image), so only its
    module-level imports count."""
    pins = read_pins(IMAGE_FILES["cpu"])
    providers = md.packages_distributions()
    own = {"stream_detector", "schemas", "__future__"}
    for path in sorted([*REPO.glob("stream_detector/**/*.py"), *REPO.glob("schemas/**/*.py")]):
        # the CLI and its file tools (history files, replay, batch scoring, the demo and its
        # report) reach offline_training (and plotly) lazily
        lazy = path.parent.name in ("cli", "files", "demo")
        for module in _imported_modules(path, module_level_only=lazy):
            if module in own or module in sys.stdlib_module_names:
                continue
            assert module != "offline_training", f"{path.name} imports offline_training"
            dists = {canonicalize_name(d) for d in providers.get(module, [])}
            dists = {"onnxruntime" if d == "onnxruntime-gpu" else d for d in dists}
            assert dists & pins.keys(), (
                f"{path.relative_to(REPO)} imports {module!r} (from {sorted(dists) or '?'}), "
                "which the worker image does not install: add it to requirements-worker.txt"
            )

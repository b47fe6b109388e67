"""Prompt evaluation and sampling through llama.cpp's C API, for the in-process provider.

``Llama.create_completion`` re-tokenises the whole prompt on every call and applies a grammar
to every token of the vocabulary at every step; the :class:`Decoder` keeps the few-shot
prefix tokenised, the shared prompt prefix in the KV cache, and consults a grammar only for
the token the model chose (see :mod:`automatos.llm.local`).
"""

from __future__ import annotations

import ctypes
import math
import threading
from collections.abc import Sequence
from typing import Any

__all__ = ["REPEAT_PENALTY", "Decoder", "RefusedGrammarError", "cut_at_stop"]

# Small models loop on a phrase without it.
REPEAT_PENALTY = 1.3
_PENALTY_LAST_N = 64
# Sampling above temperature 0 is seeded: the same prompt gets the same answer.
_SEED = 0x5EED
_NARROW = 64
"""Candidates a grammar looks at first when it refuses the model's choice."""


class _Samplers:
    """The samplers of one call: llama-cpp-python's completion chain, split where its
    grammar goes, into ``head`` (the repeat penalty) and ``tail`` (greedy, or top-k, top-p,
    min-p, temperature and a seeded draw); ``chain`` holds both. ``narrow`` keeps the best
    candidates for the grammar to look at first."""

    def __init__(
        self,
        lc: Any,
        n_vocab: int,
        temperature: float,
        grammar: Any,
        repeat_penalty: float = REPEAT_PENALTY,
    ) -> None:
        self._lc = lc
        self.grammar = grammar
        self.head = self._chain(
            lc.llama_sampler_init_penalties(n_vocab, _PENALTY_LAST_N, repeat_penalty, 0.0, 0.0)
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


class RefusedGrammarError(Exception):
    """llama.cpp could not parse a grammar (raised on the worker, named by the provider)."""


class Decoder:
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
        repeat_penalty: float = REPEAT_PENALTY,
    ) -> tuple[str, int, str]:
        """The answer's text, its token count and why it ended (``stop``, ``length`` or
        ``cancelled``). ``repeat_penalty`` 1.0 turns the penalty off (for copying).

        Raises:
            ValueError: the prompt does not fit in the context.
            RefusedGrammarError: llama.cpp cannot parse ``grammar``.
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
                raise RefusedGrammarError("llama.cpp refused the grammar built from it")
        samplers = _Samplers(lc, self._n_vocab, temperature, check, repeat_penalty)
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
                if stops and cut_at_stop(out, stops, max(0, start - longest + 1)):
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


def cut_at_stop(out: bytearray, stops: Sequence[bytes], start: int) -> bool:
    """Cut ``out`` at the first stop sequence found from ``start``; whether there was one."""
    found = [i for i in (out.find(s, start) for s in stops) if i >= 0]
    if not found:
        return False
    del out[min(found) :]
    return True

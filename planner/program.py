"""The inference-program API: LLaMPPL's modelling interface, on Council's follower engines.

A program subclasses `Model` and writes ordinary async Python; the SMC scheduler runs many
copies (particles) of it. LLaMPPL programs run with their imports changed only:

    class Program(Model):
        def __init__(self, lm, prompt):
            super().__init__()
            self.context = LMContext(lm, prompt)

        async def step(self):
            await self.observe(self.context.mask_dist(self.context.lm.vocab.max_chars(8)), True)
            token = await self.sample(self.context.next_token())
            if token.is_eos or self.context.token_count >= 20:
                self.finish()

        def check(self, text):
            return len(text.split()) <= 20

`lm` is the follower the particle runs on (a `FollowerLM`): next-token distributions come from
its engine, so every particle's request joins that replica's autobatch. Randomness comes from
the particle's own generator (`current_rng`), set by the runtime around each step.
"""

from __future__ import annotations

import contextvars
import copy
import json
import math
from functools import lru_cache
from typing import Any, Protocol, Sequence

import numpy as np

from planner.grammar import GrammarSpec, Matcher
from planner.masks import Mask, Vocabulary

# The random generator of the particle whose step is running (set by the particle runtime).
current_rng: contextvars.ContextVar[np.random.Generator] = contextvars.ContextVar("current_rng")


def _rng() -> np.random.Generator:
    try:
        return current_rng.get()
    except LookupError:  # outside a managed step (e.g. a quick test): a fresh generator
        rng = np.random.default_rng()
        current_rng.set(rng)
        return rng


def logsumexp(values) -> float:
    """log(sum(exp(values))) of a sequence of numbers, as a Python float."""
    values = np.asarray(values, dtype=np.float64)
    top = float(np.max(values)) if len(values) else -math.inf
    if not math.isfinite(top):
        return top
    return top + math.log(float(np.exp(values - top).sum()))


# -- the follower a program talks to ---------------------------------------------------------


class FollowerLM(Protocol):
    """What a program's contexts need from the follower. A program holds this object, so
    its public surface is the documented API only; the log-probs (a numpy array) stay behind
    the private `_next_token_logprobs`, which the program's code can never name."""

    vocab: Vocabulary
    eos_token_ids: frozenset[int]

    def encode(self, text: str) -> list[int]: ...

    def encode_chat(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    async def _next_token_logprobs(self, token_ids: Sequence[int]) -> np.ndarray: ...

    def _grammar_tokenizer(self) -> Any:
        """The follower's tokenizer for llguidance (`planner.grammar.llg_tokenizer`)."""


# -- distributions -------------------------------------------------------------------------


class Distribution:
    async def sample(self) -> tuple[Any, float]:
        """A value and its log-probability."""
        raise NotImplementedError

    async def log_prob(self, value) -> float:
        raise NotImplementedError


class Bernoulli(Distribution):
    def __init__(self, p: float):
        self.p = float(p)

    async def sample(self):
        value = bool(_rng().random() < self.p)
        return value, await self.log_prob(value)

    async def log_prob(self, value) -> float:
        p = self.p if value else 1.0 - self.p
        return math.log(p) if p > 0 else -math.inf


class LogCategorical(Distribution):
    """A categorical over `values` given unnormalised log-weights."""

    def __init__(self, values: Sequence, logits: Sequence[float]):
        self.values = list(values)
        lw = np.asarray(logits, dtype=np.float64)
        self._logprobs = lw - logsumexp(lw)

    async def sample(self):
        i = _sample_index(self._logprobs)
        return self.values[i], float(self._logprobs[i])

    async def log_prob(self, value) -> float:
        return float(self._logprobs[self.values.index(value)]) if value in self.values else -math.inf


def _sample_index(logprobs: np.ndarray) -> int:
    top = logprobs.max()
    if not np.isfinite(top):
        raise ValueError("cannot sample from a distribution with no mass")
    return sample_unnormalised(np.exp(logprobs - top), _rng().random())


_BLOCK = 256


def sample_unnormalised(p: np.ndarray, u: float) -> int:
    """Index i with probability p[i] / sum(p), by inverse CDF on `u` in [0, 1).

    Two levels (block sums, then one block) instead of a cumsum over the whole vocabulary:
    ~25 us instead of ~100-240 us for 49k entries, and it runs for every particle-step.
    """
    n = len(p)
    pad = (-n) % _BLOCK
    blocks = (np.concatenate([p, np.zeros(pad, p.dtype)]) if pad else p).reshape(-1, _BLOCK)
    sums = np.cumsum(blocks.sum(axis=1), dtype=np.float64)
    if not sums[-1] > 0:
        raise ValueError("cannot sample from a distribution with no mass")
    target = u * sums[-1]
    b = min(int(np.searchsorted(sums, target, side="right")), len(sums) - 1)
    while sums[b] == (sums[b - 1] if b else 0.0):  # float edge: an empty block; step back
        b -= 1
    within = np.cumsum(blocks[b], dtype=np.float64)
    i = min(int(np.searchsorted(within, target - (sums[b - 1] if b else 0.0), side="right")), _BLOCK - 1)
    while blocks[b, i] == 0:  # float edge past the block's last token with mass
        i -= 1
    return b * _BLOCK + i


# -- language-model context ---------------------------------------------------------------


class Token(str):
    """A sampled token: compares as its text; `token_id` and `is_eos` say which token it is."""

    def __new__(cls, token_id: int, text: str, is_eos: bool):
        obj = super().__new__(cls, text)
        obj.token_id = token_id
        obj.is_eos = is_eos
        return obj

    def __reduce__(self):
        return (Token, (self.token_id, str(self), self.is_eos))


class LMContext:
    """A growing token sequence: the prompt, then what the particle has generated.

    `prompt` is a user turn wrapped in the follower's chat template (`chat=False`: raw text).
    """

    def __init__(self, lm: FollowerLM, prompt: str, temp: float = 1.0, chat: bool = True):
        self.lm = lm
        self.prompt = prompt
        self.temp = float(temp)
        self.chat = chat
        self.tokens: list[int] = lm.encode_chat(prompt) if chat else lm.encode(prompt)
        self.prompt_len = len(self.tokens)
        self._mask: np.ndarray | None = None  # restriction on the next token (from mask_dist)
        # The engine's answer for the current sequence: a mask_dist and the next_token that
        # follows it ask about the same position, so the second is free.
        self._last: tuple[int, np.ndarray, np.ndarray, float] | None = None
        self._masked: tuple[np.ndarray, np.ndarray, float] | None = None  # under self._mask
        self._pending: tuple[np.ndarray, np.ndarray, float] | None = None  # from _log_mass
        self._grammars: dict[str, Matcher] = {}  # grammar key -> its state along these tokens

    @property
    def token_count(self) -> int:
        return len(self.tokens) - self.prompt_len

    @property
    def generated(self) -> list[int]:
        return [t for t in self.tokens[self.prompt_len :] if t not in self.lm.eos_token_ids]

    @property
    def text(self) -> str:
        """The text generated so far (EOS dropped). Kept until the tokens change: the worker
        reports every particle's text every round, and programs read it in `step()`; decoding
        the whole text each time grew with its length."""
        key = (id(self.tokens), len(self.tokens), self.prompt_len)
        cached = self.__dict__.get("_text")
        if cached is None or cached[0] != key:
            cached = self._text = (key, self.lm.decode(self.generated))
        return cached[1]

    def __str__(self) -> str:
        return self.text

    def hint(self, text: str) -> None:
        """Add guidance for the follower to the prompt; only before generation starts."""
        if self.token_count:
            raise RuntimeError("hint() must come before the first token is generated")
        self.prompt = f"{self.prompt}\n\n{text}"
        self.tokens = self.lm.encode_chat(self.prompt) if self.chat else self.lm.encode(self.prompt)
        self.prompt_len = len(self.tokens)
        self._last = self._masked = self._pending = None

    def next_token(self) -> "LMNextToken":
        return LMNextToken(self)

    def mask_dist(self, mask) -> "LMTokenMask":
        return LMTokenMask(self, mask)

    def grammar(self, json_schema: dict | None = None, regex: str | None = None, choice=None,
                lark: str | None = None, json_object: bool = False) -> "LMGrammarMask":
        """Whether the next token keeps the text generated from here on inside a grammar
        (exactly one of a JSON Schema, any JSON object, a regular expression, a list of
        choices, a Lark grammar). `await self.observe(ctx.grammar(...), True)` restricts the
        next token to the grammar and adds the mass it kept to the weight: SMC with that
        weight targets the model's own distribution *given* the grammar, which plain
        masked decoding does not. The grammar applies from the first generated token after
        its first use; EOS is allowed only where the text is complete."""
        spec = _grammar_spec(json_schema, regex, choice, lark, json_object)
        matcher = self._grammars.get(spec.key)
        if matcher is None:
            matcher = self._grammars[spec.key] = Matcher(spec, self.lm._grammar_tokenizer(), self.token_count)
        return LMGrammarMask(self, matcher)

    def grammar_complete(self, json_schema: dict | None = None, regex: str | None = None, choice=None,
                         lark: str | None = None, json_object: bool = False) -> bool:
        """Whether the text so far is a complete match of that grammar (it may go on)."""
        spec = _grammar_spec(json_schema, regex, choice, lark, json_object)
        matcher = self._grammars.get(spec.key)
        return matcher is not None and matcher.accepting(self.tokens[self.prompt_len:])

    async def next_word(self, max_tokens: int = 12) -> str:
        """Sample one whole word from the follower (exactly, via word-boundary masks).

        First token: any non-EOS token. Then, each step, the LM's own probability of a word
        boundary (a token starting with whitespace or punctuation, or EOS) decides whether
        the word ends; if it does, the next token is restricted to boundary tokens, as LLaMPPL's
        `mask_dist` sampling does, so the joint distribution is the LM's.
        """
        boundary = self.lm.vocab.word_starts()
        start = len(self.tokens)
        first = await self.mask_dist(~self.lm.vocab.eos()).sample()
        if first[0]:
            await self.next_token().sample()
        while len(self.tokens) - start < max_tokens:
            ends, _ = await self.mask_dist(boundary).sample()
            if ends:
                break
            await self.next_token().sample()
        return self.lm.decode(self.tokens[start:]).strip()

    async def _weights(self) -> tuple[np.ndarray, np.ndarray, float]:
        """(log-probs, unnormalised probabilities under the pending mask, their total) for the
        next token. The engine is asked once per position (a mask_dist and the next_token
        after it read the same answer) and each masked vector is built once: this runs for
        every particle at every step, between the replica's forward passes."""
        if self._last is None or self._last[0] != len(self.tokens):
            lp = await self.lm._next_token_logprobs(self.tokens)
            if self.temp != 1.0:
                lp = lp / self.temp
                lp = lp - logsumexp(lp)
            probs = np.exp(lp)
            self._last = (len(self.tokens), lp, probs, float(probs.sum()))
            self._masked = None
        _, lp, probs, total = self._last
        if self._mask is None:
            return lp, probs, total
        if self._masked is None or self._masked[0] is not self._mask:
            masked = probs * self._mask
            self._masked = (self._mask, masked, float(masked.sum()))
        return lp, self._masked[1], self._masked[2]

    async def _log_mass(self, mask: np.ndarray | None) -> float:
        """log P(next token in `mask`) under the current (masked, renormalised) distribution.
        The product is kept: if the caller then restricts to `mask`, it is the next vector."""
        lp, p, total = await self._weights()
        if mask is None:
            inside = total
        else:
            product = p * mask
            inside = float(product.sum())
            self._pending = (mask, product, inside)
        if inside > 0 and total > 0:
            return math.log(inside) - math.log(total)
        # Underflow (masses below ~1e-38): redo it in log space.
        allowed = np.ones_like(p, dtype=bool) if self._mask is None else self._mask
        chosen = allowed if mask is None else allowed & mask
        return logsumexp(lp[chosen]) - logsumexp(lp[allowed])

    def _restrict(self, mask: np.ndarray, inside: bool) -> None:
        """Limit the next token to `mask` (inside) or its complement."""
        allowed = mask if inside else ~mask
        self._mask = allowed if self._mask is None else (self._mask & allowed)
        pending = self._pending
        if inside and pending is not None and pending[0] is mask:
            self._masked = (self._mask, pending[1], pending[2])
        self._pending = None

    def _append(self, token_id: int) -> Token:
        self.tokens.append(int(token_id))
        self._mask = self._masked = self._pending = None
        return Token(int(token_id), self.lm.vocab.strings[token_id], token_id in self.lm.eos_token_ids)

    def __deepcopy__(self, memo):
        clone = LMContext.__new__(LMContext)
        clone.__dict__.update(self.__dict__)
        clone.tokens = list(self.tokens)
        clone._grammars = {k: copy.deepcopy(m) for k, m in self._grammars.items()}
        return clone  # `lm` and the (read-only) mask are shared


class LMNextToken(Distribution):
    def __init__(self, ctx: LMContext):
        self.ctx = ctx

    async def sample(self):
        _, p, _ = await self.ctx._weights()
        i = sample_unnormalised(p, _rng().random())
        logp = await self._log_prob_of(i)
        return self.ctx._append(i), logp

    async def log_prob(self, token) -> float:
        """Score `token` (a Token, id or text of one token) and append it to the context."""
        token_id = _token_id(self.ctx, token)
        logp = await self._log_prob_of(token_id)
        self.ctx._append(token_id)
        return logp

    async def _log_prob_of(self, token_id: int) -> float:
        """log-prob of `token_id` under the pending mask, renormalised."""
        lp, _, inside = await self.ctx._weights()
        mask = self.ctx._mask
        if mask is None:
            return float(lp[token_id])
        if not mask[token_id]:
            return -math.inf
        if inside > 0:
            return float(lp[token_id]) - math.log(inside)
        return float(lp[token_id]) - logsumexp(lp[mask])  # underflow: log space


def _token_id(ctx: LMContext, token) -> int:
    if isinstance(token, Token):
        return token.token_id
    if isinstance(token, (int, np.integer)):
        return int(token)
    ids = ctx.lm.encode(str(token))
    if len(ids) != 1:
        raise ValueError(f"{token!r} is not a single token ({len(ids)} tokens)")
    return ids[0]


class LMTokenMask(Distribution):
    """Whether the next token falls in `mask`; observing or sampling restricts it accordingly."""

    def __init__(self, ctx: LMContext, mask):
        self.ctx = ctx
        self._bits = (mask if isinstance(mask, Mask) else ctx.lm.vocab.from_ids(mask))._bits

    async def _log_mass(self) -> float:
        return await self.ctx._log_mass(self._bits)

    async def sample(self):
        log_in = await self._log_mass()
        inside = bool(_rng().random() < math.exp(log_in))
        return inside, await self._restrict(inside, log_in)

    async def log_prob(self, value) -> float:
        return await self._restrict(bool(value), await self._log_mass())

    async def _restrict(self, inside: bool, log_in: float) -> float:
        self.ctx._restrict(self._bits, inside)
        if inside:
            return log_in
        return math.log1p(-math.exp(log_in)) if log_in < 0 else -math.inf


class LMGrammarMask(LMTokenMask):
    """Whether the next token is one the context's grammar allows (`LMContext.grammar`)."""

    def __init__(self, ctx: LMContext, matcher: Matcher):
        self.ctx = ctx
        self._bits = matcher.mask(ctx.tokens[ctx.prompt_len:], ctx.lm.vocab.size)


@lru_cache(maxsize=256)
def _cached_spec(kind: str, source: str) -> GrammarSpec:
    if kind == "json_schema":
        return GrammarSpec(json_schema=json.loads(source))
    if kind == "choice":
        return GrammarSpec(choice=tuple(json.loads(source)))
    return GrammarSpec(**{kind: source if kind != "json_object" else True})


def _grammar_spec(json_schema, regex, choice, lark, json_object) -> GrammarSpec:
    given = [(k, v) for k, v in (("json_schema", json_schema), ("regex", regex), ("choice", choice), ("lark", lark))
             if v is not None] + ([("json_object", "{}")] if json_object else [])
    if len(given) != 1:
        raise ValueError("grammar() takes exactly one of json_schema, regex, choice, lark or json_object=True")
    kind, value = given[0]
    if kind == "json_schema" and not isinstance(value, dict):
        raise TypeError("json_schema must be a dict")
    if kind == "choice":
        value = [str(c) for c in value]
    source = json.dumps(value) if kind in ("json_schema", "choice") else str(value)  # key order kept
    return _cached_spec(kind, source)


# -- the model -----------------------------------------------------------------------------


class Model:
    """Base class of inference programs (LLaMPPL's `Model`, plus DisCIPL's `check`)."""

    def __init__(self):
        self.weight = 0.0
        self.finished = False
        self.twist_amount = 0.0

    async def start(self):
        """Runs once per particle before the first step."""

    async def step(self):
        raise NotImplementedError("an inference program must define `async def step(self)`")

    def check(self, text: str) -> bool:
        """Whether a finished text satisfies the task; the best passing particle wins."""
        return True

    def immutable_properties(self) -> set[str]:
        """Attributes shared, not copied, when a particle is cloned."""
        return set()

    def score(self, logw: float) -> None:
        self.weight += float(logw)

    def twist(self, amount: float) -> None:
        self.twist_amount += float(amount)
        self.score(amount)

    def untwist(self) -> None:
        self.score(-self.twist_amount)
        self.twist_amount = 0.0

    def finish(self) -> None:
        self.untwist()
        self.finished = True

    def done_stepping(self) -> bool:
        return self.finished

    def condition(self, ok: bool) -> None:
        if not ok:
            self.score(-math.inf)
            self.finish()

    async def observe(self, dist: Distribution, value):
        self.score(await dist.log_prob(value))
        return value

    async def sample(self, dist: Distribution, proposal: Distribution | None = None):
        if proposal is None:
            value, _ = await dist.sample()
            return value
        value, q = await proposal.sample()
        self.score(await dist.log_prob(value) - q)
        return value

    def output_text(self) -> str:
        """The particle's answer: `self.context`'s text, else the first LMContext found."""
        ctx = getattr(self, "context", None)
        if not isinstance(ctx, LMContext):
            ctx = next((v for v in vars(self).values() if isinstance(v, LMContext)), None)
        return ctx.text if ctx is not None else str(self)

    def __deepcopy__(self, memo):
        clone = type(self).__new__(type(self))
        shared = self.immutable_properties()
        for key, value in self.__dict__.items():
            setattr(clone, key, value if key in shared else copy.deepcopy(value, memo))
        return clone

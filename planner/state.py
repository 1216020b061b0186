"""Particle state as plain data: what a particle may hold, and how it travels.

A particle's state is its program object's attributes. It is copied when the particle is
cloned and shipped when it migrates to another replica, so it must be *plain data*: `None`,
booleans, numbers, strings, bytes, and lists / tuples / dicts / sets of them, nested at most
`MAX_DEPTH` deep and `MAX_ITEMS` values in all, plus the program API's own handles (a
context, a token, a mask, the follower and its vocabulary), which are written as what they
stand for (token ids, bits) and re-attached to the local follower on arrival. Anything else
(a function, a class, a generator, a numpy array, an object of the program's own classes) is
refused with a `StateError` naming the attribute, so nothing but data ever crosses from one
process to another, and resampling cannot trip over a state that cannot be copied.

The encoding is msgpack with extension types; decoding it runs no code (unlike pickle).

    blob = dump_state(vars(model))
    model.__dict__.update(load_state(blob, lm))
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

from planner.grammar import GrammarSpec, Matcher
from planner.masks import Mask, Vocabulary
from planner.sandbox import MAX_INT_BITS, ProgramError

MAX_DEPTH = 32
MAX_ITEMS = 200_000
MAX_STATE_BYTES = 16 * 2**20
MAX_STATE_CHARS = 8_000_000  # characters of all strings and bytes in one particle's state

# msgpack extension codes
_TUPLE, _SET, _FROZENSET, _BIGINT, _CONTEXT, _TOKEN, _MASK, _LM, _VOCAB = range(1, 10)


class StateError(ProgramError):
    """A particle's state is not plain data (or is too big or too deep)."""


class _Walk:
    """One pass over a state: checks it, and builds its encoding unless `build` is off (the
    check after every step, which must stay cheap: handles are only recognised there)."""

    def __init__(self, lm, vocab: Vocabulary | None, build: bool = True):
        self.items = 0
        self.chars = 0
        self.lm = lm
        self.vocab = vocab
        self.build = build

    def encode(self, value: Any, depth: int, where: str):
        self.items += 1
        if self.items > MAX_ITEMS:
            raise StateError(f"particle state is over {MAX_ITEMS} values (at {where})")
        if depth > MAX_DEPTH:
            raise StateError(f"particle state is nested over {MAX_DEPTH} levels deep (at {where})")
        kind = type(value)
        if kind in (str, bytes):
            self.chars += len(value)
            if self.chars > MAX_STATE_CHARS:
                raise StateError(f"particle state holds over {MAX_STATE_CHARS} characters (at {where})")
            return value
        if value is None or kind in (bool, float):
            return value
        if kind is int:
            if -(2**63) <= value < 2**64:
                return value
            if value.bit_length() > MAX_INT_BITS:
                raise StateError(f"particle state holds an integer over {MAX_INT_BITS} bits (at {where})")
            n = (value.bit_length() + 8) // 8
            return msgpack.ExtType(_BIGINT, value.to_bytes(n, "big", signed=True))
        if kind is list:
            return [self.encode(v, depth + 1, f"{where}[{i}]") for i, v in enumerate(value)]
        if kind is dict:
            return {self._key(k, depth, where): self.encode(v, depth + 1, f"{where}[{k!r}]")
                    for k, v in value.items()}
        if kind in (tuple, set, frozenset):
            code = {tuple: _TUPLE, set: _SET, frozenset: _FROZENSET}[kind]
            items = value if kind is tuple else sorted(value, key=repr)
            return msgpack.ExtType(code, self._pack([self.encode(v, depth + 1, f"{where}[{i}]")
                                                     for i, v in enumerate(items)]))
        return self._handle(value, depth, where)

    def _key(self, key, depth: int, where: str):
        if type(key) not in (str, int, bool, float, tuple, frozenset) and key is not None:
            raise StateError(f"particle state has a dict key of type {type(key).__name__} (at {where})")
        return self.encode(key, depth + 1, where)

    def _handle(self, value, depth: int, where: str):
        from planner.program import LMContext, Token

        if not self.build and type(value) in (Token, LMContext, Mask):
            return None
        if type(value) is Token:
            return msgpack.ExtType(_TOKEN, self._pack([value.token_id, str(value), value.is_eos]))
        if type(value) is LMContext:
            mask = value._mask
            return msgpack.ExtType(_CONTEXT, self._pack([
                value.prompt, value.temp, value.chat, value.prompt_len,
                [self._token(t, where) for t in value.tokens],
                None if mask is None else np.packbits(mask).tobytes(), len(mask) if mask is not None else 0,
                # A grammar travels as what it is and where it starts; the matcher is rebuilt
                # from the tokens on arrival (llguidance state is not data).
                [[m.spec.model_dump_json(exclude_defaults=True), m.start] for m in value._grammars.values()],
            ]))
        if type(value) is Mask:
            return msgpack.ExtType(_MASK, self._pack([np.packbits(value._bits).tobytes(), len(value._bits)]))
        if self.lm is not None and value is self.lm:
            return msgpack.ExtType(_LM, b"")
        if self.vocab is not None and value is self.vocab:
            return msgpack.ExtType(_VOCAB, b"")
        kind = type(value).__name__
        raise StateError(
            f"particle state must be plain data (numbers, strings, lists, dicts, tuples, sets), "
            f"but {where} holds a {kind}")

    @staticmethod
    def _token(t, where: str) -> int:
        if type(t) is not int or not 0 <= t < 2**31:
            raise StateError(f"a context's tokens must be token ids (at {where})")
        return t

    @staticmethod
    def _pack(obj) -> bytes:
        return msgpack.packb(obj, use_bin_type=True)


def dump_state(state: dict, lm=None) -> bytes:
    """A particle's attributes as bytes; StateError if they are not plain data."""
    walk = _Walk(lm, getattr(lm, "vocab", None))
    tree = {str(k): walk.encode(v, 1, str(k)) for k, v in state.items()}
    blob = msgpack.packb(tree, use_bin_type=True)
    if len(blob) > MAX_STATE_BYTES:
        raise StateError(f"particle state is over {MAX_STATE_BYTES // 2**20} MB")
    return blob


def check_state(state: dict, lm=None) -> None:
    """Raise StateError unless the attributes are plain data (the walk of `dump_state`)."""
    walk = _Walk(lm, getattr(lm, "vocab", None), build=False)
    for k, v in state.items():
        walk.encode(v, 1, str(k))


def load_state(blob: bytes, lm) -> dict:
    """The attributes again, with handles re-attached to `lm` (this process's follower)."""
    if len(blob) > MAX_STATE_BYTES:
        raise StateError("particle state is too large")

    def hook(code: int, data: bytes):
        from planner.program import LMContext, Token

        if code == _BIGINT:
            return int.from_bytes(data, "big", signed=True)
        if code == _LM:
            return lm
        if code == _VOCAB:
            return lm.vocab
        items = unpack(data)
        if code == _TUPLE:
            return tuple(items)
        if code == _SET:
            return set(items)
        if code == _FROZENSET:
            return frozenset(items)
        if code == _TOKEN:
            token_id, text, is_eos = items
            return Token(int(token_id), str(text), bool(is_eos))
        if code == _MASK:
            return Mask(_bits(*items))
        if code == _CONTEXT:
            prompt, temp, chat, prompt_len, tokens, mask, size, grammars = items
            ctx = LMContext.__new__(LMContext)
            ctx.__dict__.update(lm=lm, prompt=str(prompt), temp=float(temp), chat=bool(chat),
                                tokens=[int(t) for t in tokens], prompt_len=int(prompt_len),
                                _mask=None if mask is None else _bits(mask, size),
                                _last=None, _masked=None, _pending=None, _grammars={})
            for spec_json, start in grammars:
                spec = GrammarSpec.model_validate_json(spec_json)
                ctx._grammars[spec.key] = Matcher(spec, lm._grammar_tokenizer(), int(start))
            return ctx
        raise StateError(f"unknown state extension {code}")

    def unpack(data: bytes):
        return msgpack.unpackb(data, ext_hook=hook, raw=False, strict_map_key=False)

    try:
        return unpack(blob)
    except StateError:
        raise
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise StateError(f"particle state could not be read: {exc}") from None


def _bits(packed: bytes, size: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(packed, dtype=np.uint8), count=int(size)).astype(bool)


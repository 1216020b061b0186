"""genlm-control's own SMC (`TokenSampler.smc`) on the throughput bench's program, for `council bench throughput`,
and on constraint tasks, for `council bench peers`.

Runs in genlm-control's virtual environment (`scripts/install_genlm.sh`: it pulls genlm-backend,
genlm-grammar, numba, bitsandbytes…), so it imports nothing from Council and prints one JSON
object on its last stdout line:

    .venv-genlm/bin/python bench/genlm_smc.py --model-dir DIR --prompt-file F \\
        --particles 32 --steps 32 --mode best --task fixed

Tasks:
- `fixed`: the throughput program; every particle samples exactly `steps` tokens with no
  constraint, through `direct_token_sampler(PromptedLLM)`. genlm-control stops a particle when it
  draws its reserved EOS, and at `max_tokens` it forces EOS and weighs it by the target's EOS
  probability. So the PromptedLLM is built with an empty EOS set (`TokenMappings` over the
  whole byte vocabulary, `eos_byte_strings=[]`): its EOS weight is then log 0, EOS is never
  drawn, and the model's own end token is an ordinary token, as in llamppl's FixedLength (a
  two-line subclass works around 0.4.1 indexing with a float tensor when that set is empty). The
  length is closed by `smc(..., terminate_when=len(context) >= steps)`, which appends EOS with
  no weight correction and no extra forward pass (`max_tokens` = steps + 1 is only a backstop:
  its forced EOS would weigh log 0 here).
- `words`: a constraint as a genlm-control potential. The answer (chat-templated request for one
  sentence about the prompt text) must match the regex `[A-Z][A-Za-z'-]*(,? [A-Za-z'-]+){a,b}\\.`,
  i.e. one sentence of `--min-words` to `--max-words` words ending with a period, as a
  `BoolFSA.from_regex(...)` coerced to the LLM's tokens (`.coerce(llm, f=b"".join)`) and
  enforced inside the token sampler by `AWRS(llm, fsa)` (adaptive weighted rejection
  sampling); the model's EOS (`<|im_end|>`) ends an answer, accepted only where the FSA
  accepts the whole string. `steps` is `max_tokens` (EOS included): a particle that has not
  finished by then is forced to EOS and dies unless its string is complete, so give it room
  (≥ 2 tokens per word). Whether each final answer satisfies the constraint is checked here in
  plain Python (regex and word count), not taken from genlm. (`council bench peers`' regex task.)
- `collie`: a COLLIE sentence-level constraint (`council bench peers`, bench/peers.py). The
  prompt file holds the request itself (chat-templated as it is) and `--spec-file` the
  constraint as JSON: `min_chars`/`max_chars` (the text's length in characters, spaces
  included), `min_words`/`max_words`, `word_at` ({"3": "Series"}: the 4th word, 0-based),
  `max_word_chars` (every word at most that long) and `contains` (words the text must have),
  all with COLLIE's semantics (words are NLTK `word_tokenize(..., preserve_line=True)` tokens
  that are not a substring of `string.punctuation`, stripped of spaces and periods; words
  compared lower-cased with surrounding punctuation removed). It is a custom `Potential` over
  bytes (`SpecPotential`: `complete` is the whole check, `prefix` the sound check of
  `spec_prefix`: it never rejects a prefix that some continuation completes), coerced to the
  LLM's tokens and enforced by `AWRS` like the `words` FSA. `spec_prefix`, `spec_complete`
  and `collie_words` are plain functions, importable without genlm-control.

Modes: `shipped` is `PromptedLLM.from_name(dir, backend="hf")` with its defaults (the directory's
dtype via `torch_dtype="auto"`, float32 here; auto-batching up to 20 queries with a 20 ms
timeout; no prompt KV cache, so every forward re-reads the prompt); `best` gives the
`AsyncTransformer` a batch as wide as the particle count, a 1 ms batching timeout, the bench's
dtype, and the prompt's keys and values cached up front (`lm.cache_kv`). In both, genlm's
potentials are auto-batched across particles (its default). Its HF backend keeps no per-particle
KV cache: past the cached prompt, each step re-runs the particle's generated tokens.

`tokens` counts the tokens of the final particles (EOS excluded), as llamppl_smc.py does.
"""

import argparse
import asyncio
import codecs
import json
import math
import os
import re
import string
import time
from functools import lru_cache


def word_regex(min_words: int, max_words: int) -> str:
    return rf"[A-Z][A-Za-z'-]*(,? [A-Za-z'-]+){{{min_words - 1},{max_words - 1}}}\."


def satisfies(text: str | None, min_words: int, max_words: int) -> bool:
    """The `words` constraint, checked in plain Python."""
    if text is None or not re.fullmatch(word_regex(min_words, max_words), text):
        return False
    return min_words <= len(text.split()) <= max_words and text.endswith(".")


def words_request(text: str, min_words: int, max_words: int) -> str:
    """The `words` task's request (also what `council bench peers` gives Council)."""
    return (f"Describe the scene below in one sentence of {min_words} to {max_words} words, "
            f"ending with a period.\n\n{text}")


# -- COLLIE constraints as a prefix check (the `collie` task) ---------------------------------
#
# COLLIE's words are NLTK's `word_tokenize(text, preserve_line=True)` tokens, less those that are
# a substring of `string.punctuation`, each stripped of spaces and periods (planner/constraints.py
# has the same semantics for Council; this file imports nothing from Council). That tokenizer is
# a chain of regex rewrites that insert spaces (and respell quotes), then a split on whitespace; each rule
# looks at one whitespace-separated chunk and the characters next to it, except two: `^"` (the
# start of the text) and the final-period rule (a period followed only by closing brackets,
# quotes and spaces up to the end of the text). So the tokens of a chunk that is followed by
# whitespace (or by a hard separator, below) in a prefix are final as soon as more non-space text
# comes after it, unless the final-period rule could still reach back into it: `spec_prefix` keeps
# the chunk holding the last period open when only closers follow that period.

SPEC_KEYS = {"min_chars", "max_chars", "min_words", "max_words", "word_at", "max_word_chars", "contains"}
FINAL_CLOSERS = set("])}>\"'»”’")  # what NLTK's final-period rule lets follow the period
# Characters NLTK always cuts out as a token of their own (brackets, ;@#$%&, ?!, *, Unicode
# dashes), whatever is around them; they look no further than themselves, so the tokens before one
# are final too (but for the final-period rule).
HARD_SEPARATORS = set("[](){}<>;@#$%&?!*\u2012\u2013\u2014\u2015")
_ASCII_ALNUM = re.compile(r"[A-Za-z0-9]+")
_SENTINEL = "x"  # a chunk of its own after a committed prefix: the prefix is then mid-text


def collie_words(text: str) -> list[str]:
    """COLLIE's words of `text` (as planner.constraints.words)."""
    from nltk.tokenize import word_tokenize

    return [w.strip().strip(".") for w in word_tokenize(text, preserve_line=True) if w not in string.punctuation]


def collie_patch(word: str) -> str:
    """COLLIE's literal normalisation: lower-case, surrounding punctuation and spaces removed
    (unless that leaves nothing)."""
    stripped = word.lower().strip(string.punctuation + " ")
    return word if stripped == "" else stripped


def check_spec(spec: dict) -> dict:
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        raise ValueError(f"unknown constraint keys {sorted(unknown)} (known: {sorted(SPEC_KEYS)})")
    return spec


def _word_at(spec: dict) -> dict[int, str]:
    return {int(i): w for i, w in (spec.get("word_at") or {}).items()}


def _words_hold(spec: dict, words: list[str]) -> bool:
    """Every word constraint on a finished text's words."""
    if spec.get("min_words") is not None and len(words) < spec["min_words"]:
        return False
    if spec.get("max_words") is not None and len(words) > spec["max_words"]:
        return False
    for i, target in _word_at(spec).items():
        if i >= len(words) or collie_patch(words[i]) != collie_patch(target):
            return False
    if spec.get("max_word_chars") is not None and any(len(w) > spec["max_word_chars"] for w in words):
        return False
    if spec.get("contains"):
        have = {collie_patch(w) for w in words}
        if not all(collie_patch(t) in have for t in spec["contains"]):
            return False
    return True


def spec_complete(spec: dict, text: str) -> bool:
    """The whole constraint on a finished text."""
    if spec.get("min_chars") is not None and len(text) < spec["min_chars"]:
        return False
    if spec.get("max_chars") is not None and len(text) > spec["max_chars"]:
        return False
    return _words_hold(spec, collie_words(text))


def _open_cut(text: str) -> int:
    """Where the open part of `text` begins: after its last whitespace or hard separator, or
    earlier, at the start of the chunk that holds the last period when only closers and spaces
    follow that period (NLTK's final-period rule may still split it when the text ends)."""
    cut = 0
    for i in range(len(text) - 1, -1, -1):
        if text[i].isspace() or text[i] in HARD_SEPARATORS:
            cut = i + 1
            break
    period = text.rfind(".")
    if period >= 0 and all(c in FINAL_CLOSERS or c.isspace() for c in text[period + 1:]):
        start = 0
        for i in range(period - 1, -1, -1):
            if text[i].isspace():
                start = i + 1
                break
        cut = min(cut, start)
    return cut


@lru_cache(maxsize=4096)
def committed_words(head: str) -> tuple[str, ...] | None:
    """The words of `head` (text up to whitespace or a hard separator) once more text follows it:
    final whatever comes next. Cached: the candidates AWRS tries after one context share it."""
    tokens = collie_words(head + _SENTINEL)
    return tuple(tokens[:-1]) if tokens and tokens[-1] == _SENTINEL else None


def split_words(text: str) -> tuple[tuple[str, ...], str]:
    """(the committed words of `text`, its open part)."""
    cut = _open_cut(text)
    committed = committed_words(text[:cut]) if cut > 0 else ()
    if committed is None:  # not expected: read nothing as committed
        return (), text
    return committed, text[cut:]


def ending_words(text: str) -> list[str]:
    """`collie_words(text)`, from the cached committed words and the open part read with the
    character before it (whitespace or a hard separator: all NLTK looks back at)."""
    cut = _open_cut(text)
    committed = committed_words(text[:cut]) if cut > 0 else None
    if committed is None:
        return collie_words(text)
    tail = collie_words(text[cut - 1:])
    if text[cut - 1] in HARD_SEPARATORS and text[cut - 1] not in string.punctuation:
        tail = tail[1:]  # a dash: a word of its own, already among the committed ones
    return list(committed) + tail


def _words_may_hold(spec: dict, committed: tuple[str, ...], rest: str) -> bool:
    """The word constraints as far as the committed words and the open part decide them: a
    necessary condition for every completion, whether more text comes or the text ends."""
    # The open part's first chunk gives at least one word when it holds a letter or digit.
    least = len(committed) + (1 if any(c.isalnum() for c in rest) else 0)
    if spec.get("max_words") is not None and least > spec["max_words"]:
        return False
    limit = spec.get("max_word_chars")
    if limit is not None:
        if any(len(w) > limit for w in committed):
            return False
        # NLTK cuts inside a run of ASCII letters and digits only for contractions: n't takes
        # one letter off the run ("wouldn't"), and cannot/gonna/gimme/... split runs of 5-6
        # letters; a run of 7 or more ends up in a word at least one shorter than itself.
        if any(len(m) >= 7 and len(m) - 1 > limit for m in _ASCII_ALNUM.findall(rest)):
            return False
    for i, target in _word_at(spec).items():
        if i < len(committed):
            if collie_patch(committed[i]) != collie_patch(target):
                return False
        elif i == len(committed) and (run := _ASCII_ALNUM.match(rest)):
            # The next word starts where the open part does: with the run of letters and
            # digits there, or (a contraction) inside it.
            head, want = run.group(0).lower(), collie_patch(target)
            if not (want.startswith(head) or head.startswith(want)):
                return False
    return True


def spec_prefix(spec: dict, text: str, pending: int = 0) -> bool:
    """Whether some continuation of `text` passes `spec` (sound: a prefix of any passing text
    is never rejected; not complete: some dead prefixes pass until more text shows them dead).
    `pending`: characters begun but not finished (bytes of an unfinished UTF-8 sequence).

    The committed words and the open part bound every completion (`_words_may_hold`). Past
    that, more text can come while the character limit allows one more character; otherwise
    the text is finished, and its words are checked."""
    committed, rest = split_words(text)
    if not _words_may_hold(spec, committed, rest):
        return False
    limit = spec.get("max_chars")
    if limit is None or len(text) + 1 <= limit:
        return True
    if pending:  # the character begun is the last one: what it is decides the words
        return len(text) + pending <= limit
    return len(text) <= limit and _words_hold(spec, ending_words(text))


def decode_prefix(data: bytes) -> tuple[str, int] | None:
    """The text of a byte prefix and how many characters it has begun without finishing (0 or
    1); None when the bytes are not UTF-8 and no continuation can make them so."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        text = decoder.decode(data, final=False)
    except UnicodeDecodeError:
        return None
    return text, 1 if decoder.getstate()[0] else 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--prompt-file", required=True)
    ap.add_argument("--particles", type=int, default=32)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--mode", choices=("shipped", "best"), default="best")
    ap.add_argument("--task", choices=("fixed", "words", "collie"), default="fixed")
    ap.add_argument("--spec-file", help="collie: the constraint as JSON (see SPEC_KEYS)")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--ess-threshold", type=float, default=0.5)
    ap.add_argument("--min-words", type=int, default=8)
    ap.add_argument("--max-words", type=int, default=12)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    spec = None
    if args.task == "collie":
        if not args.spec_file:
            ap.error("--task collie needs --spec-file")
        spec = check_spec(json.loads(open(args.spec_file).read()))

    import numpy as np
    import torch
    from genlm.control import AWRS, EOS, BoolFSA, Potential, PromptedLLM, direct_token_sampler
    from genlm.control.potential.built_in.llm import TokenMappings

    torch.set_num_threads(os.cpu_count() or 1)
    text = open(args.prompt_file).read()
    if args.mode == "shipped":
        llm = PromptedLLM.from_name(args.model_dir, backend="hf")
    else:
        llm = PromptedLLM.from_name(args.model_dir, backend="hf", batch_size=args.particles, timeout=0.001,
                                    hf_opts={"torch_dtype": getattr(torch, args.dtype)})
    lm = llm.model  # genlm.backend's AsyncTransformer
    tokenizer = lm.tokenizer

    if args.task == "fixed":
        class NoEOS(PromptedLLM):
            """A PromptedLLM with no EOS token. genlm-control 0.4.1 builds its EOS index tensor
            with `torch.tensor(eos_idxs)`, which is a float tensor when the list is empty and then
            fails as an index; these are the same tensors, typed."""

            def _eos_index_tensors(self, device):
                if getattr(self, "_no_eos_device", None) != device:
                    self._eos_idxs_tensor = torch.empty(0, dtype=torch.long, device=device)
                    self._non_eos_indices = torch.arange(len(self.token_maps.decode), device=device)
                    self._no_eos_device = device
                return self._eos_idxs_tensor, self._non_eos_indices

        prompt_ids = tokenizer.encode(text)
        target = NoEOS(lm, prompt_ids=prompt_ids,
                       token_maps=TokenMappings.create(decode=lm.byte_vocab, eos_byte_strings=[]))
        sampler = direct_token_sampler(target)

        def run(n, steps):
            return sampler.smc(n_particles=n, ess_threshold=args.ess_threshold, max_tokens=steps + 1,
                               terminate_when=lambda context: len(context) >= steps)
    else:
        request = text if args.task == "collie" else words_request(text, args.min_words, args.max_words)
        prompt_ids = tokenizer.apply_chat_template([{"role": "user", "content": request}],
                                                   tokenize=True, add_generation_prompt=True)
        if not isinstance(prompt_ids, list):  # transformers 5 may answer with a BatchEncoding
            prompt_ids = list(prompt_ids["input_ids"])
        llm.prompt_ids = prompt_ids
        if args.task == "collie":
            class SpecPotential(Potential):
                """The COLLIE constraint over bytes: 0 or -inf (a Boolean condition for AWRS)."""

                def __init__(self, spec):
                    super().__init__(list(range(256)))
                    self.spec = spec

                async def prefix(self, context):
                    decoded = decode_prefix(bytes(context))
                    return 0.0 if decoded is not None and spec_prefix(self.spec, *decoded) else -math.inf

                async def complete(self, context):
                    try:
                        answer = bytes(context).decode("utf-8")
                    except UnicodeDecodeError:
                        return -math.inf
                    return 0.0 if spec_complete(self.spec, answer) else -math.inf

            condition = SpecPotential(spec).coerce(llm, f=b"".join)
        else:
            condition = BoolFSA.from_regex(word_regex(args.min_words, args.max_words)).coerce(llm, f=b"".join)
        sampler = AWRS(llm, condition)

        def run(n, steps):
            return sampler.smc(n_particles=n, ess_threshold=args.ess_threshold, max_tokens=steps)

    def prepare():
        lm.clear_cache()  # nothing from the warm-up is served from the trie in the timed run
        if args.mode == "best":
            lm.cache_kv(prompt_ids)

    prepare()
    asyncio.run(run(2, 2))  # warm-up: first calls allocate
    prepare()
    started = time.perf_counter()
    sequences = asyncio.run(run(args.particles, args.steps))
    wall = time.perf_counter() - started

    tokens = sum(len(c) - (1 if c and c[-1] is EOS else 0) for c in sequences.contexts)
    row = {"mode": args.mode, "task": args.task, "particles": args.particles, "steps": args.steps,
           "dtype": str(next(lm.model.parameters()).dtype).removeprefix("torch."),
           "batch_size": lm.batch_size, "tokens": tokens, "seconds": wall, "wall_s": wall,
           "tokens_per_s": tokens / wall, "ess": float(sequences.ess)}
    if args.task == "fixed":
        row["lengths"] = sorted({len(c) - 1 for c in sequences.contexts if c and c[-1] is EOS})
        row["all_ended"] = all(c and c[-1] is EOS for c in sequences.contexts)
    else:
        answers = []
        for c in sequences.contexts:
            ended = bool(c) and c[-1] is EOS
            try:  # an unfinished particle has no answer
                answers.append(b"".join(c[:-1]).decode("utf-8") if ended else None)
            except UnicodeDecodeError:
                answers.append(None)

        def valid(answer):
            if args.task == "collie":
                return answer is not None and spec_complete(spec, answer)
            return satisfies(answer, args.min_words, args.max_words)

        ok = [valid(a) for a in answers]
        weights = np.asarray(sequences.normalized_weights, dtype=float)
        posterior: dict[str, float] = {}
        for a, w in zip(answers, weights):
            if a is not None and w > 0:
                posterior[a] = posterior.get(a, 0.0) + float(w)
        top = max(posterior, key=posterior.get) if posterior else None
        row["spec" if args.task == "collie" else "regex"] = (
            spec if args.task == "collie" else word_regex(args.min_words, args.max_words))
        row.update({"valid_share": sum(ok) / len(ok), "valid_weight": float(sum(w for w, k in zip(weights, ok) if k)),
                    "alive_share": float(np.mean(np.isfinite(sequences.log_weights))),
                    "top_answer": top, "top_answer_valid": valid(top),
                    "top_answer_weight": posterior.get(top, 0.0) if top else 0.0})
    print(json.dumps(row))


if __name__ == "__main__":
    main()

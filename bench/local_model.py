"""A real local model for the benches, through plain transformers (no Council engine).

Two uses:
- the *big side* of `council bench strategies --big gemma3-270m`: `LocalLM.responder()` plugs
  into `ScriptedOpenAI.respond_with`, so the strategies reach a real model over the same
  OpenAI-compatible HTTP as they would a hosted one;
- the *judge* of `council bench collie`: `LocalLM.mean_logprobs(texts)` scores fluency with a
  model that is not the follower.

The models come from PyPI packages (`actors/engines/model_source.py`); nothing is downloaded.
Gemma-3-270M is a base model without a chat template, so chat messages become a plain
transcript with one worked exchange in front, which is how base models are usually prompted.
"""

from __future__ import annotations

import os
import threading

TRANSCRIPT_HEAD = "User: What is 2 + 3? Answer with the number only.\nAssistant: 5\n\n"
# A short reply is one line: generation stops at the newline rather than running on to
# max_tokens (a base model happily writes the next "User:" turn itself). A reply allowed more
# than LONG_REPLY tokens (the LLM planner's program) may span lines and ends at the next turn.
TURN_END = "\n"
NEXT_TURN = "\nUser:"
LONG_REPLY = 256


class LocalLM:
    def __init__(self, name: str = "gemma3-270m"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from actors.engines.model_source import resolve_model

        source = resolve_model(name)
        kwargs = source.from_pretrained_kwargs()
        self.name = name
        self.tokenizer = AutoTokenizer.from_pretrained(source.directory, **kwargs)
        self.tokenizer.padding_side = "right"  # positions count from the text's start
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        # float32: the GGUF loader computes in float32 whatever is asked, so this is fastest.
        self.model = AutoModelForCausalLM.from_pretrained(source.directory, dtype=torch.float32, **kwargs).eval()
        self._lock = threading.Lock()  # one forward at a time: the HTTP server is threaded

    # -- answering -------------------------------------------------------------------------
    def transcript(self, messages: list[dict]) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        system = "\n".join(m["content"] for m in messages if m["role"] == "system")
        turns = "".join(f"{'User' if m['role'] == 'user' else 'Assistant'}: {m['content']}\n"
                        for m in messages if m["role"] != "system")
        return (f"{system}\n\n" if system else "") + TRANSCRIPT_HEAD + turns + "Assistant:"

    def chat(self, messages: list[dict], max_tokens: int = 64) -> tuple[str, tuple[int, int]]:
        """Greedy reply to chat messages, cut at the end of the turn; (text, (prompt, completion) tokens)."""
        import torch

        end = NEXT_TURN if max_tokens > LONG_REPLY else TURN_END
        ids = self.tokenizer(self.transcript(messages), return_tensors="pt")["input_ids"]
        with self._lock, torch.inference_mode():
            out = self.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_tokens,
                                      do_sample=False, pad_token_id=self.tokenizer.eos_token_id,
                                      stop_strings=[end], tokenizer=self.tokenizer)
        new = out[0, ids.shape[1]:]
        text = self.tokenizer.decode(new, skip_special_tokens=True).lstrip()
        return text.split(end)[0].strip(), (int(ids.shape[1]), int(len(new)))

    def responder(self, default_max_tokens: int = 64):
        """For `ScriptedOpenAI.respond_with`: the request's messages answered by this model."""
        def respond(body: dict):
            return self.chat(body.get("messages", []), int(body.get("max_tokens") or default_max_tokens))
        return respond

    # -- judging ---------------------------------------------------------------------------
    def mean_logprobs(self, texts: list[str], batch_size: int = 1) -> list[float]:
        """Mean per-token log-likelihood of each text on its own (after the BOS token).

        One text at a time by default: Gemma's 262k-token vocabulary makes the logits of a
        batch of paragraphs several GB (a batch of 8 ran a 24 GB machine out of memory)."""
        import torch

        scores: list[float] = []
        for start in range(0, len(texts), batch_size):
            chunk = texts[start:start + batch_size]
            enc = self.tokenizer(chunk, return_tensors="pt", padding=True)
            ids, mask = enc["input_ids"], enc["attention_mask"]
            with self._lock, torch.inference_mode():
                logits = self.model(input_ids=ids, attention_mask=mask).logits.float()
            # log p(token) = its logit - logsumexp: no second vocabulary-sized tensor
            shifted = logits[:, :-1]
            logp = shifted.gather(-1, ids[:, 1:, None])[..., 0] - torch.logsumexp(shifted, dim=-1)
            keep = mask[:, 1:].bool()
            for row, k in zip(logp, keep):
                scores.append(float(row[k].mean()) if k.any() else float("nan"))
        return scores

    def continuation_logprob(self, prompt: str, continuation: str) -> float:
        """Total log-likelihood of `continuation` after `prompt` (the topic judge: an answer is
        likelier after its own request than after an unrelated one when it is on topic)."""
        import torch

        head = self.tokenizer(prompt, return_tensors="pt")["input_ids"]
        full = self.tokenizer(prompt + continuation, return_tensors="pt")["input_ids"]
        n = head.shape[1]
        with self._lock, torch.inference_mode():
            logits = self.model(input_ids=full).logits.float()
        shifted = logits[:, :-1]
        logp = shifted.gather(-1, full[:, 1:, None])[..., 0] - torch.logsumexp(shifted, dim=-1)
        return float(logp[0, n - 1:].sum())


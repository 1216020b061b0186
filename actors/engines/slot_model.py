"""Run a Llama-family or Gemma-3 Hugging Face model over a slot-addressed KV pool.

Hugging Face's own caches hold one contiguous tensor per sequence, which cannot share a
prefix between sequences or keep it after the batch ends. Here every token's keys and values
live in a row ("slot") of one pool per layer; a sequence is a list of slots, so any number of
sequences can point at the same prefix rows. One `forward` call takes rows of different
lengths and prefixes, writes the new tokens' K/V into their slots layer by layer, and gathers
each row's keys by slot index for attention. The model's weights and modules (projections,
norms, MLP, rotary embedding) are Hugging Face's; only the cache plumbing is ours.

Gemma 3 differs in three places, each read from the model rather than assumed: its layers
put a norm after attention and around the MLP (`pre_feedforward_layernorm`), most layers
attend only within a sliding window (`self_attn.sliding_window`), and each kind of layer has
its own rotary frequencies (`rotary_emb(h, pos, layer_type)`).

Because a layer's K/V for all new tokens are written before that layer's gather, a row may
use as its prefix slots that another row of the same call is filling: a prompt shared by many
fresh sequences is computed once, by whichever row carries it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import inspect
import os

import torch
import torch.nn.functional as F

SUPPORTED_ARCHITECTURES = ("llama", "mistral", "qwen2", "qwen3", "gemma3_text")


class UnsupportedModelError(ValueError):
    pass


@dataclass
class Row:
    """One sequence in a forward call: attend to `past_slots`, then compute `new_tokens`."""

    past_slots: list[int]
    new_tokens: list[int]
    new_slots: list[int]
    # Query positions (indices into new_tokens) whose next-token log-probs are wanted.
    wanted: list[int] = field(default_factory=list)


@dataclass
class _SharedPrefix:
    """Decode rows that all begin with the same slots (the particles of one request share at
    least their prompt): those keys are read once for the whole batch, and only each row's
    own tail is gathered per row."""

    start: int  # the shared slots are start .. start+length-1 when `slots` is None
    length: int
    slots: torch.Tensor | None  # the shared slots, where they are not one run
    tail: torch.Tensor  # [2 * kv heads, B, T] each row's own slots after the shared ones (0-padded), head-major
    tail_valid: torch.Tensor  # [B, T] which of those are real


# The split pays for its extra matmuls only past a few dozen shared keys: at 32 rows it
# measured no faster on a 60-token prompt and about twice as fast on a 420-token one
# (`council bench forward`).
MIN_SHARED_PREFIX = 64


# A batch-size hint for oneDNN's weight layout; any batch runs on it (a decode step's 32
# particles is the common case here).
PACK_BATCH_HINT = 32


class Linear:
    """x W^T + b. On CPU (float32 / bfloat16) W is reordered once into oneDNN's blocked layout
    and every call runs the packed kernel: at 32 rows, measured here (2 Zen 4 cores), SmolLM2's
    layer matmuls took 0.83x the time of `F.linear` in bf16 and 0.70x in float32, and its
    49k-row lm_head 0.64x and 0.39x (`F.linear` reorders the weight on every call). The packed
    copy is held beside the module's own weight, which the rest of the model still reads."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None, pack: bool = False):
        self.weight, self.bias = weight, bias
        self.packed = _packed(weight) if pack else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.packed is None:
            return F.linear(x, self.weight, self.bias)
        return torch.ops.mkldnn._linear_pointwise(x.contiguous(), self.packed, self.bias, "none", [], "")


def _packed(weight: torch.Tensor) -> torch.Tensor | None:
    try:
        return torch.ops.mkldnn._reorder_linear_weight(weight, PACK_BATCH_HINT)
    except (RuntimeError, AttributeError):  # a torch without oneDNN: plain F.linear
        return None


def can_pack(device: torch.device, dtype: torch.dtype) -> bool:
    return device.type == "cpu" and dtype in (torch.float32, torch.bfloat16) and torch.backends.mkldnn.is_available()


@dataclass
class _Layer:
    """One layer's matmuls. The q/k/v projections are one matrix and the MLP's gate and up
    another where the model allows: one matmul each instead of three and two (at 32 rows a
    decode step's matmuls are small, and several small ones cost more than one of their sum).
    The modules' own weights are re-pointed at rows of the joined ones, so nothing is held
    twice."""

    qkv: Linear | None  # None: the projections could not be joined
    qkv_sizes: list[int]
    o: Linear
    gate_up: Linear | None  # None: the MLP runs as its own module
    down: Linear | None


def _layer_linears(layer, pack: bool) -> _Layer:
    attn, mlp = layer.self_attn, layer.mlp
    projections = [getattr(attn, name, None) for name in ("q_proj", "k_proj", "v_proj")]
    qkv, sizes = None, []
    biases = [getattr(p, "bias", None) for p in projections]
    if all(isinstance(p, torch.nn.Linear) for p in projections) and \
            (all(b is None for b in biases) or all(b is not None for b in biases)):
        qkv_bias = _share_rows(projections, "bias") if biases[0] is not None else None
        qkv = Linear(_share_rows(projections, "weight"), qkv_bias, pack)
        sizes = [p.out_features for p in projections]
    halves = [getattr(mlp, name, None) for name in ("gate_proj", "up_proj")]
    down = getattr(mlp, "down_proj", None)
    gate_up = None
    if all(isinstance(p, torch.nn.Linear) and p.bias is None for p in halves) and hasattr(mlp, "act_fn") \
            and isinstance(down, torch.nn.Linear):
        gate_up = Linear(_share_rows(halves, "weight"), None, pack)
    return _Layer(qkv, sizes, Linear(attn.o_proj.weight, attn.o_proj.bias, pack), gate_up,
                  Linear(down.weight, down.bias, pack) if gate_up is not None else None)


def _share_rows(modules, name: str) -> torch.Tensor:
    """The modules' `name` tensors stacked by rows; each module's own then views its rows."""
    joined = torch.cat([getattr(m, name).data for m in modules], dim=0)
    start = 0
    for m in modules:
        rows = getattr(m, name).shape[0]
        getattr(m, name).data = joined[start:start + rows]
        start += rows
    return joined


def _mlp(mlp, linears: _Layer, x: torch.Tensor) -> torch.Tensor:
    """The layer's MLP: gate and up as one matmul when they were joined, else its own forward."""
    if linears.gate_up is None:
        return mlp(x)
    gate, up = linears.gate_up(x).chunk(2, dim=-1)
    # SiLU called directly and multiplied in place: two ops, no module call (per layer, per step).
    act = F.silu(gate) if type(mlp.act_fn).__name__ in ("SiLUActivation", "SiLU") else mlp.act_fn(gate)
    return linears.down(act.mul_(up))


def _signed_sin(sin: torch.Tensor) -> torch.Tensor:
    """`sin` with the first half negated: Hugging Face's `x*cos + rotate_half(x)*sin` is
    then `x*cos + swap_halves(x)*signed_sin`, the same products without a negation pass."""
    half = sin.shape[-1] // 2
    return torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)


def _rope(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of x [B, n, heads, dim] (cos, signed_sin [B, n, 1, dim]): three ops
    for any number of heads, so q and k go through together where they lie side by side."""
    half = x.shape[-1] // 2
    swapped = torch.cat((x[..., half:], x[..., :half]), dim=-1)
    return torch.addcmul(x * cos, swapped, signed_sin)


def _rms_norm(norm, x: torch.Tensor) -> torch.Tensor:
    """A Llama-style RMSNorm module's forward in three ops instead of seven: at 32 decode rows
    these norms are pure per-op overhead (two a layer). The same arithmetic as Hugging Face's
    (normalise in float32, round to the input's dtype, then scale by the weight)."""
    return torch.rms_norm(x.float(), (x.shape[-1],), None, norm.variance_epsilon).to(x.dtype).mul_(norm.weight)


# Norm modules whose forward is exactly `_rms_norm` (checked against transformers' source for
# these classes); any other norm (Gemma's scales by 1 + weight) runs as its own module.
PLAIN_RMS_NORMS = ("LlamaRMSNorm", "MistralRMSNorm", "Qwen2RMSNorm", "Qwen3RMSNorm")


def _norm(norm, x: torch.Tensor) -> torch.Tensor:
    return _rms_norm(norm, x) if type(norm).__name__ in PLAIN_RMS_NORMS else norm(x)


class SlotKVModel:
    def __init__(self, model, capacity: int, pack_weights: bool = True, share_prefix: bool = True):
        model_type = getattr(model.config, "model_type", "?")
        if model_type not in SUPPORTED_ARCHITECTURES:
            raise UnsupportedModelError(
                f"the torch engine runs {', '.join(SUPPORTED_ARCHITECTURES)} models; "
                f"this one is '{model_type}'"
            )
        self.model = model.eval()
        cfg = model.config
        if getattr(cfg, "attn_logit_softcapping", None):  # gemma 2: SDPA cannot cap scores
            raise UnsupportedModelError("the torch engine cannot run attention logit soft-capping")
        self.num_layers = cfg.num_hidden_layers
        self.num_heads = cfg.num_attention_heads
        self.num_kv_heads = getattr(cfg, "num_key_value_heads", None) or self.num_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.num_heads
        self.vocab_size = cfg.vocab_size
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        # Head-major ([layer, head, slot, dim]): a row's gathered keys are then one contiguous
        # [slots, dim] matrix per head, which a batched matmul reads as it is. Keys and values
        # share one pool (the first `num_kv_heads` heads are keys), so a layer writes its new
        # tokens with one scatter and reads a batch's rows with one gather, not two each.
        shape = (self.num_layers, 2 * self.num_kv_heads, capacity, self.head_dim)
        self.kv_pool = torch.zeros(shape, dtype=self.dtype, device=self.device)
        self.capacity = capacity
        inner = model.model
        self.layer_types = list(getattr(cfg, "layer_types", None) or [])
        self.rotary_by_type = bool(self.layer_types) and \
            "layer_type" in inspect.signature(inner.rotary_emb.forward).parameters
        self.windows = [getattr(layer.self_attn, "sliding_window", None) for layer in inner.layers]
        self.final_softcap = getattr(cfg, "final_logit_softcapping", None)
        self.share_prefix = share_prefix  # off only to measure what it buys (bench/forward.py)
        pack = pack_weights and can_pack(self.device, self.dtype)
        self._linears = [_layer_linears(layer, pack) for layer in inner.layers]
        head = model.lm_head
        self._lm_head = Linear(head.weight, getattr(head, "bias", None), pack)

    @torch.inference_mode()
    def forward(self, rows: list[Row]) -> torch.Tensor:
        """Log-probs (float32, [sum of len(row.wanted), vocab]) in row order, then `wanted` order."""
        dev = self.device
        B = len(rows)
        n = max(len(r.new_tokens) for r in rows)
        key_lens = [len(r.past_slots) + len(r.new_tokens) for r in rows]
        Lk = max(key_lens)

        shared = self._shared_prefix(rows) if n == 1 and self.share_prefix else None
        # Rows' own key indices and masks are read only by layers that gather every row's keys:
        # with the shared prefix on every layer (no sliding window shorter than the keys) they
        # would be built, a row of Lk slots each, and never read.
        gathers = shared is None or any(w is not None and w < Lk for w in self.windows)

        ids, pos, key_idx, write_flat, write_slots = [], [], [], [], []
        for b, r in enumerate(rows):
            m, p = len(r.new_tokens), len(r.past_slots)
            ids.append(r.new_tokens + [0] * (n - m))
            pos.append(list(range(p, p + m)) + [p + m - 1] * (n - m))
            if gathers:
                key_idx.append(r.past_slots + r.new_slots + [0] * (Lk - p - m))
            write_flat.extend(range(b * n, b * n + m))
            write_slots.extend(r.new_slots)
        ids_t = torch.tensor(ids, device=dev)
        pos_t = torch.tensor(pos, device=dev)
        key_idx_t = self._head_major(torch.tensor(key_idx, device=dev)) if gathers else None
        write_slots_t = torch.tensor(write_slots, device=dev)
        all_written = len(write_flat) == B * n
        write_flat_t = None if all_written else torch.tensor(write_flat, device=dev)

        masks = dict.fromkeys(set(self.windows))
        if gathers:
            # Query at absolute position t may see keys 0..t of its own row (padding keys lie
            # beyond the row's length, so they are excluded by the same comparison).
            key_pos = torch.arange(Lk, device=dev).view(1, 1, Lk)
            mask = (key_pos <= pos_t.unsqueeze(-1)).unsqueeze(1)  # [B,1,n,Lk]
            masks = {None: mask}
            for window in set(self.windows) - {None}:  # a sliding layer sees the last `window` keys
                masks[window] = mask & (key_pos > pos_t.unsqueeze(-1) - window).unsqueeze(1)
            if n == 1:  # decode attention adds the mask as a bias: one op a layer, not a masked copy
                masks = {w: torch.zeros(m.shape, dtype=torch.float32, device=dev).masked_fill_(~m, float("-inf"))
                         .view(1, B, 1, Lk) for w, m in masks.items()}

        inner = self.model.model
        h = inner.embed_tokens(ids_t)
        rotary = {}
        for kind in (set(self.layer_types) if self.rotary_by_type else {None}):
            cos, sin = inner.rotary_emb(h, pos_t, kind) if kind else inner.rotary_emb(h, pos_t)
            rotary[kind] = cos.unsqueeze(2), _signed_sin(sin).unsqueeze(2)  # [B, n, 1, dim]
        for layer_idx, layer in enumerate(inner.layers):
            cos, sin = rotary[self.layer_types[layer_idx] if self.rotary_by_type else None]
            window = self.windows[layer_idx]
            h = self._layer(layer, layer_idx, h, cos, sin, masks[window], key_idx_t, write_flat_t, write_slots_t,
                            shared if window is None or window >= Lk else None)
        h = _norm(inner.norm, h)

        want = [(b, q) for b, r in enumerate(rows) for q in r.wanted]
        picked = h[[b for b, _ in want], [q for _, q in want]]
        logits = self._lm_head(picked)
        if self.final_softcap:
            logits = torch.tanh(logits.float() / self.final_softcap) * self.final_softcap
        return torch.log_softmax(logits, dim=-1, dtype=torch.float32)

    def _head_major(self, slots: torch.Tensor) -> torch.Tensor:
        """Slot indices [B, L] as rows of a layer's pool viewed as [2 * kv heads * slots, dim]:
        [2 * kv heads, B, L], every head's copy of the same slots."""
        heads = torch.arange(2 * self.num_kv_heads, device=slots.device) * self.capacity
        return heads.view(-1, 1, 1) + slots.unsqueeze(0)

    def _shared_prefix(self, rows: list[Row]) -> _SharedPrefix | None:
        if len(rows) < 2:
            return None
        common = os.path.commonprefix([r.past_slots for r in rows])
        if len(common) < MIN_SHARED_PREFIX:
            return None
        L = len(common)
        tails = [r.past_slots[L:] + r.new_slots for r in rows]
        T = max(len(t) for t in tails)
        dev = self.device
        run = common[-1] - common[0] == L - 1 and common == list(range(common[0], common[0] + L))
        return _SharedPrefix(
            start=common[0], length=L, slots=None if run else torch.tensor(common, device=dev),
            tail=self._head_major(torch.tensor([t + [0] * (T - len(t)) for t in tails], device=dev)),
            tail_valid=torch.tensor([[True] * len(t) + [False] * (T - len(t)) for t in tails], device=dev),
        )

    def _split_decode_attention(self, q, pool, shared: _SharedPrefix, scale):
        """`_decode_attention` over shared-prefix keys read once plus each row's own tail:
        the same softmax over the same keys, with one [B*group, L] score matmul for the
        prefix instead of B gathered copies of it, which grow with the prompt (at 32 rows
        on a 420-token prompt the step took 0.7x as long)."""
        B, H, _, d = q.shape
        kv = self.num_kv_heads
        group = H // kv
        L = shared.length
        prefix = pool.narrow(1, shared.start, L) if shared.slots is None else pool.index_select(1, shared.slots)
        k_shared, v_shared = prefix[:kv], prefix[kv:]
        T = shared.tail.shape[-1]
        tails = pool.view(-1, d).index_select(0, shared.tail.reshape(-1)).view(2 * kv, B, T, d)
        k_tail, v_tail = tails[:kv], tails[kv:]
        qg = q.reshape(B, kv, group, d).transpose(0, 1)  # [kv, B, group, d]
        head = torch.matmul(qg.reshape(kv, B * group, d), k_shared.transpose(-1, -2)).view(kv, B, group, L)
        tail = torch.matmul(qg, k_tail.transpose(-1, -2))  # [kv, B, group, T]
        scores = torch.cat((head, tail), dim=-1).float() * scale
        scores[..., L:].masked_fill_(~shared.tail_valid.view(1, B, 1, T), float("-inf"))
        # The two halves' weighted values are summed in float32 and rounded once: in bf16 each
        # half and their sum rounded apart, and the log-probs lay twice as far from a float32
        # forward as the one-matmul path's (`council bench forward`, 420-token prompt).
        probs = torch.softmax(scores, dim=-1)
        out = torch.matmul(probs[..., :L].reshape(kv, B * group, L), v_shared.float()).view(kv, B, group, d)
        out.add_(torch.matmul(probs[..., L:], v_tail.float()))
        return out.to(pool.dtype).transpose(0, 1).reshape(B, H, 1, d)

    def _decode_attention(self, q, keys, values, bias, scale):
        """Attention for one query per row, as two batched matmuls. CPU SDPA's flash kernel
        spent most of a decode step here (a tiled kernel for one query row); the query heads
        that share a K/V head are grouped, so K/V are never repeated. Scores and softmax in
        float32, as the flash kernel accumulates."""
        B, H, _, d = q.shape
        group = H // self.num_kv_heads
        qg = q.reshape(B, self.num_kv_heads, group, d).transpose(0, 1)  # [kv, B, group, d]
        scores = torch.matmul(qg, keys.transpose(-1, -2)).float()  # [kv, B, group, Lk]
        probs = torch.softmax(scores.mul_(scale).add_(bias), dim=-1).to(values.dtype)
        return torch.matmul(probs, values).transpose(0, 1).reshape(B, H, 1, d)

    def _layer(self, layer, idx, h, cos, sin, mask, key_idx, write_flat, write_slots, shared=None):
        """One decoder layer. `mask`: the bool mask [B, 1, n, keys] for prompt rows, the float
        bias [1, B, 1, keys] for decode rows (n == 1)."""
        B, n, _ = h.shape
        attn = layer.self_attn
        x = _norm(layer.input_layernorm, h)
        linears = self._linears[idx]
        H, kv, d = self.num_heads, self.num_kv_heads, self.head_dim
        if linears.qkv is not None and not hasattr(attn, "q_norm"):
            # q and k lie side by side in the joined projection: one rotary pass for both.
            qkv = linears.qkv(x).view(B, n, H + 2 * kv, d)
            qk = _rope(qkv[:, :, : H + kv], cos, sin)
            q, kv_new = qk[:, :, :H], torch.cat((qk[:, :, H:], qkv[:, :, H + kv :]), dim=2)
        else:
            if linears.qkv is not None:
                q, k, v = linears.qkv(x).split(linears.qkv_sizes, dim=-1)
            else:
                q, k, v = attn.q_proj(x), attn.k_proj(x), attn.v_proj(x)
            q, k, v = (t.view(B, n, -1, d) for t in (q, k, v))
            if hasattr(attn, "q_norm"):  # qwen3 and gemma3 normalise q and k per head
                q, k = _norm(attn.q_norm, q), _norm(attn.k_norm, k)
            q, k = _rope(q, cos, sin), _rope(k, cos, sin)
            kv_new = torch.cat((k, v), dim=2)
        q = q.transpose(1, 2)  # [B, heads, n, dim]

        kv_new = kv_new.reshape(B * n, 2 * kv, d)
        if write_flat is not None:
            kv_new = kv_new[write_flat]
        pool = self.kv_pool[idx]  # [2 * kv heads, slots, dim]
        pool.index_copy_(1, write_slots, kv_new.transpose(0, 1))
        scale = getattr(attn, "scaling", d**-0.5)
        if n == 1 and shared is not None:
            out = self._split_decode_attention(q, pool, shared, scale)
            return self._finish_layer(layer, linears, h, out)
        # One index_select over the layer's pool as [heads * slots, dim], by indices built
        # once per forward (`_head_major`): advanced indexing (`pool[:, key_idx]`) took several
        # times as long on CPU, and index_select along the slot axis about twice as long.
        Lk = key_idx.shape[-1]
        rows = pool.view(-1, d).index_select(0, key_idx.reshape(-1)).view(2 * kv, B, Lk, d)
        keys, values = rows[:kv], rows[kv:]
        if n == 1:
            out = self._decode_attention(q, keys, values, mask, scale)
        else:
            out = F.scaled_dot_product_attention(q, keys.transpose(0, 1), values.transpose(0, 1), attn_mask=mask,
                                                 scale=scale, enable_gqa=kv != H)
        return self._finish_layer(layer, linears, h, out)

    def _finish_layer(self, layer, linears: _Layer, h, out):
        """Attention's output [B, heads, n, dim] through o_proj, the residuals and the MLP."""
        B, _, n, _ = out.shape
        out = linears.o(out.transpose(1, 2).reshape(B, n, -1))
        # The residual stream is added to in place: `h` is this forward's own tensor (the
        # embedding lookup's output, then each layer's), and no one reads its old value.
        if hasattr(layer, "pre_feedforward_layernorm"):  # gemma: norms around both blocks
            h.add_(layer.post_attention_layernorm(out))
            return h.add_(layer.post_feedforward_layernorm(_mlp(layer.mlp, linears, layer.pre_feedforward_layernorm(h))))
        h.add_(out)
        return h.add_(_mlp(layer.mlp, linears, _norm(layer.post_attention_layernorm, h)))

"""A prefix trie over token ids whose nodes own KV-cache slots.

Every node is one token at one position; its `slot` indexes the KV pool (one row per layer
in `SlotKVModel`'s tensors) where that token's keys and values live. A sequence's KV cache is
the slots along its path, so sequences that share a prefix share those slots and the prefix
is computed once.

Memory is bounded by the number of slots. When a batch needs more than are free, the least
recently used leaves are evicted (a parent is always at least as recent as its children, so
evicting leaf-first in LRU order never strands a child). Nodes touched by the batch being
planned carry the current `tick` and are never evicted under it.

The trie only manages integers; it never sees tensors except the optional cached
next-token distribution of a node (`logprobs`), kept in a small LRU of its own.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from typing import Sequence


class KVCacheFullError(RuntimeError):
    """A batch needs more slots than the cache can free."""


class TrieNode:
    __slots__ = ("token", "slot", "parent", "children", "depth", "last_used", "logprobs")

    def __init__(self, token: int, slot: int, parent: "TrieNode | None", depth: int, tick: int):
        self.token = token
        self.slot = slot
        self.parent = parent
        self.children: dict[int, TrieNode] = {}
        self.depth = depth
        self.last_used = tick
        self.logprobs = None  # next-token distribution after this node, when cached

    def __lt__(self, other: "TrieNode") -> bool:  # heap order for eviction
        return self.last_used < other.last_used


class KVPrefixTrie:
    def __init__(self, capacity: int, logprob_cache_entries: int = 0):
        if capacity < 1:
            raise ValueError("capacity must be at least 1 slot")
        self.capacity = capacity
        self.root = TrieNode(token=-1, slot=-1, parent=None, depth=0, tick=0)
        self._free = list(range(capacity - 1, -1, -1))  # a stack: low slots first
        self._leaves: set[TrieNode] = set()
        self._tick = 0
        self._pinned = 0  # nodes touched in the current tick
        self._lp_lru: OrderedDict[TrieNode, None] = OrderedDict()
        self._lp_capacity = logprob_cache_entries
        self.evictions = 0

    # -- batch life cycle -------------------------------------------------------------------
    def begin_batch(self) -> None:
        """Start a new tick: nodes touched from now on are pinned until the next one."""
        self._tick += 1
        self._pinned = 0

    @property
    def used(self) -> int:
        return self.capacity - len(self._free)

    def available(self) -> int:
        """Slots a batch can still get: free ones plus every unpinned node."""
        return len(self._free) + (self.used - self._pinned)

    # -- lookup ---------------------------------------------------------------------------
    def match(self, tokens: Sequence[int], start: TrieNode | None = None) -> TrieNode:
        """Deepest node along `tokens` (from `start`, which must lie on their path); pins the path."""
        node = start or self.root
        children = node.children
        for tok in tokens[node.depth :]:
            child = children.get(tok)
            if child is None:
                break
            node = child
            children = node.children
        self._touch(node)
        return node

    def _touch(self, node: TrieNode) -> None:
        tick = self._tick
        while node is not self.root and node.last_used != tick:
            node.last_used = tick
            self._pinned += 1
            node = node.parent

    @staticmethod
    def path_slots(node: TrieNode) -> list[int]:
        slots = [0] * node.depth
        while node.parent is not None:
            slots[node.depth - 1] = node.slot
            node = node.parent
        return slots

    # -- growth and eviction ----------------------------------------------------------------
    def extend(self, node: TrieNode, tokens: Sequence[int]) -> list[TrieNode]:
        """Add `tokens` below `node` (none of them may exist yet); returns the new nodes."""
        if len(tokens) > len(self._free):
            self._evict(len(tokens) - len(self._free))
        if node.parent is not None and not node.children:
            self._leaves.discard(node)
        created = []
        for tok in tokens:
            child = TrieNode(tok, self._free.pop(), node, node.depth + 1, self._tick)
            node.children[tok] = child
            created.append(child)
            node = child
        self._pinned += len(created)
        if created:
            self._leaves.add(created[-1])
        return created

    def _evict(self, need: int) -> None:
        # Free a little more than asked so that eviction is not paid on every batch.
        target = min(need + max(1, self.capacity // 64), self.used - self._pinned)
        if target < need:
            raise KVCacheFullError(
                f"need {need} more KV slots but only {self.used - self._pinned} can be evicted"
            )
        heap = [leaf for leaf in self._leaves if leaf.last_used < self._tick]
        heapq.heapify(heap)
        freed = 0
        while freed < target and heap:
            leaf = heapq.heappop(heap)
            parent = leaf.parent
            del parent.children[leaf.token]
            self._leaves.discard(leaf)
            self._lp_lru.pop(leaf, None)
            leaf.logprobs = None
            self._free.append(leaf.slot)
            freed += 1
            if parent.parent is not None and not parent.children:
                self._leaves.add(parent)
                if parent.last_used < self._tick:
                    heapq.heappush(heap, parent)
        self.evictions += freed
        if freed < need:  # cannot happen while the pin accounting is right
            raise KVCacheFullError(f"evicted {freed} of {need} needed KV slots")

    # -- next-token distributions -------------------------------------------------------
    def cached_logprobs(self, node: TrieNode):
        if node.logprobs is not None:
            self._lp_lru.move_to_end(node)
        return node.logprobs

    def store_logprobs(self, node: TrieNode, logprobs) -> None:
        if self._lp_capacity <= 0 or node is self.root:
            return
        node.logprobs = logprobs
        self._lp_lru[node] = None
        self._lp_lru.move_to_end(node)
        while len(self._lp_lru) > self._lp_capacity:
            old, _ = self._lp_lru.popitem(last=False)
            old.logprobs = None

import pytest

from actors.engines.kv_trie import KVCacheFullError, KVPrefixTrie


def add(trie, tokens):
    trie.begin_batch()
    node = trie.match(tokens)
    trie.extend(node, tokens[node.depth :])
    return trie.match(tokens)


def test_shared_prefix_uses_the_same_slots():
    trie = KVPrefixTrie(capacity=32)
    a = add(trie, [1, 2, 3, 4])
    b = add(trie, [1, 2, 9])
    pa, pb = trie.path_slots(a), trie.path_slots(b)
    assert pa[:2] == pb[:2] and pa[2] != pb[2]
    assert trie.used == 5  # 1,2 shared; 3,4 and 9 own


def test_lru_leaves_are_evicted_first_and_parents_follow():
    trie = KVPrefixTrie(capacity=6)
    add(trie, [1, 2, 3])  # oldest
    add(trie, [7, 8])
    add(trie, [1, 2, 5])  # touches 1,2 again: only leaf 3 is older than 7,8
    # 1 free slot; adding 2 tokens evicts the LRU leaf ([...3]) and nothing that is newer.
    trie.begin_batch()
    node = trie.match([4, 4])
    trie.extend(node, [4, 4])
    trie.begin_batch()
    assert trie.match([1, 2, 5]).depth == 3
    assert trie.match([1, 2, 3]).depth == 2
    assert trie.evictions >= 1


def test_pinned_nodes_survive_and_overflow_is_an_error():
    trie = KVPrefixTrie(capacity=4)
    trie.begin_batch()
    node = trie.match([1, 2, 3])
    trie.extend(node, [1, 2, 3])
    # Same batch: the three new nodes are pinned, so only one slot can be had.
    assert trie.available() == 1
    with pytest.raises(KVCacheFullError):
        trie.extend(trie.match([5, 6]), [5, 6])


def test_logprob_cache_is_bounded_and_dropped_with_the_node():
    trie = KVPrefixTrie(capacity=8, logprob_cache_entries=2)
    nodes = [add(trie, [i]) for i in range(3)]
    for i, n in enumerate(nodes):
        trie.store_logprobs(n, f"lp{i}")
    assert trie.cached_logprobs(nodes[0]) is None  # pushed out by the bound
    assert trie.cached_logprobs(nodes[2]) == "lp2"
    # Fill the cache so node [1] is evicted: its distribution must go with it.
    for t in range(10, 17):
        add(trie, [t])
    assert nodes[1].logprobs is None

"""A corpus of hostile inference programs: each a valid program apart from its attack.

Used by tests/test_attacks.py, which runs every one through the service under one key while
another key's requests run beside them. Each entry: a category, a name, the attack (code put
into `__init__` and/or `step()` of an otherwise ordinary program), and what must come of it:

- "fails": the attacker's task fails as a client error whose message matches `why`;
- "runs":  the attack is harmless by construction (it can only touch its own worker) and the
           task may finish; the test still checks that nothing leaked or changed elsewhere.

`{path}` in an attack is replaced by a file path the test checks afterwards: it must not
exist. `MARK` is what a tampering attack tries to put into other users' answers.
"""

from __future__ import annotations

from dataclasses import dataclass

MARK = "PWNED-BY-ATTACKER"

TEMPLATE = '''
class Program(Model):
    def __init__(self, lm, prompt):
        super().__init__()
        self.context = LMContext(lm, prompt, chat=False)
        self.n = 0
{init}

    async def step(self):
{step}
        await self.sample(self.context.next_token())
        self.n = self.n + 1
        if self.n >= 3:
            self.finish()
'''


@dataclass(frozen=True)
class Attack:
    category: str
    name: str
    step: str = ""
    init: str = ""
    outcome: str = "fails"  # or "runs"
    why: str = ""  # regex the failure message must match (case-insensitive)
    extra: str = ""  # module-level code after the class

    def source(self, path: str) -> str:
        def indent(code: str) -> str:
            return "\n".join("        " + line for line in code.strip().splitlines()) if code.strip() else ""

        body = TEMPLATE.format(init=indent(self.init.replace("{path}", path)),
                               step=indent(self.step.replace("{path}", path)) or "        pass")
        return body + "\n" + self.extra.replace("{path}", path)


V = "self.context.lm.vocab"
ATTACKS = [
    # -- file I/O on the replica host -------------------------------------------------------
    Attack("files", "mask_tofile", step=f"{V}.max_chars(3).tofile('{{path}}')", why="has no attribute 'tofile'"),
    Attack("files", "mask_dump", step=f"{V}.eos().dump('{{path}}')", why="has no attribute 'dump'"),
    Attack("files", "combined_mask_tofile", step=f"(~{V}.eos() & {V}.punctuation()).tofile('{{path}}')",
           why="has no attribute 'tofile'"),
    Attack("files", "categorical_array_tofile",
           step="LogCategorical([1, 2], [0.0, 0.0]).logprobs.tofile('{path}')", why="has no attribute 'logprobs'"),
    Attack("files", "float_tofile", step="logsumexp([1.0, 2.0]).tofile('{path}')", why="has no attribute 'tofile'"),
    Attack("files", "open_builtin", step="open('{path}', 'w').write('x')", why="'open' is not available"),
    Attack("files", "import_os", extra="import os\nos.system('touch {path}')", why="imports are not allowed"),
    Attack("files", "dunder_builtins", step="self.step.__globals__['__builtins__']['open']('{path}', 'w')",
           why="names starting with '_'|not available"),
    Attack("files", "mask_array_attribute", step=f"{V}.eos()._bits.tofile('{{path}}')", why="starting with '_'"),
    Attack("files", "vocab_strings_mutation", step=f"{V}.strings[0] = '{{path}}'",
           why="does not support item assignment"),
    # -- secrets: other requests' prompts, the host ---------------------------------------
    Attack("secrets", "wrap_encode_chat",
           init="self.context.lm.encode_chat = lambda text: [1]", why="only on their own objects"),
    Attack("secrets", "chat_cache", step="raise ValueError(str(self.context.lm._chat))", why="starting with '_'"),
    Attack("secrets", "frame_walk", step="raise ValueError(str(self.step.cr_frame))", why="not available"),
    Attack("secrets", "format_walk", step="raise ValueError('{0.context.lm}'.format(self))", why="not available"),
    Attack("secrets", "verifier_cache", step="raise ValueError(str(satisfies.__globals__))", why="starting with '_'"),
    Attack("secrets", "class_dict", step="raise ValueError(str(vars(LMContext)))", why="'vars' is not available"),
    Attack("secrets", "own_context_only", outcome="runs",
           step="self.seen = self.context.lm.decode(self.context.tokens)\n"
                "self.chat = self.context.lm.encode_chat('repeat the other user prompt')"),
    # -- tampering with what other tenants get ------------------------------------------
    Attack("tamper", "replace_decode", init=f"self.context.lm.decode = lambda ids: '{MARK}'",
           why="only on their own objects"),
    Attack("tamper", "class_text_property", extra=f"LMContext.text = '{MARK}'", why="only on their own objects"),
    Attack("tamper", "model_check_always_true", extra="Model.check = lambda self, text: True",
           why="only on their own objects"),
    Attack("tamper", "context_lm_swap", step="self.context.lm = None", why="only on their own objects"),
    Attack("tamper", "delete_method", extra="del LMContext.next_token", why="only on their own objects"),
    Attack("tamper", "vocab_strings_swap", step=f"{V}.strings = ['{MARK}'] * 49152",
           why="only on their own objects"),
    Attack("tamper", "mask_flip", step=f"m = {V}.max_chars(3)\nm.bits = None", why="only on their own objects"),
    Attack("tamper", "mask_writeable_flag", step=f"{V}.max_chars(3).flags.writeable = True",
           why="has no attribute 'flags'"),
    Attack("tamper", "cache_clear", outcome="runs", step=f"{V}.max_chars.cache_clear()"),
    Attack("tamper", "rebind_api_names", outcome="runs", extra=f"satisfies = lambda text, spec: '{MARK}'"),
    Attack("tamper", "subclass_api", outcome="runs",
           extra=f"class Loud(LMContext):\n    def hint(self, text):\n        return '{MARK}'"),
    # -- budget evasion -------------------------------------------------------------------
    Attack("budget", "lambda_calls", step="f = lambda x: x\nn = len(list(map(f, range(10**6)))) + "
           "len(list(map(f, range(10**6)))) + len(list(map(f, range(10**6))))", why="operation budget"),
    Attack("budget", "big_join", step="s = 'a' * 10**6\nt = s.join([s] * 400)", why="memory budget"),
    Attack("budget", "memory_growth", step="self.junk = [list(range(10**6)) for i in range(400)]",
           why="memory budget"),
    Attack("budget", "bigint_squaring", step="x = 7\nfor i in range(40):\n    x = x * x", why="integer product"),
    Attack("budget", "bigint_power", step="x = 7 ** (10 ** 7)", why="integer power"),
    Attack("budget", "endless_loop", step="while True:\n    pass", why="operation budget"),
    Attack("budget", "blocking_builtin",
           step="x = [len(sorted(range(10**5), key=str)) for i in range(10**4)]", why="time limit"),
    Attack("budget", "endless_str", step="self.finish()",
           extra="\n".join(["", "    def output_text(self):", "        while True:", "            pass"]),
           why="operation budget"),
    Attack("budget", "endless_check", step="self.finish()",
           extra="\n".join(["", "    def check(self, text):", "        n = 0", "        while True:",
                            "            n = n + 1"]), why="operation budget"),
    Attack("budget", "recursion", step="self.down(0)",
           extra="\n".join(["", "    def down(self, n):", "        return self.down(n + 1)"]), why="recursion"),
    # -- denial of service -------------------------------------------------------------------
    Attack("dos", "huge_context", step="self.context.tokens.extend([5] * 900_000)", why="token|sequence|longer|context"),
    Attack("dos", "bad_token_id", step="self.context.tokens.append(10**9)", why="token ids must lie"),
    Attack("dos", "junk_token", step="self.context.tokens.append('x')", why="invalid literal|int|token ids"),
    Attack("dos", "huge_text", step="self.finish()",
           extra="\n".join(["", "    def output_text(self):", "        return 'x' * 900_000"]),
           why="text is over"),
    Attack("dos", "mask_from_bad_ids", step=f"m = {V}.from_ids([-5, 10**9])", why="token ids must lie"),
    # -- state bombs -----------------------------------------------------------------------
    Attack("state", "deep_nesting", step="x = []\nfor i in range(2000):\n    x = [x]\nself.deep = x",
           why="nested over"),
    Attack("state", "wide_state", step="self.wide = list(range(900_000))", why="over 200000 values"),
    Attack("state", "self_reference", step="self.me = self", why="holds a Program"),
    Attack("state", "cycle", step="a = []\na.append(a)\nself.a = a", why="nested over"),
    Attack("state", "function_in_state", step="self.f = lambda: 1", why="holds a function"),
    Attack("state", "generator_in_state", step="self.g = (i for i in range(3))", why="holds a generator"),
    Attack("state", "class_in_state", step="self.k = Model", why="holds a type"),
    Attack("state", "big_string_state", step="self.s = 'y' * 999_999\nself.t = [self.s] * 40",
           why="over .* characters|over .* MB"),
]

# ruff: noqa: F821  (Model, LMContext, SPEC… are provided by the sandbox namespace)
# The library planner's program for structured output (a JSON Schema, any JSON object, a
# regular expression, a choice, a Lark grammar). The planner puts `SPEC = {...}` above this
# text: SPEC["grammar"] holds the arguments of `LMContext.grammar`. Each step is one token:
# the grammar's mask restricts it and the mass the mask kept goes into the weight, so
# resampling prefers the particles the follower itself finds likely *as a whole* (a plain
# masked decoder is forced down paths it would never take and has no way back). EOS is
# allowed only where the text is complete, so a finished particle is always valid.


class Program(Model):
    def __init__(self, lm, prompt):
        super().__init__()
        self.context = LMContext(lm, prompt, temp=TEMP)
        self.grammar = SPEC["grammar"]

    def immutable_properties(self):
        return {"grammar"}

    async def step(self):
        await self.observe(self.context.grammar(**self.grammar), True)
        token = await self.sample(self.context.next_token())
        if token.is_eos:
            self.finish()
        elif self.context.token_count >= SPEC["max_tokens"]:
            self.condition(False)  # out of room before the text was complete: not an answer

    def check(self, text):
        return matches(text, **self.grammar)

"""Programs the offline planner writes. For now: the plain-generation program that answers
any request the planner does not recognise (the constraint templates come with the library
planner issue)."""

from __future__ import annotations

GENERIC_PROGRAM = '''\
class Program(Model):
    """Plain generation: the follower's own distribution, up to {max_tokens} tokens."""

    def __init__(self, lm, prompt):
        super().__init__()
        self.context = LMContext(lm, prompt, chat={chat})

    async def step(self):
        token = await self.sample(self.context.next_token())
        if token.is_eos or self.context.token_count >= {max_tokens}:
            self.finish()
'''


def generic_program(max_tokens: int = 64, chat: bool = True) -> str:
    """Source of the plain-generation program (through the sandbox like any other).
    `chat=False` gives the prompt to the follower as raw text to continue."""
    return GENERIC_PROGRAM.format(max_tokens=int(max_tokens), chat=bool(chat))

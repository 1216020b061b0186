# Request: "Write a sentence of exactly ten words whose fourth word is 'river'."
class Program(Model):
    def __init__(self, lm, prompt):
        super().__init__()
        self.context = LMContext(lm, "Write one sentence about a river.", temp=0.7)
        self.count = 0

    async def step(self):                          # one word per step
        ctx = self.context
        vocab = ctx.lm.vocab
        if self.count == 3:
            for t in ctx.lm.encode(" river"):      # force the word, scoring its likelihood
                await self.observe(ctx.next_token(), t)
        else:
            first = vocab.capital_word_starts() if self.count == 0 else vocab.alpha_word_starts()
            await self.observe(ctx.mask_dist(first), True)
            await self.sample(ctx.next_token())
            for _ in range(4):                     # the follower decides where the word ends
                if not await self.sample(ctx.mask_dist(vocab.alpha_continuations())):
                    break
                await self.sample(ctx.next_token())
        # a word ends here: the next token may not continue it
        await self.observe(ctx.mask_dist(vocab.alpha_continuations()), False)
        self.count = self.count + 1
        if self.count == 10:
            await self.observe(ctx.next_token(), ctx.lm.encode(".")[0])
            self.finish()

    def check(self, text):
        return satisfies(text, {"words": {"exactly": 10}, "word_positions": {"4": "river"}})

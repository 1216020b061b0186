# Request: "Write 2 sentences about winter without the words 'cold' or 'snow'; each sentence
# at most 12 words."
BANNED = ["cold", "snow", "Cold", "Snow"]


class Program(Model):
    def __init__(self, lm, prompt):
        super().__init__()
        self.context = LMContext(lm, "Write two short sentences about winter.", temp=0.7)
        self.period = lm.encode(".")[0]
        self.sentence = 0
        self.words = 0

    async def step(self):
        ctx = self.context
        vocab = ctx.lm.vocab
        start = vocab.capital_word_starts() if self.words == 0 else vocab.alpha_word_starts()
        await self.observe(ctx.mask_dist(start & vocab.banned_words(BANNED)), True)
        word = str(await self.sample(ctx.next_token())).strip()
        while len(word) < 14:
            if not await self.sample(ctx.mask_dist(vocab.alpha_continuations())):
                break
            word = word + str(await self.sample(ctx.next_token()))
        self.condition(word.lower() not in ("cold", "snow"))
        self.words = self.words + 1
        ends = self.words >= 12
        if self.words >= 4 and not ends:
            ends = await self.sample(ctx.mask_dist(vocab.from_ids([self.period])))
        if ends:
            await self.observe(ctx.next_token(), self.period)
            self.sentence = self.sentence + 1
            self.words = 0
            if self.sentence == 2:
                self.finish()

    def check(self, text):
        return satisfies(text, {"sentences": {"exactly": 2}, "exclude": ["cold", "snow"],
                                "words_per_sentence": {"at_most": 12}})

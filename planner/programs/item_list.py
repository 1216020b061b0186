# ruff: noqa: F821  (Model, LMContext, SPEC… are provided by the sandbox namespace)
# The library planner's program for item lists with a total ("4 things for a picnic, $50 in
# all"). The planner puts `SPEC = {...}` above this text. One step writes one line,
#     - Bread and cheese: $12
# the item's name in the follower's words, then an amount. Amounts are digits under a mask
# that keeps every later item at least 1, and the last amount is what is left, so the total
# is exact by construction; every forced token is observed, so SMC keeps the lists whose
# numbers the follower finds plausible (not "$1" for a tent and "$45" for a napkin).

MAX_NAME_WORDS = 4
PROPOSE_TOPIC = 0.2   # chance a name's word is proposed from the topic ("Tent" -> "Camping tent")
TOPIC_COST = 3.0      # nats off a finished list that never mentions its topic


class Program(Model):
    def __init__(self, lm, prompt):
        super().__init__()
        self.context = LMContext(lm, prompt, temp=TEMP)
        self.spec = SPEC
        self.newline = lm.encode("\n")[0]
        self.colon = lm.encode(":")[0]
        self.dash = lm.encode("-")[0]
        self.price = lm.encode(": " + SPEC["currency"])[1:]  # the currency sign after ": "
        self.digits = [lm.encode(str(d))[0] for d in range(10)]
        self.item = 0
        # The amounts' room: the total itself, or one less when the total is a bound to stay under.
        self.left = int(SPEC["total"]) - (1 if SPEC["bound"] == "under" else 0)
        self.bullet = [lm.encode(SPEC["bullet"])[0]] if SPEC["bullet"] == "-" else []
        self.on_topic = not SPEC["topic_words"]

    def immutable_properties(self):
        return {"spec", "digits"}

    async def step(self):
        ctx = self.context
        vocab = ctx.lm.vocab
        if self.item > 0:
            await self.observe(ctx.next_token(), self.newline)
        if self.spec["bullet"] == "1.":
            for token in ctx.lm.encode(f"{self.item + 1}."):
                await self.observe(ctx.next_token(), token)
        for token in self.bullet:
            await self.observe(ctx.next_token(), token)
        await self.name(first=not self.bullet and self.spec["bullet"] != "1.")
        await self.observe(ctx.next_token(), self.colon)
        for token in self.price:
            await self.observe(ctx.next_token(), token)
        items_after = self.spec["items"] - self.item - 1
        if items_after == 0 and self.spec["bound"] != "exactly":
            await self.amount(self.left)  # any amount that keeps the total in bounds
            self.done()
            return
        if items_after == 0:
            for ch in str(self.left):  # the last amount is what is left
                await self.observe(ctx.next_token(), self.digits[int(ch)])
            await self.observe(ctx.mask_dist(vocab.from_ids(self.digits)), False)
            self.done()
            return
        amount = await self.amount(self.left - items_after)
        self.left = self.left - amount
        self.item = self.item + 1

    async def name(self, first=False):
        """One to MAX_NAME_WORDS words, ended by the follower's own choice of a colon (a line
        with no bullet starts its first word without a space)."""
        ctx = self.context
        vocab = ctx.lm.vocab
        for n in range(MAX_NAME_WORDS):
            if not self.on_topic and await self.topic_word(first and n == 0):
                if await self.sample(ctx.mask_dist(vocab.from_ids([self.colon]))):
                    return
                continue
            starts = vocab.capital_word_starts() & vocab.max_chars(12) if first and n == 0 else \
                vocab.alpha_word_starts() & vocab.max_chars(13)
            if first and n == 0:
                starts = starts - vocab.word_starts()
            await self.observe(ctx.mask_dist(starts), True)
            word = str(await self.sample(ctx.next_token()))
            while len(word) < 14:
                more = await self.sample(ctx.mask_dist(vocab.alpha_continuations()))
                if not more:
                    break
                word = word + str(await self.sample(ctx.next_token()))
            if n == MAX_NAME_WORDS - 1:
                return
            if await self.sample(ctx.mask_dist(vocab.from_ids([self.colon]))):
                return

    async def topic_word(self, first):
        """Maybe (PROPOSE_TOPIC, importance-corrected) one of the topic's words as this word."""
        words = self.spec["topic_words"]
        if not await self.sample(Bernoulli(PROPOSE_TOPIC)):
            self.score(-math.log(1 - PROPOSE_TOPIC))
            return False
        pick = await self.sample(LogCategorical(list(range(len(words))), [0.0] * len(words)))
        self.score(-math.log(PROPOSE_TOPIC / len(words)))
        word = words[pick]
        word = word[:1].upper() + word[1:] if first else " " + word.lower()
        for token in self.context.lm.encode(word):
            await self.observe(self.context.next_token(), token)
        await self.observe(self.context.mask_dist(self.context.lm.vocab.alpha_continuations()), False)
        self.on_topic = True
        return True

    def done(self):
        if not self.on_topic:
            said = self.context.text.lower()
            if not any(w.lower()[:5] in said for w in self.spec["topic_words"]):
                self.score(-TOPIC_COST)
        self.finish()

    async def amount(self, most):
        """A whole amount from 1 to `most`, digit by digit under masks that keep it in range."""
        ctx = self.context
        vocab = ctx.lm.vocab
        value = 0
        while True:
            allowed = [d for d in range(10) if (value > 0 or d > 0) and value * 10 + d <= most]
            if value > 0:
                if value * 10 > most:
                    await self.observe(ctx.mask_dist(vocab.from_ids(self.digits)), False)
                    return value
                go_on = await self.sample(ctx.mask_dist(vocab.from_ids([self.digits[d] for d in allowed])))
                if not go_on:
                    await self.observe(ctx.mask_dist(vocab.from_ids(self.digits)), False)
                    return value
            else:
                await self.observe(ctx.mask_dist(vocab.from_ids([self.digits[d] for d in allowed])), True)
            token = await self.sample(ctx.next_token())
            value = value * 10 + self.digits.index(token.token_id)

    def check(self, text):
        return satisfies(text, self.spec["constraints"])

# ruff: noqa: F821  (Model, LMContext, SPEC… are provided by the sandbox namespace)
# The library planner's program for constrained sentences and paragraphs. The planner puts a
# line `SPEC = {...}` (a ConstraintSpec as plain data) above this text; the result runs in the
# sandbox like any planner's program, so it uses only the program API.
#
# One step writes one word. Hard constraints are token masks (word lengths, banned words,
# sentence-initial capitals) or forced words (given positions, first and last words, words to
# include), and every mask and forced token is *observed*, so a particle's weight is the
# likelihood the follower gives to the constrained text: SMC keeps the particles for which the
# constraints read naturally (a period where a sentence can end, "river" where a river fits).


class Program(Model):
    def __init__(self, lm, prompt):
        super().__init__()
        self.context = LMContext(lm, prompt, temp=TEMP)
        self.spec = SPEC
        self.period = lm.encode(".")[0]
        self.comma = lm.encode(",")[0]
        self.sentence = 0          # index of the sentence being written
        self.words = []            # words of the current sentence
        self.total = 0             # words written so far
        self.plan = []             # per sentence: [low, high] word counts
        self.slots = {}            # global word position -> word to force there
        self.exclude = [w.lower() for w in SPEC["exclude"]]

    def immutable_properties(self):
        return {"spec"}

    async def start(self):
        spec = self.spec
        n = spec["n_sentences"]
        for i in range(n):
            low, high = spec["lengths"][i]
            if spec["last_words"] or spec["include"]:
                # A planned length: the forced words need known slots.
                length = await self.sample(LogCategorical(list(range(low, high + 1)),
                                                          [0.0] * (high - low + 1)))
                low, high = length, length
            self.plan.append([low, high])
        for pos, word in spec["positions"].items():
            self.slots[int(pos)] = word
        if spec["include"]:
            first_len = self.plan[0][0]
            free = [p for p in range(2, first_len) if p not in self.slots]
            chosen = []
            for word in spec["include"]:
                if not free:
                    break
                pick = await self.sample(LogCategorical(free, [0.0] * len(free)))
                free.remove(pick)
                chosen.append(pick)
            for pos, word in zip(sorted(chosen), spec["include"]):
                self.slots[pos] = word

    async def step(self):
        spec = self.spec
        if spec["chars"] is not None:
            await self.step_by_characters()
            return
        low, high = self.plan[self.sentence]
        k = len(self.words)
        position = self.total + 1
        if k == high - 1 and spec["last_words"]:
            await self.force(spec["last_words"][self.sentence], k == 0)
        elif k == 0 and spec["first_word"]:
            await self.force(spec["first_word"], True)
        elif position in self.slots:
            await self.force(self.slots[position], k == 0)
        else:
            await self.free_word(k == 0)
        k = len(self.words)
        if k >= high:
            await self.end_sentence()
            return
        if k >= low and (self.total + 1) not in self.slots:
            ends = await self.sample(self.context.mask_dist(self.context.lm.vocab.from_ids([self.period])))
            if ends:
                await self.end_sentence()
                return
        comma = await self.sample(self.context.mask_dist(self.context.lm.vocab.from_ids([self.comma])))
        if comma:
            await self.sample(self.context.next_token())

    async def step_by_characters(self):
        """Exact character count. Free words while there is room; in the last 15 characters
        every word must still leave a way to end exactly: a word, then the period on the
        last character (a particle left with no way to end is dropped, and SMC refills)."""
        target = self.spec["chars"]
        left = target - len(self.context.text.strip())
        first = self.total == 0
        room = left - 1 if first else left - 2  # letters if this word is the last one
        if room < 1:
            self.condition(False)
            return
        if left > 15:
            await self.free_word(first, min(12, left - 5))
            return
        if room <= 3:
            await self.exact_word(room, first)
        else:
            await self.free_word(first, room)
        left = target - len(self.context.text.strip())
        if left == 1:
            await self.end_sentence()
            self.finish()
        elif left < 3:  # no room for " x." any more
            self.condition(False)

    # -- words -------------------------------------------------------------------------
    async def free_word(self, first, max_len=None):
        ctx = self.context
        vocab = ctx.lm.vocab
        limit = self.spec["max_word_chars"] or 14
        if max_len is not None:
            limit = min(limit, max_len)
        start = vocab.capital_word_starts() if first else vocab.alpha_word_starts()
        start = start & vocab.max_chars(limit + 1)
        if self.exclude:
            start = start & vocab.banned_words(self.exclude)
        await self.observe(ctx.mask_dist(start), True)
        token = await self.sample(ctx.next_token())
        word = str(token).strip()
        while len(word) < limit:
            more = vocab.alpha_continuations() & vocab.token_length(1, limit - len(word))
            go_on = await self.sample(ctx.mask_dist(more))
            if not go_on:
                break
            word = word + str(await self.sample(ctx.next_token()))
        if len(word) >= limit:
            await self.observe(ctx.mask_dist(vocab.alpha_continuations()), False)
        self.condition(word.lower() not in self.exclude)
        self.words.append(word)
        self.total = self.total + 1

    async def force(self, word, first):
        ctx = self.context
        text = word if (first and ctx.token_count == 0) else " " + word
        for token in ctx.lm.encode(text):
            await self.observe(ctx.next_token(), token)
        # The forced word must end here: the next token may not continue it.
        await self.observe(ctx.mask_dist(ctx.lm.vocab.alpha_continuations()), False)
        self.words.append(word)
        self.total = self.total + 1

    async def end_sentence(self):
        await self.observe(self.context.next_token(), self.period)
        self.sentence = self.sentence + 1
        self.words = []
        if self.sentence >= len(self.plan):
            self.finish()

    async def exact_word(self, letters, first):
        """A one-token word of exactly `letters` letters (" a", " in", " the")."""
        ctx = self.context
        vocab = ctx.lm.vocab
        start = vocab.capital_word_starts() if first else vocab.alpha_word_starts()
        start = start & vocab.token_length(letters, letters)
        if self.exclude:
            start = start & vocab.banned_words(self.exclude)
        await self.observe(ctx.mask_dist(start), True)
        word = str(await self.sample(ctx.next_token())).strip()
        await self.observe(ctx.mask_dist(vocab.alpha_continuations()), False)
        self.condition(word.lower() not in self.exclude)
        self.words.append(word)
        self.total = self.total + 1

    def check(self, text):
        return satisfies(text, self.spec["constraints"])

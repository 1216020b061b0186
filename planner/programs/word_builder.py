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

PROPOSE_INCLUDE = 0.25   # chance a free step proposes a word still to include
INCLUDE_COST = 4.0       # nats of twist per word still to include
REPEAT_COST = 3.0        # nats per repeated word pair ("and a, and a"): small LMs loop
TOPIC_COST = 3.0         # nats off a finished text that mentions none of the topic's words
TOPIC_TWIST = 2.0        # nats of twist until the text mentions its topic (SMC stays on it early)
PROPOSE_TOPIC = 0.1      # chance a free step proposes one of the topic's words until one is in
PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ "


def unit(word):
    """A word as COLLIE compares it: lower-cased, surrounding punctuation removed."""
    return word.lower().strip(PUNCT)


class Program(Model):
    def __init__(self, lm, prompt):
        super().__init__()
        self.context = LMContext(lm, prompt, temp=TEMP)
        self.spec = SPEC
        self.period = lm.encode(".")[0]
        self.comma = lm.encode(",")[0]
        self.newline = lm.encode("\n")[0]
        # A sentence ends with a period; a line (poem, acrostic) with a line break.
        self.stop = self.newline if SPEC["lines"] else self.period
        self.sentence = 0          # index of the sentence being written
        self.words = []            # words of the current sentence
        self.total = 0             # words written so far
        self.plan = []             # per sentence: [low, high] word counts
        self.slots = {}            # global word position -> word to force there
        self.exclude = [w.lower() for w in SPEC["exclude"]]
        self.syllables = 0         # syllables of the current line so far
        self.ends = []             # each finished line's (sentence's) last word

    def immutable_properties(self):
        return {"spec"}

    async def start(self):
        spec = self.spec
        n = spec["n_sentences"]
        for i in range(n):
            low, high = spec["lengths"][i]
            fixed_end = (spec["last_words"] and spec["last_words"][i]) or self.rhymes_back(i) is not None
            if fixed_end and not spec["syllables"]:
                # A planned length: the last word needs a known slot.
                length = await self.sample(LogCategorical(list(range(low, high + 1)),
                                                          [0.0] * (high - low + 1)))
                low, high = length, length
            self.plan.append([low, high])
        for pos, word in spec["positions"].items():
            self.slots[int(pos)] = word
        # Words to include have no slot: the follower may write one itself, or a step may
        # propose one (see `free_step`). Until all are in, each still owed costs INCLUDE_COST
        # of twist, so a particle that placed a word where it reads well is not outweighed
        # by one that has merely put the work off.
        self.todo = list(spec["include"])
        self.twist(-INCLUDE_COST * len(self.todo))
        self.on_topic = not spec["topic_words"]
        if not self.on_topic:
            self.twist(-TOPIC_TWIST)
        self.history = []          # every word written, lower-cased (for repetition)

    def rhymes_back(self, i):
        """The earlier line whose end line i must rhyme with (None: free)."""
        scheme = self.spec["rhyme"]
        if not scheme or i >= len(scheme):
            return None
        j = scheme.find(scheme[i])
        return j if j < i else None

    def last_word(self):
        words = self.spec["last_words"]
        return words[self.sentence] if words else None

    async def step(self):
        spec = self.spec
        if spec["chars"] is not None:
            await self.step_by_characters()
            return
        if spec["syllables"]:
            await self.step_by_syllables()
            return
        low, high = self.plan[self.sentence]
        k = len(self.words)
        position = self.total + 1
        first = spec["first_words"][self.sentence] if spec["first_words"] else None
        if k == high - 1 and self.last_word():
            await self.force(self.last_word(), k == 0)
        elif k == high - 1 and self.rhymes_back(self.sentence) is not None:
            await self.rhyme_word(k == 0)
        elif k == 0 and first:
            await self.force(first, True)
        elif position in self.slots:
            await self.force(self.slots[position], k == 0)
        else:
            await self.free_step(k == 0)
        k = len(self.words)
        if k >= high:
            await self.end_sentence()
            return
        if spec["max_chars"] is not None and len(self.context.text.strip()) + 4 > spec["max_chars"] \
                and k >= 1 and self.sentence == len(self.plan) - 1 and not self.todo:
            await self.end_sentence()  # no room for another word and the period
            return
        last = self.sentence == len(self.plan) - 1
        if k >= low and (self.total + 1) not in self.slots and not (last and self.todo):
            ends = await self.sample(self.context.mask_dist(self.context.lm.vocab.from_ids([self.stop])))
            if ends:
                await self.end_sentence()
                return
        comma = await self.sample(self.context.mask_dist(self.context.lm.vocab.from_ids([self.comma])))
        if comma:
            await self.sample(self.context.next_token())

    async def step_by_syllables(self):
        """A line ends when its syllables reach the line's count (a word that overshoots is
        dropped by SMC). A line that must rhyme ends on a rhyme with exactly the syllables left."""
        target = self.spec["syllables"][self.sentence]
        left = target - self.syllables
        k = len(self.words)
        first = self.spec["first_words"][self.sentence] if self.spec["first_words"] else None
        if self.rhymes_back(self.sentence) is not None and left <= 3:
            await self.rhyme_word(k == 0, left)
        elif self.last_word() and left <= syllables(self.last_word()):
            await self.force(self.last_word(), k == 0)
        elif k == 0 and first:
            await self.force(first, True)
        else:
            await self.free_step(k == 0, max_syllables=left)
        self.syllables = self.syllables + syllables(self.words[-1])
        if self.syllables > target:
            self.condition(False)
        elif self.syllables == target:
            if self.last_word():
                self.condition(unit(self.words[-1]) == unit(self.last_word()))
            await self.end_sentence()
        else:
            comma = await self.sample(self.context.mask_dist(self.context.lm.vocab.from_ids([self.comma])))
            if comma:
                await self.sample(self.context.next_token())

    async def rhyme_word(self, first, syllable_count=None):
        """A word rhyming with the end of the line this one answers, chosen uniformly among the
        dictionary's rhymes (with that many syllables, if given) and forced: the importance
        weight is the follower's likelihood of it there, times the number of choices."""
        earlier = self.ends[self.rhymes_back(self.sentence)]
        bad = self.spec["avoid_letters"]
        initial = self.spec["word_initial"]
        choices = [w for w in rhymes_of(earlier)
                   if (syllable_count is None or syllables(w) == syllable_count)
                   and w not in self.exclude and not any(c in w for c in bad)
                   and (initial is None or w.startswith(initial))
                   and (self.spec["max_word_chars"] is None or len(w) <= self.spec["max_word_chars"])]
        # Common words first: a rhyme the tokenizer spells as one token (" night") is one the
        # follower has seen often; "bight" and "cryer" are not.
        common = [w for w in choices if len(self.context.lm.encode(" " + w)) == 1]
        choices = common or choices
        if not choices:
            self.condition(False)
            return
        pick = await self.sample(LogCategorical(list(range(len(choices))), [0.0] * len(choices)))
        self.score(math.log(len(choices)))
        await self.force(choices[pick], first)

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
    def capacity(self):
        """Free word slots left in the text, this one included."""
        low, high = self.plan[self.sentence]
        left = high - len(self.words) + sum(h for _, h in self.plan[self.sentence + 1:])
        reserved = len([p for p in self.slots if p > self.total])
        if self.spec["last_words"]:
            reserved = reserved + len([w for w in self.spec["last_words"][self.sentence:] if w])
        return left - reserved

    async def free_step(self, first, max_syllables=None):
        """A free word, or one of the words still to include, or (until the text mentions its
        topic) one of the topic's words. Each proposal is made with a fixed chance and
        importance-corrected (the follower's own word otherwise), so the weight stays the
        follower's likelihood of the text: a word forced where it reads badly gets a tiny
        weight and resampling drops it."""
        if self.todo:
            m = len(self.todo)
            must = m >= self.capacity()
            if must or await self.sample(Bernoulli(PROPOSE_INCLUDE)):
                pick = await self.sample(LogCategorical(list(range(m)), [0.0] * m))
                if not must:
                    self.score(-math.log(PROPOSE_INCLUDE / m))
                await self.force(self.todo[pick], first)
                return
            self.score(-math.log(1 - PROPOSE_INCLUDE))
        topic = [] if self.on_topic else self.spec["topic_words"]
        if topic:
            m = len(topic)
            if await self.sample(Bernoulli(PROPOSE_TOPIC)):
                pick = await self.sample(LogCategorical(list(range(m)), [0.0] * m))
                self.score(-math.log(PROPOSE_TOPIC / m))
                await self.force(topic[pick], first)
                return
            self.score(-math.log(1 - PROPOSE_TOPIC))
        await self.free_word(first, max_syllables=max_syllables)

    async def free_word(self, first, max_len=None, max_syllables=None):
        ctx = self.context
        vocab = ctx.lm.vocab
        limit = self.spec["max_word_chars"] or 14
        if max_len is not None:
            limit = min(limit, max_len)
        start = vocab.capital_word_starts() if first else vocab.alpha_word_starts()
        if first and not self.at_line_start():
            # After a period the next sentence needs its space: "Golaghat.A museum" is one
            # sentence to the splitter, and the sentence count fails.
            start = start & vocab.word_starts()
        if first and self.spec["initials"]:
            start = start & vocab.initial(self.spec["initials"][self.sentence])
        if self.spec["word_initial"]:
            start = start & vocab.initial(self.spec["word_initial"])
        start = start & vocab.max_chars(limit + 1) & self.letters()
        if max_syllables is not None:
            start = start & vocab.max_syllables(max_syllables)
        if self.exclude:
            start = start & vocab.banned_words(self.exclude)
        await self.observe(ctx.mask_dist(start), True)
        token = await self.sample(ctx.next_token())
        word = str(token).strip()
        while len(word) < limit:
            more = vocab.alpha_continuations() & vocab.token_length(1, limit - len(word)) & self.letters()
            go_on = await self.sample(ctx.mask_dist(more))
            if not go_on:
                break
            word = word + str(await self.sample(ctx.next_token()))
        if len(word) >= limit:
            await self.observe(ctx.mask_dist(vocab.alpha_continuations()), False)
        self.condition(word.lower() not in self.exclude)
        self.wrote(word, True)

    def letters(self):
        """The tokens a lipogram allows (all of them when none is banned)."""
        vocab = self.context.lm.vocab
        if self.spec["avoid_letters"]:
            return vocab.without_letters(self.spec["avoid_letters"])
        return vocab.max_chars(10**6)

    async def force(self, word, first):
        ctx = self.context
        if first:
            word = word[:1].upper() + word[1:]
        text = word if self.at_line_start() else " " + word
        for token in ctx.lm.encode(text):
            await self.observe(ctx.next_token(), token)
        # The forced word must end here: the next token may not continue it.
        await self.observe(ctx.mask_dist(ctx.lm.vocab.alpha_continuations()), False)
        self.wrote(word, False)

    def at_line_start(self):
        ctx = self.context
        return ctx.token_count == 0 or ctx.tokens[-1] == self.newline

    def wrote(self, word, free):
        key = unit(word)
        if free and self.history and (self.history[-1], key) in zip(self.history, self.history[1:]):
            self.score(-REPEAT_COST)
        self.history.append(key)
        self.words.append(word)
        self.total = self.total + 1
        done = [w for w in self.todo if unit(w) == key]
        if done:
            self.todo.remove(done[0])
            self.twist(INCLUDE_COST)
        if not self.on_topic and any(key[:5] == t.lower()[:5] if len(t) >= 4 else key == t.lower() for t in self.spec["topic_words"]):
            self.on_topic = True
            self.twist(TOPIC_TWIST)

    async def end_sentence(self):
        last = self.sentence == len(self.plan) - 1
        word = self.words[-1] if self.words else ""
        self.ends.append(word)
        scheme = self.spec["rhyme"]
        if scheme and self.sentence < len(scheme) and scheme.find(scheme[self.sentence]) == self.sentence \
                and scheme.count(scheme[self.sentence]) > 1:
            self.condition(len(rhymes_of(word)) >= 3)  # a later line must be able to rhyme with it
        self.syllables = 0
        if last and self.spec["tags"]:
            await self.observe(self.context.next_token(), self.stop)
            for tag in self.spec["tags"]:
                for token in self.context.lm.encode(" " + tag):
                    await self.observe(self.context.next_token(), token)
            self.finish_text()
            return
        if not (self.spec["lines"] and last):  # a poem's last line needs no line break
            await self.observe(self.context.next_token(), self.stop)
        if self.sentence in self.spec["breaks"]:
            for _ in range(2):  # "\n\n", as the tokenizer splits it inside a text
                await self.observe(self.context.next_token(), self.newline)
        self.sentence = self.sentence + 1
        self.words = []
        if last:
            self.finish_text()

    def finish_text(self):
        """Finish; a text that never mentions its topic is weighed down (SMC keeps to the topic)."""
        if not self.on_topic:
            self.score(-TOPIC_COST)
        self.finish()

    async def exact_word(self, letters, first):
        """A one-token word of exactly `letters` letters (" a", " in", " the")."""
        ctx = self.context
        vocab = ctx.lm.vocab
        start = vocab.capital_word_starts() if first else vocab.alpha_word_starts()
        if first and not self.at_line_start():
            start = start & vocab.word_starts()
        start = start & vocab.token_length(letters, letters) & self.letters()
        if self.spec["word_initial"]:
            start = start & vocab.initial(self.spec["word_initial"])
        if self.exclude:
            start = start & vocab.banned_words(self.exclude)
        await self.observe(ctx.mask_dist(start), True)
        word = str(await self.sample(ctx.next_token())).strip()
        await self.observe(ctx.mask_dist(vocab.alpha_continuations()), False)
        self.condition(word.lower() not in self.exclude)
        self.wrote(word, True)

    def check(self, text):
        return satisfies(text, self.spec["constraints"])

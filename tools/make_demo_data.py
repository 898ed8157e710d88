"""Regenerate kbert's small demo sentiment dataset (``kbert/data/demo/sentiment_{train,test}.tsv``).

Every sentence is built here from templates and word lists written for kbert; nothing is copied from
an existing dataset. Pure Python, no dependencies, deterministic (fixed seed):

    python tools/make_demo_data.py            # rewrite the two TSV files
    python tools/make_demo_data.py --check    # exit 1 if the files on disk differ from a fresh run

Short reviews of products, films, restaurants and hotels, labelled ``positive``/``negative``, balanced.
To keep the task honest (clearly learnable, not trivially solved):

- the test split uses its OWN subjects, aspects, adjectives, clauses, verdicts and sentence templates,
  disjoint from the training split's, so no test sentence (or fragment longer than a function word)
  is seen in training;
- about half the rows are not plain praise/complaint: negations ("not bad at all" is positive,
  "not great" is negative; the test split words them differently: "far from great", "hardly a
  letdown") and two-clause contrasts where the second or main clause decides ("X, but Y" in training;
  "although X, Y", "X. However, Y", "X, yet Y" in test);
- casing and punctuation vary (lower-case rows, "!!", "...", no final stop, the odd emoticon).
"""

from __future__ import annotations

import argparse
import pathlib
import random
import sys

OUT_DIR = pathlib.Path(__file__).resolve().parents[1] / "kbert" / "data" / "demo"
SEED = 20240611
SIZES = {"train": 400, "test": 120}
# Share of each kind of sentence, per split (the rest is "plain").
MIX = {"train": {"negation": 0.20, "contrast": 0.25}, "test": {"negation": 0.25, "contrast": 0.30}}

POS, NEG = "positive", "negative"

# ---------------------------------------------------------------------------------------------------
# Vocabulary. Each domain: subjects (determiner, noun), aspects, whole clauses and closing verdicts,
# with a train list and a disjoint test list. "be" is the domain's tense for "X is/was ...".
# ---------------------------------------------------------------------------------------------------
DOMAINS = {
    "product": {
        "be": "is",
        "subjects": {
            "train": [("this", "blender"), ("the", "wireless headset"), ("this", "phone case"),
                      ("the", "coffee grinder"), ("this", "backpack"), ("the", "desk lamp"),
                      ("this", "electric kettle"), ("the", "running jacket"), ("this", "keyboard"),
                      ("the", "vacuum cleaner"), ("this", "water bottle"), ("the", "office chair")],
            "test": [("this", "toaster"), ("the", "bluetooth speaker"), ("this", "rice cooker"),
                     ("the", "rain jacket"), ("this", "tablet stand"), ("the", "air fryer"),
                     ("this", "umbrella"), ("the", "gaming mouse")],
        },
        "aspects": {
            "train": ["the battery life", "the build quality", "the price", "the sound", "the packaging",
                      "the setup", "the customer support", "the design", "the instruction manual"],
            "test": ["the finish", "the grip", "the noise level", "the warranty service",
                     "the charging speed", "the weight"],
        },
        "clauses": {
            ("train", POS): ["it works exactly as advertised", "it arrived early and well packed",
                             "the battery lasts for days", "it feels really sturdy",
                             "setup took two minutes", "I use it every single day"],
            ("train", NEG): ["it stopped working after a week", "it arrived with a cracked lid",
                             "the battery barely lasts an hour", "it feels cheap and flimsy",
                             "the buttons stick constantly", "it overheats after ten minutes"],
            ("test", POS): ["it heats up in seconds", "it is much quieter than my old one",
                            "it has held up well after months of use", "everything fits neatly inside"],
            ("test", NEG): ["it broke on the second day", "the strap snapped within a month",
                            "it rattles every time I use it", "half the features do not work"],
        },
        "verdicts": {
            ("train", POS): ["Would buy again.", "Highly recommend.", "Worth every penny.", "Five stars from me."],
            ("train", NEG): ["Sending it back.", "Save your money.", "Would not buy again.", "One star."],
            ("test", POS): ["I'd happily order another.", "Money well spent.", "Recommended without hesitation."],
            ("test", NEG): ["Returning it tomorrow.", "I want a refund.", "Not worth the hassle."],
        },
    },
    "film": {
        "be": "is",
        "subjects": {
            "train": [("this", "movie"), ("the", "film"), ("the", "sequel"), ("this", "documentary"),
                      ("the", "new thriller"), ("this", "animated feature"), ("the", "remake"),
                      ("this", "romantic comedy")],
            "test": [("this", "picture"), ("the", "horror flick"), ("the", "biopic"), ("this", "indie drama"),
                     ("the", "space opera"), ("the", "musical")],
        },
        "aspects": {
            "train": ["the acting", "the plot", "the soundtrack", "the ending", "the dialogue", "the pacing",
                      "the cinematography"],
            "test": ["the script", "the lead performance", "the score", "the final act", "the set design",
                     "the editing"],
        },
        "clauses": {
            ("train", POS): ["I was hooked from the first scene", "the whole audience laughed out loud",
                             "the story stayed with me for days", "every scene looks gorgeous",
                             "the cast has real chemistry"],
            ("train", NEG): ["I nearly fell asleep halfway through", "the twist was obvious from the start",
                             "the jokes fell completely flat", "it drags on for far too long",
                             "the story makes no sense"],
            ("test", POS): ["I cried at the end in the best way", "it kept me on the edge of my seat",
                            "the characters felt real", "the time flew by"],
            ("test", NEG): ["I checked my watch every ten minutes", "the characters were paper thin",
                            "we walked out before the end", "the humour is painfully forced"],
        },
        "verdicts": {
            ("train", POS): ["Go see it.", "A must-watch.", "I'd watch it again tomorrow."],
            ("train", NEG): ["Skip it.", "Two hours I will never get back.", "Don't waste your evening."],
            ("test", POS): ["Easily the best film this year.", "Already planning a second viewing."],
            ("test", NEG): ["Do not bother.", "What a waste of a ticket."],
        },
    },
    "restaurant": {
        "be": "was",
        "subjects": {
            "train": [("this", "restaurant"), ("the", "new pizza place"), ("this", "little bistro"),
                      ("the", "sushi bar"), ("the", "diner on Main Street"), ("this", "taco truck"),
                      ("the", "steakhouse")],
            "test": [("this", "noodle shop"), ("the", "seafood grill"), ("the", "corner bakery"),
                     ("this", "vegan cafe"), ("the", "Thai place downtown")],
        },
        "aspects": {
            "train": ["the food", "the service", "the pasta", "the dessert", "the coffee", "the atmosphere",
                      "the wine list"],
            "test": ["the curry", "the bread", "the waiter", "the lunch menu", "the portion size", "the decor"],
        },
        "clauses": {
            ("train", POS): ["the waiter remembered our order perfectly", "everything tasted fresh",
                             "the portions were generous", "our food came out quickly",
                             "the staff made us feel at home"],
            ("train", NEG): ["we waited an hour for cold food", "the soup was bland and watery",
                             "the table was sticky", "the staff ignored us all night",
                             "the bill was full of mistakes"],
            ("test", POS): ["every dish was bursting with flavour", "the chef came out to say hello",
                            "the prices are very fair", "they found us a table straight away"],
            ("test", NEG): ["my steak was burnt to a crisp", "they got our order wrong twice",
                            "the fries tasted stale", "the music was too loud to talk"],
        },
        "verdicts": {
            ("train", POS): ["We'll be back.", "Best meal I've had in ages.", "Book a table now."],
            ("train", NEG): ["Never again.", "Eat somewhere else.", "Not coming back."],
            ("test", POS): ["Already craving it again.", "A new favourite."],
            ("test", NEG): ["Avoid this place.", "Sadly we won't return."],
        },
    },
    "hotel": {
        "be": "was",
        "subjects": {
            "train": [("this", "hotel"), ("the", "resort"), ("the", "guesthouse"), ("this", "motel"),
                      ("the", "beach hotel"), ("the", "airport hotel")],
            "test": [("this", "inn"), ("the", "lodge"), ("the", "bed and breakfast"), ("this", "hostel"),
                     ("the", "spa hotel")],
        },
        "aspects": {
            "train": ["the room", "the bed", "the breakfast", "the location", "the pool", "the front desk",
                      "the view"],
            "test": ["the shower", "the wifi", "the housekeeping", "the parking", "the bathroom", "the check-in"],
        },
        "clauses": {
            ("train", POS): ["the staff could not have been more helpful", "our room was spotless",
                             "we slept like babies", "the view from the balcony was stunning",
                             "they let us check in early"],
            ("train", NEG): ["the room smelled of smoke", "the air conditioning never worked",
                             "we found hair in the sheets", "the walls were paper thin",
                             "they lost our booking"],
            ("test", POS): ["they upgraded us for free", "the beds were incredibly comfy",
                            "it is a short walk to everything", "the towels were changed every day"],
            ("test", NEG): ["there was mould in the shower", "the noise from the street kept us awake",
                            "nobody answered the phone at reception", "the lift was broken all week"],
        },
        "verdicts": {
            ("train", POS): ["Would stay again.", "Perfect for a weekend away.", "Can't wait to go back."],
            ("train", NEG): ["We checked out early.", "Stay anywhere else.", "Never staying here again."],
            ("test", POS): ["Already booked our next stay.", "A real gem."],
            ("test", NEG): ["Find another hotel.", "Avoid at all costs."],
        },
    },
}

ADJECTIVES = {
    ("train", POS): ["great", "excellent", "wonderful", "fantastic", "lovely", "amazing", "impressive",
                     "delightful", "solid", "fabulous"],
    ("train", NEG): ["terrible", "awful", "disappointing", "horrible", "poor", "dreadful", "mediocre",
                     "useless"],
    ("test", POS): ["superb", "brilliant", "terrific", "outstanding", "marvellous", "first-rate"],
    ("test", NEG): ["abysmal", "lousy", "atrocious", "dismal", "subpar", "pathetic"],
}
# Intensifiers that also sit well before extreme adjectives ("truly awful", "just superb").
INTENSIFIERS = {"train": ["really", "truly"], "test": ["genuinely", "just"]}
# Hedged, mild judgements for the clause that a contrast overrides ("the food was fine, but ...").
MILD = {
    ("train", POS): ["fine", "nice enough", "decent", "pretty good", "okay"],
    ("train", NEG): ["a bit disappointing", "not perfect", "nothing fancy", "a bit average", "not the best"],
    ("test", POS): ["pleasant", "perfectly acceptable", "alright", "reasonable"],
    ("test", NEG): ["somewhat underwhelming", "a little lacklustre", "not ideal", "rough around the edges"],
}
# "I <verb> <subject>."
VERBS = {
    ("train", POS): ["love", "really enjoyed", "was impressed by"],
    ("train", NEG): ["hated", "was let down by", "can't stand"],
    ("test", POS): ["adored", "was blown away by"],
    ("test", NEG): ["loathed", "was fed up with"],
}
# Negated phrases after "is/was": the label is the phrase's meaning, the opposite of its key word.
NEGATIONS = {
    ("train", POS): ["not bad at all", "not disappointing in the slightest",
                     "nowhere near as bad as people say", "not awful, not even a little"],
    ("train", NEG): ["not great", "not very good", "nothing special", "not what I hoped for",
                     "not worth the hype"],
    ("test", POS): ["far from disappointing", "hardly a letdown", "anything but boring",
                    "not the disaster I expected", "by no means bad"],
    ("test", NEG): ["far from great", "hardly impressive", "not good at all", "not as good as I expected",
                    "not even close to decent"],
}
# Whole negated sentences: {s} = subject, {a} = aspect.
NEGATED_SENTENCES = {
    ("train", POS): ["I can't fault {a}.", "I didn't regret choosing {s} for a second.",
                     "There was not a single thing wrong with {a}."],
    ("train", NEG): ["I did not enjoy {s}.", "I wouldn't recommend {s} to anyone.",
                     "Nothing about {a} worked for me."],
    ("test", POS): ["I have no complaints about {a}.", "Nobody could fault {a}.",
                    "I never once wished I had picked something other than {s}."],
    ("test", NEG): ["I didn't like {s} one bit.", "I couldn't recommend {s} in good conscience.",
                    "Not one thing about {a} impressed me."],
}
EMOTICONS = {POS: [":)", ":-)", ":D"], NEG: [":(", ":-("]}


# ---------------------------------------------------------------------------------------------------
# Sentence builders. Each returns a sentence for (split, label) or None to try again.
# ---------------------------------------------------------------------------------------------------
def other(label: str) -> str:
    return NEG if label == POS else POS


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


class Builder:
    def __init__(self, rng: random.Random, split: str):
        self.rng, self.split = rng, split

    def pick(self, items):
        return self.rng.choice(items)

    # vocabulary for a domain
    def subject(self, d):
        det, noun = self.pick(DOMAINS[d]["subjects"][self.split])
        return f"{det} {noun}", noun

    def aspect(self, d):
        return self.pick(DOMAINS[d]["aspects"][self.split])

    def clause(self, d, label):
        return self.pick(DOMAINS[d]["clauses"][(self.split, label)])

    def verdict(self, d, label):
        return self.pick(DOMAINS[d]["verdicts"][(self.split, label)])

    def adj(self, label, intensify=0.35):
        word = self.pick(ADJECTIVES[(self.split, label)])
        if self.rng.random() < intensify:
            word = f"{self.pick(INTENSIFIERS[self.split])} {word}"
        return word

    def aspect_statement(self, d, label):
        """'the battery life is really great' or a whole clause."""
        if self.rng.random() < 0.5:
            return self.clause(d, label)
        return f"{self.aspect(d)} {DOMAINS[d]['be']} {self.adj(label)}"

    # ---- plain -----------------------------------------------------------------------------------
    def plain(self, d, label):
        be, r = DOMAINS[d]["be"], self.rng.random()
        subj, noun = self.subject(d)
        if self.split == "train":
            if r < 0.22:
                s = f"{cap(subj)} {be} {self.adj(label)}."
            elif r < 0.40:
                s = f"{cap(self.aspect(d))} {be} {self.adj(label)}."
            elif r < 0.58:
                s = f"{cap(self.clause(d, label))}."
            elif r < 0.70:
                adj = self.adj(label, intensify=0)
                article = "an" if adj[0] in "aeiou" else "a"
                s = f"What {article} {adj} {noun}!"
            elif r < 0.82:
                s = f"I {self.pick(VERBS[(self.split, label)])} {subj}."
            else:
                a1, a2 = self.rng.sample(DOMAINS[d]["aspects"][self.split], 2)
                s = f"{cap(a1)} {be} {self.adj(label)} and {a2} {be} {self.adj(label, 0)}."
        else:
            if r < 0.20:
                s = f"Honestly, {subj} {be} {self.adj(label)}."
            elif r < 0.36:
                a1, a2 = self.rng.sample(DOMAINS[d]["aspects"][self.split], 2)
                n1, n2 = a1.removeprefix("the "), a2.removeprefix("the ")
                s = f"{cap(self.adj(label, 0))} {n1}, {self.adj(label, 0)} {n2}."
            elif r < 0.52:
                s = f"{cap(subj)}? {cap(self.adj(label))}."
            elif r < 0.68:
                s = f"I {self.pick(VERBS[(self.split, label)])} {subj}."
            elif r < 0.84:
                s = f"{cap(self.clause(d, label))}, and {self.aspect(d)} {be} {self.adj(label)}."
            else:
                verb = {"product": "Bought", "film": "Watched", "restaurant": "Ate at", "hotel": "Stayed at"}[d]
                s = f"{verb} {subj} last week: {self.clause(d, label)}."
        if self.rng.random() < 0.30:
            s = f"{s} {self.verdict(d, label)}"
        return s

    # ---- negation --------------------------------------------------------------------------------
    def negation(self, d, label):
        be, r = DOMAINS[d]["be"], self.rng.random()
        subj, _ = self.subject(d)
        if r < 0.35:
            target = subj
        elif r < 0.70:
            target = self.aspect(d)
        else:
            s = self.pick(NEGATED_SENTENCES[(self.split, label)]).format(s=subj, a=self.aspect(d))
            return self.maybe_verdict(d, label, s, 0.2)
        phrase = self.pick(NEGATIONS[(self.split, label)])
        lead = self.pick(["", "Honestly, ", "I have to say "] if self.split == "train"
                         else ["", "To be fair, ", "Overall, "])
        s = f"{lead}{target} {be} {phrase}." if lead else f"{cap(target)} {be} {phrase}."
        return self.maybe_verdict(d, label, s, 0.2)

    # ---- contrast: the second (train) or main (test) clause decides ------------------------------
    def contrast(self, d, label):
        # The overridden part is always about one aspect, half the time a hedged, mild judgement, so
        # that no row says "it broke on day two, although ..." and is still called positive.
        be = DOMAINS[d]["be"]
        # When it is a strong judgement, a closing verdict always confirms the deciding clause.
        mild = self.rng.random() < 0.5
        judgement = self.pick(MILD[(self.split, other(label))]) if mild else self.adj(other(label), intensify=0)
        aspect = self.aspect(d)
        first = f"{aspect} {be} {judgement}"
        second = self.aspect_statement(d, label)
        if aspect.split()[-1] in second:
            return None  # "the shower was X. However, there was mould in the shower."
        if self.split == "train":
            form = self.pick(["{A}, but {B}.", "{A} but {B}.", "{A}, but honestly {B}.",
                              "{A}... but {B}."])
        else:
            form = self.pick(["Although {A}, {B}.", "{A}. However, {B}.", "{A}, yet {B}.",
                              "Even though {A}, {B}.", "Sure, {A}, but {B}."])
        s = form.format(A=first, B=second)
        return self.maybe_verdict(d, label, cap(s), 0.35 if mild else 1.0)

    def maybe_verdict(self, d, label, s, p):
        return f"{s} {self.verdict(d, label)}" if self.rng.random() < p else s

    # ---- surface variation -----------------------------------------------------------------------
    def style(self, s, label):
        r = self.rng.random()
        if r < 0.12:
            s = s.lower()
        elif r < 0.16:
            s = s.replace(" really ", " REALLY ").replace(" just ", " JUST ")
        r = self.rng.random()
        if s.endswith(".") and not s.endswith("..."):
            if r < 0.10:
                s = s[:-1] + "!"
            elif r < 0.15:
                s = s[:-1] + "!!"
            elif r < 0.20:
                s = s[:-1] + "..."
            elif r < 0.26:
                s = s[:-1]
        if self.rng.random() < 0.04:
            s = f"{s} {self.pick(EMOTICONS[label])}"
        return s


def generate(split: str, size: int, seed: int = SEED) -> list[tuple[str, str, str]]:
    """(text, label, kind) rows for one split; kinds are plain, negation and contrast."""
    rng = random.Random(f"{seed}-{split}")
    builder = Builder(rng, split)
    per_label = size // 2
    quotas = {kind: round(per_label * share) for kind, share in MIX[split].items()}
    quotas["plain"] = per_label - sum(quotas.values())
    domains = list(DOMAINS)
    rows, seen = [], set()
    for label in (POS, NEG):
        for kind, count in quotas.items():
            made, tries = 0, 0
            while made < count:
                tries += 1
                if tries > 200 * count:
                    raise RuntimeError(f"cannot make {count} distinct {split}/{label}/{kind} sentences")
                domain = domains[(made + tries) % len(domains)] if rng.random() < 0.5 else rng.choice(domains)
                text = getattr(builder, kind)(domain, label)
                if text is None:
                    continue
                key = "".join(ch for ch in text.lower() if ch.isalnum())
                if key in seen:
                    continue
                seen.add(key)
                rows.append((builder.style(text, label), label, kind))
                made += 1
    rng.shuffle(rows)
    return rows


def render(rows) -> str:
    lines = ["text\tlabel"]
    for text, label, _ in rows:
        assert "\t" not in text and "\n" not in text
        lines.append(f"{text}\t{label}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the files on disk, write nothing")
    parser.add_argument("--out", type=pathlib.Path, default=OUT_DIR)
    args = parser.parse_args(argv)
    splits = {split: generate(split, size) for split, size in SIZES.items()}
    keys = [{"".join(ch for ch in t.lower() if ch.isalnum()) for t, _, _ in rows} for rows in splits.values()]
    assert not (keys[0] & keys[1]), "train and test share a sentence"
    stale = []
    for split, rows in splits.items():
        path = args.out / f"sentiment_{split}.tsv"
        text = render(rows)
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        counts = {label: sum(1 for _, lab, _ in rows if lab == label) for label in (POS, NEG)}
        print(f"{path}: {len(rows)} rows {counts}, {len(text.encode('utf-8')):,} bytes")
    if stale:
        print("out of date (run python tools/make_demo_data.py):", *stale, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The seeded prose around the facts: the house, the household, the day, small talk.

None of it bears on the solution; it is what makes the case file long (well beyond a small
model's window) and realistic, so that reading it means choosing what to read. Sentences that
name a suspect name them all alike: the renderer counts and balances the mentions, so that how
often a name occurs says nothing.
"""

from __future__ import annotations

import random

_WOOD = ("oak", "walnut", "mahogany", "elm", "cedar", "rosewood")
_COLOUR = ("faded green", "dark red", "dove grey", "ochre", "pale blue", "plum", "cream")
_THING = (
    "a long-case clock that ran four minutes slow", "a pair of Chinese vases",
    "a stuffed pike in a glass case", "a map of the estate drawn in 1790",
    "a harp nobody had played for years", "a cabinet of birds' eggs", "a brass telescope",
    "a portrait of the third baron on a grey horse", "a screen painted with herons",
    "a barometer stuck at Change", "a set of Waverley novels in calf", "a bust of Pitt",
)  # fmt: skip
_ROOM_SENTENCES = (
    "The {room} is panelled in {wood}, darkened by two centuries of fires.",
    "Above the panelling the walls were papered in {colour} in the late lord's father's time.",
    "A writing table with a green leather top stands in the bay, its drawers locked.",
    "The chimney-piece is of veined marble, carved with vine leaves and a mask of Bacchus.",
    "There are six chairs, no two alike, and a sofa whose springs have long given up.",
    "The ceiling was painted with clouds and cherubs by an Italian who never finished it.",
    "A draught comes under the door whatever is done about it.",
    "A rack of walking sticks and a croquet box stand behind the door.",
    "The lamps are oil, for the electric light has reached only the ground floor passages.",
    "A bookcase holds sermons, stud books and forty years of Whitaker's Almanack.",
    "There is a faint stain on the ceiling from the great leak of 1893.",
    "The shutters fold back into the window reveals and are barred at night by the footmen.",
    "A card table, its baize worn through at the corners, stands folded by the wall.",
    "The family's dogs are not allowed in, and scratch at the door to say so.",
    "The old lord is said to have proposed to his wife here, by the window.",
    "Against the north wall stands {thing}.",
    "Between the windows hangs {thing}, which visitors are always shown.",
    "The floor is of {wood} boards, uneven by the hearth, with a worn Turkey carpet over them.",
    "In winter the {room} is the coldest room in the house; in summer it smells of {smell}.",
    "The housemaids dust it on {day}s, when the shutters are opened for an hour.",
    "A bell-pull by the fireplace rings in the servants' passage below.",
    "From its windows one sees {view}.",
    "The curtains, {colour} velvet, were new for the coronation and are already fading.",
    "On the mantelpiece stand {thing} and a pair of candlesticks.",
    "The late lord's mother kept her {hobby} here, and some of it remains.",
    "It was altered in 1851, when the {wood} doors were hung and the chimney rebuilt.",
    "Guests are apt to lose their way to it, the passages being what they are.",
)  # fmt: skip
_SMELL = ("beeswax", "woodsmoke", "damp", "lavender", "pipe tobacco", "old paper", "roses")
_DAY = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
_VIEW = (
    "the lime avenue and the lodge gates", "the kitchen garden and its glasshouses",
    "the lake with its island temple", "the stable clock", "the church tower over the trees",
    "the ha-ha and the park beyond, where the deer come down at dusk",
)  # fmt: skip
_HOBBY = ("watercolours", "pressed flowers", "collection of fans", "embroidery frames")

_DAY_SENTENCES = (
    "At breakfast {p} read the racing news aloud until asked to stop.",
    "{p} and {q} walked down to the lake before luncheon and came back arguing about trout.",
    "During the morning {p} wrote letters in the {place} and rang twice for more ink.",
    "{p} spent an hour in the stables admiring the new hunter.",
    "At luncheon {p} said that the soup was better than at Claridge's, which pleased the cook.",
    "{p} played croquet against {q} in the afternoon and lost by a hoop.",
    "{p} asked {servant} whether the post had come, and was told it came at eleven.",
    "{p} was seen sketching the east front from the lawn for the better part of an hour.",
    "Over tea {p} and {q} talked of nothing but the price of coal.",
    "{p} took the dog-cart into the village and came back with a parcel of books.",
    "{p} complained of a headache after luncheon and lay down until four.",
    "{p} and {q} looked over the orchids in the glasshouses with the head gardener.",
    "{p} tried the piano in the {place} and found it out of tune.",
    "Before dressing for dinner {p} took a turn on the terrace with a cigar.",
    "{p} told {q} a long story about a tiger in Bengal, which {q} had heard before.",
    "{p} lost a cufflink in the morning and {servant} found it under a chair.",
    "{p} spent part of the afternoon in the {place} with a novel and fell asleep over it.",
    "{p} asked about the history of the house and was shown the chapel plate.",
    "At dinner {p} sat between {q} and the late lord and talked of the election.",
    "{p} drank only water at dinner, as is {p}'s habit.",
    "{p} walked to the church in the morning and looked at the family monuments.",
    "{p} borrowed a fishing rod from {servant} and came back at noon with nothing.",
    "{p} and {q} played a long game of chess in the {place}, which ended in a draw.",
    "{p} spent half an hour at the barometer, tapping it, and said it would rain.",
    "In the afternoon {p} went out on a bicycle as far as the mill and back.",
    "{p} sent {servant} to the village with a telegram, and would not say to whom.",
    "{p} was in the {place} most of the afternoon, sorting a box of old letters.",
    "{p} admired the view from the long terrace and asked who had planted the cedars.",
    "{p} and {q} went riding in the park and came back with the horses in a lather.",
    "{p} asked {q} to make up a four at bridge after tea, and {q} declined.",
    "{p} read the lessons from the family Bible to the children of the lodge keeper.",
    "{p} spent some time in the gun room cleaning a pair of guns with {servant}.",
    "{p} was overheard humming a music-hall song on the stairs.",
    "After luncheon {p} slept in a deck chair under the cedar with a hat over the face.",
    "{p} and {q} compared notes on their tailors at some length.",
    "{p} mislaid a pair of gloves and had the morning room turned over for them.",
    "{p} talked to the head gardener about roses for the best part of an hour.",
    "{p} took photographs of the house from the lake with a new Kodak.",
    "{p} wrote up a diary in the {place} before dressing, as {p} does every evening.",
    "{p} and {q} laughed over an old number of Punch in the {place}.",
)  # fmt: skip

_STATEMENT_SENTENCES = (
    "I remember the soup was a clear one, and the fish was sole.",
    "The wind had got up by then; I heard it in the chimney.",
    "I had a letter from my sister that morning which had put me out of temper.",
    "I am a poor sleeper and usually read until one.",
    "I noticed the clock in the hall had been wound; it was striking as I passed.",
    "I was thinking, I admit, about my train on Monday.",
    "The fire had been made up not long before and the room was warm.",
    "There was talk of a ball at the Hendersons' in the spring.",
    "I had a cold coming and was glad of the fire.",
    "Someone had left a newspaper folded at the crossword, half done.",
    "It had rained earlier and the gravel was wet under the windows.",
    "I had my reading spectacles with me, which I mention because I usually forget them.",
    "I heard a motor on the drive at some time, I could not say when.",
    "The dogs were barking in the stable yard for a while and then stopped.",
    "I do not care for cards, but I play when I am asked, as one does.",
    "The lamps in the passage had been turned low, as they are every night.",
    "I remember thinking the house very quiet for a Saturday.",
    "I had promised to write to my mother and had not done it.",
    "The window was open an inch at the top, as I like it.",
    "I am not a person of regular habits, whatever people say.",
    "There were moths round the lamp; it had been a warm day.",
    "I had a glass of whisky and soda earlier and nothing after it.",
)  # fmt: skip

ROOM_CLAIMS = (
    "I had not been inside the {room} since the afternoon.",
    "I passed the door of the {room} earlier on, and it was shut.",
    "I did not go near the {room} all evening, and I never heard a sound from it.",
    "I knew he liked to sit in the {room} after dinner; everyone knew it.",
)  # fmt: skip
MOTIVES = (
    "{p} owed the late lord a large sum, and the note fell due at Lady Day.",
    "{p} had been cut out of the late lord's will a month before, or so {p} believed.",
    "{p} had quarrelled with the late lord over a right of way and been threatened with law.",
    "The late lord had refused {p} consent to a marriage {p} had set a heart on.",
    "{p} stood to gain a share of the estate under a settlement made long ago.",
    "The late lord had discovered irregularities in accounts that {p} kept for him.",
    "{p} had been publicly humiliated by the late lord at a dinner in town last season.",
)  # fmt: skip
HERRINGS = (
    "A glove belonging to {p}, torn at the seam, was found on the back stairs next morning.",
    "{p} was heard by a housemaid to say at tea, 'Someone ought to put a stop to him.'",
    "{p} burnt a letter in the {place} grate during the afternoon.",
    "{p} had asked {servant} earlier in the week when the late lord usually retired.",
    "{p}'s boots were muddy when {servant} collected them for cleaning.",
    "{p} went into the {room} at about five in the afternoon to return a book, and came out "
    "after a few minutes.",
    "{p} seemed, to several people at dinner, nervous and short of temper.",
)  # fmt: skip


def _fill(rng: random.Random, template: str, **slots: str) -> str:
    common = {
        "wood": slots.pop("wood", rng.choice(_WOOD)),
        "colour": slots.pop("colour", rng.choice(_COLOUR)),
        "thing": rng.choice(_THING),
        "smell": rng.choice(_SMELL),
        "day": rng.choice(_DAY),
        "view": rng.choice(_VIEW),
        "hobby": rng.choice(_HOBBY),
    }
    return template.format(**common, **slots)


def room_paragraphs(rng: random.Random, room: str, n: int) -> list[str]:
    """``n`` paragraphs of four sentences describing one room, no sentence told twice; the
    room's wood and colour are drawn once, so that the description agrees with itself."""
    picked = rng.sample(_ROOM_SENTENCES, min(4 * n, len(_ROOM_SENTENCES)))
    fixed = {"room": room, "wood": rng.choice(_WOOD), "colour": rng.choice(_COLOUR)}
    sentences = [_fill(rng, t, **fixed) for t in picked]
    return [" ".join(sentences[i : i + 4]) for i in range(0, len(sentences), 4)]


_BIOS = (
    "{p} is known in the county for a temper and for a fine seat on a horse.",
    "{p} has visited the house every autumn for ten years.",
    "{p} came down from London by the 3.15 train, with two trunks and a hatbox.",
    "{p} is fond of music, and has been asked more than once to play after dinner.",
    "{p} served abroad for some years and speaks of it only when pressed.",
    "{p} is thought by the servants to be generous, and by the family to be careless.",
    "{p} keeps a small house in Kensington and a large debt at a wine merchant's.",
    "{p} knew the late lord since they were at school together.",
)  # fmt: skip


def bio(rng: random.Random, p: str) -> str:
    return _fill(rng, rng.choice(_BIOS), p=p)


def day_sentence(rng: random.Random, p: str, q: str, place: str, servant: str) -> str:
    """One sentence of the day before the murder, naming ``p`` (and maybe ``q``)."""
    template = rng.choice(_DAY_SENTENCES)
    return _fill(rng, template, p=p, q=q, place=place, servant=servant)


def statement_filler(rng: random.Random, n: int) -> list[str]:
    """``n`` different sentences of a statement that bear on nothing."""
    return rng.sample(_STATEMENT_SENTENCES, n)


def detail(template: str, rng: random.Random, **slots: str) -> str:
    return _fill(rng, template, **slots)

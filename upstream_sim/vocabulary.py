"""Text pools, modelled on the real 2025 affiliate samples, that the room generator draws from.

The pools are short on purpose: they only need to look like the real feed (free-text
locations, languages written in their own script, hashtag-laden subjects, decorated display
names) so that parsers and storage meet realistic Unicode, punctuation and lengths. The regional
weights are a decision, not a measurement: the real snapshots only show ``count`` 727 for asia,
738 for northamerica and 4413 for southamerica (FORMATS.md §1.3); europe_russia is assumed big.
"""

from typing import Final


def _words(text: str) -> tuple[str, ...]:
    """Split a space-separated word list; keeps long pools compact and readable."""
    return tuple(text.split())


REGION_WEIGHTS: Final[dict[str, float]] = {
    "asia": 0.09,
    "europe_russia": 0.30,
    "northamerica": 0.10,
    "southamerica": 0.43,
    "other": 0.08,
}

# Probability that ``country`` is "" per region. Calibrated so the overall share is ≈44 %
# (9583 of 21,945 objects); the real asia sample has 49 % empty, northamerica 9 %.
EMPTY_COUNTRY: Final[dict[str, float]] = {
    "asia": 0.49,
    "europe_russia": 0.47,
    "northamerica": 0.09,
    "southamerica": 0.48,
    "other": 0.50,
}

COUNTRIES: Final[dict[str, tuple[str, ...]]] = {
    "asia": _words("PH PH PH PH IN IN CN VN TH JP UZ KZ TW LK"),
    "europe_russia": _words("RU RU RU UA RO DE GB ES IT FR PL HU"),
    "northamerica": _words("US US US US US US US US CA"),
    "southamerica": _words("CO CO CO CO BR AR VE PE CL EC MX"),
    "other": _words("ZA AU NZ KE NG EG IL TR MA"),
}

LOCATIONS: Final[dict[str, tuple[str, ...]]] = {
    "asia": (
        "Davao Region, Philippines",
        "Philippines",
        "Calabarzon, Philippines",
        "Metro Manila, Philippines",
        "Central Luzon, Philippines",
        "Japan",
        "India",
        "Asia",
        "Hong Kong",
        "South Korea",
        "Christmas Island",
        "phillipines",
    ),
    "europe_russia": (
        "Russia",
        "Moscow, Russia",
        "Saint Petersburg",
        "Ukraine",
        "Bucharest, Romania",
        "Europe",
        "England, United Kingdom",
        "Berlin, Germany",
        "Madrid, España",
        "Россия",
        "Siberia",
    ),
    "northamerica": (
        "United States",
        "California, United States",
        "USA",
        "Texas, United States",
        "Canada",
        "Florida, United States",
        "New York, United States",
        "British Columbia, Canada",
        "Ohio, United States",
        "Ontario, Canada",
        ", United States",
        "united states",
    ),
    "southamerica": (
        "Colombia",
        "Medellín, Colombia",
        "Bogotá, Colombia",
        "Antioquia, Colombia",
        "Cali, Colombia",
        "Latinoamérica",
        "Brasil",
        "Buenos Aires, Argentina",
        "Venezuela",
        "Lima, Perú",
        "Santiago, Chile",
    ),
    "other": (
        "Cape Town, South Africa",
        "Australia",
        "Sydney, Australia",
        "New Zealand",
        "Nairobi, Kenya",
        "Middle East",
        "Istanbul",
    ),
}

WHIMSICAL_LOCATIONS: Final[tuple[str, ...]] = (
    "ask me",
    "ASK ME",
    "in your heart",
    "Paradise",
    "Heaven",
    "earth",
    "Chaturbate",
    "Neverland",
    "Your dreams",
    "I live under the same sky as you- on Earth",
    "Doing Accounting Homework here",
)

LANGUAGES: Final[dict[str, tuple[str, ...]]] = {
    "asia": (
        "English",
        "English",
        "English",
        "English",
        "English/Tagalog",
        "English, Hindi, Punjabi",
        "日本語",
        "简体中文",
        "繁體中文",
        "Thai, English",
        "ภาษาไทย / English",
        "English, Korean",
    ),
    "europe_russia": (
        "English",
        "English",
        "Русский",
        "Русский",
        "English, Russian",
        "Russian, English (a little)",
        "Deutsch",
        "English, Deutsch",
        "Română, English",
        "Українська",
        "español",
    ),
    "northamerica": (
        "English",
        "English",
        "English",
        "English",
        "English and Spanish",
        "english",
        "English/Spanish",
        "français",
        "English, French",
        "English, Cat, Terrible French",
        "Body Language (or English if I can't see yours =P)",
    ),
    "southamerica": (
        "español",
        "español",
        "Español",
        "Spanish and English",
        "English, Spanish",
        "español inglish",
        "Español, English",
        "Português",
        "English",
    ),
    "other": ("English", "English", "English, Afrikaans", "Türkçe", "العربية, English"),
}

FIRST_NAMES: Final[dict[str, tuple[str, ...]]] = {
    "f": _words(
        "Sky Luna Bella Belle Ivy Kim Jane Tina Maya Kiko Ava Lily Mia Sofia Valentina "
        "Alice Anastasia Olga Keyla Jackie Aspen Gracie Lilah Bree Mariana Camila Yuki "
        "Aryana Dalia"
    ),
    "m": _words(
        "Tony Ken Miles Jake Leo Daniel Max Alex Dmitry Santiago Heath Kyle Ryan Marco Ivan"
    ),
    "t": _words("Trisha Sabrina Erin Dianna Amanda Kylie Nikki Venus Bianca Selene Kai"),
}

SUBJECT_OPENERS: Final[tuple[str, ...]] = (
    "Squirty squirtle is back:)",
    "new to streaming, come say hi<3",
    "Happy Friday!",
    "Welcome to my room!",
    "take me private. make me cum <3 xxx",
    "Disney Princess <3",
    "Hang with me",
    "PVT IS OPEN",
    "cum say hii 🦈😘",
    "🍒Hey! Don't forget to follow🍒",
    "Lets Cum 💦☔",
    "my fav pattern♥ 25♥  77♥ 99♥ 150♥ 301♥",
    "¡Hola amores! bienvenidos",
    "Привет, мальчики!",
    "I'm back babyyyyyy",
)

SUBJECT_GOALS: Final[tuple[str, ...]] = (
    "Goal: {goal} [{n} tokens left]",
    "GOAL: {goal} [{n} tokens remaining]",
    "- Multi-Goal :  {goal}",
    "Current Goal: {goal} at {n} tokens -- Next Goal: {goal} -- use /tipmenu",
    "[{n} tokens to goal]",
    "{goal} [{n} tokens left]",
    "",
)

GOALS: Final[tuple[str, ...]] = (
    "squirt",
    "BIG SQUIRT",
    "Lush in pussy😈",
    "Ride Dildo",
    "oil show",
    "take off my panties and tease you",
    "SENSUAL BLOWJOB",
    "cumshow",
    "⭐dance⭐",
    "Ocean Squirt",
    "FRENCH KISS",
)

HASHTAGS: Final[dict[str, tuple[str, ...]]] = {
    "f": _words(
        "squirt lovense new bigboobs bigass anal 18 smalltits petite natural young teen "
        "milf feet hairy cum bbw mistress lush pvt bigtits cute mature fuckmachine skinny "
        "blonde ebony curvy"
    ),
    "m": _words(
        "bigcock cum c2c lovense hairy new bigdick young muscle edging daddy feet uncut "
        "twink bbc straight femboy gay"
    ),
    "t": _words(
        "bigcock mistress wifematerial selfsuck cum lovense petite femboy daddysgirl "
        "bigboobs sissy trans cumshow smallcock anal joi"
    ),
    "c": _words(
        "couple deepthroat bigcock bigass new anal milf bigboobs blowjob tattoos 18 goth "
        "creampie squirt natural lesbian"
    ),
}

REGION_HASHTAGS: Final[dict[str, tuple[str, ...]]] = {
    "asia": _words("asian asian pinay indian"),
    "europe_russia": _words("russian european slim"),
    "northamerica": _words("american blonde natural"),
    "southamerica": _words("latina latina colombia lovense"),
    "other": _words("ebony new natural"),
}

USERNAME_WORDS: Final[tuple[str, ...]] = _words(
    "sky time dream angel sweet baby hot sexy lovely cute naughty honey kitty bunny foxy "
    "princess queen doll candy sugar wild shy little pinay asian latina bella luna miss "
    "lady boy stud cock moon star rose cherry peach velvet tequilla dirty gurl"
)

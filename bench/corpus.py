"""A generated corpus for the ingestion benchmark: web pages, PDFs and CSVs with planted facts,
and the labelled questions that ask for them.

Everything comes from one seeded `random.Random`, so a seed gives the same bytes every time.
The prose is made from topic vocabularies (water works, harbours, railways, ...): repetitive
the way real operational pages are, which is what makes retrieval non-trivial. Into it go:

  identifier  a sentence with an exact code ("error code ZX-4471"); other pages carry other codes
  number      a sentence with a figure ("a main span of 7.3 metres"), asked by name or by figure
  paraphrase  a sentence asked in other words (hand-written pairs with little word overlap)
  distractor  one sentence in seven documents that differ only by a name or a number, all attached
  pdf-page    a measurement on a given page of a PDF, with look-alike measurements on other pages
  csv-row     a value in a given row of a CSV, next to rows that look much the same

Each `Question` names the document holding the answer, how to recognise the passage (the
planted sentence, a PDF page, a CSV row) and the documents attached when it is asked: the
answer's, the distractors' and same-topic fillers, 5 to 20 in all.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape

from fpdf import FPDF

PAGES, PDFS, CSVS = 300, 30, 5
CSV_ROWS = 300
DISTRACTOR_COPIES = 6  # look-alike sentences besides the answer's, each in its own attached document
ATTACHED_MIN, ATTACHED_MAX = 5, 20

SYLLABLES = (
    "kor vel an dris tam mer lo sen bra thi quel mar os wyn har del ru fen gal nor pa zet ul vis "
    "brin cas dun el fa gor hol is jen kel lun mo nes or pel rin sto tor ven wil yar zan ost eth"
).split()


@dataclass(frozen=True)
class CorpusDocument:
    path: str  # where the fake web server serves it
    kind: str  # html, pdf or csv
    topic: str
    body: bytes
    content_type: str


@dataclass(frozen=True)
class Question:
    """A question and where its answer is.

    A chunk of the `path` document holds the answer when its text contains `needle`
    (whitespace collapsed), on `page` for a PDF, and covering data row `row` for a CSV.
    """

    kind: str
    text: str
    path: str
    needle: str
    attached: tuple[str, ...]
    page: int | None = None
    row: int | None = None


@dataclass
class Corpus:
    documents: list[CorpusDocument] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)


@dataclass
class _Topic:
    name: str
    sites: list[str]
    actors: list[str]
    verbs: list[str]
    objects: list[str]
    times: list[str]
    headings: list[str]
    devices: list[str]


TOPICS = [
    _Topic(
        "water",
        ["water works", "pumping station", "treatment plant", "reservoir"],
        ["the river authority", "the district engineer", "the pumping crew", "the reservoir operator",
         "the night shift", "the water board"],
        ["monitors", "inspects", "flushes", "recalibrates", "replaces", "reports on"],
        ["the inflow valves", "the filtration beds", "the chlorine dosing", "the overflow weir",
         "the groundwater wells", "the pressure mains"],
        ["during the dry season", "after heavy rain", "every morning", "before the annual audit",
         "when demand peaks", "at the start of each quarter"],
        ["Overview", "Supply network", "Treatment", "Maintenance", "Water quality", "Outlook"],
        ["dosing pump", "flow meter", "sluice controller", "turbidity sensor"],
    ),
    _Topic(
        "harbour",
        ["harbour", "ferry terminal", "container quay", "marina"],
        ["the harbour master", "the pilot service", "the quay crew", "the port authority",
         "the mooring team", "the customs office"],
        ["schedules", "checks", "dredges", "repaints", "logs", "inspects"],
        ["the berth fenders", "the entrance channel", "the crane rails", "the ferry ramps",
         "the mooring bollards", "the tide gauges"],
        ["at low tide", "before the summer season", "twice a week", "after every storm",
         "during the night", "when a cruise ship calls"],
        ["Overview", "Berths", "Navigation", "Safety", "Traffic", "Plans"],
        ["crane controller", "ramp hydraulics", "radar unit", "gate scanner"],
    ),
    _Topic(
        "railway",
        ["railway depot", "signal box", "station", "freight yard"],
        ["the signalling team", "the depot manager", "the track inspectors", "the timetable office",
         "the rolling stock engineers", "the station staff"],
        ["renews", "tests", "greases", "replaces", "surveys", "clears"],
        ["the points heaters", "the overhead line", "the platform edges", "the level crossings",
         "the ballast shoulders", "the brake blocks"],
        ["every night after the last train", "before the winter timetable", "once a month",
         "during engineering weekends", "in the autumn leaf season", "after each derailment drill"],
        ["Overview", "Infrastructure", "Operations", "Rolling stock", "Timetable", "Works"],
        ["axle counter", "interlocking", "ticket gate", "points motor"],
    ),
    _Topic(
        "energy",
        ["wind farm", "substation", "heating plant", "solar park"],
        ["the grid operator", "the turbine technicians", "the control room", "the plant manager",
         "the maintenance contractor", "the energy cooperative"],
        ["balances", "services", "inspects", "upgrades", "forecasts", "meters"],
        ["the transformer bays", "the rotor blades", "the heat exchangers", "the inverter rooms",
         "the cable trenches", "the battery storage"],
        ["on windy afternoons", "before the heating season", "every second week", "when prices spike",
         "after a grid fault", "during the spring outage"],
        ["Overview", "Generation", "Grid connection", "Maintenance", "Tariffs", "Outlook"],
        ["inverter", "pitch controller", "breaker relay", "heat pump"],
    ),
    _Topic(
        "museum",
        ["museum", "archive", "heritage centre", "gallery"],
        ["the curators", "the conservation studio", "the education team", "the archivists",
         "the visitor services", "the collections manager"],
        ["catalogues", "restores", "digitises", "rotates", "lends out", "photographs"],
        ["the glass negatives", "the tapestry collection", "the maritime charts", "the coin cabinet",
         "the parish registers", "the ceramic store"],
        ["before each exhibition", "during the winter closure", "every spring", "on request of researchers",
         "when loans return", "over the summer holidays"],
        ["About", "Collections", "Conservation", "Exhibitions", "Research", "Visiting"],
        ["climate logger", "display case alarm", "scanner", "humidifier"],
    ),
    _Topic(
        "clinic",
        ["clinic", "health centre", "hospital wing", "laboratory"],
        ["the ward nurses", "the pharmacy", "the day surgery team", "the lab technicians",
         "the reception staff", "the infection control group"],
        ["audits", "restocks", "sterilises", "schedules", "reviews", "validates"],
        ["the vaccine fridges", "the patient records", "the sample couriers", "the operating lists",
         "the oxygen supply", "the triage protocol"],
        ["every Monday", "before flu season", "after each shift", "during inspections",
         "when staffing is short", "at the end of the month"],
        ["Services", "Appointments", "Departments", "Quality", "Staff", "Contact"],
        ["infusion pump", "analyser", "autoclave", "monitor"],
    ),
    _Topic(
        "it",
        ["data centre", "service desk", "network hub", "server hall"],
        ["the operations team", "the on-call engineer", "the security office", "the database group",
         "the service desk", "the network engineers"],
        ["patches", "backs up", "migrates", "monitors", "rotates", "audits"],
        ["the storage arrays", "the firewall rules", "the certificate store", "the backup tapes",
         "the core switches", "the virtual machines"],
        ["every weekend", "after each release", "during the maintenance window", "once a quarter",
         "when alerts fire", "before the fiscal year closes"],
        ["Overview", "Services", "Operations", "Security", "Incidents", "Roadmap"],
        ["storage controller", "load balancer", "backup agent", "core router"],
    ),
    _Topic(
        "farm",
        ["estate", "orchard", "dairy", "cooperative"],
        ["the farm manager", "the orchard crew", "the agronomist", "the dairy team",
         "the seasonal pickers", "the cooperative board"],
        ["prunes", "irrigates", "tests", "rotates", "harvests", "grades"],
        ["the apple rows", "the barley fields", "the milking parlour", "the compost heaps",
         "the drainage ditches", "the seed stock"],
        ["in early spring", "after the first frost", "every other day", "before market day",
         "during the harvest", "when the soil dries out"],
        ["About", "Crops", "Livestock", "Soil", "Sales", "Season"],
        ["milking robot", "irrigation valve", "grain dryer", "weather station"],
    ),
]  # fmt: skip

SENTENCE_TEMPLATES = [
    "{Actor} {verb} {object} {time}.",
    "{Time}, {actor} {verb} {object}.",
    "Since {year}, {actor} {verb} {object} {time}.",
    "At {place}, {actor} {verb} {object} {time}.",
    "{Actor} {verb} {object}, and {actor2} {verb2} {object2}.",
    "The {year} review found that {actor} {verb} {object} {time}.",
    "{Actor} {verb} {object} roughly {count} times a year.",
    "Most questions about {object} go to {actor}, who {verb2} {object2} {time}.",
]

# Planted facts. An identifier fact: (passage, question) with {code} and {device}.
IDENTIFIER_FACTS = [
    ("Error code {code} on the {device} means that the supply voltage dropped below the safe limit.",
     "What does error code {code} mean?"),
    ("If the {device} shows fault {code}, reset it and call the on-duty technician.",
     "What should I do when the {device} shows fault {code}?"),
    ("Replacement part {code} is the sealing ring kit for the {device}.",
     "Which part has the number {code}?"),
    ("Ticket {code} tracks the intermittent restarts of the {device}.",
     "What is ticket {code} about?"),
    ("Firmware {code} fixed the clock drift of the {device}.",
     "What did firmware {code} fix?"),
]  # fmt: skip
# A number fact: (passage, question by name, question by figure, (low, high, decimals) of the figure).
NUMBER_FACTS = [
    ("The {name} footbridge has a main span of {value} metres.", "How long is the main span of the {name} footbridge?",
     "Which footbridge has a main span of {value} metres?", (4, 90, 1)),
    ("The {name} reservoir holds {value} million cubic metres of water when full.",
     "How much water does the {name} reservoir hold when full?",
     "Which reservoir holds {value} million cubic metres of water?", (1, 400, 1)),
    ("The {name} tunnel is {value} kilometres long.", "How long is the {name} tunnel?",
     "Which tunnel is {value} kilometres long?", (0.4, 30, 2)),
    ("The summit of Mount {name} stands {value} metres above sea level.", "How high is Mount {name}?",
     "Which mountain rises {value} metres above sea level?", (600, 4800, 0)),
    ("The {name} depot stores {value} tonnes of road salt for the winter.",
     "How much road salt does the {name} depot store?", "Which depot stores {value} tonnes of road salt?",
     (200, 9000, 0)),
    ("The {name} chimney rises {value} metres above the old brickworks.", "How tall is the {name} chimney?",
     "Which chimney rises {value} metres above the brickworks?", (18, 120, 1)),
]  # fmt: skip
# Paraphrase facts: the passage and a question in other words.
PARAPHRASE_FACTS = [
    ("Staff must not bring hot beverages into the server hall after six in the evening.",
     "Are employees allowed to carry coffee into the computer room at night?"),
    ("Cyclists should dismount and push their bikes across the old stone bridge on market days.",
     "Do people on bicycles have to get off to cross the ancient river crossing while the weekly bazaar is on?"),
    ("The canteen stops serving warm meals at half past two, after which only sandwiches remain.",
     "Until what time can I get a hot lunch in the cafeteria?"),
    ("Tenants who keep dogs or cats must register the animal with the housing office within a week of moving in.",
     "How soon do residents need to report their pets to the landlord's administration?"),
    ("The rooftop solar array covers roughly two thirds of the building's electricity needs during summer.",
     "What share of the block's power comes from its photovoltaic panels in the warm months?"),
    ("Lost keycards are replaced free of charge once; a second replacement costs a fee.",
     "Do I have to pay if I misplace my access badge again?"),
    ("Children under twelve may only enter the swimming pool when accompanied by an adult.",
     "Can young kids go into the bath without a grown-up?"),
    ("The night train to the coast was withdrawn because too few passengers used it.",
     "Why was the overnight rail service to the seaside cancelled?"),
    ("Rainwater collected from the roof is used to flush the toilets in the east wing.",
     "What happens to the precipitation gathered on top of the structure?"),
    ("The museum lowered its entry price for students to encourage more young visitors.",
     "Why did the gallery make admission cheaper for pupils?"),
    ("Volunteers repaint the harbour railings every spring before the tourist season begins.",
     "Who refreshes the colour of the port's fences, and when?"),
    ("Employees working from home receive a monthly allowance towards their internet bill.",
     "Is there any compensation for broadband costs for remote staff?"),
    ("The ferry does not sail when wind speeds exceed gale force.",
     "Will the boat crossing run during a storm?"),
    ("Library books borrowed over the holidays may be returned in the first week of January without a fine.",
     "Is there a penalty for handing back loaned volumes late after Christmas?"),
    ("The bakery switched to flour milled in the same valley to cut transport emissions.",
     "Why does the bread shop now source its grain locally?"),
    ("Patients should not eat anything for eight hours before the blood test.",
     "How long must I fast before having my sample taken?"),
    ("The old mill's waterwheel was restored by apprentices from the carpentry school.",
     "Who repaired the wooden paddle wheel of the historic grinding house?"),
    ("Residents may leave bulky furniture at the kerb on the first Monday of each month for collection.",
     "When can people put out large items like sofas for pickup?"),
    ("Snow clearing on the mountain pass starts at four in the morning so the road opens by seven.",
     "How early do crews begin plowing the high route in winter?"),
    ("The choir rehearses in the church hall because the school gym is too echoey.",
     "Why does the singing group practise at the parish building instead of the sports hall?"),
    ("Drivers must switch off their engines while waiting at the level crossing.",
     "Should motorists turn off the motor when stopped at the railway barrier?"),
    ("The orchard's apple harvest was poor this year after a late frost damaged the blossoms.",
     "Why did the fruit trees yield so little this season?"),
    ("Guests can borrow umbrellas at the reception desk and return them on departure.",
     "Is there somewhere in the hotel to get a brolly for rainy days?"),
    ("The laboratory's freezers are connected to a backup generator in case of a power cut.",
     "What keeps the lab's cold storage running during a blackout?"),
]  # fmt: skip
# Pages often end with practical notices; paraphrase facts are planted among them, as a real
# page would hold a house rule (not in the middle of unrelated prose).
NOTICE_HEADINGS = ["Practical information", "Visitor information", "House rules", "Notices"]
NOTICES = [
    "Opening hours are posted at the main entrance and on the notice board.",
    "Parking spaces for visitors are marked in blue behind the main building.",
    "Deliveries are accepted on weekdays between eight and noon.",
    "The lift to the upper floors is out of service on Sunday mornings for inspection.",
    "Lost property is kept at the front desk for thirty days.",
    "Smoking is only allowed in the shelter next to the bicycle racks.",
    "Fire drills take place twice a year without prior notice.",
    "Visitors sign in at the front desk and wear a badge at all times.",
    "Meeting rooms can be booked through the facilities office.",
    "The first aid kit hangs next to the kitchen door on every floor.",
    "Guided tours start at ten and at two, and last about an hour.",
    "Photocopies cost ten cents per page at the library counter.",
    "The main gate closes at ten in the evening; a side door stays open until midnight.",
    "Wheelchair access is through the ramp on the north side.",
    "Wi-Fi is free for visitors; the password is printed on the reception desk.",
    "Cleaning staff empty the recycling bins every Tuesday and Friday.",
    "Questions about invoices go to the accounts office on the second floor.",
    "During public holidays, the switchboard is staffed from nine to one.",
]
# Distractor families: one sentence, seven documents, a different place and figure in each.
DISTRACTOR_FACTS = [
    ("The pumping station at {place} processes {value} litres of water per hour.",
     "How many litres of water per hour does the pumping station at {place} process?",
     "Where is the pumping station that processes {value} litres of water per hour?"),
    ("The bus depot in {place} houses {value} electric buses.",
     "How many electric buses does the bus depot in {place} house?",
     "Which town's bus depot houses {value} electric buses?"),
    ("The branch library in {place} lends out about {value} books every month.",
     "How many books a month does the branch library in {place} lend out?",
     "Which branch library lends out about {value} books every month?"),
    ("The cold store at {place} keeps up to {value} pallets at minus twenty degrees.",
     "How many pallets can the cold store at {place} keep frozen?",
     "Where is the cold store that keeps up to {value} pallets frozen?"),
    ("The recycling centre in {place} sorts {value} tonnes of glass each week.",
     "How much glass does the recycling centre in {place} sort each week?",
     "Which recycling centre sorts {value} tonnes of glass each week?"),
    ("The ferry terminal at {place} handles {value} passengers on a typical summer day.",
     "How many passengers does the ferry terminal at {place} handle on a summer day?",
     "Which ferry terminal handles {value} passengers on a typical summer day?"),
]  # fmt: skip
# PDF measurements: (quantity, unit, low, high, decimals), asked as "What {quantity} ... at {place}?"
PDF_MEASUREMENTS = [
    ("tidal range", "metres", 1, 12, 1),
    ("peak wind speed", "km/h", 60, 190, 0),
    ("nitrate level", "mg per litre", 2, 60, 1),
    ("average daily ridership", "passengers", 400, 9000, 0),
    ("soil moisture", "percent", 8, 45, 1),
    ("night-time noise level", "decibels", 30, 70, 0),
]
PDF_TOPICS = ["coastal survey", "monitoring report", "annual review", "field study", "technical note"]
CSV_NOTES = ["market town", "fishing village", "former mining town", "spa town", "university town", "river port"]
CSV_REGIONS = ["North Vale", "East March", "Lowmoor", "Highcliff", "South Fen", "Westholm"]
CSV_PARTS = ["brass hinge 40 mm", "steel bracket 120 mm", "rubber gasket DN50", "copper pipe 22 mm",
             "LED panel 600x600", "ball valve 1 inch", "cable gland M20", "fuse holder 32 A",
             "door closer EN3", "hex bolt M12x60"]  # fmt: skip
CSV_WAREHOUSES = ["Lisbon", "Gdansk", "Tampere", "Lyon", "Graz", "Bilbao"]
CSV_SUBJECTS = [
    "Coastal Geology", "Hydraulic Engineering", "Medieval Trade", "Soil Chemistry", "Urban Ecology",
    "Marine Biology", "Rail Logistics", "Glass Conservation", "Power Systems", "Public Health",
    "Network Security", "Orchard Management", "Harbour Design", "Archive Science", "Wind Energy",
    "Water Treatment", "Transport Planning", "Textile History", "Data Engineering", "Crop Science",
]  # fmt: skip
CSV_COURSE_PREFIXES = ["Introduction to", "Advanced", "Applied", "Field Methods in", "Seminar on"]
CSV_LECTURERS = ["Dr Aalto", "Dr Brenner", "Prof Castell", "Dr Duval", "Prof Eskola", "Dr Ferreira", "Dr Grahn"]
CSV_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]


class _Writer:
    """Names, figures and prose from one random generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used_names: set[str] = set()
        self.used_codes: set[str] = set()

    def name(self) -> str:
        while True:
            name = "".join(self.rng.choice(SYLLABLES) for _ in range(self.rng.choice((2, 2, 3)))).capitalize()
            if name not in self.used_names and len(name) > 4:
                self.used_names.add(name)
                return name

    def code(self) -> str:
        while True:
            letters = "".join(self.rng.choice("ABDEFHKMNPQRSTXZ") for _ in range(2))
            shape = self.rng.randrange(4)
            if shape == 0:
                code = f"{letters}-{self.rng.randint(1000, 9999)}"
            elif shape == 1:
                code = f"{letters}-{self.rng.randint(100, 999):04d}-{self.rng.choice('ABCDE')}"
            elif shape == 2:
                code = f"E{self.rng.randint(1000, 9999)}"
            else:
                code = f"{letters}{self.rng.randint(10, 99)}.{self.rng.randint(1, 9)}.{self.rng.randint(0, 20)}"
            if code not in self.used_codes:
                self.used_codes.add(code)
                return code

    def figure(self, low: float, high: float, decimals: int) -> str:
        value = self.rng.uniform(low, high)
        return f"{value:,.{decimals}f}"

    def sentence(self, topic: _Topic) -> str:
        rng = self.rng
        template = rng.choice(SENTENCE_TEMPLATES)
        actor, actor2 = rng.sample(topic.actors, 2)
        text = template.format(
            Actor=actor.capitalize(), actor=actor, actor2=actor2, verb=rng.choice(topic.verbs),
            verb2=rng.choice(topic.verbs), object=rng.choice(topic.objects), object2=rng.choice(topic.objects),
            time=rng.choice(topic.times), Time=rng.choice(topic.times).capitalize(), year=rng.randint(1990, 2025),
            place=self.place(), count=rng.randint(2, 40),
        )  # fmt: skip
        return text

    def place(self) -> str:
        # Places in ordinary prose repeat (unlike planted names): a small pool per process.
        return self.rng.choice(_COMMON_PLACES)

    def paragraph(self, topic: _Topic, sentences: int) -> list[str]:
        return [self.sentence(topic) for _ in range(sentences)]

    def notices(self) -> list[str]:
        return self.rng.sample(NOTICES, self.rng.randint(3, 5))


_COMMON_PLACES = ["Ardmore", "Belhaven", "Carrick", "Dunmore", "Elstow", "Fairlie", "Glenholm", "Hexby"]


@dataclass
class _Page:
    """An HTML page or a PDF while it is being written: sections of paragraphs of sentences."""

    path: str
    kind: str
    topic: _Topic
    title: str
    sections: list[tuple[str, list[list[str]]]]

    def notices(self, writer: _Writer) -> int:
        """The index of the page's section of practical notices, added if it has none."""
        for index, (heading, _) in enumerate(self.sections):
            if heading in NOTICE_HEADINGS:
                return index
        self.sections.append((writer.rng.choice(NOTICE_HEADINGS), [writer.notices()]))
        return len(self.sections) - 1

    def plant(self, rng: random.Random, sentence: str, section: int | None = None) -> int:
        """Put `sentence` into a random paragraph (of `section`, if given); returns the section."""
        index = rng.randrange(len(self.sections)) if section is None else section
        paragraphs = self.sections[index][1]
        paragraph = rng.choice(paragraphs)
        paragraph.insert(rng.randint(0, len(paragraph)), sentence)
        return index


def corpus_generate(*, scale: float = 1.0, seed: int = 7) -> Corpus:
    """The documents and questions for a scale (1.0: 300 pages, 30 PDFs, 5 CSVs)."""
    rng = random.Random(seed)
    writer = _Writer(rng)
    n_pages = max(20, round(PAGES * scale))
    n_pdfs = max(2, round(PDFS * scale))
    n_csvs = max(1, round(CSVS * scale))

    pages = [_html_page(writer, index) for index in range(n_pages)]
    pdfs = [_pdf_page_set(writer, index) for index in range(n_pdfs)]
    pending: list[tuple[str, str, str, tuple[str, ...], int | None, int | None, str]] = []

    # Noise first, so that planted facts are never the only code or figure on a page.
    for page in pages:
        for _ in range(rng.randint(0, 2)):
            passage, _question = rng.choice(IDENTIFIER_FACTS)
            page.plant(rng, passage.format(code=writer.code(), device=rng.choice(page.topic.devices)))
        if rng.random() < 0.5:
            passage, _, _, bounds = rng.choice(NUMBER_FACTS)
            page.plant(rng, passage.format(name=writer.name(), value=writer.figure(*bounds)))

    order = rng.sample(range(n_pages), n_pages)
    free = iter(order + order)  # pages may carry two planted facts when the corpus is small

    for index in range(max(4, round(25 * scale))):
        page = pages[next(free)]
        passage, question = IDENTIFIER_FACTS[index % len(IDENTIFIER_FACTS)]
        values = {"code": writer.code(), "device": rng.choice(page.topic.devices)}
        page.plant(rng, passage.format(**values))
        pending.append(("identifier", question.format(**values), page.path, (), None, None, passage.format(**values)))

    for index in range(max(4, round(25 * scale))):
        page = pages[next(free)]
        passage, by_name, by_value, bounds = NUMBER_FACTS[index % len(NUMBER_FACTS)]
        values = {"name": writer.name(), "value": writer.figure(*bounds)}
        page.plant(rng, passage.format(**values))
        question = (by_name if _first_variant(index, len(NUMBER_FACTS)) else by_value).format(**values)
        pending.append(("number", question, page.path, (), None, None, passage.format(**values)))

    for passage, question in PARAPHRASE_FACTS[: max(4, round(len(PARAPHRASE_FACTS) * scale))]:
        page = pages[next(free)]
        page.plant(rng, passage, section=page.notices(writer))
        pending.append(("paraphrase", question, page.path, (), None, None, passage))

    family_pages = [page for page in pages if page.path not in {p[2] for p in pending}]
    rng.shuffle(family_pages)
    families = min(max(2, round(16 * scale)), len(family_pages) // (DISTRACTOR_COPIES + 1))
    for index in range(families):
        members = family_pages[index * (DISTRACTOR_COPIES + 1) : (index + 1) * (DISTRACTOR_COPIES + 1)]
        passage, by_place, by_value = DISTRACTOR_FACTS[index % len(DISTRACTOR_FACTS)]
        sentences = []
        for member in members:
            values = {"place": writer.name(), "value": f"{rng.randint(12, 980) * 10:,}"}
            member.plant(rng, passage.format(**values))
            sentences.append((member.path, values))
        target_path, values = sentences[0]
        question = (by_place if _first_variant(index, len(DISTRACTOR_FACTS)) else by_value).format(**values)
        others = tuple(path for path, _ in sentences[1:])
        pending.append(("distractor", question, target_path, others, None, None, passage.format(**values)))

    for pdf in pdfs:
        quantity, unit, low, high, decimals = rng.choice(PDF_MEASUREMENTS)
        planted_pages = rng.sample(range(1, len(pdf.sections)), 3)
        for position, section in enumerate(planted_pages):
            place = writer.name()
            value = writer.figure(low, high, decimals)
            sentence = (
                f"At {place}, the survey team measured a {quantity} of {value} {unit} in {rng.randint(1995, 2024)}."
            )
            pdf.plant(rng, sentence, section=section)
            if position == 0:
                question = f"What {quantity} did the survey team measure at {place}?"
                pending.append(("pdf-page", question, pdf.path, (), section + 1, None, sentence))

    corpus = Corpus()
    for page in pages:
        corpus.documents.append(CorpusDocument(page.path, "html", page.topic.name, _html_bytes(rng, page),
                                               "text/html; charset=utf-8"))  # fmt: skip
    for pdf in pdfs:
        corpus.documents.append(CorpusDocument(pdf.path, "pdf", pdf.topic.name, _pdf_bytes(pdf), "application/pdf"))
    for index in range(n_csvs):
        body, csv_questions = _csv(writer, index)
        path = f"/data/{index:02d}-{_CSV_SCHEMAS[index % len(_CSV_SCHEMAS)]}.csv"
        corpus.documents.append(CorpusDocument(path, "csv", "tables", body, "text/csv; charset=utf-8"))
        for question, row, needle in csv_questions:
            pending.append(("csv-row", question, path, (), None, row, needle))

    by_path = {document.path: document for document in corpus.documents}
    for kind, text, path, others, page_number, row, needle in pending:
        attached = _attached(rng, corpus.documents, by_path[path], others)
        corpus.questions.append(Question(kind, text, path, needle, attached, page_number, row))
    return corpus


def _first_variant(index: int, templates: int) -> bool:
    """Alternate two ways of asking, so that every template is asked both ways over the rounds."""
    return (index + index // templates) % 2 == 0


def _attached(
    rng: random.Random, documents: list[CorpusDocument], target: CorpusDocument, others: tuple[str, ...]
) -> tuple[str, ...]:
    """The documents a user would have attached: the answer's, the look-alikes', and fillers,
    mostly of the same topic and kind (the realistic case: a folder of related documents)."""
    size = max(rng.randint(ATTACHED_MIN, ATTACHED_MAX), len(others) + 1 + 3)
    chosen = [target.path, *others]
    related = [d.path for d in documents if d.path not in chosen and (d.topic == target.topic or d.kind == target.kind)]
    rest = [d.path for d in documents if d.path not in chosen and d.path not in related]
    want_related = min(len(related), (size - len(chosen)) * 3 // 4)
    chosen += rng.sample(related, want_related)
    chosen += rng.sample(rest, min(len(rest), size - len(chosen)))
    return tuple(chosen)


# --- HTML -----------------------------------------------------------------------------


def _html_page(writer: _Writer, index: int) -> _Page:
    rng = writer.rng
    topic = TOPICS[index % len(TOPICS)]
    site = rng.choice(topic.sites)
    title = f"{writer.name()} {site}: {rng.choice(topic.headings).lower()} notes"
    headings = rng.sample(topic.headings, rng.randint(3, 5))
    sections = [
        (heading, [writer.paragraph(topic, rng.randint(3, 6)) for _ in range(rng.randint(1, 3))])
        for heading in headings
    ]
    page = _Page(f"/pages/{index:04d}.html", "html", topic, title, sections)
    if rng.random() < 0.3:
        page.notices(writer)
    return page


def _html_bytes(rng: random.Random, page: _Page) -> bytes:
    # Real pages are mostly chrome: a menu of a few dozen links, inline scripts and styles.
    nav = "".join(
        f'<li><a href="/{site.replace(" ", "-")}/{n}">{escape(heading)} at the {escape(site)}</a></li>'
        for n, (site, heading) in enumerate((s, h) for s in page.topic.sites for h in page.topic.headings * 2)
    )
    related = "".join(
        f'<li><a href="/pages/{rng.randrange(10000):04d}.html">Related notes {n}</a></li>' for n in range(10)
    )
    body = []
    for heading, paragraphs in page.sections:
        body.append(f"<h2>{escape(heading)}</h2>")
        body.extend(f"<p>{escape(' '.join(paragraph))}</p>" for paragraph in paragraphs)
    script = "window.dataLayer = window.dataLayer || [];" + "function track(e){dataLayer.push({event:e});}" * 120
    style = "body{font-family:sans-serif;margin:0}.card{padding:1rem;border:1px solid #ddd}" * 40
    html = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(page.title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{style}</style><script>{script}</script></head>
<body>
<header class="site-header"><a href="/">Home</a> <form role="search"><input name="q"></form></header>
<nav><ul class="menu">{nav}</ul></nav>
<div class="cookie-banner" id="cookie-consent">We use cookies to measure visits. <button>Accept</button></div>
<main><article>
<h1>{escape(page.title)}</h1>
{"".join(body)}
</article></main>
<aside><h3>Related</h3><ul>{related}</ul></aside>
<footer>Contact the {escape(page.topic.sites[0])} office. Privacy. Terms. Accessibility.</footer>
<script src="/static/app.js"></script>
</body></html>
"""
    return html.encode()


# --- PDF ------------------------------------------------------------------------------


def _pdf_page_set(writer: _Writer, index: int) -> _Page:
    """A PDF as pages: each section is one page, headed by its title line."""
    rng = writer.rng
    topic = TOPICS[(index * 3) % len(TOPICS)]
    title = f"{writer.name()} {rng.choice(topic.sites)} {rng.choice(PDF_TOPICS)} {rng.randint(2015, 2025)}"
    sections = [
        (f"{number}. {rng.choice(topic.headings)}", [writer.paragraph(topic, rng.randint(4, 6)) for _ in range(3)])
        for number in range(1, rng.randint(6, 9) + 1)
    ]
    return _Page(f"/reports/{index:03d}.pdf", "pdf", topic, title, sections)


def _pdf_bytes(page: _Page) -> bytes:
    pdf = FPDF()
    pdf.set_creation_date(datetime(2026, 1, 5, tzinfo=UTC))
    pdf.set_title(page.title)
    pdf.set_auto_page_break(auto=False)
    for number, (heading, paragraphs) in enumerate(page.sections, start=1):
        pdf.add_page()
        pdf.set_font("Helvetica", style="B", size=13)
        pdf.multi_cell(0, 8, page.title if number == 1 else heading)
        pdf.set_font("Helvetica", size=10)
        for paragraph in paragraphs:
            pdf.ln(3)
            pdf.multi_cell(0, 5, " ".join(paragraph))
    return bytes(pdf.output())


# --- CSV ------------------------------------------------------------------------------

_CSV_SCHEMAS = ["towns", "inventory", "vessels", "sensors", "courses"]


def _csv(writer: _Writer, index: int) -> tuple[bytes, list[tuple[str, int, str]]]:
    """A CSV file and its questions: (question, 1-based data row, a value the row holds)."""
    rng = writer.rng
    schema = _CSV_SCHEMAS[index % len(_CSV_SCHEMAS)]
    rows: list[list[str]] = []
    asked: list[tuple[str, int, str]] = []
    if schema == "towns":
        header = ["town", "region", "population", "founded", "elevation_m", "note"]
        for _ in range(CSV_ROWS):
            rows.append([writer.name(), rng.choice(CSV_REGIONS), str(rng.randint(800, 90000)),
                         str(rng.randint(1100, 1950)), str(rng.randint(0, 1400)), rng.choice(CSV_NOTES)])  # fmt: skip

        def ask(row: list[str]) -> tuple[str, str]:
            return rng.choice(
                [(f"What is the population of {row[0]}?", row[0]), (f"When was {row[0]} founded?", row[0]),
                 (f"At what elevation does {row[0]} lie?", row[0])]
            )  # fmt: skip
    elif schema == "inventory":
        header = ["part_no", "description", "warehouse", "quantity", "unit_price_eur", "supplier"]
        for _ in range(CSV_ROWS):
            rows.append([writer.code(), rng.choice(CSV_PARTS), rng.choice(CSV_WAREHOUSES), str(rng.randint(0, 5000)),
                         f"{rng.uniform(0.2, 300):.2f}", f"{writer.name()} Supply"])  # fmt: skip

        def ask(row: list[str]) -> tuple[str, str]:
            return rng.choice(
                [(f"How many units of part {row[0]} are in stock?", row[0]),
                 (f"What is the unit price of part {row[0]}?", row[0])]
            )  # fmt: skip
    elif schema == "vessels":
        header = ["vessel", "flag", "built", "gross_tonnage", "home_port", "operator"]
        for _ in range(CSV_ROWS):
            rows.append([f"MV {writer.name()}", rng.choice(["Norway", "Malta", "Portugal", "Finland", "Ireland"]),
                         str(rng.randint(1968, 2024)), str(rng.randint(300, 60000)), writer.name(),
                         f"{writer.name()} Lines"])  # fmt: skip

        def ask(row: list[str]) -> tuple[str, str]:
            return rng.choice(
                [(f"In which year was the vessel {row[0]} built?", row[0]),
                 (f"What is the home port of the {row[0]}?", row[0])]
            )  # fmt: skip
    elif schema == "sensors":
        header = ["sensor_id", "site", "installed", "last_reading", "unit", "status"]
        for _ in range(CSV_ROWS):
            unit = rng.choice(["degC", "hPa", "mm", "m/s", "ppm"])
            installed = f"{rng.randint(2012, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            status = rng.choice(["ok", "ok", "ok", "degraded", "offline"])
            sensor = f"S-{rng.randint(1000, 9999)}-{rng.choice('ABCD')}"
            rows.append([sensor, writer.name(), installed, f"{rng.uniform(0, 1100):.1f}", unit, status])

        def ask(row: list[str]) -> tuple[str, str]:
            return rng.choice(
                [(f"What was the last reading of sensor {row[0]}?", row[0]),
                 (f"What is the status of the sensor at {row[1]}?", row[1])]
            )  # fmt: skip
    else:
        header = ["code", "title", "lecturer", "room", "weekday", "start"]
        titles = [f"{prefix} {subject} {level}" for prefix in CSV_COURSE_PREFIXES for subject in CSV_SUBJECTS
                  for level in ("I", "II", "III")]  # fmt: skip
        for title in rng.sample(titles, min(CSV_ROWS, len(titles))):
            start = f"{rng.randint(8, 17):02d}:{rng.choice(['00', '15', '30'])}"
            room = f"R{rng.randint(1, 40):02d}"
            rows.append(
                [f"C{rng.randint(100, 999)}", title, rng.choice(CSV_LECTURERS), room, rng.choice(CSV_WEEKDAYS), start]
            )

        def ask(row: list[str]) -> tuple[str, str]:
            return rng.choice(
                [(f"Who teaches {row[1]}?", row[1]), (f"In which room is {row[1]} held?", row[1])]
            )  # fmt: skip

    for number in sorted(rng.sample(range(1, len(rows) + 1), min(5, len(rows)))):
        question, needle = ask(rows[number - 1])
        asked.append((question, number, needle))
    text = "\n".join(",".join(line) for line in [header, *rows]) + "\n"
    return text.encode(), asked


def synthetic_chunk_texts(*, count: int, seed: int = 11) -> list[str]:
    """`count` chunk-sized texts of topic prose, for filling the store up to a size."""
    writer = _Writer(random.Random(seed))
    return [" ".join(writer.paragraph(TOPICS[index % len(TOPICS)], writer.rng.randint(3, 6))) for index in range(count)]

"""An independent, hand-labelled retrieval test set for the ingestion benchmark.

The tuning set (`bench.corpus`) is what retrieval was tuned on, so scores on it flatter the system.
This module builds a second set that shares nothing with it except the three dataclasses
(`CorpusDocument`, `Question`, `Corpus`), so the same evaluation code runs on both:

* a new world: Veltrona Medical, a mid-size European maker of infusion pumps (InfuSafe), patient
  monitors (VitaView) and transport ventilators (AeroVent), with plants in Tallinn and Brno;
* hand-written prose instead of vocabulary-driven sentences: support articles with error codes,
  product pages with spec tables and accessory part numbers, firmware release notes, service
  centre pages, HR policies on an intranet, press releases, near-identical articles for two
  product variants;
* four different page templates with heavy boilerplate (menus, cookie banners, breadcrumbs,
  bylines, sidebars, related-article lists, footers, inline scripts);
* PDFs drawn with fpdf2 at run time (two-column pages, tables, running headers and footers,
  several pages per document with look-alike facts on each);
* CSVs in several dialects: windows-1252 and latin-1 with `;` and decimal commas, tab-separated
  UTF-8 with a BOM, UTF-8 with quoted fields containing commas; a few hundred look-alike rows each;
* questions written the way users ask them, 8 kinds (see `KINDS`), at least 20 of each. A
  paraphrase question shares no content word (nor a crude stem) with its answer sentence.

Labels follow `Question`: a chunk of `path` answers when its whitespace-collapsed text contains
`needle` (case-sensitive), on `page` (1-based) for a PDF, covering data row `row` (1-based, header
not counted) for a CSV. `testset_check` asserts that every needle occurs exactly once in the answer
document as a reader sees it (HTML text outside tags, pypdf text of the stated page, the decoded
CSV row) and in no other attached document.

Run `python -m bench.testset` to generate, check and print a summary.
"""

from __future__ import annotations

import csv
import difflib
import html
import io
import random
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bs4 import BeautifulSoup
from bs4.element import NavigableString, PreformattedString
from fpdf import FPDF, XPos, YPos
from pypdf import PdfReader

from bench.corpus import Corpus, CorpusDocument, Question

KINDS = (
    "identifier",
    "number",
    "paraphrase",
    "distractor",
    "pdf-page",
    "csv-row",
    "table-number",
    "near-duplicate",
)
MIN_PER_KIND = 18
MIN_TOTAL = 160
HTML_TYPE = "text/html; charset=utf-8"
PDF_TYPE = "application/pdf"

Block = tuple[Any, ...]

# ---------------------------------------------------------------------------------------------
# Text helpers (shared by generation and the check)
# ---------------------------------------------------------------------------------------------

_WS = re.compile(r"\s+")


def _collapse(text: str) -> str:
    return _WS.sub(" ", text).strip()


_STOP = frozenset(
    """
    a an the of to in on for at by with from into onto over under about after before as and or but
    if then than so not no nor is are was were be been being am do does did doing done have has had
    having i me my mine we us our you your yours he him his she her it its they them their this that
    these those there here what which who whom whose how when where why can could should would will
    shall may might must much many any some all each every other own same such just also only very
    too up out off get gets got s t ll re ve d m o y e
    """.split()
)
_SUFFIXES = "ations ation ments ment ingly ings ing edly ers er ied ies ed es ly s".split()


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _content_stems(text: str) -> set[str]:
    return {_stem(w) for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP}


def shared_stems(question: str, sentence: str) -> set[str]:
    """Content-word stems the question shares with the sentence (equal, or one a prefix of the other)."""
    shared = set()
    for q in _content_stems(question):
        for s in _content_stems(sentence):
            short, long_ = sorted((q, s), key=len)
            if q == s or (len(short) >= 4 and long_.startswith(short)):
                shared.add(f"{q}~{s}")
    return shared


def _sentence_with(text: str, needle: str) -> str:
    for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9])", text):
        if needle in sentence:
            return sentence
    raise AssertionError(f"no sentence holds {needle!r}")


def html_text_nodes(body: bytes) -> list[str]:
    """Collapsed text of every text node a reader can see (no script, style, comments)."""
    soup = BeautifulSoup(body.decode("utf-8"), "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    nodes = []
    for node in soup.find_all(string=True):
        if isinstance(node, PreformattedString) or not isinstance(node, NavigableString):
            continue
        text = _collapse(str(node))
        if text:
            nodes.append(text)
    return nodes


def pdf_page_texts(body: bytes) -> list[str]:
    return [_collapse(page.extract_text() or "") for page in PdfReader(io.BytesIO(body)).pages]


def csv_charset(content_type: str) -> str:
    match = re.search(r"charset=([\w-]+)", content_type)
    assert match, content_type
    return match.group(1)


def document_text(doc: CorpusDocument) -> str:
    """What a reader gets out of the document, whitespace collapsed."""
    if doc.kind == "html":
        return " ".join(html_text_nodes(doc.body))
    if doc.kind == "pdf":
        return " ".join(pdf_page_texts(doc.body))
    return _collapse(doc.body.decode(csv_charset(doc.content_type)))


# ---------------------------------------------------------------------------------------------
# The world
# ---------------------------------------------------------------------------------------------

_MONTHS = "January February March April May June July August September October November December".split()


def _fmt_date(d: date) -> str:
    return f"{d.day} {_MONTHS[d.month - 1]} {d.year}"


def _rand_date(rng: random.Random, start: date = date(2023, 2, 1), days: int = 600) -> date:
    return start + timedelta(days=rng.randrange(days))


_PRODUCTS = [
    # slug, name, family, what it is
    ("infusafe-x200", "InfuSafe X200", "pump", "volumetric infusion pump"),
    ("infusafe-x210", "InfuSafe X210", "pump", "volumetric infusion pump for transport"),
    ("infusafe-x300", "InfuSafe X300", "pump", "volumetric infusion pump with dual channel"),
    ("infusafe-s12", "InfuSafe S12", "syringe", "syringe driver"),
    ("infusafe-s14", "InfuSafe S14", "syringe", "syringe driver for anaesthesia"),
    ("vitaview-m5", "VitaView M5", "monitor", "compact patient monitor"),
    ("vitaview-m7", "VitaView M7", "monitor", "bedside patient monitor"),
    ("vitaview-m9", "VitaView M9", "monitor", "high-acuity patient monitor"),
    ("aerovent-v40", "AeroVent V40", "vent", "transport ventilator"),
    ("aerovent-v60", "AeroVent V60", "vent", "transport and emergency ventilator"),
]

_ACCESSORIES: dict[str, list[tuple[str, str]]] = {
    "infusafe-x200": [
        ("VT-2231-B", "anti-siphon administration set, 2.5 m"),
        ("VT-2240-A", "pole clamp with quick-release lever"),
        ("VT-2252-B", "battery pack, 2.6 Ah"),
        ("VT-2260-A", "carry bag with drip shield"),
    ],
    "infusafe-x210": [
        ("VT-2231-D", "anti-siphon administration set, 2.0 m"),
        ("VT-2240-F", "pole clamp for rails up to 40 mm"),
        ("VT-2252-D", "battery pack, 2.9 Ah"),
        ("VT-2270-A", "docking plate for four pumps"),
    ],
    "infusafe-x300": [
        ("VT-2231-C", "anti-siphon administration set, 3.0 m, needle-free Y-port"),
        ("VT-2240-E", "rotating pole clamp, 360 degrees"),
        ("VT-2252-C", "battery pack, 3.4 Ah"),
        ("VT-2270-B", "docking plate for six pumps"),
    ],
    "infusafe-s12": [
        ("VT-3310-A", "syringe holder for 5 to 50 mL syringes"),
        ("VT-3315-A", "extension line, 150 cm, low volume"),
        ("VT-3320-A", "battery pack, 1.8 Ah"),
    ],
    "infusafe-s14": [
        ("VT-3310-B", "syringe holder for 5 to 60 mL syringes"),
        ("VT-3315-B", "extension line, 200 cm, light-protected"),
        ("VT-3320-B", "battery pack, 2.2 Ah"),
    ],
    "vitaview-m5": [
        ("VT-5102-A", "reusable SpO2 finger clip, adult"),
        ("VT-5140-A", "NIBP cuff, adult, 25 to 35 cm"),
        ("VT-5160-A", "3-lead ECG cable"),
    ],
    "vitaview-m7": [
        ("VT-5102-P", "reusable SpO2 finger clip, paediatric"),
        ("VT-5140-L", "NIBP cuff, large adult, 32 to 43 cm"),
        ("VT-5160-B", "5-lead ECG cable"),
        ("VT-5180-A", "skin temperature probe"),
    ],
    "vitaview-m9": [
        ("VT-5102-N", "SpO2 wrap sensor, neonatal"),
        ("VT-5140-T", "NIBP cuff, thigh, 42 to 54 cm"),
        ("VT-5160-C", "12-lead ECG trunk cable"),
        ("VT-5190-A", "mainstream CO2 sensor"),
    ],
    "aerovent-v40": [
        ("VT-7720-A", "single-limb breathing circuit, adult, 1.8 m"),
        ("VT-7731-C", "oxygen cell, galvanic"),
        ("VT-7745-A", "HME filter, box of 50"),
    ],
    "aerovent-v60": [
        ("VT-7720-B", "single-limb breathing circuit, paediatric, 1.5 m"),
        ("VT-7731-D", "oxygen cell, long-life"),
        ("VT-7745-B", "HME filter with sampling port, box of 50"),
    ],
}

_FEATURES = {
    "pump": [
        "Drug library with soft and hard limits per care area",
        "Anti-free-flow protection built into every cassette",
        "Downstream occlusion detection with adjustable sensitivity",
        "Colour display readable from three metres",
        "Wireless connection to the Veltrona Fleet Manager",
        "Event log export over USB or Wi-Fi",
        "Silent night mode with dimmed display",
    ],
    "syringe": [
        "Automatic syringe size and brand recognition",
        "Pre-alarm before the syringe runs empty",
        "Pressure trending during the infusion",
        "Compact housing that stacks with InfuSafe pumps",
        "Bolus on demand with a locked maximum",
        "Drug library shared with InfuSafe volumetric pumps",
    ],
    "monitor": [
        "Configurable alarm profiles for ward, ICU and transport",
        "Trend review with event markers",
        "Hot-swappable battery",
        "Gesture-based touchscreen that works with gloves",
        "HL7 interface to the hospital information system",
        "Fanless design for quiet rooms",
    ],
    "vent": [
        "Turbine-driven, no compressed air needed",
        "Invasive and non-invasive ventilation modes",
        "High-flow oxygen therapy mode",
        "Rugged housing tested for road and air ambulances",
        "Quick-start presets for adult, child and infant",
        "Integrated oxygen monitoring",
    ],
}

_PRODUCT_BLURBS = {
    "pump": [
        "The pump is designed for general wards, intensive care and theatre, and it shares one drug library "
        "format with every other InfuSafe device.",
        "Nurses load the cassette with one hand, and the pump primes itself before the first infusion.",
        "Biomedical engineers can service the mechanism without special tools.",
    ],
    "syringe": [
        "The driver is made for small volumes and slow rates where every drop counts.",
        "It recognises the syringe as soon as the plunger clamp closes.",
        "The same battery pack fits every driver of the current generation.",
    ],
    "monitor": [
        "The monitor follows the patient from the emergency department to the ward without disconnecting sensors.",
        "Alarm limits move with the monitor, so a transfer never resets the settings.",
        "A central station can supervise up to sixteen beds.",
    ],
    "vent": [
        "The ventilator runs from its own turbine, so it works wherever there is no wall gas.",
        "Crews set it up from a preset in a few steps and adjust settings during the journey.",
        "The housing is sealed against rain and dust.",
    ],
}

_SPEC_QUESTIONS = {
    "Maximum bolus rate": "What's the maximum bolus rate on the {name}?",
    "Weight incl. battery": "How much does the {name} weigh with its battery fitted?",
    "Battery runtime at 25 mL/h": "How long will the {name} keep running on battery at 25 mL/h?",
    "Battery runtime at 5 mL/h": "How long does the {name} run on its battery at 5 mL/h?",
    "Event log capacity": "How many events can the {name} keep in its event log?",
    "Full charge time": "How long does a full charge of the {name} take?",
    "Battery runtime": "What battery runtime does the {name} have?",
    "Trend storage": "How much trend data does the {name} store?",
    "Display": "How big is the screen on the {name}?",
    "Tidal volume range": "What tidal volume range can the {name} deliver?",
    "Drug library capacity": "How many entries fit in the {name}'s drug library?",
}


def _specs(family: str, rng: random.Random) -> list[tuple[str, str]]:
    def weight(lo: float, hi: float) -> str:
        return f"{rng.uniform(lo, hi):.2f} kg"

    if family == "pump":
        return [
            ("Flow rate range", f"0.1 to {rng.choice([999, 1200, 1500]):,} mL/h"),
            ("Maximum bolus rate", f"{rng.randrange(800, 1400, 50):,} mL/h"),
            ("Volume accuracy", f"±{rng.choice([4, 5])} %"),
            ("Occlusion pressure levels", f"{rng.choice([9, 12, 15])} user-selectable levels"),
            ("Battery runtime at 25 mL/h", f"{rng.randint(6, 14)}.{rng.choice([0, 5])} h"),
            ("Full charge time", f"{rng.randint(3, 5)} h {rng.choice([15, 30, 45])} min"),
            ("Weight incl. battery", weight(1.6, 2.9)),
            (
                "Dimensions (H × W × D)",
                f"{rng.randint(130, 160)} × {rng.randint(180, 230)} × {rng.randint(120, 160)} mm",
            ),
            ("Ingress protection", rng.choice(["IP33", "IP34", "IPX4"])),
            ("Event log capacity", f"{rng.choice([3000, 5000, 8000, 12000]):,} events"),
            ("Drug library capacity", f"{rng.choice([2500, 5000, 7500]):,} entries"),
        ]
    if family == "syringe":
        return [
            ("Syringe sizes", f"5 to {rng.choice([50, 60])} mL"),
            ("Flow rate range", f"0.01 to {rng.choice([1200, 1500]):,} mL/h"),
            ("Maximum bolus rate", f"{rng.randrange(600, 1200, 50):,} mL/h"),
            ("Battery runtime at 5 mL/h", f"{rng.randint(9, 20)}.{rng.choice([0, 5])} h"),
            ("Weight incl. battery", weight(1.1, 1.9)),
            ("Ingress protection", rng.choice(["IP32", "IP33"])),
            ("Drug library capacity", f"{rng.choice([2500, 5000]):,} entries"),
        ]
    if family == "monitor":
        return [
            ("Display", f"{rng.choice(['10.1', '12.1', '15.6', '18.5'])}-inch touchscreen"),
            ("Parameters", rng.choice(["ECG, SpO2, NIBP, temperature", "ECG, SpO2, NIBP, 2 x temperature, CO2"])),
            ("NIBP measurement range", f"{rng.choice([10, 15])} to {rng.choice([270, 290])} mmHg"),
            ("SpO2 accuracy (70 to 100 %)", "±2 digits"),
            ("Trend storage", f"{rng.choice([24, 48, 96, 120, 168])} h at 1-minute resolution"),
            ("Battery runtime", f"{rng.randint(3, 8)}.{rng.choice([0, 5])} h"),
            ("Weight incl. battery", weight(2.1, 5.8)),
            ("Ingress protection", rng.choice(["IP22", "IPX1"])),
        ]
    return [
        ("Tidal volume range", f"{rng.choice([20, 50, 100])} to {rng.choice([2000, 2500]):,} mL"),
        ("Breath rate", f"{rng.choice([1, 5])} to {rng.choice([60, 80])} breaths/min"),
        ("PEEP range", f"0 to {rng.choice([20, 25])} cmH2O"),
        ("O2 inlet pressure", f"{rng.choice(['2.5', '2.8'])} to 6.0 bar"),
        ("Battery runtime", f"{rng.randint(4, 10)}.{rng.choice([0, 5])} h"),
        ("Weight incl. battery", weight(3.9, 6.5)),
        ("Ingress protection", "IP34"),
    ]


# ---------------------------------------------------------------------------------------------
# HTML templates
# ---------------------------------------------------------------------------------------------


def _e(text: str) -> str:
    return html.escape(text, quote=False)


def _a(text: str) -> str:
    return html.escape(text, quote=True)


def _blocks_html(blocks: Iterable[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        tag = block[0]
        if tag in ("h2", "h3", "p"):
            out.append(f"<{tag}>{_e(block[1])}</{tag}>")
        elif tag in ("ul", "ol"):
            items = "".join(f"<li>{_e(item)}</li>" for item in block[1])
            out.append(f'<{tag} class="list">{items}</{tag}>')
        elif tag == "table":
            caption, headers, rows = block[1], block[2], block[3]
            head = "".join(f'<th scope="col">{_e(h)}</th>' for h in headers)
            body = "".join(
                "<tr>" + f'<th scope="row">{_e(r[0])}</th>' + "".join(f"<td>{_e(c)}</td>" for c in r[1:]) + "</tr>"
                for r in rows
            )
            out.append(
                f'<div class="table-wrap"><table class="data-table"><caption>{_e(caption)}</caption>'
                f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
            )
        elif tag == "note":
            out.append(f'<div class="callout callout--info" role="note"><p>{_e(block[1])}</p></div>')
        elif tag == "warn":
            out.append(f'<div class="callout callout--warning" role="alert"><p>{_e(block[1])}</p></div>')
        elif tag == "dl":
            items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in block[1])
            out.append(f'<dl class="facts">{items}</dl>')
        else:
            raise ValueError(tag)
    return "\n".join(out)


_HEAD_SCRIPTS = """<script>window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments);}
gtag('consent','default',{'analytics_storage':'denied','ad_storage':'denied'});gtag('js',new Date());
gtag('config','G-V3LTR0NA');</script>
<style>.cookie-banner{position:fixed;bottom:0;left:0;right:0;background:#0b2540;color:#fff}
.skip-link{position:absolute;left:-999px}.callout--warning{border-left:4px solid #d9480f}</style>"""

_FOOTER_COLUMNS = {
    "Products": ["InfuSafe infusion", "VitaView monitoring", "AeroVent ventilation", "Accessories and consumables"],
    "Support": ["Knowledge base", "Release notes", "Service centres", "Field safety notices", "Veltrona Academy"],
    "Company": ["About Veltrona", "Newsroom", "Careers", "Sustainability", "Investors"],
    "Legal": ["Privacy notice", "Cookie policy", "Imprint", "Terms of sale", "Accessibility"],
}


def _slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _footer(variant: int) -> str:
    cols = "".join(
        f'<div class="footer__col"><h3>{_e(title)}</h3><ul>'
        + "".join(f'<li><a href="/vt/{_slugify(item)}">{_e(item)}</a></li>' for item in items)
        + "</ul></div>"
        for title, items in _FOOTER_COLUMNS.items()
    )
    social = "LinkedIn · YouTube · X" if variant % 2 else "Follow us on LinkedIn and YouTube"
    return f"""<footer class="site-footer">
<div class="footer__cols">{cols}</div>
<div class="footer__address"><p>Veltrona Medical B.V. · Kastanjelaan 14 · 5616 LZ Eindhoven · The Netherlands</p>
<p>Customer service +31 40 209 5500 · Monday to Friday, 08:00 to 18:00 CET</p></div>
<div class="footer__social"><p>{social}</p></div>
<div class="footer__legal"><p>© 2024 Veltrona Medical B.V. All rights reserved.
Veltrona, InfuSafe, VitaView and AeroVent are registered trademarks of Veltrona Medical B.V.
Products shown may not be available in all markets.</p>
<p><a href="/vt/privacy">Privacy</a> · <a href="/vt/cookies">Cookie settings</a>
· <a href="/vt/imprint">Imprint</a></p></div>
</footer>"""


def _cookie_banner(variant: int) -> str:
    texts = [
        "We use cookies and similar technologies to run this site, measure traffic and personalise content. "
        "You can accept all cookies, reject the non-essential ones or choose your preferences.",
        "This website uses cookies. Some are essential, others help us understand how visitors use the site. "
        "Read our cookie policy to learn more.",
        "Your privacy matters to us. With your consent we use analytics cookies to improve our pages.",
    ]
    return f"""<div id="cookie-banner" class="cookie-banner" role="dialog" aria-label="Cookie consent">
<p>{texts[variant % 3]}</p>
<div class="cookie-banner__actions"><button type="button" data-consent="all">Accept all</button>
<button type="button" data-consent="essential">Reject non-essential</button>
<a href="/vt/cookies#settings">Cookie settings</a></div></div>"""


def _crumbs(items: Sequence[str], sep: str) -> str:
    parts = [f'<li><a href="/vt/{_slugify(c)}">{_e(c)}</a></li>' for c in items[:-1]]
    parts.append(f'<li aria-current="page">{_e(items[-1])}</li>')
    return f'<nav class="breadcrumbs" aria-label="Breadcrumb" data-sep="{sep}"><ol>{"".join(parts)}</ol></nav>'


def _related(title: str, related: Sequence[tuple[str, str]]) -> str:
    items = "".join(f'<li><a href="{_a(path)}">{_e(t)}</a></li>' for path, t in related)
    return f'<section class="related"><h2>{_e(title)}</h2><ul>{items}</ul></section>'


@dataclass
class _Page:
    path: str
    site: str  # corporate, support, intranet, newsroom
    topic: str
    title: str
    crumbs: list[str]
    blocks: list[Block]
    updated: date
    sidebar: list[Block] = field(default_factory=list)
    related_group: str = ""


def _words(blocks: Iterable[Block]) -> int:
    count = 0
    for block in blocks:
        for part in block[1:]:
            count += len(str(part).split())
    return count


def _render(page: _Page, related: Sequence[tuple[str, str]], variant: int) -> bytes:
    body = _blocks_html(page.blocks)
    side = _blocks_html(page.sidebar)
    minutes = max(2, round(_words(page.blocks) / 180))
    when = _fmt_date(page.updated)
    ld = (
        '{"@context":"https://schema.org","@type":"WebPage","publisher":{"@type":"Organization",'
        f'"name":"Veltrona Medical"}},"dateModified":"{page.updated.isoformat()}"}}'
    )
    head = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(page.title)} | Veltrona Medical</title>
<meta name="description" content="{_a(page.title)} - Veltrona Medical">
<link rel="stylesheet" href="/static/css/{page.site}.4f2a1c.css">
{_HEAD_SCRIPTS}
<script type="application/ld+json">{ld}</script></head>"""
    if page.site == "corporate":
        html_ = f"""{head}
<body class="page page--{page.topic}"><a class="skip-link" href="#main">Skip to content</a>
<div class="topbar"><ul><li><a href="/vt/investors">Investors</a></li><li><a href="/vt/careers">Careers</a></li>
<li><a href="/vt/contact">Contact</a></li><li class="lang">EN · DE · FR · NL · IT</li></ul></div>
<header class="site-header"><a class="logo" href="/vt/"><img src="/static/img/veltrona.svg" alt="Veltrona Medical"></a>
<nav aria-label="Main"><ul class="menu">
<li><a href="/vt/products">Products</a><ul class="submenu"><li><a href="/vt/infusion">Infusion therapy</a></li>
<li><a href="/vt/monitoring">Patient monitoring</a></li><li><a href="/vt/ventilation">Ventilation</a></li>
<li><a href="/vt/accessories">Accessories</a></li></ul></li>
<li><a href="/vt/services">Services</a></li><li><a href="/vt/academy">Academy</a></li>
<li><a href="/vt/company">Company</a></li><li><a href="/vt/newsroom">Newsroom</a></li></ul></nav>
<form class="search" role="search"><input type="search" placeholder="Search products, documents and support">
<button type="submit">Search</button></form></header>
{_crumbs(page.crumbs, "/")}
<main id="main" class="layout layout--with-sidebar"><article class="content">
<h1>{_e(page.title)}</h1>
<p class="meta">Updated {when}</p>
{body}
</article>
<aside class="sidebar">{side}
<div class="sidebar__box"><h2>Talk to our team</h2><p>Our product specialists answer within one working day.</p>
<a class="button" href="/vt/contact">Contact sales</a></div></aside>
</main>
{_related("You may also be interested in", related)}
<div class="cta-band"><p>See Veltrona devices in action at your hospital.</p><a href="/vt/demo">Request a demo</a></div>
{_footer(variant)}
{_cookie_banner(variant)}
<script src="/static/js/site.93be1.js" defer></script></body></html>"""
    elif page.site == "support":
        html_ = f"""{head}
<body class="support"><header class="support-header"><div class="brand">Veltrona Support Center</div>
<nav aria-label="Support"><ul><li><a href="/vt/kb">Knowledge base</a></li>
<li><a href="/vt/releases">Release notes</a></li>
<li><a href="/vt/service">Service centres</a></li><li><a href="/vt/fsn">Field safety notices</a></li>
<li><a href="/vt/academy">Training</a></li><li><a href="/vt/ticket">Contact support</a></li></ul></nav>
<a class="signin" href="/vt/login">Sign in to MyVeltrona</a></header>
<section class="hero hero--small"><h2>How can we help?</h2>
<form role="search"><input type="search" placeholder="Describe your problem or enter an error code"></form></section>
{_crumbs(page.crumbs, "›")}
<main id="main"><article class="kb-article">
<h1>{_e(page.title)}</h1>
<div class="byline"><span>Last updated {when}</span> · <span>{minutes} min read</span></div>
{body}
<div class="feedback"><p>Was this article helpful?</p><button>Yes</button><button>No</button></div>
</article>
<aside class="kb-sidebar">{side}<div class="help-box"><h2>Still need help?</h2>
<p>Open a ticket in MyVeltrona or call the technical hotline, 24 hours a day for critical devices.</p></div>
{_related("Related articles", related)}</aside></main>
{_footer(variant)}
{_cookie_banner(variant)}
<script src="/static/js/support.b71.js" defer></script></body></html>"""
    elif page.site == "intranet":
        policies = "".join(
            f'<li><a href="/vt/hr/{_slugify(t)}">{_e(t)}</a></li>'
            for t in ["Leave and holidays", "Travel and expenses", "Working from home", "Relocation", "Code of conduct"]
        )
        html_ = f"""{head}
<body class="intranet"><div class="intranet-bar"><span>Veltrona Intranet</span><span>Hello, colleague</span>
<a href="/vt/intranet/logout">Log out</a></div>
<nav class="intranet-nav"><ul><li><a href="/vt/intranet">Home</a></li><li><a href="/vt/hr">People &amp; Culture</a></li>
<li><a href="/vt/it">IT Service Desk</a></li><li><a href="/vt/facilities">Facilities</a></li>
<li><a href="/vt/qa">Quality system</a></li></ul></nav>
{_crumbs(page.crumbs, ">")}
<div class="intranet-layout"><aside class="policy-nav"><h2>Policies</h2><ul>{policies}</ul></aside>
<main id="main"><h1>{_e(page.title)}</h1>
<table class="doc-meta"><tr><th>Owner</th><td>HR Policy Team</td></tr>
<tr><th>Version</th><td>{3 + variant % 4}.{variant % 7}</td></tr><tr><th>Last reviewed</th><td>{when}</td></tr></table>
<p class="print"><a href="?print=1">Printable version</a></p>
{body}
{side}
<p class="contact">Questions about this policy? Ask HR through the People Portal.</p>
{_related("Other policies", related)}
</main></div>
<footer class="intranet-footer"><p>Internal. Do not distribute outside Veltrona Medical.</p></footer>
<script src="/static/js/intranet.js" defer></script></body></html>"""
    else:
        html_ = f"""{head}
<body class="newsroom"><header class="site-header"><a class="logo" href="/vt/">Veltrona Medical</a>
<nav aria-label="Newsroom"><ul><li><a href="/vt/newsroom">All news</a></li>
<li><a href="/vt/newsroom/press">Press releases</a></li>
<li><a href="/vt/newsroom/stories">Stories</a></li><li><a href="/vt/newsroom/events">Events</a></li>
<li><a href="/vt/newsroom/media-kit">Media kit</a></li></ul></nav></header>
{_crumbs(page.crumbs, "/")}
<main id="main"><article class="press-release">
<p class="kicker">Press release · {when} · {minutes} min read</p>
<h1>{_e(page.title)}</h1>
<div class="share"><span>Share:</span> <a href="#">LinkedIn</a> <a href="#">X</a> <a href="#">Email</a></div>
{body}
<section class="boilerplate"><h2>About Veltrona Medical</h2><p>Veltrona Medical develops, manufactures and services
infusion, patient monitoring and ventilation equipment for hospitals and emergency services across Europe.
The company is headquartered in Eindhoven, the Netherlands.</p></section>
<section class="media-contact"><h2>Media contact</h2><p>Sanne de Wit, Corporate Communications,
press@veltrona.example</p></section></article>
{_related("More news", related)}</main>
{_footer(variant)}
{_cookie_banner(variant)}</body></html>"""
    return html_.encode("utf-8")


# ---------------------------------------------------------------------------------------------
# PDF drawing
# ---------------------------------------------------------------------------------------------

_PDF_DATE = datetime(2024, 5, 2, 9, 30, tzinfo=UTC)


class _Pdf(FPDF):
    def __init__(self, head: str, foot: str) -> None:
        super().__init__(format="A4")
        self._head = head
        self._foot = foot
        self.set_auto_page_break(False)
        self.set_margins(18, 20, 18)
        self.set_creation_date(_PDF_DATE)
        self.set_title(head)
        self.set_author("Veltrona Medical")

    def header(self) -> None:
        self.set_font("Helvetica", "", 8)
        self.set_text_color(90, 90, 90)
        self.set_xy(18, 9)
        self.cell(0, 4, f"Veltrona Medical   |   {self._head}")
        self.line(18, 14.5, 192, 14.5)
        self.set_text_color(0, 0, 0)
        self.set_xy(18, 20)

    def footer(self) -> None:
        self.set_y(-13)
        self.set_font("Helvetica", "", 8)
        self.set_text_color(90, 90, 90)
        self.cell(0, 4, f"{self._foot}   |   Page {self.page_no()} of {{nb}}", align="C")
        self.set_text_color(0, 0, 0)


def _draw_pdf(head: str, foot: str, pages: Sequence[Sequence[Block]]) -> bytes:
    pdf = _Pdf(head, foot)
    for blocks in pages:
        pdf.add_page()
        for block in blocks:
            tag = block[0]
            if tag == "h1":
                pdf.set_font("Helvetica", "B", 16)
                pdf.multi_cell(0, 8, block[1], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
                pdf.ln(2)
            elif tag == "h2":
                pdf.set_font("Helvetica", "B", 12)
                pdf.multi_cell(0, 6, block[1], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
                pdf.ln(1)
            elif tag == "p":
                pdf.set_font("Helvetica", "", 10)
                pdf.multi_cell(0, 5, block[1], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
                pdf.ln(2)
            elif tag == "small":
                pdf.set_font("Helvetica", "I", 8)
                pdf.multi_cell(0, 4, block[1], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
                pdf.ln(2)
            elif tag == "ul":
                pdf.set_font("Helvetica", "", 10)
                for item in block[1]:
                    pdf.multi_cell(0, 5, f"-  {item}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
                pdf.ln(2)
            elif tag == "cols":
                pdf.set_font("Helvetica", "", 9.5)
                gap = 8.0
                width = (pdf.epw - gap) / 2
                top = pdf.get_y()
                pdf.set_xy(pdf.l_margin, top)
                pdf.multi_cell(width, 4.8, block[1], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
                left_end = pdf.get_y()
                pdf.set_xy(pdf.l_margin + width + gap, top)
                pdf.multi_cell(width, 4.8, block[2], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
                pdf.set_xy(pdf.l_margin, max(left_end, pdf.get_y()) + 3)
            elif tag == "table":
                headers, rows = block[1], block[2]
                widths = block[3] if len(block) > 3 else None
                pdf.set_font("Helvetica", "", 9)
                with pdf.table(col_widths=widths, line_height=5.5, text_align="LEFT") as table:
                    for values in [headers, *rows]:
                        row = table.row()
                        for value in values:
                            row.cell(value)
                pdf.ln(3)
            else:
                raise ValueError(tag)
        assert pdf.get_y() < pdf.h - 16, f"{head}: page {pdf.page_no()} overflows"
    return bytes(pdf.output())


# ---------------------------------------------------------------------------------------------
# Builder
# ---------------------------------------------------------------------------------------------


@dataclass
class _Spec:
    kind: str
    text: str
    path: str
    needle: str
    lookalikes: list[str] = field(default_factory=list)
    page: int | None = None
    row: int | None = None


class _Builder:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.pages: list[_Page] = []
        self.docs: dict[str, CorpusDocument] = {}
        self.specs: list[_Spec] = []

    # -- registration helpers -----------------------------------------------------------------

    def page(self, page: _Page) -> _Page:
        assert all(p.path != page.path for p in self.pages), page.path
        self.pages.append(page)
        return page

    def ask(self, kind: str, text: str, path: str, needle: str, lookalikes: Iterable[str] = (), **kw: Any) -> None:
        self.specs.append(_Spec(kind, text, path, needle, list(lookalikes), **kw))

    def paraphrase(self, text: str, path: str, sentence: str, needle: str, lookalikes: Iterable[str] = ()) -> str:
        """Register a paraphrase question; returns the sentence to plant in the page."""
        assert needle in sentence, needle
        overlap = shared_stems(text, sentence)
        assert not overlap, f"paraphrase shares words with its answer: {overlap} in {text!r}"
        self.ask("paraphrase", text, path, needle, lookalikes)
        return sentence

    def filler(self, pool: Sequence[str], k: int) -> list[str]:
        return self.rng.sample(list(pool), min(k, len(pool)))

    # -- everything ---------------------------------------------------------------------------

    def build(self) -> Corpus:
        self.products()
        self.knowledge_base()
        self.near_duplicates()
        self.release_notes()
        self.service()
        self.hr()
        self.company()
        self.render_pages()
        self.pdfs()
        self.csvs()
        return self.finish()

    def render_pages(self) -> None:
        rng = self.rng
        twins: dict[str, tuple[int, list[_Page]]] = {}  # variant articles: both pages get the same boilerplate
        for i, page in enumerate(self.pages):
            group = page.related_group or page.topic
            pair = [p for p in self.pages if page.topic.startswith("kb-variant-") and p.topic == page.topic]
            if page.topic in twins:
                variant, picked = twins[page.topic]
            else:
                siblings = [
                    p for p in self.pages if p not in pair and p is not page and (p.related_group or p.topic) == group
                ]
                others = [p for p in self.pages if p is not page and p.site == page.site and p not in siblings]
                variant = i
                picked = rng.sample(siblings, min(4, len(siblings))) + rng.sample(others, min(2, len(others)))
                if pair:
                    twins[page.topic] = (variant, picked)
            related = [(p.path, p.title) for p in [*(p for p in pair if p is not page), *picked]]
            self.docs[page.path] = CorpusDocument(
                page.path, "html", page.topic, _render(page, related, variant), HTML_TYPE
            )

    # -- product pages ------------------------------------------------------------------------

    def distinct_specs(
        self, family: str, targets: Sequence[str], taken: list[str], asked: list[str]
    ) -> list[tuple[str, str]]:
        """Spec rows where an asked value is in no other cell of this page or of a sibling product page."""
        specs = _specs(family, self.rng)

        def clash(label: str, value: str) -> bool:
            others = [v for lab, v in specs if lab != label]
            if label in targets:
                others += taken
            else:
                others = asked + [dict(specs)[t] for t in targets]
            return any(value in cell or cell in value for cell in others)

        for label in [*targets, *(lab for lab, _ in specs if lab not in targets)]:
            for _ in range(200):
                if not clash(label, dict(specs)[label]):
                    break
                fresh = dict(_specs(family, self.rng))[label]
                specs = [(lab, fresh if lab == label else v) for lab, v in specs]
            else:
                raise AssertionError(f"no unique value for {label}")
        taken += [v for _, v in specs]
        asked += [dict(specs)[t] for t in targets]
        return specs

    def products(self) -> None:
        rng = self.rng
        table_targets = {
            "infusafe-x200": ["Maximum bolus rate", "Weight incl. battery"],
            "infusafe-x210": ["Battery runtime at 25 mL/h"],
            "infusafe-x300": ["Event log capacity", "Full charge time"],
            "infusafe-s12": ["Weight incl. battery"],
            "infusafe-s14": ["Battery runtime at 5 mL/h"],
            "vitaview-m5": ["Weight incl. battery"],
            "vitaview-m7": ["Battery runtime", "Trend storage"],
            "vitaview-m9": ["Display"],
            "aerovent-v40": ["Weight incl. battery"],
            "aerovent-v60": ["Tidal volume range", "Battery runtime"],
        }
        family_paths: dict[str, list[str]] = {}
        for slug, _name, family, _what in _PRODUCTS:
            family_paths.setdefault(family, []).append(f"/vt/products/{slug}.html")
        all_products = [p for paths in family_paths.values() for p in paths]
        taken: list[str] = []  # spec values already on the family's pages
        asked: list[str] = []  # spec values asked about; no other product page may show them
        for slug, name, family, what in _PRODUCTS:
            path = f"/vt/products/{slug}.html"
            siblings = [p for p in family_paths[family] if p != path]
            specs = self.distinct_specs(family, table_targets[slug], taken, asked)
            intro = [f"The {name} is a {what} from Veltrona Medical.", *rng.sample(_PRODUCT_BLURBS[family], 2)]
            extra: list[str] = []
            if slug == "infusafe-x200":
                extra.append("More than 18,000 InfuSafe X200 pumps are in use in hospitals in 26 countries.")
                self.ask(
                    "number",
                    "How many X200 pumps are in use out there?",
                    path,
                    "More than 18,000 InfuSafe X200 pumps",
                    siblings,
                )
            if slug == "vitaview-m7":
                extra.append("From power-on, the monitor shows a live display in 9 seconds.")
                self.ask(
                    "number", "How quickly does a VitaView M7 start up?", path, "live display in 9 seconds", siblings
                )
            if slug == "infusafe-x300":
                extra.append(
                    self.paraphrase(
                        "How far can the InfuSafe X300 fall onto a hard floor and keep working?",
                        path,
                        "Its chassis survived a 1.2 m drop onto concrete during type testing.",
                        "survived a 1.2 m drop onto concrete",
                        siblings,
                    )
                )
            if slug == "vitaview-m9":
                extra.append(
                    self.paraphrase(
                        "How far back can nurses scroll through a patient's readings on the VitaView M9?",
                        path,
                        "Clinicians can review seventy-two hours of vital-sign history at the bedside.",
                        "seventy-two hours of vital-sign history",
                        siblings,
                    )
                )
            if slug == "aerovent-v40":
                extra.append(
                    self.paraphrase(
                        "Is the AeroVent V40 portable enough for ambulance crews to lift with a single arm?",
                        path,
                        "Paramedics can carry it in one hand thanks to the folding grip.",
                        "carry it in one hand thanks to the folding grip",
                        siblings,
                    )
                )
            accessories = _ACCESSORIES[slug]
            blocks: list[Block] = [
                ("p", " ".join(intro)),
                ("h2", "Key features"),
                ("ul", self.filler(_FEATURES[family], 5)),
            ]
            if extra:
                blocks.append(("p", " ".join(extra)))
            blocks += [
                ("h2", "Technical data"),
                ("table", f"{name} technical data", ["Specification", "Value"], [list(r) for r in specs]),
                ("note", "Specifications are typical values and may change without notice. CE-marked, class IIb."),
                ("h2", "Compatible accessories"),
                ("ul", [f"{code}: {desc}" for code, desc in accessories]),
                ("h2", "Downloads"),
                ("ul", ["Datasheet (PDF)", "Instructions for use (PDF)", "Declaration of conformity (PDF)"]),
            ]
            sidebar: list[Block] = [
                ("h2", "At a glance"),
                ("ul", [f"Product family: {name.split()[0]}", "Warranty: 2 years, extendable", "Made in Europe"]),
            ]
            self.page(
                _Page(
                    path,
                    "corporate",
                    f"product-{family}",
                    f"{name} {what}",
                    ["Home", "Products", name],
                    blocks,
                    _rand_date(rng),
                    sidebar,
                )
            )
            for label in table_targets[slug]:
                value = dict(specs)[label]
                self.ask("table-number", _SPEC_QUESTIONS[label].format(name=name), path, value, siblings)
            # part numbers: identifier questions, look-alikes are the pages with the same code stem
        part_questions = {
            "VT-2231-C": "What is part VT-2231-C and how long is it?",
            "VT-2231-D": "Which administration set is VT-2231-D?",
            "VT-2252-B": "What capacity does the VT-2252-B battery have?",
            "VT-2240-E": "What kind of pole clamp is VT-2240-E?",
            "VT-3310-B": "Which syringe sizes fit the VT-3310-B holder?",
            "VT-5102-P": "Is VT-5102-P the adult or the paediatric SpO2 sensor?",
            "VT-5140-T": "What cuff is VT-5140-T and what limb size does it fit?",
            "VT-7720-B": "Is the VT-7720-B breathing circuit for adults or for kids?",
        }
        for code, question in part_questions.items():
            slug, desc = next((s, d) for s, items in _ACCESSORIES.items() for c, d in items if c == code)
            twins = [
                f"/vt/products/{s}.html"
                for s, items in _ACCESSORIES.items()
                if s != slug and any(c[:7] == code[:7] for c, _ in items)
            ]
            assert twins, code
            more = [p for p in all_products if p not in twins and p != f"/vt/products/{slug}.html"]
            self.ask(
                "identifier",
                question,
                f"/vt/products/{slug}.html",
                f"{code}: {desc}",
                twins + rng.sample(more, 2),
            )

    # -- knowledge base -----------------------------------------------------------------------

    def knowledge_base(self) -> None:
        rng = self.rng
        generic = [
            "Before you begin, make sure the device is not connected to a patient or that a clinician is present.",
            "Record the event in your local incident reporting system.",
            "Keep the serial number ready when you contact us; it is printed on the label on the rear housing.",
            "If your hospital uses the Veltrona Fleet Manager, the alarm also appears in the device's event history.",
            "A photo of the display and of the rating label helps our engineers diagnose the problem faster.",
            "Do not open the housing; there are no user-serviceable parts inside.",
            "Biomedical engineering staff find the detailed test procedure in the service manual.",
            "The alarm is logged with a time stamp so that it can be reviewed after the shift.",
        ]
        products_of = {
            "E": "InfuSafe X200, X210 and X300",
            "W": "VitaView M5, M7 and M9",
            "A": "AeroVent V40 and V60",
        }
        articles: list[dict[str, Any]] = [
            {
                "code": "E-4471",
                "title": "Downstream occlusion",
                "meaning": "the pump measured rising pressure below the cassette, usually from a closed clamp or a "
                "kinked line",
                "causes": [
                    "Roller clamp or slide clamp below the pump left closed",
                    "Kinked or trapped extension line",
                    "Blocked cannula or in-line filter",
                    "Occlusion pressure level set lower than the line requires",
                ],
                "steps": [
                    "Pause the infusion and follow the line from the pump to the patient.",
                    "Open any closed clamps and straighten the tubing.",
                    "Press Resume; the pump releases the trapped pressure before it restarts.",
                    "If the alarm returns within 2 minutes of clearing, take the pump out of service and use a "
                    "spare device.",
                ],
                "ask": ("What does the pump mean when it shows E-4471?", None),
                "number": (
                    "If E-4471 comes back right after I clear it, how soon is too soon before I should pull the "
                    "pump from use?",
                    "returns within 2 minutes of clearing",
                ),
            },
            {
                "code": "E-4417",
                "title": "Air in line",
                "meaning": "the ultrasonic detector saw a bubble larger than the configured limit pass through the "
                "cassette",
                "causes": [
                    "Bag ran empty or the spike is not fully inserted",
                    "Line not primed completely",
                    "Gas coming out of cold fluids as they warm in the line",
                    "Loose connection above the cassette drawing in air",
                ],
                "steps": [
                    "Clamp the line and open the cassette door.",
                    "Remove the air according to your local protocol, for example by drawing it off at a "
                    "downstream port.",
                    "Close the door and press Resume.",
                ],
                "extra": [
                    "The default bubble limit is 50 microlitres; pharmacies can lower it per care area in the drug "
                    "library."
                ],
                "ask": ("What does error E-4417 on an InfuSafe pump indicate?", None),
                "number": (
                    "What is the factory default air bubble size that triggers the InfuSafe alarm?",
                    "default bubble limit is 50 microlitres",
                ),
            },
            {
                "code": "E-4472",
                "title": "Upstream occlusion",
                "meaning": "fluid is not reaching the cassette from the bag side",
                "causes": [
                    "Closed clamp between bag and pump",
                    "Vent cap left closed on a glass bottle",
                    "Bag hung lower than the pump",
                ],
                "steps": [
                    "Check that the bag is hung above the pump.",
                    "Open the clamp above the cassette and the vent on rigid containers.",
                    "Squeeze the drip chamber to check that it fills, then press Resume.",
                ],
                "ask": ("The display says E-4472. What's the problem?", None),
            },
            {
                "code": "E-4714",
                "title": "Door opened during infusion",
                "meaning": "the cassette door latch opened while the pumping mechanism was running",
                "causes": [
                    "Door not pushed fully closed after loading",
                    "Worn latch spring",
                    "Cassette seated crooked",
                ],
                "steps": [
                    "Close the line clamp immediately to prevent free flow.",
                    "Reseat the cassette and close the door until it clicks.",
                    "Restart the infusion and confirm the rate on the display.",
                ],
                "paraphrase": (
                    "Could pushing the closing mechanism hard cancel my warranty?",
                    "Never force the latch; bent hinges void the guarantee.",
                    "bent hinges void the guarantee",
                ),
                "ask": ("What is error E-4714 on the X300?", None),
            },
            {
                "code": "E-4741",
                "title": "Motor stall",
                "meaning": "the pumping mechanism stopped turning although power was available",
                "causes": ["Foreign object in the cassette bay", "Worn gearbox", "Mechanism jammed after a drop"],
                "steps": [
                    "Stop the infusion and move the patient to another pump.",
                    "Inspect the cassette bay for debris; do not use tools inside the bay.",
                    "Send the pump to your service centre with a short description of the event.",
                ],
                "extra": ["Motor stall is logged after 3 failed restart attempts."],
                "paraphrase": (
                    "Which component do technicians swap when the pumping drive jams?",
                    "Field engineers replace the gearbox rather than the motor itself.",
                    "replace the gearbox rather than the motor",
                ),
                "ask": ("What does E-4741 mean on the infusion pump?", None),
                "number": (
                    "How many times does the pump try to restart before it logs a motor stall?",
                    "after 3 failed restart attempts",
                ),
            },
            {
                "code": "E-4470",
                "title": "Pressure sensor out of range",
                "meaning": "the downstream pressure sensor reports values outside its calibrated window",
                "causes": ["Sensor due for calibration", "Fluid ingress after cleaning", "Damaged sensor membrane"],
                "steps": [
                    "Switch the pump off and on again without a cassette loaded.",
                    "If the code persists, label the pump as defective.",
                    "Ask biomedical engineering to run the sensor calibration from the service manual.",
                ],
                "ask": ("We keep getting E-4470 on one pump during setup. What does it mean?", None),
            },
            {
                "code": "W-310",
                "title": "SpO2 no pulse signal",
                "meaning": "the finger sensor is connected but the monitor cannot find a pulsatile signal",
                "causes": ["Cold hands or poor perfusion", "Nail polish or artificial nails", "Patient movement"],
                "steps": [
                    "Warm the site or move the sensor to another finger or the earlobe.",
                    "Remove dark nail polish.",
                    "Leave a reusable clip sensor on the same site for no more than 4 hours, then move it.",
                ],
                "ask": ("My VitaView shows warning W-310, what does it mean?", None),
                "number": (
                    "How long can a reusable SpO2 clip stay on one finger before it has to be moved?",
                    "same site for no more than 4 hours",
                ),
            },
            {
                "code": "W-301",
                "title": "NIBP cuff leak",
                "meaning": "the cuff lost pressure faster than expected during a measurement",
                "causes": ["Loose hose connector", "Cracked cuff bladder", "Wrong cuff size"],
                "steps": [
                    "Check the hose connection at the monitor and at the cuff.",
                    "Replace the cuff with one of the correct size.",
                    "Start a new measurement.",
                ],
                "paraphrase": (
                    "What's typically behind a blood pressure wrap losing air, and can a split one be mended?",
                    "Cracked bladders are the most frequent culprit and are not repairable.",
                    "Cracked bladders are the most frequent culprit",
                ),
                "ask": ("What is warning W-301 on the VitaView?", None),
            },
            {
                "code": "W-130",
                "title": "ECG lead off",
                "meaning": "at least one ECG electrode has lost contact with the skin",
                "causes": ["Electrode gel dried out", "Lead wire pulled off the electrode", "Broken lead wire"],
                "steps": [
                    "Check which lead the monitor reports and inspect that electrode.",
                    "Replace electrodes older than one day.",
                    "Route the lead wires so that they do not pull on the electrodes.",
                ],
                "paraphrase": (
                    "Why does the heart tracing warning keep appearing on the monitor?",
                    "Dried-out gel is behind most of these alarms.",
                    "Dried-out gel is behind most of these alarms",
                ),
                "ask": ("W-130 popped up on the bedside monitor. Meaning?", None),
            },
            {
                "code": "W-313",
                "title": "Temperature probe fault",
                "meaning": "the monitor reads an open or shorted circuit on the temperature channel",
                "causes": ["Probe not fully plugged in", "Probe cable damaged", "Probe type not supported"],
                "steps": [
                    "Unplug the probe and plug it in again.",
                    "Try a different probe.",
                    "If the fault stays with the channel, send the monitor for service.",
                ],
                "ask": ("What does W-313 indicate on a VitaView M7?", None),
            },
            {
                "code": "A-0921",
                "title": "Low O2 supply pressure",
                "meaning": "the oxygen inlet pressure has dropped below what the ventilator needs to deliver the set "
                "FiO2",
                "causes": ["Cylinder nearly empty", "Wall outlet valve not fully open", "Kinked oxygen hose"],
                "steps": [
                    "Check the cylinder gauge or the wall outlet.",
                    "Straighten the oxygen hose and check the connector.",
                    "If no oxygen is available, the ventilator continues with room air; adjust the settings.",
                ],
                "paraphrase": (
                    "What oxygen feed level from the building sets off the ventilator warning?",
                    "Hospital pipeline supply below 2.8 bar triggers this alarm.",
                    "pipeline supply below 2.8 bar",
                ),
                "ask": ("AeroVent alarm A-0921: what is it telling me?", None),
            },
            {
                "code": "A-0912",
                "title": "High airway pressure",
                "meaning": "peak inspiratory pressure reached the upper alarm limit for two consecutive breaths",
                "causes": ["Patient coughing or biting the tube", "Kinked breathing circuit", "Secretions"],
                "steps": [
                    "Check the patient first.",
                    "Inspect the breathing circuit for kinks and water.",
                    "Review the upper pressure limit.",
                ],
                "ask": ("What triggers alarm A-0912 on the AeroVent V60?", None),
            },
            {
                "code": "A-0291",
                "title": "Battery temperature high",
                "meaning": "the internal battery is warmer than its safe charging range",
                "causes": ["Device left in direct sunlight", "Ambulance compartment too warm", "Blocked air vents"],
                "steps": [
                    "Move the ventilator out of the sun.",
                    "Let the ventilator cool for at least 20 minutes in a shaded place before you reconnect mains "
                    "power.",
                    "Keep the air vents on the side free.",
                ],
                "ask": None,
                "number": (
                    "How long should an overheated AeroVent sit in the shade before plugging it back in?",
                    "cool for at least 20 minutes",
                ),
            },
            {
                "code": "A-0922",
                "title": "O2 cell depleted",
                "meaning": "the oxygen sensor output has fallen below the level needed for a valid calibration",
                "causes": ["Cell at the end of its life", "Cell exposed to high humidity", "Cell not seated"],
                "steps": [
                    "Run an oxygen calibration from the service menu.",
                    "If the calibration fails, replace the oxygen cell.",
                    "Dispose of the old cell as chemical waste.",
                ],
                "ask": None,
            },
        ]
        family_of = {"E": "infusafe", "W": "vitaview", "A": "aerovent"}
        paths = {a["code"]: f"/vt/kb/err-{a['code'].split('-')[1]}.html" for a in articles}
        for art in articles:
            code = art["code"]
            prefix = code[0]
            family = family_of[prefix]
            path = paths[code]
            twins = [paths[a["code"]] for a in articles if a["code"][0] == prefix and a["code"] != code]
            word = {"E": "Code", "W": "Warning", "A": "Alarm"}[prefix]
            meaning_sentence = f"{word} {code} means {art['meaning']}."
            what = [meaning_sentence, *self.filler(generic[:4], 1)]
            if "extra" in art:
                what += art["extra"]
            if "paraphrase" in art:
                question, sentence, needle = art["paraphrase"]
                what.append(self.paraphrase(question, path, sentence, needle, twins[:3]))
            blocks: list[Block] = [
                ("dl", [("Applies to", products_of[prefix]), ("Severity", rng.choice(["Medium", "High"]))]),
                ("h2", "What the message means"),
                ("p", " ".join(what)),
                ("h2", "Common causes"),
                ("ul", art["causes"]),
                ("h2", "What to do"),
                ("ol", art["steps"]),
                ("h2", "When to contact service"),
                ("p", " ".join(self.filler(generic[4:], 2))),
                ("warn", "Patient safety comes first. Never leave a patient without therapy while you troubleshoot."),
            ]
            related_codes = [f"{a['code']}: {a['title']}" for a in articles if a["code"][0] == prefix and a is not art]
            sidebar: list[Block] = [("h3", "Other codes on this device"), ("ul", related_codes)]
            self.page(
                _Page(
                    path,
                    "support",
                    f"kb-{family}",
                    f"{code}: {art['title']}",
                    ["Support", "Knowledge base", family.capitalize(), code],
                    blocks,
                    _rand_date(rng),
                    sidebar,
                )
            )
            if art["ask"]:
                needle = f"{code} means " + " ".join(art["meaning"].split()[:3])
                self.ask("identifier", art["ask"][0], path, needle, twins)
            if "number" in art:
                question, needle = art["number"]
                self.ask("number", question, path, needle, twins[:3])

    # -- near-duplicate variant articles ------------------------------------------------------

    def near_duplicates(self) -> None:
        rng = self.rng
        topics: list[dict[str, Any]] = [
            {
                "slug": "battery-care",
                "variants": ("InfuSafe X200", "InfuSafe X210"),
                "title": "Battery care for the {v}",
                "values": [30, 45, 60, 90, 120],
                "intro": "Good battery habits keep your pumps available when they move between wards or travel "
                "with a patient.",
                "steps": [
                    "Leave the pump on mains power whenever it is parked.",
                    "Start the calibration from the Maintenance menu and let the pump discharge completely.",
                    "Reconnect mains power; the pump charges the battery and stores the new capacity.",
                ],
                "fact": "To keep the charge gauge accurate, recalibrate the battery every {n} days.",
                "needle": "recalibrate the battery every {n} days",
                "more": "A pump that has been stored for longer needs a calibration before its first use.",
                "q": "How often should I recalibrate the battery on our {v} pumps?",
            },
            {
                "slug": "storage",
                "variants": ("VitaView M5", "VitaView M7"),
                "title": "Storing the {v} between uses",
                "values": [35, 40, 45, 50, 55],
                "intro": "Monitors kept in reserve for surges or transport should be stored so that they are ready "
                "when needed.",
                "steps": [
                    "Charge the battery fully before storage.",
                    "Remove single-use sensors and disinfect the housing.",
                    "Switch the monitor off with the power key; do not just close the lid.",
                ],
                "fact": "Store the switched-off monitor at no more than {n} °C and away from direct sunlight.",
                "needle": "at no more than {n} °C",
                "more": "Humidity should stay below the condensing point.",
                "q": "What's the highest temperature a {v} may be stored at while switched off?",
            },
            {
                "slug": "alarm-volume",
                "variants": ("AeroVent V40", "AeroVent V60"),
                "title": "Setting the alarm volume on the {v}",
                "values": [45, 48, 50, 52, 55],
                "intro": "Ambulance crews often work in loud environments, so the alarm volume matters.",
                "steps": [
                    "Open Settings and choose Alarms.",
                    "Turn the knob to change the volume; the ventilator plays a test tone.",
                    "Confirm with the knob press.",
                ],
                "fact": "The lowest alarm volume you can select is {n} dB(A), measured at one metre.",
                "needle": "lowest alarm volume you can select is {n} dB(A)",
                "more": "High-priority alarms always sound at full volume after 60 seconds.",
                "q": "What is the quietest alarm volume setting on the {v}?",
            },
            {
                "slug": "pole-clamp",
                "variants": ("InfuSafe S12", "InfuSafe S14"),
                "title": "Mounting the {v} on an IV pole",
                "values": [32, 35, 38, 40, 45],
                "intro": "The integrated clamp holds the driver on IV poles and bed rails.",
                "steps": [
                    "Open the clamp by turning the knob anticlockwise.",
                    "Place the driver against the pole at chest height.",
                    "Tighten the knob until the driver cannot slide.",
                ],
                "fact": "The clamp fits poles from 15 to {n} mm in diameter.",
                "needle": "15 to {n} mm in diameter",
                "more": "Check the clamp for cracks at every preventive maintenance visit.",
                "q": "What's the thickest IV pole the {v} clamp will fit?",
            },
            {
                "slug": "trend-export",
                "variants": ("VitaView M7", "VitaView M9"),
                "title": "Exporting trend data from the {v}",
                "values": [24, 48, 72, 96, 120],
                "intro": "Trend exports help with audits, incident reviews and clinical studies.",
                "steps": [
                    "Insert a USB stick formatted with FAT32.",
                    "Open Trends, choose Export and select the time range.",
                    "Wait for the confirmation before removing the stick.",
                ],
                "fact": "A single USB export holds up to {n} hours of trend data.",
                "needle": "holds up to {n} hours of trend data",
                "more": "Exports are encrypted when the hospital has enabled data protection mode.",
                "q": "How many hours of trends can I export to USB in one go from the {v}?",
            },
            {
                "slug": "air-sensor",
                "variants": ("InfuSafe X200", "InfuSafe X300"),
                "title": "Air-in-line sensor replacement on the {v}",
                "values": ["8,000", "10,000", "12,000", "15,000"],
                "intro": "The ultrasonic air-in-line sensor ages with use and must be replaced preventively.",
                "steps": [
                    "Read the operating hours from the Service menu.",
                    "Order the sensor kit through MyVeltrona.",
                    "Have the replacement done by trained biomedical staff.",
                ],
                "fact": "Replace the air-in-line sensor after {n} operating hours.",
                "needle": "sensor after {n} operating hours",
                "more": "The pump reminds you when the limit is near.",
                "q": "After how many operating hours does the air-in-line sensor on the {v} need replacing?",
            },
            {
                "slug": "o2-cell",
                "variants": ("AeroVent V40", "AeroVent V60"),
                "title": "Oxygen cell life on the {v}",
                "values": [12, 14, 18, 24],
                "intro": "The galvanic oxygen cell measures delivered oxygen and wears out even when the ventilator "
                "is not used.",
                "steps": [
                    "Note the installation date on the cell label.",
                    "Calibrate after every cell change.",
                    "Keep a spare cell sealed until use.",
                ],
                "fact": "A new oxygen cell lasts about {n} months in normal use.",
                "needle": "lasts about {n} months in normal use",
                "more": "High temperatures shorten cell life.",
                "q": "How long does an oxygen cell usually last in the {v}?",
            },
            {
                "slug": "software-update",
                "variants": ("InfuSafe S12", "InfuSafe S14"),
                "title": "Updating the software on the {v}",
                "values": [6, 8, 10, 12, 15],
                "intro": "Software updates bring new features and fixes; plan them outside clinical use.",
                "steps": [
                    "Download the update package from MyVeltrona.",
                    "Connect the driver to a PC running Veltrona Service Tool.",
                    "Start the update and do not disconnect the cable.",
                ],
                "fact": "The update takes roughly {n} minutes, and the driver must stay on mains power throughout.",
                "needle": "update takes roughly {n} minutes",
                "more": "The drug library is kept during the update.",
                "q": "How long does a software update on the {v} take?",
            },
            {
                "slug": "transport-case",
                "variants": ("InfuSafe X210", "InfuSafe X300"),
                "title": "Transport case for the {v}",
                "values": [60, 75, 80, 90, 100],
                "intro": "The padded transport case protects the pump during inter-hospital transfers.",
                "steps": [
                    "Slide the pump into the case with the display facing the window.",
                    "Close the Velcro strap over the pole clamp.",
                    "Route the line through the side opening.",
                ],
                "fact": "The case protects the pump against drops of up to {n} cm.",
                "needle": "drops of up to {n} cm",
                "more": "Clean the case with a damp cloth; it is not suitable for immersion.",
                "q": "From what height is the {v} protected against drops when it's in its transport case?",
            },
            {
                "slug": "ecg-leads",
                "variants": ("VitaView M5", "VitaView M9"),
                "title": "ECG lead set care for the {v}",
                "values": [100, 150, 200, 250],
                "intro": "Reusable lead sets save money when they are handled and cleaned properly.",
                "steps": [
                    "Wipe the lead wires after each patient.",
                    "Do not wrap the wires tightly around the monitor.",
                    "Inspect the connectors for bent pins.",
                ],
                "fact": "Lead sets are rated for {n} defibrillator discharges before they must be replaced.",
                "needle": "rated for {n} defibrillator discharges",
                "more": "Replace any lead set with cracked insulation immediately.",
                "q": "How many defib shocks can the ECG lead set of the {v} take before it has to go?",
            },
        ]
        for topic in topics:
            values = rng.sample(topic["values"], 2)
            updated = _rand_date(rng)
            pair = []
            for variant, n in zip(topic["variants"], values, strict=True):
                short = variant.split()[1].lower()
                path = f"/vt/kb/{topic['slug']}-{short}.html"
                pair.append((path, variant, n))
            for path, variant, n in pair:
                blocks: list[Block] = [
                    ("dl", [("Applies to", variant), ("Audience", "Clinical users and biomedical engineering")]),
                    ("h2", "Overview"),
                    ("p", topic["intro"] + f" This article applies to the {variant}."),
                    ("h2", "Procedure"),
                    ("ol", topic["steps"]),
                    ("h2", "Good to know"),
                    ("p", topic["fact"].format(n=n) + " " + topic["more"]),
                    ("note", "Always follow your hospital's procedures in addition to this article."),
                ]
                self.page(
                    _Page(
                        path,
                        "support",
                        f"kb-variant-{topic['slug']}",
                        topic["title"].format(v=variant),
                        ["Support", "Knowledge base", "How-to", variant],
                        blocks,
                        updated,
                        [],
                        related_group="kb-how-to",
                    )
                )
                twin = next(p for p, _, _ in pair if p != path)
                self.ask("near-duplicate", topic["q"].format(v=variant), path, topic["needle"].format(n=n), [twin])

    # -- release notes ------------------------------------------------------------------------

    def release_notes(self) -> None:
        rng = self.rng
        versions = ["4.0.0", "4.0.2", "4.1.0", "4.1.3", "4.2.0", "4.2.1", "4.3.0"]
        charges = rng.sample([30, 35, 40, 45, 50, 55, 60, 65], len(versions))
        minutes = rng.sample([6, 7, 8, 9, 11, 12, 14, 16, 18], len(versions))
        features = [
            "Drug library entries can carry separate soft and hard limits per care area.",
            "The event log export now includes the cassette lot number.",
            "Night mode dims the display and the status light between 22:00 and 06:00.",
            "The Fleet Manager shows the remaining battery time of each pump.",
            "Bolus doses can be entered in mg/kg for weight-based drugs.",
            "The infusion summary screen shows volume infused per bag.",
            "Pumps can be locked with a four-digit PIN per ward.",
            "Pressure trend graph during the infusion.",
        ]
        fixes = [
            "The pump could show a wrong time after the switch to daylight saving time.",
            "The keypad beep stayed active in night mode.",
            "Rare restart when the Wi-Fi network changed during an infusion.",
            "The drug library name was cut off after 24 characters.",
            "The occlusion alarm could sound twice for one event.",
            "Battery percentage jumped when mains power was disconnected.",
            "Event log export failed on USB sticks larger than 64 GB.",
        ]
        paths = [f"/vt/releases/infusafe-{v.replace('.', '-')}.html" for v in versions]
        base = date(2022, 9, 1)
        for i, version in enumerate(versions):
            path = paths[i]
            released = base + timedelta(days=95 * i + rng.randrange(20))
            blocks: list[Block] = [
                (
                    "p",
                    f"Released {_fmt_date(released)}. This release applies to InfuSafe X200, X210 and X300 pumps "
                    "and is installed with Veltrona Service Tool.",
                ),
                ("h2", "Before you update"),
                (
                    "p",
                    f"Make sure each pump is at least {charges[i]} % charged and connected to mains power before you "
                    f"start. Installation takes about {minutes[i]} minutes per pump, after which the pump restarts "
                    "and runs a self-test.",
                ),
                ("h2", "New features"),
                ("ul", self.filler(features, 3)),
                ("h2", "Fixed issues"),
                ("ul", [f"INF-{rng.randint(1000, 9999)}: {t}" for t in self.filler(fixes, 3)]),
                ("h2", "Known issues"),
                ("p", "None that affect patient safety. See the field safety notices page for open actions."),
            ]
            self.page(
                _Page(
                    path,
                    "support",
                    "release-infusafe",
                    f"InfuSafe firmware {version} release notes",
                    ["Support", "Release notes", "InfuSafe", version],
                    blocks,
                    released + timedelta(days=3),
                )
            )
        for version in ["7.1.0", "7.2.0", "7.4.1"]:
            released = _rand_date(rng)
            blocks = [
                ("p", f"Released {_fmt_date(released)}. Applies to VitaView M5, M7 and M9 monitors."),
                ("h2", "Highlights"),
                (
                    "ul",
                    self.filler(
                        [
                            "New alarm profile for post-anaesthesia care units.",
                            "Faster trend review with pinch zoom.",
                            "HL7 messages now include the bed label.",
                            "Improved SpO2 performance during motion.",
                            "Screen lock after a configurable idle time.",
                        ],
                        3,
                    ),
                ),
                ("h2", "Installation"),
                ("p", "Install the update from a USB stick or push it from the central station to all monitors."),
            ]
            self.page(
                _Page(
                    f"/vt/releases/vitaview-{version.replace('.', '-')}.html",
                    "support",
                    "release-vitaview",
                    f"VitaView software {version} release notes",
                    ["Support", "Release notes", "VitaView", version],
                    blocks,
                    released,
                )
            )
        picks = rng.sample(range(len(versions)), 5)
        for i in picks:
            others = rng.sample([p for p in paths if p != paths[i]], rng.randint(3, 6))
            self.ask(
                "distractor",
                f"Before installing InfuSafe firmware {versions[i]}, how much charge does the pump battery need?",
                paths[i],
                f"at least {charges[i]} % charged",
                others,
            )
        for i in rng.sample(range(len(versions)), 4):
            others = rng.sample([p for p in paths if p != paths[i]], rng.randint(3, 6))
            self.ask(
                "distractor",
                f"How long does the {versions[i]} firmware update take per InfuSafe pump?",
                paths[i],
                f"takes about {minutes[i]} minutes per pump",
                others,
            )

    # -- service centres and plans ------------------------------------------------------------

    def service(self) -> None:
        rng = self.rng
        centres = [
            ("Lyon", "France", "12 rue Marius Berliet, 69008 Lyon", "+33 4 72 18 40 00"),
            ("Milan", "Italy", "Via Gallarate 205, 20151 Milano", "+39 02 3809 1100"),
            ("Leipzig", "Germany", "Maximilianallee 4, 04129 Leipzig", "+49 341 5299 300"),
            ("Utrecht", "the Netherlands", "Papendorpseweg 75, 3528 BJ Utrecht", "+31 30 760 4400"),
            ("Porto", "Portugal", "Rua do Bonjardim 1100, 4000-123 Porto", "+351 22 010 6600"),
            ("Krakow", "Poland", "ul. Pawia 9, 31-154 Krakow", "+48 12 395 7700"),
        ]
        turnaround = rng.sample([3, 4, 5, 6, 7, 8, 9, 10], len(centres))
        loaner = rng.sample([2, 3, 4, 5, 6, 8], len(centres))
        paths = [f"/vt/service/centre-{c[0].lower()}.html" for c in centres]
        for i, (city, country, address, phone) in enumerate(centres):
            blocks: list[Block] = [
                (
                    "p",
                    f"The {city} service centre repairs and maintains InfuSafe, VitaView and AeroVent devices for "
                    f"hospitals in {country} and neighbouring regions.",
                ),
                ("h2", "Repairs"),
                (
                    "p",
                    f"Standard turnaround for pump repairs is {turnaround[i]} working days from receipt. Monitors and "
                    "ventilators can take longer when parts have to come from the central warehouse in Eindhoven.",
                ),
                ("h2", "Loaner devices"),
                (
                    "p",
                    f"Loaner devices are available for up to {loaner[i]} weeks while your own device is being "
                    "repaired. Loaners are delivered with a fresh preventive maintenance sticker.",
                ),
                ("h2", "Sending a device"),
                (
                    "ol",
                    [
                        "Create a return request in MyVeltrona.",
                        "Disinfect the device and attach the decontamination form.",
                        "Pack the device in the original box or a padded crate.",
                    ],
                ),
                ("h2", "Contact"),
                ("dl", [("Address", address), ("Phone", phone), ("Opening hours", "Monday to Friday, 07:30 to 17:00")]),
            ]
            self.page(
                _Page(
                    paths[i],
                    "support",
                    "service-centre",
                    f"Service centre {city}",
                    ["Support", "Service centres", city],
                    blocks,
                    _rand_date(rng),
                )
            )
        for i in rng.sample(range(len(centres)), 3):
            self.ask(
                "distractor",
                f"What's the standard turnaround for a pump repair at the {centres[i][0]} service centre?",
                paths[i],
                f"pump repairs is {turnaround[i]} working days",
                rng.sample([p for p in paths if p != paths[i]], rng.randint(3, 5)),
            )
        for i in rng.sample(range(len(centres)), 3):
            self.ask(
                "distractor",
                f"How long can we keep a loaner from the {centres[i][0]} centre while our device is being fixed?",
                paths[i],
                f"available for up to {loaner[i]} weeks",
                rng.sample([p for p in paths if p != paths[i]], rng.randint(3, 5)),
            )
        # service plans page with a fee table
        path = "/vt/service/plans.html"
        plans = ["Essential", "Plus", "Premium", "Premium 24/7"]
        fees_pump = sorted(rng.sample(range(150, 420, 5), 4))
        fees_monitor = sorted(rng.sample(range(430, 900, 5), 4))
        rows = [
            [plan, resp, str(visits), f"EUR {fp}", f"EUR {fm}"]
            for plan, resp, visits, fp, fm in zip(
                plans,
                ["Next working day", "Same working day", "Within 8 hours", "Within 4 hours"],
                [1, 1, 2, 2],
                fees_pump,
                fees_monitor,
                strict=True,
            )
        ]
        sentence = self.paraphrase(
            "With the top-tier agreement, how soon do we receive a substitute device?",
            path,
            "Premium contracts include a replacement unit delivered the next working day.",
            "replacement unit delivered the next working day",
            paths[:2],
        )
        blocks = [
            (
                "p",
                "Our service plans keep your fleet safe, compliant and available. All plans include parts and labour.",
            ),
            (
                "table",
                "Service plans and annual fees",
                [
                    "Plan",
                    "Response time",
                    "Preventive visits per year",
                    "Annual fee per pump",
                    "Annual fee per monitor",
                ],
                rows,
            ),
            ("h2", "What is included"),
            ("p", sentence + " Essential and Plus customers can rent loaners at a reduced rate."),
            (
                "p",
                "Our field team completed 14,500 preventive maintenance visits in 2023, most of them during night "
                "shifts to avoid disrupting care.",
            ),
        ]
        self.page(
            _Page(
                path,
                "corporate",
                "service-plans",
                "Service plans",
                ["Home", "Services", "Service plans"],
                blocks,
                _rand_date(rng),
            )
        )
        self.ask(
            "number",
            "How many preventive maintenance visits did Veltrona's field team do in 2023?",
            path,
            "14,500 preventive maintenance visits",
            paths[:2],
        )
        for idx, col, label in [(1, 3, "pump"), (2, 4, "monitor"), (3, 3, "pump")]:
            self.ask(
                "table-number",
                f"What does the {plans[idx]} service plan cost per {label} per year?",
                path,
                rows[idx][col],
                paths[:2],
            )

    # -- HR intranet --------------------------------------------------------------------------

    def hr(self) -> None:
        rng = self.rng
        countries = ["Netherlands", "Germany", "France", "Estonia", "Czech Republic"]
        adjective = dict(zip(countries, ["Dutch", "German", "French", "Estonian", "Czech"], strict=True))
        days = rng.sample([24, 25, 26, 27, 28, 29, 30, 31], len(countries))
        weeks = rng.sample([2, 3, 4, 5, 6, 8], len(countries))
        holidays = {
            "Netherlands": ["New Year's Day", "King's Day", "Liberation Day", "Christmas"],
            "Germany": ["New Year's Day", "Good Friday", "Day of German Unity", "Christmas"],
            "France": ["New Year's Day", "Labour Day", "Bastille Day", "Christmas"],
            "Estonia": ["New Year's Day", "Independence Day", "Midsummer Day", "Christmas"],
            "Czech Republic": ["New Year's Day", "Easter Monday", "Statehood Day", "Christmas"],
        }
        paths = [f"/vt/hr/leave-{_slugify(c)}.html" for c in countries]
        for i, country in enumerate(countries):
            blocks: list[Block] = [
                (
                    "p",
                    f"This page summarises leave entitlements for employees with a {country} employment contract. "
                    "Where local law is more generous, local law applies.",
                ),
                ("h2", "Annual leave"),
                (
                    "p",
                    f"Full-time employees receive {days[i]} days of paid annual leave per calendar year. Part-time "
                    "employees receive a pro-rata entitlement. Book leave in the People Portal.",
                ),
                ("h2", "Parental leave"),
                (
                    "p",
                    f"Veltrona tops up statutory parental leave with {weeks[i]} additional weeks at full pay. Both "
                    "parents are eligible after six months of service.",
                ),
                ("h2", "Public holidays"),
                ("ul", holidays[country]),
                ("h2", "Sick leave"),
                (
                    "p",
                    "Report sickness to your manager before your shift starts, and follow the local return-to-work "
                    "process.",
                ),
            ]
            self.page(
                _Page(
                    paths[i],
                    "intranet",
                    "hr-leave",
                    f"Leave and holidays: {country}",
                    ["Intranet", "People & Culture", "Leave", country],
                    blocks,
                    _rand_date(rng),
                )
            )
        for i in rng.sample(range(len(countries)), 3):
            self.ask(
                "distractor",
                f"How many days of paid holiday do full-timers on a {adjective[countries[i]]} contract get?",
                paths[i],
                f"receive {days[i]} days of paid annual leave",
                [p for p in paths if p != paths[i]],
            )
        for i in rng.sample(range(len(countries)), 3):
            self.ask(
                "distractor",
                "How many extra fully paid weeks of parental leave does Veltrona give staff in "
                f"{countries[i].replace('Czech', 'the Czech').replace('Netherlands', 'the Netherlands')}?",
                paths[i],
                f"with {weeks[i]} additional weeks at full pay",
                rng.sample([p for p in paths if p != paths[i]], 3),
            )
        travel = "/vt/hr/travel-and-expenses.html"
        relocation = "/vt/hr/relocation.html"
        remote = "/vt/hr/working-from-home.html"
        policy_paths = [travel, relocation, remote]
        blocks = [
            ("p", "This policy applies to all business travel booked by or for Veltrona employees."),
            ("h2", "Choosing how to travel"),
            (
                "p",
                self.paraphrase(
                    "When must I take the train instead of flying?",
                    travel,
                    "Rail is mandatory for journeys under 500 kilometres.",
                    "Rail is mandatory for journeys under 500 kilometres",
                    policy_paths,
                )
                + " "
                + self.paraphrase(
                    "On which trips can I book a premium cabin seat and claim it back?",
                    travel,
                    "Business-class tickets are reimbursed only on flights longer than eight hours.",
                    "reimbursed only on flights longer than eight hours",
                    policy_paths,
                ),
            ),
            (
                "p",
                "Private car use is reimbursed at 0.23 euros per kilometre when no company car or train is available.",
            ),
            ("h2", "Accommodation"),
            (
                "p",
                self.paraphrase(
                    "Am I allowed to reserve my own accommodation?",
                    travel,
                    "Hotel bookings must go through the corporate travel desk.",
                    "Hotel bookings must go through the corporate travel desk",
                    policy_paths,
                )
                + " The nightly limit is 145 euros per night in Amsterdam, Paris and Milan and 110 euros elsewhere.",
            ),
            ("h2", "Claiming expenses"),
            ("p", "Submit receipts in the expense app within the month after the trip."),
        ]
        self.page(
            _Page(
                travel,
                "intranet",
                "hr-policy",
                "Travel and expenses policy",
                ["Intranet", "People & Culture", "Travel"],
                blocks,
                _rand_date(rng),
            )
        )
        self.ask(
            "number",
            "What's the mileage rate when I use my own car for a business trip?",
            travel,
            "0.23 euros per kilometre",
            policy_paths,
        )
        self.ask(
            "number",
            "What's the maximum hotel rate per night for a business trip to Paris?",
            travel,
            "145 euros per night",
            policy_paths,
        )
        blocks = [
            ("p", "Moving for work is a big step. This policy explains the support Veltrona provides."),
            ("h2", "Financial support"),
            (
                "p",
                self.paraphrase(
                    "If my employer asks me to move house, what payment am I given?",
                    relocation,
                    "Staff relocating at the company's request receive a one-off allowance of 4,500 euros.",
                    "one-off allowance of 4,500 euros",
                    policy_paths,
                )
                + " The allowance is paid with the first salary at the new location.",
            ),
            ("h2", "Practical help"),
            ("ul", ["Temporary housing for up to one month", "Language course for partners", "Tax advice"]),
        ]
        self.page(
            _Page(
                relocation,
                "intranet",
                "hr-policy",
                "Relocation support",
                ["Intranet", "People & Culture", "Relocation"],
                blocks,
                _rand_date(rng),
            )
        )
        blocks = [
            ("p", "Hybrid work is the standard for office roles at Veltrona."),
            ("h2", "How often"),
            (
                "p",
                self.paraphrase(
                    "How often am I allowed to do my job remotely, and who signs off on it?",
                    remote,
                    "Colleagues may work from home on up to three weekdays, subject to line manager approval.",
                    "work from home on up to three weekdays",
                    policy_paths,
                ),
            ),
            ("h2", "Equipment and allowance"),
            (
                "p",
                self.paraphrase(
                    "Will Veltrona pay for office furniture and a monitor for my home setup?",
                    remote,
                    "The firm reimburses an ergonomic chair and a second screen once.",
                    "reimburses an ergonomic chair and a second screen",
                    policy_paths,
                )
                + " Employees also receive a monthly home-office allowance of 35 euros.",
            ),
        ]
        self.page(
            _Page(
                remote,
                "intranet",
                "hr-policy",
                "Working from home",
                ["Intranet", "People & Culture", "Working from home"],
                blocks,
                _rand_date(rng),
            )
        )
        self.ask(
            "number",
            "How much is the monthly allowance for working from home?",
            remote,
            "home-office allowance of 35 euros",
            policy_paths,
        )

    # -- company pages: news, about, careers, academy -----------------------------------------

    def company(self) -> None:
        rng = self.rng
        news = [
            "/vt/news/tallinn-expansion.html",
            "/vt/news/results-2023.html",
            "/vt/news/x210-field-action.html",
            "/vt/news/brno-engineering.html",
        ]
        about, careers, academy = "/vt/company/about.html", "/vt/company/careers.html", "/vt/academy/courses.html"
        corporate = [about, careers, academy]
        tallinn_blocks: list[Block] = [
            (
                "p",
                "Veltrona Medical today opened the extension of its Tallinn plant, where InfuSafe pumps and "
                "cassettes are made. The extension adds 6,400 square metres of ISO class 7 cleanroom and raises "
                "cassette capacity by half.",
            ),
            (
                "p",
                "The investment of EUR 38 million was financed from own funds. "
                + self.paraphrase(
                    "How much of the Estonian factory's power comes from the sun?",
                    news[0],
                    "Solar panels on the Tallinn roof now cover a third of the plant's electricity.",
                    "cover a third of the plant's electricity",
                    news[1:],
                ),
            ),
            ("p", '"Tallinn has become the heart of our infusion business," said the Chief Operations Officer.'),
        ]
        results_blocks: list[Block] = [
            (
                "p",
                "Veltrona Medical reports a year of solid growth driven by infusion therapy and service contracts. "
                "Revenue rose to EUR 412 million, up 9 percent on the previous year.",
            ),
            (
                "p",
                "The order backlog stood at 61,000 devices at year end. Service revenue grew faster than device "
                "sales for the second year in a row.",
            ),
            ("h2", "Outlook"),
            ("p", "For the coming year the company expects moderate growth and continued investment in software."),
        ]
        field_blocks: list[Block] = [
            (
                "p",
                "Veltrona Medical has started a voluntary field action for InfuSafe X210 pumps after reports of "
                "loose battery connectors. The voluntary field action covers 1,870 InfuSafe X210 pumps built in "
                "the first half of the year.",
            ),
            (
                "p",
                self.paraphrase(
                    "How quickly did hospitals hear about the faulty batch?",
                    news[2],
                    "Affected customers were contacted by letter within forty-eight hours.",
                    "contacted by letter within forty-eight hours",
                    [news[0], news[1], news[3]],
                )
                + " No patient harm has been reported.",
            ),
        ]
        brno_blocks: list[Block] = [
            (
                "p",
                "Veltrona's engineering centre in Brno keeps growing. Over the past year the company hired 140 "
                "engineers in Brno, most of them in embedded software and systems testing.",
            ),
            ("p", "The centre works closely with the technical universities in Brno and Prague."),
        ]
        for path, title, blocks in [
            (news[0], "Veltrona opens cleanroom extension in Tallinn", tallinn_blocks),
            (news[1], "Veltrona Medical reports full-year results", results_blocks),
            (news[2], "Voluntary field action for InfuSafe X210 battery connectors", field_blocks),
            (news[3], "Brno engineering centre passes a milestone", brno_blocks),
        ]:
            self.page(_Page(path, "newsroom", "news", title, ["Home", "Newsroom", title], blocks, _rand_date(rng)))
        for question, path, needle in [
            ("How much cleanroom space does the Tallinn extension add?", news[0], "adds 6,400 square metres"),
            ("How much money is going into the Tallinn plant extension?", news[0], "investment of EUR 38 million"),
            ("What revenue did Veltrona report for the year?", news[1], "Revenue rose to EUR 412 million"),
            ("How big was Veltrona's order backlog at the end of the year?", news[1], "backlog stood at 61,000"),
            ("How many X210 pumps are included in the battery connector field action?", news[2], "covers 1,870"),
            ("How many engineers did Veltrona take on in Brno last year?", news[3], "hired 140 engineers"),
        ]:
            self.ask("number", question, path, needle, [p for p in news if p != path])
        about_blocks: list[Block] = [
            (
                "p",
                self.paraphrase(
                    "Who started the business, and where did they come from?",
                    about,
                    "Veltrona was founded in 1987 by two biomedical engineers from Eindhoven.",
                    "founded in 1987 by two biomedical engineers",
                    corporate,
                )
                + " Their first product was a drop counter for gravity infusions.",
            ),
            ("p", "Today the group employs about 2,300 people and sells in 31 countries."),
            ("h2", "Our sites"),
            (
                "ul",
                [
                    "Eindhoven: headquarters and R&D",
                    "Tallinn: infusion plant",
                    "Brno: engineering centre",
                    "Six service centres across Europe",
                ],
            ),
        ]
        careers_blocks: list[Block] = [
            ("p", "Join a company that builds the devices nurses and paramedics rely on every day."),
            ("h2", "Early careers"),
            (
                "p",
                self.paraphrase(
                    "What happens to newly qualified university leavers when they start at Veltrona?",
                    careers,
                    "Graduates join a rotation programme spanning three departments over eighteen months.",
                    "rotation programme spanning three departments",
                    corporate,
                ),
            ),
            ("h2", "How we hire"),
            (
                "p",
                self.paraphrase(
                    "Do applicants pay their own way to the selection meetings?",
                    careers,
                    "Interviews are held on site and candidates' travel costs are refunded.",
                    "candidates' travel costs are refunded",
                    corporate,
                )
                + " The probation period is 6 months for all permanent roles.",
            ),
        ]
        courses = [
            ("VA-101", "InfuSafe operator basics", "Nurses", "1 day"),
            ("VA-102", "InfuSafe drug library management", "Pharmacists", "2 days"),
            ("VA-201", "InfuSafe technical service", "Biomedical engineers", "3 days"),
            ("VA-301", "VitaView clinical application", "Nurses", "1 day"),
            ("VA-302", "VitaView technical service", "Biomedical engineers", "2 days"),
            ("VA-401", "AeroVent clinical application", "Paramedics", "1 day"),
            ("VA-402", "AeroVent technical service", "Biomedical engineers", "3 days"),
        ]
        fees = rng.sample(range(240, 1900, 10), len(courses))
        course_rows = [[c[0], c[1], c[2], c[3], f"EUR {fee:,}"] for c, fee in zip(courses, fees, strict=True)]
        academy_blocks: list[Block] = [
            ("p", "Veltrona Academy trains clinical users and technicians on every product we make."),
            (
                "table",
                "Course catalogue",
                ["Code", "Course", "Audience", "Duration", "Fee per participant"],
                course_rows,
            ),
            (
                "p",
                "Each hands-on session is limited to 8 participants. "
                + self.paraphrase(
                    "How long is the training qualification valid before I need to redo a course?",
                    academy,
                    "Certificates lapse after two years unless the holder attends a refresher.",
                    "Certificates lapse after two years",
                    corporate,
                ),
            ),
        ]
        for path, site, title, crumbs, blocks in [
            (about, "corporate", "About Veltrona Medical", ["Home", "Company", "About"], about_blocks),
            (careers, "corporate", "Careers at Veltrona", ["Home", "Company", "Careers"], careers_blocks),
            (academy, "corporate", "Veltrona Academy courses", ["Home", "Academy", "Courses"], academy_blocks),
        ]:
            self.page(_Page(path, site, "company", title, crumbs, blocks, _rand_date(rng)))
        for question, path, needle in [
            ("How many people work at Veltrona?", about, "employs about 2,300 people"),
            ("In how many countries does Veltrona sell its devices?", about, "sells in 31 countries"),
            (
                "How long is the probation period for a permanent job at Veltrona?",
                careers,
                "probation period is 6 months",
            ),
            (
                "What's the maximum group size for hands-on training at the Academy?",
                academy,
                "limited to 8 participants",
            ),
        ]:
            self.ask("number", question, path, needle, [p for p in corporate if p != path])
        for i in rng.sample(range(len(courses)), 3):
            self.ask(
                "table-number",
                f"How much does the {courses[i][1]} course cost per person?",
                academy,
                course_rows[i][4],
                ["/vt/service/plans.html"],
            )

    # -- PDFs ---------------------------------------------------------------------------------

    def add_pdf(self, path: str, topic: str, head: str, foot: str, pages: Sequence[Sequence[Block]]) -> None:
        self.docs[path] = CorpusDocument(path, "pdf", topic, _draw_pdf(head, foot, pages), PDF_TYPE)

    def pdfs(self) -> None:
        rng = self.rng
        manuals = [
            "/vt/docs/manual-x200.pdf",
            "/vt/docs/manual-x300.pdf",
            "/vt/docs/manual-m7.pdf",
            "/vt/docs/manual-v60.pdf",
        ]
        kits = rng.sample(range(9040, 9099), 12)
        # the two pump manuals are look-alikes: same text, values never shared between them
        tolerances = rng.sample([8, 10, 12, 15, 20, 25], 4)
        bubbles, smalls, counts = rng.sample([50, 75, 100], 2), rng.sample([10, 20], 2), rng.sample([3, 5], 2)
        capacities, charges = rng.sample([60, 65, 70, 75, 80], 2), rng.sample([4, 6, 8], 2)
        torque_pool = rng.sample(
            ["0.35", "0.45", "0.6", "0.8", "1.1", "1.4", "1.8", "2.5", "3.0", "3.5", "4.0", "5.0"], 12
        )
        for m, model in enumerate(["X200", "X300"]):
            path = manuals[m]
            kit = [f"VT-{k}" for k in kits[m * 6 : m * 6 + 6]]
            components = [
                "Downstream pressure sensor",
                "Upstream pressure sensor",
                "Air-in-line detector",
                "Door latch assembly",
                "Battery pack",
                "Keypad and display",
            ]
            intervals = [rng.choice([6, 12, 24]) for _ in components]
            down, up = tolerances[2 * m], tolerances[2 * m + 1]
            bubble, small, count = bubbles[m], smalls[m], counts[m]
            capacity, charge = capacities[m], charges[m]
            torques = torque_pool[6 * m : 6 * m + 6]
            fasteners = [
                ("M2.5 screw", "Cassette door hinge"),
                ("M3 screw", "Rear housing"),
                ("M3 screw", "Battery compartment lid"),
                ("M4 screw", "Pole clamp"),
                ("M2 screw", "Display bezel"),
                ("M3 screw", "Pump mechanism mount"),
            ]
            pages: list[list[Block]] = [
                [
                    ("h1", f"InfuSafe {model} Service Manual"),
                    ("p", f"Document SM-{model}, revision D. For trained biomedical engineering staff only."),
                    ("h2", "1 About this manual"),
                    (
                        "cols",
                        "This manual describes preventive maintenance, calibration and repair of the InfuSafe "
                        f"{model}. It does not replace the instructions for use. Read the safety notes before you "
                        "open a device, and always disconnect mains power first.",
                        "Warnings mark hazards to patients or users. Cautions mark risks to the equipment. Values "
                        "in this manual apply to firmware 4.x. Torque values are given in newton metres (Nm). Use "
                        "only tools and kits listed in chapter 2.",
                    ),
                    (
                        "ul",
                        [
                            "2 Preventive maintenance schedule",
                            "3 Pressure sensor calibration",
                            "4 Air-in-line detector verification",
                            "5 Battery service",
                            "6 Torque values",
                        ],
                    ),
                ],
                [
                    ("h2", "2 Preventive maintenance schedule"),
                    ("p", "Perform the checks below at the stated interval or after any drop or fluid ingress."),
                    (
                        "table",
                        ["Component", "Interval", "Test kit", "Typical time"],
                        [
                            [c, f"{iv} months", k, f"{rng.randint(10, 40)} min"]
                            for c, iv, k in zip(components, intervals, kit, strict=True)
                        ],
                        (60, 30, 40, 44),
                    ),
                    ("small", "Record each check in the device history file."),
                ],
                [
                    ("h2", "3 Pressure sensor calibration"),
                    (
                        "cols",
                        "Connect the reference manometer to the cassette port with the calibration cassette in "
                        "place. Apply the reference pressure of 300 mmHg and wait until the reading is stable. "
                        f"Accept the downstream sensor if its reading is within {down} mmHg of the reference.",
                        "Repeat the procedure for the upstream sensor with the negative pressure adapter. "
                        f"Accept the upstream sensor if its reading is within {up} mmHg of the reference. "
                        "Store the new offsets and print the calibration report.",
                    ),
                ],
                [
                    ("h2", "4 Air-in-line detector verification"),
                    (
                        "p",
                        f"Inject test bubbles of {bubble} microlitres with the bubble generator. The detector passes "
                        f"when it alarms on {count} of {count} bubbles. A bubble of {small} microlitres must not "
                        "trigger an alarm when the limit is set to its default.",
                    ),
                    ("p", "Clean the detector channel with a lint-free swab before the test."),
                ],
                [
                    ("h2", "5 Battery service"),
                    (
                        "cols",
                        "Run the capacity test from the service menu with a fully charged pack. Replace the battery "
                        f"pack when its measured capacity falls below {capacity} percent of nominal.",
                        f"Charge a new pack for at least {charge} hours before first use. Dispose of old packs "
                        "through your local battery recycling scheme.",
                    ),
                ],
                [
                    ("h2", "6 Torque values"),
                    (
                        "table",
                        ["Fastener", "Location", "Torque"],
                        [[f, loc, f"{t} Nm"] for (f, loc), t in zip(fasteners, torques, strict=True)],
                        (40, 90, 44),
                    ),
                    ("small", "Use a calibrated torque screwdriver. Do not reuse thread-locking screws."),
                ],
            ]
            self.add_pdf(path, "manual", f"InfuSafe {model} Service Manual", f"SM-{model} Rev. D", pages)
            lookalike = [p for p in manuals if p != path]
            if model == "X200":
                self.ask(
                    "pdf-page",
                    "In the X200 service manual, what tolerance is allowed for the downstream pressure sensor?",
                    path,
                    f"downstream sensor if its reading is within {down} mmHg",
                    lookalike,
                    page=3,
                )
                self.ask(
                    "pdf-page",
                    "According to the X200 service manual, how many test bubbles out of how many "
                    "must the air detector catch?",
                    path,
                    f"alarms on {count} of {count} bubbles",
                    lookalike,
                    page=4,
                )
                self.ask(
                    "pdf-page",
                    "What torque does the X200 service manual specify for the rear housing screws?",
                    path,
                    f"{torques[1]} Nm",
                    lookalike,
                    page=6,
                )
            else:
                self.ask(
                    "pdf-page",
                    "Which test kit does the InfuSafe X300 manual list for checking the door latch?",
                    path,
                    kit[3],
                    lookalike,
                    page=2,
                )
                self.ask(
                    "pdf-page",
                    "At what remaining capacity should the X300 battery pack be swapped, per the service manual?",
                    path,
                    f"below {capacity} percent of nominal",
                    lookalike,
                    page=5,
                )
                self.ask(
                    "pdf-page",
                    "What size of test bubble does the X300 service manual use for the air detector check?",
                    path,
                    f"test bubbles of {bubble} microlitres",
                    lookalike,
                    page=4,
                )
        # VitaView M7 service manual
        a, b, dev = rng.choice([150, 200]), rng.choice([250, 280]), rng.choice([2, 3])
        sat, pts = rng.choice([85, 90, 95]), rng.choice([2, 3])
        amp, bpm = rng.choice(["1.0", "2.0"]), rng.choice([60, 80, 120])
        self.add_pdf(
            manuals[2],
            "manual",
            "VitaView M7 Service Manual",
            "SM-M7 Rev. B",
            [
                [
                    ("h1", "VitaView M7 Service Manual"),
                    ("p", "Document SM-M7, revision B. Applies to software 7.x."),
                    (
                        "cols",
                        "The VitaView M7 is a bedside monitor for adults and children. This manual explains "
                        "the functional checks required after repair and at each preventive maintenance visit.",
                        "Use a patient simulator and a calibrated manometer. Keep a log of every check. Do not "
                        "perform checks while the monitor is connected to a patient.",
                    ),
                ],
                [
                    ("h2", "2 NIBP calibration check"),
                    (
                        "p",
                        f"Connect the manometer through a T-piece and check the pressure transducer at 0, {a} and "
                        f"{b} mmHg. Accept deviations of up to {dev} mmHg at every point.",
                    ),
                    (
                        "p",
                        "Run the leak test afterwards: the pressure must not drop by more than 6 mmHg in 60 seconds.",
                    ),
                ],
                [
                    ("h2", "3 SpO2 module check"),
                    (
                        "p",
                        f"Set the simulator to {sat} percent saturation. The displayed value must be within {pts} "
                        "points of the simulator setting.",
                    ),
                ],
                [
                    ("h2", "4 ECG verification"),
                    (
                        "cols",
                        f"Apply a {amp} mV test signal at {bpm} bpm to all leads. The displayed heart rate must "
                        "match the simulator.",
                        "Check the lead-off detection for each electrode by disconnecting it in turn.",
                    ),
                ],
                [
                    ("h2", "5 Maintenance intervals"),
                    (
                        "table",
                        ["Check", "Interval", "Chapter"],
                        [
                            ["NIBP calibration", "12 months", "2"],
                            ["SpO2 check", "24 months", "3"],
                            ["ECG verification", "24 months", "4"],
                            ["Battery capacity test", "12 months", "-"],
                        ],
                    ),
                ],
            ],
        )
        self.ask(
            "pdf-page",
            "What deviation is acceptable in the NIBP calibration check of the VitaView M7?",
            manuals[2],
            f"Accept deviations of up to {dev} mmHg",
            [manuals[0], manuals[1], manuals[3]],
            page=2,
        )
        self.ask(
            "pdf-page",
            "What ECG test signal does the M7 service manual tell me to apply?",
            manuals[2],
            f"Apply a {amp} mV test signal",
            [manuals[0], manuals[3]],
            page=4,
        )
        # AeroVent V60 service manual
        turbine, o2tol = rng.choice(["15,000", "20,000", "25,000"]), rng.choice([2, 3])
        drop, secs = rng.choice([3, 5]), rng.choice([10, 15, 30])
        self.add_pdf(
            manuals[3],
            "manual",
            "AeroVent V60 Service Manual",
            "SM-V60 Rev. C",
            [
                [
                    ("h1", "AeroVent V60 Service Manual"),
                    ("p", "Document SM-V60, revision C."),
                    (
                        "cols",
                        "The AeroVent V60 is a turbine-driven ventilator for transport and emergency use. This "
                        "manual covers the service tasks for trained technicians.",
                        "Always perform a full performance check after any repair. Use the calibrated test lung and "
                        "the Veltrona Service Tool.",
                    ),
                ],
                [
                    ("h2", "2 Turbine service"),
                    (
                        "p",
                        f"Replace the turbine after {turbine} operating hours or when the turbine noise check fails.",
                    ),
                ],
                [
                    ("h2", "3 Oxygen sensor calibration"),
                    (
                        "p",
                        "Calibrate at 21 and 100 percent oxygen. The reading must settle within "
                        f"{o2tol} percentage points of the reference at both points.",
                    ),
                ],
                [
                    ("h2", "4 Leak test"),
                    (
                        "cols",
                        "Connect the test lung and close the circuit. Pressurise to 30 cmH2O.",
                        f"The circuit passes when pressure drops by less than {drop} cmH2O in {secs} seconds.",
                    ),
                ],
                [
                    ("h2", "5 Maintenance intervals"),
                    (
                        "table",
                        ["Task", "Interval"],
                        [
                            ["Performance check", "12 months"],
                            ["Oxygen sensor calibration", "6 months"],
                            ["Leak test", "Before each shift"],
                        ],
                    ),
                ],
            ],
        )
        self.ask(
            "pdf-page",
            "How closely must the O2 reading match the reference during sensor calibration on the AeroVent V60?",
            manuals[3],
            f"within {o2tol} percentage points",
            manuals[:3],
            page=3,
        )
        self.ask(
            "pdf-page",
            "What's the pass criterion of the V60 leak test?",
            manuals[3],
            f"drops by less than {drop} cmH2O",
            manuals[:3],
            page=4,
        )
        # datasheets
        ds_m5, ds_s14 = "/vt/docs/datasheet-m5.pdf", "/vt/docs/datasheet-s14.pdf"
        codes = rng.sample(range(100, 999), 4)
        order_rows = [
            [f"VV-M5-{codes[0]}", "VitaView M5, ECG, SpO2, NIBP"],
            [f"VV-M5-{codes[1]}", "VitaView M5, ECG, SpO2, NIBP, temperature"],
            [f"VV-M5-{codes[2]}", "VitaView M5, ECG, SpO2, NIBP, temperature, CO2"],
            [f"VV-M5-{codes[3]}", "Wall mount kit for VitaView M5"],
        ]
        self.add_pdf(
            ds_m5,
            "datasheet",
            "VitaView M5 datasheet",
            "DS-M5 2024-03",
            [
                [
                    ("h1", "VitaView M5 compact patient monitor"),
                    (
                        "cols",
                        "The VitaView M5 brings essential monitoring to wards, recovery rooms and "
                        "outpatient clinics. It weighs little, mounts anywhere and runs on battery during transfers.",
                        "Alarm profiles, trend review and the HL7 interface are the same as on larger VitaView "
                        "models, so staff need no extra training.",
                    ),
                    (
                        "table",
                        ["Feature", "Detail"],
                        [
                            ["Display", "10.1-inch touchscreen"],
                            ["Parameters", "ECG, SpO2, NIBP, temperature, CO2 option"],
                            ["Connectivity", "Wi-Fi, LAN, HL7"],
                        ],
                    ),
                ],
                [
                    ("h2", "Ordering information"),
                    ("table", ["Order code", "Description"], order_rows, (45, 129)),
                ],
            ],
        )
        self.ask(
            "pdf-page",
            "What is the order code of the VitaView M5 version with the CO2 option?",
            ds_m5,
            order_rows[2][0],
            [ds_s14],
            page=2,
        )
        brands = rng.choice([24, 36, 48])
        self.add_pdf(
            ds_s14,
            "datasheet",
            "InfuSafe S14 datasheet",
            "DS-S14 2024-01",
            [
                [
                    ("h1", "InfuSafe S14 syringe driver"),
                    (
                        "cols",
                        "The InfuSafe S14 is built for anaesthesia and intensive care, where small volumes "
                        f"and precise rates count. The S14 recognises {brands} syringe brands automatically.",
                        "Pressure trending shows a building occlusion before the alarm sounds. The driver stacks with "
                        "InfuSafe pumps on one pole.",
                    ),
                ],
                [
                    ("h2", "Ordering information"),
                    (
                        "table",
                        ["Order code", "Description"],
                        [["IS-S14-100", "InfuSafe S14 syringe driver"], ["IS-S14-200", "InfuSafe S14 with TCI"]],
                    ),
                ],
            ],
        )
        self.ask(
            "pdf-page",
            "According to the S14 datasheet, how many syringe brands does it detect on its own?",
            ds_s14,
            f"recognises {brands} syringe brands",
            [ds_m5],
            page=1,
        )
        # IFU S12
        ifu = "/vt/docs/ifu-s12.pdf"
        prime, pre = rng.choice([1, 2, 3]), rng.choice([3, 5, 10])
        self.add_pdf(
            ifu,
            "ifu",
            "InfuSafe S12 Instructions for use",
            "IFU-S12 v5",
            [
                [
                    ("h1", "InfuSafe S12 Instructions for use"),
                    (
                        "cols",
                        "Intended use: controlled delivery of fluids and medication from a syringe, for adults "
                        "and children, by trained healthcare professionals.",
                        "Do not use the driver for enteral feeding or in MRI rooms. Do not use damaged syringes.",
                    ),
                ],
                [
                    ("h2", "Loading a syringe"),
                    (
                        "p",
                        "The S12 accepts syringes of 5, 10, 20, 30 and 50 mL. Open the plunger clamp, place the "
                        "syringe and close the clamp.",
                    ),
                    ("p", f"Prime the line with at least {prime} mL before you connect it to the patient."),
                ],
                [
                    ("h2", "Alarms"),
                    (
                        "table",
                        ["Alarm", "Priority", "Meaning"],
                        [
                            ["Occlusion", "High", "Pressure limit reached"],
                            ["Syringe empty", "High", "Plunger at end"],
                            ["Near empty", "Low", "Pre-alarm"],
                        ],
                    ),
                    ("p", f"The near-empty pre-alarm sounds {pre} minutes before the syringe is empty."),
                ],
                [
                    ("h2", "Cleaning and storage"),
                    (
                        "p",
                        "Wipe the housing with a damp cloth and an approved disinfectant. Store between -20 and "
                        "50 degrees C.",
                    ),
                ],
            ],
        )
        self.ask(
            "pdf-page",
            "How much should I prime the line with before connecting an S12 to the patient?",
            ifu,
            f"at least {prime} mL before you connect",
            [ds_s14, ds_m5],
            page=2,
        )
        self.ask(
            "pdf-page",
            "How long before the syringe is empty does the S12 give its pre-alarm?",
            ifu,
            f"sounds {pre} minutes before",
            [ds_s14],
            page=3,
        )
        # service bulletin
        sb = "/vt/docs/service-bulletin-sb-2024-07.pdf"
        start = rng.randrange(10000, 20000, 100)
        ranges = [
            [f"X210-{start + i * 500:06d} to X210-{start + i * 500 + 399:06d}", f"Week {12 + i}"] for i in range(4)
        ]
        inspect_days = rng.choice([14, 21, 30])
        self.add_pdf(
            sb,
            "bulletin",
            "Service bulletin SB-2024-07",
            "SB-2024-07",
            [
                [
                    ("h1", "Service bulletin SB-2024-07: InfuSafe X210 battery connector"),
                    (
                        "p",
                        "Some X210 pumps may have a battery connector that loosens after repeated drops. The "
                        "following serial ranges are affected.",
                    ),
                    ("table", ["Serial range", "Production week"], ranges),
                ],
                [
                    ("h2", "Action for customers"),
                    (
                        "p",
                        f"Inspect each affected pump within {inspect_days} days of receiving this notice. Pumps "
                        "that fail the inspection must be taken out of service.",
                    ),
                ],
                [
                    ("h2", "Reply form"),
                    ("p", "Return the reply form to your service centre even if you own no affected pumps."),
                ],
            ],
        )
        self.ask(
            "pdf-page",
            f"Which production week does the serial range starting at X210-{start + 1000:06d} belong to in SB-2024-07?",
            sb,
            ranges[2][0],
            [ifu],
            page=1,
        )
        self.ask(
            "pdf-page",
            "By when do we have to inspect the affected X210 pumps under SB-2024-07?",
            sb,
            f"within {inspect_days} days of receiving",
            [ifu],
            page=2,
        )
        # sustainability report
        report = "/vt/docs/sustainability-report-2023.pdf"
        sites = ["Eindhoven", "Tallinn", "Brno", "Leipzig"]
        renew = rng.sample(range(38, 97), 4)
        landfill = rng.sample(range(4, 60), 4)
        pages = [
            [
                ("h1", "Sustainability report 2023"),
                (
                    "cols",
                    "This report covers our plants, offices and service centres.",
                    "Figures were reviewed by an external auditor.",
                ),
            ]
        ]
        for s, site in enumerate(sites):
            pages.append(
                [
                    ("h2", f"Site report: {site}"),
                    (
                        "p",
                        f"Renewable electricity reached {renew[s]} percent of consumption at {site} in 2023. The site "
                        f"sent {landfill[s]} tonnes of waste to landfill.",
                    ),
                    (
                        "table",
                        ["Indicator", "2022", "2023"],
                        [
                            ["Energy (MWh)", f"{rng.randint(900, 9000):,}", f"{rng.randint(900, 9000):,}"],
                            ["Water (m3)", f"{rng.randint(2000, 40000):,}", f"{rng.randint(2000, 40000):,}"],
                        ],
                    ),
                ]
            )
        self.add_pdf(report, "report", "Sustainability report 2023", "Sustainability 2023", pages)
        self.ask(
            "pdf-page",
            "What share of the Brno site's electricity was renewable in 2023?",
            report,
            f"reached {renew[2]} percent of consumption",
            [ifu, sb],
            page=4,
        )
        self.ask(
            "pdf-page",
            "How much waste did Leipzig send to landfill in 2023?",
            report,
            f"sent {landfill[3]} tonnes of waste",
            [ifu],
            page=5,
        )
        # price list
        price = "/vt/docs/price-list-2024.pdf"
        groups = [
            (
                "Infusion",
                [
                    "InfuSafe X200 base unit",
                    "InfuSafe X210 base unit",
                    "InfuSafe X300 base unit",
                    "InfuSafe S12 base unit",
                    "InfuSafe S14 base unit",
                ],
            ),
            ("Monitoring", ["VitaView M5 base unit", "VitaView M7 base unit", "VitaView M9 base unit", "CO2 module"]),
            ("Ventilation", ["AeroVent V40 base unit", "AeroVent V60 base unit", "Transport bracket"]),
        ]
        prices = iter(rng.sample(range(1200, 24000, 50), 12))
        pages = []
        price_of: dict[str, tuple[str, int]] = {}
        for g, (group, items) in enumerate(groups):
            rows: list[list[str]] = []
            for item in items:
                value = f"{next(prices):,}.00"
                rows.append([f"PL-{g + 1}{len(rows) + 1:02d}", item, value])
                price_of[item] = (value, g + 1)
            pages.append(
                [("h2", f"List prices 2024: {group}"), ("table", ["Item", "Description", "EUR"], rows, (30, 100, 44))]
            )
        self.add_pdf(price, "price-list", "Price list 2024", "Prices excl. VAT", pages)
        for item in ["VitaView M9 base unit", "AeroVent V40 base unit"]:
            self.ask(
                "pdf-page",
                f"What's the 2024 list price of the {item.replace(' base unit', '')}?",
                price,
                price_of[item][0],
                [report],
                page=price_of[item][1],
            )
        # cleaning guide
        clean = "/vt/docs/cleaning-guide.pdf"
        fams = ["infusion pumps", "syringe drivers", "patient monitors", "ventilators"]
        secs_wet = rng.sample([30, 45, 60, 90, 120, 180], 4)
        pages = []
        for f, fam in enumerate(fams):
            pages.append(
                [
                    ("h2", f"Cleaning {fam}"),
                    (
                        "p",
                        f"For {fam}, wipe all outer surfaces with quaternary ammonium wipes and keep the surface "
                        f"visibly wet for {secs_wet[f]} seconds.",
                    ),
                    (
                        "table",
                        ["Agent", "Approved"],
                        [["Alcohol 70 percent", "Yes"], ["Chlorine 1000 ppm", "Yes"], ["Acetone", "No"]],
                    ),
                ]
            )
        self.add_pdf(clean, "guide", "Cleaning and disinfection guide", "CLN-01", pages)
        self.ask(
            "pdf-page",
            "How long must a syringe driver's surface stay wet with quat wipes?",
            clean,
            f"visibly wet for {secs_wet[1]} seconds",
            [ifu, ds_s14],
            page=2,
        )
        self.ask(
            "pdf-page",
            "What wet contact time does the cleaning guide give for ventilators?",
            clean,
            f"visibly wet for {secs_wet[3]} seconds",
            [manuals[3]],
            page=4,
        )
        # quality manual excerpt (filler)
        self.add_pdf(
            "/vt/docs/quality-manual-excerpt.pdf",
            "quality",
            "Quality manual (excerpt)",
            "QM-01 Rev. 12",
            [
                [
                    ("h1", "Quality manual (excerpt)"),
                    (
                        "cols",
                        "Veltrona Medical operates a quality management system certified to ISO 13485.",
                        "The system covers design, production, installation and servicing of medical devices.",
                    ),
                ],
                [
                    ("h2", "Internal audits"),
                    ("p", "Internal audits cover every process at least once every 24 months."),
                ],
                [("h2", "Corrective actions"), ("p", "Corrective actions are closed within 90 days where possible.")],
            ],
        )

    # -- CSVs ---------------------------------------------------------------------------------

    def add_csv(self, path: str, topic: str, rows: list[list[str]], delimiter: str, encoding: str, bom: bool) -> None:
        out = io.StringIO()
        writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
        writer.writerows(rows)
        text = ("\ufeff" if bom else "") + out.getvalue()
        charset = {"utf-8": "utf-8", "cp1252": "windows-1252", "latin-1": "iso-8859-1"}[encoding]
        self.docs[path] = CorpusDocument(path, "csv", topic, text.encode(encoding), f"text/csv; charset={charset}")

    def csvs(self) -> None:
        rng = self.rng
        paths = [
            "/vt/data/parts.csv",
            "/vt/data/service-visits-2023.csv",
            "/vt/data/calibration-log.csv",
            "/vt/data/lot-release.csv",
            "/vt/data/distributors.csv",
        ]

        def others(path: str) -> list[str]:
            return rng.sample([p for p in paths if p != path], 2)

        # 1. parts list, utf-8, quoted fields with commas
        kinds = [
            ("Administration set, anti-siphon", ["1.5 m", "2.0 m", "2.5 m", "3.0 m"], "InfuSafe X200, X210, X300"),
            ("Extension line, low volume", ["50 cm", "100 cm", "150 cm", "200 cm"], "InfuSafe S12, S14"),
            ("Filter, 0.2 micron", ["neonatal", "adult"], "all InfuSafe"),
            ("SpO2 sensor, disposable", ["adult", "paediatric", "neonatal"], "VitaView M5, M7, M9"),
            ("NIBP cuff, single patient", ["child", "adult", "large adult", "thigh"], "VitaView M5, M7, M9"),
            ("Breathing circuit, single-limb", ["adult", "paediatric", "infant"], "AeroVent V40, V60"),
            ("Fuse kit", ["T1.6A", "T3.15A"], "all devices"),
        ]
        statuses = ["active", "active", "active", "phase-out", "obsolete"]
        header = [
            "part_no",
            "description",
            "compatible_with",
            "pack_size",
            "list_price_eur",
            "lead_time_days",
            "status",
        ]
        numbers = rng.sample(range(6000, 6999), 120)
        rows: list[list[str]] = []
        for number in numbers:
            desc, variants, compat = rng.choice(kinds)
            for suffix in rng.sample("ABCDEFGH", rng.randint(2, 3)):
                if len(rows) >= 320:
                    break
                rows.append(
                    [
                        f"VT-{number}-{suffix}",
                        f"{desc}, {rng.choice(variants)}",
                        compat,
                        str(rng.choice([1, 10, 20, 50])),
                        f"{rng.uniform(3, 400):.2f}",
                        str(rng.randint(2, 60)),
                        rng.choice(statuses),
                    ]
                )
        self.add_csv(paths[0], "data", [header, *rows], ",", "utf-8", False)
        for i in rng.sample(range(len(rows)), 4):
            part, q = (
                rows[i][0],
                rng.choice(
                    [
                        "What's the list price of part {p}?",
                        "What is the lead time for ordering {p}?",
                        "Is {p} still an active part or is it being phased out?",
                        "How many pieces are in one pack of {p}?",
                    ]
                ),
            )
            self.ask("csv-row", q.format(p=part), paths[0], part, others(paths[0]), row=i + 1)
        # 2. service visits, windows-1252, ';', decimal commas, German headers
        hospitals = [
            ("Klinikum Görlitz", "Görlitz"),
            ("Städtisches Klinikum Dresden", "Dresden"),
            ("Universitätsklinikum Jena", "Jena"),
            ("Helios Klinikum Erfurt", "Erfurt"),
            ("Klinikum Chemnitz", "Chemnitz"),
            ("St. Georg Klinikum Leipzig", "Leipzig"),
            ("Elblandklinikum Meißen", "Meißen"),
            ("Klinikum Würzburg Mitte", "Würzburg"),
            ("Kreiskrankenhaus Freiberg", "Freiberg"),
            ("Sana Klinikum Borna", "Borna"),
        ]
        techs = ["J. Müller", "K. Schäfer", "A. Weiß", "T. Köhler", "M. Groß", "S. Lehmann", "F. Böhm"]
        devices = ["InfuSafe X200", "InfuSafe X210", "InfuSafe X300", "VitaView M7", "AeroVent V60"]
        header = [
            "Auftragsnr",
            "Datum",
            "Kunde",
            "Ort",
            "Gerät",
            "Seriennummer",
            "Arbeitszeit (h)",
            "Material (EUR)",
            "Techniker",
            "Status",
        ]
        orders = rng.sample(range(10000, 99999), 280)
        serials = rng.sample(range(1000, 99999), 280)
        rows = []
        for n in range(280):
            hospital, town = rng.choice(hospitals)
            device = rng.choice(devices)
            day = date(2023, 1, 2) + timedelta(days=rng.randrange(360))
            rows.append(
                [
                    f"SV23-{orders[n]:05d}",
                    day.strftime("%d.%m.%Y"),
                    hospital,
                    town,
                    device,
                    f"{device.split()[1]}-{serials[n]:06d}",
                    f"{rng.randint(1, 16) / 2:.1f}".replace(".", ","),
                    f"{rng.uniform(0, 900):.2f}".replace(".", ","),
                    rng.choice(techs),
                    rng.choice(["abgeschlossen", "abgeschlossen", "offen", "Teile bestellt"]),
                ]
            )
        self.add_csv(paths[1], "data", [header, *rows], ";", "cp1252", False)
        for i in rng.sample(range(len(rows)), 4):
            r = rows[i]
            if rng.random() < 0.5:
                q, needle = f"How many hours did the service visit on {r[4]} serial {r[5]} take?", r[5]
            else:
                q, needle = f"What was the material cost on service order {r[0]}?", r[0]
            self.ask("csv-row", q, paths[1], needle, others(paths[1]), row=i + 1)
        # 3. calibration log, utf-8 with BOM, tab-separated
        channels = [
            ("VitaView M7", "NIBP", "mmHg", 120.0),
            ("VitaView M7", "SpO2", "%", 90.0),
            ("VitaView M9", "Temp", "°C", 37.0),
            ("InfuSafe X200", "Pressure downstream", "mmHg", 300.0),
            ("InfuSafe X300", "Flow", "mL/h", 100.0),
            ("AeroVent V60", "O2", "%", 100.0),
        ]
        header = [
            "certificate",
            "serial",
            "model",
            "channel",
            "unit",
            "reference",
            "measured",
            "deviation_pct",
            "result",
            "technician",
            "date",
        ]
        certs = rng.sample(range(10000, 99999), 300)
        cal_serials = rng.sample(range(100000, 999999), 300)
        rows = []
        for n in range(300):
            model, channel, unit, ref = rng.choice(channels)
            measured = ref * (1 + rng.uniform(-0.04, 0.04))
            dev = (measured - ref) / ref * 100
            rows.append(
                [
                    f"CAL-24-{certs[n]}",
                    f"{model.split()[1]}-{cal_serials[n]}",
                    model,
                    channel,
                    unit,
                    f"{ref:.1f}",
                    f"{measured:.1f}",
                    f"{dev:+.2f}",
                    "pass" if abs(dev) < 3 else "fail",
                    rng.choice(["R. Tamm", "L. Novák", "E. de Vries", "P. Kask"]),
                    (date(2024, 1, 3) + timedelta(days=rng.randrange(250))).isoformat(),
                ]
            )
        self.add_csv(paths[2], "data", [header, *rows], "\t", "utf-8", True)
        for i in rng.sample(range(len(rows)), 4):
            r = rows[i]
            q = rng.choice(
                [
                    f"What deviation was measured on calibration certificate {r[0]}?",
                    f"Did the {r[3]} channel of device {r[1]} pass its calibration?",
                ]
            )
            self.ask("csv-row", q, paths[2], r[0] if r[0] in q else r[1], others(paths[2]), row=i + 1)
        # 4. lot release, latin-1, ';', decimal commas, French headers
        products = [
            "Set de perfusion anti-siphon 2,5 m",
            "Cassette InfuSafe",
            "Capteur SpO2 adulte",
            "Brassard PNI adulte",
            "Circuit patient AeroVent",
            "Ligne d'extension 150 cm",
        ]
        header = [
            "N° lot",
            "Produit",
            "Site",
            "Date de fabrication",
            "Quantité",
            "Taux de rebut (%)",
            "Statut",
            "Libéré par",
        ]
        lots = rng.sample(range(1000, 9999), 260)
        rows = []
        for n in range(260):
            site = rng.choice(["Tallinn", "Brno", "Eindhoven"])
            made = date(2024, 1, 8) + timedelta(days=rng.randrange(200))
            rows.append(
                [
                    f"L24{site[0]}-{lots[n]}",
                    rng.choice(products),
                    site,
                    made.strftime("%d/%m/%Y"),
                    str(rng.randrange(500, 20000, 50)),
                    f"{rng.uniform(0.05, 2.5):.2f}".replace(".", ","),
                    rng.choice(["libéré", "libéré", "bloqué", "en quarantaine"]),
                    rng.choice(["Hélène Lefèvre", "Benoît Mercier", "Zoé Gauthier", "Loïc Fabre"]),
                ]
            )
        self.add_csv(paths[3], "data", [header, *rows], ";", "latin-1", False)
        for i in rng.sample(range(len(rows)), 4):
            r = rows[i]
            q = rng.choice(
                [
                    f"What was the scrap rate for lot {r[0]}?",
                    f"Who released lot {r[0]}, and is it released or blocked?",
                    f"How many units were made in lot {r[0]}?",
                ]
            )
            self.ask("csv-row", q, paths[3], r[0], others(paths[3]), row=i + 1)
        # 5. distributors, utf-8, quoted addresses
        places = [
            ("Greece", "Thessaloniki", "Egnatia 154, 54636 Thessaloniki"),
            ("Spain", "Valencia", "Calle de Colón 42, 46004 Valencia"),
            ("Italy", "Bologna", "Via dell'Indipendenza 8, 40121 Bologna"),
            ("Austria", "Graz", "Annenstraße 20, 8020 Graz"),
            ("Denmark", "Aarhus", "Søndergade 31, 8000 Aarhus"),
            ("Ireland", "Cork", "Patrick Street 77, T12 Cork"),
            ("Hungary", "Debrecen", "Piac utca 12, 4024 Debrecen"),
            ("Romania", "Cluj-Napoca", "Strada Memorandumului 21, 400114 Cluj-Napoca"),
        ]
        first = ["Anna", "Marco", "Eleni", "Jens", "Siobhan", "Lukas", "Ioana", "Pablo", "Zsofia", "Niamh"]
        last = ["Papadaki", "Rossi", "García", "Hansen", "Murphy", "Gruber", "Popescu", "Nagy", "Kelly", "Ferrer"]
        header = [
            "contract_no",
            "distributor",
            "country",
            "city",
            "address",
            "contact_person",
            "phone",
            "annual_volume_units",
            "renewal_date",
        ]
        contracts = rng.sample(range(1000, 9999), 220)
        rows = []
        for n in range(220):
            country, city, address = rng.choice(places)
            rows.append(
                [
                    f"DC-{contracts[n]}",
                    f"{rng.choice(['Medi', 'Care', 'Vita', 'Hospi'])}"
                    f"{rng.choice(['tec', 'line', 'supply', 'med'])} {city}, {rng.choice(['Ltd', 'S.A.', 'GmbH'])}",
                    country,
                    city,
                    address,
                    f"{rng.choice(first)} {rng.choice(last)}",
                    f"+{rng.randint(30, 49)} {rng.randint(100, 999)} {rng.randint(100000, 999999)}",
                    str(rng.randrange(50, 5000, 10)),
                    (date(2025, 1, 1) + timedelta(days=rng.randrange(700))).isoformat(),
                ]
            )
        self.add_csv(paths[4], "data", [header, *rows], ",", "utf-8", False)
        for i in rng.sample(range(len(rows)), 4):
            r = rows[i]
            q = rng.choice(
                [
                    f"Who is the contact person for distributor contract {r[0]}?",
                    f"When is distribution contract {r[0]} up for renewal?",
                    f"What annual volume is agreed in contract {r[0]}?",
                ]
            )
            self.ask("csv-row", q, paths[4], r[0], others(paths[4]), row=i + 1)

    # -- attach look-alikes and fillers ---------------------------------------------------------

    def finish(self) -> Corpus:
        rng = self.rng
        documents = list(self.docs.values())
        texts = {d.path: document_text(d) for d in documents}
        order = [d.path for d in documents]
        questions = []
        for spec in self.specs:
            answer = self.docs[spec.path]
            chosen = [spec.path, *[p for p in dict.fromkeys(spec.lookalikes) if p != spec.path]]
            size = rng.randint(max(5, len(chosen) + 1), 20)
            pool = [
                p
                for p in order
                if p not in chosen and self.docs[p].topic != answer.topic and spec.needle not in texts[p]
            ]
            chosen += rng.sample(pool, size - len(chosen))
            questions.append(Question(spec.kind, spec.text, spec.path, spec.needle, tuple(chosen), spec.page, spec.row))
        return Corpus(documents=documents, questions=questions)


def testset_generate(*, seed: int = 11) -> Corpus:
    """The Veltrona Medical test set: about 76 web pages, 12 PDFs, 5 CSVs and 160+ labelled questions."""
    return _Builder(seed).build()


# ---------------------------------------------------------------------------------------------
# The check
# ---------------------------------------------------------------------------------------------

_CODE = re.compile(r"\b(?:VT-\d{4}-[A-Z]|[EWA]-\d{3,4})\b")


def _near_twins(code: str, other: str) -> bool:
    if code == other or len(code) != len(other):
        return False
    diff = sum(a != b for a, b in zip(code, other, strict=True))
    return diff == 1 or sorted(code) == sorted(other)


def testset_check(corpus: Corpus) -> None:
    """Assert the invariants the labels rely on; raises AssertionError with the offending question."""
    docs = {d.path: d for d in corpus.documents}
    assert len(docs) == len(corpus.documents), "duplicate document paths"
    kinds = Counter(d.kind for d in corpus.documents)
    assert 60 <= kinds["html"] <= 80 and 10 <= kinds["pdf"] <= 14 and 4 <= kinds["csv"] <= 5, kinds
    html_nodes: dict[str, list[str]] = {}
    pdf_pages: dict[str, list[str]] = {}
    texts: dict[str, str] = {}
    dialects = set()
    for doc in corpus.documents:
        if doc.kind == "html":
            assert doc.content_type == HTML_TYPE
            html_nodes[doc.path] = html_text_nodes(doc.body)
            texts[doc.path] = " ".join(html_nodes[doc.path])
        elif doc.kind == "pdf":
            assert doc.content_type == PDF_TYPE and doc.body.startswith(b"%PDF")
            pdf_pages[doc.path] = pdf_page_texts(doc.body)
            texts[doc.path] = " ".join(pdf_pages[doc.path])
        else:
            assert doc.kind == "csv" and doc.content_type.startswith("text/csv; charset="), doc.content_type
            charset = csv_charset(doc.content_type)
            decoded = doc.body.decode(charset)  # strict: the declared charset must decode every byte
            sample = decoded.lstrip("\ufeff").splitlines()[0]
            delimiter = max(";,\t", key=sample.count)
            quoted = any("," in cell for row in csv.reader(io.StringIO(decoded), delimiter=delimiter) for cell in row)
            dialects.add((charset, delimiter, decoded.startswith("\ufeff"), quoted and delimiter == ","))
            texts[doc.path] = _collapse(decoded)
    assert any(c in ("windows-1252", "iso-8859-1") and d == ";" for c, d, _, _ in dialects), dialects
    assert any(c == "utf-8" and d == "\t" and bom for c, d, bom, _ in dialects), dialects
    assert any(c == "utf-8" and quoted for c, _, _, quoted in dialects), dialects

    counts = Counter(q.kind for q in corpus.questions)
    assert set(counts) <= set(KINDS), counts
    assert all(counts[k] >= MIN_PER_KIND for k in KINDS), counts
    assert len(corpus.questions) >= MIN_TOTAL, len(corpus.questions)
    assert len({(q.text, q.path) for q in corpus.questions}) == len(corpus.questions), "duplicate questions"
    problems = []
    for q in corpus.questions:
        try:
            _check_question(q, docs, texts, html_nodes, pdf_pages)
        except AssertionError as exc:
            problems.append(str(exc))
    assert not problems, f"{len(problems)} bad questions:\n" + "\n".join(problems)


def _check_question(
    q: Question,
    docs: dict[str, CorpusDocument],
    texts: dict[str, str],
    html_nodes: dict[str, list[str]],
    pdf_pages: dict[str, list[str]],
) -> None:
    where = f"[{q.kind}] {q.text!r} -> {q.path} / {q.needle!r}"
    doc = docs[q.path]
    assert q.attached and q.attached[0] == q.path, where
    assert 5 <= len(q.attached) <= 20 and len(set(q.attached)) == len(q.attached), where
    assert all(p in docs for p in q.attached), where
    assert q.needle and q.needle == _collapse(q.needle), where
    assert (q.page is not None) == (doc.kind == "pdf") and (q.row is not None) == (doc.kind == "csv"), where
    if doc.kind == "html":
        assert texts[q.path].count(q.needle) == 1, f"needle count {texts[q.path].count(q.needle)}: {where}"
        assert any(q.needle in node for node in html_nodes[q.path]), f"needle spans tags: {where}"
    elif doc.kind == "pdf":
        pages = pdf_pages[q.path]
        assert q.page is not None and 1 <= q.page <= len(pages), where
        assert texts[q.path].count(q.needle) == 1, f"needle count {texts[q.path].count(q.needle)}: {where}"
        assert pages[q.page - 1].count(q.needle) == 1, f"needle not on page {q.page}: {where}"
    else:
        lines = doc.body.decode(csv_charset(doc.content_type)).splitlines()
        hits = [i for i, line in enumerate(lines) if q.needle in line]
        assert hits == [q.row], f"needle in lines {hits}, expected row {q.row}: {where}"
    for other in q.attached[1:]:
        assert q.needle not in texts[other], f"needle also in attached {other}: {where}"
    if q.kind == "paraphrase":
        node = next(n for n in html_nodes.get(q.path, [texts[q.path]]) if q.needle in n)
        sentence = _sentence_with(node, q.needle)
        overlap = shared_stems(q.text, sentence)
        assert not overlap, f"paraphrase overlaps {overlap}: {where} / {sentence!r}"
    if q.kind == "distractor":
        family = sum(docs[p].topic == doc.topic for p in q.attached)
        assert 4 <= family <= 7, f"{family} look-alikes: {where}"
    if q.kind == "near-duplicate":
        best = 0.0
        for p in q.attached[1:]:
            matcher = difflib.SequenceMatcher(None, texts[q.path].split(), texts[p].split(), autojunk=False)
            if docs[p].kind == "html" and matcher.real_quick_ratio() > 0.9 and matcher.quick_ratio() > 0.9:
                best = max(best, matcher.ratio())
        assert best > 0.9, f"no near-identical twin attached ({best:.2f}): {where}"
    if q.kind == "identifier":
        code = _CODE.search(q.needle)
        assert code, where
        twins = {c for p in q.attached[1:] for c in _CODE.findall(texts[p]) if _near_twins(code.group(), c)}
        assert twins, f"no near-twin code attached: {where}"


if __name__ == "__main__":
    started = time.perf_counter()
    generated = testset_generate()
    elapsed = time.perf_counter() - started
    testset_check(generated)
    checked = time.perf_counter() - started - elapsed
    per_kind = Counter(q.kind for q in generated.questions)
    for kind in KINDS:
        print(f"{kind:15} {per_kind[kind]:4}")
    print(f"{'total':15} {len(generated.questions):4}")
    docs_by_kind = Counter(d.kind for d in generated.documents)
    total_bytes = sum(len(d.body) for d in generated.documents)
    print(f"documents: {dict(docs_by_kind)}, {total_bytes:,} bytes")
    print(f"generated in {elapsed:.2f} s, checked in {checked:.2f} s")

"""The report's fonts: TrueType faces embedded in the PDF, chosen per run of characters.

Latin text is set in Bitstream Vera (shipped inside reportlab, so every install has it), which
carries ≥, ±, ², µ, × and the other signs the report uses. A character Vera lacks (an arrow, a
Chinese sentence of the LLM draft) is set in the first fallback face that has it: DejaVu Sans
where one is installed, then a CJK TrueType face (Droid Sans Fallback, WenQuanYi Zen Hei; setup
installs ``fonts-droid-fallback``). Only where no installed face has a CJK character is it set in
reportlab's CID font STSong-Light, which is not embedded (the viewer must supply it).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab import rl_config
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont

SANS = "LiverHealthSans"
SANS_BOLD = "LiverHealthSans-Bold"
CID_FALLBACK = "STSong-Light"

_DEJAVU = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",)
_CJK = (  # TrueType outlines only: reportlab cannot embed CFF (.otf) faces
    ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/arphic/uming.ttc", 0),
)


@dataclass(frozen=True)
class Face:
    """A registered font and the characters it has a glyph for."""

    name: str
    characters: frozenset[int]
    embedded: bool = True


def _vera(file: str) -> str:
    for folder in rl_config.TTFSearchPath:
        path = Path(folder) / file
        if path.is_file():
            return str(path)
    return str(Path(importlib.util.find_spec("reportlab").origin).parent / "fonts" / file)  # type: ignore[arg-type]


def _dejavu_paths() -> list[str]:
    spec = importlib.util.find_spec("matplotlib")
    bundled = [str(Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf")] if spec else []
    return [*bundled, *_DEJAVU]


def _register(name: str, path: str, index: int = 0) -> Face | None:
    try:
        font = TTFont(name, path, subfontIndex=index)
    except Exception:  # a missing, unreadable or CFF-only file: not a face we can embed
        return None
    pdfmetrics.registerFont(font)
    widths = font.face.charWidths  # the characters the face maps to a glyph
    return Face(name, frozenset(code for code, glyph in font.face.charToGlyph.items() if glyph) or frozenset(widths))


@cache
def faces() -> tuple[Face, ...]:
    """Vera, then the fallback faces found on this machine, in the order a character is tried."""
    sans = _register(SANS, _vera("Vera.ttf"))
    bold = _register(SANS_BOLD, _vera("VeraBd.ttf"))
    if sans is None or bold is None:
        raise RuntimeError("reportlab's Vera.ttf is missing: reinstall reportlab")
    pdfmetrics.registerFontFamily(SANS, normal=SANS, bold=SANS_BOLD, italic=SANS, boldItalic=SANS_BOLD)
    found = [sans]
    dejavu = next((f for p in _dejavu_paths() if (f := _register("LiverHealthSansExtra", p)) is not None), None)
    if dejavu is not None:
        found.append(dejavu)
    cjk = next((f for p, i in _CJK if Path(p).is_file() and (f := _register("LiverHealthCJK", p, i))), None)
    if cjk is not None:
        found.append(cjk)
    else:
        pdfmetrics.registerFont(UnicodeCIDFont(CID_FALLBACK))
        found.append(Face(CID_FALLBACK, frozenset(range(0x2E80, 0xFFFF)), embedded=False))
    return tuple(found)


def has_cjk_face() -> bool:
    """Whether a CJK TrueType face is installed (else Chinese falls back to the unembedded CID font)."""
    return all(face.embedded for face in faces())


def face_for(character: str, primary: str = SANS) -> str:
    """The font a character is set in: ``primary`` when Vera has it, else the first face that does."""
    code = ord(character)
    chain = faces()
    if code in chain[0].characters or character.isspace():
        return primary
    return next((face.name for face in chain[1:] if code in face.characters), primary)


_ASCII_STAND_INS = {"→": "->", "←": "<-", "≈": "~", "✓": "yes", "✗": "no"}  # where no installed face has them


@cache
def _known() -> frozenset[int]:
    return frozenset().union(*(face.characters for face in faces()))


def _printable(text: str) -> str:
    known = _known()
    return "".join(_ASCII_STAND_INS.get(c, c) if ord(c) not in known and c in _ASCII_STAND_INS else c for c in text)


def runs(text: str, primary: str = SANS) -> list[tuple[str, str]]:
    """``text`` cut into (font, piece) runs; spaces stay in the run they are in."""
    pieces: list[tuple[str, str]] = []
    for character in _printable(text):
        font = pieces[-1][0] if character.isspace() and pieces else face_for(character, primary)
        if pieces and pieces[-1][0] == font:
            pieces[-1] = (font, pieces[-1][1] + character)
        else:
            pieces.append((font, character))
    return pieces


def markup(text: str, primary: str = SANS) -> str:
    """Paragraph markup of plain ``text``: escaped, line breaks kept, fallback runs in their font."""
    return "".join(
        escape(piece).replace("\n", "<br/>") if font == primary else f'<font name="{font}">{escape(piece)}</font>'
        for font, piece in runs(text, primary)
    ).replace("\n", "<br/>")


def is_cjk_text(text: str) -> bool:
    """Whether a paragraph holds CJK characters (it then wraps between any two characters)."""
    return any(0x2E80 <= ord(character) <= 0x9FFF or 0xF900 <= ord(character) <= 0xFFEF for character in text)

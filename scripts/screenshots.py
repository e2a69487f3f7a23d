"""Write an SVG of every screen into screenshots/, from the same scenarios as the snapshot tests
(tests/ui/scenarios.py): `python scripts/screenshots.py [NAME...]`.

Textual's SVGs load Fira Code from a CDN, which a README viewer often cannot fetch (offline,
or a strict content policy): boxes for glyphs and broken spacing. Each SVG here carries the
font inside it instead, subset to the characters it draws (a few KiB). Needs Debian's
`fonts-firacode` (or FIRA_CODE_DIR) and fontTools (`pip install -e '.[screenshots]'`)."""

from __future__ import annotations

import asyncio
import base64
import html
import io
import os
import re
import sys
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.ui import scenarios  # noqa: E402
from tui.core.paths import HOME_ENV  # noqa: E402

OUT = ROOT / "screenshots"
FONTS = Path(os.environ.get("FIRA_CODE_DIR", "/usr/share/fonts/truetype/firacode"))
# Each @font-face's src in textual's SVG: a local() font, then the CDN's woff2 and woff.
FONT_SRC = re.compile(r'src: local\("FiraCode-(Regular|Bold)"\),[^;]*;')


def embed_fonts(svg: str) -> str:
    """The SVG with its two faces of Fira Code inside, subset to the characters it draws."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    drawn = {html.unescape(t) for t in re.findall(r"<text[^>]*>(.*?)</text>", svg, re.S)}
    text = "".join(sorted(set("".join(drawn)))) + " "

    def inline(match: re.Match[str]) -> str:
        font = TTFont(FONTS / f"FiraCode-{match.group(1)}.ttf")
        options = subset.Options()
        options.layout_features = []  # no ligatures: a terminal draws each cell on its own
        subsetter = subset.Subsetter(options)
        subsetter.populate(text=text)
        subsetter.subset(font)
        font.flavor = "woff"
        out = io.BytesIO()
        font.save(out)
        data = base64.b64encode(out.getvalue()).decode("ascii")
        return f'src: url("data:font/woff;base64,{data}") format("woff");'

    embedded, count = FONT_SRC.subn(inline, svg)
    if count != 2:
        raise SystemExit(f"expected 2 @font-face sources in textual's SVG, found {count}")
    return embedded


async def shoot(names: list[str]) -> None:
    OUT.mkdir(exist_ok=True)
    for case in scenarios.cases():
        if names and case.name not in names:
            continue
        # A folder of its own for each screen, as the snapshot tests have.
        with (
            scenarios.own_folders() as folders,
            mock.patch.dict(os.environ, {HOME_ENV: str(folders.home)}),
            scenarios.applied(case, folders) as app,
        ):
            async with app.run_test(size=scenarios.SIZE) as pilot:
                await case.run(pilot)
                await scenarios.settle(pilot)
                svg = app.export_screenshot(title=f"ec2-import-wizard: {case.name}")
                scenarios.GATE.set()
        path = OUT / f"{case.name}.svg"
        path.write_text(embed_fonts(svg))
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    asyncio.run(shoot(sys.argv[1:]))

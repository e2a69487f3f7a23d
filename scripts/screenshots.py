"""Write an SVG of every screen into screenshots/, from the same scenarios as the snapshot tests
(tests/ui/scenarios.py): `python scripts/screenshots.py [NAME...]`."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.ui import scenarios  # noqa: E402
from tui.core.paths import HOME_ENV  # noqa: E402

OUT = ROOT / "screenshots"


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
        path.write_text(svg)
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    asyncio.run(shoot(sys.argv[1:]))

"""docs/reliability.md's table of limits names every LoadLimits field with its real default."""
import dataclasses
import os
import re

from imagegallery.limits import MEGABYTE, LoadLimits

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs",
                   "reliability.md")
UNITS = {"": 1, "s": 1, "px": 1, "MB": MEGABYTE, "GB": 1024 * MEGABYTE, "KB/s": 1024,
         "megapixels": 1_000_000}


def documented_defaults():
    """{field: value} from the table's rows: | `a`, `b` | 1 s, 2 MB | ..."""
    found = {}
    with open(DOC, encoding="utf-8") as handle:
        for line in handle:
            cells = [cell.strip() for cell in line.split("|")[1:-1]]
            if len(cells) < 2 or not cells[0].startswith("`"):
                continue
            names = re.findall(r"`(\w+)`", cells[0])
            values = re.split(r",\s+(?=\d)|\s+over\s+", cells[1])
            assert len(names) == len(values), line
            for name, text in zip(names, values):
                number, unit = re.fullmatch(r"([\d.,]+)\s*(\S*)", text).groups()
                found[name] = float(number.replace(",", "")) * UNITS[unit]
    return found


def test_every_limit_is_documented_with_its_default():
    documented = documented_defaults()
    defaults = dataclasses.asdict(LoadLimits())
    assert sorted(documented) == sorted(defaults)
    assert {name: documented[name] for name in defaults} == {
        name: float(value) for name, value in defaults.items()}

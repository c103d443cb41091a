"""Which of a model's rows its views show, and each row's load priority from that.

A view reports either a range of the model's rows (a view on the model itself: the model adds
its prefetch margin around it) or, through a proxy that filters or sorts, the model rows behind
its screen and behind its own prefetch margin, in its order (rows a filter hides between them,
or that a sort puts elsewhere, are neither). Each view's report replaces only its own, so two
views on one model each get their screen loaded first. Plain Python, GUI thread only.
"""
from __future__ import annotations

import bisect
from typing import Dict, Hashable, Iterable, List, Optional, Sequence, Set, Tuple

from .loader import BACKGROUND, NEAR_VISIBLE, VISIBLE

Priority = Tuple[int, int]

# Until a view first reports, rows are scored as if a screen sat just above row 0: the top rows
# load first, as they would on a view opened at the top. Once views have reported, none left
# (closed, or showing nothing) means nothing is on screen: under LoadVisible nothing loads.
_NO_SCREEN = (0, -1)


class ScreenRows:
    """The union of every view's report; `priority(row)` is the best any view gives it."""

    def __init__(self) -> None:
        self._ranges: Dict[Hashable, Tuple[int, int]] = {}
        # view -> (row -> place on its screen, row -> place in its margin, nearest first)
        self._listed: Dict[Hashable, Tuple[Dict[int, int], Dict[int, int]]] = {}
        self._ever_reported = False
        self._merge()

    def set_range(self, view: Hashable, first: int, last: int) -> bool:
        """`view` shows the model's rows first..last (none if last < first). True if that
        changed anything."""
        changed = self._listed.pop(view, None) is not None or not self._ever_reported
        self._ever_reported = True  # (the first report ends the top rows' default, if empty too)
        if last < first:
            changed = self._ranges.pop(view, None) is not None or changed
        else:
            changed = self._ranges.get(view) != (first, last) or changed
            self._ranges[view] = (first, last)
        if changed:
            self._merge()
        return changed

    def set_rows(self, view: Hashable, shown: Sequence[int], near: Sequence[int]) -> bool:
        """`view` shows the model's rows `shown` (in its own order, top first) and prefetches
        `near` (nearest its screen first); no margin is added around them. True if that
        changed anything."""
        changed = self._ranges.pop(view, None) is not None or not self._ever_reported
        self._ever_reported = True
        report = (_places(shown), _places(near))
        if not report[0] and not report[1]:
            changed = self._listed.pop(view, None) is not None or changed
        else:
            changed = self._listed.get(view) != report or changed
            self._listed[view] = report
        if changed:
            self._merge()
        return changed

    def forget(self, view: Hashable) -> bool:
        """`view` is gone; True if it had reported anything."""
        had = self._ranges.pop(view, None) is not None
        had = self._listed.pop(view, None) is not None or had
        if had:
            self._merge()
        return had

    @property
    def reported(self) -> bool:
        """Whether any view has reported yet (the top rows' default applies until one has)."""
        return self._ever_reported

    def rows_inserted(self, first: int, count: int, rows_before: int) -> None:
        """`count` rows were inserted at `first`, among `rows_before`. Listed rows name the
        model's rows, so they move with them: a proxy says nothing of rows it hides, and its view
        would not report again. (Ranges are screen positions and stay.) Numbers from
        `rows_before` on named rows not there yet (a view may report first) and stay too."""
        self._move_listed(lambda number: number + count if first <= number < rows_before
                          else number)

    def rows_removed(self, first: int, last: int, rows_before: int) -> None:
        """Rows first..last were removed from `rows_before`: listed ones go, later ones move up."""
        count = last - first + 1
        self._move_listed(lambda number: None if first <= number <= last
                          else number - count if last < number < rows_before else number)

    def _move_listed(self, moved) -> None:
        if not self._listed:
            return
        for view, report in self._listed.items():
            self._listed[view] = tuple({moved(number): place for number, place in places.items()
                                        if moved(number) is not None} for places in report)
        self._merge()

    def _merge(self) -> None:
        runs = sorted(self._ranges.values())
        if not self._ever_reported:
            runs = [_NO_SCREEN]
        merged: List[Tuple[int, int]] = []
        for first, last in runs:
            if merged and first <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], last))
            else:
                merged.append((first, last))
        self._runs = merged
        self._run_firsts = [first for first, _ in merged]
        self._shown: Dict[int, int] = {}
        self._near: Dict[int, int] = {}
        for shown, near in self._listed.values():
            _keep_best(self._shown, shown)
            _keep_best(self._near, near)

    def priority(self, number: int, margin: int) -> Priority:
        """Row `number`'s priority: on a screen `(VISIBLE, place)`, in a margin
        `(NEAR_VISIBLE, distance)`, else `(BACKGROUND, number)`."""
        best = (BACKGROUND, number)
        runs = self._runs
        at = bisect.bisect_right(self._run_firsts, number) - 1
        distance = None
        if at >= 0:
            first, last = runs[at]
            if number <= last:
                best = (VISIBLE, number - first)
            else:
                distance = number - last
        if at + 1 < len(runs):
            after = runs[at + 1][0] - number
            distance = after if distance is None else min(distance, after)
        if best[0] != VISIBLE and distance is not None and distance <= margin:
            best = (NEAR_VISIBLE, distance)
        place = self._shown.get(number)
        if place is not None:
            best = min(best, (VISIBLE, place))
        place = self._near.get(number)
        if place is not None:
            best = min(best, (NEAR_VISIBLE, place + 1))
        return best

    def best_of(self, numbers: List[int], margin: int) -> Priority:
        """The best priority among `numbers` (ascending row numbers of one URL), looking only at
        the few that can be best: O(screens x log rows), not O(rows); listed rows are matched
        from whichever side is shorter."""
        candidates: Set[int] = {numbers[0]}
        for first, _ in self._runs:
            at = bisect.bisect_left(numbers, first)
            candidates.update(numbers[max(0, at - 1):at + 1])
        for listed in (self._shown, self._near):
            if len(numbers) <= len(listed):
                candidates.update(number for number in numbers if number in listed)
                continue
            for number in listed:
                at = bisect.bisect_left(numbers, number)
                if at < len(numbers) and numbers[at] == number:
                    candidates.add(number)
        return min(self.priority(number, margin) for number in candidates)

    def rows_in_reach(self, margin: int, count: int) -> Set[int]:
        """Every row below `count` that any screen or margin covers: the rows whose priority a
        change of the screens (or of `margin`) can move out of the background."""
        rows: Set[int] = set()
        for first, last in self._runs:
            rows.update(range(max(0, first - margin), min(count, last + margin + 1)))
        rows.update(number for number in self._shown if 0 <= number < count)
        rows.update(number for number in self._near if 0 <= number < count)
        return rows


def _places(numbers: Iterable[int]) -> Dict[int, int]:
    """row -> its first place in `numbers`; negative numbers (rows a proxy could not map) out."""
    places: Dict[int, int] = {}
    for place, number in enumerate(numbers):
        if number >= 0 and number not in places:
            places[number] = place
    return places


def _keep_best(into: Dict[int, int], places: Dict[int, int]) -> None:
    for number, place in places.items():
        known: Optional[int] = into.get(number)
        if known is None or place < known:
            into[number] = place

"""ScreenRows: the rows several views show, and the priority each row gets from them."""
from imagegallery.loader import BACKGROUND, NEAR_VISIBLE, VISIBLE
from imagegallery.screen_rows import ScreenRows

MARGIN = 5


def test_before_any_view_reports_the_top_rows_come_first():
    screens = ScreenRows()
    assert screens.priority(0, MARGIN) == (NEAR_VISIBLE, 1)
    assert screens.priority(4, MARGIN) == (NEAR_VISIBLE, 5)
    assert screens.priority(5, MARGIN) == (BACKGROUND, 5)
    assert screens.rows_in_reach(MARGIN, 100) == set(range(5))


def test_each_view_keeps_its_own_screen_and_margin():
    screens = ScreenRows()
    assert screens.set_range("grid", 10, 19)
    assert screens.set_range("strip", 100, 103)
    assert not screens.set_range("strip", 100, 103)  # the same report changes nothing
    assert screens.priority(12, MARGIN) == (VISIBLE, 2)
    assert screens.priority(101, MARGIN) == (VISIBLE, 1)
    assert screens.priority(22, MARGIN) == (NEAR_VISIBLE, 3)
    assert screens.priority(97, MARGIN) == (NEAR_VISIBLE, 3)
    assert screens.priority(50, MARGIN) == (BACKGROUND, 50)
    assert screens.priority(0, MARGIN) == (BACKGROUND, 0)  # the top is no screen's any more
    assert screens.rows_in_reach(MARGIN, 106) == set(range(5, 25)) | set(range(95, 106))
    assert screens.forget("grid")
    assert screens.priority(12, MARGIN) == (BACKGROUND, 12)
    assert screens.priority(101, MARGIN) == (VISIBLE, 1)
    assert screens.forget("strip") and not screens.forget("strip")
    # Every view gone: nothing is on screen (no top rows loading for a page that was closed).
    assert screens.priority(0, MARGIN) == (BACKGROUND, 0)
    assert screens.rows_in_reach(MARGIN, 200) == set()


def test_a_first_report_of_nothing_ends_the_top_rows_default():
    screens = ScreenRows()
    assert screens.set_range("hidden view", 0, -1)
    assert screens.priority(0, MARGIN) == (BACKGROUND, 0)
    screens = ScreenRows()
    assert screens.set_rows("filter keeping nothing", shown=[], near=[])
    assert screens.rows_in_reach(MARGIN, 100) == set()


def test_overlapping_screens_count_once():
    screens = ScreenRows()
    screens.set_range("a", 10, 19)
    screens.set_range("b", 15, 30)
    assert screens.priority(25, MARGIN) == (VISIBLE, 15)  # offsets count from the merged top
    assert screens.priority(31, MARGIN) == (NEAR_VISIBLE, 1)


def test_listed_rows_get_no_margin_and_keep_their_order():
    screens = ScreenRows()
    screens.set_rows("filtered", shown=[90, 0, 30, -1], near=[60, 120])
    assert screens.priority(90, MARGIN) == (VISIBLE, 0)  # top of that view's screen
    assert screens.priority(30, MARGIN) == (VISIBLE, 2)
    assert screens.priority(60, MARGIN) == (NEAR_VISIBLE, 1)
    assert screens.priority(120, MARGIN) == (NEAR_VISIBLE, 2)
    assert screens.priority(1, MARGIN) == (BACKGROUND, 1)  # beside a listed row, yet hidden
    assert screens.priority(31, MARGIN) == (BACKGROUND, 31)
    assert screens.rows_in_reach(MARGIN, 100) == {0, 30, 60, 90}
    # A view switching from a list to a range (its proxy went) keeps only the range.
    screens.set_range("filtered", 200, 201)
    assert screens.priority(90, MARGIN) == (BACKGROUND, 90)


def test_listed_rows_move_with_the_rows_inserted_and_removed_before_them():
    screens = ScreenRows()
    screens.set_rows("filtered", shown=[0, 30, 60], near=[90, 500])  # 500: not there yet
    screens.rows_removed(1, 1, rows_before=300)  # a row the filter hides
    assert screens.rows_in_reach(MARGIN, 1000) == {0, 29, 59, 89, 500}
    screens.rows_inserted(10, 5, rows_before=299)
    assert screens.rows_in_reach(MARGIN, 1000) == {0, 34, 64, 94, 500}
    screens.rows_removed(30, 40, rows_before=304)  # row 34, on screen, goes
    assert screens.rows_in_reach(MARGIN, 1000) == {0, 53, 83, 500}
    assert screens.priority(53, MARGIN) == (VISIBLE, 2)


def test_a_urls_best_row_is_found_among_many_copies():
    screens = ScreenRows()
    screens.set_range("grid", 1000, 1009)
    screens.set_rows("filtered", shown=[4002], near=[])
    copies = list(range(0, 5000, 3))  # one URL in every third row
    assert screens.best_of(copies, MARGIN) == min(screens.priority(n, MARGIN) for n in copies)
    assert screens.best_of(copies, MARGIN) == (VISIBLE, 0)  # row 4002 tops the filtered view
    screens.forget("filtered")
    assert screens.best_of(copies, MARGIN) == (VISIBLE, 2)  # row 1002
    assert screens.best_of([5, 2000], MARGIN) == (BACKGROUND, 5)

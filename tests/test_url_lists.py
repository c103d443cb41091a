"""Untrusted URL lists: empty, junk, huge with duplicates, script and data URLs.

Every entry becomes a row that settles with an image or a reason; nothing raises, and the counts
add up at every countsChanged emission.
"""
import os

import pytest

from imagegallery.model import ImageGalleryModel
from imagegallery.url_policy import parse_image_url
from imaging import solid_image_bytes

Status = ImageGalleryModel.Status


class CountsWatcher:
    """Checks loaded + failed + pending == count each time the counts change."""

    def __init__(self, model):
        self.model = model
        self.emissions = 0
        self.violations = []
        model.countsChanged.connect(self._check)
        model.countChanged.connect(self._check)

    def _check(self):
        m = self.model
        self.emissions += 1
        if m.loadedCount + m.failedCount + m.pendingCount != m.count:
            self.violations.append((m.loadedCount, m.failedCount, m.pendingCount, m.count))


JUNK = ["", "   ", "not a url", "http://", "http:///nohost", "://x", "\x00\x01", "http://a b/c.png",
        "ftp://example.com/x.png", "gopher://x", "mailto:a@b", "file:", "h" * 5000, "\t\n",
        "http://[::1", "ht!tp://x", "💥", "C:\\pictures\\a.png", "//127.0.0.1:9/x.png"]
SCRIPTS = ["javascript:alert(1)", "JavaScript:alert(document.cookie)", " javascript:void(0)",
           "data:image/png;base64,iVBORw0KGgo=", "data:text/html,<script>alert(1)</script>",
           "vbscript:msgbox", "blob:http://x/1", "about:blank", "qrc:/images/logo.png",
           "image://imagegallery/1/2"]


def test_empty_list_settles_at_once(qtbot, model):
    watcher = CountsWatcher(model)
    model.urls = []
    assert (model.count, model.pendingCount, model.progress) == (0, 0, 1.0)
    model.urls = ["x"]
    qtbot.waitUntil(lambda: model.pendingCount == 0, timeout=5000)
    model.urls = []
    assert model.count == 0 and not watcher.violations


@pytest.mark.parametrize("entries", [JUNK, SCRIPTS], ids=["junk", "scripts"])
def test_refused_entries_become_error_rows_with_reasons(qtbot, model, entries):
    watcher = CountsWatcher(model)
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = entries
    assert model.count == len(entries)
    for row in range(model.count):
        assert model.status_of(row) == Status.Error, (entries[row], model.get(row))
        assert model.get(row)["errorString"], entries[row]
    assert not watcher.violations


def test_script_and_data_urls_name_their_scheme():
    assert parse_image_url("javascript:alert(1)").error == "unsupported URL scheme 'javascript:'"
    assert parse_image_url("data:image/png;base64,AAAA").error == "unsupported URL scheme 'data:'"
    assert parse_image_url("").error == "empty URL"


def test_a_local_path_given_as_a_url_says_how_to_write_it():
    assert parse_image_url("/tmp/x.jpg").error == "malformed URL (no scheme; a local file is file:///...)"
    assert parse_image_url("not a url").error == "malformed URL (no scheme)"
    assert parse_image_url("//127.0.0.1/x.png").error == "malformed URL (no scheme)"  # no file
    assert parse_image_url("/tmp/x.jpg", allow_plain_paths=True).ok  # the CLI's lists take paths
    # A name in Latin-1 bytes, as Python hands it over from the command line: "file not found".
    latin1_name = os.fsdecode(b"/tmp/caf\xe9.jpg")
    assert parse_image_url(latin1_name, allow_plain_paths=True).error == (
        "name is not UTF-8 text (this app cannot open it)")


def test_non_string_entries_never_raise(qtbot, model):
    with qtbot.waitSignal(model.finished, timeout=5000):
        model.urls = [None, 42, {"a": 1}, ["x"], 3.5, b"http://127.0.0.1/a.png"]
    model.append([None, 7])
    qtbot.waitUntil(lambda: model.pendingCount == 0, timeout=5000)
    assert model.failedCount == model.count == 8
    assert {model.get(row)["errorString"] for row in range(8)} == {"empty URL"}


def test_ten_thousand_entries_with_duplicates(qtbot, model, image_server):
    distinct = [image_server.add(f"/{i}.png", solid_image_bytes("#%06x" % (i * 2654435 % 0xffffff),
                                                               16, 16))
                for i in range(200)]
    junk = ["javascript:x", "", "nope", "data:,x"]
    urls = [distinct[i % len(distinct)] if i % 50 else junk[(i // 50) % len(junk)]
            for i in range(10_000)]
    watcher = CountsWatcher(model)
    with qtbot.waitSignal(model.finished, timeout=60000):
        model.urls = urls
    bad_rows = sum(1 for u in urls if u in junk)
    assert model.count == 10_000
    assert (model.loadedCount, model.failedCount, model.pendingCount) == (10_000 - bad_rows,
                                                                         bad_rows, 0)
    # One request per distinct URL, however often it repeats.
    used = {u for u in urls if u not in junk}
    assert image_server.total_hits() == len(used)
    assert set(image_server.hits.values()) == {1}
    assert watcher.emissions > 0 and not watcher.violations
    # Replacing the list with a reordering of itself costs no request either.
    with qtbot.waitSignal(model.urlsChanged, timeout=5000):
        model.urls = list(reversed(urls))
    qtbot.waitUntil(lambda: model.pendingCount == 0, timeout=10000)
    assert image_server.total_hits() == len(used)
    assert model.loadedCount == 10_000 - bad_rows and not watcher.violations

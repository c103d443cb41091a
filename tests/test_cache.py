"""Byte-bounded caches, the thumbnail disk cache, and a warm start with the server gone."""
import errno
import logging
import os
import threading
import time

import pytest
from PyQt5.QtCore import QCoreApplication, QSize
from PyQt5.QtGui import QColor, QImage

from imagegallery.cache import (ByteBoundedLRU, CachedThumbnail, DiskThumbnailCache, ThumbnailKey,
                                shared_thumbnail_cache)
from imagegallery.model import ImageGalleryModel
from imaging import (center_color, close_to, png_chunk, png_zip_bomb_texts, serve_solid_images,
                     solid_image_bytes, with_png_chunks_after_header)


def solid(width, height, color, fmt=QImage.Format_RGB32):
    image = QImage(width, height, fmt)
    image.fill(QColor(color))
    return image


def test_lru_is_bounded_by_bytes_and_evicts_least_recently_used():
    cache = ByteBoundedLRU(1000, len)
    cache.put("a", b"x" * 400)
    cache.put("b", b"x" * 400)
    assert cache.get("a") is not None  # "a" is now the most recently used
    cache.put("c", b"x" * 400)
    assert "b" not in cache and "a" in cache and "c" in cache
    assert cache.total_bytes == 800
    cache.put("huge", b"x" * 5000)  # larger than the whole budget: not stored, nothing evicted
    assert "huge" not in cache and len(cache) == 2


def test_disk_cache_round_trips_pixels_and_metadata(tmp_path):
    disk = DiskThumbnailCache(str(tmp_path))
    opaque = ThumbnailKey("http://h/a.jpg", 240, 140, "fit")
    alpha = ThumbnailKey("http://h/b.png", 240, 140, "fit")
    disk.store(opaque, CachedThumbnail(solid(224, 140, "#ff0000"), QSize(3200, 2000), '"v1"'))
    disk.store(alpha, CachedThumbnail(solid(50, 50, "#800000ff", QImage.Format_ARGB32_Premultiplied),
                                      QSize(640, 640), '"p1"', "Wed, 21 Oct 2015 07:28:00 GMT"))
    loaded = disk.load(opaque)
    assert loaded.original_size == QSize(3200, 2000) and loaded.etag == '"v1"'
    assert loaded.image.size() == QSize(224, 140) and close_to(center_color(loaded.image), "#ff0000")
    with_alpha = disk.load(alpha)  # a PNG, read by Qt
    assert (with_alpha.original_size, with_alpha.etag, with_alpha.last_modified) == (
        QSize(640, 640), '"p1"', "Wed, 21 Oct 2015 07:28:00 GMT")
    translucent = with_alpha.image
    assert translucent.hasAlphaChannel()
    assert QColor.fromRgba(translucent.pixel(25, 25)).alpha() == 0x80
    assert disk.load(ThumbnailKey("http://h/a.jpg", 100, 100, "fit")) is None  # another size


def test_disk_cache_files_are_jpegs_qts_reader_reads_and_older_qt_written_ones_still_load(
        tmp_path, turbo):
    from PyQt5.QtGui import QImageReader

    disk = DiskThumbnailCache(str(tmp_path))
    key = ThumbnailKey("http://h/a.jpg", 240, 140, "fit")
    disk.store(key, CachedThumbnail(solid(187, 140, "#3366aa"), QSize(1600, 1200), '"v: 2"',
                                    "Wed, 21 Oct 2015 07:28:00 GMT"))
    # Written and read back through libjpeg-turbo (simplejpeg), its texts as comment segments...
    assert disk.load(key).etag == '"v: 2"' and turbo.decodes == 1
    # ...that Qt's reader gives back as the image's texts, as it does for its own writer's.
    reader = QImageReader(disk._path(key))
    assert reader.format() == b"jpeg"
    assert reader.text(DiskThumbnailCache.ORIGINAL_SIZE) == "1600x1200"
    assert reader.text(DiskThumbnailCache.ETAG) == '"v: 2"'
    assert reader.text(DiskThumbnailCache.LAST_MODIFIED) == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert close_to(center_color(reader.read()), "#3366aa")

    # A cache left by an earlier version, whose files Qt's writer made, still loads whole.
    written_by_qt = solid(187, 140, "#aa6633")
    written_by_qt.setText(DiskThumbnailCache.ORIGINAL_SIZE, "800x600")
    written_by_qt.setText(DiskThumbnailCache.ETAG, 'W/"old"')
    assert written_by_qt.save(disk._path(key), b"jpeg", 90)
    loaded = disk.load(key)
    assert loaded.original_size == QSize(800, 600) and loaded.etag == 'W/"old"'
    assert loaded.last_modified == "" and loaded.image.format() == QImage.Format_RGB32
    assert close_to(center_color(loaded.image), "#aa6633") and turbo.decodes == 2


def test_a_damaged_disk_cache_file_is_dropped_so_the_image_is_fetched_again(tmp_path):
    disk = DiskThumbnailCache(str(tmp_path))
    cut, junk, huge = (ThumbnailKey(f"http://h/{name}.jpg", 240, 140, "fit")
                       for name in ("cut", "junk", "huge"))
    for key in (cut, junk, huge):
        disk.store(key, CachedThumbnail(solid(187, 140, "#3366aa"), QSize(1600, 1200)))
    with open(disk._path(cut), "rb") as handle:
        whole = handle.read()
    with open(disk._path(cut), "wb") as handle:
        handle.write(whole[:len(whole) // 2])  # as a full disk or a crash elsewhere could leave it
    with open(disk._path(junk), "wb") as handle:
        handle.write(b"\xff\xd8 not a JPEG after all")
    with open(disk._path(huge), "rb") as handle:
        whole = handle.read()
    frame = whole.index(b"\xff\xc0")  # its height and width, now 65,000 a side: 17 GB of pixels
    with open(disk._path(huge), "wb") as handle:
        handle.write(whole[:frame + 5] + b"\xfd\xe8\xfd\xe8" + whole[frame + 9:])
    for key in (cut, junk, huge):
        assert disk.load(key) is None
        assert not os.path.exists(disk._path(key))



def test_a_png_entry_cut_short_is_dropped_with_nothing_said_on_stderr(tmp_path, capfd):
    # Read by Qt, the cut file made libpng print "libpng error: Read Error" on stderr.
    disk = DiskThumbnailCache(str(tmp_path))
    key = ThumbnailKey("http://h/a.png", 240, 140, "fit")
    disk.store(key, CachedThumbnail(solid(50, 50, "#800000ff", QImage.Format_ARGB32_Premultiplied),
                                    QSize(50, 50)))
    with open(disk._path(key), "rb") as handle:
        whole = handle.read()
    assert whole.startswith(b"\x89PNG")  # a thumbnail with alpha is kept as a PNG
    with open(disk._path(key), "wb") as handle:
        handle.write(whole[:len(whole) // 2])
    assert disk.load(key) is None
    assert not os.path.exists(disk._path(key))
    assert "libpng" not in capfd.readouterr().err


def test_damaged_texts_in_a_disk_cache_file_are_left_out_and_the_thumbnail_kept(tmp_path, turbo):
    disk = DiskThumbnailCache(str(tmp_path))
    key = ThumbnailKey("http://h/a.jpg", 240, 140, "fit")
    disk.store(key, CachedThumbnail(solid(187, 140, "#3366aa"), QSize(1600, 1200), '"v1"',
                                    "Wed, 21 Oct 2015 07:28:00 GMT"))
    with open(disk._path(key), "rb") as handle:
        whole = handle.read()
    # Same lengths, so the segments still parse: a flipped bit makes the ETag's "1" a byte that
    # is not UTF-8, the date gets a header break, and the size superscript digits ("²³x¹²").
    damaged = whole.replace(b'"v1"', b'"v\xb1"').replace(b"07:28:00", b"07:2\r\n00") \
        .replace(b"1600x1200", "²³x¹²".encode())
    assert len(damaged) == len(whole)
    with open(disk._path(key), "wb") as handle:
        handle.write(damaged)
    loaded = disk.load(key)
    # Sent back to the server, the validators would not encode (the revalidating request aborted
    # the process) or would break the request's headers; without them the image is fetched whole.
    assert (loaded.etag, loaded.last_modified) == ("", "")
    assert loaded.original_size == QSize(187, 140)
    assert close_to(center_color(loaded.image), "#3366aa")
    # A PNG entry (a thumbnail with alpha) is read by Qt, texts and all: the same rule holds.
    alpha = ThumbnailKey("http://h/b.png", 240, 140, "fit")
    disk.store(alpha, CachedThumbnail(solid(50, 50, "#800000ff", QImage.Format_ARGB32_Premultiplied),
                                      QSize(50, 50), '"v1"\r\nX-Injected: 1', "\u2603"))
    assert (disk.load(alpha).etag, disk.load(alpha).last_modified) == ("", "")
    # Digits, but more than a size holds (QSize raised OverflowError).
    garbled = solid(187, 140, "#3366aa")
    garbled.setText(DiskThumbnailCache.ORIGINAL_SIZE, "999999999999x1")
    assert garbled.save(disk._path(key), b"jpeg", 90)
    assert disk.load(key).original_size == QSize(187, 140)


def test_a_disk_cache_folder_that_cannot_be_written_says_so_once(tmp_path, caplog):
    (tmp_path / "a-file").write_bytes(b"")
    disk = DiskThumbnailCache(str(tmp_path / "a-file" / "cache"))  # under a file: never a folder
    for name in ("a", "b"):
        disk.store(ThumbnailKey(f"http://h/{name}.jpg", 240, 140, "fit"),
                   CachedThumbnail(solid(187, 140, "#3366aa"), QSize(1600, 1200)))
    warnings = [r.getMessage() for r in caplog.records if r.name == "imagegallery.cache"]
    assert len(warnings) == 1 and "a-file/cache cannot be written" in warnings[0]
    assert disk.load(ThumbnailKey("http://h/a.jpg", 240, 140, "fit")) is None


def test_disk_cache_trims_to_budget_and_age(tmp_path):
    disk = DiskThumbnailCache(str(tmp_path), budget_bytes=10_000, max_age_s=3600)
    keys = [ThumbnailKey(f"http://h/{i}.jpg", 240, 140, "fit") for i in range(6)]
    for number, key in enumerate(keys):
        noisy = solid(240, 140, "#123456")
        for x in range(0, 240, 3):
            noisy.setPixel(x, number * 7 % 140, 0xffffff)
        disk.store(key, CachedThumbnail(noisy, QSize(240, 140)))
        old = time.time() - 60 * (10 - number)
        os.utime(disk._path(key), (old, old))
    disk.trim()
    assert disk.size_on_disk() <= 10_000
    assert disk.load(keys[-1]) is not None  # the newest stays
    assert disk.load(keys[0]) is None  # the oldest went first
    expired = time.time() - 7200
    os.utime(disk._path(keys[-1]), (expired, expired))
    assert disk.load(keys[-1]) is None


def test_disk_cache_evicts_the_least_recently_read_first_and_ages_from_the_write(tmp_path):
    disk = DiskThumbnailCache(str(tmp_path), budget_bytes=10_000, max_age_s=3600)
    keys = [ThumbnailKey(f"http://h/{i}.jpg", 240, 140, "fit") for i in range(6)]
    written_at = {}
    for number, key in enumerate(keys):
        noisy = solid(240, 140, "#123456")
        for x in range(0, 240, 3):
            noisy.setPixel(x, number * 7 % 140, 0xffffff)
        disk.store(key, CachedThumbnail(noisy, QSize(240, 140)))
        written_at[key] = time.time() - 60 * (10 - number)
        os.utime(disk._path(key), (written_at[key], written_at[key]))
    assert disk.size_on_disk() > 10_000  # so trim() must drop some
    assert disk.load(keys[0]) is not None  # the first written is the last read
    assert os.stat(disk._path(keys[0])).st_mtime == written_at[keys[0]]
    disk.trim()
    assert disk.size_on_disk() <= 10_000
    assert disk.load(keys[0]) is not None
    assert disk.load(keys[1]) is None  # written after it, never read: it went first
    # Reading keeps no file past the age limit, counted from its write.
    expired = time.time() - 7200
    os.utime(disk._path(keys[0]), (time.time(), expired))
    assert disk.load(keys[0]) is None


def test_entries_dated_while_the_clock_was_ahead_go_first_and_age_from_now(tmp_path):
    # Sorted as the most recently used, they pushed out every entry written since, and never
    # expired.
    disk = DiskThumbnailCache(str(tmp_path), max_age_s=3600)
    keys = [ThumbnailKey(f"http://h/{i}.jpg", 240, 140, "fit") for i in range(8)]
    ahead = time.time() + 365 * 86400
    for number, key in enumerate(keys):
        noisy = solid(240, 140, "#123456")
        for x in range(0, 240, 3):
            noisy.setPixel(x, number * 7 % 140, 0xffffff)
        disk.store(key, CachedThumbnail(noisy, QSize(240, 140)))
        if number < 4:
            os.utime(disk._path(key), (ahead, ahead))
    disk.budget_bytes = disk.size_on_disk() - 1  # so trim() must drop one
    disk.trim()
    assert [disk.load(key) is not None for key in keys[4:]] == [True] * 4
    survivors = [key for key in keys[:4] if os.path.exists(disk._path(key))]
    assert len(survivors) < 4
    for key in survivors:  # aged from now: the age limit applies to them again
        assert abs(os.stat(disk._path(key)).st_mtime - time.time()) < 60
    # One read while ahead is aged from now too, and served.
    os.utime(disk._path(keys[4]), (ahead, ahead))
    assert disk.load(keys[4]) is not None
    assert abs(os.stat(disk._path(keys[4])).st_mtime - time.time()) < 60


def test_a_disk_full_of_the_caches_own_files_makes_room_for_new_thumbnails(tmp_path, monkeypatch):
    # Its budget is no promise of free space: on a small disk full of its own older entries,
    # not one thumbnail was written again.
    from imagegallery import cache

    disk = DiskThumbnailCache(str(tmp_path))
    capacity = 12 * 4096  # a disk of a dozen entries' blocks

    def open_on_a_small_disk(path, mode="r", *args, **kwargs):
        if "w" in mode and disk.size_on_disk() >= capacity:
            raise OSError(errno.ENOSPC, "No space left on device")
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(cache, "open", open_on_a_small_disk, raising=False)
    keys = [ThumbnailKey(f"http://h/{i}.jpg", 240, 140, "fit") for i in range(40)]
    for number, key in enumerate(keys):
        disk.store(key, CachedThumbnail(solid(240, 140, f"#{number:02x}3456"), QSize(240, 140)))
    assert all(disk.load(key) is not None for key in keys[-5:])  # the newest are all there
    assert not disk._write_failure_reported


@pytest.mark.parametrize("pixels", [QImage.Format_RGB32, QImage.Format_ARGB32], ids=["jpeg", "png"])
def test_an_entry_copied_to_another_keys_name_is_a_miss_there(tmp_path, pixels):
    # The file carried no key: another URL's thumbnail showed for this one.
    import shutil

    disk = DiskThumbnailCache(str(tmp_path))
    first, second = (ThumbnailKey(f"http://h/{name}.png", 240, 140, "fit") for name in "ab")
    disk.store(first, CachedThumbnail(solid(240, 140, "#ff0000", pixels), QSize(240, 140)))
    disk.store(second, CachedThumbnail(solid(240, 140, "#00ff00"), QSize(240, 140)))
    shutil.copyfile(disk._path(first), disk._path(second))
    with open(disk._path(first), "rb") as entry:
        assert entry.read(4) == (b"\xff\xd8\xff\xe0" if pixels == QImage.Format_RGB32 else b"\x89PNG")
    assert disk.load(first) is not None
    assert disk.load(second) is None


def test_a_disk_other_programs_filled_costs_the_cache_a_tenth_once_not_at_every_write(
        tmp_path, monkeypatch):
    # Each failed write made room again: 40 writes to a full disk left 3 of 500 entries.
    from imagegallery import cache

    disk = DiskThumbnailCache(str(tmp_path))
    keys = [ThumbnailKey(f"http://h/{i}.jpg", 240, 140, "fit") for i in range(60)]
    for key in keys[:50]:
        disk.store(key, CachedThumbnail(solid(240, 140, "#123456"), QSize(240, 140)))

    def open_on_a_full_disk(path, mode="r", *args, **kwargs):
        if "w" in mode:
            raise OSError(errno.ENOSPC, "No space left on device")
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(cache, "open", open_on_a_full_disk, raising=False)
    for key in keys[50:]:
        disk.store(key, CachedThumbnail(solid(240, 140, "#654321"), QSize(240, 140)))
    assert sum(disk.load(key) is not None for key in keys[:50]) >= 40


def test_an_entry_written_before_entries_named_their_key_is_still_read(tmp_path):
    # Its missing key read as "", not as absent: every transparent thumbnail was fetched again.
    disk = DiskThumbnailCache(str(tmp_path))
    key = ThumbnailKey("http://h/a.png", 240, 140, "fit")
    image = solid(240, 140, "#ff000080", QImage.Format_ARGB32)
    image.setText(DiskThumbnailCache.ORIGINAL_SIZE, "480x280")
    os.makedirs(os.path.dirname(disk._path(key)))
    assert image.save(disk._path(key), b"png")
    shown = disk.load(key)
    assert shown is not None and shown.original_size == QSize(480, 280)


def test_a_hit_leaves_an_entry_another_process_rewrote_meanwhile_its_own_age(tmp_path):
    disk = DiskThumbnailCache(str(tmp_path), max_age_s=3600)
    key = ThumbnailKey("http://h/a.jpg", 240, 140, "fit")
    disk.store(key, CachedThumbnail(solid(240, 140, "#123456"), QSize(240, 140)))
    old = time.time() - 3000
    os.utime(disk._path(key), (old, old))
    read_file = disk._read_file

    def read_while_another_process_stores(*args):
        thumbnail = read_file(*args)
        other = DiskThumbnailCache(str(tmp_path), max_age_s=3600)
        other.store(key, CachedThumbnail(solid(240, 140, "#654321"), QSize(240, 140)))
        return thumbnail

    disk._read_file = read_while_another_process_stores
    assert disk.load(key) is not None
    assert time.time() - os.stat(disk._path(key)).st_mtime < 60  # as new as its write


def test_warm_start_shows_every_thumbnail_with_the_server_stopped(qtbot, image_server, make_model):
    colors = ["#ff0000", "#00ff00", "#0000ff", "#ffff00"]
    urls = [image_server.add(f"/{i}.png", solid_image_bytes(c)) for i, c in enumerate(colors)]
    first = make_model()
    with qtbot.waitSignal(first.finished, timeout=10000):
        first.urls = urls
    # Writes go behind, on the I/O thread: wait until every thumbnail is on disk.
    qtbot.waitUntil(lambda: first.loader.pending_worker_jobs() == 0, timeout=10000)
    first.loader.close()
    image_server.stop()
    shared_thumbnail_cache().clear()  # a new process would start with an empty memory cache

    second = make_model()
    with qtbot.waitSignal(second.finished, timeout=10000):
        second.urls = urls
    assert second.loadedCount == 4
    assert second.loader.stats["disk_hits"] == 4 and second.loader.stats["network_requests"] == 0
    for row, color in enumerate(colors):
        assert close_to(center_color(second.thumbnail(row)), color)
        assert second.data(second.index(row), ImageGalleryModel.ImageSizeRole) == QSize(320, 200)
    second.loader.close()


def _versioned_url_in_disk_cache(qtbot, image_server, current, conditional=None):
    """A URL served with `current`'s ETag and body (a 304 when asked with the ETag, held until
    `current["answer_304"]`, a threading.Event, is set, if there is one), loaded once so its
    thumbnail is in the disk cache and not in memory."""
    def versioned(handler):
        if conditional is not None:
            conditional.append(handler.headers.get("If-None-Match", ""))
        if handler.headers.get("If-None-Match") == current["etag"]:
            if "answer_304" in current:
                current["answer_304"].wait(timeout=30)  # a bound, so a failed test ends
            handler.send_response(304)
            handler.send_header("ETag", current["etag"])
            if current.get("cache_control"):
                handler.send_header("Cache-Control", current["cache_control"])
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        else:
            handler._send(200, current["body"], "image/png", {"ETag": current["etag"]})

    url = image_server.add_handler("/versioned.png", versioned)
    first = ImageGalleryModel()
    with qtbot.waitSignal(first.finished, timeout=10000):
        first.urls = [url]
    qtbot.waitUntil(lambda: first.loader.pending_worker_jobs() == 0, timeout=10000)
    first.loader.close()
    shared_thumbnail_cache().clear()
    return url


def test_revalidation_keeps_a_current_thumbnail_and_replaces_a_changed_one(qtbot, image_server, make_model):
    current = {"etag": '"v1"', "body": solid_image_bytes("#ff0000")}
    conditional = []
    url = _versioned_url_in_disk_cache(qtbot, image_server, current, conditional)

    unchanged = make_model()
    unchanged.revalidate = True
    with qtbot.waitSignal(unchanged.finished, timeout=10000):
        unchanged.urls = [url]
    qtbot.waitUntil(lambda: len(conditional) == 2 and not unchanged.loader.active_jobs(),
                    timeout=10000)
    assert conditional == ["", '"v1"']  # asked with the cached validator, answered 304
    assert close_to(center_color(unchanged.thumbnail(0)), "#ff0000")
    unchanged.loader.close()
    shared_thumbnail_cache().clear()

    current.update(etag='"v2"', body=solid_image_bytes("#0000ff"))
    changed = make_model()
    changed.revalidate = True
    with qtbot.waitSignal(changed.finished, timeout=10000):
        changed.urls = [url]
    source_before = changed.data(changed.index(0), ImageGalleryModel.SourceRole)
    qtbot.waitUntil(lambda: close_to(center_color(changed.thumbnail(0)), "#0000ff"), timeout=10000)
    assert changed.data(changed.index(0), ImageGalleryModel.SourceRole) != source_before
    changed.loader.close()


def _gone_after_first_answer(image_server, body, gone_status=404):
    """A URL that answers `body` once, then `gone_status`; its handler counts the requests."""
    requests = []

    def once_then_gone(handler):
        requests.append(handler.headers.get("If-None-Match", ""))
        if len(requests) == 1:
            handler._send(200, body, "image/png", {"ETag": '"v1"'})
        else:
            handler._send(gone_status, b"gone", "text/plain")

    return image_server.add_handler("/gone.png", once_then_gone), requests


def test_a_reload_that_meets_a_404_forgets_the_disk_thumbnail(qtbot, image_server, make_model):
    # The thumbnail stayed on disk: the next start showed the removed image as loaded, and
    # asked the server nothing.
    url, requests = _gone_after_first_answer(image_server, solid_image_bytes("#ff0000"))
    first = make_model()
    with qtbot.waitSignal(first.finished, timeout=10000):
        first.urls = [url]
    assert first.status_of(0) == ImageGalleryModel.Status.Ready
    with qtbot.waitSignal(first.finished, timeout=10000):
        first.reload()
    assert first.get(0)["errorString"].startswith("HTTP 404")
    qtbot.waitUntil(lambda: first.loader.pending_worker_jobs() == 0, timeout=10000)
    first.loader.close(finish_disk_writes=True)

    second = make_model()
    with qtbot.waitSignal(second.finished, timeout=10000):
        second.urls = [url]
    assert second.get(0)["errorString"].startswith("HTTP 404")
    assert len(requests) == 3 and second.loader.stats["disk_hits"] == 0


def test_a_404_one_loader_meets_is_forgotten_by_the_others_too(qtbot, image_server, make_model):
    # Another model's loader kept the original: a tile of its made again re-decoded it, with
    # no request, and wrote the removed image's thumbnail back to disk.
    url, requests = _gone_after_first_answer(image_server, solid_image_bytes("#ff0000"))
    shown = make_model()
    with qtbot.waitSignal(shown.finished, timeout=10000):
        shown.urls = [url]
    other = make_model()
    with qtbot.waitSignal(other.finished, timeout=10000):
        other.urls = [url]  # from memory
    with qtbot.waitSignal(other.finished, timeout=10000):
        other.reload()
    assert other.get(0)["errorString"].startswith("HTTP 404") and len(requests) == 2
    with qtbot.waitSignal(shown.loader.loadFailed, timeout=10000):
        shown.loader.load(url)  # as the provider asks for a tile made again
    assert len(requests) == 3
    qtbot.waitUntil(lambda: shown.loader.pending_worker_jobs() == 0, timeout=10000)
    shown.loader.close(finish_disk_writes=True)
    other.loader.close(finish_disk_writes=True)
    third = make_model()
    with qtbot.waitSignal(third.finished, timeout=10000):
        third.urls = [url]
    assert third.loader.stats["disk_hits"] == 0 and third.status_of(0) == ImageGalleryModel.Status.Error


def test_a_removal_queued_in_one_loader_makes_the_others_lookup_on_that_folder_a_miss(
        qtbot, image_server, make_model):
    # Counted per loader, it left a window where another loader on the same folder, whose own
    # removal was already done, found the gone image that a queued write had put back.
    url = image_server.add("/back.png", solid_image_bytes("#00ff00"))
    waiting, behind = make_model(), make_model()
    assert waiting.loader.disk.directory == behind.loader.disk.directory
    key = behind.loader.key_for(url)
    behind.loader.disk.store(key, CachedThumbnail(solid(240, 140, "#ff0000"), QSize(240, 140)))
    held = threading.Event()
    waiting.loader._io.submit((0, 0), "hold", held.wait, 10)  # its disk thread is busy
    try:
        waiting.loader._forget_on_disk(url, waiting.loader.spec)  # queued behind it
        with qtbot.waitSignal(behind.finished, timeout=10000):
            behind.urls = [url]
        assert behind.loader.stats["disk_hits"] == 0 and image_server.hits["/back.png"] == 1
    finally:
        held.set()
    qtbot.waitUntil(lambda: waiting.loader.pending_worker_jobs() == 0, timeout=10000)
    from imagegallery import loader

    assert not loader._DISCARDS_QUEUED


@pytest.mark.parametrize("gone_status", [404, 410])
def test_revalidation_that_meets_a_gone_image_shows_why_and_forgets_it(qtbot, image_server,
                                                                       make_model, gone_status):
    url, requests = _gone_after_first_answer(image_server, solid_image_bytes("#ff0000"),
                                             gone_status)
    first = make_model()
    with qtbot.waitSignal(first.finished, timeout=10000):
        first.urls = [url]
    qtbot.waitUntil(lambda: first.loader.pending_worker_jobs() == 0, timeout=10000)
    first.loader.close(finish_disk_writes=True)
    shared_thumbnail_cache().clear()

    checking = make_model(revalidate=True)
    checking.urls = [url]
    qtbot.waitUntil(lambda: checking.status_of(0) == ImageGalleryModel.Status.Error,
                    timeout=10000)
    assert checking.get(0)["errorString"].startswith(f"HTTP {gone_status}")
    assert requests == ["", '"v1"'] and checking.loader.stats["disk_hits"] == 1
    checking.loader.close()

    third = make_model()
    with qtbot.waitSignal(third.finished, timeout=10000):
        third.urls = [url]
    assert third.status_of(0) == ImageGalleryModel.Status.Error
    assert third.loader.stats["disk_hits"] == 0 and len(requests) == 3


def test_a_long_list_revalidating_from_a_warm_cache_settles_every_row(qtbot, monkeypatch,
                                                                       image_server, make_model):
    """A model feeds a long list to its loader as room frees. A revalidation that keeps the
    disk's thumbnail (a 304) ends without a result; the feed must still go on after it."""
    from imagegallery import model as model_module

    asked = []

    def current(handler):
        if handler.headers.get("If-None-Match") == '"v1"':
            asked.append(handler.path)
            handler.send_response(304)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        else:
            handler._send(200, solid_image_bytes("#00a0ff", 32, 20), "image/png", {"ETag": '"v1"'})

    urls = [image_server.add_handler(f"/{i}.png", current) for i in range(60)]
    warm = make_model()
    with qtbot.waitSignal(warm.finished, timeout=10000):
        warm.urls = urls
    qtbot.waitUntil(lambda: warm.loader.pending_worker_jobs() == 0, timeout=10000)
    warm.loader.close()
    shared_thumbnail_cache().clear()

    monkeypatch.setattr(model_module, "MAX_LOADER_JOBS", 5)  # 600: the same, with 700 URLs
    revalidating = make_model()
    revalidating.revalidate = True
    revalidating.setVisibleRange(0, 3)  # the rest go through the feed
    with qtbot.waitSignal(revalidating.finished, timeout=10000):
        revalidating.urls = urls
    assert revalidating.loadedCount == 60
    qtbot.waitUntil(lambda: len(asked) == 60, timeout=10000)  # each asked with its ETag
    revalidating.loader.close()


def test_a_changed_image_found_by_revalidation_is_kept_when_its_row_goes_away(
        qtbot, image_server, hold_decode):
    from imagegallery.loader import ImageLoader

    current = {"etag": '"v1"', "body": solid_image_bytes("#ff0000")}
    url = _versioned_url_in_disk_cache(qtbot, image_server, current)
    blue = solid_image_bytes("#0000ff")
    current.update(etag='"v2"', body=blue)
    held, release = hold_decode(blue)
    loader = ImageLoader(revalidate=True)
    try:
        loader.load(url)
        qtbot.waitUntil(held.is_set, timeout=5000)
        loader.cancel(url)  # the list was replaced while the new picture decoded
        release.set()
        qtbot.waitUntil(lambda: loader.cached(url) is not None and not loader.pending_worker_jobs(),
                        timeout=5000)
        # Nobody waits for it, but it is the newest picture: the caches take it.
        assert close_to(center_color(loader.cached(url).image), "#0000ff")
        assert close_to(center_color(loader.disk.load(loader.key_for(url)).image), "#0000ff")
    finally:
        release.set()  # no decode thread left waiting past the test
        loader.close()


def test_a_second_run_of_the_app_starts_from_the_disk_cache(tmp_path, image_server):
    import subprocess
    import sys

    urls = serve_solid_images(image_server, ["#ff0000", "#00ff00", "#0000ff", "#ffff00"] * 10,
                              640, 400)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QT_QUICK_BACKEND="software",
               IMAGEGALLERY_CACHE_DIR=str(tmp_path / "cache"))
    command = [sys.executable, "-m", "imagegallery", "--screenshot", str(tmp_path / "shot.png"),
               *urls]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    hits = image_server.total_hits()
    assert hits == 40
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert image_server.total_hits() == hits  # every thumbnail came from the disk cache


def hanging_decode_and_green(monkeypatch, image_server):
    """A model and two URLs for it: a file whose sandboxed decode hangs until the test ends it
    (`end_the_hanging_decode`), and a green image."""
    from imagegallery import sandbox_decode
    from imagegallery.limits import LoadLimits
    from imagegallery.sandbox_decode import SandboxDecoder

    monkeypatch.setenv("IMAGEGALLERY_SANDBOX_TEST_FAULTS", "1")
    monkeypatch.setattr(sandbox_decode, "_shared", SandboxDecoder(processes=1))
    hang = image_server.add("/hang.tif", b"IMAGEGALLERY-TEST-HANG", "image/tiff")
    green = image_server.add("/green.png", solid_image_bytes("#00ff00"))
    model = ImageGalleryModel()
    # Longer than any test runs: ended by hand, so no timing decides what a test sees.
    model.set_limits(LoadLimits(decode_timeout_s=60.0))
    return model, (hang, green)


def end_the_hanging_decode():
    """Stop the sandbox and its child: the hanging decode ends at once, as a crash."""
    from imagegallery import sandbox_decode

    sandbox_decode._shared.close()


@pytest.fixture
def green_beside_a_hanging_decode(qtbot, monkeypatch, image_server):
    """A gallery of two: a green image, and a decode that hangs until `end_the_hanging_decode`
    (so the loader stays busy). Yields (model, the green thumbnail's disk key, start); start()
    sets the list and returns once green is Ready and the other hangs in the sandbox's child."""
    from imagegallery import sandbox_decode

    model, (hang, green) = hanging_decode_and_green(monkeypatch, image_server)

    def start():
        model.urls = [hang, green]
        qtbot.waitUntil(lambda: model.status_of(1) == ImageGalleryModel.Status.Ready
                        and sandbox_decode._shared.spawned == 1, timeout=10000)
        assert model.status_of(0) == ImageGalleryModel.Status.Loading  # still decoding

    yield model, model.loader.key_for(green), start
    model.loader.close()
    sandbox_decode._shared.close()


def is_green(stored) -> bool:
    return stored is not None and close_to(center_color(stored.image), "#00ff00")


def test_disk_writes_wait_until_the_loader_has_nothing_left(qtbot, green_beside_a_hanging_decode):
    model, green_key, start = green_beside_a_hanging_decode
    start()
    assert model.loader.disk.load(green_key) is None  # held back while the loader works
    with qtbot.waitSignal(model.finished, timeout=10000):
        end_the_hanging_decode()
    qtbot.waitUntil(lambda: model.loader.pending_worker_jobs() == 0, timeout=10000)
    assert is_green(model.loader.disk.load(green_key))


def test_turning_the_disk_cache_off_drops_the_writes_held_for_it(qtbot,
                                                                 green_beside_a_hanging_decode):
    # They went to the folder given up once the loader was idle: a host turning the cache off
    # (privacy, a read-only medium) had what was loaded until then written there anyway.
    model, green_key, start = green_beside_a_hanging_decode
    start()
    folder_given_up = model.loader.disk
    model.cacheDirectory = ""
    with qtbot.waitSignal(model.finished, timeout=10000):
        end_the_hanging_decode()
    qtbot.waitUntil(lambda: model.loader.pending_worker_jobs() == 0, timeout=10000)
    assert folder_given_up.load(green_key) is None and folder_given_up.size_on_disk() == 0


def test_writes_queued_for_a_folder_given_up_are_dropped(tmp_path):
    # Those already handed to the disk thread still reached it after the cache was turned off.
    disk = DiskThumbnailCache(str(tmp_path))
    disk.stop_writing()
    disk.store(ThumbnailKey("http://h/a.jpg", 240, 140, "fit"),
               CachedThumbnail(solid(240, 140, "#123456"), QSize(240, 140)))
    assert disk.size_on_disk() == 0


def test_held_disk_writes_stay_held_while_the_memory_cache_has_their_images(
        qtbot, monkeypatch, green_beside_a_hanging_decode):
    from imagegallery import loader

    monkeypatch.setattr(loader, "EVICTED_HELD_WRITES_RELEASE_BYTES", 1)  # any one thumbnail is over it
    model, green_key, start = green_beside_a_hanging_decode
    start()
    assert green_key in model.loader.thumbnails
    assert len(model.loader._held_disk_writes) == 1  # held: it costs no memory yet
    assert model.loader.disk.load(green_key) is None


def test_held_disk_writes_go_at_once_past_their_byte_budget_of_evicted_images(
        qtbot, monkeypatch, green_beside_a_hanging_decode):
    from imagegallery import loader

    monkeypatch.setattr(loader, "EVICTED_HELD_WRITES_RELEASE_BYTES", 1)  # any one thumbnail is over it
    model, green_key, start = green_beside_a_hanging_decode
    memory = model.loader.thumbnails  # shared by the process: its budget is put back below
    budget = memory.budget_bytes
    memory.set_budget(0)  # the memory cache keeps nothing: every held image is extra
    try:
        start()
        # Written while the other image still decodes.
        qtbot.waitUntil(lambda: model.loader.disk.load(green_key) is not None, timeout=5000)
        assert model.status_of(0) == ImageGalleryModel.Status.Loading
        assert is_green(model.loader.disk.load(green_key))
    finally:
        memory.set_budget(budget)


def test_held_disk_writes_go_after_their_time_limit(qtbot, monkeypatch,
                                                     green_beside_a_hanging_decode):
    from imagegallery import loader

    monkeypatch.setattr(loader, "HELD_DISK_WRITES_MAX_S", 0.05)
    model, green_key, start = green_beside_a_hanging_decode
    start()
    qtbot.waitUntil(lambda: model.loader.disk.load(green_key) is not None, timeout=5000)
    assert model.status_of(0) == ImageGalleryModel.Status.Loading  # the hanging decode
    assert is_green(model.loader.disk.load(green_key))


def test_quitting_writes_the_held_thumbnails_and_stops_every_worker(
        qtbot, green_beside_a_hanging_decode):
    model, green_key, start = green_beside_a_hanging_decode
    start()
    loader = model.loader
    assert loader.disk.load(green_key) is None  # held: the other image still decodes
    loader._on_application_quit()  # what QCoreApplication.aboutToQuit runs
    assert is_green(loader.disk.load(green_key))
    # The hanging decode ends after the quit: its result is never delivered.
    failures = []
    loader.loadFailed.connect(lambda url, reason: failures.append(reason))
    end_the_hanging_decode()
    assert loader._sandboxed.wait_until_idle(5.0)  # the decode job has returned: nothing runs
    QCoreApplication.processEvents()  # anything it had posted would be delivered now
    from imagegallery import sandbox_decode

    assert sandbox_decode._shared.crashes == 1
    assert failures == []
    assert model.status_of(0) == ImageGalleryModel.Status.Loading


def test_a_disk_that_falls_behind_holds_off_background_downloads_not_the_screen(
        qtbot, monkeypatch, image_server, make_model):
    """Thumbnails queued for the disk are bounded in bytes: past the bound only rows on screen
    start downloads, and once the disk catches up the rest load and every one is written."""
    import threading

    from imagegallery import cache, loader

    monkeypatch.setattr(loader, "EVICTED_HELD_WRITES_RELEASE_BYTES", 1)  # any evicted image goes at once
    monkeypatch.setattr(loader, "QUEUED_DISK_WRITES_BYTES", 1)  # one queued write is too many
    disk_free = threading.Event()
    original_store = cache.DiskThumbnailCache.store

    def stuck_store(disk, key, thumbnail):
        disk_free.wait(10)  # a disk that does not answer (bounded, so a failure cannot hang)
        original_store(disk, key, thumbnail)

    monkeypatch.setattr(cache.DiskThumbnailCache, "store", stuck_store)
    colors = [f"#{i * 8:02x}8040" for i in range(30)]
    urls = serve_solid_images(image_server, colors)
    model = make_model(prefetchRows=0)
    model.setVisibleRange(0, 1)
    memory = model.loader.thumbnails
    budget = memory.budget_bytes
    memory.set_budget(0)  # every held thumbnail has left the memory cache: it goes to the disk
    try:
        model.urls = urls
        qtbot.waitUntil(lambda: model.loadedCount >= 1 and model.loader.transport_transfers() == 0
                        and model.loader._decoder.pending() == 0, timeout=10000)
        started = image_server.total_hits()
        assert started < len(urls)  # the background rows wait for the disk
        assert model.pendingCount > 0
        model.setVisibleRange(28, 29)  # rows scrolled into view load all the same
        qtbot.waitUntil(lambda: all(model.status_of(row) == ImageGalleryModel.Status.Ready
                                    for row in (28, 29)), timeout=10000)
        assert model.pendingCount > 0
        disk_free.set()
        with qtbot.waitSignal(model.finished, timeout=10000):
            pass
        assert model.loadedCount == len(urls) and image_server.total_hits() == len(urls)
        qtbot.waitUntil(lambda: model.loader.pending_worker_jobs() == 0, timeout=10000)
        for url, color in zip(urls, colors):
            stored = model.loader.disk.load(model.loader.key_for(url))
            assert stored is not None and close_to(center_color(stored.image), color)
    finally:
        disk_free.set()
        memory.set_budget(budget)


def test_a_model_let_go_ends_its_threads_and_still_writes_its_held_thumbnails(
        qtbot, monkeypatch, image_server):
    import gc

    from imagegallery import sandbox_decode

    model, (hang, green) = hanging_decode_and_green(monkeypatch, image_server)
    model.urls = [hang, green]
    qtbot.waitUntil(lambda shown=model: shown.status_of(1) == ImageGalleryModel.Status.Ready
                    and sandbox_decode._shared.spawned == 1, timeout=10000)
    loader, key = model.loader, model.loader.key_for(green)
    threads = loader._decoder._threads + loader._sandboxed._threads + loader._io._threads
    assert all(thread.is_alive() for thread in threads)
    assert loader.disk.load(key) is None  # held: the other image still decodes
    del model  # what a page QML unloads does to its model's Python side
    gc.collect()
    qtbot.waitUntil(lambda: is_green(loader.disk.load(key)), timeout=5000)
    end_the_hanging_decode()  # then no thread of the loader is left
    qtbot.waitUntil(lambda: not any(thread.is_alive() for thread in threads), timeout=5000)


@pytest.fixture
def url_revalidating(image_server, qtbot):
    """A URL with its thumbnail in the disk cache, whose server holds its 304 until the test
    ends."""
    answer_304 = threading.Event()
    current = {"etag": '"v1"', "body": solid_image_bytes("#ff0000")}
    url = _versioned_url_in_disk_cache(qtbot, image_server, current)
    current["answer_304"] = answer_304
    yield url
    answer_304.set()


def test_a_row_added_while_its_url_revalidates_gets_the_thumbnail(qtbot, url_revalidating,
                                                                  make_model):
    gallery = make_model(revalidate=True)
    with qtbot.waitSignal(gallery.finished, timeout=10000):
        gallery.urls = [url_revalidating]  # Ready from the disk; the 304 is held
    with qtbot.waitSignal(gallery.finished, timeout=5000):
        gallery.append(url_revalidating)  # the same image again: it must not wait on the 304
    assert gallery.status_of(1) == ImageGalleryModel.Status.Ready
    assert close_to(center_color(gallery.thumbnail(1)), "#ff0000")


def test_a_new_size_during_revalidation_is_decoded_and_given_to_the_provider(
        qtbot, url_revalidating, make_model):
    url = url_revalidating
    gallery = make_model(revalidate=True)
    with qtbot.waitSignal(gallery.finished, timeout=10000):
        gallery.urls = [url]
    gallery.thumbnailSize = QSize(120, 70)
    answers = []
    # What the image provider does when QML asks for the new source and memory misses:
    gallery.loader.load_for_provider(url, gallery.loader.spec,
                                     lambda thumbnail, error: answers.append((thumbnail, error)))
    qtbot.waitUntil(lambda: len(answers) == 1, timeout=5000)
    thumbnail, error = answers[0]
    assert error == "" and thumbnail.image.width() <= 120 and thumbnail.image.height() <= 70


def test_encoded_bytes_are_counted_as_the_memory_they_hold(qtbot, image_server, make_model):
    # Qt's readAll() grows its buffer as it reads: a 3 KB body sat in 32 KB, and the encoded
    # cache's 64 MB budget, counted by length, could hold several times that.
    from imaging import noisy_photo_bytes

    urls = [image_server.add("/tiny.png", solid_image_bytes("#123456", 32, 32)),
            image_server.add("/photo.jpg", noisy_photo_bytes(2, 1000, 750), "image/jpeg")]
    gallery = make_model()
    with qtbot.waitSignal(gallery.finished, timeout=10000):
        gallery.urls = urls
    for url in urls:
        body = gallery.loader.encoded._entries[url][0].body
        assert body.capacity() == len(body) > 0


@pytest.mark.parametrize("transport", ["qt", "curl"])
def test_a_no_store_image_is_shown_but_never_written_to_disk(qtbot, image_server, make_model,
                                                              transport):
    private = image_server.add("/private.png", solid_image_bytes("#ff0000"),
                               headers={"Cache-Control": "private, no-store"})
    # Too long to keep (over 1,024 characters), its no-store was lost with it.
    long_rules = "no-store, " + ", ".join(f"x-ext{n}=1" for n in range(150))
    private_at_length = image_server.add("/private-long.png", solid_image_bytes("#ff0000"),
                                         headers={"Cache-Control": long_rules})
    public = image_server.add("/public.png", solid_image_bytes("#00ff00"),
                              headers={"Cache-Control": "public, max-age=60"})
    gallery = make_model(transport=transport)
    with qtbot.waitSignal(gallery.finished, timeout=10000):
        gallery.urls = [private, private_at_length, public]
    assert close_to(center_color(gallery.thumbnail(0)), "#ff0000")
    loader = gallery.loader
    # Held writes go out together once the loader is idle: with the public one on disk, any
    # write of the private ones would have gone before it.
    qtbot.waitUntil(lambda: is_green(loader.disk.load(loader.key_for(public))), timeout=10000)
    qtbot.waitUntil(lambda: loader.pending_worker_jobs() == 0, timeout=10000)
    assert loader.disk.load(loader.key_for(private)) is None
    assert loader.disk.load(loader.key_for(private_at_length)) is None


def test_a_thumbnail_on_disk_is_dropped_when_its_server_now_says_no_store(qtbot, image_server,
                                                                          make_model):
    answers = {"cache_control": ""}

    def changing(handler):
        headers = {"Cache-Control": answers["cache_control"]} if answers["cache_control"] else {}
        handler._send(200, solid_image_bytes("#00ff00"), "image/png", headers)

    url = image_server.add_handler("/changing.png", changing)
    first = make_model()
    with qtbot.waitSignal(first.finished, timeout=10000):
        first.urls = [url]
    key = first.loader.key_for(url)
    qtbot.waitUntil(lambda: is_green(first.loader.disk.load(key)), timeout=10000)
    answers["cache_control"] = "no-store"
    with qtbot.waitSignal(first.finished, timeout=10000):
        first.reload()
    qtbot.waitUntil(lambda: first.loader.pending_worker_jobs() == 0, timeout=10000)
    assert first.loader.disk.load(key) is None
    assert close_to(center_color(first.thumbnail(0)), "#00ff00")


def test_cache_control_directives_are_read_as_tokens():
    from imagegallery.transport.base import TransferResult

    def may_be_stored(value):
        return TransferResult(1, "http://127.0.0.1/", cache_control=value).may_be_stored

    assert may_be_stored("") and may_be_stored("public, max-age=60") and may_be_stored("no-cache")
    assert not may_be_stored("no-store") and not may_be_stored("private, No-Store")
    assert not may_be_stored("max-age=0 , no-store=") and may_be_stored('x="no-store"')


def test_a_304_that_now_says_no_store_drops_the_thumbnail_from_disk(qtbot, image_server,
                                                                    make_model):
    current = {"etag": '"v1"', "body": solid_image_bytes("#ff0000")}
    url = _versioned_url_in_disk_cache(qtbot, image_server, current)
    current["cache_control"] = "no-store"
    gallery = make_model(revalidate=True)
    key = gallery.loader.key_for(url)
    assert gallery.loader.disk.load(key) is not None
    with qtbot.waitSignal(gallery.finished, timeout=10000):
        gallery.urls = [url]  # shown from the disk, then asked: 304, no-store
    qtbot.waitUntil(lambda: not gallery.loader.active_jobs()
                    and gallery.loader.pending_worker_jobs() == 0, timeout=10000)
    assert image_server.hits["/versioned.png"] == 2
    assert gallery.loader.disk.load(key) is None
    assert close_to(center_color(gallery.thumbnail(0)), "#ff0000")  # still shown


def test_trim_deletes_only_the_files_the_cache_wrote(tmp_path):
    # IMAGEGALLERY_CACHE_DIR or cacheDirectory pointed at a folder of the user's own (a
    # mistake, `~`, the app's own cache folder): its other files are not the cache's to delete.
    forty_days_ago = time.time() - 40 * 24 * 3600
    documents = tmp_path / "Documents"
    documents.mkdir()
    thesis = documents / "thesis.pdf"  # older than the age limit
    thesis.write_bytes(b"%PDF precious" * 1000)
    os.utime(thesis, (forty_days_ago, forty_days_ago))
    video = tmp_path / "video.mp4"  # larger than the budget
    with open(video, "wb") as handle:
        handle.truncate(50_000)
    lookalike = tmp_path / "ab" / "notes.txt"  # in a folder named like a shard
    lookalike.parent.mkdir()
    lookalike.write_text("mine")
    os.utime(lookalike, (forty_days_ago, forty_days_ago))
    elsewhere = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    elsewhere.mkdir()
    (elsewhere / ("0" * 64 + ".thumb")).write_bytes(b"x" * 30_000)
    os.symlink(elsewhere, tmp_path / "cd")  # a link named like a shard: not followed

    disk = DiskThumbnailCache(str(tmp_path), budget_bytes=20_000, max_age_s=3600)
    keys = [ThumbnailKey(f"http://h/{i}.jpg", 240, 140, "fit") for i in range(3)]
    for key in keys:
        disk.store(key, CachedThumbnail(solid(240, 140, "#123456"), QSize(240, 140)))
    disk.trim()
    assert thesis.exists() and video.exists() and lookalike.exists()
    assert (elsewhere / ("0" * 64 + ".thumb")).exists()
    assert all(disk.load(key) is not None for key in keys)  # the other files do not count
    assert disk.size_on_disk() <= 20_000


def _png_bomb(side: int) -> bytes:
    """A valid grey PNG of side x side zeros: about 1 KB per megapixel."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    deflate = zlib.compressobj(9)
    row = b"\0" * (side + 1)
    idat = b"".join(deflate.compress(row) for _ in range(side)) + deflate.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def _jpeg_claiming(width: int, height: int) -> bytes:
    from PyQt5.QtCore import QBuffer, QByteArray, QIODevice

    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.WriteOnly)
    solid(16, 16, "#336699").save(buffer, b"jpeg", 90)
    raw = bytes(data)
    frame = raw.index(b"\xff\xc0")
    return raw[:frame + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + raw[frame + 9:]


@pytest.mark.parametrize("reader", ["libjpeg-turbo loaded", "Qt's reader only"])
@pytest.mark.parametrize("planted", ["PNG of 15000x15000", "JPEG claiming 60000x60000", "SVG",
                                     "PNG of 140 compressed texts", "PNG of 20,000 chunks"])
def test_a_foreign_file_at_an_entrys_name_is_a_miss_and_never_decoded(
        qapp, tmp_path, monkeypatch, reader, planted):
    # Only JPEG and PNG, as written here, and only within the key's box: anything else at an
    # entry's name would be decoded by whichever Qt plugin recognised it (the PNG took 1 GB).
    from imagegallery import cache

    if reader == "Qt's reader only":
        monkeypatch.setattr(cache, "_jpeg_turbo_if_loaded", lambda: None)
    data = {"PNG of 15000x15000": lambda: _png_bomb(15000),
            "JPEG claiming 60000x60000": lambda: _jpeg_claiming(60000, 60000),
            "SVG": lambda: (b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
                            b'<rect width="100" height="100" fill="red"/></svg>'),
            # 1.1 MB, small enough for an entry, and each text inflates to 8 MB while Qt reads
            # the header, with the GIL held: the GUI froze for 3 s a file.
            "PNG of 140 compressed texts": lambda: with_png_chunks_after_header(
                solid_image_bytes("#ff0000", 2, 2), png_zip_bomb_texts(140)),
            # Empty ancillary chunks, each read by libpng (98,000 took 70 ms a file).
            "PNG of 20,000 chunks": lambda: with_png_chunks_after_header(
                solid_image_bytes("#ff0000", 2, 2), png_chunk(b"prVt", b"") * 20_000),
            }[planted]()
    disk = DiskThumbnailCache(str(tmp_path))
    key = ThumbnailKey("http://h/a.png", 240, 140, "fit")
    path = disk._path(key)
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as handle:
        handle.write(data)
    assert disk.load(key) is None
    assert not os.path.exists(path)  # dropped like a damaged entry, to be fetched again
    # What the cache writes itself still reads back, either way.
    disk.store(key, CachedThumbnail(solid(200, 100, "#336699"), QSize(400, 200)))
    loaded = disk.load(key)
    assert loaded is not None and loaded.image.size() == QSize(200, 100)
    assert close_to(center_color(loaded.image), "#336699")


@pytest.mark.parametrize("given", ["file: URL", "~ path"])
def test_the_cache_directory_takes_a_file_url_or_a_home_path(qtbot, tmp_path, monkeypatch,
                                                             model, given):
    # QML hands folders around as URLs (StandardPaths.writableLocation gives "file:///...");
    # such a value became a folder named "file:" under the working directory.
    from PyQt5.QtCore import QUrl

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    wanted = tmp_path / "home" / "thumbs"
    monkeypatch.chdir(tmp_path)
    model.cacheDirectory = (QUrl.fromLocalFile(str(wanted)).toString() if given == "file: URL"
                            else "~/thumbs")
    assert model.cacheDirectory == str(wanted)
    key = ThumbnailKey("http://h/a.jpg", 240, 140, "fit")
    model.loader.disk.store(key, CachedThumbnail(solid(40, 30, "#336699"), QSize(400, 300)))
    assert os.path.exists(model.loader.disk._path(key))
    assert str(wanted) in model.loader.disk._path(key)
    assert sorted(os.listdir(tmp_path)) == ["home"]


def test_a_write_that_fails_leaves_no_part_behind(tmp_path):
    disk = DiskThumbnailCache(str(tmp_path))
    key = ThumbnailKey("http://h/a.jpg", 240, 140, "fit")
    os.makedirs(disk._path(key))  # the entry's name taken by a folder: the rename fails
    disk.store(key, CachedThumbnail(solid(40, 30, "#336699"), QSize(400, 300)))
    assert os.listdir(os.path.dirname(disk._path(key))) == [os.path.basename(disk._path(key))]


def test_a_fifo_at_an_entrys_name_is_a_miss_not_a_hang(qapp, tmp_path):
    # Reading it would block the one disk thread for good, and with it every row's lookup.
    disk = DiskThumbnailCache(str(tmp_path))
    key = ThumbnailKey("http://h/a.png", 240, 140, "fit")
    path = disk._path(key)
    os.makedirs(os.path.dirname(path))
    os.mkfifo(path)
    result = []
    worker = threading.Thread(target=lambda: result.append(disk.load(key)), daemon=True)
    worker.start()
    worker.join(5.0)
    hung = worker.is_alive()
    if hung:  # let the blocked open() go
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(5.0)
    assert not hung and result == [None]


@pytest.mark.parametrize("configured, expected", [
    ("thumbs:v2", "{cwd}/thumbs:v2"),  # a relative folder with a colon is a folder
    ("file:", ""), ("file://", ""),  # name no folder: not the working directory
    ("https://example.com/cache", ""),
    ("file:///srv/thumbs", "/srv/thumbs"),
    ("~/thumbs", "{home}/thumbs"),
])
def test_cache_folder_names(tmp_path, monkeypatch, configured, expected):
    from imagegallery.cache import disk_cache_folder

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert disk_cache_folder(configured) == expected.format(cwd=tmp_path, home=tmp_path / "home")


def test_a_refused_cache_directory_is_said_once(qtbot, model, caplog):
    with caplog.at_level(logging.WARNING, logger="imagegallery.cache"):
        model.cacheDirectory = "https://example.com/cache"
    assert model.cacheDirectory == ""
    said = [record.getMessage() for record in caplog.records if "is not a folder" in record.getMessage()]
    assert len(said) == 1, said


def test_a_url_with_an_uppercase_scheme_is_kept_on_disk_too(qtbot, image_server, make_model):
    # Entries are kept by their text; which go to the disk was judged by that text's case.
    url = image_server.add("/a.png", solid_image_bytes("#ff0000")).replace("http://", " HTTP://")
    first = make_model()
    with qtbot.waitSignal(first.finished, timeout=10000):
        first.urls = [url]
    assert first.status_of(0) == ImageGalleryModel.Status.Ready
    qtbot.waitUntil(lambda: first.loader.pending_worker_jobs() == 0, timeout=10000)
    first.loader.close()
    image_server.stop()
    shared_thumbnail_cache().clear()
    second = make_model()
    with qtbot.waitSignal(second.finished, timeout=10000):
        second.urls = [url]
    assert second.loader.stats["disk_hits"] == 1
    assert close_to(center_color(second.thumbnail(0)), "#ff0000")

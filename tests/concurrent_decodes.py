"""Run as a script, `concurrent_decodes.py DECODES_PER_THREAD CACHE_DIR`: decode small images
from four threads at once, while a fifth reads thumbnails back from a disk cache in CACHE_DIR,
and print how many failed.

Every decode makes a QImageReader handler over a QBuffer made in Python (by the format named
and by sniffing the content); the warm-up job makes some too. The disk cache reads its PNGs
through Qt from the file (a QBuffer of its own there deadlocked against these threads) and its
JPEGs through libjpeg-turbo. Run in a child process by test_decode_threads.py, because a
deadlock here would hang whatever process it happens in.
"""
import sys
import threading

from PyQt5.QtCore import QBuffer, QByteArray, QIODevice, QSize
from PyQt5.QtGui import QGuiApplication, QImage

from imagegallery.cache import CachedThumbnail, DiskThumbnailCache, ThumbnailKey
from imagegallery.decode import ThumbnailSpec, decode_thumbnail, warm_up_decoders
from imagegallery.limits import LoadLimits

THREADS = 4


def encoded(image_format: bytes) -> bytes:
    image = QImage(64, 48, QImage.Format_RGB32)
    image.fill(0xff3366)
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.WriteOnly)
    image.save(buffer, image_format)
    buffer.close()
    return bytes(data)


def main() -> None:
    decodes_per_thread = int(sys.argv[1])
    application = QGuiApplication(["concurrent_decodes", "-platform", "offscreen"])
    # (body, Content-Type, URL): JPEG by its type, PNG and BMP by sniffing.
    bodies = [(encoded(b"jpeg"), "image/jpeg", "a.jpg"), (encoded(b"png"), "", "b"),
              (encoded(b"bmp"), "", "c")]
    spec, limits = ThumbnailSpec(32, 24, "fit"), LoadLimits()
    failed = []

    def decode_many(offset: int) -> None:
        for number in range(decodes_per_thread):
            if number % 50 == 0:
                warm_up_decoders()
            body, content_type, url = bodies[(number + offset) % len(bodies)]
            if not decode_thumbnail(body, spec, limits, url, content_type).ok:
                failed.append(number)

    warm_up_decoders()  # as a loader does at start: the disk cache reads JPEGs through libjpeg-turbo
    disk = DiskThumbnailCache(sys.argv[2])
    keys = [ThumbnailKey(f"http://h/{name}", 64, 48, "fit") for name in ("opaque.jpg", "alpha.png")]
    for key, image_format in zip(keys, (QImage.Format_RGB32, QImage.Format_ARGB32_Premultiplied)):
        image = QImage(64, 48, image_format)
        image.fill(0x80336699)
        disk.store(key, CachedThumbnail(image, QSize(640, 480)))
    read = []

    def read_many() -> None:
        for number in range(decodes_per_thread):
            if disk.load(keys[number % len(keys)]) is None:
                failed.append(number)
            read.append(number)

    threads = [threading.Thread(target=decode_many, args=(offset,)) for offset in range(THREADS)]
    threads.append(threading.Thread(target=read_many))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"decoded {THREADS * decodes_per_thread}, read {len(read)} from the disk cache, "
          f"failed {len(failed)}")
    del application


if __name__ == "__main__":
    main()

"""The benchmark's images: generated once from fixed seeds into a cache folder, then reused.

Photos must cost what real photos cost: a flat colour compresses to a few KB and decodes in no
time, which would flatter every client. So each picture is a smooth random field (the "scene")
plus fine noise (the "texture"), and the JPEG quality is searched per image until the file lands
in the 200-400 KB band real 2-megapixel photos occupy.

Layout in the cache folder (default ~/.cache/imagegallery-bench/corpus-v1):
    photo/0000.jpg .. 0199.jpg   1600x1200, 200-400 KB
    large/00.jpg .. 59.jpg       4000x3000
    mix/000.png|gif|webp|jpg     100 files, a quarter of each format
    small/000.jpg .. 099.jpg     320x240, about 20 KB: pre-made thumbnails, where per-image
                                 overhead, not decoding, is the cost
    progressive/0000.jpg .. 0199.jpg  the photos' scenes saved as progressive JPEGs (as many
                                 sites and CDNs serve them), in the same 200-400 KB band
    manifest.json                name -> bytes, written last (its presence means "complete";
                                 kinds added to the corpus later are generated into it)
"""
from __future__ import annotations

import json
import os
import struct
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Dict, List, Tuple

import numpy as np

VERSION = 1
SEED = 20240505
PHOTO_COUNT = 200
LARGE_COUNT = 60
MIX_COUNT = 100
SMALL_COUNT = 100
PHOTO_BYTES = (200_000, 400_000)


def default_dir() -> str:
    base = os.environ.get("IMAGEGALLERY_BENCH_CORPUS") or os.path.join(
        os.path.expanduser("~"), ".cache", "imagegallery-bench", f"corpus-v{VERSION}")
    return base


def _scene(rng: np.random.Generator, width: int, height: int, noise: float) -> np.ndarray:
    """An RGB uint8 picture: low-frequency colour field, a few soft discs, grain."""
    # The smooth part is computed at 1/8 size and upsampled by Qt: same look, 60x less work.
    small_w, small_h = max(2, width // 8), max(2, height // 8)
    grid = rng.uniform(0, 255, size=(7, 9, 3)).astype(np.float32)
    ys = np.linspace(0, grid.shape[0] - 1, small_h, dtype=np.float32)
    xs = np.linspace(0, grid.shape[1] - 1, small_w, dtype=np.float32)
    y0 = np.floor(ys).astype(int).clip(0, grid.shape[0] - 2)
    x0 = np.floor(xs).astype(int).clip(0, grid.shape[1] - 2)
    fy = (ys - y0)[:, None, None]
    fx = (xs - x0)[None, :, None]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    field = top * (1 - fy) + bottom * fy
    xx = np.arange(small_w, dtype=np.float32)
    yy = np.arange(small_h, dtype=np.float32)
    for _ in range(6):
        cx, cy = rng.uniform(0, small_w), rng.uniform(0, small_h)
        radius = rng.uniform(0.05, 0.25) * small_w
        colour = rng.uniform(-80, 80, size=3).astype(np.float32)
        mask = np.outer(np.exp(-((yy - cy) ** 2) / (2 * radius * radius)),
                        np.exp(-((xx - cx) ** 2) / (2 * radius * radius)))
        field += mask[:, :, None] * colour
    from PyQt5.QtCore import Qt
    from PyQt5.QtGui import QImage

    smooth = _qimage(np.clip(field, 0, 255).astype(np.uint8)).scaled(
        width, height, Qt.IgnoreAspectRatio, Qt.SmoothTransformation
    ).convertToFormat(QImage.Format_RGB888)  # smooth scaling returns RGB32
    base = np.frombuffer(smooth.constBits().asstring(smooth.sizeInBytes()), np.uint8)
    base = base.reshape(height, smooth.bytesPerLine())[:, :width * 3].reshape(height, width, 3)
    image = base.astype(np.int16)
    # Mid-frequency texture (foliage, fabric) costs bytes the way real detail does.
    texture = rng.normal(0, noise, size=(height // 2 + 1, width // 2 + 1, 1)).astype(np.int16)
    image += np.repeat(np.repeat(texture, 2, axis=0), 2, axis=1)[:height, :width]
    image += rng.integers(-int(noise / 2) - 1, int(noise / 2) + 2, size=(height, width, 1),
                          dtype=np.int16)
    return np.clip(image, 0, 255).astype(np.uint8)


def _qimage(rgb: np.ndarray):
    from PyQt5.QtGui import QImage

    height, width, _ = rgb.shape
    data = np.ascontiguousarray(rgb)
    image = QImage(data.data, width, height, width * 3, QImage.Format_RGB888)
    return image.copy()  # own the pixels; `data` is freed on return


def _encode(image, fmt: bytes, quality: int = -1, progressive: bool = False) -> bytes:
    from PyQt5.QtCore import QBuffer, QByteArray, QIODevice
    from PyQt5.QtGui import QImageWriter

    array = QByteArray()
    buffer = QBuffer(array)
    buffer.open(QIODevice.WriteOnly)
    writer = QImageWriter(buffer, fmt)
    writer.setQuality(quality)
    writer.setProgressiveScanWrite(progressive)
    if not writer.write(image):
        raise RuntimeError(f"Qt cannot write {fmt!r}: {writer.errorString()}")
    buffer.close()
    return bytes(array)


def _photo(index: int, progressive: bool = False) -> bytes:
    rng = np.random.default_rng([SEED, 1, index])
    noise = float(rng.uniform(10, 18))
    image = _qimage(_scene(rng, 1600, 1200, noise))
    low, high = 40, 95
    best = None
    # Bisect the quality: the band is what matters, not any particular quality value.
    while low <= high:
        quality = (low + high) // 2
        data = _encode(image, b"jpg", quality, progressive)
        if PHOTO_BYTES[0] <= len(data) <= PHOTO_BYTES[1]:
            return data
        best = data
        if len(data) < PHOTO_BYTES[0]:
            low = quality + 1
        else:
            high = quality - 1
    return best


def _large(index: int) -> bytes:
    rng = np.random.default_rng([SEED, 2, index])
    return _encode(_qimage(_scene(rng, 4000, 3000, float(rng.uniform(8, 14)))), b"jpg", 85)


def _gif(rgb: np.ndarray) -> bytes:
    """A valid GIF89a without a compressor: 9-bit literal codes, a clear code every 254.

    Qt has no GIF writer; uncompressed LZW is legal and decodes like any other GIF (larger, as
    GIFs of photographic content are anyway).
    """
    height, width, _ = rgb.shape
    levels = np.array([6, 7, 6])
    q = (rgb.astype(np.int32) * levels // 256)
    indices = (q[:, :, 0] * 42 + q[:, :, 1] * 6 + q[:, :, 2]).ravel().astype(np.uint16)
    palette = bytearray()
    for i in range(256):
        r, g, b = (i // 42) % 6, (i // 6) % 7, i % 6
        palette += bytes((r * 255 // 5, g * 255 // 6, b * 255 // 5)) if i < 252 else b"\0\0\0"
    clear, end = 256, 257
    chunks = [indices[i:i + 254] for i in range(0, len(indices), 254)]
    codes = np.concatenate([np.concatenate(([clear], c)) for c in chunks] + [np.array([end])])
    bits = ((codes[:, None].astype(np.uint32) >> np.arange(9, dtype=np.uint32)) & 1).astype(np.uint8)
    packed = np.packbits(bits.ravel(), bitorder="little").tobytes()
    blocks = bytearray()
    for i in range(0, len(packed), 255):
        piece = packed[i:i + 255]
        blocks += bytes((len(piece),)) + piece
    header = b"GIF89a" + struct.pack("<HHBBB", width, height, 0xF7, 0, 0) + bytes(palette)
    descriptor = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0)
    return header + descriptor + bytes((8,)) + bytes(blocks) + b"\0;"


MIX_FORMATS = ("png", "gif", "webp", "jpg")


def _mix(index: int) -> Tuple[str, bytes]:
    rng = np.random.default_rng([SEED, 3, index])
    fmt = MIX_FORMATS[index % 4]
    width = int(rng.choice([640, 800, 1024, 1280]))
    height = width * 3 // 4
    # Graphics-like PNG/GIF content (less grain) keeps file sizes those formats really see.
    noise = 3.0 if fmt in ("png", "gif") else float(rng.uniform(8, 14))
    rgb = _scene(rng, width, height, noise)
    if fmt == "gif":
        return fmt, _gif(rgb)
    quality = {"png": -1, "webp": 80, "jpg": 85}[fmt]
    return fmt, _encode(_qimage(rgb), fmt.encode(), quality)


def _small(index: int) -> bytes:
    rng = np.random.default_rng([SEED, 4, index])
    return _encode(_qimage(_scene(rng, 320, 240, float(rng.uniform(8, 14)))), b"jpg", 85)


def _job(task: Tuple[str, int]) -> Tuple[str, bytes]:
    kind, index = task
    if kind == "photo":
        return f"photo/{index:04d}.jpg", _photo(index)
    if kind == "large":
        return f"large/{index:02d}.jpg", _large(index)
    if kind == "small":
        return f"small/{index:03d}.jpg", _small(index)
    if kind == "progressive":
        return f"progressive/{index:04d}.jpg", _photo(index, progressive=True)
    fmt, data = _mix(index)
    return f"mix/{index:03d}.{fmt}", data


def ensure(directory: str = "", workers: int = 0, log=print) -> Dict[str, int]:
    """Generate what the corpus lacks; returns the manifest (relative path -> bytes)."""
    directory = directory or default_dir()
    manifest_path = os.path.join(directory, "manifest.json")
    manifest: Dict[str, int] = {}
    if os.path.exists(manifest_path):
        with open(manifest_path) as handle:
            manifest = json.load(handle)
    counts = {"photo": PHOTO_COUNT, "large": LARGE_COUNT, "mix": MIX_COUNT, "small": SMALL_COUNT,
              "progressive": PHOTO_COUNT}
    tasks: List[Tuple[str, int]] = [(kind, i) for kind, count in counts.items()
                                    if not names(manifest, kind) for i in range(count)]
    if not tasks:
        return manifest
    log(f"generating corpus in {directory} ({len(tasks)} images, once)...")
    workers = workers or max(1, os.cpu_count() or 1)
    with ProcessPoolExecutor(workers) as pool:
        for name, data in pool.map(_job, tasks, chunksize=4):
            path = os.path.join(directory, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as handle:
                handle.write(data)
            manifest[name] = len(data)
    with open(manifest_path + ".tmp", "w") as handle:
        json.dump(manifest, handle, indent=0, sort_keys=True)
    os.replace(manifest_path + ".tmp", manifest_path)
    return manifest


def names(manifest: Dict[str, int], kind: str) -> List[str]:
    return sorted(name for name in manifest if name.startswith(kind + "/"))


if __name__ == "__main__":
    result = ensure(sys.argv[1] if len(sys.argv) > 1 else "")
    for kind in ("photo", "large", "mix", "small", "progressive"):
        sizes = [result[n] for n in names(result, kind)]
        print(f"{kind}: {len(sizes)} files, {min(sizes)}-{max(sizes)} bytes, total {sum(sizes)}")

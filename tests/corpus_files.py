"""The shared corpus of real malformed and edge-case image files (../shared/corpus, beside the
project; not in the repository): where it is, and its files' bytes."""
import os

CORPUS = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "corpus"))


def corpus_bytes(path: str) -> bytes:
    """The bytes of one corpus file, by its path inside the corpus."""
    with open(os.path.join(CORPUS, path), "rb") as handle:
        return handle.read()

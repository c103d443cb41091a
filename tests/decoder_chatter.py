"""Patterns for the qWarnings image decoders print about damaged files.

libjpeg and libpng report every damaged file they meet through Qt's message handler (Qt's JPEG and
PNG plugins forward them as qWarning, from the decode threads). The corpus and fuzz tests feed
damaged files on purpose and check the outcome on each tile instead, so these, and only these,
are ignored there (pytest-qt's qt_log_ignore marker takes regular expressions).
"""

DECODER_CHATTER = (
    r"^Corrupt JPEG data",
    r"^Premature end of JPEG file",
    r"^Invalid SOS parameters",
    r"^Unsupported JPEG",
    r"^JPEG datastream contains no image",
    r"^Bogus ",
    r"^Invalid JPEG",
    r"^Huffman table",
    r"^Inconsistent progression sequence",
    r"^Warning: unknown JFIF revision",
    r"^Unsupported marker type",
    r"^Not a JPEG file",
    r"^Quantization table",
    r"^Empty JPEG image",
    r"^Corrupt JPEG",
    r"^JPEG ",
    r"^Unknown APP",
    r"^Wrong JPEG library version",
    r"^Improper call to JPEG library",
    r"^Maximum supported image dimension",
    r"^Sampling factors too large",
    r"^Invalid component ID",
    r"^Invalid progressive",
    r"^Application transferred too few scanlines",
    r"^Arithmetic",
    r"^Corrupt data",
    r"^Image too big",
    r"^libpng warning",
    r"^libpng error",
    r"^QImage::scaled: Image is a null image",
)

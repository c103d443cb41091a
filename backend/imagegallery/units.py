"""Human-readable sizes, durations and quotes for reasons shown on tiles."""

# A server's own words in a reason (its reason phrase, content type or encoding) are cut to
# this: a tile has room for a line or two, and a hostile server has room for kilobytes.
MAX_QUOTED_CHARS = 60


def format_bytes(count: int) -> str:
    value = float(count)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}".replace(".0 ", " ")
        value /= 1024
    return f"{count} bytes"


def format_seconds(seconds: float) -> str:
    if seconds >= 1 and abs(seconds - round(seconds)) < 0.05:
        return f"{int(round(seconds))} s"
    return f"{seconds:.1f} s"


def quote_server_words(text: str, max_chars: int = MAX_QUOTED_CHARS) -> str:
    """`text` a server sent, fit for a tile: control characters (line breaks, escapes, bidi
    overrides) become spaces, runs of space one, and a long text is cut with an ellipsis."""
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    words = " ".join(printable.split())
    return words if len(words) <= max_chars else words[:max_chars - 1] + "\u2026"

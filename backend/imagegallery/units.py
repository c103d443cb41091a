"""Human-readable sizes and durations for reasons shown on tiles."""


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

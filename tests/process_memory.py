"""This process's memory, read from /proc/self/status (Linux), for tests that bound it."""


def status_bytes(field: str) -> int:
    """`field` is "VmRSS" (now) or "VmHWM" (peak so far)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/self/status")

"""How every bench ends: the bars it missed, or that all were met, as its exit status."""

from __future__ import annotations

from collections.abc import Sequence


def conclude(missed: Sequence[str]) -> int:
    """Print the bars missed (or that every bar was met); 1 when any was missed, else 0."""
    print()
    if missed:
        print("BARS MISSED:")
        for line in missed:
            print(f"  - {line}")
        return 1
    print("all bars met")
    return 0

"""Pulse-extraction methods, one per module with its paper (as rPPG-Toolbox keeps them), and their registry.

Each method turns an (n, 3) R, G, B trace sampled at ``fs`` into a raw pulse wave; ``pulse`` then
detrends it and band-passes it to the heart-rate band.
"""

from __future__ import annotations

from lib.errors import ValidationError

METHODS = ("POS", "CHROM", "GREEN")
"""Pulse-extraction methods, by the names researchers know them; each has a module here, and
``pulse.EXTRACTORS`` maps the names to them (the names alone load nothing, for pages that list them)."""


def check_method(method: str) -> str:
    """The registered name for ``method`` (case and spaces ignored); refused with the valid names."""
    name = str(method).strip().upper()
    if name not in METHODS:
        raise ValidationError(f"Unknown pulse method {method!r}; choose one of {', '.join(METHODS)}.")
    return name

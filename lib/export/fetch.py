#!/usr/bin/env python3
"""Fetch a PulseVault export from its manifest: every file in manifest.csv is downloaded beside it, an
interrupted download resumes where it stopped, and every file's SHA-256 is checked.

Usage (Python 3.9+, nothing to install):  python fetch.py [--manifest manifest.csv] [--workers 4]

Run it again after any failure: files already complete and correct are skipped, partial ones resumed.
The links in the manifest expire (see FETCH.md); after that, prepare the export again in PulseVault.
This file is copied as it is into every manifest export, so it imports only the standard library.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

CHUNK = 1024 * 1024
"""Bytes read and written per step."""
TIMEOUT_S = 60
"""A connection that sends nothing for this long is dropped (run the script again to resume)."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def target_of(base: Path, relative: str) -> Path:
    """Where a manifest path goes; one that would leave the folder is refused."""
    parts = PurePosixPath(relative).parts
    if not parts or PurePosixPath(relative).is_absolute() or ".." in parts:
        raise ValueError(f"refusing the path {relative!r}: it leaves the export folder")
    return base.joinpath(*parts)


def fetch(base: Path, row: dict) -> str:
    """Download one manifest row (resuming a partial file) and check it; '' when fine, else why not."""
    target = target_of(base, row["path"])
    size, expected = int(row["size"]), row["sha256"].lower()
    if target.is_file() and target.stat().st_size == size and sha256_of(target) == expected:
        return ""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    have = partial.stat().st_size if partial.is_file() else 0
    if have > size:
        partial.unlink()
        have = 0
    if have < size:
        problem = _download(row["url"], partial, have)
        if problem:
            return f"{row['path']}: {problem}"
    if partial.stat().st_size != size or sha256_of(partial) != expected:
        partial.unlink()
        return f"{row['path']}: the bytes received do not match the checksum; run the script again to fetch it anew"
    partial.replace(target)
    return ""


def _download(url: str, partial: Path, have: int) -> str:
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            mode = "ab" if have and response.status == 206 else "wb"  # 200: the server sent it all again
            with partial.open(mode) as out:
                for block in iter(lambda: response.read(CHUNK), b""):
                    out.write(block)
    except urllib.error.HTTPError as exc:
        if exc.code == 403:
            return "the link was refused (expired?); prepare the export again in PulseVault for fresh links"
        return f"the server answered {exc.code}; run the script again"
    except (OSError, urllib.error.URLError) as exc:
        return f"the download stopped ({exc}); run the script again to resume"
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", default=str(Path(__file__).with_name("manifest.csv")))
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args(argv)
    manifest = Path(args.manifest)
    with manifest.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    with ThreadPoolExecutor(max(1, args.workers)) as pool:
        problems = [p for p in pool.map(lambda row: fetch(manifest.parent, row), rows) if p]
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{len(rows) - len(problems)} of {len(rows)} files fetched and checked.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

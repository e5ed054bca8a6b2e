"""What a running demo app (``streamlit run``, no configuration) started: its S3 server and SQLite file.

The app logs where its demo folder is once a browser session has started the backends; the S3
server's random key and secret are read from the identities file in it (they are never logged).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.config import Config

from lib.demo import DEMO_REGION, STORAGE_FOLDER
from lib.seaweedfs import IDENTITIES_FILE
from tests.support.app_server import RunningApp

_STARTED = re.compile(r"demo mode: S3 at (\S+), database in (\S+)")


@dataclass(frozen=True)
class DemoStorage:
    endpoint: str
    workdir: Path
    access_key_id: str
    secret_access_key: str = field(repr=False)

    @property
    def db_path(self) -> Path:
        return self.workdir / "pulsevault-demo.sqlite3"

    def client(self):
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=DEMO_REGION,
                            aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key,
                            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


def demo_storage(app: RunningApp, timeout_s: float = 30) -> DemoStorage:
    """The demo backends of ``app`` (a browser must have opened it, which starts them)."""
    deadline = time.monotonic() + timeout_s
    while not (found := _STARTED.search(app.log_text())):
        assert time.monotonic() < deadline, app.log_text()
        time.sleep(0.1)
    workdir = Path(found.group(2))
    identities = json.loads((workdir / STORAGE_FOLDER / IDENTITIES_FILE).read_text())
    credentials = identities["identities"][0]["credentials"][0]
    return DemoStorage(found.group(1), workdir, credentials["accessKey"], credentials["secretKey"])

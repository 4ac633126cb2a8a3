"""A real S3 server for tests: moto's standalone server (`python -m moto.server`) as its own process on
a free loopback port, and the Flink `s3.*` configuration that points at it."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ha_flink.config import Configuration
from ha_flink.testing.processes import free_port, log_tail, start_process, stop_process, wait_for

ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key"


@dataclass
class MotoS3Server:
    directory: Path
    host: str = "127.0.0.1"
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "moto.log"

    def start(self, timeout: float = 30.0) -> None:
        self.port = self.port or free_port(self.host)
        self.process = start_process([sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)],
                                     self.log_path)
        wait_for(self._answers, timeout, 0.05, f"moto S3 server at {self.endpoint}")

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"moto server exited with {self.process.returncode}:\n{log_tail(self.log_path)}")
        try:
            with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1):
                return True
        except urllib.error.HTTPError:
            return True  # it answered HTTP, so it serves
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, signal.SIGTERM)

    def configuration(self) -> Configuration:
        """Flink's s3.* keys for this server."""
        return Configuration({
            "s3.endpoint": self.endpoint,
            "s3.access-key": ACCESS_KEY,
            "s3.secret-key": SECRET_KEY,
            "s3.path.style.access": "true",
        })

"""A private Mosquitto on a free port, for benchmark commands and tests (not for production:
deploy/mosquitto/ holds the secured configuration).

Persistence goes to its own folder, so a restart keeps sessions and queued QoS 1 messages as a
production broker with `persistence true` does.
"""

from __future__ import annotations

import getpass
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from edge.errors import ZastavaError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")


class LocalMosquitto:
    """`extra` is appended to the generated config; `listener` replaces the default one."""

    def __init__(self, workdir: Path | None = None, port: int | None = None, extra: str = "", listener: str | None = None):
        binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
        if binary is None:
            raise ZastavaError("mosquitto is not installed (apt-get install mosquitto)")
        self.binary = binary
        self.dir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="zastava-mosquitto-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf = self.dir / "mosquitto.conf"
        listener = listener or f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
        self.conf.write_text(
            f"{listener}"
            # Started as root, mosquitto would drop to the `mosquitto` user and then could not
            # write its persistence file here: sessions would not survive a restart.
            f"user {getpass.getuser()}\n"
            f"persistence true\npersistence_location {self.dir}/\n"
            "autosave_interval 1\n"
            f"log_dest file {self.dir}/mosquitto.log\nlog_type error\nlog_type warning\nlog_type notice\n"
            "max_queued_messages 0\nmax_inflight_messages 0\n"
            f"{extra}\n"
        )
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> LocalMosquitto:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_port(self.port)
        except TimeoutError:
            self.proc.kill()
            raise ZastavaError(f"mosquitto did not start: {self.log()[-500:]}") from None
        return self

    def kill(self) -> None:
        """Die at once, as a crashed broker does (what it saved to disk survives)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        path = self.dir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def __enter__(self) -> LocalMosquitto:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

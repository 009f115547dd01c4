"""An embedded MQTT broker for the one-command demo: amqtt in its own thread and event loop.

Demo only. amqtt speaks MQTT 3.1.1 (clients fall back from 5), keeps nothing on disk and has no
ACLs; production uses Mosquitto with deploy/mosquitto/ (TLS, passwords, per-node ACL).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading

from edge.errors import ZastavaError

log = logging.getLogger(__name__)


class EmbeddedBroker:
    def __init__(self, host: str = "127.0.0.1", port: int = 1883):
        self.host, self.port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="embedded-broker", daemon=True)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        with socket.socket() as s:
            if s.connect_ex((self.host, self.port)) == 0:
                raise ZastavaError(f"{self.host}:{self.port} is taken (a broker already runs there?): "
                                   f"name it with --broker mqtt://{self.host}:{self.port}, or pick --embedded-port")
        self._thread.start()
        if not self._ready.wait(timeout) or self._error:
            raise ZastavaError(f"the embedded broker did not start on {self.host}:{self.port}: {self._error}")
        log.warning("embedded MQTT broker (amqtt, demo only) on %s", self.url)
        return self

    def _run(self) -> None:
        from amqtt.broker import Broker

        logging.getLogger("amqtt").setLevel(logging.ERROR)  # it warns about every MQTT 5 attempt
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        # amqtt lets socket errors of clients that hung up escape to the loop; they are not ours.
        self._loop.set_exception_handler(lambda loop, ctx: log.debug("embedded broker: %s", ctx.get("message")))
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}", "max_connections": 100}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        try:
            self._broker = Broker(config, loop=self._loop)
            self._loop.run_until_complete(self._broker.start())
        except BaseException as e:  # reported to start(), which raises a one-line error
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        if self._loop is None or self._broker is None:
            return
        asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

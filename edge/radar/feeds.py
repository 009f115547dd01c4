"""Radar and AIS feeds: raw messages with their receive times, from a socket, a serial line or a file.

`open_feed(cfg, stop)` opens what the config names and iterates (message, receive time): one
NMEA/AIS line without its CR/LF, or one ASTERIX datagram (or data block, over TCP and from raw
files). Opening fails with a one-line SourceError (a port in use, a missing file); after that,
bad input never raises out of the iterator: it is counted in `feed.stats` and skipped. TCP and
serial feeds reconnect with capped exponential backoff until `stop` is set.

    >>> stop = threading.Event()
    >>> feed = open_feed(RadarFeedConfig(id="arpa", format="nmea", transport="file",
    ...                                  path="RadarLogs.txt", pace="fast"), stop)   # doctest: +SKIP
    >>> decoder = make_decoder(feed.cfg)                                               # doctest: +SKIP
    >>> for line, received in feed:                                                    # doctest: +SKIP
    ...     reports = decoder.feed(line, received)

Receive times are the wall clock for live feeds and the recording's own times for files
(sentence times, tag blocks, pcap capture times), so a replay is deterministic.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from edge.errors import SourceError
from edge.radar.ais import AisDecoder
from edge.radar.asterix import AsterixDecoder
from edge.radar.config import RadarFeedConfig
from edge.radar.nmea import NmeaDecoder, SentenceError, frame, sentence_type, time_of_day
from edge.radar.pcap import read_pcap

log = logging.getLogger(__name__)

POLL_S = 0.2  # how often a blocked read looks at `stop`
BURST = 1024  # most datagrams read at once after a coalescing wait (the socket's buffer bounds their bytes)
# The kernel's receive time of each datagram (Linux: SO_TIMESTAMPNS, a struct timespec), so that
# datagrams read together after a coalescing wait keep the times they arrived at.
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35 if sys.platform.startswith("linux") else None)
_TIMESPEC = struct.Struct("@qq")
LOOKAHEAD_LINES = 20_000  # a recording's lines held back while looking for its first time


@dataclass
class FeedStats:
    """What a feed has delivered and dropped; `state` is connected / reconnecting / listening / ..."""

    state: str = "starting"
    messages: int = 0
    bytes: int = 0
    reconnects: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    last_error: str | None = None

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


class RadarFeed(Iterator[tuple[bytes, float]]):
    """The iterator `open_feed` returns; also carries the config and the feed's stats."""

    def __init__(self, cfg: RadarFeedConfig, stop: threading.Event, messages: Iterator[tuple[bytes, float]], stats: FeedStats):
        self.cfg, self.stop, self.stats = cfg, stop, stats
        self._messages = messages

    def __next__(self) -> tuple[bytes, float]:
        message = next(self._messages)
        self.stats.messages += 1
        self.stats.bytes += len(message[0])
        return message

    def close(self) -> None:
        close = getattr(self._messages, "close", None)
        if close:
            close()


BINARY_FORMATS = ("asterix", "cat240")


def make_decoder(cfg: RadarFeedConfig):
    """The decoder for a feed's format, set up from its config."""
    if cfg.format == "cat240":
        from edge.radar.video import RadarVideoDecoder

        return RadarVideoDecoder(cfg)
    if cfg.format == "display":
        from edge.radar.display import DisplayDecoder

        return DisplayDecoder(cfg)
    if cfg.format == "nmea":
        return NmeaDecoder(cfg.id, position=cfg.position)
    if cfg.format == "ais":
        return AisDecoder(cfg.id)
    return AsterixDecoder(cfg.id, sensor_position=cfg.position, cat010_edition=cfg.cat010_edition)


def open_feed(cfg: RadarFeedConfig, stop: threading.Event, *, clock: Callable[[], float] = time.time) -> RadarFeed:
    """Open the feed `cfg` names; iterate it for (message, receive time) until `stop` is set."""
    stats = FeedStats()
    if cfg.transport == "udp":
        messages = _udp(cfg, stop, stats, clock, _udp_socket(cfg))
    elif cfg.transport == "tcp":
        messages = _tcp(cfg, stop, stats, clock)
    elif cfg.transport == "serial":
        messages = _serial(cfg, stop, stats, clock)
    elif cfg.transport == "frames":
        messages = _frames(cfg, stop, stats, clock)
    else:
        messages = _file(cfg, stop, stats, clock)
    return RadarFeed(cfg, stop, messages, stats)


# --- framing -------------------------------------------------------------------------------------


class LineSplitter:
    """Bytes in, lines out (without CR/LF); a line longer than `max_bytes` is counted and dropped."""

    def __init__(self, max_bytes: int, stats: FeedStats):
        self.max_bytes, self.stats = max_bytes, stats
        self._buf = bytearray()
        self._skipping = False  # inside an over-long line: drop up to its end

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buf += chunk
        lines = []
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > self.max_bytes:
                    if not self._skipping:
                        self.stats.drop("line too long")
                    self._skipping = True
                    self._buf.clear()
                return lines
            line = bytes(self._buf[:nl]).rstrip(b"\r")
            del self._buf[: nl + 1]
            if self._skipping:
                self._skipping = False
                continue
            if len(line) > self.max_bytes:
                self.stats.drop("line too long")
            elif line.strip():
                lines.append(line)

    def flush(self) -> list[bytes]:
        """What is left at the end of a stream (a last line without its newline)."""
        line = bytes(self._buf).rstrip(b"\r")
        self._buf.clear()
        skipping, self._skipping = self._skipping, False
        return [line] if line.strip() and not skipping and len(line) <= self.max_bytes else []


class AsterixStreamFramer:
    """A byte stream (TCP, raw file) cut into ASTERIX data blocks by their LEN fields.

    A LEN below 3 or above the limit means the stream lost its framing; `feed` then raises
    ValueError and the caller starts over (reconnects), since no later byte can be trusted.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buf += chunk
        blocks = []
        while len(self._buf) >= 3:
            length = int.from_bytes(self._buf[1:3], "big")
            if length < 3 or length > self.max_bytes:
                self._buf.clear()
                raise ValueError("ASTERIX stream out of step")
            if len(self._buf) < length:
                break
            blocks.append(bytes(self._buf[:length]))
            del self._buf[:length]
        return blocks

    @property
    def pending(self) -> int:
        return len(self._buf)


# --- UDP -----------------------------------------------------------------------------------------


def _udp_socket(cfg: RadarFeedConfig) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:  # radar bursts (a scan's plots at once) overrun the default 200 kB buffer
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        except OSError:
            pass
        if cfg.multicast_group:
            # bound to the group on Linux, the socket gets only that group's datagrams on the port
            sock.bind((cfg.multicast_group if sys.platform.startswith("linux") else "", cfg.port))
            mreq = struct.pack("4s4s", socket.inet_aton(cfg.multicast_group), socket.inet_aton(cfg.multicast_interface))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        else:
            sock.bind((cfg.host, cfg.port))
    except OSError as e:
        sock.close()
        where = f"{cfg.multicast_group or cfg.host}:{cfg.port}"
        raise SourceError(f"radar feed {cfg.id}: cannot listen on udp {where} ({e.strerror or e})") from None
    sock.settimeout(POLL_S)
    if cfg.coalesce_s > 0 and _SO_TIMESTAMPNS is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        except OSError:  # no kernel times: datagrams read together share the time they were read
            pass
    return sock


def _kernel_time(ancdata) -> float | None:
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            sec, nsec = _TIMESPEC.unpack_from(data)
            return sec + nsec * 1e-9
    return None


def _burst(sock: socket.socket, size: int, anc: int, stats: FeedStats) -> list[tuple]:
    """The datagrams waiting in the socket now (at most BURST), without blocking."""
    out = []
    # Non-blocking for the burst: with a timeout set, Python polls before each read and would
    # wait for the next datagram instead of saying that none is there.
    sock.setblocking(False)
    try:
        while len(out) < BURST:
            try:
                out.append(sock.recvmsg(size, anc))
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                stats.last_error = str(e)
                break
    finally:
        sock.settimeout(POLL_S)
    return out


def _udp(cfg: RadarFeedConfig, stop: threading.Event, stats: FeedStats, clock,
         sock: socket.socket) -> Iterator[tuple[bytes, float]]:
    """A UDP feed's messages. With `coalesce_s`, a datagram is followed by a wait of that long and
    everything that came meanwhile is read at once: a radar sends a datagram per target report
    (hundreds a second), and a thread woken for each one costs a context switch, the GIL and cold
    caches every time, more than decoding the report (measured beside the camera's loop: see the
    README). The messages of a burst are yielded back to back, each with its kernel receive time
    on the feed's clock."""
    stats.state = "listening"
    text = cfg.format not in BINARY_FORMATS
    size = cfg.max_message_bytes + 1
    anc = socket.CMSG_SPACE(_TIMESPEC.size) if cfg.coalesce_s > 0 and _SO_TIMESTAMPNS is not None else 0
    backlog = False  # the last burst filled up: read on without waiting
    try:
        while not stop.is_set():
            try:
                batch = [sock.recvmsg(size, anc)]
            except (TimeoutError, socket.timeout):
                continue
            except OSError as e:  # e.g. ICMP errors surfacing on the socket: note, go on
                stats.last_error = str(e)
                continue
            if cfg.coalesce_s > 0:
                if not backlog:
                    stop.wait(cfg.coalesce_s)  # the next datagrams queue in the socket meanwhile
                batch += _burst(sock, size, anc, stats)
                backlog = len(batch) > BURST
            now, wall = clock(), time.time()
            for datagram, ancdata, _flags, _address in batch:
                arrived = _kernel_time(ancdata) if anc else None
                received = now if arrived is None else now - max(0.0, wall - arrived)
                if len(datagram) > cfg.max_message_bytes:
                    stats.drop("datagram too long")
                    continue
                if not text:
                    yield datagram, received
                    continue
                for line in datagram.splitlines():  # NMEA over UDP: one or more sentences per datagram
                    if line.strip():
                        yield line, received
    finally:
        sock.close()
        stats.state = "closed"


# --- TCP and serial: streams that drop and come back ---------------------------------------------


def _backoff(cfg: RadarFeedConfig) -> Iterator[float]:
    wait = cfg.reconnect_min_s
    while True:
        yield wait
        wait = min(wait * 2.0, cfg.reconnect_max_s)


def _reconnecting(cfg: RadarFeedConfig, stop: threading.Event, stats: FeedStats, clock,
                  connect) -> Iterator[tuple[bytes, float]]:
    """A link's messages across reconnects: `connect()` returns (read, close) or raises OSError
    (the reason goes to `last_error`); retried with capped backoff, reset by a link that worked."""
    waits = _backoff(cfg)
    connected_before = False
    while not stop.is_set():
        try:
            read, close = connect()
        except OSError as e:
            stats.state, stats.last_error = "reconnecting", str(e)
            stop.wait(next(waits))
            continue
        if connected_before:
            stats.reconnects += 1
        connected_before = True
        stats.state = "connected"
        waits = _backoff(cfg)  # a connection that worked resets the backoff
        try:
            yield from _stream(cfg, stop, stats, clock, read)
        finally:
            close()
        if not stop.is_set():
            stats.state = "reconnecting"
            stop.wait(next(waits))
    stats.state = "closed"


def _tcp(cfg: RadarFeedConfig, stop: threading.Event, stats: FeedStats, clock) -> Iterator[tuple[bytes, float]]:
    def connect():
        try:
            sock = socket.create_connection((cfg.host, cfg.port), timeout=3.0)
        except OSError as e:
            raise OSError(f"connect: {e.strerror or e}") from e
        log.info("radar feed %s: connected to %s:%s", cfg.id, cfg.host, cfg.port)
        sock.settimeout(POLL_S)
        return (lambda: _recv(sock)), sock.close

    return _reconnecting(cfg, stop, stats, clock, connect)


def _recv(sock: socket.socket) -> bytes | None:
    """Some bytes; b'' at EOF; None when nothing came within the poll interval."""
    try:
        return sock.recv(65536)
    except (TimeoutError, socket.timeout):
        return None


def _serial(cfg: RadarFeedConfig, stop: threading.Event, stats: FeedStats, clock) -> Iterator[tuple[bytes, float]]:
    import serial  # pyserial: only serial feeds need it

    def connect():
        try:
            port = serial.Serial(cfg.device, cfg.baudrate, timeout=POLL_S)
        except (serial.SerialException, OSError, ValueError) as e:
            raise OSError(f"open: {e}") from e

        def read() -> bytes | None:
            try:
                data = port.read(max(1, min(port.in_waiting, 65536)))
            except (serial.SerialException, OSError, TypeError) as e:  # unplugged: a reconnect
                raise ConnectionError(str(e)) from e
            return data or None

        def close() -> None:
            try:
                port.close()
            except Exception:  # noqa: BLE001 - closing a port that vanished
                pass

        return read, close

    return _reconnecting(cfg, stop, stats, clock, connect)


def _stream(cfg: RadarFeedConfig, stop: threading.Event, stats: FeedStats, clock, read) -> Iterator[tuple[bytes, float]]:
    """One connection's messages, until EOF, an error or `stop`; the caller reconnects."""
    lines = LineSplitter(cfg.max_message_bytes, stats) if cfg.format != "asterix" else None
    blocks = AsterixStreamFramer(cfg.max_message_bytes) if cfg.format == "asterix" else None
    while not stop.is_set():
        try:
            chunk = read()
        except (OSError, ConnectionError) as e:
            stats.last_error = str(e)
            return
        if chunk is None:
            continue
        if chunk == b"":
            stats.last_error = "closed by the sender"
            return
        received = clock()
        if lines is not None:
            for line in lines.feed(chunk):
                yield line, received
        else:
            try:
                for block in blocks.feed(chunk):  # type: ignore[union-attr]
                    yield block, received
            except ValueError:
                stats.drop("ASTERIX stream out of step")
                return  # reconnect: a fresh connection starts on a block boundary


# --- files ---------------------------------------------------------------------------------------

_PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a")


def _file(cfg: RadarFeedConfig, stop: threading.Event, stats: FeedStats, clock) -> Iterator[tuple[bytes, float]]:
    path = Path(cfg.path)  # type: ignore[arg-type]
    if not path.is_file():
        raise SourceError(f"radar feed {cfg.id}: {path} is not a file" if path.exists() else f"{path}: no such file")
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as e:
        raise SourceError(f"{path}: cannot read ({e.strerror or e})") from None
    if head in _PCAP_MAGICS:
        timed = _pcap_messages(cfg, stats, path)
    elif cfg.format in BINARY_FORMATS:
        timed = _raw_asterix(cfg, stats, path, clock)
    else:
        timed = _text_messages(cfg, stats, path, clock)
    stats.state = "replaying"
    return _paced(timed, cfg.pace == "recorded", stop, stats, clock)


def _paced(timed: Iterator[tuple[bytes, float | None]], recorded: bool, stop: threading.Event, stats: FeedStats,
           clock: Callable[[], float]) -> Iterator[tuple[bytes, float]]:
    """Messages at their recorded times' pace (or at once); a message without a time is not paced."""
    start_rec = start_wall = None
    for message, t in timed:
        if stop.is_set():
            break
        if t is None:  # a recording with no times at all: delivered at once
            yield message, clock()
            continue
        if recorded:
            now = time.monotonic()
            if start_rec is None or t < start_rec:  # first message, or the recording's clock went back
                start_rec, start_wall = t, now
            delay = (t - start_rec) - (now - start_wall)  # type: ignore[operator]
            if delay > 0 and stop.wait(delay):
                break
        yield message, t
    stats.state = "finished"


def _frames(cfg: RadarFeedConfig, stop: threading.Event, stats: FeedStats, clock) -> Iterator[tuple[bytes, float]]:
    """A captured radar display: (BGR picture, wall time) per frame, through the camera sources."""
    from edge.radar.display import recording_start
    from edge.sources import ReconnectPolicy, open_source

    src = open_source(cfg.source, policy=ReconnectPolicy())
    if src.is_live:
        stats.state = "connected"

        def live() -> Iterator[tuple[bytes, float]]:
            try:
                for frame in src:
                    if stop.is_set():
                        break
                    yield frame.image, clock()
            finally:
                src.close()
                stats.state = "closed"

        return live()
    start = recording_start(cfg)
    start = clock() if start != start else start  # NaN: no file time to go by

    def recorded() -> Iterator[tuple[bytes, float | None]]:
        try:
            for frame in src:
                yield frame.image, start + frame.timestamp
        finally:
            src.close()

    stats.state = "replaying"
    return _paced(recorded(), cfg.pace == "recorded", stop, stats, clock)


def _pcap_messages(cfg: RadarFeedConfig, stats: FeedStats, path: Path) -> Iterator[tuple[bytes, float | None]]:
    skipped: dict[str, int] = {}
    packets = read_pcap(path, port=cfg.port, skipped=skipped)
    first = next(packets, None)  # read_pcap checks the header on its first step: no capture fails here, at open

    def gen() -> Iterator[tuple[bytes, float | None]]:
        try:
            if first is None:
                return
            for t, payload in _chain(first, packets):
                if len(payload) > cfg.max_message_bytes:
                    stats.drop("datagram too long")
                elif cfg.format in BINARY_FORMATS:
                    yield payload, t
                else:  # NMEA/AIS captured off the network: one or more lines per datagram
                    for line in payload.splitlines():
                        if line.strip():
                            yield line, t
        finally:
            for reason, n in skipped.items():
                stats.dropped[f"pcap: {reason}"] = n

    return gen()


def _chain(first: tuple[float, bytes], rest: Iterator[tuple[float, bytes]]) -> Iterator[tuple[float, bytes]]:
    yield first
    yield from rest


def _raw_asterix(cfg: RadarFeedConfig, stats: FeedStats, path: Path, clock) -> Iterator[tuple[bytes, float | None]]:
    """A file of concatenated data blocks (no times in it): each block is one message."""
    framer = AsterixStreamFramer(cfg.max_message_bytes)
    with path.open("rb") as f:
        while chunk := f.read(1 << 16):
            try:
                for block in framer.feed(chunk):
                    yield block, None
            except ValueError:
                stats.drop("ASTERIX stream out of step")
                return
    if framer.pending:
        stats.drop("truncated last block")


def _text_messages(cfg: RadarFeedConfig, stats: FeedStats, path: Path, clock) -> Iterator[tuple[bytes, float | None]]:
    """NMEA/AIS text with the time each line was recorded at, from the recording's own clock.

    Lines before the first time the recording states are held back (up to LOOKAHEAD_LINES) and
    given that first time; a recording that never states one is delivered without times.
    """
    rec = RecordedClock()
    splitter = LineSplitter(cfg.max_message_bytes, stats)
    held: list[bytes] = []
    with path.open("rb") as f:
        while chunk := f.read(1 << 16):
            for line in splitter.feed(chunk):
                if line.startswith(b"#"):  # comments in annotated logs (gpsd's test files)
                    continue
                t = rec.update(line)
                if rec.now is None:
                    held.append(line)
                    if len(held) < LOOKAHEAD_LINES:
                        continue
                    yield from ((h, None) for h in held)
                    held.clear()
                    continue
                if held:
                    yield from ((h, rec.now) for h in held)
                    held.clear()
                yield line, (t if t is not None else rec.now)
        for line in splitter.flush():
            if not line.startswith(b"#"):
                rec.update(line)
                held.append(line)
    yield from ((h, rec.now) for h in held)


class RecordedClock:
    """The UTC time a recording says it is, from its own sentences.

    RMC and ZDA carry the date and time; GGA/GLL the time of day (on the last date seen); an NMEA 4
    tag block's c: field the UNIX time. `now` is the latest of these (None before the first).
    """

    def __init__(self) -> None:
        self.now: float | None = None
        self._day: float | None = None

    def update(self, line: bytes) -> float | None:
        """The time this line states (and `now` moves to it), or None."""
        if b"RMC," not in line[:8] and b"ZDA," not in line[:8] and b"GGA," not in line[:8] \
                and b"GLL," not in line[:8] and not line.startswith(b"\\"):
            return None
        try:
            s = frame(line)
        except SentenceError:
            return None
        if s is None:
            return None
        t = self._time_of(s.text, s.tags)
        if t is not None:
            self.now = t
        return t

    def _time_of(self, text: str, tags: dict[str, str]) -> float | None:
        if "c" in tags:
            try:
                c = float(tags["c"])
                return c / 1000.0 if c > 1e11 else c  # some receivers write milliseconds
            except ValueError:
                pass
        kind = sentence_type(text)
        f = text.split(",")
        try:
            if kind == "RMC" and len(f) > 9 and len(f[9]) == 6 and f[9].isdigit():
                yy = int(f[9][4:])
                day = calendar.timegm(dt.date(yy + (1900 if yy >= 80 else 2000), int(f[9][2:4]), int(f[9][:2])).timetuple())
                return self._on_day(day, time_of_day(f[1]))
            if kind == "ZDA" and len(f) > 4:
                day = calendar.timegm(dt.date(int(f[4]), int(f[3]), int(f[2])).timetuple())
                return self._on_day(day, time_of_day(f[1]))
            if kind in ("GGA", "GLL") and self._day is not None:
                tod = time_of_day(f[1] if kind == "GGA" else (f[5] if len(f) > 5 else ""))
                if tod is not None:
                    t = self._day + tod
                    if self.now is not None and self.now - t > 43200:  # past midnight before the next RMC
                        t += 86400
                    return t
        except (ValueError, SentenceError):
            return None
        return None

    def _on_day(self, day: float, tod: float | None) -> float | None:
        self._day = day
        return None if tod is None else day + tod

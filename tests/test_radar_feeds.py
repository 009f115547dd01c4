"""Radar feeds over real sockets, a pseudo-terminal and files; their config; the `radar` command."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from conftest import free_port, run_cli
from edge.errors import SourceError
from edge.radar.config import RadarFeedConfig
from edge.radar.feeds import AsterixStreamFramer, FeedStats, LineSplitter, RecordedClock, make_decoder, open_feed

TTM = b"$RATTM,01,0.48,263.6,T,0.0,2.9,T,0.48,,N,1 (Broadband 4G - 2782 B),T,,134601,M*51"
TLL = b"$RATLL,01,5812.6870,N,01131.9502,E,1 (Broadband 4G - 2782 B),134601,T,*5F"


def collect(feed, n: int, timeout: float = 10.0) -> list[tuple[bytes, float]]:
    """The first n messages of a feed, iterated on a thread so a hung feed fails the test."""
    out: list[tuple[bytes, float]] = []

    def run():
        for message in feed:
            out.append(message)
            if len(out) >= n:
                break

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    feed.stop.set()
    t.join(2.0)
    assert len(out) >= n, f"got {len(out)} of {n} messages; stats {feed.stats}"
    return out


@pytest.fixture(scope="module")
def radar_log(data_dir: Path) -> Path:
    return data_dir / "radar" / "nmea" / "arpa" / "RadarLogs.txt"


# --- config -------------------------------------------------------------------------------------


def test_config_defaults_descriptions_and_refusals():
    cfg = RadarFeedConfig(id="arpa-1", format="nmea", transport="udp", port=10110)
    assert (cfg.range_sigma_m, cfg.bearing_sigma_deg, cfg.stale_s, cfg.max_message_bytes) == (10.0, 1.0, 30.0, 65_536)
    assert cfg.pace == "recorded" and cfg.position is None and cfg.host == "0.0.0.0"
    assert all(f.description for f in RadarFeedConfig.model_fields.values())
    refused = [
        dict(id="Bad Id", format="nmea", transport="udp", port=1),
        dict(id="a", format="nmea", transport="udp"),  # no port
        dict(id="a", format="nmea", transport="tcp", port=1),  # no server host
        dict(id="a", format="nmea", transport="serial"),  # no device
        dict(id="a", format="asterix", transport="serial", device="/dev/ttyS0"),
        dict(id="a", format="ais", transport="file"),  # no path
        dict(id="a", format="asterix", transport="udp", port=1, multicast_group="10.0.0.1"),
        dict(id="a", format="asterix", transport="tcp", host="h", port=1, multicast_group="239.1.1.1"),
        dict(id="a", format="nmea", transport="udp", port=1, position=(91.0, 0.0)),
        dict(id="a", format="nmea", transport="udp", port=1, typo=1),  # extra="forbid"
        dict(id="a", format="gpx", transport="udp", port=1),
        dict(id="a", format="nmea", transport="udp", port=1, reconnect_min_s=5, reconnect_max_s=1),
    ]
    for fields in refused:
        with pytest.raises(ValidationError):
            RadarFeedConfig(**fields)


# --- UDP ----------------------------------------------------------------------------------------


def test_udp_unicast_lines_and_oversized_datagrams():
    port = free_port()
    cfg = RadarFeedConfig(id="u", format="nmea", transport="udp", host="127.0.0.1", port=port, max_message_bytes=200,
                          coalesce_s=0)  # one datagram at a time, stamped by the feed's clock when read
    feed = open_feed(cfg, threading.Event(), clock=lambda: 42.0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        tx.sendto(b"X" * 500, ("127.0.0.1", port))  # over the limit: dropped, counted
        tx.sendto(TTM + b"\r\n" + TLL + b"\r\n", ("127.0.0.1", port))  # two sentences in one datagram
        tx.sendto(TTM, ("127.0.0.1", port))
        got = collect(feed, 3)
    assert got == [(TTM, 42.0), (TLL, 42.0), (TTM, 42.0)]
    assert feed.stats.dropped == {"datagram too long": 1} and feed.stats.messages == 3


def test_udp_bursts_are_read_at_once_each_datagram_with_its_own_receive_time():
    """With `coalesce_s` (the default, 0.04 s) a datagram is followed by a wait, and what came
    meanwhile is read at once, in order; each datagram keeps the time it arrived (the kernel's),
    on the feed's clock, and one too long is still counted and dropped."""
    assert RadarFeedConfig(id="u", format="nmea", transport="udp", port=1).coalesce_s == 0.04
    port = free_port()
    cfg = RadarFeedConfig(id="u", format="nmea", transport="udp", host="127.0.0.1", port=port, max_message_bytes=200,
                          coalesce_s=0.3)
    stop = threading.Event()
    feed = open_feed(cfg, stop, clock=lambda: time.time() + 1000.0)  # a clock 1000 s ahead of the wall
    got: list[tuple[bytes, float, float]] = []  # (line, receive time, wall time when the feed yielded it)

    def run():
        for line, received in feed:
            got.append((line, received, time.time()))
            if len(got) == 4:
                break

    reader = threading.Thread(target=run, daemon=True)
    reader.start()
    time.sleep(0.3)  # the reader waits in recvmsg
    sent = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        for k, payload in enumerate([TTM, b"X" * 500, TLL + b"\r\n" + TTM, TLL]):
            sent.append(time.time())
            tx.sendto(payload, ("127.0.0.1", port))
            time.sleep(0.05)
    reader.join(5)
    stop.set()
    assert [g[0] for g in got] == [TTM, TLL, TTM, TLL]
    yielded = [g[2] for g in got]
    assert max(yielded) - min(yielded) < 0.02, "the four came out as one burst"
    assert 0.25 < min(yielded) - sent[0] < 0.4, "right after the coalescing wait"
    arrived = [g[1] - 1000.0 for g in got]  # back on the wall clock
    for t, s in zip(arrived, [sent[0], sent[2], sent[2], sent[3]]):
        assert s - 0.002 < t < s + 0.02, "each line has its datagram's arrival time, not the read's"
    assert arrived[1] == arrived[2] and arrived[0] < arrived[1] < arrived[3]
    assert feed.stats.dropped == {"datagram too long": 1}


def test_udp_multicast_on_loopback():
    """A multicast ASTERIX feed joined on the loopback interface (IP_ADD_MEMBERSHIP on 127.0.0.1)."""
    group, port = "239.255.77.12", free_port()
    cfg = RadarFeedConfig(id="m", format="asterix", transport="udp", port=port, multicast_group=group,
                          multicast_interface="127.0.0.1")
    feed = open_feed(cfg, threading.Event())
    block = bytes.fromhex("300030fdf70219c9356d4da0c5aff1e0020005283c660c10c236d4182001c0780031bc0000400deb07b9582e410020f5")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        tx.sendto(b"unicast to the port, not the group", ("127.0.0.1", port))  # bound to the group: not delivered
        tx.sendto(block, (group, port))
        [(datagram, received)] = collect(feed, 1)
    assert datagram == block and abs(received - time.time()) < 5
    [r] = make_decoder(cfg).feed(datagram, received)
    assert r.target == "25/201/3563"


def test_udp_port_in_use_is_a_one_line_error():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with pytest.raises(SourceError, match=f"cannot listen on udp 127.0.0.1:{port}"):
            open_feed(RadarFeedConfig(id="u", format="nmea", transport="udp", host="127.0.0.1", port=port), threading.Event())


# --- TCP ----------------------------------------------------------------------------------------


class FlakyServer:
    """A TCP server that sends some lines and hangs up, is away for a while, then comes back."""

    def __init__(self, sessions: list[list[bytes]], away_s: float = 0.8):
        self.port = free_port()
        self.sessions, self.away_s = sessions, away_s
        self.accepted = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        for i, lines in enumerate(self.sessions):
            if i:
                time.sleep(self.away_s)  # nobody listening: connects are refused meanwhile
            with socket.create_server(("127.0.0.1", self.port)) as srv:
                srv.settimeout(10)
                conn, _ = srv.accept()
                self.accepted += 1
                with conn:
                    for chunk in lines:
                        conn.sendall(chunk)
                        time.sleep(0.01)


def test_tcp_reconnects_after_the_server_drops_and_comes_back():
    server = FlakyServer([[TTM + b"\r\n", TLL[:30], TLL[30:] + b"\r\n"], [b"partial line lost at hang-up", ],
                          [TTM + b"\n" + TLL + b"\n"]])
    time.sleep(0.1)
    cfg = RadarFeedConfig(id="t", format="nmea", transport="tcp", host="127.0.0.1", port=server.port,
                          reconnect_min_s=0.1, reconnect_max_s=0.4)
    feed = open_feed(cfg, threading.Event())
    got = [m for m, _ in collect(feed, 4, timeout=20)]
    assert got == [TTM, TLL, TTM, TLL]  # a line split across reads is joined; a torn one is not delivered
    assert server.accepted == 3 and feed.stats.reconnects == 2
    assert feed.stats.last_error  # why it reconnected (refused / closed by the sender)


def test_serial_feed_reads_sentences_from_a_terminal_device():
    """A serial radar through a pseudo-terminal (the kernel's tty layer, as a USB-serial port
    would be): lines split across writes are joined; a missing device is retried, not fatal."""
    import tty

    controller, device = os.openpty()
    tty.setraw(device)
    cfg = RadarFeedConfig(id="s", format="nmea", transport="serial", device=os.ttyname(device), baudrate=4800,
                          reconnect_min_s=0.1, reconnect_max_s=0.4)
    feed = open_feed(cfg, threading.Event())

    def talk():
        time.sleep(0.3)
        os.write(controller, TTM + b"\r\n" + TLL[:20])
        time.sleep(0.1)
        os.write(controller, TLL[20:] + b"\r\n")

    threading.Thread(target=talk, daemon=True).start()
    got = [m for m, _ in collect(feed, 2, timeout=10)]
    assert got == [TTM, TLL] and feed.stats.state == "connected"
    os.close(controller)
    os.close(device)

    gone = open_feed(cfg.model_copy(update={"device": "/dev/zastava-no-such-port"}), stop := threading.Event())
    waiter = threading.Thread(target=lambda: list(gone), daemon=True)
    waiter.start()
    time.sleep(0.5)
    assert gone.stats.state == "reconnecting" and gone.stats.last_error.startswith("open: ")
    stop.set()
    waiter.join(3)
    assert not waiter.is_alive() and gone.stats.state == "closed"


def test_asterix_over_tcp_is_cut_into_blocks_and_a_broken_stream_reconnects():
    block = bytes.fromhex("300030fdf70219c9356d4da0c5aff1e0020005283c660c10c236d4182001c0780031bc0000400deb07b9582e410020f5")
    server = FlakyServer([[block[:10], block[10:] + block[:5], block[5:]], [b"\x30\x00\x01garbage"], [block]], away_s=0.3)
    time.sleep(0.1)
    cfg = RadarFeedConfig(id="a", format="asterix", transport="tcp", host="127.0.0.1", port=server.port,
                          reconnect_min_s=0.1, reconnect_max_s=0.2)
    feed = open_feed(cfg, threading.Event())
    got = [m for m, _ in collect(feed, 3, timeout=20)]
    assert got == [block, block, block]
    assert feed.stats.dropped == {"ASTERIX stream out of step": 1}


def test_tcp_backoff_is_capped_and_stop_ends_the_feed_promptly():
    port = free_port()  # nothing listens
    cfg = RadarFeedConfig(id="t", format="nmea", transport="tcp", host="127.0.0.1", port=port,
                          reconnect_min_s=0.05, reconnect_max_s=0.1)
    stop = threading.Event()
    feed = open_feed(cfg, stop)
    t = threading.Thread(target=lambda: list(feed), daemon=True)
    t.start()
    time.sleep(1.0)
    assert feed.stats.state == "reconnecting" and "connect" in (feed.stats.last_error or "")
    t0 = time.monotonic()
    stop.set()
    t.join(2.0)
    assert not t.is_alive() and time.monotonic() - t0 < 1.0


# --- serial (a pseudo-terminal stands in for the port) --------------------------------------------


def test_serial_feed_reads_lines_from_a_pty():
    master, slave = os.openpty()
    try:
        cfg = RadarFeedConfig(id="s", format="nmea", transport="serial", device=os.ttyname(slave), baudrate=38400)
        feed = open_feed(cfg, threading.Event())
        writer = threading.Timer(0.3, lambda: os.write(master, TTM + b"\r\n$GP" + b"\r\n" + TLL + b"\r\n"))
        writer.start()
        got = [m for m, _ in collect(feed, 3)]
        assert got == [TTM, b"$GP", TLL]
        assert feed.stats.state in ("connected", "closed")
    finally:
        os.close(master)
        os.close(slave)


# --- files --------------------------------------------------------------------------------------


def test_file_replay_at_recorded_pace_takes_the_recorded_time(radar_log: Path, tmp_path: Path):
    lines = radar_log.read_bytes().split(b"\r\n")
    # from the RMC of 13:46:01 to the one before the RMC of 13:46:04: three recorded seconds
    start = lines.index(next(l for l in lines if l.startswith(b"$GPRMC,134601")))
    end = lines.index(next(l for l in lines if l.startswith(b"$GPRMC,134604")))
    sliced = tmp_path / "slice.nmea"
    sliced.write_bytes(b"\r\n".join(lines[start : end + 1]) + b"\r\n")
    cfg = RadarFeedConfig(id="f", format="nmea", transport="file", path=sliced, pace="recorded")
    t0 = time.monotonic()
    got = list(open_feed(cfg, threading.Event()))
    took = time.monotonic() - t0
    assert len(got) == end - start + 1
    t_first, t_last = got[0][1], got[-1][1]
    assert t_last - t_first == 3.0 and 2.8 <= took <= 4.0, took
    fast = list(open_feed(cfg.model_copy(update={"pace": "fast"}), threading.Event()))
    assert fast == got  # the same messages and recorded times, only sooner


def test_whole_log_replayed_fast_has_the_recordings_times(radar_log: Path):
    cfg = RadarFeedConfig(id="f", format="nmea", transport="file", path=radar_log, pace="fast")
    feed = open_feed(cfg, threading.Event())
    dec = make_decoder(cfg)
    times = []
    for line, received in feed:
        times.append(received)
        dec.feed(line, received)
    assert len(times) == 56_579 and times == sorted(times)
    assert times[0] == 1438004761.0  # 2015-07-27 13:46:01 UTC, the first RMC; the lines before it get its time
    assert dec.stats.reports == 2932 and dec.stats.errors == {"missing checksum": 1}
    assert feed.stats.state == "finished"


def test_pcap_and_raw_asterix_files(data_dir: Path):
    asterix = data_dir / "radar" / "asterix"
    cfg = RadarFeedConfig(id="p", format="asterix", transport="file", path=asterix / "cat_034_048.pcap", pace="fast")
    got = list(open_feed(cfg, threading.Event()))
    assert len(got) == 100 and got[0][1] == pytest.approx(1462433756.50891)
    only = list(open_feed(cfg.model_copy(update={"port": 22113}), threading.Event()))
    assert 0 < len(only) < 100
    t0 = time.monotonic()
    paced = list(open_feed(cfg.model_copy(update={"pace": "recorded"}), threading.Event()))
    assert paced == got and 0.35 <= time.monotonic() - t0 <= 1.5  # the capture spans 0.44 s
    raw = RadarFeedConfig(id="r", format="asterix", transport="file", path=asterix / "cat048.raw", pace="fast")
    [(block, _)] = list(open_feed(raw, threading.Event()))
    assert block == (asterix / "cat048.raw").read_bytes()
    with pytest.raises(SourceError, match="no such file"):
        open_feed(raw.model_copy(update={"path": asterix / "missing.pcap"}), threading.Event())


def test_ais_file_times_come_from_its_gps_sentences(data_dir: Path):
    path = data_dir / "radar" / "nmea" / "ais" / "signalk" / "nais400-merrimac.log"
    cfg = RadarFeedConfig(id="ais", format="ais", transport="file", path=path, pace="fast")
    dec = make_decoder(cfg)
    reports = [r for line, t in open_feed(cfg, threading.Event()) for r in dec.feed(line, t)]
    assert len(reports) == 555 and dec.stats.errors == {}
    # the log runs 2014-04-16 20:02:54 .. 20:03:10 UTC (its RMC/GLL); AIS times are those moved to each message's second
    assert all(1397678500 <= r.time <= 1397678600 for r in reports)


def test_line_splitter_and_framer_limits():
    stats = FeedStats()
    s = LineSplitter(10, stats)
    assert s.feed(b"abc\r\nlonger than ten") == [b"abc"]
    assert s.feed(b" bytes\nok\n") == [b"ok"]
    assert stats.dropped == {"line too long": 1}
    assert s.feed(b"tail") == [] and s.flush() == [b"tail"]
    f = AsterixStreamFramer(100)
    assert f.feed(b"\x30\x00\x05ab\x30") == [b"\x30\x00\x05ab"] and f.pending == 1
    with pytest.raises(ValueError):
        f.feed(b"\x00\x02")


def test_recorded_clock_reads_rmc_zda_gga_and_tag_blocks():
    c = RecordedClock()
    assert c.update(b"$GPGGA,134601,5812.7405,N,01132.8508,E,1,08,1.63,-7,M,40.4,M,,*47") is None  # no date yet
    assert c.update(b"$GPZDA,134601,27,07,2015,-01,00*61") == 1438004761.0
    assert c.update(b"$GPGGA,134602,5812.7405,N,01132.8510,E,1,09,0.95,-7,M,40.4,M,,*44") == 1438004762.0
    assert c.update(b"\\c:1438004800*00\\!AIVDM,1,1,,B,13U4vF0P001d<UnEeSmQ>gv`04hd,0*4C") == 1438004800.0
    assert c.update(b"$GPRMC,134601,A,5812.7405,N,01132.8508,E,0.0,67.0,270715,2.9,E,A*2B") is None  # bad checksum


# --- the command ----------------------------------------------------------------------------------


def test_radar_decode_command(radar_log: Path, data_dir: Path):
    r = run_cli("radar", "decode", str(radar_log), "--format", "nmea", "--json")
    assert r.returncode == 0, r.stderr
    reports = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(reports) == 2932 and reports[1]["target"] == "01" and reports[1]["extra"]["sentence"] == "TTM"
    assert "56579 messages, 2932 reports, 4 targets; errors: missing checksum: 1" in r.stderr
    r = run_cli("radar", "decode", str(radar_log), "--format", "nmea", "--position", "58.2,11.5")
    assert r.returncode == 0 and r.stdout.splitlines()[1].startswith("2015-07-27T13:46:01.000Z radar 01 tracking ")
    pcap = data_dir / "radar" / "asterix" / "cat_034_048.pcap"
    r = run_cli("radar", "decode", str(pcap), "--format", "asterix")
    assert r.returncode == 0 and "100 messages, 128 reports" in r.stderr and len(r.stdout.splitlines()) == 128
    r = run_cli("radar", "decode", str(data_dir / "radar" / "nmea" / "ais" / "gpsd" / "ais-nmea.log"), "--format", "ais")
    assert r.returncode == 0 and "144 reports" in r.stderr


def test_radar_command_errors_are_one_line(radar_log: Path, tmp_path: Path):
    r = run_cli("radar", "decode", str(tmp_path / "missing.txt"), "--format", "nmea")
    assert r.returncode == 2 and r.stderr.strip().endswith("missing.txt: no such file")
    assert len(r.stderr.strip().splitlines()) == 1
    r = run_cli("radar", "decode", str(radar_log), "--format", "nmea", "--position", "north")
    assert r.returncode == 2 and "is not LAT,LON" in r.stderr
    junk = tmp_path / "junk.bin"
    junk.write_bytes(os.urandom(2000))
    r = run_cli("radar", "decode", str(junk), "--format", "nmea")
    assert r.returncode == 2 and "not one valid nmea message" in r.stderr


def test_radar_bench_command(radar_log: Path):
    r = run_cli("radar", "bench", str(radar_log), "--format", "nmea", "--runs", "3", "--json")
    assert r.returncode == 0, r.stderr
    figures = json.loads(r.stdout.splitlines()[-1])
    assert figures["messages"] == 56_579 and figures["reports"] == 2932 and figures["runs"] == 3
    assert figures["median_per_s"] >= 10_000, figures  # the goal: radar ingest keeps up with 10,000 sentences/s
    assert figures["store_median_per_s"] >= 10_000, figures  # and into the track store, as a node ingests
    assert figures["store_fast_path"] == 0  # own ship's place from the feed: the general path


def test_radar_bench_into_the_store_of_a_radar_at_the_post(radar_log: Path):
    """With the radar's place given, its TTMs take the store's fast path, and the figure says so."""
    r = run_cli("radar", "bench", str(radar_log), "--format", "nmea", "--runs", "1", "--position", "58.2123,11.5475",
                "--json")
    assert r.returncode == 0, r.stderr
    figures = json.loads(r.stdout.splitlines()[-1])
    assert figures["reports"] == 2932 and figures["store_median_per_s"] >= 10_000, figures
    assert figures["store_fast_path"] == 1466, figures  # every TTM (a TLL made each target first)


def test_a_radar_pictures_clock_times_its_live_feeds_and_its_expiry():
    """RadarPicture(clock=...): a live feed's receive times and the expiry thread's now come from
    that clock's now() (a node's clock; the fusion bench's scene clock), not the wall's."""
    from edge.config import parse_config
    from edge.fusion_bench import SceneClock
    from edge.radar.picture import RadarPicture

    port, clock = free_port(), SceneClock(1_000_000.0)
    pic = RadarPicture(parse_config(f"""
node: {{site: s, id: n, lat: 58.2123, lon: 11.5475}}
cameras: [{{id: c, source: x.mp4, detector: {{model: m}}}}]
radars: [{{id: arpa, format: nmea, transport: udp, host: 127.0.0.1, port: {port}, stale_s: 10, coalesce_s: 0}}]
""", "clock test"), clock=clock)
    pic.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            deadline = time.monotonic() + 5
            while not pic.store.targets() and time.monotonic() < deadline:
                tx.sendto(TTM, ("127.0.0.1", port))  # no date on the feed yet: dated by its receive time
                time.sleep(0.05)
        [target] = pic.store.targets()
        assert target.updated == 1_000_000.0
        clock.t += 5.0  # within stale_s on the picture's clock: the expiry thread keeps it
        time.sleep(1.5)
        assert pic.store.targets()
        clock.t += 60.0  # stale on the picture's clock (the wall has moved on by a second or two)
        deadline = time.monotonic() + 5
        while pic.store.targets() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pic.store.targets()
    finally:
        pic.stop()

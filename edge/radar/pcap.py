"""UDP payloads out of packet captures (pcap or pcapng), with their capture times.

ASTERIX recordings are usually captures of the radar's UDP (often multicast) stream. dpkt reads
the capture and the link, IPv4/IPv6 and UDP headers; the payload is cut to the UDP length field,
because short Ethernet frames are padded to 60 bytes and the padding is not payload.

    >>> for t, payload in read_pcap("cat_034_048.pcap"):   # doctest: +SKIP
    ...     decoder.feed(payload, t)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dpkt

from edge.errors import SourceError

_PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"}
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


def read_pcap(path: str | Path, *, port: int | None = None,
              skipped: dict[str, int] | None = None) -> Iterator[tuple[float, bytes]]:
    """(capture time, UDP payload) for every UDP datagram in the capture, optionally to one port.

    Frames that are not UDP, or whose headers are cut short, are skipped and counted in
    `skipped` (reason -> count) when given. A file that is no capture raises SourceError.
    """
    path = Path(path)
    try:
        f = path.open("rb")
    except OSError as e:
        raise SourceError(f"{path}: cannot open ({e.strerror or e})") from None
    with f:
        magic = f.read(4)
        f.seek(0)
        try:
            if magic in _PCAP_MAGICS:
                reader = dpkt.pcap.Reader(f)
            elif magic == _PCAPNG_MAGIC:
                reader = dpkt.pcapng.Reader(f)
            else:
                raise SourceError(f"{path}: not a pcap or pcapng capture")
        except (ValueError, dpkt.UnpackError) as e:
            raise SourceError(f"{path}: unreadable capture header ({e})") from None
        link = reader.datalink()
        frames = iter(reader)
        while True:
            try:
                ts, frame = next(frames)
            except StopIteration:
                return
            except (ValueError, dpkt.UnpackError, dpkt.NeedData):
                _count(skipped, "truncated capture")  # a capture cut mid-packet: what came before stands
                return
            payload = udp_payload(bytes(frame), link)
            if isinstance(payload, str):
                _count(skipped, payload)
                continue
            dport, data = payload
            if port is None or dport == port:
                yield float(ts), data


def udp_payload(frame: bytes, link: int) -> tuple[int, bytes] | str:
    """(destination port, payload) of a UDP frame, or why there is none."""
    try:
        if link == dpkt.pcap.DLT_EN10MB:
            ip = dpkt.ethernet.Ethernet(frame).data  # dpkt follows 802.1Q VLAN tags
        elif link == dpkt.pcap.DLT_LINUX_SLL:
            ip = dpkt.sll.SLL(frame).data
        elif link in (dpkt.pcap.DLT_RAW, 101):  # raw IP (LINKTYPE_RAW is 101 in files, 12/14 in some headers)
            ip = dpkt.ip.IP(frame) if frame[:1] and frame[0] >> 4 == 4 else dpkt.ip6.IP6(frame)
        elif link == dpkt.pcap.DLT_NULL or link == dpkt.pcap.DLT_LOOP:
            ip = dpkt.loopback.Loopback(frame).data
        else:
            return f"link type {link}"
    except (dpkt.UnpackError, dpkt.NeedData, ValueError, IndexError):
        return "bad frame"
    if not isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)):
        return "not IP"
    if isinstance(ip, dpkt.ip.IP) and ip.offset != 0:
        return "IP fragment"  # later fragments carry no UDP header; reassembly is not done here
    udp = ip.data
    if not isinstance(udp, dpkt.udp.UDP):
        return "not UDP"
    data = bytes(udp.data)
    length = udp.ulen - 8
    if length < 0 or length > len(data):
        return "truncated UDP"
    return udp.dport, data[:length]  # the UDP length, not the (padded) frame, says where the payload ends


def _count(counter: dict[str, int] | None, reason: str) -> None:
    if counter is not None:
        counter[reason] = counter.get(reason, 0) + 1

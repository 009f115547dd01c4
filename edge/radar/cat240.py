"""ASTERIX CAT240 (radar video transmission, edition 1.3): decode and encode.

A video message (I240/000 = 2) carries one radial: the azimuth span it covers (I240/040 with
the cell duration in nanoseconds, or I240/041 in femtoseconds), the first range cell, the cell
resolution and compression flag (I240/048: RES 1..6 = 1, 2, 4, 8, 16, 32 bits per cell; C =
compressed), the counts of valid octets and cells (I240/049) and the cells themselves in a video
block of low, medium or high data volume (I240/050/051/052: 4, 64 or 256 octets per repetition).
A video summary (I240/000 = 1) carries free text (I240/030). Both may carry I240/140, the UTC
time of day in 1/128 s. The range of cell k (0-based) is CELL_DUR x (START_RG + k) x c / 2.

What the specification leaves to an interface control document, and what is assumed here:
- compression (C = 1) is zlib (RFC 1950) over the packed cell octets; I240/049 NBVB is then the
  count of compressed octets, the rest of the block is padding;
- cells of 1, 2 and 4 bits are packed first cell in the most significant bits; cells of 16 and
  32 bits are big-endian, like every other ASTERIX field.

No maintained Python decoder covers every resolution and the compression flag (pycatzao reads
8/16/32-bit cells only and writes nothing), so CAT240 is written here from the specification,
reusing the item framing of edge.radar.asterix.

    >>> block = encode_video(VideoRadial(sac=1, sic=2, index=7, start_az_deg=0.0, end_az_deg=0.3515625,
    ...                      start_cell=0, cell_duration_s=100e-9, cells=np.arange(6, dtype=np.uint8)))
    >>> [r] = decode_block(block)
    >>> r.index, r.cells.tolist(), round(r.cell_m, 2)
    (7, [0, 1, 2, 3, 4, 5], 14.99)
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from edge.radar.asterix import AsterixError, explicit, fixed, repetitive, split_record

CATEGORY = 240
LIGHT_SPEED = 299_792_458.0
RESOLUTION_BITS = {1: 1, 2: 2, 3: 4, 4: 8, 5: 16, 6: 32}  # I240/048 RES -> bits per cell
BITS_RESOLUTION = {v: k for k, v in RESOLUTION_BITS.items()}
BLOCK_UNIT = {"050": 4, "051": 64, "052": 256}  # octets per repetition of each video block item
MAX_CELLS = 1 << 20  # cells per radial we accept (decompression stops there: no zlib bombs)
AZ_LSB = 360.0 / 65536.0

UAP = (
    fixed("010", 2), fixed("000", 1), fixed("020", 4), repetitive("030", 1), fixed("040", 12), fixed("041", 12),
    fixed("048", 2), fixed("049", 5), repetitive("050", 4), repetitive("051", 64), repetitive("052", 256),
    fixed("140", 3), explicit("RE"), explicit("SP"),
)
_FRN = {item.id: i for i, item in enumerate(UAP)}


class Cat240Error(AsterixError):
    """A CAT240 block or record that cannot be trusted; the message is the counted reason."""


@dataclass(frozen=True, slots=True)
class VideoSummary:
    sac: int
    sic: int
    text: str
    time_of_day: float | None = None


@dataclass(frozen=True, slots=True)
class VideoRadial:
    """One radial of video cells, consecutive in range from `start_cell`."""

    sac: int
    sic: int
    index: int  # I240/020 message sequence identifier
    start_az_deg: float
    end_az_deg: float
    start_cell: int
    cell_duration_s: float
    cells: np.ndarray  # uint8 / uint16 / uint32 amplitudes, nearest cell first
    bits: int = 8
    compressed: bool = False
    femto: bool = True  # I240/041 (femtoseconds) rather than I240/040 (nanoseconds)
    time_of_day: float | None = None
    block: str | None = None  # "050" | "051" | "052"; None: the smallest that fits (encoding)
    extra: dict = field(default_factory=dict)

    @property
    def cell_m(self) -> float:
        return self.cell_duration_s * LIGHT_SPEED / 2.0

    @property
    def mid_az_deg(self) -> float:
        span = (self.end_az_deg - self.start_az_deg) % 360.0
        return (self.start_az_deg + span / 2.0) % 360.0


# --- decoding -------------------------------------------------------------------------------------


def decode_block(data: bytes) -> list[VideoSummary | VideoRadial]:
    """The messages of one CAT240 data block; Cat240Error says why a block cannot be used."""
    try:
        return _decode_block(data)
    except Cat240Error:
        raise
    except AsterixError as e:  # the shared item framing's reasons (truncated items, FX past the end)
        raise Cat240Error(str(e)) from None


def _decode_block(data: bytes) -> list[VideoSummary | VideoRadial]:
    if len(data) < 3:
        raise Cat240Error("truncated block header")
    if data[0] != CATEGORY:
        raise Cat240Error(f"category {data[0]}, not 240")
    length = int.from_bytes(data[1:3], "big")
    if length < 4 or length > len(data):
        raise Cat240Error("block length past the datagram" if length > len(data) else "block length below 4")
    out: list[VideoSummary | VideoRadial] = []
    pos, end = 3, length
    while pos < end:
        raw, pos = split_record(data, pos, end, UAP, Cat240Error, "CAT240's items")
        out.append(_message(raw))
    return out


def _message(raw: dict[str, bytes]) -> VideoSummary | VideoRadial:
    if "010" not in raw or "000" not in raw:
        raise Cat240Error("no data source or message type")
    sac, sic = raw["010"][0], raw["010"][1]
    kind = raw["000"][0]
    tod = int.from_bytes(raw["140"], "big") / 128.0 if "140" in raw else None
    if kind == 1:
        text = raw.get("030", b"\x00")[1:]
        return VideoSummary(sac, sic, text.decode("ascii", errors="replace"), tod)
    if kind != 2:
        raise Cat240Error(f"message type {kind} unknown")
    for needed in ("020", "048", "049"):
        if needed not in raw:
            raise Cat240Error(f"video message without I240/{needed}")
    headers = [k for k in ("040", "041") if k in raw]
    blocks = [k for k in ("050", "051", "052") if k in raw]
    if len(headers) != 1:
        raise Cat240Error("video message needs exactly one of I240/040 and I240/041")
    if len(blocks) != 1:
        raise Cat240Error("video message needs exactly one of I240/050, /051 and /052")
    h = raw[headers[0]]
    start_az = int.from_bytes(h[0:2], "big") * AZ_LSB
    end_az = int.from_bytes(h[2:4], "big") * AZ_LSB
    start_rg = int.from_bytes(h[4:8], "big")
    cell_dur = int.from_bytes(h[8:12], "big") * (1e-9 if headers[0] == "040" else 1e-15)
    if cell_dur <= 0:
        raise Cat240Error("cell duration 0")
    compressed = bool(raw["048"][0] & 0x80)
    bits = RESOLUTION_BITS.get(raw["048"][1])
    if bits is None:
        raise Cat240Error(f"bit resolution {raw['048'][1]} unknown")
    nbvb = int.from_bytes(raw["049"][0:2], "big")
    nbcells = int.from_bytes(raw["049"][2:5], "big")
    if nbcells > MAX_CELLS:
        raise Cat240Error(f"{nbcells} cells in one radial, over the {MAX_CELLS} limit")
    payload = raw[blocks[0]][1:]
    if nbvb > len(payload):
        raise Cat240Error("more valid octets than the video block holds")
    octets = payload[:nbvb]
    if compressed:
        octets = _inflate(octets, (nbcells * bits + 7) // 8)
    if len(octets) * 8 < nbcells * bits:
        raise Cat240Error("fewer octets than cells")
    cells = unpack_cells(octets, bits, nbcells)
    return VideoRadial(sac, sic, int.from_bytes(raw["020"], "big"), start_az, end_az, start_rg, cell_dur, cells, bits,
                       compressed, headers[0] == "041", tod, blocks[0])


def _inflate(data: bytes, want: int) -> bytes:
    z = zlib.decompressobj()
    try:
        out = z.decompress(data, want + 1)
    except zlib.error:
        raise Cat240Error("compressed video block is not zlib") from None
    if len(out) > want and any(out[want:]):
        raise Cat240Error("compressed video block inflates past its cells")
    return out[:want]


def unpack_cells(octets: bytes, bits: int, count: int) -> np.ndarray:
    """Cell amplitudes out of packed octets (first cell in the high bits; wide cells big-endian)."""
    if bits == 8:
        return np.frombuffer(octets, np.uint8, count)
    if bits == 16:
        return np.frombuffer(octets, ">u2", count).astype(np.uint16)
    if bits == 32:
        return np.frombuffer(octets, ">u4", count).astype(np.uint32)
    b = np.frombuffer(octets, np.uint8, (count * bits + 7) // 8)
    if bits == 1:
        return np.unpackbits(b)[:count]
    shifts = np.arange(8 - bits, -1, -bits, dtype=np.uint8)  # 4-bit: 4, 0; 2-bit: 6, 4, 2, 0
    return ((b[:, None] >> shifts) & ((1 << bits) - 1)).reshape(-1)[:count].astype(np.uint8)


def pack_cells(cells: np.ndarray, bits: int) -> bytes:
    """The inverse of unpack_cells; values must fit in `bits`."""
    c = np.asarray(cells)
    if c.size and int(c.max()) >= (1 << bits):
        raise ValueError(f"a cell value {int(c.max())} does not fit in {bits} bits")
    if bits == 8:
        return c.astype(np.uint8).tobytes()
    if bits == 16:
        return c.astype(">u2").tobytes()
    if bits == 32:
        return c.astype(">u4").tobytes()
    per = 8 // bits
    padded = np.zeros(-(-c.size // per) * per, np.uint8)
    padded[:c.size] = c
    shifts = np.arange(8 - bits, -1, -bits, dtype=np.uint8)
    return (padded.reshape(-1, per) << shifts).sum(axis=1, dtype=np.uint8).tobytes()


# --- encoding (the scenario generator's side) -----------------------------------------------------


def _fspec(items: list[str]) -> bytes:
    frns = sorted(_FRN[i] for i in items)
    n = frns[-1] // 7 + 1
    out = bytearray(n)
    for frn in frns:
        out[frn // 7] |= 0x80 >> (frn % 7)
    for i in range(n - 1):
        out[i] |= 1  # FX: another FSPEC octet follows
    return bytes(out)


def _block(items: dict[str, bytes]) -> bytes:
    body = _fspec(list(items)) + b"".join(items[i] for i in sorted(items, key=_FRN.__getitem__))
    if len(body) + 3 > 0xFFFF:
        raise ValueError(f"a CAT240 block of {len(body) + 3} octets is over the 65535 limit")
    return bytes([CATEGORY]) + (len(body) + 3).to_bytes(2, "big") + body


def _tod(t: float | None) -> dict[str, bytes]:
    return {} if t is None else {"140": (int(round(t * 128.0)) % (86400 * 128)).to_bytes(3, "big")}


def encode_summary(summary: VideoSummary) -> bytes:
    text = summary.text.encode("ascii")[:255]
    return _block({"010": bytes([summary.sac, summary.sic]), "000": b"\x01",
                   "030": bytes([len(text)]) + text, **_tod(summary.time_of_day)})


def encode_video(r: VideoRadial) -> bytes:
    """One radial as a complete CAT240 data block (one record)."""
    octets = pack_cells(r.cells, r.bits)
    if r.compressed:
        octets = zlib.compress(octets, 6)
    nbvb = len(octets)
    block = r.block
    if block is None:
        block = next((b for b, cap in (("050", 255 * 4), ("051", 255 * 64), ("052", 254 * 256)) if nbvb <= cap), None)
        if block is None:
            raise ValueError(f"{nbvb} octets do not fit one CAT240 video block")
    unit = BLOCK_UNIT[block]
    rep = -(-nbvb // unit)
    if rep > 255:
        raise ValueError(f"{nbvb} octets do not fit I240/{block}")
    scale = 1e15 if r.femto else 1e9
    dur = int(round(r.cell_duration_s * scale))
    if not 0 < dur < 1 << 32:
        raise ValueError(f"cell duration {r.cell_duration_s} s does not fit I240/{'041' if r.femto else '040'}")
    az = lambda deg: int(round((deg % 360.0) / AZ_LSB)) % 65536  # noqa: E731
    header = az(r.start_az_deg).to_bytes(2, "big") + az(r.end_az_deg).to_bytes(2, "big") + \
        int(r.start_cell).to_bytes(4, "big") + dur.to_bytes(4, "big")
    items = {
        "010": bytes([r.sac, r.sic]), "000": b"\x02", "020": (r.index % (1 << 32)).to_bytes(4, "big"),
        "041" if r.femto else "040": header,
        "048": bytes([0x80 if r.compressed else 0, BITS_RESOLUTION[r.bits]]),
        "049": nbvb.to_bytes(2, "big") + int(len(r.cells)).to_bytes(3, "big"),
        block: bytes([rep]) + octets + bytes(rep * unit - nbvb),
        **_tod(r.time_of_day),
    }
    return _block(items)

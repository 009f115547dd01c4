"""ASTERIX (Eurocontrol) decoder: CAT048 monoradar and CAT010 surface-movement target reports.

A UDP datagram holds one or more data blocks: CAT (1 byte), LEN (2 bytes, big-endian, counting
the 3-byte header), then records. Each record starts with an FSPEC (bytes whose top 7 bits say
which items of the category's UAP follow, the low bit that another FSPEC byte follows), then the
items in UAP order. Every item must be stepped over by exactly its length, fixed, extended
(FX bits), repetitive, compound or explicit, or every later record is garbage; so a block with
anything inconsistent is refused whole and the rest of its datagram is not trusted.

CAT034 (radar service messages) is decoded too: it is short, and its I034/120 gives the radar's
own position, which places CAT048 plots on the map when no position is configured.

    >>> dec = AsterixDecoder("psr", sensor_position=(45.0, 16.0))
    >>> block = bytes.fromhex("300030fdf70219c9356d4da0c5aff1e0020005283c660c10c236d4182001c0780031bc0000400deb07b9582e410020f5")
    >>> [r] = dec.feed(block, received=1462433756.5)
    >>> r.target, round(r.range_m), round(r.bearing_deg, 3), r.name, round(r.speed_mps / KNOT, 3)
    ('25/201/3563', 366110, 340.137, 'DLH65A', 434.399)

No library does this: the maintained Python ASTERIX decoders are GPL (asterix_decoder from
CroatiaControl is a C extension, GPL-2.0; jASTERIX is C++ GPL-3.0), so the item formats are
written here from the Eurocontrol specifications (CAT048 ed. 1.2x, CAT010 ed. 1.1, CAT034 ed. 1.27).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from edge.geo import destination
from edge.radar.reports import KNOT, NAUTICAL_MILE, DecoderStats, TargetReport
from edge.radar.ttm_scan import dated

NM_PER_S = NAUTICAL_MILE  # metres per second in one NM/s (ASTERIX speeds are 2^-14 NM/s)
# ICAO 6-bit characters (Annex 10): 1-26 = A-Z, 32 = space, 48-57 = 0-9; the rest unused, shown as spaces
ICAO_CHARS = " " + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + " " * 21 + "0123456789" + " " * 6


class AsterixError(ValueError):
    """A block or record that cannot be trusted; its message is the counted reason."""


# --- item layouts: how long each item is --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    kind: Literal["fixed", "variable", "repetitive", "compound", "explicit"]
    size: int = 0  # fixed: bytes; repetitive: bytes per repetition
    subfields: tuple[Item | None, ...] = ()  # compound: one per primary-subfield bit, None = spare


def fixed(id: str, size: int) -> Item:
    return Item(id, "fixed", size)


def variable(id: str) -> Item:
    return Item(id, "variable")


def repetitive(id: str, size: int) -> Item:
    return Item(id, "repetitive", size)


def compound(id: str, *subfields: Item | None) -> Item:
    return Item(id, "compound", subfields=subfields)


def explicit(id: str) -> Item:
    return Item(id, "explicit")


def _length(data: bytes, pos: int, end: int, item: Item) -> int:
    """Bytes `item` takes at data[pos:]; AsterixError when it runs past `end`."""
    if pos >= end:
        raise AsterixError(f"item {item.id} truncated")
    kind = item.kind
    if kind == "fixed":
        n = item.size
    elif kind == "variable":
        n = 1
        while data[pos + n - 1] & 1:
            n += 1
            if pos + n > end:
                raise AsterixError(f"item {item.id} truncated")
    elif kind == "repetitive":
        n = 1 + data[pos] * item.size
    elif kind == "explicit":
        n = data[pos]
        if n < 1:
            raise AsterixError(f"item {item.id} has length 0")
    else:  # compound: a primary subfield with FX bits, then each present subfield in order
        primary = _length(data, pos, end, variable(item.id))
        n = primary
        for bit in _set_bits(data[pos : pos + primary]):
            sub = item.subfields[bit] if bit < len(item.subfields) else None
            if sub is None:
                raise AsterixError(f"item {item.id} has an undefined subfield")
            n += _length(data, pos + n, end, sub)
    if pos + n > end:
        raise AsterixError(f"item {item.id} truncated")
    return n


def _set_bits(fspec: bytes) -> list[int]:
    """Indexes (0-based, 7 per byte, FX bits skipped) of the bits set in an FSPEC-like field."""
    out = []
    for i, byte in enumerate(fspec):
        for b in range(7):
            if byte & (0x80 >> b):
                out.append(i * 7 + b)
    return out


def _subfield_parts(raw: bytes, item: Item) -> dict[int, bytes]:
    """A compound item's present subfields by index (the item's length was checked already)."""
    primary = _length(raw, 0, len(raw), variable(item.id))
    parts, pos = {}, primary
    for bit in _set_bits(raw[:primary]):
        sub = item.subfields[bit]
        assert sub is not None
        n = _length(raw, pos, len(raw), sub)
        parts[bit] = raw[pos : pos + n]
        pos += n
    return parts


# CAT048 monoradar target reports, UAP of editions 1.15-1.31 (FRN 1..28)
I048_130 = compound("130", *(fixed(s, 1) for s in ("SRL", "SRR", "SAM", "PRL", "PAM", "RPD", "APD")))
I048_120 = compound("120", fixed("CAL", 2), repetitive("RDS", 6))
CAT048_UAP: tuple[Item | None, ...] = (
    fixed("010", 2), fixed("140", 3), variable("020"), fixed("040", 4), fixed("070", 2), fixed("090", 2), I048_130,
    fixed("220", 3), fixed("240", 6), repetitive("250", 8), fixed("161", 2), fixed("042", 4), fixed("200", 4), variable("170"),
    fixed("210", 4), variable("030"), fixed("080", 2), fixed("100", 4), fixed("110", 2), I048_120, fixed("230", 2),
    fixed("260", 7), fixed("055", 1), fixed("050", 2), fixed("065", 1), fixed("060", 2), explicit("SP"), explicit("RE"),
)

# CAT010 surface movement (A-SMGCS, MLAT), UAP of edition 1.1; FRN 26 is spare
CAT010_UAP: tuple[Item | None, ...] = (
    fixed("010", 2), fixed("000", 1), variable("020"), fixed("140", 3), fixed("041", 8), fixed("040", 4), fixed("042", 4),
    fixed("200", 4), fixed("202", 4), fixed("161", 2), variable("170"), fixed("060", 2), fixed("220", 3), fixed("245", 7),
    repetitive("250", 8), fixed("300", 1), fixed("090", 2), fixed("091", 2), variable("270"), fixed("550", 1), fixed("310", 1),
    fixed("500", 4), repetitive("280", 2), fixed("131", 1), fixed("210", 2), None, explicit("SP"), explicit("RE"),
)
# Sensis' pre-standard edition 0.24 sends I010/202 as two 12-bit speeds in 3 bytes
CAT010_SENSIS_UAP = tuple(fixed("202", 3) if it is not None and it.id == "202" else it for it in CAT010_UAP)

# CAT034 radar service messages (north marker, sector crossing, status), edition 1.27
CAT034_UAP: tuple[Item | None, ...] = (
    fixed("010", 2), fixed("000", 1), fixed("030", 3), fixed("020", 1), fixed("041", 2),
    compound("050", fixed("COM", 1), None, None, fixed("PSR", 1), fixed("SSR", 1), fixed("MDS", 2)),
    compound("060", fixed("COM", 1), None, None, fixed("PSR", 1), fixed("SSR", 1), fixed("MDS", 1)),
    repetitive("070", 2), fixed("100", 8), fixed("110", 1), fixed("120", 8), fixed("090", 2), explicit("RE"), explicit("SP"),
)


# --- records and blocks -------------------------------------------------------------------------


@dataclass
class AsterixRecord:
    category: int
    raw: dict[str, bytes]  # item id -> its bytes, in FSPEC order
    items: dict[str, dict[str, Any]] = field(default_factory=dict)  # item id -> decoded values


@dataclass
class AsterixBlock:
    category: int
    length: int
    records: list[AsterixRecord]


@dataclass
class ParsedDatagram:
    blocks: list[AsterixBlock]  # the categories this module knows, fully parsed
    errors: list[str]  # why a block was refused (the rest of the datagram with it)
    unsupported: list[int]  # categories skipped whole, one entry per block


def parse_datagram(data: bytes, *, cat010_edition: str = "1.1") -> ParsedDatagram:
    """Split a datagram into data blocks and their records; decode the known categories."""
    out = ParsedDatagram([], [], [])
    pos, size = 0, len(data)
    while pos < size:
        if size - pos < 3:
            out.errors.append("truncated block header")
            break
        cat, length = data[pos], int.from_bytes(data[pos + 1 : pos + 3], "big")
        if length < 3 or pos + length > size:
            out.errors.append("block length past the datagram" if length >= 3 else "block length below 3")
            break
        spec = _CATEGORIES.get(cat)
        if spec is None:
            out.unsupported.append(cat)
            pos += length
            continue
        uap = CAT010_SENSIS_UAP if cat == 10 and cat010_edition != "1.1" else spec[0]
        try:
            records = _parse_records(data, pos + 3, pos + length, cat, uap, spec[1], cat010_edition)
        except AsterixError as e:
            out.errors.append(f"CAT{cat:03d}: {e}")
            break
        out.blocks.append(AsterixBlock(cat, length, records))
        pos += length
    return out


def split_record(data: bytes, pos: int, end: int, uap: tuple[Item | None, ...], error=AsterixError,
                 items: str = "the category's items") -> tuple[dict[str, bytes], int]:
    """One record's FSPEC and items from `pos`: (item id -> its bytes, where the next record starts).
    Every category frames its records this way; `error` and `items` name the category in refusals."""
    fspec_len = _length(data, pos, end, variable("FSPEC"))
    frns = _set_bits(data[pos : pos + fspec_len])
    if not frns:
        raise error("empty FSPEC")
    pos += fspec_len
    raw: dict[str, bytes] = {}
    for frn in frns:
        if frn >= len(uap):
            raise error(f"FSPEC longer than {items}")
        item = uap[frn]
        if item is None:
            raise error(f"undefined item FRN {frn + 1}")
        n = _length(data, pos, end, item)
        raw[item.id] = data[pos : pos + n]
        pos += n
    return raw, pos


def _parse_records(data: bytes, pos: int, end: int, cat: int, uap: tuple[Item | None, ...], decoders: dict,
                   edition: str) -> list[AsterixRecord]:
    records = []
    if pos == end:
        raise AsterixError("block without records")
    while pos < end:
        raw, pos = split_record(data, pos, end, uap)
        record = AsterixRecord(cat, raw)
        for item_id, value in raw.items():
            decode = decoders.get(item_id)
            try:
                record.items[item_id] = decode(value, edition) if decode else {"hex": value.hex().upper()}
            except (IndexError, ValueError, AssertionError) as e:  # a decoder that does not fit the bytes
                raise AsterixError(f"item {item_id} undecodable") from e
        records.append(record)
    return records


# --- field helpers ------------------------------------------------------------------------------


def _u(b: bytes) -> int:
    return int.from_bytes(b, "big")


def _s(b: bytes, bits: int | None = None) -> int:
    v = int.from_bytes(b, "big")
    bits = bits or 8 * len(b)
    v &= (1 << bits) - 1
    return v - (1 << bits) if v & (1 << (bits - 1)) else v


def _icao_text(b: bytes) -> str:
    v = _u(b)
    n = len(b) * 8 // 6
    return "".join(ICAO_CHARS[(v >> (6 * (n - 1 - i))) & 0x3F] for i in range(n))


def _code(b: bytes) -> dict[str, Any]:
    """Mode 3/A or 2 code word: V G L spare + 12-bit code (four octal digits)."""
    return {"V": b[0] >> 7, "G": (b[0] >> 6) & 1, "L": (b[0] >> 5) & 1, "code": f"{_u(b) & 0x0FFF:04o}"}


def _flight_level(b: bytes) -> dict[str, Any]:
    return {"V": b[0] >> 7, "G": (b[0] >> 6) & 1, "fl": _s(b, 14) / 4.0}


def _sac_sic(b: bytes, _e: str) -> dict[str, Any]:
    return {"sac": b[0], "sic": b[1]}


def _tod(b: bytes, _e: str) -> dict[str, Any]:
    return {"tod_s": _u(b) / 128.0}


def _mb_data(b: bytes, _e: str) -> dict[str, Any]:
    entries = [b[1 + 8 * i : 9 + 8 * i] for i in range(b[0])]
    return {"mb": [{"data": e[:7].hex().upper(), "bds": f"{e[7]:02X}"} for e in entries]}


def _track_number(b: bytes, _e: str) -> dict[str, Any]:
    return {"track_number": _u(b) & 0x0FFF}


def _address(b: bytes, _e: str) -> dict[str, Any]:
    return {"address": b.hex().upper()}


def _extents(b: bytes, layout: list[list[tuple[str, int]]]) -> dict[str, Any]:
    """An extended (FX) item: per octet, (name, bit width) from the top bit down, FX excluded."""
    out: dict[str, Any] = {}
    for octet, fields in zip(b, layout):
        shift = 8
        for name, width in fields:
            shift -= width
            if name:
                out[name] = (octet >> shift) & ((1 << width) - 1)
    return out


# CAT048 items
def _i048_020(b: bytes, _e: str) -> dict[str, Any]:
    return _extents(b, [[("TYP", 3), ("SIM", 1), ("RDP", 1), ("SPI", 1), ("RAB", 1)],
                        [("TST", 1), ("ERR", 1), ("XPP", 1), ("ME", 1), ("MI", 1), ("FOE_FRI", 2)],
                        [("ADSB_EP", 1), ("ADSB_VAL", 1), ("SCN_EP", 1), ("SCN_VAL", 1), ("PAI_EP", 1), ("PAI_VAL", 1)]])


def _i048_040(b: bytes, _e: str) -> dict[str, Any]:
    return {"rho_nm": _u(b[:2]) / 256.0, "theta_deg": _u(b[2:]) * 360.0 / 65536.0}


def _i048_130(b: bytes, _e: str) -> dict[str, Any]:
    parts = _subfield_parts(b, I048_130)
    out: dict[str, Any] = {}
    scale = {0: ("srl_deg", False, 360.0 / 8192), 1: ("srr", False, 1), 2: ("sam_dbm", True, 1),
             3: ("prl_deg", False, 360.0 / 8192),
             4: ("pam_dbm", True, 1), 5: ("rpd_nm", True, 1 / 256.0), 6: ("apd_deg", True, 360.0 / 16384)}
    for bit, raw in parts.items():
        name, signed, lsb = scale[bit]
        out[name] = (_s(raw) if signed else _u(raw)) * lsb
    return out


def _i048_240(b: bytes, _e: str) -> dict[str, Any]:
    return {"ident": _icao_text(b)}


def _i048_042(b: bytes, _e: str) -> dict[str, Any]:
    return {"x_nm": _s(b[:2]) / 128.0, "y_nm": _s(b[2:]) / 128.0}


def _velocity_polar(b: bytes, _e: str) -> dict[str, Any]:
    nm_s = _u(b[:2]) * 2.0**-14
    return {"groundspeed_kt": nm_s * 3600.0, "heading_deg": _u(b[2:]) * 360.0 / 65536.0}


def _i048_170(b: bytes, _e: str) -> dict[str, Any]:
    return _extents(b, [[("CNF", 1), ("RAD", 2), ("DOU", 1), ("MAH", 1), ("CDM", 2)],
                        [("TRE", 1), ("GHO", 1), ("SUP", 1), ("TCC", 1)]])


def _i048_210(b: bytes, _e: str) -> dict[str, Any]:
    return {"sigma_x_nm": b[0] / 128.0, "sigma_y_nm": b[1] / 128.0, "sigma_v_kt": b[2] * 2.0**-14 * 3600.0,
            "sigma_h_deg": b[3] * 360.0 / 4096}


def _i048_030(b: bytes, _e: str) -> dict[str, Any]:
    return {"codes": [octet >> 1 for octet in b]}


def _i048_100(b: bytes, _e: str) -> dict[str, Any]:
    return {"V": b[0] >> 7, "G": (b[0] >> 6) & 1, "mode_c_gray": _u(b[:2]) & 0x0FFF, "confidence": _u(b[2:]) & 0x0FFF}


def _i048_110(b: bytes, _e: str) -> dict[str, Any]:
    return {"height_ft": _s(b, 14) * 25.0}


def _i048_120(b: bytes, _e: str) -> dict[str, Any]:
    parts = _subfield_parts(b, I048_120)
    out: dict[str, Any] = {}
    if 0 in parts:
        out["cal"] = {"D": parts[0][0] >> 7, "speed_mps": float(_s(parts[0], 10))}
    if 1 in parts:
        rds = parts[1]
        out["rds"] = [{"doppler_mps": _s(rds[1 + 6 * i : 3 + 6 * i]), "ambiguity_mps": _u(rds[3 + 6 * i : 5 + 6 * i]),
                       "frequency_mhz": _u(rds[5 + 6 * i : 7 + 6 * i])} for i in range(rds[0])]
    return out


def _i048_230(b: bytes, _e: str) -> dict[str, Any]:
    return {"COM": b[0] >> 5, "STAT": (b[0] >> 2) & 7, "SI": (b[0] >> 1) & 1, "MSSC": b[1] >> 7,
            "ARC": (b[1] >> 6) & 1, "AIC": (b[1] >> 5) & 1, "B1A": (b[1] >> 4) & 1, "B1B": b[1] & 0x0F}


def _i048_055(b: bytes, _e: str) -> dict[str, Any]:
    return {"V": b[0] >> 7, "G": (b[0] >> 6) & 1, "L": (b[0] >> 5) & 1, "code": f"{b[0] & 0x1F:02o}"}


def _i048_re(b: bytes, _e: str) -> dict[str, Any]:
    """Reserved expansion (ed. 1.23+): only ERR, the extended range beyond 256 NM, is read, and only
    when no subfield before it is present (those are compound themselves and not used here)."""
    out: dict[str, Any] = {"hex": b.hex().upper()}
    if len(b) >= 5 and b[1] == 0x08:  # REF FSPEC: just ERR
        out["err_rho_nm"] = _u(b[2:5]) / 256.0
    return out


def _raw(b: bytes, _e: str) -> dict[str, Any]:
    return {"hex": b.hex().upper()}


CAT048_DECODERS: dict[str, Callable[[bytes, str], dict[str, Any]]] = {
    "010": _sac_sic, "140": _tod, "020": _i048_020, "040": _i048_040, "070": lambda b, e: _code(b),
    "090": lambda b, e: _flight_level(b), "130": _i048_130, "220": _address, "240": _i048_240, "250": _mb_data,
    "161": _track_number, "042": _i048_042, "200": _velocity_polar, "170": _i048_170, "210": _i048_210,
    "030": _i048_030, "080": lambda b, e: {"confidence": _u(b) & 0x0FFF}, "100": _i048_100, "110": _i048_110,
    "120": _i048_120, "230": _i048_230, "260": _raw, "055": _i048_055, "050": lambda b, e: _code(b),
    "065": lambda b, e: {"confidence": b[0] & 0x1F}, "060": lambda b, e: {"confidence": _u(b) & 0x0FFF},
    "SP": _raw, "RE": _i048_re,
}


# CAT010 items
def _i010_020(b: bytes, _e: str) -> dict[str, Any]:
    return _extents(b, [[("TYP", 3), ("DCR", 1), ("CHN", 1), ("GBS", 1), ("CRT", 1)],
                        [("SIM", 1), ("TST", 1), ("RAB", 1), ("LOP", 2), ("TOT", 2)],
                        [("SPI", 1)]])


def _i010_041(b: bytes, _e: str) -> dict[str, Any]:
    return {"lat": _s(b[:4]) * 180.0 / 2**31, "lon": _s(b[4:]) * 180.0 / 2**31}


def _i010_040(b: bytes, _e: str) -> dict[str, Any]:
    return {"rho_m": float(_u(b[:2])), "theta_deg": _u(b[2:]) * 360.0 / 65536.0}


def _i010_042(b: bytes, _e: str) -> dict[str, Any]:
    return {"x_m": float(_s(b[:2])), "y_m": float(_s(b[2:]))}


def _i010_202(b: bytes, edition: str) -> dict[str, Any]:
    if len(b) == 3:  # Sensis 0.24: 12 + 12 bits, 1 m/s
        v = _u(b)
        return {"vx_mps": float(_s((v >> 12).to_bytes(2, "big"), 12)), "vy_mps": float(_s((v & 0xFFF).to_bytes(2, "big"), 12))}
    return {"vx_mps": _s(b[:2]) * 0.25, "vy_mps": _s(b[2:]) * 0.25}


def _i010_170(b: bytes, _e: str) -> dict[str, Any]:
    return _extents(b, [[("CNF", 1), ("TRE", 1), ("CST", 2), ("MAH", 1), ("TCC", 1), ("STH", 1)],
                        [("TOM", 2), ("DOU", 3), ("MRS", 2)],
                        [("GHO", 1)]])


def _i010_245(b: bytes, _e: str) -> dict[str, Any]:
    return {"STI": b[0] >> 6, "ident": _icao_text(b[1:])}


def _i010_270(b: bytes, _e: str) -> dict[str, Any]:
    out: dict[str, Any] = {"length_m": float(b[0] >> 1)}
    if len(b) > 1:
        out["orientation_deg"] = (b[1] >> 1) * 360.0 / 128
    if len(b) > 2:
        out["width_m"] = float(b[2] >> 1)
    return out


def _i010_500(b: bytes, _e: str) -> dict[str, Any]:
    return {"sigma_x_m": b[0] * 0.25, "sigma_y_m": b[1] * 0.25, "cov_xy_m2": _s(b[2:]) * 0.25}


def _i010_280(b: bytes, _e: str) -> dict[str, Any]:
    return {"presence": [{"drho_m": _s(b[1 + 2 * i : 2 + 2 * i]), "dtheta_deg": _s(b[2 + 2 * i : 3 + 2 * i]) * 0.15}
                         for i in range(b[0])]}


def _i010_210(b: bytes, _e: str) -> dict[str, Any]:
    return {"ax_mps2": _s(b[:1]) * 0.25, "ay_mps2": _s(b[1:]) * 0.25}


CAT010_DECODERS: dict[str, Callable[[bytes, str], dict[str, Any]]] = {
    "010": _sac_sic, "000": lambda b, e: {"message_type": b[0]}, "020": _i010_020, "140": _tod, "041": _i010_041,
    "040": _i010_040, "042": _i010_042, "200": _velocity_polar, "202": _i010_202, "161": _track_number,
    "170": _i010_170, "060": lambda b, e: _code(b), "220": _address, "245": _i010_245, "250": _mb_data,
    "300": lambda b, e: {"VFI": b[0] >> 6}, "090": lambda b, e: _flight_level(b),
    "091": lambda b, e: {"height_ft": _s(b) * 6.25}, "270": _i010_270,
    "550": lambda b, e: {"NOGO": b[0] >> 6, "OVL": (b[0] >> 5) & 1, "TSV": (b[0] >> 4) & 1, "DIV": (b[0] >> 3) & 1,
                         "TTF": (b[0] >> 2) & 1},
    "310": lambda b, e: {"TRB": b[0] >> 7, "MSG": b[0] & 0x7F}, "500": _i010_500, "280": _i010_280,
    "131": lambda b, e: {"pam": b[0]}, "210": _i010_210, "SP": _raw, "RE": _raw,
}


# CAT034 items
def _i034_120(b: bytes, _e: str) -> dict[str, Any]:
    return {"height_m": float(_s(b[:2])), "lat": _s(b[2:5]) * 180.0 / 2**23, "lon": _s(b[5:]) * 180.0 / 2**23}


CAT034_DECODERS: dict[str, Callable[[bytes, str], dict[str, Any]]] = {
    "010": _sac_sic, "000": lambda b, e: {"message_type": b[0]}, "030": _tod,
    "020": lambda b, e: {"azimuth_deg": b[0] * 360.0 / 256}, "041": lambda b, e: {"rotation_period_s": _u(b) / 128.0},
    "050": _raw, "060": _raw,
    "070": lambda b, e: {"counters": [{"TYP": _u(b[1 + 2 * i : 3 + 2 * i]) >> 11, "COUNT": _u(b[1 + 2 * i : 3 + 2 * i]) & 0x7FF}
                                      for i in range(b[0])]},
    "100": lambda b, e: {"rho_start_nm": _u(b[:2]) / 256.0, "rho_end_nm": _u(b[2:4]) / 256.0,
                         "theta_start_deg": _u(b[4:6]) * 360.0 / 65536, "theta_end_deg": _u(b[6:]) * 360.0 / 65536},
    "110": lambda b, e: {"filter": b[0]}, "120": _i034_120,
    "090": lambda b, e: {"range_error_nm": _s(b[:1]) / 128.0, "azimuth_error_deg": _s(b[1:]) * 360.0 / 16384},
    "RE": _raw, "SP": _raw,
}

_CATEGORIES = {48: (CAT048_UAP, CAT048_DECODERS), 10: (CAT010_UAP, CAT010_DECODERS), 34: (CAT034_UAP, CAT034_DECODERS)}


# --- the decoder --------------------------------------------------------------------------------


class AsterixDecoder:
    """Datagrams in, TargetReports out (CAT048 and CAT010 target reports).

    `target` is "SAC/SIC/track number" (the Mode S address when a plot has no track). Range and
    bearing come from the measured polar position, lat/lon from the sensor's position: the one
    given, else the one the radar announces in CAT034 I034/120. `time` is the record's time of day
    on the UTC day of the receive time (the day nearest to it, across midnight).
    `cat010_edition`: "1.1" (the standard) or "sensis-0.24" (Sensis' pre-standard I010/202).
    """

    def __init__(self, source: str, sensor_position: tuple[float, float] | None = None, *, cat010_edition: str = "1.1"):
        self.source = source
        self.sensor_position = (float(sensor_position[0]), float(sensor_position[1])) if sensor_position else None
        self.cat010_edition = cat010_edition
        self.stats = DecoderStats()
        self.ignored: Counter[str] = Counter()  # records with no report: service messages, status
        self.sensors: dict[tuple[int, int], tuple[float, float]] = {}  # (SAC, SIC) -> position from CAT034

    def feed(self, datagram: bytes, received: float) -> list[TargetReport]:
        self.stats.messages += 1
        if not datagram:
            self.stats.error("empty datagram")
            return []
        try:
            parsed = parse_datagram(bytes(datagram), cat010_edition=self.cat010_edition)
        except Exception as e:  # noqa: BLE001 - a bug here must not stop the feed; counted
            self.stats.error(f"internal: {type(e).__name__}")
            return []
        for reason in parsed.errors:
            self.stats.error(reason)
        for cat in parsed.unsupported:
            self.stats.error(f"unsupported category {cat}")
        reports: list[TargetReport] = []
        for block in parsed.blocks:
            for record in block.records:
                try:
                    report = self._report(record, received)
                except Exception as e:  # noqa: BLE001
                    self.stats.error(f"CAT{record.category:03d}: internal {type(e).__name__}")
                    continue
                if report is not None:
                    reports.append(report)
        self.stats.reports += len(reports)
        return reports

    def _report(self, record: AsterixRecord, received: float) -> TargetReport | None:
        it = record.items
        if record.category == 34:
            if "010" in it and "120" in it:
                self.sensors[(it["010"]["sac"], it["010"]["sic"])] = (it["120"]["lat"], it["120"]["lon"])
            self.ignored["CAT034 service message"] += 1
            return None
        if "010" not in it:
            self.stats.error(f"CAT{record.category:03d}: no data source")
            return None
        if record.category == 10 and it.get("000", {}).get("message_type", 1) != 1:
            self.ignored["CAT010 status message"] += 1
            return None
        sac, sic = it["010"]["sac"], it["010"]["sic"]
        time = _utc_of_tod(it["140"]["tod_s"], received) if "140" in it else received
        extra: dict[str, Any] = {"category": record.category, "sac": sac, "sic": sic,
                                 "items": {k: v for k, v in it.items()}}
        range_m = bearing = speed = course = lat = lon = None
        if record.category == 48:
            if "040" in it:
                rho_nm = it["040"]["rho_nm"]
                if "RE" in it and "err_rho_nm" in it["RE"]:
                    rho_nm = it["RE"]["err_rho_nm"]  # beyond 256 NM the extended range replaces RHO
                range_m, bearing = rho_nm * NAUTICAL_MILE, it["040"]["theta_deg"]
            elif "042" in it:
                x, y = it["042"]["x_nm"] * NAUTICAL_MILE, it["042"]["y_nm"] * NAUTICAL_MILE
                range_m, bearing = math.hypot(x, y), math.degrees(math.atan2(x, y)) % 360.0
            if "200" in it:
                speed, course = it["200"]["groundspeed_kt"] * KNOT, it["200"]["heading_deg"]
            name = it["240"]["ident"].strip() or None if "240" in it else None
        else:
            if "041" in it:
                lat, lon = it["041"]["lat"], it["041"]["lon"]
            if "040" in it:
                range_m, bearing = it["040"]["rho_m"], it["040"]["theta_deg"]
            elif "042" in it:
                x, y = it["042"]["x_m"], it["042"]["y_m"]
                range_m, bearing = math.hypot(x, y), math.degrees(math.atan2(x, y)) % 360.0
            if "200" in it:
                speed, course = it["200"]["groundspeed_kt"] * KNOT, it["200"]["heading_deg"]
            elif "202" in it:
                vx, vy = it["202"]["vx_mps"], it["202"]["vy_mps"]
                speed, course = math.hypot(vx, vy), math.degrees(math.atan2(vx, vy)) % 360.0
            name = it["245"]["ident"].strip() or None if "245" in it else None
        # a measured plot's range is the slant range: placed as ground range, an aircraft at FL330
        # 200 NM out lands ~0.1 NM long; surface targets, what this system watches, are unaffected
        origin = self.sensor_position or self.sensors.get((sac, sic))
        placed_from = None
        if lat is None and origin is not None and range_m is not None and bearing is not None:
            lat, lon = destination(origin[0], origin[1], bearing, range_m)
            placed_from = (float(origin[0]), float(origin[1]))
        if "161" in it:
            target = f"{sac}/{sic}/{it['161']['track_number']}"
            extra["track_number"] = it["161"]["track_number"]
        elif "220" in it:
            target = it["220"]["address"]
        else:
            target = f"{sac}/{sic}/plot"  # an untracked plot without identity: nothing to follow it by
        if "220" in it:
            extra["aircraft_address"] = it["220"]["address"]
        code = it.get("070") if record.category == 48 else it.get("060")  # Mode 3/A; CAT048's 060 is Mode 2 confidence
        if code:
            extra["mode3a"] = code["code"]
        if "090" in it:
            extra["flight_level"] = it["090"]["fl"]
        if "140" in it:
            extra["tod_s"] = it["140"]["tod_s"]
        status = None
        if "170" in it:
            ts = it["170"]
            status = "lost" if ts.get("TRE") else ("acquiring" if ts.get("CNF") else "tracking")
        return TargetReport(
            source=self.source, kind="radar", target=target, time=time, lat=lat, lon=lon,
            range_m=range_m, bearing_deg=bearing, speed_mps=speed, course_deg=course,
            name=name, status=status, extra=extra, origin=placed_from,
        )


def _utc_of_tod(tod: float, received: float) -> float:
    """Time of day (s after UTC midnight) on the UTC day that puts it nearest the receive time."""
    return dated(float(tod), math.floor(received / 86400.0) * 86400.0, float(received))

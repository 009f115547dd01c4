"""One plain TTM line, framed, checksummed and converted in one compiled pass (numba).

A radar at a post sends a TTM per target per scan, thousands a second, and on a camera node
every microsecond of decoding comes out of the inference's cores. The regular expressions of
edge.radar.nmea (_PLAIN_TARGET, then _TTM_PLAIN) with Python's checksum and number conversions
took 8.1 µs a line of the fusion bench's scene; this scan, with unpacking its results, 3.1 µs
(side by side in one process, on this project's 2-core machine). It accepts exactly the lines
those patterns accept and converts them to the same numbers; anything else it declines, and
the decoder's pattern path judges the line as before (tests/test_radar_ttm_scan.py holds the
two to each other on real and generated lines).

Numbers: a field of at most 9 digits either side of the point is read as an integer mantissa
M and a power of ten; M / 10^k is then the correctly rounded double, as float() gives, because
both are exact doubles and IEEE division rounds correctly (M < 2^53 here: 15 digits at most,
else the line is declined).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Where scan() puts a line's numbers (float64 out array); NaN: the field is empty.
F_DISTANCE, F_BEARING, F_SPEED, F_COURSE, F_CPA, F_TCPA, F_TOD = range(7)
N_FLOATS = 7
# And its other fields (int64 out array): the target number, one-letter codes (0: empty), the
# name's span in the line, whether the acquisition field is there at all; and the span from the
# CPA field to the reference field (CPA, TCPA, unit, name, status, reference): with the
# acquisition code, everything a report takes from the line besides the numbers and the time.
I_NUMBER, I_BRG_REF, I_COG_UNIT, I_UNIT, I_STATUS, I_REF, I_ACQ, I_NAME_START, I_NAME_END, I_TAIL_START, I_TAIL_END = \
    range(11)
N_INTS = 11

DECLINED, TTM = 0, 1


@njit(cache=True, nogil=True)
def dated(tod, day, utc):
    """A sentence's hhmmss (`tod`, seconds of the day) on the date last seen (`day`: its UTC
    midnight, `utc`: the UTC time that came with it), on the nearest such day: a TTM at 00:00:01
    after an RMC at 23:59:59 is the next day's. The one rule for a time of day in this package:
    the NMEA decoder (NmeaDecoder._utc_of), the track store's compiled fast path, and ASTERIX's
    time of day against the receive time (asterix._utc_of_tod)."""
    t = day + tod
    if t - utc > 43200:
        t -= 86400
    elif utc - t > 43200:
        t += 86400
    return t


@njit(cache=True, inline="always")
def _space(c):
    return c == 32 or 9 <= c <= 13  # [ \t\n\r\x0b\x0c]


@njit(cache=True, inline="always")
def _digit(c):
    return 48 <= c <= 57


@njit(cache=True, inline="always")
def _upper(c):
    return 65 <= c <= 90


@njit(cache=True, inline="always")
def _hex(c):
    if 48 <= c <= 57:
        return c - 48
    if 65 <= c <= 70:
        return c - 55
    if 97 <= c <= 102:
        return c - 87
    return -1


@njit(cache=True)
def _decimal(b, s, e, signed):
    """The field b[s:e] as `-?\\d{1,9}(\\.\\d{1,9})?` (sign only when `signed`): its value, or
    NaN and False when it is not one; (NaN, True) for an empty field."""
    if s == e:
        return np.nan, True
    neg = False
    if signed and b[s] == 45:  # '-'
        neg = True
        s += 1
    m = 0
    whole = 0
    i = s
    while i < e and _digit(b[i]):
        m = m * 10 + (b[i] - 48)
        whole += 1
        i += 1
    if whole == 0 or whole > 9:
        return np.nan, False
    frac = 0
    if i < e:
        if b[i] != 46:  # '.'
            return np.nan, False
        i += 1
        while i < e and _digit(b[i]):
            m = m * 10 + (b[i] - 48)
            frac += 1
            i += 1
        if frac == 0 or frac > 9 or i != e:
            return np.nan, False
    if whole + frac > 15:
        return np.nan, False  # a mantissa past 2^53 would not divide exactly: the pattern path takes it
    v = m / 10.0 ** frac
    return (-v if neg else v), True


@njit(cache=True)
def _letter(b, s, e, allowed):
    """A field of at most one letter from `allowed` (a bytes-like array): its code, 0 when empty, -1 otherwise."""
    if s == e:
        return 0
    if e - s != 1:
        return -1
    c = b[s]
    for a in allowed:
        if c == a:
            return c
    return -1


_T = np.array([84], np.uint8)  # "T"
_NKS = np.array([78, 75, 83], np.uint8)  # "N", "K", "S"
_AZ = np.arange(65, 91).astype(np.uint8)  # "A".."Z"


@njit(cache=True)
def scan(b, floats, ints):
    """Scan line b (uint8 array) into `floats` and `ints`; TTM when it is a plain TTM line
    (edge.radar.nmea's _PLAIN_TARGET + _TTM_PLAIN, with a correct checksum and a valid time of
    day), DECLINED otherwise."""
    n = len(b)
    i = 0
    while i < n and _space(b[i]):
        i += 1
    j = n
    while j > i and _space(b[j - 1]):
        j -= 1
    # "$" talker(2) "TTM," ... "*" hh
    if j - i < 11 or b[i] != 36 or b[j - 3] != 42:
        return DECLINED
    hi, lo = _hex(b[j - 2]), _hex(b[j - 1])
    if hi < 0 or lo < 0:
        return DECLINED
    t0, t1 = b[i + 1], b[i + 2]
    if not ((_upper(t0) and t0 != 80) or _digit(t0)) or not (_upper(t1) or _digit(t1)):
        return DECLINED  # [A-OQ-Z0-9][A-Z0-9]
    if b[i + 3] != 84 or b[i + 4] != 84 or b[i + 5] != 77 or b[i + 6] != 44:  # "TTM,"
        return DECLINED
    end = j - 3  # the '*'
    check = 0
    for k in range(i + 1, end):
        c = b[k]
        if c < 32 or c > 126 or c == 42:  # [ -)+-~]
            return DECLINED
        check ^= c
    if check != hi * 16 + lo:
        return DECLINED
    # The fields: 14, or 15 with the acquisition field.
    starts = np.empty(16, np.int64)
    ends = np.empty(16, np.int64)
    f = 0
    s = i + 7
    for k in range(i + 7, end + 1):
        if k == end or b[k] == 44:
            if f == 16:
                return DECLINED
            starts[f], ends[f] = s, k
            f += 1
            s = k + 1
    if f != 14 and f != 15:
        return DECLINED
    # 1: the target number, \d{1,9}
    s, e = starts[0], ends[0]
    if e - s < 1 or e - s > 9:
        return DECLINED
    number = 0
    for k in range(s, e):
        if not _digit(b[k]):
            return DECLINED
        number = number * 10 + (b[k] - 48)
    ints[I_NUMBER] = number
    for slot, field, signed in ((F_DISTANCE, 1, False), (F_BEARING, 2, False), (F_SPEED, 4, True),
                                (F_COURSE, 5, False), (F_CPA, 7, True), (F_TCPA, 8, True)):
        v, ok = _decimal(b, starts[field], ends[field], signed)
        if not ok:
            return DECLINED
        floats[slot] = v
    for slot, field in ((I_BRG_REF, 3), (I_COG_UNIT, 6)):
        c = _letter(b, starts[field], ends[field], _T)
        if c < 0:
            return DECLINED
        ints[slot] = c
    c = _letter(b, starts[9], ends[9], _NKS)
    if c < 0:
        return DECLINED
    ints[I_UNIT] = c
    ints[I_NAME_START], ints[I_NAME_END] = starts[10], ends[10]
    ints[I_TAIL_START], ints[I_TAIL_END] = starts[7], ends[12]
    for slot, field in ((I_STATUS, 11), (I_REF, 12)):
        c = _letter(b, starts[field], ends[field], _AZ)
        if c < 0:
            return DECLINED
        ints[slot] = c
    # 14: hhmmss(.s{1,6})?, a valid time of day (else the general path refuses it: "bad time")
    s, e = starts[13], ends[13]
    if s == e:
        floats[F_TOD] = np.nan
    else:
        if e - s < 6:
            return DECLINED
        for k in range(s, s + 6):
            if not _digit(b[k]):
                return DECLINED
        h = (b[s] - 48) * 10 + (b[s + 1] - 48)
        mi = (b[s + 2] - 48) * 10 + (b[s + 3] - 48)
        if e - s > 6:
            if b[s + 6] != 46 or e - s - 7 < 1 or e - s - 7 > 6:
                return DECLINED
        sec, ok = _decimal(b, s + 4, e, False)
        if not ok or h > 23 or mi > 59 or sec >= 61:
            return DECLINED
        floats[F_TOD] = h * 3600 + mi * 60 + sec
    if f == 15:
        c = _letter(b, starts[14], ends[14], _AZ)
        if c < 0:
            return DECLINED
        ints[I_ACQ] = c
    else:
        ints[I_ACQ] = -1  # no acquisition field at all
    return TTM

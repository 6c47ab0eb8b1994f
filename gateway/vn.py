"""The VN (AHV number, eCH-0044 ``vn``): its form, its check digit, and how logs show it."""

from __future__ import annotations


def vn_shaped(text: str) -> bool:
    """Whether ``text`` has a VN's form: 13 ASCII digits starting with 756 (check digit aside).

    ASCII only: a VN is an ``xs:unsignedLong``, and ``str.isdigit()`` alone admits digits of
    other scripts and superscripts (``'²'``, which ``int()`` refuses).
    """
    return len(text) == 13 and text.isascii() and text.isdigit() and text.startswith("756")


def vn_check_digit_ok(vn: str | int) -> bool:
    """Whether a 13-digit VN (AHV number) has a valid EAN-13 check digit."""
    digits = str(vn)
    if len(digits) != 13 or not (digits.isascii() and digits.isdigit()):
        return False
    codes = digits.encode()  # the digits' codes, each 48 more than the digit: a tenth of int() per digit
    total = sum(codes[0:12:2]) + 3 * sum(codes[1:12:2]) - 4 * 6 * 48
    return (10 - total % 10) % 10 == codes[12] - 48


def mask_vn(vn: str | int) -> str:
    """A VN as a log line or a rejection reason may show it: ``756.****.****.97``."""
    digits = str(vn)
    return f"{digits[:3]}.****.****.{digits[-2:]}" if len(digits) == 13 else "756.****.****.**"

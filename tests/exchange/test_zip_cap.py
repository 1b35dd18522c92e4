"""A zip is inflated only up to a cap: a bulk zip (VisionSource) or a file a user brings
(`quantlab data validate`) that inflates past it is a SchemaError, not a full memory."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest

from quantlab.errors import SchemaError
from quantlab.exchange import _klines_csv
from quantlab.exchange._klines_csv import unzip_csv
from quantlab.quality.files import read_klines_file

ROW = (
    "1677628800000,28000.0,28100.0,27900.0,28050.0,10.0,1677632399999,280000.0,100,5.0,140000.0,0\n"
)
CSV = ROW * 40  # 3,960 bytes, inflated from a few hundred
CAP = 1_000


def zip_bytes(csv: str, name: str = "BTCUSDT-1h-2023-03.csv") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, csv)
    return buf.getvalue()


def understate_size(blob: bytes, size: int) -> bytes:
    """The zip with its member's declared inflated size rewritten to `size` in both headers:
    a crafted zip that claims to be small and inflates to more."""
    out = bytearray(blob)
    local = out.index(b"PK\x03\x04")
    struct.pack_into("<I", out, local + 22, size)
    central = out.index(b"PK\x01\x02")
    struct.pack_into("<I", out, central + 24, size)
    return bytes(out)


@pytest.fixture
def low_cap(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(_klines_csv, "MAX_INFLATED_BYTES", CAP)
    return CAP


def test_a_zip_under_the_cap_is_read_whole() -> None:
    assert unzip_csv(zip_bytes(CSV), "x.zip") == CSV.encode()


def test_a_bulk_zip_inflating_past_the_cap_is_a_schema_error(low_cap: int) -> None:
    blob = zip_bytes(CSV)
    assert len(blob) < low_cap < len(CSV)
    with pytest.raises(SchemaError, match=r"x\.zip: .* inflates to more than 1,000 bytes"):
        unzip_csv(blob, "x.zip")


def test_a_zip_that_understates_its_size_is_refused(low_cap: int) -> None:
    with pytest.raises(SchemaError, match=r"x\.zip"):
        unzip_csv(understate_size(zip_bytes(CSV), 500), "x.zip")


def test_a_brought_zip_inflating_past_the_cap_is_a_schema_error(
    tmp_path: Path, low_cap: int
) -> None:
    path = tmp_path / "BTCUSDT-1h-2023-03.zip"
    path.write_bytes(zip_bytes(CSV))
    with pytest.raises(SchemaError, match=r"inflates to more than 1,000 bytes"):
        read_klines_file(path, market="spot", symbol=None, interval="1h")


def test_a_brought_zip_under_the_cap_is_read(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-1h-2023-03.zip"
    path.write_bytes(zip_bytes(CSV))
    read = read_klines_file(path, market="spot", symbol=None, interval="1h")
    assert read.frame.height == 40

"""Add to `data/sample/` what `build_sample.py` does not: futures, µs spot, recorded API bodies.

- `data/futures/um/monthly/klines/AVAXUSDT/1m/AVAXUSDT-1m-2026-02.zip`: the unchanged
  data.binance.vision USD-M file, header line kept (40,320 rows, ms).
- `data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2025-06.zip`: the unchanged spot file in
  microseconds (720 rows).
- `api/fundingRate/BTCUSDT.json`: 3,316 funding records (the RECONSTRUCTED file; no markPrice).
- `api/exchangeInfo/spot.json`: the 2023-09-08 mainnet subset (the full file is 3.7 MB).
- `api/exchangeInfo/futures_um.json`: the 2024-10-02 USD-M mainnet response, full.

Every file is copied byte for byte; zips get a fixed timestamp and a `.zip.CHECKSUM` in
`sha256sum` format, so a rebuild is byte-identical.

    python infra/scripts/build_sample_extra.py [--shared ../shared/data/binance]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ZIP_TIME = (2025, 1, 1, 0, 0, 0)

# CSVs under shared/vision, whose folders mirror data.binance.vision's data/ layout.
BULK = (
    "futures/um/monthly/klines/AVAXUSDT/1m/AVAXUSDT-1m-2026-02.csv",
    "spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2025-06.csv",
)
# (source under shared/api, destination under the sample's api/)
API = (
    (
        "fundingRate/BTCUSDT_fundingRate_2022-11-03_2025-11-12_RECONSTRUCTED.json",
        "fundingRate/BTCUSDT.json",
    ),
    (
        "exchangeInfo/spot_exchangeInfo_2023-09-08_MAINNET_subset_DERIVED.json",
        "exchangeInfo/spot.json",
    ),
    (
        "exchangeInfo/usdm_futures_exchangeInfo_2024-10-02_MAINNET_full.json",
        "exchangeInfo/futures_um.json",
    ),
)


def write_zip(csv: Path, dest_folder: Path) -> Path:
    """Zip `csv` verbatim into `dest_folder`, with its `.zip.CHECKSUM` beside it."""
    dest_folder.mkdir(parents=True, exist_ok=True)
    zpath = dest_folder / f"{csv.stem}.zip"
    info = zipfile.ZipInfo(csv.name, date_time=ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr(info, csv.read_bytes())
    digest = hashlib.sha256(zpath.read_bytes()).hexdigest()
    (dest_folder / f"{zpath.name}.CHECKSUM").write_text(f"{digest}  {zpath.name}\n")
    return zpath


def build(shared: Path, out: Path) -> list[Path]:
    written = []
    for rel in BULK:
        written.append(write_zip(shared / "vision" / rel, out / "data" / Path(rel).parent))
    for rel, dest in API:
        target = out / "api" / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared / "api" / rel, target)
        written.append(target)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data" / "binance")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "sample")
    args = parser.parse_args()
    for path in build(args.shared, args.out):
        print(f"{path.stat().st_size:>10,}  {path.relative_to(args.out)}")


if __name__ == "__main__":
    main()

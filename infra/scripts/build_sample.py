"""Build `data/sample/` from the real Binance klines in `../shared/data/binance/`.

The sample is stored in the data.binance.vision layout, one monthly zip per
symbol with a `.zip.CHECKSUM` beside it, so the replay exchange can serve it
both as bulk files and through the REST endpoints. Rows are copied verbatim:
lines are split by the month of their open time, nothing is edited.

    python infra/scripts/build_sample.py [--shared ../shared/data/binance]
"""

from __future__ import annotations

import argparse
import hashlib
import zipfile
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
# A fixed timestamp inside the zips keeps rebuilt archives byte-identical.
ZIP_TIME = (2025, 1, 1, 0, 0, 0)


def build(shared: Path, out: Path) -> int:
    written = 0
    for symbol in SYMBOLS:
        src = shared / "klines" / "spot" / "1h" / f"{symbol}-1h-2023-01-01_2024-12-31.csv"
        months: dict[str, list[str]] = defaultdict(list)
        for line in src.read_text().splitlines():
            open_ms = int(line.split(",", 1)[0])
            months[datetime.fromtimestamp(open_ms / 1000, UTC).strftime("%Y-%m")].append(line)
        folder = out / "data" / "spot" / "monthly" / "klines" / symbol / "1h"
        folder.mkdir(parents=True, exist_ok=True)
        for month, lines in sorted(months.items()):
            name = f"{symbol}-1h-{month}"
            zpath = folder / f"{name}.zip"
            info = zipfile.ZipInfo(f"{name}.csv", date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            with zipfile.ZipFile(zpath, "w") as zf:
                zf.writestr(info, "\n".join(lines) + "\n")
            digest = hashlib.sha256(zpath.read_bytes()).hexdigest()
            (folder / f"{name}.zip.CHECKSUM").write_text(f"{digest}  {name}.zip\n")
            written += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data" / "binance")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "sample")
    args = parser.parse_args()
    print(f"wrote {build(args.shared, args.out)} monthly files under {args.out}")


if __name__ == "__main__":
    main()

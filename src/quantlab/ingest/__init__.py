"""Stage `ingest`: market data from Binance (REST or data.binance.vision) into the catalog.

No input dataset: the source is the exchange (on the embedded default, the replay exchange
over the shipped sample). Outputs:

- `klines`: merged on `(market, symbol, interval, open_time)`, partitioned by market,
  interval and symbol; only closed candles; each symbol resumes where it stopped.
- `klines_gaps`: candles the exchange confirmed missing, with the source that confirmed them
  (`read_gaps`); not asked for again unless rechecked or cleared (`clear_gaps`).
- `funding_rates`: USD-M funding records, merged on `(market, symbol, funding_time)`; a run
  fetches every hole of the stored records in its window.
- `mark_klines`: USD-M mark-price candles, keyed as klines (the freqtrade source,
  `import_freqtrade`, which also writes klines and funding_rates from freqtrade's files).
- `exchange_info`: symbols and their filters, one snapshot per change, keyed by
  `(market, symbol, snapshot_time)`.
"""

from quantlab.ingest._gaps import GapWindow, clear_gaps, read_gaps
from quantlab.ingest.exchange_info import run_exchange_info
from quantlab.ingest.exchange_info import run_universe as run_universe_exchange_info
from quantlab.ingest.freqtrade_import import FreqtradeImport, import_freqtrade
from quantlab.ingest.funding import run_funding
from quantlab.ingest.funding import run_universe as run_universe_funding
from quantlab.ingest.klines import IngestResult, Progress, SeriesReport, ingest_klines
from quantlab.ingest.mapped import IngestReport
from quantlab.ingest.sources import BulkSource, RestSource
from quantlab.ingest.stage import exchange_url, rest_source, run, run_symbol, to_ms

__all__ = [
    "BulkSource",
    "FreqtradeImport",
    "GapWindow",
    "IngestReport",
    "IngestResult",
    "Progress",
    "RestSource",
    "SeriesReport",
    "clear_gaps",
    "exchange_url",
    "import_freqtrade",
    "ingest_klines",
    "read_gaps",
    "rest_source",
    "run",
    "run_exchange_info",
    "run_funding",
    "run_symbol",
    "run_universe_exchange_info",
    "run_universe_funding",
    "to_ms",
]

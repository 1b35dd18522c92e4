"""The paper-execution bridge: targets → orders → a venue (the paper venue or Binance's spot
testnet through the signed adapter) → fills → the ledger → reconciliation.

`run` is the research pipeline's `paper` stage and the `paper_trading` DAG's task.
"""

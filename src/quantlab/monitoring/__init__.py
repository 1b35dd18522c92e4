"""The platform watching itself: data freshness and the gate, feature drift, the champion's
live accuracy, paper P&L against the breakers, the other DAGs' task runs; alerts on the
findings, rate-limited, and a self-contained status page. Pure checks on polars frames
(`freshness`, `drift`, `performance`, `tasks`), the alert plan (`alerts`), the webhook
(`webhook`), the page (`status_page`) and a thin stage (`stage`). Nothing here imports
Airflow: the `monitoring` DAG wires it and delivers the alerts through Airflow's notifiers.
"""

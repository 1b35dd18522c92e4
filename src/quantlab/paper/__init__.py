"""Stage `paper`: orders and fills for the newest targets, booked in a ledger.

Input dataset: `targets`. Output: `paper_orders` (the orders this targets version
caused), with every order, fill and position also in the ledger database
(SQLite on the embedded default, PostgreSQL through psycopg2 when configured).
"""

from quantlab.paper.broker import Order, plan_orders
from quantlab.paper.ledger import Ledger
from quantlab.paper.stage import run

__all__ = ["Ledger", "Order", "plan_orders", "run"]

"""Background jobs of the shop: their bodies (one module each), the runner, and what enqueues
them (`order_mail_job`, `low_stock_job`, `clean_up_job`). Import from the modules: checkout
and the order services import the job requests, and the runner imports those services' tables."""

"""The PostgreSQL backend's numbered migrations (``NNNN_name.sql``), applied in order at open."""

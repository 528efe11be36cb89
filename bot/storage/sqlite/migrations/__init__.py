"""The numbered schema migrations of the SQLite backend (``NNNN_name.sql``), applied in order."""

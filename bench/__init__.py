"""Benchmarks for pikabot (issue 6), run with ``python -m bench`` from the repository root.

Every figure is measured on loopback (127.0.0.1) against the fakes in ``tests/fakes``: the
real bot process against the Discord double for interaction and delivery figures, the
provider clients against their fakes for completion detection, the job service for the
1,000-job load, and the credit ledger on a real SQLite file. Targets are printed for the
report and never asserted.
"""

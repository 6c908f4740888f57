"""The numerical core, numpy only: the IR, coverage geometry, the coverage pass along paths,
weight-aware phase sums, and the tiny chain-spec language the catalogue and the tests use.
"""

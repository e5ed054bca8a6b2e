"""Fixtures every unit module may use: one user's moto store, SQLite repository and server records
(``tests.support.unit_world``). A module that needs another world defines its own fixture of the same name."""

from tests.support.unit_world import repo, server, store  # noqa: F401  (fixtures, found by name)

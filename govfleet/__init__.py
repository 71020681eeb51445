"""governance-fleet: a Temporal-native worker fleet for a DAO's governance operations."""

__version__ = "0.1.0"

"""billing: turns stored Juspay mandates into money on time, exactly once."""

__version__ = "0.1.0"

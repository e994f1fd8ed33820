"""control_api package."""

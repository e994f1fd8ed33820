"""The simulated CBHours API."""

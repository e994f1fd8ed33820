"""The simulated Chaturbate Affiliate API."""

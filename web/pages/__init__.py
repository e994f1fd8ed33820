"""One module per page: its controller (routes) and the reads it makes; templates alongside."""

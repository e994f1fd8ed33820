"""One module per upstream format: pure decoders and parsers, no I/O (see docs/architecture.md)."""

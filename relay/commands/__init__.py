"""One module per CLI verb: typed functions the CLI calls with explicit keyword arguments."""

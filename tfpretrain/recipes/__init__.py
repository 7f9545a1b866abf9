"""End-to-end jobs (train, evaluate, export, plot) behind the CLI commands, callable from Python."""

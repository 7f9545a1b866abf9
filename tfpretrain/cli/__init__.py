"""The `tfpretrain` command line: thin shells over `tfpretrain.recipes`."""

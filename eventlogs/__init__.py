"""Reading and converting event logs: source formats, loaders, row validation, out-of-core passes."""

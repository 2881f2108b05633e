"""Command-line shell over the product's stages (``interest --help``)."""

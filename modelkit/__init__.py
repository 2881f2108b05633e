"""The model kit: Keras layers and priors, the model builder, the bundle and registry read access.

Training writes what this package defines; serving and monitoring load it without importing
``training``.
"""

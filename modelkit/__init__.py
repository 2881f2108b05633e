"""The model kit: Keras layers and priors, the model builder, the bundle and registry read access.

Training writes what this package defines; serving and monitoring load it without importing
``training``.
"""

from modelkit.tfquiet import install as _quiet_tensorflow

# Arms an import hook (no cost until TensorFlow loads): TensorFlow's C++ log lines are
# silenced at their source in every process that loads a model, the service's workers too.
_quiet_tensorflow()

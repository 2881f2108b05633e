"""Training: Keras model builders, Optuna studies, MLflow tracking, registry and promotion."""

# Before any training module imports Keras (spawned trial workers start here too): arms the
# hook that silences TensorFlow's C++ log lines at their source (modelkit.tfquiet).
import modelkit  # noqa: F401, E402

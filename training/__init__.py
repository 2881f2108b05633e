"""Training: Keras model builders, Optuna studies, MLflow tracking, registry and promotion."""

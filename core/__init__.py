"""The contract every stage shares: event schema, configuration, vocabulary, the
sequence-feature code (encoding, features, labels, arrays, profiles) and the prediction-log
record. Nothing here imports another package of the project."""

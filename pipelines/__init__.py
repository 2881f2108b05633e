"""The orchestration layer: stages composed into jobs with typed results.

``train`` (load -> features -> tune -> refit -> register -> gate), ``deploy`` (registry ->
BentoML model -> bento), ``monitor`` (drift -> retrain -> gate -> redeploy) and ``demo`` (the
whole loop). The CLI and schedulers call these functions; nothing here starts the CLI.
"""

"""The model registry and the feedback store: MLflow stores (``stores``), the trusted
evaluation set (``evalset``), the promotion gate (``gate``), registration (``versions``),
publishing a training run (``publish``), the pyfunc model (``pyfunc``), and the feedback
database (``feedback``, ``feedback_schema``). Importing the package imports nothing else."""

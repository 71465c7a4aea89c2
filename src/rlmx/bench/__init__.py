"""Long-context tasks, methods and scoring."""

"""The pipeline: lock, generate, publish, acr, harbor, verify. Each stage reads what is wanted,
observes what is, plans (pure), applies, and reports."""

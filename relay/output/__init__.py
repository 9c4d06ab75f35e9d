"""What people read: tables, GitHub Actions annotations and job summaries, the PR comment."""

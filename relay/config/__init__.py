"""The repository's own files, read strictly, every problem with file:line: the mirrors list,
the settings, the lock file, and what joins them (pins, naming, selection rules)."""

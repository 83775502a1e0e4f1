"""End-to-end tests: the local host, the command lines, generated samples, chaos and fuzz through the pipeline."""

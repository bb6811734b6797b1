"""Developer tools that drive the application (screenshots)."""

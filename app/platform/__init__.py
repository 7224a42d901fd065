"""Cross-cutting parts used by every layer; nothing here imports the layers above."""

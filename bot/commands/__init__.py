"""Slash commands: the markdown-aware parser, the command registry and the permission rules (all pure)."""

"""The local stand-in project: real servers where they exist, small wire-compatible stand-ins elsewhere."""

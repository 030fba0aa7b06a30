"""Custom-painted widgets."""

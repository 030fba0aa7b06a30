"""Dialogs shared by the panels."""

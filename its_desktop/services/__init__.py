"""Use cases shared by the CLI and the GUI: the unlocked session, auto-lock, quick unlock."""

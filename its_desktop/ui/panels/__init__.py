"""The main window's panels: secrets, rotation schedule, audit log, MFA, settings."""

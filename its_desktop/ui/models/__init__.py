"""Qt item models. They hold no secret values: rows carry names and metadata only."""

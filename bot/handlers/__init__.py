"""Feature handlers: one gidgethub Router each, composed in `bot.runtime`."""

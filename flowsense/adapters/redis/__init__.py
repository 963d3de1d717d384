"""Redis Streams: publishing ticks and consuming them with a consumer group (see ``streams``)."""

"""``RedisResource``: a Redis server (production profile)."""

from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

from flowsense.errors import ConfigError


class RedisResource(ConfigurableResource):
    """A Redis client factory for ``url`` (``redis://[:password@]host:port[/db]`` or ``host:port``)."""

    url: str = Field(default="127.0.0.1:6379", description="Redis URL (redis://host:port/db or host:port).")

    def redis_url(self) -> str:
        raw = self.url.strip()
        return raw if "://" in raw else f"redis://{raw.split(',')[0]}"

    def client(self) -> Any:
        import redis

        try:
            return redis.Redis.from_url(self.redis_url(), socket_connect_timeout=3)
        except ValueError as exc:
            raise ConfigError(f"Redis URL {self.url!r}: {exc}") from None

    def ping(self) -> bool:
        return bool(self.client().ping())

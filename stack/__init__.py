"""The local stack: a real Kafka-protocol broker (Tansu) and a real redis-server, on loopback."""

from stack.local import LocalStack, ServiceStatus
from stack.process import StackError

__all__ = ["LocalStack", "ServiceStatus", "StackError"]

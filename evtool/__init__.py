"""evtool: composable filters for event pipelines over pipes or RabbitMQ."""

__version__ = "0.1.0"

"""One Source/Sink seam with standard I/O, files and AMQP behind it."""

from evtool.transports.base import Batch, OutputClosed, Sink, Source, TransportError

__all__ = ["Batch", "OutputClosed", "Sink", "Source", "TransportError"]

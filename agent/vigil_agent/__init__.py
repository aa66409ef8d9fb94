"""vigil-agent: the host sensor of Vigil (audit netlink, proc connector, AF_PACKET DNS).

Runs on instances, not in Lambda. It reads kernel event streams, adds process context, and ships
the wire format of ``vigil.wire`` to Kinesis (or to stdout with ``--stdout``).
"""

__version__ = "0.1.0"

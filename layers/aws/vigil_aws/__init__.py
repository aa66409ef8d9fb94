"""Vigil's AWS adapters: the only code that calls AWS (DESIGN §2).

Handlers in ``functions/`` wire these to the pure core (``vigil``): typed settings parsed once at
cold start, lazily-built cached boto3 clients, the DynamoDB findings/state/coverage stores, the
EventBridge publisher and the SQS dead-letter writer.
"""

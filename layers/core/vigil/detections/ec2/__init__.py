"""GuardDuty's EC2 finding types: detections over VPC Flow Logs (``vpc_flow``), Route 53 Resolver
query logs (``resolver_query``) and CloudTrail (``api_call``), for instances with or without an agent.

Naming convention: this tree mirrors the runtime one. ``detections/<purpose>/<name>.py`` produces
``<Purpose>:Runtime/<Name>``; ``detections/ec2/<purpose>/<name>.py`` produces ``<Purpose>:EC2/<Name>``
(the registry refuses anything else). docs/sources.md lists the types.
"""

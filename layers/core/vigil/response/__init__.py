"""Response: the pure decisions behind the triage, isolate and release workflows.

The state machines (statemachines/*.asl.json) make every AWS call; these modules only decide:
``policy`` (auto-isolate, ask for approval, or notify), ``instance`` (a typed view of what the
EC2 describe calls returned) and ``plan`` (what isolation or release must change, idempotently).
No boto3, no environment, no clock: the handlers pass configuration and the time in.
"""

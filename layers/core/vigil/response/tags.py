"""Names Vigil writes on EC2 resources, and AWS's limits on tags.

Tags are pointers, never the record: the original security groups of an isolated instance live in
ResponseTable (``vigil.response.record``), where their size is not limited. A tag value holds at
most 256 characters, so 13 group ids joined by commas no longer fit in one.
"""

from __future__ import annotations

from typing import Final

FINDING_ID: Final = "vigil:finding-id"
ISOLATION_STATE: Final = "vigil:isolation-state"  # isolated | released
ISOLATED_AT: Final = "vigil:isolated-at"
RELEASED_AT: Final = "vigil:released-at"
# On the instance and each of its interfaces while isolated: the ResponseTable key of the
# isolation record ("isolation#i-0abc..."), so a person in the console can find the originals.
ISOLATION_RECORD: Final = "vigil:isolation-record"
# On the instance, set by its owners: "approve" (always ask) or "notify" (never isolate).
RESPONSE_MODE: Final = "vigil:response-mode"
# On Vigil's own security groups: "untrack" | "isolation". Set only at creation; the IAM policies
# of the isolation roles address Vigil's groups by this tag (template.yaml).
ROLE: Final = "vigil:role"

# Legacy records (before ResponseTable held them): read by release, never written any more.
ORIGINAL_GROUPS: Final = "vigil:original-sgs"  # on each interface, "sg-a,sg-b"
ORIGINAL_TERMINATION_PROTECTION: Final = "vigil:original-termination-protection"  # "true" | "false"

UNTRACK_GROUP_NAME: Final = "vigil-untrack"
ISOLATION_GROUP_NAME: Final = "vigil-isolation"
VIGIL_GROUP_NAMES: Final = frozenset({UNTRACK_GROUP_NAME, ISOLATION_GROUP_NAME})

# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-restrictions
TAG_KEY_MAX: Final = 128
TAG_VALUE_MAX: Final = 256
TAGS_PER_RESOURCE_MAX: Final = 50


def tag_problems(tags: list[dict[str, str]]) -> list[str]:
    """Why EC2 would reject these tags (key/value lengths, count), or [] when it would not."""
    problems = [
        f"tag key {x['Key'][:40]!r}... is {len(x['Key'])} characters (max {TAG_KEY_MAX})"
        for x in tags
        if len(x["Key"]) > TAG_KEY_MAX
    ]
    problems += [
        f"tag {x['Key']!r} value is {len(x['Value'])} characters (max {TAG_VALUE_MAX})"
        for x in tags
        if len(x.get("Value", "")) > TAG_VALUE_MAX
    ]
    if len(tags) > TAGS_PER_RESOURCE_MAX:
        problems.append(f"{len(tags)} tags (max {TAGS_PER_RESOURCE_MAX} per resource)")
    return problems

"""Errors of the job core.

JobsError
 ├── NotConfigured      a setting the job needs is missing (the message names it)
 └── PolicyRefusal      the job must not run this code (e.g. a fork's pull request)
"""


class JobsError(Exception):
    pass


class NotConfigured(JobsError):
    pass


class PolicyRefusal(JobsError):
    pass

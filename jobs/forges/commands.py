"""The commands a maintainer writes in a pull or merge request comment, the same on every forge."""

from __future__ import annotations

RUN_COMMAND = "/aqe run"
GENERATE_TESTS_COMMAND = "/aqe generate-tests"
COMMANDS = (RUN_COMMAND, GENERATE_TESTS_COMMAND)


def command_of(body: str) -> str | None:
    """The AQE command a comment starts with (its first two words, e.g. "/aqe run"), or None.

    Whole words only: "/aqe runner" is no command, and words after the command ("/aqe run please") are allowed.
    """
    words = body.strip().split("\n", 1)[0].split()
    command = " ".join(words[:2])
    return command if command in COMMANDS else None


def command_fields(command: str) -> dict[str, object]:
    """What a command asks for, beyond "run now on the pull request's head"."""
    if command == GENERATE_TESTS_COMMAND:
        # the tests run first: they set up the environment (`tests.setup`) the generated tests are validated in
        return {"agents": ["tests", "test-generation"], "propose_tests": True}
    return {}

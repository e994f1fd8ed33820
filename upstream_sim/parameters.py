"""The refusal every simulated API gives a bad query parameter: HTTP 400 naming the parameter."""


class ParameterError(Exception):
    """A query parameter is missing or invalid.

    Each API answers it in its own error shape: the Affiliate router with an exception
    handler, the CBHours route itself (its errors carry the API's ``status`` key).
    """

    def __init__(self, parameter: str, detail: str) -> None:
        """Create the error.

        Args:
            parameter: The offending query parameter.
            detail: One line for the client.
        """
        super().__init__(f"{parameter}: {detail}")
        self.parameter = parameter
        self.detail = detail

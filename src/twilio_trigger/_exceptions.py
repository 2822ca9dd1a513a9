"""Errors raised by twilio-trigger to the code that configures it.

Nothing here is raised while a webhook is handled: bad requests are answered
with an HTTP status (see the README's answer table), and a failing callback is
logged and answered with 500.

    TwilioTriggerError
     ├── ConfigurationError   an option or environment variable is invalid,
     │                        or the listener cannot start as configured
     └── ServiceError         a service cannot be attached or detached
"""

from __future__ import annotations

__all__ = ["ConfigurationError", "ServiceError", "TwilioTriggerError"]


class TwilioTriggerError(Exception):
    """Base class of every error twilio-trigger raises."""


class ConfigurationError(TwilioTriggerError, ValueError):
    """An option or environment variable is invalid, or the listener cannot start."""


class ServiceError(TwilioTriggerError, TypeError):
    """A service object cannot be attached to (or detached from) a listener."""

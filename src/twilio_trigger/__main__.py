"""``python -m twilio_trigger`` is the ``twilio-trigger`` command."""

from .cli import main

if __name__ == "__main__":
    main()

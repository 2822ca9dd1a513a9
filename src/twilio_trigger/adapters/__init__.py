"""Serve a listener from inside a synchronous web framework's own application.

``twilio_trigger.adapters.flask`` gives a Flask view and blueprint,
``twilio_trigger.adapters.django`` a Django view.  Each only translates the
framework's request into the listener's handler and its answer back; checks,
signatures, deduplication and dispatch are the listener's, as with
``listener.asgi``.  Sync callbacks run in the framework's request thread (its
request and application context work in them), async ones on an event loop the
adapter keeps in a background thread.

Import the module of your framework; this package imports neither.
"""

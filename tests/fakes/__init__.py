"""Local stand-ins for outside services, reachable over real sockets: a Twilio API and an SMTP server.

Fixtures (registered for the whole suite in tests/conftest.py): ``fake_twilio`` and ``smtp_server``.
"""

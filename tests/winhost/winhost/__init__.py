"""winhost: a simulated Windows host speaking real WS-Management over real HTTP/HTTPS.

See tests/winhost/winhost/api.py for the seams between its layers and docs/testing.md for
how to run it and what it models.
"""
